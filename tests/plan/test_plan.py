"""batch.plan: one assignLicense per user, atomic swaps, merged disabled plans, usage-location dependency."""

from __future__ import annotations

import json
from collections.abc import Sequence

from validate.builders import E3, E5, EXCHANGE, GROUP_SALES, SWAY, TEAMS, YAMMER, req, sheet_for, sku, snapshot, user

from batch.models import Action, LicenseRequest, OpKind, Plan, RequestStatus, ShortfallPolicy, TenantSnapshot, User
from batch.plan import describe_operations, plan, render_plan
from batch.validate import validate

A, R, X = Action.ASSIGN, Action.REMOVE, Action.REPLACE
ALICE, BOB = "alice@contoso.com", "bob@contoso.com"


def tenant(*users: User, e5: int = 100, e5_used: int = 0) -> TenantSnapshot:
    return snapshot([sku("SPE_E3", E3), sku("SPE_E5", E5, enabled=e5, consumed=e5_used)], users)


def planned(snap: TenantSnapshot, requests: Sequence[LicenseRequest], **kw: object) -> Plan:
    v = validate(sheet_for(requests), list(requests), snap, **kw)  # type: ignore[arg-type]
    return plan(v)


def test_swap_is_one_atomic_call() -> None:
    u = user(ALICE, direct={E3: ()})
    p = planned(tenant(u), [req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3")])
    (op,) = p.operations
    assert op.kind is OpKind.ASSIGN_LICENSE and op.method == "POST"
    assert op.url == f"/users/{u.id}/assignLicense"
    assert op.key == f"{u.id}/assignLicense"
    assert op.body == {"addLicenses": [{"skuId": E5, "disabledPlans": []}], "removeLicenses": [E3]}
    assert op.before == (E3,) and op.after == (E5,)
    assert op.rows == (0,)
    assert {(s.part_number, s.takes, s.frees) for s in p.seats} == {("SPE_E3", 0, 1), ("SPE_E5", 1, 0)}


def test_rows_of_one_user_merge_into_one_operation() -> None:
    u = user(ALICE, direct={E3: ()})
    rows = [req(0, ALICE, R, "SPE_E3"), req(1, BOB, A, "SPE_E5"), req(2, ALICE, A, "SPE_E5", plans=("SWAY",))]
    p = planned(tenant(u, user(BOB)), rows)
    assert [op.target for op in p.operations] == [ALICE, BOB]  # first-row order
    op = p.operations[0]
    assert op.rows == (0, 2)
    assert op.body == {"addLicenses": [{"skuId": E5, "disabledPlans": [SWAY]}], "removeLicenses": [E3]}


def test_both_arrays_always_present() -> None:
    u = user(ALICE, direct={E3: ()})
    (op,) = planned(tenant(u), [req(0, ALICE, R, "SPE_E3")]).operations
    assert op.body == {"addLicenses": [], "removeLicenses": [E3]}
    (op,) = planned(tenant(user(BOB)), [req(0, BOB, A, "SPE_E3")]).operations
    assert op.body == {"addLicenses": [{"skuId": E3, "disabledPlans": []}], "removeLicenses": []}
    json.dumps(op.body)  # plain JSON


def test_disabled_plans_are_merged_with_what_the_user_has() -> None:
    u = user(ALICE, direct={E5: (TEAMS, YAMMER)})
    (op,) = planned(tenant(u), [req(0, ALICE, A, "SPE_E5", plans=("SWAY", "TEAMS1"))]).operations
    assert op.add == ((E5, tuple(sorted({TEAMS, YAMMER, SWAY}))),)
    assert op.body["addLicenses"] == [{"skuId": E5, "disabledPlans": sorted({TEAMS, YAMMER, SWAY})}]


def test_disabled_plans_of_other_skus_are_not_lost() -> None:
    """Assigning E5 to someone with E3 (Teams disabled) does not touch E3 at all."""
    u = user(ALICE, direct={E3: (TEAMS,)})
    (op,) = planned(tenant(u), [req(0, ALICE, A, "SPE_E5", plans=("EXCHANGE_S_ENTERPRISE",))]).operations
    assert op.body == {"addLicenses": [{"skuId": E5, "disabledPlans": [EXCHANGE]}], "removeLicenses": []}
    assert op.after == (E3, E5)


def test_usage_location_goes_first_and_the_assignment_depends_on_it() -> None:
    u = user(ALICE, location=None)
    p = planned(tenant(u), [req(0, ALICE, A, "SPE_E5", location="DE")])
    loc, asg = p.operations
    assert loc.kind is OpKind.SET_USAGE_LOCATION and loc.method == "PATCH"
    assert loc.url == f"/users/{u.id}" and loc.body == {"usageLocation": "DE"}
    assert loc.key == f"{u.id}/setUsageLocation"
    assert asg.depends_on == loc.key and loc.depends_on is None
    assert loc.rows == asg.rows == (0,)


def test_location_only_change() -> None:
    u = user(ALICE, location="US", direct={E5: ()})
    (op,) = planned(tenant(u), [req(0, ALICE, A, "SPE_E5", location="FR")]).operations
    assert op.kind is OpKind.SET_USAGE_LOCATION and op.body == {"usageLocation": "FR"}


def test_guest_uses_object_id_in_url() -> None:
    guest = "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    u = user(guest, guest=True)
    (op,) = planned(tenant(u), [req(0, guest, A, "SPE_E5")]).operations
    assert "#" not in op.url and op.url == f"/users/{u.id}/assignLicense" and op.target == guest


def test_nothing_for_unchanged_error_or_over_capacity() -> None:
    snap = tenant(user(ALICE, direct={E5: ()}), user(BOB), user("carol@contoso.com"), e5=2, e5_used=1)
    rows = [
        req(0, ALICE, A, "SPE_E5"),  # unchanged
        req(1, "nobody@contoso.com", A, "SPE_E5"),  # error
        req(2, BOB, A, "SPE_E5"),  # gets the last seat
        req(3, "carol@contoso.com", A, "SPE_E5"),  # over capacity
    ]
    p = planned(snap, rows, policy=ShortfallPolicy.PARTIAL)
    statuses = [c.status for c in p.validation.requests]
    assert statuses == [RequestStatus.UNCHANGED, RequestStatus.ERROR, RequestStatus.READY, RequestStatus.OVER_CAPACITY]
    assert [op.target for op in p.operations] == [BOB]
    assert [(s.part_number, s.takes) for s in p.seats] == [("SPE_E5", 1)]


def test_refused_wave_plans_nothing() -> None:
    snap = tenant(user(ALICE), user(BOB), e5=1)
    p = planned(snap, [req(0, ALICE, A, "SPE_E5"), req(1, BOB, A, "SPE_E5"), req(2, BOB, A, "SPE_E3")])
    assert p.validation.wave_refused
    assert p.operations == [] and p.seats == []
    lines = render_plan(p)
    assert "refused" in lines[0] and any("short by 1" in x for x in lines)


def test_inherited_and_direct_keeps_the_license_after_remove() -> None:
    u = user(ALICE, direct={E3: ()}, groups={E3: GROUP_SALES})
    p = planned(tenant(u), [req(0, ALICE, R, "SPE_E3")])
    (op,) = p.operations
    assert op.remove == (E3,) and op.after == (E3,)
    assert [(s.takes, s.frees) for s in p.seats] == []


def test_plan_is_deterministic() -> None:
    users = [
        user(f"u{i}@contoso.com", direct={E3: (TEAMS,)} if i % 2 else None, location=None if i % 3 else "US")
        for i in range(30)
    ]
    rows = []
    for i, u in enumerate(users):
        if i % 2:
            rows.append(req(i, u.upn, X, "SPE_E5", from_sku="SPE_E3", plans=("SWAY", "TEAMS1"), location="DE"))
        else:
            rows.append(req(i, u.upn, A, "SPE_E3", plans=("YAMMER_ENTERPRISE", "SWAY"), location="FR"))
    a = planned(tenant(*users), rows)
    b = planned(tenant(*users), list(rows))
    assert [(o.key, json.dumps(o.body), o.rows, o.depends_on) for o in a.operations] == [
        (o.key, json.dumps(o.body), o.rows, o.depends_on) for o in b.operations
    ]
    keys = [o.key for o in a.operations]
    assert len(keys) == len(set(keys))


def test_render_lines() -> None:
    u = user(ALICE, location="US", direct={E3: ()})
    p = planned(
        tenant(u, user(BOB)),
        [req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3", plans=("SWAY",), location="DE"), req(1, BOB, A, "SPE_E3")],
    )
    assert describe_operations(p) == [
        "alice@contoso.com: + SPE_E5 (disabled: SWAY), - SPE_E3; set usage location DE",
        "bob@contoso.com: + SPE_E3",
    ]
    lines = render_plan(p, limit=1)
    assert lines[0].startswith("3 operations for 2 users")
    assert "... and 1 more" in lines
    assert any("SPE_E5: takes 1, frees 0" in x for x in lines)


def test_location_given_on_one_row_serves_the_users_other_rows() -> None:
    u = user(ALICE, location=None)
    rows = [req(0, ALICE, A, "NOPE_E9", location="DE"), req(1, ALICE, A, "SPE_E3")]
    p = planned(tenant(u), rows)
    c0, c1 = p.validation.requests
    assert c0.status is RequestStatus.ERROR
    assert c1.status is RequestStatus.READY and c1.usage_location == "DE"
    loc, asg = p.operations
    assert loc.body == {"usageLocation": "DE"} and loc.rows == (1,) and asg.depends_on == loc.key


def test_disagreeing_locations_leave_the_silent_row_without_one() -> None:
    u = user(ALICE, location=None)
    rows = [
        req(0, ALICE, A, "SPE_E5", location="DE"),
        req(1, ALICE, A, "SPE_E3", location="FR"),
        req(2, ALICE, R, "SPE_E3"),
        req(3, ALICE, A, "O365_BUSINESS_PREMIUM"),
    ]
    v = planned(tenant(u), rows).validation
    assert "usage-location-missing" not in [f.code for f in v.requests[2].findings]
