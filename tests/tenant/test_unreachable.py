"""An unreachable host fails on the first contact with the host named: no retry loop, no long silence."""

from __future__ import annotations

import socket

import pytest

from batch.config import Limits
from batch.errors import TenantUnreachableError
from batch.tenant.auth import StaticTokenCredential, TokenProvider
from batch.tenant.http import HttpClient


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_first_contact_connect_error_is_not_retried() -> None:
    port = _closed_port()
    slept: list[float] = []
    http = HttpClient(f"http://127.0.0.1:{port}/v1.0", TokenProvider(StaticTokenCredential("t")), "s", Limits(),
                      sleep=slept.append)  # fmt: skip
    with pytest.raises(TenantUnreachableError) as e:
        http.get_json("/subscribedSkus")
    http.close()
    assert str(e.value).startswith(f"GET /v1.0/subscribedSkus: cannot reach 127.0.0.1:{port} (ConnectError: ")
    assert slept == [] and http.stats.requests == 1
