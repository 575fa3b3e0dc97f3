"""The desired-versus-actual join on its own (pandas, no tenant): each pair lands in exactly one kind of drift."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from batch.desired.drift import actual_frame, classify, redundant
from batch.models import LicenseState, ServicePlan, Sku, User
from batch.sandbox import catalogue as C

DESIRED_COLUMNS = ["row", "number", "uid", "sku_id", "plans", "via_group", "direct_required", "location"]
ACTUAL_COLUMNS = ["uid", "sku_id", "direct", "actual_plans", "grouped", "groups", "failed_groups", "held_plans"]


def test_classify_every_kind() -> None:
    desired = pd.DataFrame([
        [0, 2, "u1", "E3", "", False, False, ""],      # matches
        [1, 3, "u1", "PBI", "", False, False, ""],     # missing
        [2, 4, "u2", "O365", "p1,p2", False, False, ""],  # plans: p2 to disable, p3 to re-enable
        [3, 5, "u3", "E3", "", True, False, ""],       # group-missing
        [4, 6, "u4", "E3", "", True, False, ""],       # through a group, as expected
    ], columns=DESIRED_COLUMNS)
    actual = pd.DataFrame([
        ["u1", "E3", True, "", False, "", "", ""],
        ["u1", "E1", True, "", False, "", "", ""],         # extra
        ["u2", "O365", True, "p1,p3", False, "", "", "p1,p3"],
        ["u4", "E3", False, "", True, "g1", "", ""],
        ["u4", "COPILOT", False, "", True, "g2", "", ""],  # group-unexpected
        ["u9", "E3", True, "", False, "", "", ""],         # not in scope: ignored
    ], columns=ACTUAL_COLUMNS)
    d = classify(desired, actual, {"u1", "u2", "u3", "u4"}, prune=False)
    got = {(r.uid, r.sku_id): r for r in d.itertuples(index=False)}
    assert {k: r.drift for k, r in got.items()} == {
        ("u1", "PBI"): "missing", ("u1", "E1"): "extra", ("u2", "O365"): "plans", ("u3", "E3"): "group-missing",
        ("u4", "COPILOT"): "group-unexpected"}
    plans = got[("u2", "O365")]
    assert (plans.disable, plans.enable, plans.plans_after, plans.add) == ("p2", "p3", "p1,p2,p3", True)
    assert got[("u1", "E1")].remove is False and got[("u1", "E1")].frees is True
    assert got[("u1", "PBI")].takes is True
    pruned = classify(desired, actual, {"u1", "u2", "u3", "u4"}, prune=True)
    got = {(r.uid, r.sku_id): r for r in pruned.itertuples(index=False)}
    assert got[("u1", "E1")].remove is True
    assert got[("u2", "O365")].plans_after == "p1,p2"
    assert not got[("u4", "COPILOT")].remove  # never removed directly


def test_a_license_held_directly_and_through_a_group_unasked_is_extra_and_group_unexpected() -> None:
    """The direct copy is removed with --prune (freeing nothing by itself), the group's is group drift; neither
    line counts the seat (leaving the group does, in memberships)."""
    desired = pd.DataFrame([[0, 2, "u1", "PBI", "", False, False, ""]], columns=DESIRED_COLUMNS)
    actual = pd.DataFrame([
        ["u1", "PBI", True, "", False, "", "", ""],
        ["u1", "E3", True, "", True, "g1", "", ""],  # directly and through g1
    ], columns=ACTUAL_COLUMNS)
    d = classify(desired, actual, None, prune=True)
    assert [(r.uid, r.sku_id, r.drift, r.direct, r.groups, r.remove, r.frees) for r in d.itertuples(index=False)] == [
        ("u1", "E3", "extra", True, "g1", True, False), ("u1", "E3", "group-unexpected", True, "g1", False, False)]


# ------------------------------------------------------------------------------------------- redundant packs


def sku(sku_id: str, part: str, plans: tuple[tuple[str, str], ...]) -> Sku:
    return Sku(sku_id, part, "User", "Enabled", 100, 0, service_plans=tuple(ServicePlan(i, n) for i, n in plans))


#: the sandbox catalogue's SKUs (Microsoft's skuIds and plans), and two more from Microsoft's product list
SKUS = {d.sku_id: sku(d.sku_id, d.part_number, d.plans) for d in C.SKUS}
EXO_P1, EXO_KIOSK, E3_TWIN = "4b9405b0-7788-4568-add1-99614e613b69", "80b2d799-d2ba-4d2a-8842-fb0d0f3a4b82", "e3-twin"
SKUS[EXO_P1] = sku(EXO_P1, "EXCHANGESTANDARD", ((C.EXCHANGE_S_STANDARD, "EXCHANGE_S_STANDARD"),
                                                ("882e1d05-acd1-4ccb-8708-6ee03664b117", "INTUNE_O365"),
                                                ("5e62787c-c316-451f-b873-1d05acd4d12c", "BPOS_S_TODO_1")))
SKUS[EXO_KIOSK] = sku(EXO_KIOSK, "EXCHANGEDESKLESS", (("4a82b400-a79f-41a4-b4e2-e94f5787b113", "EXCHANGE_S_DESKLESS"),))
SKUS[E3_TWIN] = sku(E3_TWIN, "SPE_E3_TWIN", C.SKU_BY_ID[C.SPE_E3].plans)  # the same plans


def held(*lines: tuple[str, str, str] | tuple[str, str, str, bool]) -> pd.DataFrame:
    """(uid, skuId, disabled plan ids[, through a group]) -> an actual frame of held packs."""
    rows = []
    for line in lines:
        uid, sku_id, off = line[:3]
        group = len(line) > 3 and bool(line[3])
        rows.append([uid, sku_id, not group, "" if group else off, group, "g" if group else "", "", off])
    return pd.DataFrame(rows, columns=ACTUAL_COLUMNS)


def found(frame: pd.DataFrame) -> set[tuple[str, str, str]]:
    part = {k: v.part_number for k, v in SKUS.items()}
    return {(r.uid, part[r.sku_id], "+".join(part[x] for x in r.next_to.split(",") if x))
            for r in frame.itertuples(index=False)}


def test_e3_next_to_e5_is_redundant_unless_e5_has_exchange_disabled() -> None:
    frame = held(("u1", C.SPE_E3, ""), ("u1", C.SPE_E5, ""),
                 ("u2", C.SPE_E3, ""), ("u2", C.SPE_E5, C.EXCHANGE_S_ENTERPRISE),   # E5 without a mailbox
                 ("u3", C.SPE_E3, C.EXCHANGE_S_ENTERPRISE), ("u3", C.SPE_E5, C.EXCHANGE_S_ENTERPRISE),
                 ("u4", C.SPE_E3, ""), ("u4", C.SPE_E5, "", True))  # E5 through a group takes a seat too
    assert found(redundant(frame, SKUS, None)) == {("u1", "SPE_E3", "SPE_E5"), ("u3", "SPE_E3", "SPE_E5"),
                                                   ("u4", "SPE_E3", "SPE_E5")}
    assert found(redundant(frame, SKUS, {"u2", "u3"})) == {("u3", "SPE_E3", "SPE_E5")}  # only users in scope


def test_ems_next_to_microsoft_365_e3_by_its_plans() -> None:
    frame = held(("u1", C.EMS_E3, ""), ("u1", C.SPE_E3, ""),
                 ("u2", C.EMS_E3, ""), ("u2", C.SPE_E3, "c1ec4a95-1f05-45b3-a911-aa3fa01094f5"))  # E3 without Intune
    # EXCHANGE_S_FOUNDATION of EMS is below E3's mailbox; ADALLOM_S_DISCOVERY and the rest are in E3 itself
    assert found(redundant(frame, SKUS, None)) == {("u1", "EMS", "SPE_E3")}


def test_exchange_online_next_to_e3_by_tier() -> None:
    todo_intune = "882e1d05-acd1-4ccb-8708-6ee03664b117,5e62787c-c316-451f-b873-1d05acd4d12c"
    frame = held(("u1", EXO_KIOSK, ""), ("u1", C.SPE_E3, ""),                # Kiosk < Plan 2: covered
                 ("u2", EXO_P1, todo_intune), ("u2", C.SPE_E3, ""),          # Plan 1 (its mailbox only) < Plan 2
                 ("u3", EXO_P1, ""), ("u3", C.SPE_E3, ""),                   # To-Do (Plan 1): not in this E3
                 ("u4", EXO_P1, todo_intune), ("u4", C.SPE_E3, C.EXCHANGE_S_ENTERPRISE),  # E3 without a mailbox
                 ("u5", C.SPE_E3, ""), ("u5", C.O365_E1, ""))                # E1: Exchange, SharePoint... tiers
    assert found(redundant(frame, SKUS, None)) == {
        ("u1", "EXCHANGEDESKLESS", "SPE_E3"), ("u2", "EXCHANGESTANDARD", "SPE_E3"), ("u5", "STANDARDPACK", "SPE_E3")}


def test_two_identical_packs_name_one_the_same_whatever_the_order() -> None:
    one = held(("u1", C.SPE_E3, ""), ("u1", E3_TWIN, ""))
    two = held(("u1", E3_TWIN, ""), ("u1", C.SPE_E3, ""))
    assert found(redundant(one, SKUS, None)) == found(redundant(two, SKUS, None)) == {("u1", "SPE_E3", "SPE_E3_TWIN")}
    # three packs: E3 and its twin next to E5 are both redundant, each next to E5 (the one kept)
    three = held(("u1", C.SPE_E5, ""), ("u1", E3_TWIN, ""), ("u1", C.SPE_E3, ""))
    assert found(redundant(three, SKUS, None)) == {("u1", "SPE_E3", "SPE_E5"), ("u1", "SPE_E3_TWIN", "SPE_E5")}
    # a pack with every plan disabled adds nothing: it is named, next to nothing in particular
    off = ",".join(i for i, _ in C.SKU_BY_ID[C.POWER_BI_PRO].plans)
    assert found(redundant(held(("u1", C.POWER_BI_PRO, off), ("u1", C.SPE_E3, "")), SKUS, None)) == {
        ("u1", "POWER_BI_PRO", "")}
    # a SKU the snapshot does not know is neither judged nor counted as covering
    assert found(redundant(held(("u1", "unknown", ""), ("u1", C.SPE_E3, "")), SKUS, None)) == set()


def test_held_plans_are_those_disabled_in_every_holding_assignment() -> None:
    e5_off = frozenset({C.EXCHANGE_S_ENTERPRISE})
    users = [
        User("u1", "u1@x", None, "US", True, "Member", (C.SPE_E5,), (  # direct without Exchange, a group with it
            LicenseState(C.SPE_E5, e5_off), LicenseState(C.SPE_E5, frozenset(), "g1"))),
        User("u2", "u2@x", None, "US", True, "Member", (C.SPE_E5,), (  # the group without; its Error direct ignored
            LicenseState(C.SPE_E5, frozenset(), state="Error"), LicenseState(C.SPE_E5, e5_off, "g1"))),
    ]
    a = actual_frame(users)
    assert list(zip(a["uid"], a["actual_plans"], a["held_plans"], strict=True)) == [
        ("u1", C.EXCHANGE_S_ENTERPRISE, ""), ("u2", "", C.EXCHANGE_S_ENTERPRISE)]


def test_a_big_tenant_is_judged_once_per_distinct_holding() -> None:
    """100,000 users with 5 distinct holdings (no timing asserted: the frame comes back right)."""
    kinds = [((C.SPE_E3, ""), (C.SPE_E5, "")), ((C.SPE_E3, ""), (C.SPE_E5, C.EXCHANGE_S_ENTERPRISE)),
             ((C.EMS_E3, ""), (C.SPE_E3, "")), ((C.SPE_E3, ""),), ((C.POWER_BI_PRO, ""), (C.SPE_E5, ""))]
    rows = [(f"u{n}", s, off) for n in range(100_000) for s, off in kinds[n % 5]]
    frame = held(*rows)
    got = redundant(frame, SKUS, None)
    assert len(got) == 3 * 20_000
    part = {k: v.part_number for k, v in SKUS.items()}
    counts = got.assign(p=got["sku_id"].map(part)).groupby("p").size().to_dict()
    assert counts == {"SPE_E3": 20_000, "EMS": 20_000, "POWER_BI_PRO": 20_000}
    assert set(got.loc[got["uid"] == "u4", "sku_id"]) == {C.POWER_BI_PRO}


# ------------------------------------------------------------------------------------------- desired frame


def test_desired_frame_resolves_each_row_and_says_each_problem_once(tmp_path: Path) -> None:
    """A real CSV read back: several licenses in one cell, disabled plans, locations, and each kind of row error
    (said once per row, whatever the number of licenses the row names)."""
    from datetime import UTC, datetime

    from batch.desired.drift import desired_frame
    from batch.models import TenantSnapshot
    from batch.sheets import read_source

    people = {f"u{n}": User(f"u{n}", f"user{n}@contoso.com", None, "US", True, "Member", (), ()) for n in range(1, 9)}
    snap = TenantSnapshot("t", dict(SKUS), people, {}, datetime.now(UTC))
    sheet = tmp_path / "desired.csv"
    sheet.write_text(
        "userPrincipalName,License,Disabled plans,Usage location\n"
        "user1@contoso.com,SPE_E3; POWER_BI_PRO,,FR\n"           # row 2: two licenses, one location
        "USER2@contoso.com,SPE_E5,EXCHANGE_S_ENTERPRISE,US\n"    # row 3: a plan disabled; the UPN in capitals
        "nobody@contoso.com,SPE_E3,,\n"                          # row 4: no such user
        "user3@contoso.com,SPE_E3; POWER_BI_PRO,,Narnia\n"       # row 5: two licenses, a bad location: said once
        "user4@contoso.com,SPE_E3,,US\n"                         # row 6
        "user4@contoso.com,SPE_E5; POWER_BI_PRO,,DE\n"           # row 7: contradicts row 6: said once
        "user5@contoso.com,SPE_E3,,\n"                           # row 8
        "user5@contoso.com,SPE_E3,,\n"                           # row 9: the same again
        "user6@contoso.com,,,\n"                                 # row 10: no license
        "user8@contoso.com,SPE_E3,,\n"                           # row 11: user8's location comes later...
        "user7@contoso.com,SPE_E3; POWER_BI_PRO,,BE\n"           # row 12
        "user7@contoso.com,SPE_E3; POWER_BI_PRO,,BE\n"           # row 13: both again: said once
        "user8@contoso.com,POWER_BI_PRO,,NL\n",                  # row 14: ...so it follows user7's (row 12)
        encoding="utf-8")
    (s,) = read_source(sheet)
    d = desired_frame(s, snap, None)
    lines = sorted((r.number, r.uid, SKUS[r.sku_id].part_number, r.plans, r.location) for r in d.frame.itertuples())
    assert lines == [(2, "u1", "POWER_BI_PRO", "", "FR"), (2, "u1", "SPE_E3", "", "FR"),
                     (3, "u2", "SPE_E5", C.EXCHANGE_S_ENTERPRISE, "US"), (6, "u4", "SPE_E3", "", "US"),
                     (8, "u5", "SPE_E3", "", ""), (11, "u8", "SPE_E3", "", ""), (12, "u7", "POWER_BI_PRO", "", "BE"),
                     (12, "u7", "SPE_E3", "", "BE"), (14, "u8", "POWER_BI_PRO", "", "NL")]
    found = {s.rows[r].number: [(f.code, f.message) for f in fs] for r, fs in d.errors.items()}
    assert found == {
        4: [("user-not-found", "No user 'nobody@contoso.com' in the tenant.")],
        5: [("usage-location-invalid", found[5][0][1])],
        7: [("conflicting-rows", "This row gives usage location DE; row 6 gives US for the same user.")],
        9: [("duplicate-row", "Row 8 already names this user and license.")],
        10: [("license-missing", "The row names no license.")],
        13: [("duplicate-row", "Row 12 already names this user and license.")],
    }
    assert "Narnia" in found[5][0][1]
    assert list(d.locations.items()) == [("u1", "FR"), ("u2", "US"), ("u4", "US"), ("u7", "BE"), ("u8", "NL")]
    assert d.error_users == {"u3", "u4", "u5", "u6", "u7"}


def test_desired_frame_of_a_sheet_whose_every_row_is_in_error(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from batch.desired.drift import desired_frame
    from batch.models import TenantSnapshot
    from batch.sheets import read_source

    snap = TenantSnapshot("t", dict(SKUS), {}, {}, datetime.now(UTC))
    sheet = tmp_path / "nobody.csv"
    sheet.write_text("userPrincipalName,License\nnobody@contoso.com,SPE_E3\n", encoding="utf-8")
    (s,) = read_source(sheet)
    d = desired_frame(s, snap, None)
    assert d.frame.empty and list(d.frame.columns) == DESIRED_COLUMNS
    assert [(f.code, f.row) for fs in d.errors.values() for f in fs] == [("user-not-found", 2)]
    assert d.locations == {} and d.error_users == set()
