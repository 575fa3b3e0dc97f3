"""The commands as library calls: what ``license-batch validate|plan|apply|resume|demo`` do, callable from a
notebook too. No printing and no prompts here: results come back as records, the CLI renders them.

    with open_session(load_settings()) as s:          # starts the embedded sandbox when that is the target
        checked = validate_file(s, "wave.xlsx")        # -> ValidationRun (report written)
        prepared = plan_file(s, "wave.xlsx")           # -> PlanRun (pure diff, nothing sent)
        result = execute(s, prepared)                  # -> RunResult (journal + results.xlsx written)
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import SandboxSettings, Settings, Target
from .config import read_map_file as read_map_file  # lives in config; kept importable here
from .errors import ConfigError, InputError, JournalError, OutputError, StrictModeError
from .models import (
    Api,
    Kind,
    Plan,
    PlanOptions,
    RequestStatus,
    RunResult,
    ShortfallPolicy,
    TenantSnapshot,
    Validation,
)
from .report.results import run_summary as run_summary  # the one run summary (report owns it)

if TYPE_CHECKING:
    from .apply.engine import ProgressEvent
    from .report.capacity import CapacityReport
    from .sandbox import SandboxConfig
    from .sheets import ProductCatalog, Source
    from .tenant import Tenant

#: Where the demo's sample sheets live: inside the package, so an installed wheel has them.
SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "samples"
DEMO_SHEET = "onboarding-wave.csv"
DEMO_ADDONS = "environment-addons.xlsx"


# -------------------------------------------------------------------------------------------- session


class Session:
    """A connection to one target for one command: the tenant client, and the embedded sandbox if any.

    Connecting is lazy: the sandbox starts (and the credential is asked for a token) only when the tenant is
    first needed, so a sheet with a file-level problem is refused before anything is started or contacted.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target: Target = settings.target
        self.sandbox_note = ""
        self._tenant: Tenant | None = None
        self._server: Any = None
        self._catalog: ProductCatalog | None = None
        self._catalog_loaded = False

    @property
    def tenant(self) -> Tenant:
        if self._tenant is None:
            self._connect()
        assert self._tenant is not None
        return self._tenant

    def _connect(self) -> None:
        from .tenant import Tenant

        if self.target.embedded_sandbox:
            from .sandbox import SandboxServer

            db = self.settings.sandbox.db
            seeded = ensure_sandbox(self.settings.sandbox)
            self._server = SandboxServer(db, sandbox_config(self.settings), init_if_missing=False).start()
            self.target = Target(
                name="sandbox",
                graph_url=self._server.graph_url,
                powerplatform_url=self._server.powerplatform_url,
                embedded_sandbox=True,
            )
            self.sandbox_note = (
                f"Using the built-in sandbox tenant ({'seeded now, ' if seeded else ''}state in {db}), "
                f"served at {self._server.graph_url}."
            )
        self._tenant = Tenant(self.target, self.settings.limits)

    def close(self) -> None:
        try:
            if self._tenant is not None:
                self._tenant.close()
        finally:
            self._tenant = None
            if self._server is not None:
                self._server.stop()
                self._server = None

    @property
    def catalog(self) -> ProductCatalog | None:
        """Microsoft's product list: the path in settings, else the newer of the shipped snapshot and the cache."""
        if not self._catalog_loaded:
            from .sheets import ProductCatalog

            self._catalog_loaded = True
            if self.settings.product_list is not None:
                self._catalog = ProductCatalog.load(self.settings.product_list)
            else:
                self._catalog = ProductCatalog.current(self.settings.cache_dir)
        return self._catalog


@contextmanager
def open_session(settings: Settings) -> Iterator[Session]:
    """A session on the configured target; for the embedded sandbox, seeded if needed and started on first use."""
    session = Session(settings)
    try:
        yield session
    finally:
        session.close()


def sandbox_config(settings: Settings, **overrides: Any) -> SandboxConfig:
    """The embedded sandbox's limits, latency and faults: [sandbox] in the config file, then
    LICENSE_BATCH_SANDBOX_* variables, then ``overrides``; its time scale is the one the client's limits use."""
    from .sandbox import SandboxConfig

    overrides.setdefault("time_scale", settings.sandbox.time_scale)
    return SandboxConfig.load(toml_path=settings.config_file, **overrides)


