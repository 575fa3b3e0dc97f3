"""Apply a plan to the tenant, journalled, paced and resumable.

    result = apply(plan, tenant, run_dir=run_dir, limits=limits, progress=print)   # -> RunResult
    result = resume(run_dir, tenant, limits=limits)       # finish an interrupted run; nothing is done twice
    result = load_result(run_dir)                         # rebuild a run's results from its journal alone

``apply`` writes the whole plan to ``run_dir/journal.sqlite`` first, then sends the operations as Graph
``$batch`` requests (see :mod:`batch.apply.engine`). Ctrl-C (or ``stop_event.set()``) stops taking new
batches, lets the requests on the wire settle, and returns a RunResult with ``interrupted=True`` whose
unsettled rows are ``not run``; a second Ctrl-C raises KeyboardInterrupt at once (the journal stays
consistent either way: ``resume`` checks anything whose outcome it did not hear before sending it again).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from .._secrets import scrub_argv as _scrub_list
from ..config import Limits
from ..errors import JournalError, TenantError
from ..models import Kind, Plan, RunResult, Sheet
from .engine import (
    ClosesWriters,
    Engine,
    KnowsTarget,
    KnowsTenantId,
    Progress,
    ProgressEvent,
    ProgressNote,
    ReadsPools,
    StopFlag,
    TenantWriter,
)
from .journal import (
    JOURNAL_NAME,
    SETTLED,
    Journal,
    OpRecord,
    OpState,
    RowCheck,
    RunMeta,
    journal_state,
    scrub_argv,
)
from .observe import DEFAULT_PROCESSING_WAIT_S, needs_observing, observe_rows
from .results import (
    expected_allocated,
    expected_consumed,
    graph_fix,
    row_checks,
    row_results,
    seats_by_part,
    sku_records,
    touched_pools,
)
from .throttle import Pacer


def journal_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / JOURNAL_NAME


# --------------------------------------------------------------------------------------------- public


def apply(
    plan: Plan,
    tenant: TenantWriter,
    *,
    run_dir: str | Path,
    limits: Limits,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop_event: StopFlag | None = None,
    run_id: str | None = None,
    source: str | Path | None = None,
    argv: Sequence[str] = (),
    tenant_name: str | None = None,
    tool_version: str | None = None,
    processing_wait_s: float = DEFAULT_PROCESSING_WAIT_S,
) -> RunResult:
    """Journal ``plan`` in ``run_dir`` and apply it. Returns one RowResult per input row.

    Raises JournalError when ``run_dir`` already holds a run (use :func:`resume`), TenantError when the
    tenant refuses us as a whole (401/403 on the first writes: the journal is left resumable).
    """
    from ..desired.state import read_prior_memberships

    read_prior_memberships(tenant, plan)  # what the journal keeps for rollback, where the snapshot lacks it
    checks = row_checks(plan)
    journal = start(plan, run_dir=run_dir, run_id=run_id, source=source, argv=argv,
                    tenant_name=tenant_name or _tenant_name(tenant), tool_version=tool_version, checks=checks)
    # the engine works on the plan's own Operation objects (no second copy read back from the journal)
    records = [OpRecord(op=op, seq=i, state=OpState.PLANNED) for i, op in enumerate(plan.operations)]
    with journal:
        return _execute(journal, tenant, limits, progress, stop_event, Path(run_dir),
                        records=records, sheets=plan.validation.sheets, checks=checks, wait_s=processing_wait_s)


def start(
    plan: Plan,
    *,
    run_dir: str | Path,
    run_id: str | None = None,
    source: str | Path | None = None,
    argv: Sequence[str] = (),
    tenant_name: str = "",
    tool_version: str | None = None,
    checks: list[RowCheck] | None = None,
) -> Journal:
    """Write a new run's journal (the whole plan, one transaction) without sending anything."""
    from .. import __version__

    run_dir = Path(run_dir)
    sheet = plan.validation.sheet
    meta = RunMeta(
        run_id=run_id or run_dir.name,
        tool_version=tool_version or __version__,
        input_path=str(source or sheet.path),
        input_sha256=sheet.sha256,
        command_line=scrub_argv(argv),
        tenant=tenant_name,
        argv=tuple(_scrub_list(argv)),
    )
    return Journal.create(journal_path(run_dir), meta, plan, checks=row_checks(plan) if checks is None else checks,
                          skus=sku_records(plan))


