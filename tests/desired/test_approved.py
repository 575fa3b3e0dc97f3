"""Approved plans: plan --out writes a plan to review; apply --plan applies exactly it, or refuses a stale one
(licenses, and memberships: the recorded membership of the users a plan names is checked again)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .conftest import run, run_json, upn

WAVE = (f"user,license,usage location\n{upn('adele.vance')},POWER_BI_PRO,\n"
        f"{upn('lidia.holloway')},POWER_BI_PRO,DE\n")


def make_plan(workdir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, dict[str, object]]:
    (workdir / "wave.csv").write_text(WAVE)
    code, _, err = run(capsys, "plan", "wave.csv", "--out", "approved.json")
    assert code == 0, err
    doc = json.loads((workdir / "approved.json").read_text())
    assert f"Plan file: approved.json (sha256 {doc['hash']}); workbook: approved.xlsx." in err
    assert (workdir / "approved.xlsx").exists()
    return workdir / "approved.json", doc


def test_an_approved_plan_applies_exactly_and_records_hash_and_approver(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, doc = make_plan(workdir, capsys)
    assert doc["summary"] == [f"{upn('adele.vance')}: + POWER_BI_PRO",
                              f"{upn('lidia.holloway')}: + POWER_BI_PRO; set usage location DE",
                              "POWER_BI_PRO: takes 2, frees 0, 28 free afterwards"]
    ops = doc["operations"]
    assert isinstance(ops, list) and [o["kind"] for o in ops] == ["assignLicense", "setUsageLocation", "assignLicense"]
    code, summary, err = run_json(capsys, "apply", "--plan", str(path), "--approved-by", "Jo Reviewer")
    assert code == 0, err
    assert summary["applied"] == 2
    run_dir = workdir / "reports" / str(summary["run_id"])
    con = sqlite3.connect(run_dir / "journal.sqlite")
    approved = json.loads(con.execute("SELECT value FROM meta WHERE key = 'approved_plan'").fetchone()[0])
    sent = [r[0] for r in con.execute("SELECT key FROM operation ORDER BY seq")]
    con.close()
    assert approved == {"sha256": doc["hash"], "approved_by": "Jo Reviewer", "file": str(path.resolve())}
    assert sent == [o["key"] for o in ops]  # type: ignore[union-attr]
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["extra"]["approved_plan"] == approved
    # applied now, the same plan is stale: nothing is needed any more
    code, _, err = run(capsys, "apply", "--plan", str(path))
    assert code == 2
    assert "The approved plan is stale: 5 difference(s); nothing was applied." in err
    lines = err.splitlines()
    assert f"  - {upn('adele.vance')} changed since the plan was made: now holds POWER_BI_PRO directly" in lines
    assert (f"  - {upn('lidia.holloway')} changed since the plan was made: now holds POWER_BI_PRO directly; "
            "usage location was US, now DE") in lines


def test_a_stale_plan_is_refused_with_its_differences(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = make_plan(workdir, capsys)
    # someone gives lidia the license meanwhile, and her location changes
    (workdir / "other.csv").write_text(f"user,license,usage location\n{upn('lidia.holloway')},POWER_BI_PRO,FR\n")
    assert run(capsys, "apply", "other.csv")[0] == 0
    code, _, err = run(capsys, "apply", "--plan", str(path), "--approved-by", "Jo")
    assert code == 2, err
    assert "The approved plan is stale: 2 difference(s); nothing was applied." in err
    lines = err.splitlines()
    assert f"  - {upn('lidia.holloway')}: assignLicense is no longer needed or possible" in lines
    assert (f"  - {upn('lidia.holloway')} changed since the plan was made: now holds POWER_BI_PRO directly; usage "
            "location was US, now FR") in lines
    assert "Make a new plan with 'license-batch plan FILE --out PLAN' and have it approved again." in err
    assert not list((workdir / "reports").glob("*/journal.sqlite"))[1:]  # only other.csv's run


def test_an_edited_input_or_plan_file_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, doc = make_plan(workdir, capsys)
    (workdir / "wave.csv").write_text(WAVE + f"{upn('megan.bowen')},POWER_BI_PRO,US\n")
    code, _, err = run(capsys, "apply", "--plan", str(path))
    assert code == 2
    assert "  - the input file " in err and "changed since the plan was made (sha256 differs)" in err
    assert f"  - {upn('megan.bowen')}: assignLicense would now be sent as well" in err
    (workdir / "wave.csv").write_text(WAVE)
    doc["operations"] = doc["operations"][:1]  # type: ignore[index]
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "apply", "--plan", str(path))
    assert code == 2 and "The plan file was edited after it was made." in err


def test_a_plan_of_memberships_is_refused_when_a_membership_changed(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A membership plan records, per group, whether each user it names was a member; applying re-reads those
    users' membership and lists each one that changed."""
    sales = "Sales Team"
    (workdir / "members.csv").write_text(f"userPrincipalName,Group,Action\n{upn('lidia.holloway')},{sales},add\n"
                                         f"{upn('diego.siciliani')},{sales},add\n{upn('isaiah.langer')},{sales},remove\n")
    code, _, err = run(capsys, "plan", "members.csv", "--out", "approved.json")
    assert code == 0, err
    doc = json.loads((workdir / "approved.json").read_text())
    (was,) = doc["targets"].values()
    assert sorted(was["members"].values()) == [False, False, True]
    # meanwhile someone adds diego to the group and removes isaiah from it
    (workdir / "other.csv").write_text(f"userPrincipalName,Group,Action\n{upn('diego.siciliani')},{sales},add\n"
                                       f"{upn('isaiah.langer')},{sales},remove\n")
    code, _, err = run(capsys, "apply", "other.csv")
    assert code == 0, err
    code, _, err = run(capsys, "apply", "--plan", "approved.json")
    assert code == 2, err
    assert "The approved plan is stale: 3 difference(s); nothing was applied." in err
    lines = err.splitlines()
    assert (f"  - {sales} changed since the plan was made: {upn('diego.siciliani')} is now a member of '{sales}'; "
            f"{upn('isaiah.langer')} is no longer a member of '{sales}'") in lines
    assert f"  - {sales}: removeMember is no longer needed or possible" in lines
    (add,) = [o for o in doc["operations"] if o["kind"] == "addMembers"]
    lidia_only = {"members@odata.bind": add["body"]["members@odata.bind"][:1]}
    assert (f"  - {sales}: addMembers would now send {json.dumps(lidia_only)} instead of "
            f"{json.dumps(add['body'])}") in lines
    assert not list((workdir / "reports").glob("*/journal.sqlite"))[1:]  # only other.csv's run