def ensure_sandbox(sb: SandboxSettings) -> bool:
    """Seed the sandbox database when it does not exist yet. True when it was seeded now."""
    from .sandbox import init_tenant, is_seeded

    if is_seeded(sb.db):
        return False

    sb.db.parent.mkdir(parents=True, exist_ok=True)
    init_tenant(sb.db, users=sb.users, seed=sb.seed)
    return True


# ---------------------------------------------------------------------------------------- validation


@dataclass
class ValidationRun:
    run_id: str
    run_dir: Path
    validation: Validation
    report: Path


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _policy(on_shortfall: str | ShortfallPolicy) -> ShortfallPolicy:
    try:
        return ShortfallPolicy(on_shortfall)
    except ValueError as e:
        raise ConfigError(f"--on-shortfall must be 'stop' or 'partial', not '{on_shortfall}'.") from e


def _kind(kind: str | Kind | None) -> Kind | None:
    if kind is None or kind == "":
        return None
    try:
        return Kind(kind)
    except ValueError as e:
        raise ConfigError(f"--kind must be one of {', '.join(k.value for k in Kind)}, not '{kind}'.") from e


def check_file(
    session: Session,
    path: Source,
    *,
    sheet: str | None = None,
    on_shortfall: str | ShortfallPolicy = ShortfallPolicy.STOP,
    reserve: str = "0",
    kind: str | Kind | None = None,
) -> Validation:
    """Read the file's input sheets (one, or several of different kinds), take one tenant snapshot, validate
    every row. Raises InputError for file-level problems (before the tenant is contacted). ``path`` may be a
    pandas DataFrame instead of a file: read in memory (``batch.sheets.frame``), checked the same way."""
    from .kinds import kind_of
    from .kinds.licenses.rules import load_remembered
    from .sheets import read_source
    from .validate import parse_reserve, validate_sheets

    policy = _policy(on_shortfall)
    wanted = _kind(kind)
    parse_reserve(reserve)  # a bad --reserve is refused before the tenant is read
    sheets = read_source(path, sheet=sheet, column_map=dict(session.settings.column_map) or None, kind=wanted)
    parts = [(sh, kind_of(sh.kind).parse(sh, catalog=session.catalog)) for sh in sheets]
    keys: set[str] = set()
    powerplatform = False
    for sh, requests in parts:
        k = kind_of(sh.kind)
        keys |= k.user_keys(requests)
        powerplatform = powerplatform or k.needs_powerplatform(requests)
    snapshot = session.tenant.snapshot(sorted(keys), powerplatform=powerplatform)
    name_skus(snapshot, session.catalog)
    snapshot.plan_refusals = tuple(load_remembered(session.settings.cache_dir, snapshot.tenant_id))  # earlier runs
    parts = _resolve(session, parts, snapshot)
    return validate_sheets(parts, snapshot, catalog=session.catalog, policy=policy, reserve=reserve)


def name_skus(snapshot: TenantSnapshot, catalog: ProductCatalog | None) -> None:
    """Give the snapshot's SKUs Microsoft's product names from the product list, where they have none yet
    (Graph's subscribedSkus carries only part numbers), so reports show names beside part numbers."""
    if catalog is None:
        return
    from dataclasses import replace

    for sid, sku in list(snapshot.skus.items()):
        if not sku.product_name and (p := catalog.by_guid(sku.sku_id)) is not None:
            snapshot.skus[sid] = replace(sku, product_name=p.name)


def _resolve(session: Session, parts: list[tuple[Any, list[Any]]], snapshot: Any) -> list[tuple[Any, list[Any]]]:
    """Let each kind read what else it needs into the snapshot (``ChangeKind.resolve``, optional). A kind may
    expand rows (a rule row becomes one line per user it reaches): the following sheets' row indexes move along."""
    from dataclasses import replace

    from .kinds import kind_of

    out: list[tuple[Any, list[Any]]] = []
    shift = 0
    for sh, requests in parts:
        if shift:
            sh.rows[:] = [replace(r, index=r.index + shift) for r in sh.rows]
            requests = [replace(q, row=q.row + shift) for q in requests]
        resolve = getattr(kind_of(sh.kind), "resolve", None)
        if resolve is not None:
            before = len(sh.rows)
            requests = resolve(session.tenant, sh, requests, snapshot)
            shift += len(sh.rows) - before
        out.append((sh, requests))
    return out


