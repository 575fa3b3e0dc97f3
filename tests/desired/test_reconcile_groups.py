"""reconcile fixes group-licensing drift through membership: a license expected through a group is fixed by adding
the user to the group (and arrives once Entra processed it), one a group gives unasked only with --prune (never
when the group gives a wanted license too, never for a rule-based group), and the seats count."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from batch import jobs
from batch.config import load_settings
from batch.desired.reconcile import reconcile

from .conftest import read_csv, run, run_json, upn, write_csv, xlsx_rows

E3 = "Licensing - Microsoft 365 E3"
PA = "Licensing - Power Apps Premium"
HEADERS = ["userPrincipalName", "skuPartNumber", "Held", "Groups"]


@pytest.fixture
def tenant(workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """The default sandbox, seeded (an export's first read), with Entra's group processing quick."""
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_GROUP_PROCESSING_SECONDS", "0.1")
    assert run(capsys, "export", "users", "-o", str(workdir / "_seed.csv"))[0] == 0
    return Tenant(workdir / "sandbox.db")


class Tenant:
    """The sandbox's state, read and shaped server-side (only while no command runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def q(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        con = sqlite3.connect(self.path)
        con.row_factory = sqlite3.Row
        try:
            with con:
                return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def gid(self, name: str) -> str:
        return str(self.q("SELECT id FROM groups WHERE display_name=?", (name,))[0]["id"])

    def uid(self, name: str) -> str:
        return str(self.q("SELECT id FROM users WHERE upn_lower=?", (upn(name),))[0]["id"])

    def sku(self, part: str) -> str:
        return str(self.q("SELECT sku_id FROM skus WHERE part_number=?", (part,))[0]["sku_id"])

    def add_group(self, name: str, parts: tuple[str, ...] = (), rule: str | None = None) -> str:
        gid = str(uuid.uuid4())
        n = self.q("SELECT MAX(n) AS n FROM groups")[0]["n"] + 1
        lic = json.dumps([{"disabledPlans": [], "skuId": self.sku(p)} for p in parts])
        self.q("INSERT INTO groups(n, id, display_name, description, mail_nickname, mail, mail_enabled, "
               "security_enabled, group_types, created, licenses, processing_state, membership_rule) "
               "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
               (n, gid, name, "", name.replace(" ", ""), None, 0, 1,
                json.dumps(["DynamicMembership"] if rule else []), "2026-01-05T09:00:00Z", lic, None, rule))
        return gid

    def add_member(self, gid: str, uid: str) -> None:
        n = self.q("SELECT COALESCE(MAX(n), 0) + 1 AS n FROM members WHERE group_id=?", (gid,))[0]["n"]
        self.q("INSERT INTO members VALUES(?,?,?)", (gid, uid, n))

    def members(self, gid: str) -> set[str]:
        return {r["user_id"] for r in self.q("SELECT user_id FROM members WHERE group_id=?", (gid,))}

    def states(self, name: str) -> list[tuple[str, str | None, str]]:
        """(part number, group name or None, state) of every licenseAssignmentState of the user."""
        parts = {r["sku_id"]: r["part_number"] for r in self.q("SELECT sku_id, part_number FROM skus")}
        groups = {r["id"]: r["display_name"] for r in self.q("SELECT id, display_name FROM groups")}
        lic = json.loads(self.q("SELECT licenses FROM users WHERE id=?", (self.uid(name),))[0]["licenses"])
        return sorted(((parts[s["skuId"]], groups.get(s["assignedByGroup"]), s["state"]) for s in lic),
                      key=lambda t: (t[0], t[1] or "", t[2]))  # direct (None) before a group's

    def give_through(self, name: str, gid: str, part: str) -> None:
        """Make the user a member of the group with the group's license Active on them (as Entra leaves it)."""
        uid = self.uid(name)
        self.add_member(gid, uid)
        lic = json.loads(self.q("SELECT licenses FROM users WHERE id=?", (uid,))[0]["licenses"])
        lic.append({"assignedByGroup": gid, "disabledPlans": [], "error": "None", "skuId": self.sku(part),
                    "lastUpdatedDateTime": "2026-01-05T09:00:00Z", "state": "Active"})
        self.q("UPDATE users SET licenses=? WHERE id=?", (json.dumps(lic), uid))
        self.q("UPDATE skus SET consumed = consumed + 1 WHERE part_number=?", (part,))

    def free(self, part: str) -> int:
        r = self.q("SELECT enabled, consumed FROM skus WHERE part_number=?", (part,))[0]
        return int(r["enabled"] - r["consumed"])

    def set_free(self, part: str, free: int) -> None:
        self.q("UPDATE skus SET enabled = consumed + ? WHERE part_number=?", (free, part))


def only_run(workdir: Path) -> Path:
    runs = [p for p in (workdir / "reports").iterdir() if (p / "results.xlsx").exists()]
    assert len(runs) == 1, runs
    return runs[0]


def drift_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("  ")]


