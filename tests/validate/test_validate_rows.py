"""Row-level and cross-row checks of batch.validate, on hand-built snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from batch.errors import RowFinding, Severity
from batch.models import Action, CheckedRequest, LicenseRequest, RequestStatus, TenantSnapshot, Validation
from batch.sheets import ProductCatalog
from batch.validate import FINDING_CODES, is_user_key, validate

from .builders import (
    BP,
    E3,
    E5,
    EXCHANGE,
    F1,
    FLOW,
    GROUP_SALES,
    SWAY,
    TEAMS,
    YAMMER,
    req,
    sheet_for,
    sku,
    snapshot,
    user,
)

A, R, X = Action.ASSIGN, Action.REMOVE, Action.REPLACE


def tenant(*users: object, enabled: int = 100, consumed: int = 0) -> TenantSnapshot:
    return snapshot(
        [
            sku("SPE_E3", E3, enabled=enabled, consumed=consumed),
            sku("SPE_E5", E5, enabled=enabled, consumed=consumed),
            sku("O365_BUSINESS_PREMIUM", BP, status="Suspended"),
            sku("FLOW_FREE_COMPANY", FLOW, applies_to="Company"),
            sku("SPE_F1", F1, enabled=enabled, consumed=consumed),
        ],
        users,  # type: ignore[arg-type]
    )


def run(snap: TenantSnapshot, requests: Sequence[LicenseRequest], **kw: object) -> Validation:
    return validate(sheet_for(requests), list(requests), snap, **kw)  # type: ignore[arg-type]


def codes(c: CheckedRequest) -> list[str]:
    return [f.code for f in c.findings]


def one(snap: TenantSnapshot, r: LicenseRequest) -> CheckedRequest:
    return run(snap, [r]).requests[0]


ALICE = "alice@contoso.com"


def test_plain_assign_is_ready() -> None:
    c = one(tenant(user(ALICE)), req(0, ALICE, A, "SPE_E5"))
    assert c.status is RequestStatus.READY
    assert c.findings == []
    assert c.sku_id == E5 and c.user_id is not None and c.usage_location is None


def test_user_key_shapes() -> None:
    assert is_user_key("alice@contoso.com")
    assert is_user_key("alice_fabrikam.com#EXT#@contoso.onmicrosoft.com")
    assert is_user_key("0f8fad5b-d9cb-469f-a165-70867728950e")
    for bad in ("alice", "alice@", "@contoso.com", "alice@contoso", "a b@contoso.com", "alice@@contoso.com"):
        assert not is_user_key(bad), bad


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("alice", "user-malformed"),
        ("alice@contoso", "user-malformed"),
        ("bob@contoso.com", "user-not-found"),
        ("", "user-missing"),
    ],
)
def test_user_errors(key: str, code: str) -> None:
    c = one(tenant(user(ALICE)), req(0, key, A, "SPE_E5"))
    assert c.status is RequestStatus.ERROR
    assert codes(c) == [code]
    f = c.findings[0]
    assert f.row == 2 and f.fix and f.severity is Severity.ERROR
    assert f.column == "User"
    if key:
        assert key in f.message


def test_user_found_by_object_id_and_case_insensitively() -> None:
    u = user(ALICE)
    snap = tenant(u)
    assert one(snap, req(0, u.id.upper(), A, "SPE_E5")).status is RequestStatus.READY
    assert one(snap, req(0, "ALICE@Contoso.com", A, "spe_e5")).status is RequestStatus.READY


def test_guest_and_disabled_are_warnings() -> None:
    guest = "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    snap = tenant(user(guest, guest=True), user(ALICE, enabled=False))
    v = run(snap, [req(0, guest, A, "SPE_E5"), req(1, ALICE, A, "SPE_E5")])
    assert [c.status for c in v.requests] == [RequestStatus.READY, RequestStatus.READY]
    assert codes(v.requests[0]) == ["user-guest"]
    assert codes(v.requests[1]) == ["user-disabled"]
    assert ALICE in v.requests[1].findings[0].message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("NOPE_E9", "sku-unknown"),
        ("O365_BUSINESS_PREMIUM", "sku-not-assignable"),
        ("FLOW_FREE_COMPANY", "sku-not-assignable"),
    ],
)
def test_sku_errors(text: str, code: str) -> None:
    c = one(tenant(user(ALICE)), req(0, ALICE, A, text))
    assert c.status is RequestStatus.ERROR
    assert code in codes(c)
    f = next(f for f in c.findings if f.code == code)
    assert f.row == 2 and f.column == "License"


MINI_CATALOG = (
    "\ufeffProduct_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n"
    f"Microsoft 365 E5,SPE_E5,{E5},TEAMS1,{TEAMS},Microsoft Teams\n"
    f"Microsoft 365 E5,SPE_E5,{E5},SWAY,{SWAY},Sway\n"
    "Office 365 E1,STANDARDPACK,18181a46-0d4e-45cd-891e-60aabd171b4e,SWAY,a23b959c-7ce8-4e57-9140-b90eb88a9e97,Sway\n"
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("18181a46-0d4e-45cd-891e-60aabd171b4e", "sku-not-in-tenant"),
        ("STANDARDPACK", "sku-not-in-tenant"),
        ("Office 365 E1", "sku-not-in-tenant"),
        ("Microsoft 365 E5", None),
    ],
)
def test_sku_resolution_with_the_product_list(text: str, code: str | None) -> None:
    catalog = ProductCatalog.from_text(MINI_CATALOG)
    snap = tenant(user(ALICE))
    rs = [req(0, ALICE, A, text, plans=("Microsoft Teams",))]
    c = validate(sheet_for(rs), rs, snap, catalog=catalog).requests[0]
    if code is None:
        assert c.status is RequestStatus.READY and c.sku_id == E5 and c.disabled_plan_ids == {TEAMS}
    else:
        assert codes(c) == [code] and "STANDARDPACK" in c.findings[0].message


def test_sku_ambiguous_product_name() -> None:
    from dataclasses import replace

    snap = tenant(user(ALICE))
    snap.skus[E3] = replace(snap.skus[E3], product_name="Office 365 E3")
    snap.skus[E5] = replace(snap.skus[E5], product_name="Office 365 E3")
    c = one(snap, req(0, ALICE, A, "office 365 e3"))
    assert codes(c) == ["sku-ambiguous"] and c.status is RequestStatus.ERROR


def test_missing_action_and_license() -> None:
    snap = tenant(user(ALICE))
    assert codes(one(snap, req(0, ALICE, None, "SPE_E5"))) == ["action-missing"]
    assert codes(one(snap, req(0, ALICE, A, ""))) == ["license-missing"]
    assert codes(one(snap, req(0, ALICE, X, "SPE_E5"))) == ["license-missing"]


def test_reader_findings_pass_through_and_are_not_doubled() -> None:
    from dataclasses import replace

    bad = RowFinding("action-unknown", Severity.ERROR, "Action 'asign' is not known.", "Write assign.", 2)
    r = replace(req(0, ALICE, None, "SPE_E5"), findings=(bad,))
    c = one(tenant(user(ALICE)), r)
    assert c.status is RequestStatus.ERROR and codes(c) == ["action-unknown"]


def test_plan_not_in_sku_names_the_plan_and_sku() -> None:
    c = one(tenant(user(ALICE)), req(0, ALICE, A, "SPE_E5", plans=("TEAMS1", "NOT_A_PLAN")))
    assert c.status is RequestStatus.ERROR
    assert codes(c) == ["plan-not-in-sku"]
    assert "NOT_A_PLAN" in c.findings[0].message and "SPE_E5" in c.findings[0].message
    assert c.findings[0].column == "Disabled plans"


def test_plans_by_name_or_id_are_resolved() -> None:
    c = one(tenant(user(ALICE)), req(0, ALICE, A, "SPE_E5", plans=("teams1", SWAY.upper())))
    assert c.status is RequestStatus.READY
    assert c.disabled_plan_ids == frozenset({TEAMS, SWAY})


def test_plans_on_remove_are_ignored_with_warning() -> None:
    c = one(tenant(user(ALICE, direct={E3: ()})), req(0, ALICE, R, "SPE_E3", plans=("TEAMS1",)))
    assert c.status is RequestStatus.READY and codes(c) == ["plans-ignored"]


# ----------------------------------------------------------------------------------- usage location


def test_usage_location_missing_only_for_adds() -> None:
    snap = tenant(user(ALICE, location=None, direct={E3: ()}))
    c = one(snap, req(0, ALICE, A, "SPE_E5"))
    assert c.status is RequestStatus.ERROR and codes(c) == ["usage-location-missing"]
    assert one(snap, req(0, ALICE, R, "SPE_E3")).status is RequestStatus.READY
    c = one(snap, req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3"))
    assert codes(c) == ["usage-location-missing"]


def test_usage_location_invalid() -> None:
    c = one(tenant(user(ALICE, location=None)), req(0, ALICE, A, "SPE_E5", location="Germ4ny"))
    assert c.status is RequestStatus.ERROR
    assert codes(c) == ["usage-location-invalid"]  # not also "missing"
    assert c.findings[0].column == "Usage location"


def test_usage_location_set_when_user_has_none() -> None:
    c = one(tenant(user(ALICE, location=None)), req(0, ALICE, A, "SPE_E5", location="de"))
    assert c.status is RequestStatus.READY
    assert c.usage_location == "DE"
    assert codes(c) == ["usage-location-set"]
    assert c.findings[0].severity is Severity.INFO


def test_usage_location_from_sheet_overrides_with_warning() -> None:
    c = one(tenant(user(ALICE, location="US")), req(0, ALICE, A, "SPE_E5", location="DE"))
    assert c.status is RequestStatus.READY and c.usage_location == "DE"
    assert codes(c) == ["usage-location-change"]
    assert "US" in c.findings[0].message and "DE" in c.findings[0].message


def test_same_usage_location_is_no_change() -> None:
    c = one(tenant(user(ALICE, location="DE")), req(0, ALICE, A, "SPE_E5", location="DE"))
    assert c.status is RequestStatus.READY and c.usage_location is None and c.findings == []


def test_location_only_change_on_held_license_is_ready() -> None:
    c = one(tenant(user(ALICE, location="US", direct={E5: ()})), req(0, ALICE, A, "SPE_E5", location="DE"))
    assert c.status is RequestStatus.READY and c.usage_location == "DE"


def test_remove_ignores_usage_location() -> None:
    c = one(tenant(user(ALICE, location="US", direct={E3: ()})), req(0, ALICE, R, "SPE_E3", location="DE"))
    assert c.status is RequestStatus.READY and c.usage_location is None and c.findings == []


# -------------------------------------------------------------------------------- held vs asked


def test_assign_held_directly_is_unchanged() -> None:
    c = one(tenant(user(ALICE, direct={E5: (TEAMS,)})), req(0, ALICE, A, "SPE_E5"))
    assert c.status is RequestStatus.UNCHANGED and codes(c) == ["unchanged"]


def test_assign_with_plans_already_disabled_is_unchanged() -> None:
    c = one(tenant(user(ALICE, direct={E5: (TEAMS, SWAY)})), req(0, ALICE, A, "SPE_E5", plans=("TEAMS1",)))
    assert c.status is RequestStatus.UNCHANGED


def test_assign_with_new_plan_to_disable_is_a_change() -> None:
    c = one(tenant(user(ALICE, direct={E5: (TEAMS,)})), req(0, ALICE, A, "SPE_E5", plans=("SWAY",)))
    assert c.status is RequestStatus.READY and c.findings == []


def test_assign_inherited_is_a_change_with_info() -> None:
    c = one(tenant(user(ALICE, groups={E5: GROUP_SALES})), req(0, ALICE, A, "SPE_E5"))
    assert c.status is RequestStatus.READY
    assert codes(c) == ["assign-inherited"]
    assert "Sales licensing" in c.findings[0].message


def test_remove_not_held_is_unchanged() -> None:
    c = one(tenant(user(ALICE)), req(0, ALICE, R, "SPE_E3"))
    assert c.status is RequestStatus.UNCHANGED
    assert codes(c) == ["remove-not-held"]
    assert c.findings[0].severity is Severity.INFO


def test_remove_inherited_names_the_group() -> None:
    c = one(tenant(user(ALICE, groups={E3: GROUP_SALES})), req(0, ALICE, R, "SPE_E3"))
    assert c.status is RequestStatus.ERROR and codes(c) == ["remove-inherited"]
    assert "'Sales licensing'" in c.findings[0].message
    assert "from group 'Sales licensing'" in c.findings[0].fix


def test_remove_direct_also_inherited_warns() -> None:
    c = one(tenant(user(ALICE, direct={E3: ()}, groups={E3: GROUP_SALES})), req(0, ALICE, R, "SPE_E3"))
    assert c.status is RequestStatus.READY and codes(c) == ["remove-still-inherited"]


def test_replace_checks() -> None:
    snap = tenant(
        user(ALICE, direct={E3: ()}),
        user("bob@contoso.com"),
        user("carol@contoso.com", groups={E3: GROUP_SALES}),
        user("dan@contoso.com", direct={E3: (TEAMS, EXCHANGE)}),
    )
    v = run(
        snap,
        [
            req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3"),
            req(1, "bob@contoso.com", X, "SPE_E5", from_sku="SPE_E3"),
            req(2, "carol@contoso.com", X, "SPE_E5", from_sku="SPE_E3"),
            req(3, "dan@contoso.com", X, "SPE_E5", from_sku="SPE_E3", plans=("TEAMS1",)),
            req(4, ALICE, X, "SPE_E3", from_sku="SPE_E3"),
        ],
    )
    c0, c1, c2, c3, c4 = v.requests
    assert c0.from_sku_id == E3 and c0.sku_id == E5
    assert [c1.status, c2.status] == [RequestStatus.ERROR] * 2
    assert codes(c1) == ["replace-from-not-held"]
    assert codes(c2) == ["replace-from-inherited"] and "Sales licensing" in c2.findings[0].message
    assert c3.status is RequestStatus.READY and codes(c3) == ["replace-reenables-plans"]
    assert "EXCHANGE_S_ENTERPRISE" in c3.findings[0].message and "TEAMS1" not in c3.findings[0].message
    assert "replace-same-sku" in codes(c4)


def test_replace_already_done_is_unchanged() -> None:
    """Running a swap sheet a second time: the user holds the target and not the source any more."""
    snap = tenant(user(ALICE, direct={E5: ()}), user("bob@contoso.com", direct={E5: ()}))
    v = run(
        snap,
        [
            req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3"),
            req(1, "bob@contoso.com", X, "SPE_E5", from_sku="SPE_E3", plans=("TEAMS1",)),
        ],
    )
    c0, c1 = v.requests
    assert c0.status is RequestStatus.UNCHANGED and codes(c0) == ["unchanged"]
    # Asking for more disabled plans is not "already done": the replace cannot be applied as written.
    assert c1.status is RequestStatus.ERROR and codes(c1) == ["replace-from-not-held"]
    assert all(c.net == 0 for c in v.capacity)


# ----------------------------------------------------------------------------------- cross-row


def test_duplicate_rows_name_the_first() -> None:
    snap = tenant(user(ALICE))
    v = run(
        snap,
        [
            req(0, ALICE, A, "SPE_E5"),
            req(1, "bob@x.com", A, "SPE_E5"),
            req(2, ALICE, A, "spe_e5"),
            req(3, ALICE.upper(), A, "SPE_E5", plans=("TEAMS1",)),
        ],
    )
    c0, _, c2, c3 = v.requests
    assert c0.status is RequestStatus.READY
    assert c2.status is RequestStatus.ERROR and codes(c2) == ["duplicate-row"]
    assert "Row 2 " in c2.findings[0].message and ALICE in c2.findings[0].message
    assert codes(c3) == ["duplicate-row"]


def test_duplicate_replace_is_reported_once() -> None:
    snap = tenant(user(ALICE, direct={E3: ()}))
    v = run(snap, [req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3"), req(1, ALICE, X, "SPE_E5", from_sku="SPE_E3")])
    assert codes(v.requests[1]) == ["duplicate-row"]


def test_conflicting_rows_name_each_other() -> None:
    snap = tenant(user(ALICE, direct={E3: ()}))
    v = run(snap, [req(0, ALICE, A, "SPE_E5"), req(1, ALICE, R, "SPE_E5")])
    for c, other in zip(v.requests, (3, 2), strict=True):
        assert c.status is RequestStatus.ERROR and "conflicting-rows" in codes(c)
        assert f"row {other}" in c.findings[-1].message


def test_two_replaces_from_one_sku_conflict() -> None:
    snap = tenant(user(ALICE, direct={E3: ()}))
    v = run(
        snap,
        [
            req(0, ALICE, X, "SPE_E5", from_sku="SPE_E3"),
            req(5, ALICE, X, "SPE_F1", from_sku="SPE_E3"),
            req(6, ALICE, R, "SPE_E3"),
        ],
    )
    for c in v.requests:
        assert "conflicting-rows" in codes(c)
    msg = next(f for f in v.requests[0].findings if f.code == "conflicting-rows").message
    assert "row 7" in msg and "row 8" in msg


def test_conflicting_usage_locations() -> None:
    snap = tenant(user(ALICE))
    v = run(
        snap,
        [
            req(0, ALICE, A, "SPE_E5", location="DE"),
            req(1, ALICE, A, "SPE_E3", location="FR"),
            req(2, ALICE, A, "SPE_E3", location="FR"),
        ],
    )
    assert codes(v.requests[0]) == ["conflicting-rows"]
    assert "usage location FR" in v.requests[0].findings[0].message
    assert "conflicting-rows" in codes(v.requests[1])


def test_rows_of_different_users_do_not_interact() -> None:
    snap = tenant(user(ALICE), user("bob@contoso.com", direct={E5: ()}))
    v = run(snap, [req(0, ALICE, A, "SPE_E5"), req(1, "bob@contoso.com", R, "SPE_E5")])
    assert [c.status for c in v.requests] == [RequestStatus.READY] * 2


def test_multi_license_cell_gives_several_requests_on_one_row() -> None:
    snap = tenant(user(ALICE))
    v = run(snap, [req(0, ALICE, A, "SPE_E3"), req(0, ALICE, A, "SPE_E5")])
    assert [c.status for c in v.requests] == [RequestStatus.READY] * 2


# ----------------------------------------------------------------------------------- the table


def test_every_finding_has_a_documented_code_and_its_severity() -> None:
    """Run a sheet exercising everything and check each finding against FINDING_CODES."""
    snap = tenant(
        user(ALICE, direct={E3: (TEAMS,)}, location=None),
        user("g_x.com#EXT#@contoso.onmicrosoft.com", guest=True, enabled=False),
        user("carol@contoso.com", groups={E3: GROUP_SALES}, direct={E5: (YAMMER,)}),
        enabled=1,
        consumed=0,
    )
    rs = [
        req(0, "nobody", A, "SPE_E5"),
        req(1, "g_x.com#EXT#@contoso.onmicrosoft.com", A, "SPE_E5", plans=("nope",)),
        req(2, ALICE, X, "SPE_E5", from_sku="SPE_E3", location="xx1"),
        req(3, "carol@contoso.com", R, "SPE_E3"),
        req(4, "carol@contoso.com", A, "SPE_E5"),
        req(5, "zed@contoso.com", A, "SPE_E5"),
    ]
    v = run(snap, rs)
    seen = {f.code for c in v.requests for f in c.findings}
    assert seen >= {
        "user-malformed",
        "plan-not-in-sku",
        "usage-location-invalid",
        "remove-inherited",
        "unchanged",
        "user-not-found",
        "user-guest",
        "user-disabled",
    }
    for c in v.requests:
        for f in c.findings:
            assert f.code in FINDING_CODES
            assert f.severity is FINDING_CODES[f.code][0]
            assert f.message
            assert f.row == c.request.row_number
            if f.severity is Severity.ERROR:
                assert f.fix, f.code


def test_status_follows_findings() -> None:
    snap = tenant(user(ALICE))
    v = run(snap, [req(0, ALICE, A, "NOPE"), req(1, ALICE, A, "SPE_E5")])
    assert v.requests[0].status is RequestStatus.ERROR
    assert all(f.is_error for f in v.requests[0].findings)
    assert v.requests[1].status is RequestStatus.READY
    assert [c.request.row for c in v.requests] == [0, 1]  # input order kept


def test_remove_from_suspended_subscription_is_allowed() -> None:
    c = one(tenant(user(ALICE, direct={BP: ()})), req(0, ALICE, R, "O365_BUSINESS_PREMIUM"))
    assert c.status is RequestStatus.READY and c.findings == []


def test_reader_error_skips_license_checks_but_not_user_checks() -> None:
    from dataclasses import replace

    bad = RowFinding("replace-multiple", Severity.ERROR, "A replace swaps one license for one other.", "Fix it.", 2)
    r = replace(req(0, "ghost@contoso.com", X, "SPE_E5;SPE_E3", from_sku="SPE_E3"), findings=(bad,))
    c = one(tenant(user(ALICE)), r)
    assert codes(c) == ["replace-multiple", "user-not-found"]


def test_from_a_real_csv_through_the_reader(tmp_path: Path) -> None:
    """read_sheet + parse_requests on a file, then validate against a hand-built snapshot."""
    from batch.sheets import parse_requests, read_sheet

    csv = tmp_path / "wave.csv"
    csv.write_text(
        "UserPrincipalName,Action,License,Disabled Plans,Usage Location\n"
        f"{ALICE},assign,SPE_E5;SPE_E3,SWAY,Germany\n"
        "bob@contoso.com,remove,SPE_E3,,\n"
        f"{ALICE},assign,spe_e5,,\n",
        encoding="utf-8",
    )
    sheet = read_sheet(csv)
    requests = parse_requests(sheet)
    snap = tenant(user(ALICE, location=None), user("bob@contoso.com", direct={E3: ()}))
    v = validate(sheet, requests, snap)
    got = [(c.request.row_number, c.status.value, codes(c)) for c in v.requests]
    assert got == [
        (2, "ready", ["usage-location-set"]),
        (2, "ready", ["usage-location-set"]),
        (3, "ready", []),
        (4, "error", ["duplicate-row"]),
    ]
    assert v.requests[0].usage_location == "DE" and v.requests[0].disabled_plan_ids == {SWAY}


def test_unchanged_says_which_plans_stay_disabled() -> None:
    c = one(tenant(user(ALICE, direct={E5: (TEAMS, SWAY)})), req(0, ALICE, A, "SPE_E5", plans=("SWAY",)))
    assert c.status is RequestStatus.UNCHANGED
    assert "TEAMS1 stay disabled" in c.findings[0].message and "SWAY stay" not in c.findings[0].message