def validate_file(
    session: Session,
    path: Source,
    *,
    sheet: str | None = None,
    on_shortfall: str | ShortfallPolicy = ShortfallPolicy.STOP,
    reserve: str = "0",
    kind: str | Kind | None = None,
) -> ValidationRun:
    """``license-batch validate``: check the sheet and write ``REPORT_DIR/<run-id>/validation.xlsx``."""
    from .report import write_validation

    validation = check_file(session, path, sheet=sheet, on_shortfall=on_shortfall, reserve=reserve, kind=kind)
    run_id = new_run_id()
    run_dir = session.settings.report_dir / run_id
    report = _write(lambda: write_validation(validation, run_dir), run_dir)
    return ValidationRun(run_id=run_id, run_dir=run_dir, validation=validation, report=report)


def _request_errors(validation: Validation) -> int:
    return sum(1 for c in validation.requests if c.status is RequestStatus.ERROR)


def validation_summary(res: ValidationRun | PlanRun) -> dict[str, Any]:
    """The ``--json`` object of ``validate``: counts per input ROW (a row is as bad as its worst request)."""
    v = res.validation
    worst: dict[int, str] = {}
    warned: set[int] = set()
    rank = {"unchanged": 0, "ok": 1, "over capacity": 2, "error": 3}
    for c in v.requests:
        s = {
            RequestStatus.READY: "ok",
            RequestStatus.UNCHANGED: "unchanged",
            RequestStatus.ERROR: "error",
            RequestStatus.OVER_CAPACITY: "over capacity",
        }[c.status]
        i = c.request.row
        if i not in worst or rank[s] > rank[worst[i]]:
            worst[i] = s
        if any(f.severity == "warning" for f in c.findings):
            warned.add(i)
    counts = {k: 0 for k in rank}
    for s in worst.values():
        counts[s] += 1
    warned = {i for i in warned if worst.get(i) == "ok"}  # "warnings" counts ok rows: a subset of "ok"
    return {
        "rows": sum(len(sh.rows) for sh in v.sheets),
        "ok": counts["ok"],
        "unchanged": counts["unchanged"],
        "warnings": len(warned),
        "errors": counts["error"],
        "over_capacity": counts["over capacity"],
        "capacity": [
            {
                "kind": str(c.kind),
                "sku": c.part_number,
                "name": c.name,
                "available": c.available,
                "needed": c.needed,  # as the text table: gross; "net" is what the shortfall is taken on
                "freed": c.freed,
                "net": c.net,
                "short": c.short,
            }
            for c in v.capacity
        ],
        "report": str(getattr(res, "report", "") or ""),
    }


# ---------------------------------------------------------------------------------------------- plan


@dataclass
class PlanRun:
    run_id: str
    run_dir: Path
    source: Path
    validation: Validation
    plan: Plan
    report: Path | None = None
    plan_csv: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


