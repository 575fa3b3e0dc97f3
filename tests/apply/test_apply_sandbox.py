"""apply/resume over real HTTP against the sandbox (faults and throttling on, shrunk clock), real journals."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest

from batch.apply import apply, load_result, resume, start
from batch.apply.journal import Journal, OpState, Sent
from batch.config import Limits
from batch.models import Outcome, Plan, RunResult

from .sandbox_util import (
    State,
    make_plan,
    outcome_rows,
    running_sandbox,
    sandbox_available,
    seed,
    tenant_for,
    tenant_state,
    write_wave,
)

pytestmark = pytest.mark.skipif(sandbox_available() is not None, reason=str(sandbox_available()))

REPO = Path(__file__).resolve().parents[2]
SCALE = 150.0  # the sandbox's 150 s write window becomes 1 s


def fast_limits(**kw: object) -> Limits:
    base = Limits(max_in_flight=4, backoff_base_seconds=0.01, backoff_max_seconds=0.2, max_attempts=10,
                  request_timeout_seconds=10.0)
    return Limits(**{**asdict(base), **kw})  # type: ignore[arg-type]


def intended(before: State, plan: Plan, result: RunResult) -> State:
    """The state the tenant must end in: the start state plus exactly the applied operations."""
    users = {k: (loc, dict(((s, g), d) for s, d, g in states)) for k, (loc, states) in before.users.items()}
    with Journal.open(result.report_dir / "journal.sqlite") as j:  # type: ignore[operator]
        for rec in j.operations():
            if rec.state is not OpState.SUCCEEDED:
                continue
            _loc, st = users[rec.op.target_id]
            if rec.op.kind.value == "setUsageLocation":
                users[rec.op.target_id] = (str(rec.op.body["usageLocation"]), st)
                continue
            for sid in rec.op.remove:
                st.pop((sid, ""), None)
            for sid, disabled in rec.op.add:
                st[(sid, "")] = tuple(sorted(disabled))
    out = {k: (loc, tuple(sorted((s, d, g) for (s, g), d in st.items()))) for k, (loc, st) in users.items()}
    return State(out, {})


def check_run(db: Path, before: State, plan: Plan, result: RunResult) -> None:
    rows = plan.validation.sheet.rows
    # every row ends with exactly one outcome, in input order
    assert [r.row for r in result.rows] == [r.index for r in rows]
    assert all(isinstance(r.status, Outcome) for r in result.rows)
    after = tenant_state(db)
    # the tenant ends in the intended state (licenses compared server-side; group-driven states ignored)
    want = intended(before, plan, result)
    for uid, (loc, states) in want.users.items():
        got_loc, got_states = after.users[uid]
        assert got_loc == loc, uid
        assert [s for s in got_states if not s[2]] == [s for s in states if not s[2]], uid
    # nothing was done twice: at most one 2xx answer per operation, and seats moved exactly as planned
    assert result.report_dir is not None
    with Journal.open(result.report_dir / "journal.sqlite") as j:
        for rec in j.operations():
            oks = [a for a in j.attempts(rec.key) if a[2] is not None and 200 <= a[2] < 300]
            assert len(oks) <= 1, rec.key
    assert result.seats_after == {k: v for k, v in after.consumed.items() if k in result.seats_after}
    for part, before_n in result.seats_before.items():
        assert before.consumed[part] == before_n


def test_wave_under_faults_and_throttling(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    seed(db, users=400)
    kinds = write_wave(db, tmp_path / "wave.csv", 260)
    assert kinds.get("replace") and kinds.get("remove") and kinds.get("bad")
    before = tenant_state(db)
    # the server allows 150 writes per (scaled) window; the client is told 1,000: the server throttles it
    with running_sandbox(db, time_scale=SCALE, write_quota=150, fault_seed=5, fault_503_rate=0.04,
                         fault_504_rate=0.03, fault_drop_rate=0.03) as server:
        limits = fast_limits(write_quota=1000, write_window_seconds=1.0)
        with tenant_for(server, limits) as tenant:
            plan = make_plan(tenant, tmp_path / "wave.csv")
            result = apply(plan, tenant, run_dir=tmp_path / "run", limits=limits)
    assert not result.interrupted
    counts = result.counts()
    assert counts[Outcome.NOT_RUN] == 0
    assert counts[Outcome.APPLIED] > 150
    assert counts[Outcome.SKIPPED] >= kinds["bad"]
    assert result.throttled > 0  # 429 items were re-queued ...
    assert counts[Outcome.FAILED] == sum(1 for r in result.rows if r.status is Outcome.FAILED
                                         and r.code not in ("TooManyRequests", "RetriesExhausted"))  # ... not lost
    check_run(db, before, plan, result)
    # the results can be rebuilt from the journal alone
    assert outcome_rows(load_result(tmp_path / "run")) == outcome_rows(result)


def test_paced_run_stays_under_the_quota(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    seed(db, users=400)
    write_wave(db, tmp_path / "wave.csv", 300)
    before = tenant_state(db)
    with running_sandbox(db, time_scale=SCALE, write_quota=100) as server:
        limits = fast_limits(write_quota=100, write_window_seconds=1.0)  # told the truth: pace, do not collide
        with tenant_for(server, limits) as tenant:
            plan = make_plan(tenant, tmp_path / "wave.csv")
            result = apply(plan, tenant, run_dir=tmp_path / "run", limits=limits)
    assert result.counts()[Outcome.NOT_RUN] == 0
    assert result.throttled <= 2
    check_run(db, before, plan, result)


def test_resume_after_crash_checks_before_resending(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    seed(db, users=300)
    write_wave(db, tmp_path / "wave.csv", 120, graph_failures=False)
    before = tenant_state(db)
    with running_sandbox(db, time_scale=SCALE) as server:
        limits = fast_limits(write_quota=3000, write_window_seconds=1.0)
        with tenant_for(server, limits) as tenant:
            plan = make_plan(tenant, tmp_path / "wave.csv")
            run_dir = tmp_path / "run"
            # a crash after the first 20 operations were committed as sent; 10 of them reached Graph
            j = start(plan, run_dir=run_dir)
            ops = j.operations()
            sent = [o for o in ops if o.op.depends_on is None][:20]
            j.mark_sent([Sent(o.key, 1) for o in sent])
            j.close()
            reached = sent[:10]
            items = [{"id": str(i), "method": o.op.method, "url": o.op.url, "body": dict(o.op.body),
                      "headers": {"Content-Type": "application/json"}} for i, o in enumerate(reached)]

            async def post() -> None:
                reply = await tenant.post_batch(items)
                assert all(200 <= r.status < 300 for r in reply.values())
                await tenant.http.aclose()

            asyncio.run(post())
            result = resume(run_dir, tenant, limits=limits)
    assert not result.interrupted and result.counts()[Outcome.NOT_RUN] == 0
    with Journal.open(run_dir / "journal.sqlite") as j:
        recs = {r.key: r for r in j.operations()}
        for o in reached:  # in effect: confirmed by reading the user, never sent again
            assert recs[o.key].state is OpState.SUCCEEDED and recs[o.key].attempts == 1
        for o in sent[10:]:  # not in effect: sent again after the check
            assert recs[o.key].attempts == 2
    # swaps and removes among them would have failed if sent twice: every such row is applied
    rows = {r.row: r for r in result.rows}
    for o in reached:
        assert all(rows[i].status is Outcome.APPLIED for i in o.op.rows)
    check_run(db, before, plan, result)


def settled(run_dir: Path) -> int:
    """Operations settled so far (0 when the run has no plan yet)."""
    from batch.apply.journal import journal_state

    path = run_dir / "journal.sqlite"
    if journal_state(path) in ("missing", "empty"):
        return 0
    with Journal.open(path) as j:
        return sum(1 for r in j.operations() if r.state in (OpState.SUCCEEDED, OpState.FAILED))


def test_kill_9_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    users, n_rows = 500, 420
    ref_db, db = tmp_path / "ref" / "sandbox.db", tmp_path / "killed" / "sandbox.db"
    seed(ref_db, users=users, seed=9)
    seed(db, users=users, seed=9)
    write_wave(db, tmp_path / "wave.csv", n_rows)
    write_wave(ref_db, tmp_path / "same-wave.csv", n_rows)  # (buys the same seats on the reference copy)
    assert (tmp_path / "same-wave.csv").read_bytes() == (tmp_path / "wave.csv").read_bytes()
    faults = {"fault_seed": 2, "fault_503_rate": 0.02, "fault_drop_rate": 0.02}

    # the reference: one uninterrupted run on a fresh copy of the same tenant
    with running_sandbox(ref_db, time_scale=SCALE, **faults) as server:
        limits = fast_limits(write_quota=3000, write_window_seconds=1.0)
        with tenant_for(server, limits) as tenant:
            ref_plan = make_plan(tenant, tmp_path / "wave.csv")
            ref = apply(ref_plan, tenant, run_dir=tmp_path / "ref-run", limits=limits)
    assert not ref.interrupted

    # the same wave, SIGKILLed at random moments (slow quota so the run outlasts the kills), resumed each time
    rng = random.Random(int(os.environ.get("KILL_TEST_SEED", "1")))
    run_dir = tmp_path / "run"
    limits = fast_limits(write_quota=40, write_window_seconds=1.0, max_in_flight=3)
    kills = 0
    with running_sandbox(db, time_scale=SCALE, **faults) as server:
        args = [sys.executable, "-m", "tests.apply.kill_worker", "--graph-url", server.graph_url,
                "--sheet", str(tmp_path / "wave.csv"), "--run-dir", str(run_dir),
                "--limits", json.dumps(asdict(limits))]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        progress: list[int] = []
        for _ in range(40):
            proc = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE)
            if kills < 10:
                if kills % 2:  # every other kill waits for this worker's first settled operation, so that
                    # on a loaded machine (slow start-ups) kills still land while operations are being sent
                    floor, deadline = settled(run_dir), time.monotonic() + 30
                    while settled(run_dir) <= floor and proc.poll() is None and time.monotonic() < deadline:
                        time.sleep(0.05)
                    time.sleep(rng.uniform(0.0, 0.6))
                else:
                    time.sleep(rng.uniform(0.3, 1.6))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                    progress.append(settled(run_dir))
            try:
                _, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
            if proc.returncode == 0:
                assert kills >= 10, "the run finished before it was killed 10 times: make it longer"
                break
            assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        else:
            pytest.fail("the killed run never finished")
    assert kills >= 10
    # the kills landed while operations were being sent, not only before or after
    total = len(ref_plan.operations)
    assert len({p for p in progress if 0 < p < total}) >= 3, progress
    print("settled operations at each kill:", progress, "of", total)
    outcome = [tuple(r) for r in json.loads((run_dir / "outcome.json").read_text())]
    assert outcome == [tuple(r) for r in outcome_rows(ref)]
    assert tenant_state(db) == tenant_state(ref_db)
    with Journal.open(run_dir / "journal.sqlite") as j:
        assert j.run_info().status == "finished"
        for rec in j.operations():
            oks = [a for a in j.attempts(rec.key) if a[2] is not None and 200 <= a[2] < 300]
            assert len(oks) <= 1, rec.key
    assert Counter(r[1] for r in outcome)[Outcome.APPLIED.value] > 300


def test_ctrl_c_lets_in_flight_requests_settle_then_resume_finishes(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    seed(db, users=300)
    write_wave(db, tmp_path / "wave.csv", 200, graph_failures=False)
    before = tenant_state(db)
    run_dir = tmp_path / "run"
    limits = fast_limits(write_quota=40, write_window_seconds=1.0, max_in_flight=3)
    with running_sandbox(db, time_scale=SCALE) as server:
        args = [sys.executable, "-m", "tests.apply.kill_worker", "--graph-url", server.graph_url,
                "--sheet", str(tmp_path / "wave.csv"), "--run-dir", str(run_dir),
                "--limits", json.dumps(asdict(limits))]
        proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stderr=subprocess.PIPE)
        while settled(run_dir) < 20:
            time.sleep(0.05)
            assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err.decode()[-2000:]
        partial = json.loads((run_dir / "outcome.json").read_text())
        statuses = Counter(r[1] for r in partial)
        assert statuses[Outcome.NOT_RUN.value] > 0 and statuses[Outcome.APPLIED.value] >= 10
        with Journal.open(run_dir / "journal.sqlite") as j:
            assert j.run_info().status == "interrupted"
            # in-flight requests were allowed to settle: nothing is left sent-but-unknown
            assert not [r for r in j.operations() if r.state in (OpState.SENT, OpState.UNKNOWN)]
        with tenant_for(server, limits) as tenant:
            result = resume(run_dir, tenant, limits=limits)
            plan = make_plan(tenant, tmp_path / "wave.csv")  # (only its sheet rows are used below)
    assert not result.interrupted and result.counts()[Outcome.NOT_RUN] == 0
    check_run(db, before, plan, result)
