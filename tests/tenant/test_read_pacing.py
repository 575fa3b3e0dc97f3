"""Reads are paced in Graph's resource units and a throttled read waits (cloud-facts "Graph: throttling").

Unit tests of the cost model and the budget on an injected clock; then snapshots against the sandbox over
real HTTP with a small resource-unit quota, three in a row on one server (its quota is shared by the runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.config import Limits, Target
from batch.tenant import Tenant
from batch.tenant.reads import ReadBudget, read_cost, resource_units_for

from .conftest import start_sandbox


@pytest.mark.parametrize(
    ("url", "units"),
    [
        ("/subscribedSkus", 3),
        ("/subscribedSkus?$select=skuId", 2),
        ("/users?$select=id,userPrincipalName&$top=999", 1),
        ("/users", 2),
        ("/users/alice@contoso.com?$select=id", 1),
        ("/users/alice@contoso.com", 2),
        ("/users/alice@contoso.com/licenseDetails", 2),
        ("/users?$top=5", 1),
        ("/users/x?$expand=memberOf", 3),
        ("/users/$count", 1),
        ("https://graph.microsoft.com/v1.0/users?$select=id&$skiptoken=abc", 1),
        ("/groups/g?$select=id,displayName", 1),
    ],
)
def test_read_costs(url: str, units: int) -> None:
    assert read_cost(url) == units


def test_quota_by_tenant_size() -> None:
    assert [resource_units_for(n) for n in (None, 10, 49, 50, 500, 501, 500_000)] == [
        3500, 3500, 3500, 5000, 5000, 8000, 8000]


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def test_budget_spends_the_window_then_waits_for_it() -> None:
    ft = FakeTime()
    b = ReadBudget(Limits(quota_headroom=1.0), clock=ft.clock, sleep=ft.sleep)
    b.set_tenant_size(500_000)
    assert b.quota == 8000
    for _ in range(400):  # 400 $batch of 20 look-ups at 1 unit: the whole window at once
        assert b.acquire(20) == 0.0
    assert ft.sleeps == []
    b.acquire(20)  # the 401st waits until the first ones leave the 10 s window (+ its margin)
    assert ft.sleeps == [pytest.approx(10.1)]
    assert b.stats.units == 8020 and b.stats.throttled == 0


def test_writes_count_in_the_read_budget_without_waiting() -> None:
    ft = FakeTime()
    b = ReadBudget(Limits(quota_headroom=1.0, resource_unit_quota=100), clock=ft.clock, sleep=ft.sleep)
    b.spend(90)  # 90 writes at 1 unit
    assert b.delay(10) == 0.0 and b.delay(11) == pytest.approx(10.1)
    b.acquire(20)
    assert ft.sleeps == [pytest.approx(10.1)] and b.stats.units == 110


def test_throttled_pauses_every_reader_for_retry_after_and_lowers_the_budget() -> None:
    ft = FakeTime()
    b = ReadBudget(Limits(quota_headroom=1.0, resource_unit_quota=1000), clock=ft.clock, sleep=ft.sleep)
    sent = b.now()
    b.acquire(10)
    pause = b.on_throttled(2.128, sent_at=sent)
    assert 2.138 <= pause <= 2.138 + 0.05
    b.acquire(10)
    assert ft.sleeps == [pause] and b.stats.throttled == 1
    assert b.quota == 1000  # one 429: Retry-After honoured, the budget kept
    b.on_throttled(None, sent_at=b.now(), fallback=0.5)  # sent after the first 429 and throttled again
    assert b.quota == 700
    assert b.stats.throttle_wait_s == pytest.approx(sum(ft.sleeps) + b.pause_until - b.now())


def _snapshot_three_times(db: Path, limits: Limits, keys_count: int, quota: int) -> list[tuple[int, int, int]]:
    server, _summary = start_sandbox(db, 700, 5, resource_unit_quota=quota, time_scale=20, latency=0)
    try:
        target = Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)
        with Tenant(target, Limits(quota_headroom=1.0, resource_unit_quota=100_000)) as t:
            everyone = t.graph.list_users()
        keys = [u.upn for u in everyone][:keys_count]
        runs = []
        for _ in range(3):
            with Tenant(target, limits) as t:
                snap = t.snapshot(keys, strategy="lookup")
                runs.append((len(snap.users), t.read_budget.stats.throttled, t.read_budget.stats.units))
        return runs
    finally:
        server.stop()


def test_lookups_paced_to_the_quota_are_not_throttled(tmp_path: Path) -> None:
    # the client knows the tenant's quota (300 units per 10 s, on a clock 20x faster): it stays under it
    limits = Limits(resource_unit_quota=300, resource_unit_window_seconds=0.5, max_in_flight=4)
    runs = _snapshot_three_times(tmp_path / "t.db", limits, 600, quota=300)
    assert [(n, throttled) for n, throttled, _units in runs] == [(600, 0)] * 3
    # subscribedSkus 3, 600 look-ups at 1 unit, the licensing groups at 1 each
    assert all(units > 3 + 600 for _n, _t, units in runs), runs


def test_throttled_lookups_wait_and_every_run_succeeds(tmp_path: Path) -> None:
    # the client believes in 3x the tenant's quota (300 units per 10 s, 0.5 s here): Graph throttles it,
    # and each read waits for Retry-After (integer, fractional or HTTP-date: the sandbox sends all three)
    # instead of failing the run; max_attempts=2 would have failed it before reads were paced
    limits = Limits(resource_unit_quota=900, resource_unit_window_seconds=0.5, max_in_flight=4, max_attempts=2)
    runs = _snapshot_three_times(tmp_path / "t.db", limits, 600, quota=300)
    assert [n for n, _t, _u in runs] == [600, 600, 600]
    assert sum(throttled for _n, throttled, _u in runs) > 0
