"""Membership rows checked against the sandbox: every finding with its code, severity, exact message and column,
rule rows resolved through Graph's $filter, and seats counted through the shared capacity policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Db, rows_of, run, write_csv

PA = "Licensing - Power Apps Premium"
E3 = "Licensing - Microsoft 365 E3"
D = "@contoso.onmicrosoft.com"


def _lines(report: Path) -> list[tuple[str, str, str, str]]:
    """(status, finding codes, message, fix) of each line of the validation workbook, in order."""
    return [(str(r["Status"]), str(r["Finding code"] or ""), str(r["Message"] or ""), str(r["Fix"] or ""))
            for r in rows_of(report, "Rows")]


def test_every_membership_finding(workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    db.set_seats("POWERAPPS_PER_USER", free=50)
    twin1, twin2 = db.add_group("Twin", sku="POWER_BI_PRO"), db.add_group("Twin", sku="POWER_BI_PRO")
    db.add_group("Dynamic Sales", sku="SPE_E5", rule='(user.department -eq "Sales")')
    sheet = write_csv(workdir / "g.csv", ["userPrincipalName", "Group", "Action", "License"], [
        [f"adele.vance{D}", PA, "add", ""],                  # 2 ready
        [f"nobody{D}", PA, "add", ""],                       # 3 user-not-found
        [f"alex.wilber{D}", "No Such Group", "add", ""],     # 4 group-unknown
        [f"alex.wilber{D}", "Twin", "add", ""],              # 5 group-ambiguous
        [f"alex.wilber{D}", "Dynamic Sales", "add", ""],     # 6 group-dynamic
        [f"alex.wilber{D}", "Sales Team", "add", ""],        # 7 group-no-license (warning)
        [f"nestor.wilke{D}", E3, "add", ""],                 # 8 member-already (unchanged)
        [f"adele.vance{D}", E3, "remove", ""],               # 9 member-not (unchanged)
        [f"lidia.holloway{D}", E3, "add", ""],               # 10 direct-redundant (warning)
        [f"adele.vance{D}", PA, "add", ""],                  # 11 duplicate-row
        [f"joni.sherman{D}", PA, "add", ""],                 # 12 ready (Legal)
        ["Department=Legal", PA, "add", ""],                 # 13 rule: joni reached twice
        [f"megan.bowen{D}", E3, "add", "SPE_E5"],            # 14 group-license-mismatch
        [f"patti.fernandez{D}", PA, "frobnicate", ""],       # 15 action-unknown
    ])
    code, summary, _err = run(capsys, "validate", str(sheet), "--json")
    assert code == 1
    lines = _lines(workdir / summary["report"])
    assert len(lines) == 13 + 8  # the rule row is one line per Legal user (8)
    by_row = lines[:11] + [("", "", "", "")] * 0
    st = [(x[0], x[1]) for x in by_row]
    assert st == [
        ("ready", ""), ("error", "user-not-found"), ("error", "group-unknown"), ("error", "group-ambiguous"),
        ("error", "group-dynamic"), ("ready", "group-no-license"), ("unchanged", "member-already"),
        ("unchanged", "member-not"), ("ready", "direct-redundant"), ("error", "duplicate-row"), ("ready", ""),
    ]
    rule = lines[11:19]
    assert [x[1] for x in rule].count("rule-reached") == 7
    twice = next(x for x in rule if "user-reached-twice" in x[1])
    assert twice[0] == "error" and twice[1] == "rule-reached; user-reached-twice"
    assert twice[2].endswith(
        f"Row 13: joni.sherman{D} is reached twice for '{PA}' (row 12 and rule 'Department=Legal'); only row "
        "12's line stands.")
    assert rule[0][2] == "Row 13: reached by the rule 'Department=Legal' (8 users)."
    assert (lines[19][0], lines[19][1]) == ("error", "group-license-mismatch")
    assert lines[19][2] == f"Row 14: '{E3}' gives SPE_E3, not SPE_E5 (column License)."
    assert (lines[20][1], lines[20][2]) == ("action-unknown", "Row 15: the Action 'frobnicate' is not add or remove.")

    assert lines[2][2:] == ("Row 4: no group 'No Such Group' in the tenant (column Group).",
                            "Check the group's display name, or give its object id.")
    ids = ", ".join(sorted([twin1, twin2]))
    assert lines[3][2:] == (f"Row 5: 2 groups are called 'Twin': {ids} (column Group).",
                            "Give the object id of the one you mean in the group column.")
    assert lines[4][2:] == (
        "Row 6: 'Dynamic Sales' has dynamic membership (rule: (user.department -eq \"Sales\")); Graph refuses to "
        "add or remove its members.",
        "Change the user's attributes so the rule includes or excludes them, or use an assigned (static) group.")
    assert lines[5][2] == "Row 7: 'Sales Team' gives no license; the membership change assigns or removes nothing."
    assert lines[6][2] == f"nestor.wilke{D} is already a member of '{E3}'."
    assert lines[7][2] == f"adele.vance{D} is not a member of '{E3}'."
    assert lines[8][2] == (
        f"lidia.holloway{D} already holds SPE_E3 directly; '{E3}' gives it too, so the direct assignment becomes "
        "redundant.")
    assert lines[9][2] == f"Row 11: row 2 already asks the same for adele.vance{D} and '{PA}'."

    # the same codes are documented with their severity
    from batch.validate import FINDING_CODES

    for c in ("group-unknown", "group-ambiguous", "group-dynamic", "user-reached-twice", "group-license-mismatch"):
        assert FINDING_CODES[c][0] == "error"
    assert FINDING_CODES["direct-redundant"][0] == "warning"
    assert FINDING_CODES["group-no-license"][0] == "warning"
    assert FINDING_CODES["member-already"][0] == "info"


def test_rule_row_by_department_plan_shows_reach_and_capacity(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    legal = [r["upn"] for r in db.users("department='Legal'")]
    holders = [r["upn"] for r in db.users("department='Legal' AND licenses LIKE ?",
                                           (f"%{db.sku_id('POWERAPPS_PER_USER')}%",))]
    sheet = write_csv(workdir / "rule.csv", ["User", "Group"], [["Department=Legal", PA]])
    db.set_seats("POWERAPPS_PER_USER", free=2)
    code, summary, err = run(capsys, "plan", str(sheet), "--json")
    assert code == 1  # short: the rule reaches more users than there are seats
    assert f"row 2: rule 'Department=Legal' reached {len(legal)} users (0 to change)" in err
    need = len(legal) - len(holders)
    cap = next(c for c in summary["capacity"] if c["sku"] == "POWERAPPS_PER_USER")
    assert cap == {"kind": "licenses", "sku": "POWERAPPS_PER_USER", "name": "Power Apps Premium", "available": 2,
                   "needed": need, "freed": 0, "net": need, "short": need - 2}
    assert summary["rows"] == len(legal)  # one line per user reached, each with the rule's row number
    lines = rows_of(workdir / summary["report"], "Rows")
    assert all(str(r["Message"]).startswith(f"Row 2: reached by the rule 'Department=Legal' ({len(legal)} users).; "
                                            "POWERAPPS_PER_USER is short of seats: 2 available") for r in lines)
    assert sorted(str(r["User"]) for r in lines) == sorted(legal)
    db.set_seats("POWERAPPS_PER_USER", free=need)
    code, summary, err = run(capsys, "plan", str(sheet), "--json")
    assert code == 0
    assert f"row 2: rule 'Department=Legal' reached {len(legal)} users ({need} to change)" in err
    assert f"{PA} (gives POWERAPPS_PER_USER): add {need} users in 1 request (up to 20 per request)" in err


def test_group_by_id_conflicting_rows_and_rules_by_group_and_nobody(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    gid = db.group_id(PA)
    legal_team = {r["user_id"] for r in db.q("SELECT user_id FROM members WHERE group_id=?",
                                               (db.group_id("Legal Team"),))}
    sheet = write_csv(workdir / "c.csv", ["User", "Group ID", "Action"], [
        [f"alex.wilber{D}", gid, "add"],
        [f"alex.wilber{D}", gid, "remove"],
        ["group=Legal Team", gid, "add"],
        ["Department=Nowhere", gid, "add"],
    ])
    db.set_seats("POWERAPPS_PER_USER", free=50)
    code, summary, _err = run(capsys, "validate", str(sheet), "--json")
    assert code == 1
    lines = _lines(workdir / summary["report"])
    assert [x[:2] for x in lines[:2]] == [("error", "conflicting-rows"), ("error", "member-not; conflicting-rows")]
    assert lines[0][2] == f"Row 2: rows 2 and 3 both add alex.wilber{D} to and remove them from '{PA}'."
    reached = lines[2:-1]
    assert len(reached) == len(legal_team) > 0
    assert all(x[2].startswith(f"Row 4: reached by the rule 'group=Legal Team' ({len(legal_team)} users).")
               for x in reached)
    assert lines[-1][:3] == ("unchanged", "rule-no-users",
                             "Row 5: the rule 'Department=Nowhere' in column User reaches no user.")


def test_rule_cells() -> None:
    from batch.kinds.groups.records import Rule, parse_rule

    assert parse_rule("Department=Sales") == Rule("department", "Sales", "Department=Sales")
    assert parse_rule(" job title : Senior Engineer ") == Rule("jobTitle", "Senior Engineer",
                                                               "job title : Senior Engineer")
    assert parse_rule("group = All Engineers") == Rule("group", "All Engineers", "group = All Engineers")
    assert parse_rule("employeeType eq 'Contractor'") == Rule("employeeType", "Contractor",
                                                              "employeeType eq 'Contractor'")
    assert parse_rule("adele.vance@contoso.com") is None
    assert parse_rule("a=b@contoso.com") is None  # not a known attribute
    assert parse_rule("Department=") is None


def test_predicted_plan_conflict_matches_what_entra_does(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Henrietta holds Teams EEA; the E3 group would give her Teams again (a refused family): validation says so,
    and the sandbox's group processing indeed leaves the group's E3 in Error (MutuallyExclusiveViolation)."""
    import httpx

    from batch.sandbox import SandboxConfig, SandboxServer

    sheet = write_csv(workdir / "x.csv", ["userPrincipalName", "Group"], [[f"henrietta.mueller{D}", E3]])
    code, summary, _err = run(capsys, "validate", str(sheet), "--json")
    assert code == 1
    (line,) = _lines(workdir / summary["report"])
    assert line[:2] == ("error", "group-license-conflict")
    assert line[2].startswith(f"Row 2: through '{E3}', henrietta.mueller{D} would hold ")
    assert "mutually exclusive" in line[2]
    gid, uid = db.group_id(E3), db.user("henrietta.mueller")["id"]
    server = SandboxServer(workdir / "sandbox.db", SandboxConfig(group_processing_seconds=0.0)).start()
    try:
        with httpx.Client(base_url=server.graph_url, headers=server.auth_headers, timeout=30) as g:
            r = g.patch(f"/groups/{gid}", json={"members@odata.bind": [
                f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"]})
            assert r.status_code == 204
            server.process_group_jobs(wait=True)
    finally:
        server.stop()
    assert [(s["state"], s["error"]) for s in db.states(uid, gid)] == [("Error", "MutuallyExclusiveViolation")]


def test_rule_row_of_a_license_sheet_by_department(workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    """Rule rows serve direct licenses too: every Legal user gets Power BI Pro, one assignLicense each."""
    legal = sorted(r["upn"] for r in db.users("department='Legal'"))
    pbi = db.sku_id("POWER_BI_PRO")
    holders = {r["upn"] for r in db.users("department='Legal' AND licenses LIKE ?", (f"%{pbi}%",))}
    db.set_seats("POWER_BI_PRO", free=50)
    sheet = write_csv(workdir / "lic.csv", ["User", "License"], [["Department=Legal", "POWER_BI_PRO"]])
    code, summary, err = run(capsys, "plan", str(sheet), "--json")
    assert f"row 2: rule 'Department=Legal' reached {len(legal)} users ({len(legal) - len(holders)} to change)" in err
    assert summary["operations"] == len(legal) - len(holders)
    code, summary, err = run(capsys, "apply", str(sheet), "--json")
    assert summary["rows"] == len(legal)
    results = rows_of(workdir / summary["report"], "Results")
    assert sorted(str(r["User"]) for r in results) == legal
    assert all("POWER_BI_PRO" in str(r["Licenses after"]) for r in results)
    assert summary["applied"] + summary["unchanged"] == len(legal) and code == 0


def test_nested_groups_among_members_and_an_advanced_query_rule(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule row's group=... reaches the group's users at any depth of nesting (as --scope group= does), never
    the nested group itself; a nested member's add is not "already a member" (the write goes to the group
    itself); a rule on companyName (an advanced query in Graph) reaches its users."""
    from batch.sandbox import add_member

    legal = db.group_id("Legal Team")
    legal_team = db.members(legal) | db.members(db.group_id("Marketing Team"))
    assert legal_team > db.members(legal)  # the nested group brings users of its own
    add_member(db.path, "Legal Team", "Marketing Team")
    marketing_user = db.q("SELECT u.upn FROM members m JOIN users u ON u.id = m.user_id WHERE m.group_id=? "
                          "ORDER BY m.n LIMIT 1", (db.group_id("Marketing Team"),))[0]["upn"]
    legal_user = db.q("SELECT upn FROM users WHERE id IN (SELECT user_id FROM members WHERE group_id=?) "
                      "ORDER BY n LIMIT 1", (legal,))[0]["upn"]
    db.x("UPDATE users SET company_name='Fabrikam' WHERE upn_lower LIKE 'adele.vance%' OR upn_lower LIKE 'alex.w%'")
    sheet = write_csv(workdir / "n.csv", ["User", "Group", "Action"], [
        ["group=Legal Team", PA, "add"],
        [marketing_user, "Legal Team", "add"],      # a member only through the nested group: a direct add is ready
        [legal_user, "Legal Team", "add"],          # a direct member already
        ["Company=Fabrikam", PA, "add"],
    ])
    db.set_seats("POWERAPPS_PER_USER", free=50)
    code, summary, err = run(capsys, "validate", str(sheet), "--json")
    assert code in (0, 1), err
    lines = _lines(workdir / summary["report"])
    reached = [x for x in lines if x[2].startswith("Row 2: reached by the rule 'group=Legal Team'")]
    assert len(reached) == len(legal_team) > 0
    assert reached[0][2].startswith(f"Row 2: reached by the rule 'group=Legal Team' ({len(legal_team)} users).")
    rows = rows_of(workdir / summary["report"], "Rows")
    upn_of = {r["id"]: r["upn"] for r in db.users()}
    assert {str(r["User"]) for r in rows[:len(legal_team)]} == {upn_of[u] for u in legal_team}
    by_user = {(str(r["User"]), str(r["Group"])): str(r["Status"]) for r in rows}
    assert by_user[(marketing_user, "Legal Team")] == "ready"
    assert by_user[(legal_user, "Legal Team")] == "unchanged"
    company = [x for x in lines if x[2].startswith("Row 5: reached by the rule 'Company=Fabrikam' (2 users).")]
    assert len(company) == 2


def test_rule_rows_on_a_boolean_and_on_an_unknown_group(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """accountEnabled=false is sent as a boolean (the sandbox, as Graph, answers a quoted 'false' 400): it reaches
    the disabled users; a value a boolean does not take, and a group no group is called, are the row's errors."""
    disabled = {r["upn"] for r in db.users("account_enabled=0")}
    assert disabled
    sheet = write_csv(workdir / "b.csv", ["User", "Group", "Action"], [
        ["Account enabled = false", PA, "add"],
        ["accountEnabled=maybe", PA, "add"],
        ["group=No Such Group", PA, "add"],
    ])
    code, summary, err = run(capsys, "validate", str(sheet), "--json")
    assert code == 1, err
    lines = _lines(workdir / summary["report"])
    reached = [x for x in lines if x[2].startswith(f"Row 2: reached by the rule 'Account enabled = false' "
                                                   f"({len(disabled)} users).")]
    assert len(reached) == len(disabled)
    rows = rows_of(workdir / summary["report"], "Rows")
    assert {str(r["User"]) for r in rows[:len(disabled)]} == disabled
    assert lines[len(disabled):] == [
        ("error", "rule-unsupported",
         "Row 3: The rule 'accountEnabled=maybe': accountEnabled takes true or false, not 'maybe'.",
         "Give the attribute a value it takes (true or false for accountEnabled)."),
        ("error", "rule-group-unknown", "Row 4: The rule 'group=No Such Group': No group is called 'No Such Group'.",
         "Name the group by its exact display name or its object id."),
    ]