def plan_file(
    session: Session,
    path: Source,
    *,
    sheet: str | None = None,
    on_shortfall: str | ShortfallPolicy = ShortfallPolicy.STOP,
    reserve: str = "0",
    strict: bool = False,
    kind: str | Kind | None = None,
    via_group: str | None = None,
) -> PlanRun:
    """``license-batch plan`` (and the first half of apply): validate, then diff into operations.

    With ``strict``, any row with an error finding refuses the whole sheet (StrictModeError, exit 2).
    """
    from .plan import plan as make_plan
    from .report import write_plan, write_validation

    validation = check_file(session, path, sheet=sheet, on_shortfall=on_shortfall, reserve=reserve, kind=kind)
    source = validation.sheet.path  # the file, or <DataFrame>
    if strict and (n := _request_errors(validation)):
        raise StrictModeError(
            f"{n} row(s) have errors and --strict refuses the whole sheet.",
            path=str(source),
            fix="Run 'license-batch validate' to see them, fix the sheet, or drop --strict.",
        )
    run_id = new_run_id()
    run_dir = session.settings.report_dir / run_id
    report = _write(lambda: write_validation(validation, run_dir), run_dir)
    if via_group:
        from .kinds.groups.via_group import read_via_group

        read_via_group(session.tenant, validation.snapshot, via_group)
    the_plan = make_plan(validation, PlanOptions(allocations_api=session.settings.allocations_api,
                                                 via_group=via_group or None))
    plan_csv = _write(lambda: write_plan(the_plan, run_dir), run_dir)
    options = {"sheet": sheet, "on_shortfall": str(on_shortfall), "reserve": reserve, "strict": strict,
               "kind": str(kind or ""), "via_group": via_group or ""}
    _write(lambda: _record_input(run_dir, source, validation, options), run_dir)
    return PlanRun(
        run_id=run_id,
        run_dir=run_dir,
        source=source,
        validation=validation,
        plan=the_plan,
        report=report,
        plan_csv=plan_csv,
        options=options,
    )


#: What a run folder records about its input as soon as it is planned (before the journal exists), so a run
#: killed before its plan was journalled can be started again from it.
INPUT_RECORD = "input.json"


