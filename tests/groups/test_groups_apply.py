"""Membership waves applied to the sandbox: 20 members per write, removals one per write, the license state each
member ends in once Entra processed the group (Active, CountViolation), an add refused because one member
was there already (re-planned), a timeout with members still unprocessed picked up by ``status``, and
``--via-group``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from batch import jobs
from batch.config import load_settings

from .conftest import Db, only_run_dir, rows_of, run, write_csv

PA = "Licensing - Power Apps Premium"


def _candidates(db: Db, n: int) -> list[sqlite3.Row]:
    """Enabled members with a usage location who do not hold Power Apps Premium and are not in the group."""
    gid, sku = db.group_id(PA), db.sku_id("POWERAPPS_PER_USER")
    out = [u for u in db.users("account_enabled=1 AND user_type='Member' AND usage_location IS NOT NULL "
                               "AND licenses NOT LIKE ?", (f"%{sku}%",)) if u["id"] not in db.members(gid)]
    assert len(out) >= n
    return out[:n]


def _journal(run_dir: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(run_dir / "journal.sqlite")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_wave_adds_twenty_per_write_and_reports_each_members_license(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    gid = db.group_id(PA)
    db.set_seats("POWERAPPS_PER_USER", free=100)
    users = _candidates(db, 45)
    leaving = next(iter(db.members(gid)))
    leaving_upn = db.q("SELECT upn FROM users WHERE id=?", (leaving,))[0]["upn"]
    consumed0 = db.q("SELECT consumed FROM skus WHERE part_number='POWERAPPS_PER_USER'")[0]["consumed"]
    sheet = write_csv(workdir / "wave.csv", ["Work Email", "Licensing group", "Action"],
                      [[u["upn"], PA, "add"] for u in users] + [[leaving_upn, PA, "remove"]])
    code, summary, err = run(capsys, "apply", str(sheet), "--json")
    assert code == 0, err
    assert summary["applied"] == 46 and summary["failed"] == 0
    run_dir = only_run_dir(workdir)
    ops = _journal(run_dir, "SELECT kind, method, state FROM operation ORDER BY seq")
    assert ops == [("removeMember", "DELETE", "succeeded")] + [("addMembers", "PATCH", "succeeded")] * 3
    assert _journal(run_dir, "SELECT requests_sent FROM run") == [(1,)]  # 4 writes in one $batch
    assert {u["id"] for u in users} <= db.members(gid) and leaving not in db.members(gid)
    assert "group processing: 46/46 members processed by Entra" in err
    results = rows_of(run_dir / "results.xlsx", "Results")
    assert [r["Status"] for r in results] == ["applied"] * 46
    assert all("POWERAPPS_PER_USER" in str(r["Licenses after"]) for r in results[:45])
    assert all("POWERAPPS_PER_USER" not in str(r["Licenses before"] or "") for r in results[:45])
    consumed = db.q("SELECT consumed FROM skus WHERE part_number='POWERAPPS_PER_USER'")[0]["consumed"]
    held_elsewhere = "POWERAPPS_PER_USER" in str(results[45]["Licenses after"] or "")
    assert consumed == consumed0 + 45 - (0 if held_elsewhere else 1)


def test_count_violation_when_the_groups_sku_runs_out(workdir: Path, db: Db) -> None:
    """Seats taken by someone else between plan and apply: the write succeeds, Entra gives the last seat to the
    first member processed and leaves the others in Error (CountViolation), taking no seat."""
    gid = db.group_id(PA)
    db.set_seats("POWERAPPS_PER_USER", free=10)
    users = _candidates(db, 3)
    sheet = write_csv(workdir / "cv.csv", ["userPrincipalName", "Group"], [[u["upn"], PA] for u in users])
    settings = load_settings()
    with jobs.open_session(settings) as s:
        prepared = jobs.plan_file(s, sheet)
        assert len(prepared.plan.operations) == 1
        db.set_seats("POWERAPPS_PER_USER", free=1)  # another admin took the rest meanwhile
        consumed0 = db.q("SELECT consumed FROM skus WHERE part_number='POWERAPPS_PER_USER'")[0]["consumed"]
        result = jobs.execute(s, prepared, processing_wait_s=20)
    assert jobs.run_summary(result)["failed"] == 2 and jobs.run_summary(result)["applied"] == 1
    failed = [r for r in result.rows if r.status.value == "failed"]
    for r in failed:
        assert r.code == "CountViolation"
        assert r.message == (f"Added to '{PA}', but its license POWERAPPS_PER_USER is in state Error (CountViolation): "
                             "no seat of POWERAPPS_PER_USER was left when Entra processed the group. The user has no "
                             "POWERAPPS_PER_USER from the group.")
        assert r.fix.startswith("Buy or free POWERAPPS_PER_USER seats; Entra retries the group's members")
        assert "POWERAPPS_PER_USER" not in r.after
    assert db.q("SELECT consumed FROM skus WHERE part_number='POWERAPPS_PER_USER'")[0]["consumed"] == consumed0 + 1
    errs = [s for u in users for s in db.states(u["id"], gid) if s["state"] == "Error"]
    assert [s["error"] for s in errs] == ["CountViolation", "CountViolation"]
    sheet_rows = rows_of(result.report_dir / "results.xlsx", "Results")  # type: ignore[operator]
    assert sorted(str(r["Error code"] or "") for r in sheet_rows) == ["", "CountViolation", "CountViolation"]


def test_an_add_refused_because_one_member_exists_is_replanned_without_it(workdir: Path, db: Db) -> None:
    gid = db.group_id(PA)
    db.set_seats("POWERAPPS_PER_USER", free=10)
    users = _candidates(db, 5)
    sheet = write_csv(workdir / "re.csv", ["userPrincipalName", "Group"], [[u["upn"], PA] for u in users])
    with jobs.open_session(load_settings()) as s:
        prepared = jobs.plan_file(s, sheet)
        db.add_member(gid, users[2]["id"])  # added by someone else after validation
        db.x("INSERT INTO group_jobs(group_id, user_id, due) VALUES(?,?,0)", (gid, users[2]["id"]))
        result = jobs.execute(s, prepared, processing_wait_s=20)
    assert [r.status.value for r in result.rows] == ["applied"] * 5
    run_dir = result.report_dir
    assert run_dir is not None
    attempts = _journal(run_dir, "SELECT n, status FROM attempt ORDER BY n")
    assert attempts == [(1, 400), (2, 204)]
    (body,) = _journal(run_dir, "SELECT body FROM operation")[0]
    assert users[2]["id"] not in str(body) and all(u["id"] in str(body) for u in users[:2])
    assert {u["id"] for u in users} <= db.members(gid)


def test_unprocessed_members_at_the_timeout_say_so_and_status_picks_them_up(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_GROUP_PROCESSING_SECONDS", "3600")
    db.set_seats("POWERAPPS_PER_USER", free=10)
    users = _candidates(db, 2)
    sheet = write_csv(workdir / "slow.csv", ["userPrincipalName", "Group"], [[u["upn"], PA] for u in users])
    code, summary, err = run(capsys, "apply", str(sheet), "--wait-processing", "0.5", "--json")
    assert code == 0 and summary["applied"] == 2
    assert "group processing: 0/2 members processed by Entra" in err
    run_dir = only_run_dir(workdir)
    results = rows_of(run_dir / "results.xlsx", "Results")
    for r in results:
        assert r["Status"] == "applied" and r["Error code"] == "group-processing-pending"
        assert r["Message"] == f"Added to '{PA}'; Entra has not processed POWERAPPS_PER_USER for this user yet."
        assert r["Fix"] == f"Run 'license-batch status {run_dir.name}' later to read the outcome."
    db.due_now()  # Entra gets to them
    code, summary, err = run(capsys, "status", run_dir.name, "--wait-processing", "20", "--json")
    assert code == 0 and summary["applied"] == 2
    results = rows_of(run_dir / "results.xlsx", "Results")
    assert [r["Error code"] for r in results] == [None, None]
    assert all("POWERAPPS_PER_USER" in str(r["Licenses after"]) for r in results)


def test_via_group_plans_license_rows_as_membership_and_says_so(
    workdir: Path, db: Db, capsys: pytest.CaptureFixture[str]
) -> None:
    gid = db.group_id(PA)
    db.set_seats("POWERAPPS_PER_USER", free=100)
    users = _candidates(db, 25)
    rows = [[u["upn"], "POWERAPPS_PER_USER"] for u in users] + [[users[0]["upn"], "POWER_BI_PRO"]]
    sheet = write_csv(workdir / "lic.csv", ["userPrincipalName", "License"], rows)
    db.set_seats("POWER_BI_PRO", free=10)
    code, summary, err = run(capsys, "plan", str(sheet), "--via-group", PA)
    assert code == 0
    assert f"{PA} (gives POWERAPPS_PER_USER): add 24 users in 2 requests (up to 20 per request)" in err
    code, summary, err = run(capsys, "apply", str(sheet), "--via-group", PA, "--json")
    assert code == 0, err
    assert (f"--via-group: 24 users get POWERAPPS_PER_USER as members of '{PA}' (2 writes of up to 20), not as a "
            "direct assignment") in err
    run_dir = workdir / summary["report"]
    run_dir = run_dir.parent
    kinds = [k for (k,) in _journal(run_dir, "SELECT kind FROM operation ORDER BY seq")]
    assert kinds.count("addMembers") == 2 and kinds.count("assignLicense") == 1  # the user with two rows: direct
    assert {u["id"] for u in users[1:]} <= db.members(gid) and users[0]["id"] not in db.members(gid)
    results = rows_of(run_dir / "results.xlsx", "Results")
    assert [r["Status"] for r in results] == ["applied"] * 26
    assert all("POWERAPPS_PER_USER" in str(r["Licenses after"]) for r in results)
    for u in users[1:]:
        assert [s["state"] for s in db.states(u["id"], gid)] == ["Active"]
