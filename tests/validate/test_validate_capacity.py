"""Net capacity: STOP vs PARTIAL, priority, reserve, freed seats and ordering effects."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from batch.errors import ConfigError
from batch.models import Action, LicenseRequest, RequestStatus, ShortfallPolicy, TenantSnapshot, User, Validation
from batch.validate import parse_reserve, validate

from .builders import E3, E5, GROUP_SALES, req, sheet_for, sku, snapshot, user

A, R, X = Action.ASSIGN, Action.REMOVE, Action.REPLACE
STOP, PARTIAL = ShortfallPolicy.STOP, ShortfallPolicy.PARTIAL
READY, OVER = RequestStatus.READY, RequestStatus.OVER_CAPACITY


def run(snap: TenantSnapshot, requests: Sequence[LicenseRequest], **kw: object) -> Validation:
    return validate(sheet_for(requests), list(requests), snap, **kw)  # type: ignore[arg-type]


def users(n: int, prefix: str = "u", **kw: object) -> list[User]:
    return [user(f"{prefix}{i:04d}@contoso.com", **kw) for i in range(n)]  # type: ignore[arg-type]


def test_cloud_facts_example_net_need_passes() -> None:
    """1,000 rows, 50 free seats, only 40 users need one: the wave goes ahead."""
    holders = users(960, "has", direct={E5: ()})
    newcomers = users(40, "new")
    snap = snapshot([sku("SPE_E5", E5, enabled=1010, consumed=960)], holders + newcomers)
    rows = [req(i, u.upn, A, "SPE_E5") for i, u in enumerate(holders + newcomers)]
    v = run(snap, rows)
    assert not v.wave_refused
    (line,) = v.capacity
    assert (line.needed, line.freed, line.available, line.short) == (40, 0, 50, 0)
    statuses = [c.status for c in v.requests]
    assert statuses.count(RequestStatus.UNCHANGED) == 960 and statuses.count(READY) == 40


def test_group_holder_takes_no_seat() -> None:
    snap = snapshot([sku("SPE_E5", E5, enabled=1, consumed=1)], [user("a@contoso.com", groups={E5: GROUP_SALES})])
    v = run(snap, [req(0, "a@contoso.com", A, "SPE_E5")])
    assert v.requests[0].status is READY and not v.wave_refused
    assert v.capacity == []


def test_stop_refuses_the_wave_and_marks_only_the_short_sku() -> None:
    snap = snapshot(
        [sku("SPE_E5", E5, enabled=10, consumed=8), sku("SPE_E3", E3, enabled=10, consumed=0)],
        users(5),
    )
    rows = [req(i, f"u{i:04d}@contoso.com", A, "SPE_E5") for i in range(5)] + [req(5, "u0000@contoso.com", A, "SPE_E3")]
    v = run(snap, rows)
    assert v.wave_refused
    assert [c.status for c in v.requests] == [OVER] * 5 + [READY]
    f = v.requests[0].findings[0]
    assert f.code == "capacity-shortfall"
    assert "2 available" in f.message and "needs 5 net" in f.message and "short by 3" in f.message
    assert "SPE_E5" in f.message and f.fix
    e5 = next(c for c in v.capacity if c.sku_id == E5)
    assert (e5.needed, e5.freed, e5.short) == (5, 0, 3)


def test_removals_free_seats_for_the_same_sheet() -> None:
    leavers = users(3, "old", direct={E5: ()})
    snap = snapshot([sku("SPE_E5", E5, enabled=10, consumed=10)], leavers + users(3, "new"))
    rows = [req(i, f"old{i:04d}@contoso.com", R, "SPE_E5") for i in range(3)]
    rows += [req(3 + i, f"new{i:04d}@contoso.com", A, "SPE_E5") for i in range(3)]
    v = run(snap, rows)
    assert not v.wave_refused
    assert all(c.status is READY for c in v.requests)


def test_invalid_removals_free_nothing() -> None:
    snap = snapshot(
        [sku("SPE_E5", E5, enabled=1, consumed=1)],
        [user("old@contoso.com", groups={E5: GROUP_SALES}), user("new@contoso.com")],
    )
    v = run(snap, [req(0, "old@contoso.com", R, "SPE_E5"), req(1, "new@contoso.com", A, "SPE_E5")])
    assert v.requests[0].status is RequestStatus.ERROR
    assert v.requests[1].status is OVER and v.wave_refused


def test_replace_swaps_need_no_net_seat() -> None:
    """Everyone E3 -> E5 with E5 full except what... E3 seats are freed; E5 must have room."""
    holders = users(4, direct={E3: ()})
    snap = snapshot([sku("SPE_E3", E3, enabled=4, consumed=4), sku("SPE_E5", E5, enabled=4, consumed=0)], holders)
    v = run(snap, [req(i, u.upn, X, "SPE_E5", from_sku="SPE_E3") for i, u in enumerate(holders)])
    assert not v.wave_refused
    by = {c.sku_id: c for c in v.capacity}
    assert (by[E3].needed, by[E3].freed) == (0, 4)
    assert (by[E5].needed, by[E5].freed) == (4, 0)


def test_partial_keeps_priority_then_sheet_order() -> None:
    snap = snapshot([sku("SPE_E5", E5, enabled=3, consumed=0)], users(6))
    prios = [None, 5, None, 1, 5, None]
    rows = [req(i, f"u{i:04d}@contoso.com", A, "SPE_E5", priority=p) for i, p in enumerate(prios)]
    v = run(snap, rows, policy=PARTIAL)
    assert not v.wave_refused
    # served: priority 1 (row 3), then 5 (rows 1, 4); then the unprioritised rows are over capacity
    assert [c.status for c in v.requests] == [OVER, READY, OVER, READY, READY, OVER]
    f = v.requests[0].findings[0]
    assert f.code == "over-capacity" and f.message.startswith("Skipped: over capacity")
    assert "u0000@contoso.com" in f.message
    # the capacity lines still show the sheet's whole demand
    assert v.capacity[0].needed == 6 and v.capacity[0].short == 3


def test_partial_counts_freed_seats() -> None:
    snap = snapshot([sku("SPE_E5", E5, enabled=2, consumed=2)], users(2, "old", direct={E5: ()}) + users(3, "new"))
    rows = [req(i, f"new{i:04d}@contoso.com", A, "SPE_E5") for i in range(3)]
    rows += [req(3 + i, f"old{i:04d}@contoso.com", R, "SPE_E5") for i in range(2)]
    v = run(snap, rows, policy=PARTIAL)
    assert [c.status for c in v.requests] == [READY, READY, OVER, READY, READY]


def test_partial_replace_frees_for_earlier_waiting_row() -> None:
    """Row 0 needs E3 (none free); row 1 swaps E3 -> E5 and frees one: row 0 gets it."""
    snap = snapshot(
        [sku("SPE_E3", E3, enabled=1, consumed=1), sku("SPE_E5", E5, enabled=1, consumed=0)],
        [user("a@contoso.com"), user("b@contoso.com", direct={E3: ()})],
    )
    rows = [req(0, "a@contoso.com", A, "SPE_E3"), req(1, "b@contoso.com", X, "SPE_E5", from_sku="SPE_E3")]
    v = run(snap, rows, policy=PARTIAL)
    assert [c.status for c in v.requests] == [READY, READY]
    assert not run(snap, rows, policy=STOP).wave_refused


def test_partial_skipped_replace_frees_nothing() -> None:
    """The swap cannot get its E5 seat, so its E3 seat is not freed and the E3 newcomer is skipped too."""
    snap = snapshot(
        [sku("SPE_E3", E3, enabled=1, consumed=1), sku("SPE_E5", E5, enabled=1, consumed=1)],
        [user("a@contoso.com"), user("b@contoso.com", direct={E3: ()})],
    )
    rows = [req(0, "a@contoso.com", A, "SPE_E3"), req(1, "b@contoso.com", X, "SPE_E5", from_sku="SPE_E3")]
    v = run(snap, rows, policy=PARTIAL)
    assert [c.status for c in v.requests] == [OVER, OVER]
    # under STOP the net view is E3: 1 needed, 1 freed (fine) and E5 short
    s = run(snap, rows, policy=STOP)
    assert s.wave_refused and [c.status for c in s.requests] == [READY, OVER]


def test_partial_chain_of_swaps() -> None:
    """Seats flow along a chain of swaps in any sheet order."""
    snap = snapshot(
        [
            sku("SPE_E3", E3, enabled=1, consumed=1),
            sku("SPE_E5", E5, enabled=1, consumed=1),
            sku("SPE_F1", "66b55226-6b4f-492c-910c-a3b7a3c9d993", enabled=1, consumed=0),
        ],
        [user("a@contoso.com"), user("b@contoso.com", direct={E3: ()}), user("c@contoso.com", direct={E5: ()})],
    )
    rows = [
        req(0, "a@contoso.com", A, "SPE_E3"),
        req(1, "b@contoso.com", X, "SPE_E5", from_sku="SPE_E3"),
        req(2, "c@contoso.com", X, "SPE_F1", from_sku="SPE_E5"),
    ]
    v = run(snap, rows, policy=PARTIAL)
    assert [c.status for c in v.requests] == [READY, READY, READY]


@pytest.mark.parametrize(("reserve", "short"), [("0", 0), ("2", 2), ("20%", 2), ("10%", 1), ("19%", 2), (" 5 ", 5)])
def test_reserve(reserve: str, short: int) -> None:
    snap = snapshot([sku("SPE_E5", E5, enabled=10, consumed=2)], users(8))
    v = run(snap, [req(i, f"u{i:04d}@contoso.com", A, "SPE_E5") for i in range(8)], reserve=reserve)
    assert v.capacity[0].short == short
    assert v.wave_refused is bool(short)
    if short:
        assert "in reserve" in v.requests[0].findings[0].message


def test_percent_reserve_rounds_up_per_sku() -> None:
    f = parse_reserve("5%")  # takes a pool's purchased units (a SKU's prepaidUnits.enabled)
    assert f(sku("A", E3, enabled=101).enabled) == 6
    assert f(sku("A", E3, enabled=100).enabled) == 5
    assert f(sku("A", E3, enabled=0).enabled) == 0
    assert parse_reserve(3)(sku("A", E3).enabled) == 3


@pytest.mark.parametrize("bad", ["-1", "abc", "5 seats", "%", "101%", "-3%", "1.5", "nan%"])
def test_bad_reserve_is_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_reserve(bad)
    with pytest.raises(ConfigError):
        run(snapshot([], []), [], reserve=bad)


def test_capacity_findings_are_deterministic() -> None:
    snap = snapshot(
        [sku("SPE_E5", E5, enabled=3, consumed=0), sku("SPE_E3", E3, enabled=1, consumed=0)],
        users(10),
    )
    rows = [req(i, f"u{i:04d}@contoso.com", A, "SPE_E5" if i % 3 else "SPE_E3", priority=i % 4) for i in range(10)]
    for policy in (STOP, PARTIAL):
        a = run(snap, rows, policy=policy)
        b = run(snap, list(rows), policy=policy)
        assert [(c.status, c.findings) for c in a.requests] == [(c.status, c.findings) for c in b.requests]
        assert a.capacity == b.capacity
        assert [c.part_number for c in a.capacity] == ["SPE_E3", "SPE_E5"]


def test_validate_is_pure() -> None:
    snap = snapshot([sku("SPE_E5", E5, enabled=1)], users(2))
    rows = [req(0, "u0000@contoso.com", A, "SPE_E5"), req(1, "u0001@contoso.com", A, "SPE_E5")]
    before = (dict(snap.skus), dict(snap.users))
    run(snap, rows)
    assert (snap.skus, snap.users) == before
    assert all(r.findings == () for r in rows)
