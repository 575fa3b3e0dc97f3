"""The HTTP boundary against a scripted stdlib server on 127.0.0.1: errors, retries, headers, $batch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import orjson
import pytest

from batch.config import SANDBOX_DEV_TOKEN, Limits, Target
from batch.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ServiceError,
    ServiceUnavailableError,
    TenantUnreachableError,
    ThrottledError,
)
from batch.tenant import Tenant, parse_retry_after
from batch.tenant.auth import StaticTokenCredential, TokenProvider
from batch.tenant.graph import build_batch
from batch.tenant.http import HttpClient, user_path

from .stub import DROP, Seen, Stub, graph_error, js


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub().start()
    yield s
    s.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_tenant(stub: Stub, sleeps: Sleeps | None = None, **limits: float) -> Tenant:
    target = Target(name="stub", graph_url=stub.url, powerplatform_url=stub.url)
    return Tenant(target, Limits(**limits), sleep=sleeps if sleeps is not None else Sleeps())  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- Retry-After


def test_parse_retry_after_forms() -> None:
    now = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 2.128 ") == pytest.approx(2.128)
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("-3") == 0.0
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == pytest.approx(30.0)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 0.0
    for junk in (None, "", "   ", "soon", "nan", "inf", "1e999", "Mon, 99 Foo 2015"):
        assert parse_retry_after(junk, now=now) is None, junk


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    value = parse_retry_after(soon)
    assert value is not None and 55 <= value <= 60


# ------------------------------------------------------------------------------ error translation


@pytest.mark.parametrize(
    ("answer", "exc"),
    [
        (graph_error(401, "InvalidAuthenticationToken"), AuthenticationError),
        (graph_error(403, "Authorization_RequestDenied"), PermissionDeniedError),
        (graph_error(429, "TooManyRequests", Retry_After="2.128"), ThrottledError),
        (graph_error(500, "InternalServerError"), ServiceUnavailableError),
        (graph_error(502, "BadGateway"), ServiceUnavailableError),
        (graph_error(503, "ServiceUnavailable", Retry_After="7"), ServiceUnavailableError),
        (graph_error(504, "GatewayTimeout"), ServiceUnavailableError),
        (graph_error(400, "Request_BadRequest", "bad"), ServiceError),
        (graph_error(404, "Request_ResourceNotFound"), ServiceError),
        ((409, {}, b"not json"), ServiceError),
    ],
)
def test_status_translation(stub: Stub, answer: tuple[int, dict[str, str], bytes], exc: type[Exception]) -> None:
    stub.on("POST", "/v1.0/users/x/assignLicense", answer)
    with make_tenant(stub) as t, pytest.raises(exc) as info:
        t.http.request("POST", "/users/x/assignLicense", content=b"{}")
    err = info.value
    assert err.status == answer[0]  # type: ignore[attr-defined]
    assert err.request_id  # type: ignore[attr-defined]
    if answer[0] == 429:
        assert err.retry_after == pytest.approx(2.128)  # type: ignore[attr-defined]
        assert err.code == "TooManyRequests"  # type: ignore[attr-defined]
    if answer[0] == 503:
        assert err.retry_after == 7.0  # type: ignore[attr-defined]
    assert SANDBOX_DEV_TOKEN not in str(err)


def test_dropped_connection_is_unreachable_and_chained(stub: Stub) -> None:
    stub.on("POST", "/v1.0/$batch", DROP)
    with make_tenant(stub) as t, pytest.raises(TenantUnreachableError) as info:
        t.http.request("POST", "/$batch", content=b"{}")
    assert isinstance(info.value.__cause__, httpx.HTTPError)


def test_connection_refused_is_unreachable() -> None:
    s = Stub().start()
    url = s.url
    s.stop()  # nothing listens on that port any more
    t = Tenant(Target(name="gone", graph_url=url, powerplatform_url=url), Limits(max_attempts=2), sleep=Sleeps())
    with t, pytest.raises(TenantUnreachableError) as info:
        t.http.get_json("/subscribedSkus")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert t.requests == 1  # the first contact: not retried (a wrong URL or a blocked network does not heal)


def test_read_timeout_is_unreachable(stub: Stub) -> None:
    import time

    def slow(_s: Seen) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.5)
        return js({"value": []})

    stub.on("GET", "/v1.0/subscribedSkus", slow)
    with make_tenant(stub, request_timeout_seconds=0.1, max_attempts=1) as t, pytest.raises(TenantUnreachableError):
        t.http.get_json("/subscribedSkus")


# ------------------------------------------------------------------------------------------ retries


def test_get_retries_on_429_honouring_fractional_retry_after(stub: Stub) -> None:
    stub.on(
        "GET", "/v1.0/subscribedSkus",
        graph_error(429, "TooManyRequests", Retry_After="2.128"),
        graph_error(503, "ServiceUnavailable"),
        js({"value": []}),
    )  # fmt: skip
    sleeps = Sleeps()
    with make_tenant(stub, sleeps) as t:
        assert t.http.get_json("/subscribedSkus") == {"value": []}
        assert t.requests == 3
        assert t.http.stats.retries == 2
        assert t.http.stats.throttled == 1
    assert 2.128 <= sleeps[0] <= 2.128 * 1.1
    # the 429 waited without using up an attempt: the 503 gets the first backoff (base 1 s, with jitter)
    assert 0.5 <= sleeps[1] <= 1.0


def test_get_retry_after_http_date(stub: Stub) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    stub.on("GET", "/v1.0/subscribedSkus", graph_error(429, "TooManyRequests", Retry_After=when), js({"value": []}))
    sleeps = Sleeps()
    with make_tenant(stub, sleeps) as t:
        t.http.get_json("/subscribedSkus")
    assert 15 <= sleeps[0] <= 22


def test_get_gives_up_after_max_attempts(stub: Stub) -> None:
    stub.on("GET", "/v1.0/subscribedSkus", graph_error(503, "ServiceUnavailable"))
    sleeps = Sleeps()
    with make_tenant(stub, sleeps, max_attempts=4) as t, pytest.raises(ServiceUnavailableError):
        t.http.get_json("/subscribedSkus")
    assert len(sleeps) == 3
    assert sleeps[2] > sleeps[0] * 1.5 or sleeps[2] >= 2.0  # grows exponentially (base 1 s: 1, 2, 4 with jitter)


def test_writes_are_not_retried(stub: Stub) -> None:
    stub.on("POST", "/v1.0/users/x/assignLicense", graph_error(503, "ServiceUnavailable"))
    with make_tenant(stub) as t, pytest.raises(ServiceUnavailableError):
        t.http.request("POST", "/users/x/assignLicense", content=b"{}")
    assert t.requests == 1


def test_401_refreshes_the_token_once(stub: Stub) -> None:
    stub.on("GET", "/v1.0/subscribedSkus", graph_error(401, "InvalidAuthenticationToken"), js({"value": []}))
    with make_tenant(stub) as t:
        t.http.get_json("/subscribedSkus")
        assert t.tokens.fetched == 2
    stub.on("GET", "/v1.0/subscribedSkus", graph_error(401, "InvalidAuthenticationToken"))
    with make_tenant(stub) as t, pytest.raises(AuthenticationError):
        t.http.get_json("/subscribedSkus")


# ------------------------------------------------------------------------------------------ headers


def test_headers_token_and_request_ids(stub: Stub) -> None:
    stub.on("GET", "/v1.0/subscribedSkus", js({"value": []}, request_id="server-rid"))
    with make_tenant(stub) as t:
        r1 = t.http.request("GET", "/subscribedSkus")
        r2 = t.http.request("GET", "/subscribedSkus")
    assert r1.request_id == "server-rid"
    a, b = stub.seen
    assert a.headers["authorization"] == f"Bearer {SANDBOX_DEV_TOKEN}"
    assert a.headers["client-request-id"] == r1.client_request_id
    assert a.headers["client-request-id"] != b.headers["client-request-id"]
    assert r2.client_request_id == b.headers["client-request-id"]


def test_token_from_environment_for_loopback(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", "other-token")
    stub.on("GET", "/v1.0/subscribedSkus", js({"value": []}))
    with make_tenant(stub) as t:
        t.http.get_json("/subscribedSkus")
    assert stub.seen[0].headers["authorization"] == "Bearer other-token"


def test_token_is_cached_and_hidden() -> None:
    tp = TokenProvider(StaticTokenCredential("secret-value"))
    assert tp.token("s") == tp.token("s") == "secret-value"
    assert tp.fetched == 1
    assert "secret-value" not in repr(tp) and "secret-value" not in repr(tp.credential.get_token("s"))


def test_next_link_to_another_host_is_refused(stub: Stub) -> None:
    with make_tenant(stub) as t, pytest.raises(ServiceError):
        t.http.request("GET", "https://evil.example/v1.0/users?$skiptoken=x")


# ------------------------------------------------------------------------------------------- paths


def test_guest_upn_path_encodes_hash() -> None:
    upn = "anna_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    assert user_path(upn) == "/users/anna_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
    assert user_path("a/b?c@x.com") == "/users/a%2Fb%3Fc@x.com"
    assert user_path("o'neil+x@contoso.com") == "/users/o%27neil%2Bx@contoso.com"
    assert user_path("$adele@contoso.com") == "/users('%24adele@contoso.com')"


def test_guest_upn_reaches_the_server_encoded(stub: Stub) -> None:
    stub.on("GET", "/v1.0/users/anna_fabrikam.com%23EXT%23@contoso.onmicrosoft.com", js({"id": "1"}))
    with make_tenant(stub) as t:
        assert t.http.get_json(user_path("anna_fabrikam.com#EXT#@contoso.onmicrosoft.com")) == {"id": "1"}


# ------------------------------------------------------------------------------------------- $batch


def test_build_batch_rules() -> None:
    with pytest.raises(ValueError, match="at most 20"):
        build_batch([{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)])
    with pytest.raises(ValueError, match="relative"):
        build_batch([{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}])
    with pytest.raises(ValueError, match="Duplicate"):
        build_batch([{"id": "1", "url": "/a"}, {"id": "1", "url": "/b"}])
    with pytest.raises(ValueError, match="depends"):
        build_batch([{"id": "1", "url": "/a", "dependsOn": ["2"]}, {"id": "2", "url": "/b"}])
    body = orjson.loads(
        build_batch(
            [
                {"id": "a", "method": "PATCH", "url": "/users/u1", "body": {"usageLocation": "DE"}},
                {
                    "id": "b",
                    "method": "POST",
                    "url": "users/u1/assignLicense",
                    "body": {"addLicenses": [], "removeLicenses": []},
                    "dependsOn": ["a"],
                },
                {"id": "c", "method": "GET", "url": "/users/u2"},
            ]
        )
    )
    a, b, c = body["requests"]
    assert a["headers"] == {"Content-Type": "application/json"} and a["body"] == {"usageLocation": "DE"}
    assert b["url"] == "/users/u1/assignLicense" and b["dependsOn"] == ["a"]
    assert b["body"] == {"addLicenses": [], "removeLicenses": []}  # empty arrays kept
    assert "headers" not in c and "body" not in c


def test_post_batch_matches_replies_by_id_out_of_order(stub: Stub) -> None:
    def answer(s: Seen) -> tuple[int, dict[str, str], bytes]:
        reqs = orjson.loads(s.body)["requests"]
        out = [
            {"id": r["id"], "status": 200 + i, "headers": {"Retry-After": str(i)}, "body": {"n": r["id"]}}
            for i, r in enumerate(reqs)
        ]
        out.reverse()
        out.pop()  # the first request goes unanswered
        return js({"responses": out}, request_id="env-rid")

    stub.on("POST", "/v1.0/$batch", answer)
    items = [{"id": f"op{i}", "method": "POST", "url": f"/users/u{i}/assignLicense", "body": {}} for i in range(5)]

    async def go() -> None:
        t = make_tenant(stub)
        try:
            reply = await t.post_batch(items)
        finally:
            await t.aclose()
        assert reply.request_id == "env-rid"
        assert reply.missing == ("op0",)
        assert set(reply) == {"op1", "op2", "op3", "op4"}
        for i in range(1, 5):
            status, headers, body = reply[f"op{i}"]
            assert status == 200 + i and body == {"n": f"op{i}"}
            assert reply[f"op{i}"].retry_after == float(i)
            assert headers["retry-after"] == str(i)

    asyncio.run(go())
    sent = orjson.loads(stub.seen[0].body)["requests"]
    assert all(r["headers"]["Content-Type"] == "application/json" for r in sent)
    assert stub.seen[0].headers["content-type"] == "application/json"


def test_post_batch_item_errors_are_data_envelope_errors_raise(stub: Stub) -> None:
    throttled = {"error": {"code": "TooManyRequests", "message": "Please retry again later."}}
    stub.on(
        "POST", "/v1.0/$batch",
        js({"responses": [{"id": "1", "status": 429, "headers": {"Retry-After": "2.5"}, "body": throttled}]}),
        graph_error(429, "TooManyRequests", Retry_After="3"),
        graph_error(503, "ServiceUnavailable"),
        DROP,
    )  # fmt: skip
    items = [{"id": "1", "method": "POST", "url": "/users/u/assignLicense", "body": {}}]

    async def go() -> None:
        async with make_tenant(stub) as t:
            reply = await t.post_batch(items)
            assert reply["1"].status == 429 and reply["1"].retry_after == 2.5
            assert reply["1"].error_code == "TooManyRequests"
            with pytest.raises(ThrottledError) as info:
                await t.post_batch(items)
            assert info.value.retry_after == 3.0
            with pytest.raises(ServiceUnavailableError):
                await t.post_batch(items)
            with pytest.raises(TenantUnreachableError) as drop:
                await t.post_batch(items)
            assert isinstance(drop.value.__cause__, httpx.HTTPError)
            assert t.requests == 4  # writes are never retried by the client

    asyncio.run(go())


def test_async_client_survives_a_second_event_loop(stub: Stub) -> None:
    stub.on("POST", "/v1.0/$batch", js({"responses": [{"id": "1", "status": 204, "headers": {}, "body": None}]}))
    t = make_tenant(stub)

    async def once() -> int:
        reply = await t.post_batch([{"id": "1", "method": "PATCH", "url": "/users/u", "body": {"usageLocation": "DE"}}])
        await t.aclose()
        return reply["1"].status

    assert asyncio.run(once()) == 204
    assert asyncio.run(once()) == 204
    t.close()


def test_http_client_pool_and_timeouts_follow_limits() -> None:
    tp = TokenProvider(StaticTokenCredential("x"))
    h = HttpClient("http://127.0.0.1:9/v1.0/", tp, "s", Limits(request_timeout_seconds=42, max_in_flight=3))
    assert h.base_url == "http://127.0.0.1:9/v1.0"
    assert h.client.timeout.read == 42 and h.client.timeout.connect == 5
    h.close()