def test_group_missing_is_fixed_by_adding_the_user_and_the_license_arrives(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    e3_free = tenant.free("SPE_E3")
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "SPE_E3", "Held": "group", "Groups": ""},
        {"userPrincipalName": upn("henrietta.mueller"), "skuPartNumber": "POWERAPPS_PER_USER", "Held": "group",
         "Groups": f"{PA} (Active)"},
        {"userPrincipalName": upn("henrietta.mueller"), "skuPartNumber": "Microsoft_Teams_EEA_New", "Held": "direct",
         "Groups": ""},
    ])
    code, _, err = run(capsys, "reconcile", str(path), "--apply")
    assert code == 0, err
    run_dir = only_run(workdir)
    assert err.splitlines()[1:7] == [
        f"Drift (scope users): group-missing 2. Report: reports/{run_dir.name}/drift.xlsx",
        f"  group-missing     row 2: {upn('pradeep.gupta')} should hold SPE_E3 through a group, and no group gives "
        f"it: add to '{E3}' (the Groups cell is empty: the only group of the tenant that gives SPE_E3)  [--apply "
        "(group membership)]",
        f"  group-missing     row 3: {upn('henrietta.mueller')} should hold POWERAPPS_PER_USER through a group, and "
        f"no group gives it: add to '{PA}'  [--apply (group membership)]",
        "Capacity if the drift is fixed:",
        f"  SPE_E3: takes 1, frees 0, {e3_free - 1} free afterwards",
        "  POWERAPPS_PER_USER: takes 1, frees 0, 0 free afterwards",
    ]
    assert "group processing: 2/2 members processed by Entra" in err
    assert "3 rows - 2 applied, 1 unchanged, 0 skipped, 0 failed, 0 not run" in err
    assert tenant.uid("pradeep.gupta") in tenant.members(tenant.gid(E3))
    assert tenant.states("pradeep.gupta") == [("SPE_E3", E3, "Active")]
    assert ("POWERAPPS_PER_USER", PA, "Active") in tenant.states("henrietta.mueller")
    assert tenant.free("SPE_E3") == e3_free - 1
    rows = xlsx_rows(run_dir / "results.xlsx", "Results")
    assert [(r["Status"], r["Action"], r["Licenses before"], r["Licenses after"]) for r in rows[:2]] == [
        ("applied", f"add to group {E3}", None, "SPE_E3"),
        ("applied", f"add to group {PA}", "Microsoft_Teams_EEA_New",
         "Microsoft_Teams_EEA_New, POWERAPPS_PER_USER"),
    ]
    code, _, err = run(capsys, "reconcile", str(path))
    assert code == 0, err  # fixed: no drift left


def test_a_membership_fix_that_entra_refuses_reads_back_as_failed(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seats taken between the reconcile and its apply: the write succeeds, Entra leaves the license in Error and
    the row says so with Entra's error and the fix."""
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "POWERAPPS_PER_USER", "Held": "group",
         "Groups": PA},
    ])
    with jobs.open_session(load_settings()) as s:
        rec = reconcile(s, path)
        assert [op.key for op in rec.operations] == [f"{tenant.gid(PA)}/addMembers/0"]
        tenant.set_free("POWERAPPS_PER_USER", 0)  # another admin took the last seat meanwhile
        result = jobs.execute(s, rec.prepared, processing_wait_s=20)
    (row,) = result.rows
    assert (row.status.value, row.code) == ("failed", "CountViolation")
    assert row.message == (f"Added to '{PA}', but its license POWERAPPS_PER_USER is in state Error (CountViolation): "
                           "no seat of POWERAPPS_PER_USER was left when Entra processed the group. The user has no "
                           "POWERAPPS_PER_USER from the group.")
    assert tenant.states("pradeep.gupta") == [("POWERAPPS_PER_USER", PA, "Error")]
    # reconciled again: the user is a member and the group's license is in Error: no write helps, the fix is said
    code, _, err = run(capsys, "reconcile", str(path), "--apply")
    assert code == 1, err
    assert drift_lines(err)[0] == (
        f"  group-missing     row 2: {upn('pradeep.gupta')} should hold POWERAPPS_PER_USER through a group: they are "
        f"a member of '{PA}', but its POWERAPPS_PER_USER is in state Error for them (CountViolation): no seat of "
        "POWERAPPS_PER_USER was left when Entra processed the group  [Buy or free POWERAPPS_PER_USER seats; Entra "
        "retries the group's members on its own (or reprocess the group), then reconcile again.]")
    assert err.splitlines()[-1] == "Nothing to apply. (Removals need --prune.)"


