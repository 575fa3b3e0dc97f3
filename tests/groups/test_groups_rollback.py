"""rollback of a membership run: users the run added are removed again and users it removed are added back
(read back from the sandbox), the group's licenses follow once Entra processed the group, a user whose
membership someone changed since is left alone and reported, writes whose outcome was never known are handled,
and a rollback can be dry-run, resumed and rolled back itself."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from batch import apply as engine
from batch import jobs
from batch.config import load_settings
from batch.desired.rollback import plan_rollback

from .conftest import Db, rows_of, run, write_csv

Sql = Callable[..., list[tuple[object, ...]]]  # the journal_sql fixture (tests/conftest.py)

PA = "Licensing - Power Apps Premium"


def _wave(workdir: Path, db: Db) -> tuple[str, list[sqlite3.Row], list[sqlite3.Row], Path]:
    """3 users to add to the group (not members, no Power Apps Premium) and 2 of its members to remove."""
    gid = db.group_id(PA)
    db.set_seats("POWERAPPS_PER_USER", free=100)
    sku = db.sku_id("POWERAPPS_PER_USER")
    members = db.members(gid)
    adds = [u for u in db.users("account_enabled=1 AND user_type='Member' AND usage_location IS NOT NULL "
                                "AND licenses NOT LIKE ?", (f"%{sku}%",)) if u["id"] not in members][:3]
    removes = [u for u in db.users("account_enabled=1") if u["id"] in members][:2]
    assert len(adds) == 3 and len(removes) == 2
    sheet = write_csv(workdir / "wave.csv", ["userPrincipalName", "Group", "Action"],
                      [[u["upn"], PA, "add"] for u in adds] + [[u["upn"], PA, "remove"] for u in removes])
    return gid, adds, removes, sheet


def runs(workdir: Path) -> set[Path]:
    return set((workdir / "reports").iterdir())


def new_run(workdir: Path, before: set[Path]) -> Path:
    """The run folder a command made. (Not the last by name: run ids count seconds, and two runs in one second
    sort by their random suffix; picking the last by name made these tests fail now and then.)"""
    (made,) = runs(workdir) - before
    return made


def _applied(workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
             ) -> tuple[str, str, list[sqlite3.Row], list[sqlite3.Row], set[str]]:
    gid, adds, removes, sheet = _wave(workdir, db)
    before = db.members(gid)
    code, summary, err = run(capsys, "apply", str(sheet), "--json")
    assert code == 0 and summary["applied"] == 5, err
    assert db.members(gid) == (before | {u["id"] for u in adds}) - {u["id"] for u in removes}
    return str(summary["run_id"]), gid, adds, removes, before


def _group_states(db: Db, uid: str, gid: str) -> list[str]:
    return [s["state"] for s in db.states(uid, gid)]


def test_rollback_restores_the_memberships_and_the_licenses_follow(
    journal_sql: Sql, workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id, gid, adds, removes, before = _applied(workdir, db, capsys)
    # the journal kept, before the run, the membership of exactly the users the run touched
    (state,) = journal_sql(workdir / "reports" / run_id, "SELECT state FROM target_state WHERE target_id=?", (gid,))[0]
    assert json.loads(str(state)) == {"members": {**{u["id"]: False for u in adds}, **{u["id"]: True for u in removes}}}

    code, _out, err = run(capsys, "rollback", run_id, "--dry-run")
    assert code == 0, err
    lines = err.splitlines()
    assert f"Rollback of run {run_id}: 5 target(s) to restore, 0 changed since the run (left alone)." in lines
    assert [ln for ln in lines if ln.startswith("  restore ")] == (  # in the order the run sent them
        [f"  restore {u['upn']}: add back to '{PA}'" for u in removes]
        + [f"  restore {u['upn']}: remove from '{PA}'" for u in adds])
    assert lines[-1] == "Dry run: nothing was changed."
    assert db.members(gid) != before

    code, summary, err = run(capsys, "rollback", run_id, "--json")
    assert code == 0, err
    assert (summary["applied"], summary["rows"]) == (5, 5)
    assert db.members(gid) == before
    rb_dir = workdir / "reports" / str(summary["run_id"])
    ops = journal_sql(rb_dir, "SELECT kind, method FROM operation ORDER BY seq")
    assert ops == [("removeMember", "DELETE")] * 3 + [("addMembers", "PATCH")]  # the two added back in one write
    # the licenses follow: Entra took the group's license from the users removed, gave it back to the others
    for u in adds:
        assert _group_states(db, u["id"], gid) == []
    for u in removes:
        assert _group_states(db, u["id"], gid) == ["Active"]
    results = rows_of(rb_dir / "results.xlsx", "Results")
    assert [(r["User"], r["Group"], r["Restores"], r["Status"], r["Error code"]) for r in results] == (
        [(u["upn"], PA, f"add back to '{PA}'", "applied", None) for u in removes]
        + [(u["upn"], PA, f"remove from '{PA}'", "applied", None) for u in adds])
    assert all("POWERAPPS_PER_USER" in str(r["Licenses after"]) for r in results[:2])
    assert all("POWERAPPS_PER_USER" not in str(r["Licenses after"] or "") for r in results[2:])

    # a rollback of the rollback puts the run's memberships back
    code, summary2, err = run(capsys, "rollback", str(summary["run_id"]), "--json")
    assert code == 0 and summary2["applied"] == 5, err
    assert db.members(gid) == (before | {u["id"] for u in adds}) - {u["id"] for u in removes}


def test_a_membership_changed_since_the_run_is_left_alone_and_reported(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id, gid, adds, removes, before = _applied(workdir, db, capsys)
    db.x("DELETE FROM members WHERE group_id=? AND user_id=?", (gid, adds[0]["id"]))  # someone removed them again
    db.add_member(gid, removes[0]["id"])  # and added this one back
    code, out, err = run(capsys, "rollback", run_id, "--dry-run", "--json")
    assert code == 1, err
    assert out == {"rollback_of": run_id, "restore": 3, "operations": 3, "changed_since_run": [
        f"{removes[0]['upn']} in '{PA}'", f"{adds[0]['upn']} in '{PA}'"]}
    seen = runs(workdir)
    code, _out, err = run(capsys, "rollback", run_id)
    assert code == 1, err
    lines = err.splitlines()
    assert f"Rollback of run {run_id}: 3 target(s) to restore, 2 changed since the run (left alone)." in lines
    assert f"  changed since the run, left alone: {adds[0]['upn']} in '{PA}'" in lines
    assert f"  changed since the run, left alone: {removes[0]['upn']} in '{PA}'" in lines
    assert db.members(gid) == before - {adds[0]["id"]}  # the others restored; the two left as someone made them
    rb_dir = new_run(workdir, seen)
    results = {r["User"]: r for r in rows_of(rb_dir / "results.xlsx", "Results")}
    r = results[adds[0]["upn"]]
    assert (r["Status"], r["Error code"]) == ("skipped", "changed-since-run")
    assert r["Message"] == (f"{adds[0]['upn']} was removed from '{PA}' by someone else since the run: left alone "
                            "(changed since the run).")
    assert results[removes[0]["upn"]]["Message"] == (
        f"{removes[0]['upn']} was added back to '{PA}' by someone else since the run: left alone (changed since the "
        "run).")
    assert [results[u["upn"]]["Status"] for u in adds[1:] + removes[1:]] == ["applied"] * 3


def test_writes_whose_outcome_was_never_known(
        journal_sql: Sql, workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    """A crash mid-run leaves writes 'sent' or 'unknown': one that took effect is undone, one that did not
    needs nothing (and is not reported as changed by someone else)."""
    run_id, gid, _adds, removes, before = _applied(workdir, db, capsys)
    journal_sql(workdir / "reports" / run_id, "UPDATE operation SET state='unknown' WHERE kind='addMembers'")
    db.add_member(gid, removes[1]["id"])  # as if the removal of this one never reached Graph ...
    journal_sql(workdir / "reports" / run_id, "UPDATE operation SET state='sent' WHERE url LIKE ?",
             (f"%{removes[1]['id']}%",))  # ... and the run never learnt its outcome
    code, out, err = run(capsys, "rollback", run_id, "--json")
    assert code == 0, err
    assert "4 target(s) to restore, 0 changed since the run" in err
    assert db.members(gid) == before
    rb_dir = workdir / "reports" / str(out["run_id"])
    r = next(r for r in rows_of(rb_dir / "results.xlsx", "Results") if r["User"] == removes[1]["upn"])
    assert (r["Status"], r["Message"]) == ("unchanged", f"{removes[1]['upn']}'s membership of '{PA}' is already as "
                                                        "before the run (the run's write did not take effect).")


def test_an_interrupted_rollback_is_resumed(workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]) -> None:
    run_id, gid, _adds, _removes, before = _applied(workdir, db, capsys)
    with jobs.open_session(load_settings()) as s:
        rb = plan_rollback(s, run_id)
        engine.start(rb.plan, run_dir=rb.run_dir, run_id=rb.run_id, tenant_name="sandbox").close()
    assert db.members(gid) != before
    code, summary, err = run(capsys, "resume", rb.run_id, "--json")
    assert code == 0, err
    assert summary["applied"] == 5
    assert db.members(gid) == before


def test_a_run_whose_snapshot_did_not_read_the_members_reads_them_before_it_is_journalled(
    journal_sql: Sql, workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another planner may plan membership writes without reading the group's members: the touched users'
    membership is then read (memberOf, 20 users per $batch) before the journal is written. Here one user the
    plan adds became a member meanwhile: the journal says so (the plan alone would say 'was not a member'), the
    add is re-planned without them, and the rollback leaves them in the group."""
    from dataclasses import replace

    gid, adds, removes, sheet = _wave(workdir, db)
    with jobs.open_session(load_settings()) as s:
        prepared = jobs.plan_file(s, sheet)
        snap = prepared.plan.validation.snapshot
        snap.groups[gid] = replace(snap.groups[gid], members=None)
        db.add_member(gid, adds[0]["id"])  # added by someone else after validation
        before = db.members(gid)
        jobs.execute(s, prepared, processing_wait_s=20)
        run_id = prepared.run_id
    (state,) = journal_sql(workdir / "reports" / run_id, "SELECT state FROM target_state WHERE target_id=?", (gid,))[0]
    assert json.loads(str(state)) == {"members": {adds[0]["id"]: True, **{u["id"]: False for u in adds[1:]},
                                                  **{u["id"]: True for u in removes}}}
    code, summary, err = run(capsys, "rollback", run_id, "--json")
    assert code == 0 and summary["applied"] == 4, err
    assert db.members(gid) == before


