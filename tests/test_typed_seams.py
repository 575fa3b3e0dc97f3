"""Typed seams between the modules (issue 12): one of each thing, declared types instead of strings and getattr."""

from __future__ import annotations

import asyncio
import io
import random
import socket
from pathlib import Path

import httpx
import pytest

from batch import config, jobs
from batch._render import ProgressPrinter
from batch.apply import throttle
from batch.apply.engine import ClosesWriters, KnowsTarget, Progress, ReadsPools
from batch.apply.journal import OpState, Settlement
from batch.config import SANDBOX_DEV_TOKEN, Limits, Target
from batch.errors import LicenseBatchError, RowFinding, ServiceUnavailableError, Severity, TenantUnreachableError
from batch.findings import RowFinding as RowFindingRecord
from batch.report import results as report_results
from batch.tenant import Tenant
from batch.tenant import http as tenant_http
from batch.tenant.auth import StaticTokenCredential, TokenProvider
from batch.tenant.http import HttpClient


def test_settlement_is_built_from_keywords_only() -> None:
    with pytest.raises(TypeError):
        Settlement("k", 1, OpState.SUCCEEDED)  # type: ignore[misc]
    s = Settlement(key="k", attempt=1, state=OpState.SUCCEEDED, status=200, request_id="r")
    assert (s.key, s.state, s.status, s.request_id, s.error_code) == ("k", OpState.SUCCEEDED, 200, "r", "")


def test_one_run_summary_one_map_file_reader_one_backoff() -> None:
    assert jobs.run_summary is report_results.run_summary
    assert not hasattr(report_results, "summary_counts")
    assert jobs.read_map_file is config.read_map_file
    assert throttle.backoff_delay is tenant_http.backoff_delay  # the pacer's backoff is the HTTP client's
    assert not hasattr(throttle, "backoff_seconds")
    limits = Limits(backoff_base_seconds=0.5, backoff_max_seconds=8.0)
    pacer = throttle.Pacer(limits, rng=random.Random(7))
    for attempt in range(1, 8):
        a = tenant_http.backoff_seconds(attempt, limits, random.Random(attempt))
        b = throttle.Pacer(limits, rng=random.Random(attempt)).backoff(attempt)
        assert a == b and min(8.0, 0.5 * 2 ** (attempt - 1)) / 2 <= a <= 8.0
    assert pacer.backoff(3, retry_after=2.5) == 2.5


def test_a_row_finding_is_a_record_not_an_exception() -> None:
    assert RowFinding is RowFindingRecord  # batch.errors re-exports it
    assert not issubclass(RowFinding, BaseException) and not issubclass(RowFinding, LicenseBatchError)
    f = RowFinding("sku-unknown", Severity.ERROR, "No license called E7.", "Check the name.", row=3)
    assert str(f) == "No license called E7." and f.is_error
    assert f == RowFinding("sku-unknown", Severity.ERROR, "No license called E7.", "Check the name.", row=3)


class _Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(handler: httpx.MockTransport, sleeps: _Sleeps, **limits: float) -> HttpClient:
    tokens = TokenProvider(StaticTokenCredential(SANDBOX_DEV_TOKEN))
    return HttpClient("http://graph.invalid/v1.0", tokens, "https://graph.microsoft.com/.default", Limits(**limits),
                      sleep=sleeps, transport=handler)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a socket was opened")

    # Every network connection starts with a name look-up or a connect (graph.invalid would not resolve anyway).
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_http_client_retries_through_a_transport_without_a_socket(no_sockets: None) -> None:
    answers = [httpx.Response(503, headers={"Retry-After": "1.5"}, json={"error": {"code": "x", "message": "y"}}),
               httpx.Response(503, json={"error": {"code": "x", "message": "y"}}),
               httpx.Response(200, json={"value": [1]})]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return answers.pop(0)

    sleeps = _Sleeps()
    client = _client(httpx.MockTransport(handler), sleeps, backoff_base_seconds=0.5, backoff_max_seconds=8.0)
    assert client.get_json("/users") == {"value": [1]}
    assert seen == [f"Bearer {SANDBOX_DEV_TOKEN}"] * 3
    assert 1.5 <= sleeps[0] <= 1.65 and 0.5 <= sleeps[1] <= 1.0  # Retry-After, then the backoff (attempt 2)
    client.close()


def test_transport_errors_say_whether_the_request_left(no_sockets: None) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def timed_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async def send(handler: httpx.MockTransport) -> TenantUnreachableError:
        client = _client(handler, _Sleeps())
        try:
            await client.arequest("POST", "/$batch", content=b"{}")
        except TenantUnreachableError as e:
            return e
        finally:
            await client.aclose()
        raise AssertionError("no error")

    assert asyncio.run(send(httpx.MockTransport(refused))).never_sent is True
    assert asyncio.run(send(httpx.MockTransport(timed_out))).never_sent is False
    sleeps = _Sleeps()
    with pytest.raises(ServiceUnavailableError):
        _client(httpx.MockTransport(lambda r: httpx.Response(503)), sleeps, max_attempts=2).get_json("/users")
    assert len(sleeps) == 1


def test_the_tenant_declares_what_apply_asks_of_it() -> None:
    t = Tenant(Target(name="stub", graph_url="http://graph.invalid/v1.0", powerplatform_url="http://pp.invalid"),
               Limits())
    try:
        assert isinstance(t, ReadsPools) and isinstance(t, ClosesWriters) and isinstance(t, KnowsTarget)
    finally:
        t.close()
    assert not isinstance(object(), ReadsPools)


def test_progress_printer_takes_progress_records_and_writes_the_last_line_once(tmp_path: Path) -> None:
    out = io.StringIO()
    p = ProgressPrinter(out)

    def rec(done: int) -> Progress:
        return Progress(done=done, total=3, operations_done=done, operations_total=3, requests_sent=done,
                        throttled=0, throttle_wait_s=0.0, in_flight=0, elapsed_s=0.1)

    for d in (0, 3, 3, 3):
        p(rec(d))
    assert [ln.split()[0] for ln in out.getvalue().splitlines()] == ["0/3", "3/3"]
    p(Progress(done=0, total=2, operations_done=0, operations_total=2, requests_sent=0, throttled=0,
               throttle_wait_s=0.0, in_flight=0, elapsed_s=0.0))  # a second run on the same printer (demo)
    p(Progress(done=2, total=2, operations_done=2, operations_total=2, requests_sent=2, throttled=0,
               throttle_wait_s=0.0, in_flight=0, elapsed_s=0.1))
    assert [ln.split()[0] for ln in out.getvalue().splitlines()] == ["0/3", "3/3", "0/2", "2/2"]
