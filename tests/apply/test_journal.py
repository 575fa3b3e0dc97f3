"""The run journal: real SQLite files, round trips, crash safety, error translation."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from batch.apply.journal import (
    Journal,
    OpState,
    RunMeta,
    Sent,
    Settlement,
    journal_state,
    scrub_argv,
)
from batch.errors import JournalError
from batch.models import RequestStatus

from .helpers import E5, small_plan

REPO = Path(__file__).resolve().parents[2]


def create(path: Path, n: int = 3) -> Journal:
    from batch.apply.results import row_checks, sku_records

    plan = small_plan(n)
    return Journal.create(path, RunMeta(run_id="r1", tool_version="0.1.0", command_line="license-batch apply x",
                                        tenant="sandbox"), plan, checks=row_checks(plan), skus=sku_records(plan))


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "journal.sqlite"
    with create(path):
        pass
    assert journal_state(path) == "ready"
    with Journal.open(path) as j:
        info = j.run_info()
        assert (info.run_id, info.tenant, info.status) == ("r1", "sandbox", "ready")
        assert info.input_sha256 == "ab" * 32
        sheet = j.sheet()
        assert sheet.headers == ("User", "License", "Action")
        assert [r.cells for r in sheet.rows][1] == ("user1@contoso.example", "SPE_E5", "assign")
        ops = j.operations()
        assert [o.op.kind.value for o in ops] == ["setUsageLocation", "assignLicense", "assignLicense",
                                                 "assignLicense"]
        assert ops[1].op.depends_on == ops[0].key
        assert ops[1].op.add == ((E5, ()),)
        assert ops[1].op.body == {"addLicenses": [{"skuId": E5, "disabledPlans": []}], "removeLicenses": []}
        assert all(o.state is OpState.PLANNED for o in ops)
        checks = j.row_checks()
        assert [c.action for c in checks] == ["assign SPE_E5; set usage location DE", "assign SPE_E5",
                                              "assign SPE_E5"]
        assert checks[0].status is RequestStatus.READY
        assert {s.part_number: s.consumed_before for s in j.skus()} == {"SPE_E5": 10, "SPE_E3": 20}


def test_sent_then_settled_and_counters(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with create(path) as j:
        key = j.operations()[2].key
        j.mark_sent([Sent(key, 1)])
        assert j.operations()[2].state is OpState.SENT
        j.settle([Settlement(key=key, attempt=1, state=OpState.PLANNED, status=429, error_code="TooManyRequests",
                               error_message="Please retry again later.")],
                 requests=1, throttled=1, wait_s=0.5)
        j.mark_sent([Sent(key, 2)])
        j.settle([Settlement(key=key, attempt=2, state=OpState.FAILED, status=400, error_code="Request_BadRequest",
                               error_message="bad", fix="fix it", request_id="rid-2")],
                 requests=1)
        rec = j.operations()[2]
        assert (rec.state, rec.attempts, rec.status, rec.error_code, rec.request_id) == (
            OpState.FAILED, 2, 400, "Request_BadRequest", "rid-2")
        assert rec.settled is not None
        assert [a[0] for a in j.attempts(key)] == [1, 2]
        assert j.attempts(key)[0][2] == 429
        info = j.run_info()
        assert (info.requests_sent, info.throttled, info.throttle_wait_s) == (2, 1, 0.5)


def test_a_second_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    create(path).close()
    with pytest.raises(JournalError, match="already holds a run"):
        create(path)


def test_a_journal_left_empty_by_a_crash_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    assert journal_state(path) == "empty"
    with pytest.raises(JournalError, match="holds no plan"):
        Journal.open(path)
    create(path).close()
    assert journal_state(path) == "ready"


def test_missing_and_corrupt_journals_raise_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        Journal.open(tmp_path / "nope.sqlite")
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError):
        Journal.open(bad)


def test_scrub_argv_hides_secret_values() -> None:
    argv = ["license-batch", "apply", "w.xlsx", "--client-secret", "s3cr3t", "--token=abc", "--yes"]
    text = scrub_argv(argv)
    assert "s3cr3t" not in text and "abc" not in text
    assert text == "license-batch apply w.xlsx --client-secret *** --token=*** --yes"


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from batch.apply.journal import Journal, OpState, Sent, Settlement
    j = Journal.open(Path(sys.argv[1]))
    ops = j.operations()
    keys = [o.key for o in ops]
    n = max(o.attempts for o in ops)
    print("go", flush=True)
    while True:
        n += 1
        j.mark_sent([Sent(k, n) for k in keys])
        j.settle([Settlement(key=k, attempt=n, state=OpState.PLANNED, status=429, error_code="TooManyRequests",
                            error_message="x" * 200) for k in keys],
                 requests=1, throttled=len(keys))
    """
)


def test_kill_9_while_writing_leaves_a_consistent_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    create(path, n=20).close()
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"go"
        time.sleep(0.05 + 0.05 * _)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        con = sqlite3.connect(path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        with Journal.open(path) as j:
            ops = j.operations()
            assert len(ops) == 21
            assert {o.state for o in ops} <= {OpState.PLANNED, OpState.SENT}
            assert len({o.attempts for o in ops}) == 1  # one batch: all or nothing
            # every operation's attempts row exists for its attempt count (sent is committed with the attempt)
            for o in ops:
                assert len(j.attempts(o.key)) == o.attempts
            # counters move with the settlements in the same transaction
            info = j.run_info()
            settled_attempts = sum(1 for o in ops for a in j.attempts(o.key) if a[2] == 429)
            assert info.throttled == settled_attempts
