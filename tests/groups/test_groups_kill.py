"""Kill -9 in the middle of a membership wave, then ``resume``: every member added once, every row applied."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Db, rows_of, write_csv

CLI = "import sys; from batch.cli import main; sys.exit(main(sys.argv[1:]))"


def _ops(journal: Path) -> list[tuple[str, str]]:
    try:
        con = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        try:
            return con.execute("SELECT kind, state FROM operation").fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def test_kill_in_the_middle_of_a_membership_wave_then_resume(workdir: Path, db: Db) -> None:
    gid = db.add_group("Licensing - EMS", sku="EMS")
    db.set_seats("EMS", free=500)
    users = [u for u in db.users("user_type='Member' AND usage_location IS NOT NULL AND account_enabled=1")][:100]
    assert len(users) == 100
    sheet = write_csv(workdir / "wave.csv", ["userPrincipalName", "Group"], [[u["upn"], "Licensing - EMS"]
                                                                              for u in users])
    (workdir / "slow.toml").write_text("[limits]\nwrite_quota = 2\nwrite_window_seconds = 1.0\nbatch_size = 1\n")
    env = {**os.environ}
    cmd = [sys.executable, "-c", CLI]
    log = (workdir / "apply.log").open("wb")
    proc = subprocess.Popen([*cmd, "apply", str(sheet), "--config", "slow.toml", "--json"], cwd=workdir, env=env,
                            stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        journal: Path | None = None
        while time.monotonic() < deadline:
            found = list((workdir / "reports").glob("*/journal.sqlite")) if (workdir / "reports").exists() else []
            if found:
                journal = found[0]
                states = [s for k, s in _ops(journal) if k == "addMembers"]
                if "succeeded" in states and "planned" in states:
                    break
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it was killed: {(workdir / 'apply.log').read_text()}")
            time.sleep(0.02)
        else:
            pytest.fail("the wave never got going")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    assert journal is not None
    states = [s for _k, s in _ops(journal)]
    assert len(states) == 5 and 0 < states.count("succeeded") < 5
    half = db.members(gid)
    assert 0 < len(half) < 100 and len(half) % 20 == 0

    run_id = journal.parent.name
    done = subprocess.run([*cmd, "resume", run_id, "--json"], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["applied"] == 100 and summary["failed"] == 0 and summary["not_run"] == 0
    assert db.members(gid) == {u["id"] for u in users}
    assert all(s == "succeeded" for _k, s in _ops(journal))
    con = sqlite3.connect(journal)
    try:
        sends = con.execute("SELECT op_key, status FROM attempt WHERE status = 204").fetchall()
    finally:
        con.close()
    assert len(sends) <= 5  # no write took effect twice
    results = rows_of(journal.parent / "results.xlsx", "Results")
    assert [r["Status"] for r in results] == ["applied"] * 100
    assert all("EMS" in str(r["Licenses after"]) for r in results)