def test_group_unexpected_is_removed_only_with_prune_and_a_group_giving_a_wanted_license_is_left_alone(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    both = "Licensing - E3 and Audio"
    tenant.add_group(both, ("SPE_E3", "MCOMEETADV"))
    members = write_csv(workdir / "join.csv", [{"User": upn("pradeep.gupta"), "Group": both}])
    assert run(capsys, "apply", str(members))[0] == 0  # pradeep gets E3 and Audio Conferencing through it
    assert tenant.states("pradeep.gupta") == [("MCOMEETADV", both, "Active"), ("SPE_E3", both, "Active")]
    e3_free = tenant.free("SPE_E3")
    path = write_csv(workdir / "want.csv", [
        # pradeep: Audio Conferencing through the group, E3 not wanted; nestor: Power BI, E3 (his group's) not wanted
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "MCOMEETADV", "Held": "group", "Groups": both},
        {"userPrincipalName": upn("nestor.wilke"), "skuPartNumber": "POWER_BI_PRO", "Held": "direct", "Groups": ""},
    ])
    code, _, err = run(capsys, "reconcile", str(path), "--apply")
    assert code == 0, err
    unexpected = [line for line in err.splitlines() if line.startswith("  group-unexpected")]
    assert unexpected == [
        f"  group-unexpected  {upn('pradeep.gupta')} holds SPE_E3 through group '{both}'; the sheet does not ask for "
        f"it; left alone: '{both}' also gives MCOMEETADV, which the sheet asks this user to hold through a group  "
        f"[ask for SPE_E3 in the sheet, or give the other license another way than '{both}']",
        f"  group-unexpected  {upn('nestor.wilke')} holds SPE_E3 through group '{E3}'; the sheet does not ask for it  "
        f"[run with --apply --prune to remove the user from '{E3}']",
    ]
    assert f"  SPE_E3: takes 0, frees 0, {e3_free} free afterwards (--prune would free 1 more)" in err.splitlines()
    assert tenant.uid("nestor.wilke") in tenant.members(tenant.gid(E3))  # without --prune: left in the group
    earlier = set((workdir / "reports").iterdir())
    code, _, err = run(capsys, "reconcile", str(path), "--apply", "--prune")
    assert code == 0, err
    (run_dir,) = set((workdir / "reports").iterdir()) - earlier
    assert (f"  group-unexpected  {upn('nestor.wilke')} holds SPE_E3 through group '{E3}'; the sheet does not ask for "
            f"it: remove from '{E3}'  [--apply --prune (group membership)]") in err.splitlines()
    assert f"  SPE_E3: takes 0, frees 1, {e3_free + 1} free afterwards" in err.splitlines()
    assert "group processing: 1/1 members processed by Entra" in err
    assert tenant.uid("nestor.wilke") not in tenant.members(tenant.gid(E3))
    assert tenant.states("nestor.wilke") == [("POWER_BI_PRO", None, "Active")]
    assert tenant.uid("pradeep.gupta") in tenant.members(tenant.gid(both))  # the conflict: left alone
    assert tenant.free("SPE_E3") == e3_free + 1
    rows = xlsx_rows(run_dir / "results.xlsx", "Results")
    nestor = [r for r in rows if r["userPrincipalName"] == upn("nestor.wilke") and r["skuPartNumber"] == "SPE_E3"]
    assert [(r["Row"], r["Status"], r["Action"], r["Licenses before"], r["Licenses after"]) for r in nestor] == [
        (5, "applied", f"remove from group {E3}", "SPE_E3, POWER_BI_PRO", "POWER_BI_PRO")]