def test_a_membership_the_fresh_plan_did_not_read_is_read_to_check_it(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The group was renamed since the plan was made: planning again does not find it (so reads none of its
    members), yet the users the plan named are looked up and a membership that changed is listed."""
    sales = "Sales Team"
    (workdir / "members.csv").write_text(f"userPrincipalName,Group,Action\n{upn('isaiah.langer')},{sales},remove\n")
    assert run(capsys, "plan", "members.csv", "--out", "approved.json")[0] == 0
    con = sqlite3.connect(workdir / "sandbox.db")
    with con:
        (gid,) = con.execute("SELECT id FROM groups WHERE display_name=?", (sales,)).fetchone()
        con.execute("UPDATE groups SET display_name='Sales' WHERE id=?", (gid,))
        con.execute("DELETE FROM members WHERE group_id=? AND user_id=(SELECT id FROM users WHERE upn_lower=?)",
                    (gid, upn("isaiah.langer")))
    con.close()
    code, _, err = run(capsys, "apply", "--plan", "approved.json")
    assert code == 2, err
    assert "The approved plan is stale: 2 difference(s); nothing was applied." in err
    lines = err.splitlines()
    assert f"  - {sales}: removeMember is no longer needed or possible" in lines
    assert (f"  - {sales} changed since the plan was made: {upn('isaiah.langer')} is no longer a member of "
            f"'{sales}'") in lines