def resume(
    run: str | Path,
    tenant: TenantWriter,
    *,
    limits: Limits,
    progress: Callable[[ProgressEvent], None] | None = None,
    stop_event: StopFlag | None = None,
    argv: Sequence[str] | None = None,
    processing_wait_s: float = DEFAULT_PROCESSING_WAIT_S,
) -> RunResult:
    """Finish a run from its journal (``run`` is the run folder or the journal file).

    Settled operations are not sent again; ``sent``/``unknown`` ones are checked against the tenant first;
    ``planned`` ones are sent. Resuming a finished run changes nothing and returns its results (with
    ``already_finished`` set). ``argv``, when given, is recorded after the run's earlier command lines.
    """
    run_dir = Path(run)
    if run_dir.name == JOURNAL_NAME:
        run_dir = run_dir.parent
    with Journal.open(journal_path(run_dir)) as journal:
        _same_tenant(journal, tenant)
        if argv is not None:
            journal.add_command_line(argv)
        return _execute(journal, tenant, limits, progress, stop_event, run_dir, wait_s=processing_wait_s)


def status(run: str | Path, tenant: TenantWriter, *, wait_s: float = 0.0,
           progress: Callable[[ProgressEvent], None] | None = None) -> RunResult:
    """``license-batch status RUN_ID``: look again at rows whose change was still being processed (group
    licensing), record what the tenant shows now, and return the run's results. Sends no write."""
    run_dir = Path(run)
    if run_dir.name == JOURNAL_NAME:
        run_dir = run_dir.parent
    with Journal.open(journal_path(run_dir)) as journal:
        _same_tenant(journal, tenant)
        records = journal.operations()
        if needs_observing(records, journal):
            observe_rows(journal, tenant, records, wait_s=wait_s, progress=progress)
            _record_seats(journal, tenant, records)
        return _result(journal, run_dir, records=records)


def _same_tenant(journal: Journal, tenant: TenantWriter) -> None:
    """Refuse to continue a run against another tenant than the one it was planned for."""
    planned = (journal.meta("tenant_id") or "").lower()
    current = tenant.tenant_id.lower() if isinstance(tenant, KnowsTenantId) else ""
    if planned and current and planned != current:
        raise JournalError(
            f"Run {journal.run_info().run_id} was planned against tenant {planned}, but the target is tenant "
            f"{current}. Nothing was sent. Resume it with the settings (license-batch.toml, --tenant, "
            "--graph-url) the run was started with."
        )


def load_result(run: str | Path) -> RunResult:
    """A run's results rebuilt from its journal alone (no tenant, no input file)."""
    run_dir = Path(run)
    if run_dir.name == JOURNAL_NAME:
        run_dir = run_dir.parent
    with Journal.open(journal_path(run_dir)) as journal:
        return _result(journal, run_dir)


# --------------------------------------------------------------------------------------------- internals


def _tenant_name(tenant: TenantWriter) -> str:
    return tenant.target.name if isinstance(tenant, KnowsTarget) else ""


class _Stop:
    """The engine's stop flag: the caller's event, or a Ctrl-C caught while the engine runs."""

    def __init__(self, outer: StopFlag | None) -> None:
        self.outer = outer
        self.interrupted = threading.Event()

    def is_set(self) -> bool:
        return self.interrupted.is_set() or (self.outer is not None and self.outer.is_set())