def test_what_no_membership_write_can_fix_stays_advice(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule-based group (to join or to leave), two groups giving the license and no group named, groups that
    do not exist or do not give the license: advice with the fix, nothing sent, even with --prune."""
    tenant.add_group("Licensing - Power BI (rule)", ("POWER_BI_PRO",), rule='(user.department -eq "Legal")')
    tenant.add_group("Licensing - E3 (contractors)", ("SPE_E3",))
    audio = tenant.add_group("Licensing - Audio (rule)", ("MCOMEETADV",), rule='(user.department -eq "Legal")')
    tenant.give_through("joni.sherman", audio, "MCOMEETADV")
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("megan.bowen"), "skuPartNumber": "POWER_BI_PRO", "Held": "group",
         "Groups": "Licensing - Power BI (rule) (Active)"},
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "SPE_E3", "Held": "group", "Groups": ""},
        {"userPrincipalName": upn("megan.bowen"), "skuPartNumber": "MCOMEETADV", "Held": "group",
         "Groups": "No Such Group; Licensing - Copilot (Active)"},
        {"userPrincipalName": upn("joni.sherman"), "skuPartNumber": "POWER_BI_PRO", "Held": "direct", "Groups": ""},
    ])
    code, _, err = run(capsys, "reconcile", str(path), "--apply", "--prune")
    assert code == 1, err
    assert drift_lines(err) == [
        f"  group-missing     row 2: {upn('megan.bowen')} should hold POWER_BI_PRO through a group, and no group "
        "gives it: 'Licensing - Power BI (rule)' has rule-based membership ((user.department -eq \"Legal\"))  [change "
        "the group's rule or the user's attributes so the rule includes them]",
        f"  group-missing     row 3: {upn('pradeep.gupta')} should hold SPE_E3 through a group, and no group gives "
        f"it; 2 groups give SPE_E3 ('Licensing - E3 (contractors)', '{E3}')  [name the group that gives SPE_E3 in the "
        "Groups column]",
        f"  group-missing     row 4: {upn('megan.bowen')} should hold MCOMEETADV through a group, and no group gives "
        "it (no group 'No Such Group' in the tenant; 'Licensing - Copilot' does not give MCOMEETADV)  [name the "
        "group that gives MCOMEETADV in the Groups column]",
        f"  group-unexpected  {upn('joni.sherman')} holds MCOMEETADV through group 'Licensing - Audio (rule)'; the "
        "sheet does not ask for it; 'Licensing - Audio (rule)' has rule-based membership ((user.department -eq "
        "\"Legal\"))  [change the group's rule or the user's attributes so the rule excludes them]",
    ]
    assert err.splitlines()[-1] == "Nothing to apply."
    assert tenant.uid("joni.sherman") in tenant.members(audio)
    assert tenant.states("pradeep.gupta") == [] and tenant.states("megan.bowen") == []


def test_membership_seats_count_and_a_shortfall_refuses_the_fix(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tenant.free("POWERAPPS_PER_USER") == 1
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn(u), "skuPartNumber": "POWERAPPS_PER_USER", "Held": "group", "Groups": PA}
        for u in ("pradeep.gupta", "joni.sherman")
    ] + [{"userPrincipalName": upn("joni.sherman"), "skuPartNumber": "POWER_BI_PRO", "Held": "direct", "Groups": ""}])
    code, _, err = run(capsys, "reconcile", str(path), "--apply")
    assert code == 1, err
    assert err.splitlines()[-4:] == [
        "Capacity if the drift is fixed:",
        "  POWERAPPS_PER_USER: takes 2, frees 0, -1 free afterwards: short by 1",
        "Nothing was applied: fixing the drift needs more seats than the tenant has free.",
        "POWERAPPS_PER_USER: takes 2, frees 0, -1 free afterwards: short by 1",
    ]
    assert tenant.members(tenant.gid(PA)).isdisjoint({tenant.uid("pradeep.gupta"), tenant.uid("joni.sherman")})


def test_a_membership_sheet_is_desired_state_both_ways(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing members are added with --apply; a remove row and members of the scope the sheet leaves out only go
    with --prune; unknown users and groups are row errors naming row and column."""
    px = tenant.add_group("Project X")
    for name in ("adele.vance", "isaiah.langer", "lidia.holloway"):
        tenant.add_member(px, tenant.uid(name))
    pa_free = tenant.free("POWERAPPS_PER_USER")
    path = write_csv(workdir / "members.csv", [
        {"User": upn("adele.vance"), "Group": "Project X", "Action": "add"},
        {"User": upn("pradeep.gupta"), "Group": "Project X", "Action": ""},
        {"User": upn("johanna.lorenz"), "Group": PA, "Action": "remove"},
        {"User": upn("nobody"), "Group": "Project X", "Action": ""},
        {"User": upn("pradeep.gupta"), "Group": "No Such Group", "Action": ""},
    ])
    code, _, err = run(capsys, "reconcile", str(path), "--scope", "group=Project X", "--apply")
    assert code == 1, err
    assert drift_lines(err)[:7] == [
        f"  member-missing    row 3: {upn('pradeep.gupta')} should be a member of 'Project X' and is not  [--apply]",
        f"  member-extra      row 4: {upn('johanna.lorenz')} should not be a member of '{PA}' (row 4 says remove)  "
        f"[run with --apply --prune to remove the user from '{PA}']",
        f"  member-extra      {upn('isaiah.langer')} is a member of 'Project X'; the sheet does not list them for it  "
        "[run with --apply --prune to remove the user from 'Project X']",
        f"  member-extra      {upn('lidia.holloway')} is a member of 'Project X'; the sheet does not list them for it  "
        "[run with --apply --prune to remove the user from 'Project X']",
        f"  row-error         row 5: No user '{upn('nobody')}' in the tenant. (column User)  [Check the spelling, or "
        "create the user before adding them to the group.]",
        "  row-error         row 6: Row 6: no group 'No Such Group' in the tenant (column Group).  [Check the group's "
        "display name, or give its object id.]",
        f"  POWERAPPS_PER_USER: takes 0, frees 0, {pa_free} free afterwards (--prune would free 1 more)",
    ]
    assert tenant.members(px) == {tenant.uid(n) for n in ("adele.vance", "isaiah.langer", "lidia.holloway",
                                                          "pradeep.gupta")}
    earlier = set((workdir / "reports").iterdir())
    code, _, err = run(capsys, "reconcile", str(path), "--scope", "group=Project X", "--apply", "--prune")
    assert code == 1, err  # the two rows in error
    (run_dir,) = set((workdir / "reports").iterdir()) - earlier
    assert "group processing: 3/3 members processed by Entra" in err
    assert tenant.members(px) == {tenant.uid("adele.vance"), tenant.uid("pradeep.gupta")}
    assert tenant.uid("johanna.lorenz") not in tenant.members(tenant.gid(PA))
    assert tenant.states("johanna.lorenz") == [("SPE_E3", None, "Active")]
    assert tenant.free("POWERAPPS_PER_USER") == pa_free + 1
    rows = xlsx_rows(run_dir / "results.xlsx", "Results")
    got = [(r["Row"], r["User"], r["Status"], r["Action (result)"], r["Error code"], r["Licenses after"]) for r in rows]
    assert got == [
        (2, upn("adele.vance"), "unchanged", "add to group Project X", "group-no-license", "SPE_E3"),
        (3, upn("pradeep.gupta"), "unchanged", "add to group Project X", "group-no-license", None),  # added before
        (4, upn("johanna.lorenz"), "applied", f"remove from group {PA}", None, "SPE_E3"),
        (5, upn("nobody"), "skipped", "add to group Project X", "user-not-found", None),
        (6, upn("pradeep.gupta"), "skipped", "add to group No Such Group", "group-unknown", None),
        (7, upn("isaiah.langer"), "applied", "remove from group Project X", None, "SPE_E3"),
        (8, upn("lidia.holloway"), "applied", "remove from group Project X", None, "SPE_E3, MCOMEETADV"),
    ]
    assert rows[2]["Drift"] == (f"member-extra: {upn('johanna.lorenz')} should not be a member of '{PA}' (row 4 says "
                                "remove)")


def test_membership_writes_from_license_rows_and_membership_sheets_merge_per_group(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run of 20-member writes per group whatever asked (keys do not collide), a seat counted once per user,
    and a membership row that keeps a user in a group calls off the removal the license rows would make."""
    import openpyxl

    tenant.set_free("SPE_E3", 100)
    e3, e3_sku, teams = tenant.gid(E3), tenant.sku("SPE_E3"), tenant.sku("Microsoft_Teams_EEA_New")
    others = [r["upn"] for r in tenant.q(  # users E3 can go to (Teams EEA's Skype plan conflicts with E3's)
        "SELECT upn FROM users WHERE account_enabled=1 AND user_type='Member' AND usage_location IS NOT NULL "
        "AND licenses NOT LIKE ? AND licenses NOT LIKE ? AND upn_lower NOT LIKE 'pradeep%' ORDER BY n",
        (f"%{e3_sku}%", f"%{teams}%"))][:24]
    wb = openpyxl.Workbook()
    lic = wb.active
    assert lic is not None
    lic.title = "Licenses"
    for row in (HEADERS, [upn("pradeep.gupta"), "SPE_E3", "group", ""], [upn("nestor.wilke"), "POWER_BI_PRO",
                                                                          "direct", ""]):
        lic.append(row)
    mem = wb.create_sheet("Members")
    for row in (["User", "Group"], [upn("pradeep.gupta"), E3], [upn("nestor.wilke"), E3], *[[u, E3] for u in others]):
        mem.append(row)
    path = workdir / "both.xlsx"
    wb.save(path)
    with jobs.open_session(load_settings()) as s:
        rec = reconcile(s, path, prune=True)
        ops = rec.operations
        plan = rec.plan
    adds = [op for op in ops if op.kind.value == "addMembers"]
    assert [op.key for op in adds] == [f"{e3}/addMembers/0", f"{e3}/addMembers/1"]
    bound = [ref.rsplit("/", 1)[-1] for op in adds for ref in op.body["members@odata.bind"]]
    assert len(bound) == len(set(bound)) == 25 and bound[0] == tenant.uid("pradeep.gupta")
    # row indexes: the licenses sheet 0-1, nestor's E3 (below it) 2, the membership sheet 3 (pradeep), 4 (nestor), ...
    assert adds[0].rows == (0, 3, *range(5, 24))  # pradeep's license row and membership row: one write
    assert adds[1].rows == tuple(range(24, 29))
    assert not [op for op in ops if op.kind.value == "removeMember"]  # nestor stays: the membership sheet keeps him
    assert [op.kind.value for op in ops] == ["assignLicense", "addMembers", "addMembers"]  # nestor's Power BI
    (e3_line,) = [c for c in rec.capacity if c.part_number == "SPE_E3"]
    assert (e3_line.needed, e3_line.freed) == (25, 0)
    nestor = rec.drift[rec.drift["target"] == upn("nestor.wilke")]
    assert nestor[["kind", "fix", "applied"]].values.tolist() == [
        ["missing", "--apply", True],
        ["group-unexpected", "resolve the conflict between the sheets", False],
    ]
    assert nestor["detail"].tolist()[1] == (
        f"{upn('nestor.wilke')} holds SPE_E3 through group '{E3}'; the sheet does not ask for it; left alone: the "
        f"membership sheet keeps {upn('nestor.wilke')} in '{E3}' (row 3)")
    kinds = {c.request.row: (type(c).__name__, str(c.status)) for c in plan.validation.requests}
    assert [kinds[i] for i in (0, 1, 2, 3, 4)] == [
        ("CheckedGroup", "ready"), ("CheckedRequest", "ready"), ("CheckedGroup", "unchanged"),
        ("CheckedGroup", "ready"), ("CheckedGroup", "unchanged")]  # nestor: a member already
    assert sorted(rec.drift["kind"].value_counts().items()) == [
        ("group-missing", 1), ("group-unexpected", 1), ("member-missing", 25), ("missing", 1)]


def test_a_user_whose_location_the_run_sets_joins_the_groups_merged_write(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str], journal_sql: Any
) -> None:
    """Group-based licensing gives a member without a usage location the directory's (Microsoft's docs), so the
    membership write is not held back for the run's location PATCH: the group's users go in one write."""
    tenant.q("UPDATE users SET usage_location=NULL WHERE id=?", (tenant.uid("pradeep.gupta"),))
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "SPE_E3", "Held": "group", "Groups": E3,
         "Usage location": "DE"},
        {"userPrincipalName": upn("patricia.robinson"), "skuPartNumber": "SPE_E3", "Held": "group", "Groups": E3,
         "Usage location": ""},
        {"userPrincipalName": upn("sarah.perez"), "skuPartNumber": "SPE_E3", "Held": "group", "Groups": E3,
         "Usage location": ""},
    ])
    code, _, err = run(capsys, "reconcile", str(path), "--apply")
    assert code == 0, err
    ops = journal_sql(only_run(workdir), "SELECT kind, body, depends_on, state FROM operation ORDER BY seq")
    pradeep, patricia, sarah = (tenant.uid(n) for n in ("pradeep.gupta", "patricia.robinson", "sarah.perez"))
    assert [(kind, sorted(ref.rsplit("/", 1)[1] for ref in json.loads(b)["members@odata.bind"]), dep, state)
            for kind, b, dep, state in ops if kind == "addMembers"] == [
        ("addMembers", sorted([pradeep, patricia, sarah]), None, "succeeded")]
    assert [(kind, state) for kind, _b, _d, state in ops if kind == "setUsageLocation"] == [
        ("setUsageLocation", "succeeded")]
    assert tenant.q("SELECT usage_location FROM users WHERE id=?", (pradeep,))[0][0] == "DE"
    assert tenant.states("pradeep.gupta") == [("SPE_E3", E3, "Active")]


def test_a_membership_fix_entra_has_not_processed_yet_says_pending(
    workdir: Path, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_GROUP_PROCESSING_SECONDS", "3600")
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "SPE_E3", "Held": "group", "Groups": E3}])
    with jobs.open_session(load_settings()) as s:
        result = jobs.execute(s, reconcile(s, path).prepared, processing_wait_s=0)
    (row,) = result.rows
    assert (row.status.value, row.code) == ("applied", "group-processing-pending")
    assert row.message == f"Added to '{E3}'; Entra has not processed SPE_E3 for this user yet."
    assert row.fix == f"Run 'license-batch status {result.run_id}' later to read the outcome."


def test_a_license_held_directly_and_through_a_group_is_cleared_in_one_prune(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unasked-for E3, held directly and through the E3 group: --prune removes the direct assignment AND takes
    the user out of the group (one seat freed, counted once); afterwards no drift is left for them. A group that
    also gives a wanted license is still left alone (the direct copy goes, the group's stays advice)."""
    both = "Licensing - E3 and Audio"
    tenant.add_group(both, ("SPE_E3", "MCOMEETADV"))
    members = write_csv(workdir / "join.csv", [{"User": upn("pradeep.gupta"), "Group": both}])
    assert run(capsys, "apply", str(members))[0] == 0
    direct = write_csv(workdir / "direct.csv", [{"User": upn(u), "License": p, "Disabled plans": ""} for u, p in
                                                (("nestor.wilke", "SPE_E3"), ("nestor.wilke", "POWER_BI_PRO"),
                                                 ("pradeep.gupta", "SPE_E3"))])
    assert run(capsys, "apply", str(direct))[0] == 0
    assert tenant.states("nestor.wilke") == [("POWER_BI_PRO", None, "Active"), ("SPE_E3", None, "Active"),
                                             ("SPE_E3", E3, "Active")]
    assert tenant.states("pradeep.gupta") == [("MCOMEETADV", both, "Active"), ("SPE_E3", None, "Active"),
                                              ("SPE_E3", both, "Active")]
    e3_free = tenant.free("SPE_E3")
    path = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("nestor.wilke"), "skuPartNumber": "POWER_BI_PRO", "Held": "direct", "Groups": ""},
        {"userPrincipalName": upn("pradeep.gupta"), "skuPartNumber": "MCOMEETADV", "Held": "group", "Groups": both},
    ])
    nestor = f"{upn('nestor.wilke')} holds SPE_E3 directly and through group '{E3}'; the sheet does not ask for it"
    pradeep = (f"{upn('pradeep.gupta')} holds SPE_E3 directly and through group '{both}'; the sheet does not ask "
               "for it")
    left_alone = (f"  group-unexpected  {pradeep}; left alone: '{both}' also gives MCOMEETADV, which the sheet asks "
                  f"this user to hold through a group  [ask for SPE_E3 in the sheet, or give the other license another "
                  f"way than '{both}']")

    code, _, err = run(capsys, "reconcile", str(path), "--apply")  # without --prune: nothing removed
    assert code == 1, err
    assert drift_lines(err) == [
        f"  extra             {pradeep}  [run with --apply --prune to remove the direct assignment]",
        f"  extra             {nestor}  [run with --apply --prune to remove the direct assignment]",
        left_alone,
        f"  group-unexpected  {nestor}  [run with --apply --prune to remove the user from '{E3}']",
        f"  SPE_E3: takes 0, frees 0, {e3_free} free afterwards (--prune would free 1 more)",
    ]
    assert err.splitlines()[-1] == "Nothing to apply. (Removals need --prune.)"
    assert tenant.uid("nestor.wilke") in tenant.members(tenant.gid(E3))
    assert ("SPE_E3", None, "Active") in tenant.states("nestor.wilke")

    code, _, err = run(capsys, "reconcile", str(path), "--apply", "--prune")
    assert code == 0, err
    assert drift_lines(err)[:5] == [
        f"  extra             {pradeep}: the direct assignment is removed (the group's: group-unexpected)  "
        "[--apply --prune]",
        f"  extra             {nestor}: the direct assignment is removed (the group's: group-unexpected)  "
        "[--apply --prune]",
        left_alone,
        f"  group-unexpected  {nestor}: remove from '{E3}'  [--apply --prune (group membership)]",
        f"  SPE_E3: takes 0, frees 1, {e3_free + 1} free afterwards",
    ]
    assert "group processing: 1/1 members processed by Entra" in err
    assert tenant.uid("nestor.wilke") not in tenant.members(tenant.gid(E3))
    assert tenant.states("nestor.wilke") == [("POWER_BI_PRO", None, "Active")]
    assert tenant.states("pradeep.gupta") == [("MCOMEETADV", both, "Active"), ("SPE_E3", both, "Active")]
    assert tenant.free("SPE_E3") == e3_free + 1

    code, summary, err = run_json(capsys, "reconcile", str(path))
    assert code == 1, err
    assert summary["kinds"] == {"group-unexpected": 1}  # only pradeep's conflict, which no run may fix
    assert drift_lines(err) == [left_alone.replace(f"{upn('pradeep.gupta')} holds SPE_E3 directly and through",
                                                   f"{upn('pradeep.gupta')} holds SPE_E3 through")]
    assert upn("nestor.wilke") not in err


