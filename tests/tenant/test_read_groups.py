"""``read_groups`` over ``$batch`` (a scripted server on 127.0.0.1): only 404 means "no such group"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from batch.errors import ServiceError
from batch.kinds.groups.read import read_groups

from .stub import Seen, Stub, js
from .test_http import make_tenant

GID = "0b6a7f1e-1111-4c2a-9d3e-5f0a1b2c3d4e"
GONE = "7c1d2e3f-2222-4a5b-8c9d-0e1f2a3b4c5d"


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub().start()
    yield s
    s.stop()


def answer_with(status_of: dict[str, tuple[int, Any]]) -> Any:
    def answer(s: Seen) -> Any:
        out = []
        for r in orjson.loads(s.body)["requests"]:
            key = next(k for k in status_of if k in r["url"])
            status, body = status_of[key]
            out.append({"id": r["id"], "status": status, "headers": {}, "body": body})
        return js({"responses": out})

    return answer


def test_found_by_id_and_name_and_not_found(stub: Stub) -> None:
    stub.on("POST", "/v1.0/$batch", answer_with({
        GID: (200, {"id": GID, "displayName": "Sales"}),
        GONE: (404, {"error": {"code": "Request_ResourceNotFound", "message": "gone"}}),
        "displayName": (200, {"value": []}),
    }))  # fmt: skip
    with make_tenant(stub) as t:
        got = read_groups(t.graph, [GID, GONE, "Nobody's group"])
    assert [g.display_name for g in got[GID]] == ["Sales"]
    assert got[GONE] == [] and got["Nobody's group"] == []


def test_a_refused_read_is_an_error_not_a_missing_group(stub: Stub) -> None:
    """Before, any failed item read as "no such group" (a rollback then left the group's memberships alone as
    "no longer exists")."""
    stub.on("POST", "/v1.0/$batch", answer_with({
        GID: (400, {"error": {"code": "Request_BadRequest", "message": "Unsupported query."}}),
    }))  # fmt: skip
    with make_tenant(stub) as t, pytest.raises(ServiceError, match="Unsupported query"):
        read_groups(t.graph, [GID])