@contextmanager
def _sigint_stops(stop: _Stop) -> Iterator[None]:
    """First Ctrl-C: stop taking batches (graceful). Second: KeyboardInterrupt. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.interrupted.is_set():
            raise KeyboardInterrupt
        stop.interrupted.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _seed_pacer(pacer: Pacer, journal: Journal) -> None:
    """Count the writes an interrupted run sent during the last window (Graph still counts them)."""
    now_wall, now_mono = datetime.now(UTC), pacer.clock()
    since = now_wall - timedelta(seconds=pacer.window + pacer.margin)
    for when, n in journal.recent_sends(since):
        pacer.record(n, now_mono - (now_wall - when).total_seconds())
    pacer.stats.writes = 0


def _execute(
    journal: Journal,
    tenant: TenantWriter,
    limits: Limits,
    progress: Callable[[ProgressEvent], None] | None,
    stop_event: StopFlag | None,
    run_dir: Path,
    *,
    records: list[OpRecord] | None = None,
    sheets: list[Sheet] | None = None,
    checks: list[RowCheck] | None = None,
    wait_s: float = DEFAULT_PROCESSING_WAIT_S,
) -> RunResult:
    """Run the unsettled operations, then build the results. ``records``/``sheets``/``checks`` are the
    in-memory copies when the caller has them (apply); otherwise they are read from the journal (resume).
    The engine keeps ``records`` in step with what it commits to the journal."""
    info = journal.run_info()
    if records is None:
        records = journal.operations()
    already_finished = info.status == "finished" and all(r.state in SETTLED for r in records)
    if not already_finished:
        stop = _Stop(stop_event)
        journal.set_status("running")
        pacer = Pacer(limits)
        _seed_pacer(pacer, journal)
        if sheets is None and progress is not None:
            sheets = journal.sheets()
        rows_total = sum(len(sh.rows) for sh in sheets) if sheets is not None else 0
        ops_done = 0

        async def main() -> None:
            nonlocal ops_done
            engine = Engine(journal, tenant, limits, pacer=pacer, progress=progress, stop=stop,
                            rows_total=rows_total, clock=pacer.clock)
            engine.load(records)
            try:
                await engine.run()
            finally:
                ops_done = engine.ops_done
                if isinstance(tenant, ClosesWriters):
                    await tenant.aclose_writers()

        try:
            with _sigint_stops(stop):
                asyncio.run(main())
        except BaseException:
            journal.set_status("interrupted")
            raise
        done = all(r.state in SETTLED for r in records)
        if done and not stop.is_set() and needs_observing(records, journal):
            observe_rows(journal, tenant, records, wait_s=wait_s, progress=progress)
        if done or ops_done:
            _record_seats(journal, tenant, records)
        journal.set_status("finished" if done else "interrupted", finished=done)
    elif needs_observing(records, journal):  # a finished run whose group processing was still pending
        observe_rows(journal, tenant, records, wait_s=wait_s, progress=progress)
        _record_seats(journal, tenant, records)
    result = _result(journal, run_dir, records=records, sheets=sheets, checks=checks)
    result.already_finished = already_finished
    return result


def _record_seats(journal: Journal, tenant: TenantWriter, records: Sequence[OpRecord]) -> None:
    """What the pools hold after the run: read from the tenant, or what the settled operations imply."""
    skus = journal.skus()
    consumed: dict[str, int] | None = None
    if isinstance(tenant, ReadsPools):
        try:
            consumed = {sid: int(s.consumed) for sid, s in tenant.skus().items()}
        except TenantError:
            consumed = None
    if consumed is None:
        consumed = expected_consumed(skus, records)
    journal.set_seats_after({s.sku_id: consumed[s.sku_id] for s in skus if s.sku_id in consumed})
    if not any(s.kind is Kind.ADDONS for s in skus):
        return
    allocated: dict[str, int] | None = None
    if isinstance(tenant, ReadsPools):
        try:
            allocated = {ct: round(r.allocated) for ct, r in tenant.currency_reports().items()}
        except TenantError:
            allocated = None
    if allocated is None:
        allocated = expected_allocated(skus, records)
    journal.set_seats_after(allocated, Kind.ADDONS)


def _result(
    journal: Journal,
    run_dir: Path,
    *,
    records: list[OpRecord] | None = None,
    sheets: list[Sheet] | None = None,
    checks: list[RowCheck] | None = None,
) -> RunResult:
    info = journal.run_info()
    sheets = sheets if sheets is not None else journal.sheets()
    skus = journal.skus()
    rows = row_results(
        [r for sh in sheets for r in sh.rows],
        checks if checks is not None else journal.row_checks(),
        records if records is not None else journal.operations(),
        skus,
        kinds={r.index: sh.kind for sh in sheets for r in sh.rows} if len(sheets) > 1 or sheets[0].kind
        is not Kind.LICENSES else None,
        observations=journal.observations(),
    )
    return RunResult(
        run_id=info.run_id,
        sheet=sheets[0],
        extra_sheets=list(sheets[1:]),
        rows=rows,
        started=info.started,
        finished=info.finished or datetime.now(UTC),
        tenant=info.tenant,
        requests_sent=info.requests_sent,
        throttled=info.throttled,
        throttle_wait_s=info.throttle_wait_s,
        seats_before=seats_by_part(skus, after=False),
        seats_after=seats_by_part(skus, after=True),
        units_before=seats_by_part(skus, after=False, kind=Kind.ADDONS),
        units_after=seats_by_part(skus, after=True, kind=Kind.ADDONS),
        purchased={s.part_number: s.enabled for s in skus if s.kind is Kind.LICENSES},
        units_purchased={s.part_number: s.enabled for s in skus if s.kind is Kind.ADDONS},
        pool_names={s.part_number: s.label for s in skus if s.label},
        touched=touched_pools(skus, records if records is not None else journal.operations()),
        interrupted=info.status != "finished",
        report_dir=run_dir,
        command_lines=journal.command_lines(),
    )


__all__ = [
    "JOURNAL_NAME",
    "Engine",
    "JournalError",
    "Progress",
    "ProgressEvent",
    "ProgressNote",
    "apply",
    "graph_fix",
    "journal_path",
    "journal_state",
    "load_result",
    "resume",
    "start",
    "status",
]