def test_redundant_packs_held_through_groups_name_the_group_and_count_only_seats_really_freed(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """E3 next to E5 adds nothing. Through the E3 group only: the user leaves the group (it cannot be removed
    directly). Directly and through the group: removing the direct copy frees no seat (not counted). Through a
    group that gives E5 too: leaving would take E5, so the advice is the group's licenses."""
    both = "Licensing - E3 and E5"
    tenant.add_group(both, ("SPE_E3", "SPE_E5"))
    assert run(capsys, "apply", str(write_csv(workdir / "join.csv", [{"User": upn("megan.bowen"), "Group": both}])))[
        0] == 0
    give = write_csv(workdir / "e5.csv", [{"User": upn(u), "License": "SPE_E5", "Disabled plans": ""}
                                          for u in ("nestor.wilke", "isaiah.langer")])
    assert run(capsys, "apply", str(give))[0] == 0
    assert tenant.states("nestor.wilke") == [("SPE_E3", E3, "Active"), ("SPE_E5", None, "Active")]
    assert tenant.states("isaiah.langer") == [("SPE_E3", None, "Active"), ("SPE_E3", E3, "Active"),
                                              ("SPE_E5", None, "Active")]
    assert tenant.states("megan.bowen") == [("SPE_E3", both, "Active"), ("SPE_E5", both, "Active")]
    assert run(capsys, "export", "users", "-o", str(workdir / "now.csv"))[0] == 0
    names = {upn(n) for n in ("nestor.wilke", "isaiah.langer", "megan.bowen")}
    write_csv(workdir / "wanted.csv", [r for r in read_csv(workdir / "now.csv") if r["userPrincipalName"] in names])

    code, summary, err = run_json(capsys, "reconcile", str(workdir / "wanted.csv"))
    assert code == 0, err  # advice only
    assert summary["kinds"] == {"redundant": 3}
    assert summary["redundant_seats"] == {"SPE_E3": 2}  # nestor's and megan's; isaiah's stays while the group gives it
    head = "SPE_E3 adds nothing next to SPE_E5"
    assert drift_lines(err) == [
        f"  redundant         {upn('isaiah.langer')}: {head}: it is held directly and through group '{E3}': removing "
        "the direct copy frees no seat while the group gives it  [advice]",
        f"  redundant         {upn('megan.bowen')}: {head}: it comes through group '{both}' (a license from a group "
        f"cannot be removed from the user), and leaving would take SPE_E5 as well: remove SPE_E3 from the group's "
        "licenses, or give the user SPE_E5 another way  [advice]",
        f"  redundant         {upn('nestor.wilke')}: {head}: it comes through group '{E3}' (a license from a group "
        f"cannot be removed from the user): taking the user out of '{E3}' frees 1 seat  [advice]",
        "  SPE_E3: 2 seat(s) held as redundant packs could be freed",
    ]


def test_two_membership_sheets_are_one_desired_state(
    workdir: Path, tenant: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows on two membership sheets are checked together: one removing and one adding the same user to the same
    group are both row errors naming the other sheet (nothing is sent for them, even with --prune), and a user one
    sheet lists for a group is not a member "the sheet does not list" on the other."""
    import openpyxl

    px = tenant.add_group("Project X")
    for name in ("adele.vance", "isaiah.langer"):
        tenant.add_member(px, tenant.uid(name))
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    first.title = "Members"
    for row in (["User", "Group", "Action"], [upn("adele.vance"), "Project X", "remove"],
                [upn("isaiah.langer"), "Project X", "add"]):
        first.append(row)
    second = wb.create_sheet("Members 2")
    for row in (["User", "Group", "Action"], [upn("adele.vance"), "Project X", "add"],
                [upn("lidia.holloway"), "Project X", "add"]):
        second.append(row)
    path = workdir / "members.xlsx"
    wb.save(path)
    with jobs.open_session(load_settings()) as s:
        rec = reconcile(s, path, scope="group=Project X", prune=True)
        ops = rec.operations
        plan = rec.plan
    assert [(op.kind.value, op.rows) for op in ops] == [("addMembers", (3,))]  # lidia only (row indexes 0-1, 2-3)
    assert rec.drift[["kind", "target", "sheet", "row", "applied"]].values.tolist() == [
        ["member-missing", upn("lidia.holloway"), "Members 2", 3, True],
        ["row-error", "", "Members", 2, False],  # the row, and its sheet: each sheet has a row 2
        ["row-error", "", "Members 2", 2, False],
    ]
    assert rec.drift["detail"].tolist()[1:] == [
        f"Row 2: this row removes {upn('adele.vance')} from 'Project X'; row 2 of sheet 'Members 2' adds them.",
        f"Row 2: this row adds {upn('adele.vance')} to 'Project X'; row 2 of sheet 'Members' removes them.",
    ]
    assert set(rec.drift["fix"].tolist()[1:]) == {
        "Keep one of the rows (row 2 of sheet 'Members' and row 2 of sheet 'Members 2')."}
    status = {c.request.row: (c.request.user, str(c.status)) for c in plan.validation.requests}
    assert status == {0: (upn("adele.vance"), "error"), 1: (upn("isaiah.langer"), "unchanged"),
                      2: (upn("adele.vance"), "error"), 3: (upn("lidia.holloway"), "ready")}
    code, _, err = run(capsys, "reconcile", str(path), "--scope", "group=Project X", "--apply", "--prune")
    assert code == 1, err  # the two rows in error
    assert drift_lines(err)[:3] == [
        f"  member-missing    row 3 of sheet 'Members 2': {upn('lidia.holloway')} should be a member of 'Project X' "
        "and is not  [--apply]",
        f"  row-error         row 2 of sheet 'Members': Row 2: this row removes {upn('adele.vance')} from 'Project X'; "
        "row 2 of sheet 'Members 2' adds them.  [Keep one of the rows (row 2 of sheet 'Members' and row 2 of sheet "
        "'Members 2').]",
        f"  row-error         row 2 of sheet 'Members 2': Row 2: this row adds {upn('adele.vance')} to 'Project X'; "
        "row 2 of sheet 'Members' removes them.  [Keep one of the rows (row 2 of sheet 'Members' and row 2 of sheet "
        "'Members 2').]",
    ]
    assert tenant.members(px) == {tenant.uid(n) for n in ("adele.vance", "isaiah.langer", "lidia.holloway")}
    results = only_run(workdir) / "results.xlsx"
    got = [[(r["Row"], r["User"], r["Status"], r["Error code"]) for r in xlsx_rows(results, n)]
           for n in ("Groups results", "Groups results 2")]
    assert got == [
        [(2, upn("adele.vance"), "skipped", "conflicting-rows"),
         (3, upn("isaiah.langer"), "unchanged", "group-no-license")],  # a member already, not "extra"
        [(2, upn("adele.vance"), "skipped", "conflicting-rows"), (3, upn("lidia.holloway"), "applied", None)],
    ]
