"""Throttling (writes, resource units, Power Platform), Retry-After forms, time_scale, seeded faults."""

from __future__ import annotations

import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch.sandbox import SandboxConfig, SandboxServer
from batch.sandbox.limits import Chaos

from .conftest import start
from .sbtest import assert_graph_error, upn


def patch(g: httpx.Client, i: int) -> httpx.Response:
    return g.patch(f"/users/{upn('pradeep.gupta')}", json={"jobTitle": f"title {i}"})


def client(sb: SandboxServer, **kw: Any) -> httpx.Client:
    return httpx.Client(base_url=sb.graph_url, headers=sb.auth_headers, **kw)


def test_write_quota_429_shape(db: Path) -> None:
    with start(db, write_quota=3, write_window_seconds=300, retry_after_fractional_rate=0,
               retry_after_http_date_rate=0) as sb, client(sb) as g:  # fmt: skip
        assert [patch(g, i).status_code for i in range(3)] == [204, 204, 204]
        r = patch(g, 3)
        err = assert_graph_error(r, 429, "TooManyRequests")
        assert err["message"] == "Please retry again later."
        assert re.fullmatch(r"\d+", r.headers["Retry-After"]) and int(r.headers["Retry-After"]) >= 1
        assert r.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
        assert r.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
        # reads still pass: the resource-unit quota is separate
        assert g.get("/users/" + upn("adele.vance")).status_code == 200
        # requests made while throttled still count: the wait grows
        first = int(r.headers["Retry-After"])
        for i in range(5):
            r = patch(g, 10 + i)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > first


def test_time_scale_shrinks_the_window_and_retry_after(db: Path) -> None:
    with start(db, write_quota=2, write_window_seconds=150, time_scale=300) as sb, client(sb) as g:
        assert [patch(g, i).status_code for i in range(2)] == [204, 204]
        r = patch(g, 2)
        assert r.status_code == 429
        wait = float(r.headers["Retry-After"])  # 150 s / 300 = 0.5 s window: a fractional value
        assert 0 < wait < 1
        time.sleep(wait + 0.05)
        assert patch(g, 3).status_code == 204


def test_resource_unit_quota(db: Path) -> None:
    with start(db, resource_unit_quota=5, resource_unit_window_seconds=60) as sb, client(sb) as g:
        first = g.get("/subscribedSkus")
        assert first.status_code == 200 and first.headers["x-ms-resource-unit"] == "3"
        r = g.get("/subscribedSkus")
        assert r.status_code == 429
        assert r.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"


def test_retry_after_fractional_and_http_date_forms(db: Path) -> None:
    with start(db, write_quota=1, write_window_seconds=600, retry_after_fractional_rate=1.0) as sb, client(sb) as g:
        patch(g, 0)
        assert re.fullmatch(r"\d+\.\d{3}", patch(g, 1).headers["Retry-After"])
    with start(db, write_quota=1, write_window_seconds=600, retry_after_fractional_rate=0.0,
               retry_after_http_date_rate=1.0) as sb, client(sb) as g:  # fmt: skip
        patch(g, 0)
        when = parsedate_to_datetime(patch(g, 1).headers["Retry-After"])
        assert when.timestamp() > time.time()


def test_throttling_can_be_switched_off(db: Path) -> None:
    with start(db, write_quota=1, throttling=False) as sb, client(sb) as g:
        assert {patch(g, i).status_code for i in range(5)} == {204}


def test_power_platform_request_quota(db: Path) -> None:
    sb = start(db, powerplatform_request_quota=2, powerplatform_window_seconds=120)
    with sb, httpx.Client(base_url=sb.powerplatform_url, headers=sb.auth_headers) as p:
        url = "/licensing/tenantCapacity/currencyReports?api-version=2024-10-01"
        assert [p.get(url).status_code for _ in range(2)] == [200, 200]
        r = p.get(url)
        assert r.status_code == 429 and float(r.headers["Retry-After"]) > 0
        assert r.json()["error"]["code"] == "TooManyRequests"


@pytest.mark.parametrize(("share", "has_retry"), [(1.0, True), (0.0, False)])
def test_fault_503(db: Path, share: float, has_retry: bool) -> None:
    with start(db, fault_503_rate=1.0, fault_503_retry_after_share=share) as sb, client(sb) as g:
        r = g.get("/users")
        assert_graph_error(r, 503, "serviceNotAvailable")
        assert ("Retry-After" in r.headers) is has_retry


def test_fault_504(db: Path) -> None:
    with start(db, fault_504_rate=1.0) as sb, client(sb) as g:
        assert_graph_error(g.get("/subscribedSkus"), 504, "UnknownError")


def test_dropped_connections_before_and_after_the_effect(db: Path) -> None:
    with start(db, fault_drop_rate=1.0, fault_seed=3) as sb:
        for i in range(12):
            with client(sb) as g, pytest.raises(httpx.TransportError):
                g.patch(f"/users/{upn('pradeep.gupta')}", json={"officeLocation": f"room {i}"})
    import sqlite3

    con = sqlite3.connect(db)
    office = con.execute("SELECT office_location FROM users WHERE upn_lower=?", (upn("pradeep.gupta"),)).fetchone()[0]
    con.close()
    assert office.startswith("room ")  # at least one dropped request had taken effect


def test_slow_responses(db: Path) -> None:
    sb = start(db, fault_slow_rate=1.0, slow_seconds=2.0)
    with sb, client(sb, timeout=0.2) as g, pytest.raises(httpx.ReadTimeout):
        g.get("/users")


def test_faults_replay_with_the_same_seed(db: Path) -> None:
    def run() -> list[int]:
        with start(db, fault_503_rate=0.3, fault_504_rate=0.2, fault_seed=42) as sb, client(sb) as g:
            return [g.get("/users/" + upn("adele.vance")).status_code for _ in range(30)]

    a, b = run(), run()
    assert a == b and {200, 503, 504} <= set(a)


def test_batch_items_fail_on_their_own(db: Path) -> None:
    with start(db, fault_503_rate=0.3, fault_seed=7) as sb, client(sb) as g:
        reqs = [{"id": str(i), "method": "GET", "url": "/users/" + upn("adele.vance")} for i in range(20)]
        seen: set[int] = set()
        for _ in range(5):
            r = g.post("/$batch", json={"requests": reqs})
            if r.status_code == 200:
                seen |= {x["status"] for x in r.json()["responses"]}
        assert {200, 503} <= seen


def test_latency_model_is_bounded_and_off_by_default() -> None:
    assert Chaos(SandboxConfig()).latency(100) == 0.0
    ch = Chaos(SandboxConfig(latency=1.0, latency_jitter=0.3))
    draws = [ch.latency(100) for _ in range(200)]
    assert all(0.07 <= d <= 0.13 for d in draws) and len(set(draws)) > 1