def test_memberships_are_read_20_users_per_request_or_by_paging_a_group(
    workdir: Path, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether users are direct members: their memberOf, 20 users per $batch (one request reads 25 users' groups
    in 2), or, when many users of one group are asked about, the group's members paged 999 at a time."""
    from batch.kinds.groups import membership

    gid = db.group_id(PA)
    members = db.members(gid)
    users = [u["id"] for u in db.users()][:25]
    expected = {gid: {u: u in members for u in users}}
    assert set(expected[gid].values()) == {True, False}
    with jobs.open_session(load_settings()) as s:
        graph = s.tenant.graph
        n0 = graph.http.stats.requests
        assert membership.read_memberships(graph, {gid: users}) == expected
        by_user = graph.http.stats.requests - n0
        monkeypatch.setattr(membership, "PAGE_GROUP_FROM", 20)
        n0 = graph.http.stats.requests
        assert membership.read_memberships(graph, {gid: users}) == expected
        paged = graph.http.stats.requests - n0
    assert (by_user, paged) == (2, 1)


def test_a_group_gone_or_now_rule_based_is_left_alone_and_reported(
    journal_sql: Sql, workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    """Graph refuses member writes to a group that no longer exists (404) or is now rule-based ("dynamic"): the
    rollback does not send them, and names the group and why for each pair."""
    run_id, gid, adds, removes, _before = _applied(workdir, db, capsys)
    db.x("UPDATE groups SET membership_rule=?, group_types=? WHERE id=?",
         ('user.department -eq "Sales"', json.dumps(["DynamicMembership"]), gid))
    members = db.members(gid)
    seen = runs(workdir)
    code, out, err = run(capsys, "rollback", run_id, "--json")
    assert code == 1, err
    pairs = [f"{u['upn']} in '{PA}'" for u in removes + adds]
    assert (out["applied"], out["skipped"]) == (0, 5)
    lines = err.splitlines()
    assert f"Rollback of run {run_id}: 0 target(s) to restore, 5 changed since the run (left alone)." in lines
    assert [ln for ln in lines if ln.startswith("  changed since")] == [
        f"  changed since the run, left alone: {p}" for p in pairs]
    assert db.members(gid) == members
    rb_dir = new_run(workdir, seen)
    assert journal_sql(rb_dir, "SELECT COUNT(*) FROM operation") == [(0,)]
    results = rows_of(rb_dir / "results.xlsx", "Results")
    assert [(r["User"], r["Status"], r["Error code"], r["Message"]) for r in results] == [
        (u["upn"], "skipped", "changed-since-run", f"'{PA}' is now rule-based: its members follow its rule; "
         f"{u['upn']} left alone (changed since the run).") for u in removes + adds]

    db.x("DELETE FROM members WHERE group_id=?", (gid,))
    db.x("DELETE FROM groups WHERE id=?", (gid,))
    code, out, err = run(capsys, "rollback", run_id, "--dry-run", "--json")
    assert code == 1, err
    assert out == {"rollback_of": run_id, "restore": 0, "operations": 0, "changed_since_run": pairs}
    seen = runs(workdir)
    code, _out, err = run(capsys, "rollback", run_id)
    assert code == 1, err
    rb_dir = new_run(workdir, seen)
    results = rows_of(rb_dir / "results.xlsx", "Results")
    assert [(r["User"], r["Status"], r["Message"]) for r in results] == [
        (u["upn"], "skipped", f"The group '{PA}' no longer exists: {u['upn']} left alone (changed since the run).")
        for u in removes + adds]