def _record_input(run_dir: Path, source: Path, validation: Validation, options: dict[str, Any]) -> Path:
    import json

    from .sheets.frame import is_frame_label

    path = run_dir / INPUT_RECORD
    where = str(source) if is_frame_label(source) else str(source.resolve())  # a DataFrame: its label
    record = {"source": where, "sha256": validation.sheet.sha256, "options": options}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def restart_command(run_dir: Path) -> str | None:
    """The apply command that starts a planned-but-never-journalled run again from its recorded input."""
    import json
    import shlex

    try:
        record = json.loads((run_dir / INPUT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    from .sheets.frame import is_frame_label

    if is_frame_label(record.get("source", "")):
        return None  # a DataFrame: nothing on disk to start again from
    opts = record.get("options", {})
    argv = ["license-batch", "apply", str(record.get("source", ""))]
    if opts.get("sheet"):
        argv += ["--sheet", str(opts["sheet"])]
    if opts.get("kind"):
        argv += ["--kind", str(opts["kind"])]
    if opts.get("via_group"):
        argv += ["--via-group", str(opts["via_group"])]
    if opts.get("on_shortfall") and opts["on_shortfall"] != str(ShortfallPolicy.STOP):
        argv += ["--on-shortfall", str(opts["on_shortfall"])]
    if opts.get("reserve") and str(opts["reserve"]) != "0":
        argv += ["--reserve", str(opts["reserve"])]
    if opts.get("strict"):
        argv.append("--strict")
    return shlex.join(argv)


def plan_summary(res: PlanRun) -> dict[str, Any]:
    out = validation_summary(res)
    out.update(
        {
            "run_id": res.run_id,
            "refused": res.validation.wave_refused,
            "operations": len(res.plan.operations),
            "seats": [
                {"sku": s.part_number, "takes": s.takes, "frees": s.frees} for s in res.plan.seats
            ],
            "environments": len({op.target_id for op in res.plan.operations if op.api is Api.POWERPLATFORM}),
        }
    )
    return out


# --------------------------------------------------------------------------------------------- apply


def execute(
    session: Session,
    prepared: PlanRun,
    *,
    argv: Sequence[str] = (),
    progress: Callable[[ProgressEvent], None] | None = None,
    processing_wait_s: float | None = None,
) -> RunResult:
    """Apply a prepared plan: journal, throttled $batch writes, result workbook. Returns the RunResult.

    ``processing_wait_s`` bounds the wait for asynchronous effects (group licensing) after the writes."""
    from . import apply as engine

    result = engine.apply(
        prepared.plan,
        session.tenant,
        run_dir=prepared.run_dir,
        run_id=prepared.run_id,
        limits=session.settings.limits,
        source=prepared.source,
        argv=list(argv),
        tenant_name=session.target.name,
        progress=progress,
        processing_wait_s=_wait(processing_wait_s),
    )
    _write_results(session, result, prepared.run_dir, argv, prepared.source)
    _remember_plan_refusals(session, prepared.run_dir, prepared.plan.validation.snapshot)
    return result


def _wait(processing_wait_s: float | None) -> float:
    from .apply.observe import DEFAULT_PROCESSING_WAIT_S

    if processing_wait_s is None:
        return DEFAULT_PROCESSING_WAIT_S
    if processing_wait_s < 0:
        raise ConfigError(f"--wait-processing must be 0 or more seconds, not {processing_wait_s}.")
    return processing_wait_s


def status_run(
    session: Session,
    run_id: str,
    *,
    argv: Sequence[str] = (),
    progress: Callable[[ProgressEvent], None] | None = None,
    processing_wait_s: float | None = None,
) -> RunResult:
    """``license-batch status RUN_ID``: read again what asynchronous changes (group licensing) produced for the
    run's rows, and write the results again. Sends no write."""
    from . import apply as engine

    run_dir = session.settings.report_dir / run_id
    if not (run_dir / engine.JOURNAL_NAME).exists():
        raise ConfigError(
            f"No run '{run_id}' under {session.settings.report_dir}.",
            fix="Give the run id that apply printed, and the same --report-dir.",
        )
    result = engine.status(run_dir, session.tenant, wait_s=processing_wait_s or 0.0, progress=progress)
    _write_results(session, result, run_dir, argv, result.sheet.path)
    return result


def _remember_plan_refusals(session: Session, run_dir: Path, snapshot: TenantSnapshot | None = None) -> None:
    """Hook (batch.kinds.licenses): service-plan refusals the tenant returned in this run are remembered per
    tenant under the cache dir, so the next validation predicts them (``refused-before``). Without the run's
    snapshot (resume) the refused users are read now: a refused call changed nothing, so they are as before."""
    from .apply import journal_path
    from .apply.journal import Journal, OpState
    from .errors import TenantError
    from .kinds.licenses.plan_checks import remember_operation_refusal
    from .models import OpKind

    with Journal.open(journal_path(run_dir)) as journal:
        failed = [r for r in journal.operations()
                  if r.state is OpState.FAILED and r.op.kind is OpKind.ASSIGN_LICENSE]  # fmt: skip
        tenant_id = snapshot.tenant_id if snapshot is not None else (journal.meta("tenant_id") or "")
    if not failed or not tenant_id:
        return
    if snapshot is not None:
        users = snapshot.users
    else:
        try:
            users = session.tenant.read_users(sorted({r.op.target_id for r in failed}))
        except TenantError:
            return  # remembering is a help for the next validation, never a reason to fail this command
    for rec in failed:
        user = users.get(rec.op.target_id)
        if user is not None:
            remember_operation_refusal(session.settings.cache_dir, tenant_id, user, rec.op, rec.status,
                                       rec.error_code, rec.error_message)  # fmt: skip


def resume_run(
    session: Session,
    run_id: str,
    *,
    argv: Sequence[str] = (),
    progress: Callable[[ProgressEvent], None] | None = None,
    say: Callable[[str], None] = lambda _s: None,
    processing_wait_s: float | None = None,
) -> RunResult:
    """Finish an interrupted run from its journal; settled operations are not sent again. ``say`` hears the
    sandbox note (before any progress)."""
    from . import apply as engine
    from .apply.journal import journal_state

    run_dir = session.settings.report_dir / run_id
    state = journal_state(run_dir / engine.JOURNAL_NAME)
    if state in ("missing", "empty") and run_dir.is_dir():
        again = restart_command(run_dir)
        raise JournalError(
            f"Run '{run_id}' stopped before its plan was journalled, so nothing was sent to the tenant and there "
            "is nothing to resume. "
            + (f"Start it again from the recorded input: {again}" if again else
               "Start it again with 'license-batch apply' on the same sheet.")
        )
    if state == "missing":
        raise ConfigError(
            f"No run '{run_id}' under {session.settings.report_dir}.",
            fix="Give the run id that apply printed, and the same --report-dir.",
        )
    tenant = session.tenant  # connect first, so the sandbox note comes before any progress
    if session.sandbox_note:
        say(session.sandbox_note)
    result = engine.resume(run_dir, tenant, limits=session.settings.limits, progress=progress,
                           argv=list(argv), processing_wait_s=_wait(processing_wait_s))
    _write_results(session, result, run_dir, argv, result.sheet.path)
    _remember_plan_refusals(session, run_dir)
    return result


def _write(fn: Callable[[], Any], run_dir: Path, *, run_id: str | None = None) -> Any:
    """Write a report, translating file-system errors into OutputError (exit 2, with what to do)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        return fn()
    except OSError as e:
        fix = (
            f"The changes were applied and the journal is intact: free the space or close the file, then run "
            f"'license-batch resume {run_id}' to write the results again."
            if run_id
            else "Free some space or choose another --report-dir."
        )
        raise OutputError(f"{e} {fix}", after_apply=run_id is not None) from e


def _write_results(session: Session, result: RunResult, run_dir: Path, argv: Sequence[str], source: Path) -> None:
    from .report import write_results

    meta: dict[str, Any] = {"argv": list(argv), "tenant": session.target.name, "graph_url": session.target.graph_url,
                            "source": str(source)}  # fmt: skip
    from .desired.approved import approval_of

    approved = approval_of(run_dir)
    if approved is not None:
        meta["approved_plan"] = approved
    _write(lambda: write_results(result, run_dir, meta=meta), run_dir, run_id=result.run_id)


# ------------------------------------------------------------------------------------------ capacity


def capacity(session: Session) -> CapacityReport:
    """``license-batch capacity``: seats per SKU and add-on units per currency type, read now."""
    from .errors import TenantError
    from .report.capacity import build

    tenant = session.tenant
    skus = tenant.skus()
    notes: list[str] = []
    try:
        currencies = list(tenant.currency_reports().values())
    except TenantError as e:
        currencies = []
        notes.append(f"Power Platform add-on capacity could not be read: {e}")
    name = session.target.name
    return build(name, datetime.now(UTC), skus.values(), currencies, notes)


def write_capacity(
    report: CapacityReport, *, csv_path: str | os.PathLike[str] | None = None,
    xlsx_path: str | os.PathLike[str] | None = None,
) -> list[Path]:
    """Write the capacity table to the files asked for (OutputError when one cannot be written)."""
    from .report.capacity import write_csv, write_xlsx

    out: list[Path] = []
    for target, writer in ((csv_path, write_csv), (xlsx_path, write_xlsx)):
        if target:
            p = Path(target)
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                out.append(writer(report, p))
            except OSError as e:
                raise OutputError(f"{e} Choose another file, or close it in Excel.") from e
    return out


# ---------------------------------------------------------------------------------------------- demo


def demo(
    settings: Settings,
    *,
    argv: Sequence[str] = (),
    progress: Callable[[ProgressEvent], None] | None = None,
    say: Callable[[str], None] = lambda _s: None,
) -> list[RunResult]:
    """Seed the sandbox if needed and apply the sample onboarding wave, then the sample add-on allocations
    (two runs; some rows of each fail on purpose). Returns both runs' results, the wave first."""
    if not settings.target.embedded_sandbox:
        raise ConfigError("The demo runs only against the built-in sandbox tenant.",
                          fix="Unset LICENSE_BATCH_GRAPH_URL / --tenant, or use 'apply' for a real tenant.")
    sheets = [SAMPLES_DIR / DEMO_SHEET, SAMPLES_DIR / DEMO_ADDONS]
    for sheet in sheets:
        if not sheet.exists():
            raise InputError("The sample sheet is missing from this installation.", path=str(sheet))
    results: list[RunResult] = []
    with open_session(settings) as session:
        # The samples ask for Copilot seats and Power Automate process units the tenant does not have:
        # partial shows those rows skipped.
        prepared = plan_file(session, sheets[0], on_shortfall=ShortfallPolicy.PARTIAL)
        say(session.sandbox_note)
        rows, ops = len(prepared.validation.sheet.rows), len(prepared.plan.operations)
        say(f"Applying the sample onboarding wave {sheets[0]} ({rows} row{'' if rows == 1 else 's'}, {ops} "
            f"operation{'' if ops == 1 else 's'} planned, --on-shortfall partial). Some rows fail on "
            "purpose: each kind of problem the tool reports is in the sample, so the demo ends with exit code 1 "
            "like any run with skipped or failed rows.")
        results.append(execute(session, prepared, argv=argv, progress=progress))
        prepared = plan_file(session, sheets[1], on_shortfall=ShortfallPolicy.PARTIAL)
        rows = sum(len(sh.rows) for sh in prepared.validation.sheets)
        n_sheets, reqs = len(prepared.validation.sheets), len(prepared.plan.operations)
        say(f"Applying the sample add-on allocations {sheets[1]} ({rows} row{'' if rows == 1 else 's'} on "
            f"{n_sheets} sheet{'' if n_sheets == 1 else 's'}, {reqs} environment request{'' if reqs == 1 else 's'} "
            "planned). One environment is locked by its group's policy and one row asks more than is free, on "
            "purpose.")
        results.append(execute(session, prepared, argv=argv, progress=progress))
    return results


# ------------------------------------------------------------------------------------------- helpers


def refresh_products(settings: Settings, *, from_file: str | None = None) -> tuple[Path, int, str]:
    """Refresh the cached copy of Microsoft's product list (download, or copy ``from_file``).

    Returns (cached file, products, a line saying which copy is now used: the newer of cache and shipped)."""
    from .sheets import CACHE_FILENAME, ProductCatalog, refresh_product_list

    if from_file:
        src = Path(from_file)
        cat = ProductCatalog.load(src)  # validates it before it replaces the cache
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        dest = settings.cache_dir / CACHE_FILENAME
        tmp = dest.with_name(".product-list-copy.tmp")
        shutil.copy2(src, tmp)  # keeps the file's time: the list's date
        os.replace(tmp, dest)
        count = len(cat)
    else:
        dest = refresh_product_list(settings.cache_dir)
        count = len(ProductCatalog.load(dest))
    cached = ProductCatalog.cached(settings.cache_dir)
    shipped = ProductCatalog.shipped()
    used = ProductCatalog.current(settings.cache_dir)
    if used is shipped and cached is not None:
        note = (f"It is dated {cached.date_text}, not newer than {shipped.describe()}, "
                "which stays in use.")
    else:
        note = f"It is dated {used.date_text} and is used from now on (the shipped list is dated {shipped.date_text})."
    return dest, count, note


def sandbox_init(db: Path, *, users: int, seed: int) -> list[str]:
    from .sandbox import init_tenant

    if users < 0:
        raise ConfigError(f"--users must be 0 or more, not {users}.")
    db.parent.mkdir(parents=True, exist_ok=True)
    s = init_tenant(db, users=users, seed=seed)
    return [
        f"Seeded a sandbox tenant in {db} (seed {s.seed}, {s.seconds:.1f} s): tenant {s.tenant_id} ({s.domain}),",
        f"  {s.users} users ({s.guests} guests, {s.disabled} disabled, {s.without_usage_location} without usage "
        f"location), {s.skus} SKUs, {s.groups} groups ({s.licensing_groups} licensing), "
        f"{s.environments} Power Platform environments.",
    ]


#: ``sandbox users --filter`` keys: what a person types -> the user record's field.
USER_FILTERS = {
    "department": "department", "jobtitle": "jobTitle", "title": "jobTitle", "usagelocation": "usageLocation",
    "location": "usageLocation", "country": "usageLocation", "usertype": "userType", "type": "userType",
    "accountenabled": "accountEnabled", "enabled": "accountEnabled", "upn": "userPrincipalName",
    "userprincipalname": "userPrincipalName", "mail": "mail", "license": "licenses", "sku": "licenses",
}


def sandbox_users(db: Path, *, filters: Sequence[str] = (), settings: Settings | None = None) -> list[dict[str, Any]]:
    """``license-batch sandbox users``: the sandbox's users (seeded first when the file does not exist), each
    with its licenses as part numbers (``SPE_E3`` direct, ``SPE_E3 (group)`` inherited). ``filters`` are
    ``key=value`` (department, jobTitle, usageLocation, userType, accountEnabled: equal, ignoring case; upn,
    mail: contains; license: holds that part number); all must hold."""
    from .sandbox import list_users, tenant_info

    wanted: list[tuple[str, str]] = []
    for f in filters:
        key, sep, value = f.partition("=")
        field_name = USER_FILTERS.get(key.strip().lower().replace("_", "").replace("-", ""))
        if not sep or field_name is None:
            raise ConfigError(
                f"--filter '{f}' is not of the form key=value with a known key.",
                fix="Use one of: department, jobTitle, usageLocation, userType, accountEnabled, upn, mail, license "
                    "(e.g. --filter department=Sales).",
            )
        wanted.append((field_name, value.strip().lower()))
    if not db.exists():
        s = settings.sandbox if settings is not None else SandboxSettings()
        sandbox_init(db, users=s.users, seed=s.seed)
    parts = {v["skuId"]: k for k, v in tenant_info(db)["skus"].items()}
    out: list[dict[str, Any]] = []
    for u in list_users(db):
        held = []
        for st in u.get("licenseAssignmentStates") or []:
            if st.get("state") not in ("Active", "ActiveWithError"):
                continue
            part = parts.get(st.get("skuId"), st.get("skuId"))
            held.append(part if not st.get("assignedByGroup") else f"{part} (group)")
        row = {k: u.get(k) for k in ("userPrincipalName", "mail", "department", "jobTitle", "usageLocation",
                                     "userType", "accountEnabled")}
        row["licenses"] = list(dict.fromkeys(held))
        if all(_user_matches(row, k, v) for k, v in wanted):
            out.append(row)
    return out


def _user_matches(row: Mapping[str, Any], field_name: str, value: str) -> bool:
    got = row.get(field_name)
    if field_name == "licenses":
        return any(p.split(" ")[0].lower() == value for p in got or [])
    if field_name in ("userPrincipalName", "mail"):
        return value in str(got or "").lower()
    if isinstance(got, bool):
        return str(got).lower() == value or {"yes": True, "no": False}.get(value) is got
    return str(got or "").lower() == value


def sandbox_serve(db: Path, *, host: str, port: int, time_scale: float, settings: Settings) -> None:
    from .sandbox import serve

    if not db.exists():
        sandbox_init(db, users=settings.sandbox.users, seed=settings.sandbox.seed)
    serve(db, sandbox_config(settings, time_scale=time_scale), host=host, port=port)



# ------------------------------------------------------------------ real tenants: whoami, preflight (issue 11)


def whoami(session: Session) -> Any:
    """``license-batch whoami``: tenant, cloud, identity and the permissions found (``batch.preflight.Identity``)."""
    from .preflight import identify

    return identify(session.tenant)


def preflight(session: Session, prepared: PlanRun) -> Any:
    """Before apply: raise PermissionDeniedError (exit 3) when the identity lacks what the plan's operations need."""
    from .preflight import check_plan

    plan = getattr(prepared, "plan", None)
    return check_plan(session.tenant, getattr(plan, "operations", None) or [])


# --------------------------------------------------------------------------------------- desired state


def export_users(
    session: Session, out: str | os.PathLike[str], *, department: str | None = None, sku: str | None = None,
    group: str | None = None, filters: Sequence[str] = (),
) -> Any:
    """``license-batch export users``: today's licenses in the layout apply/reconcile read (streamed).
    ``filters``: ``ATTRIBUTE=VALUE`` texts (``jobTitle=Engineer``), all of which must hold; ``group``: its
    members at any depth of nesting."""
    from .desired.export import UserFilter
    from .desired.export import export_users as run

    return run(session.tenant, out, UserFilter.parse(filters, department=department, sku=sku, group=group))


def export_addons(session: Session, out: str | os.PathLike[str]) -> Any:
    """``license-batch export addons``: every environment's add-on allocations, in the add-on sheet layout."""
    from .desired.export import export_addons as run

    return run(session.tenant, out)
