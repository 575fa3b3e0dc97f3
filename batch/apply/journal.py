"""The run journal: one SQLite file per run (``run_dir/journal.sqlite``) from which a run can be finished
after a crash, and its results rebuilt without the input file.

Safety rules (kill -9 at any instant leaves a usable journal):

* WAL mode, ``synchronous=FULL``: a committed transaction survives the process dying (and power loss).
* The whole plan (run, sheet, rows, validation outcomes, operations) is written in ONE transaction with
  the run's status ``ready``: a journal either holds a complete plan or no run at all (:func:`journal_state`).
* An operation is committed as ``sent`` BEFORE its request leaves (:meth:`Journal.mark_sent`), and settled
  after its response (:meth:`Journal.settle`), each a small transaction per ``$batch``. An operation found
  ``sent`` or ``unknown`` by ``resume`` may or may not have taken effect: it is checked against the tenant
  before it is sent again.

Schema (``SCHEMA`` below is the authority; version 2 made it kind-agnostic)::

    run(run_id, tool_version, input_path, input_sha256, command_line, tenant, started, finished, status,
        requests_sent, throttled, throttle_wait_s)                   status: ready|running|interrupted|finished
    sheet(idx, kind, name, format, encoding, delimiter, header_row, blank_rows, columns, notes, headers)
    input_row(idx, sheet, number, cells JSON)       idx runs on across the sheets of a workbook
    row_check(row, seq, status, action, target_id, code, message, fix, findings JSON, state)
    pool(pool_id, kind, name, total, used_before, used_after)   a SKU's seats, an add-on's units
    operation(key, seq, kind, api, target_id, target_name, method, url, body JSON, rows JSON, depends_on,
              add/remove/before/after JSON, state, attempts, status, error_code, error_message, fix, request_id,
              settled)                      state: planned|sent|succeeded|failed|unknown
    attempt(op_key, n, sent, status, request_id, batch_request_id, response)
    target_state(api, target_id, state JSON)   each changed target as it was before the run (for rollback)

sqlite3 errors are translated into :class:`batch.errors.JournalError` here and nowhere else.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from .._secrets import scrub_argv as _scrub_argv
from ..errors import JournalError, RowFinding
from ..models import Api, InputRow, Kind, Operation, OpKind, Plan, RequestStatus, Sheet, TypedCell

JOURNAL_NAME = "journal.sqlite"
SCHEMA_VERSION = 2


class OpState(StrEnum):
    PLANNED = "planned"  # not sent yet (or re-queued after a 429 / 5xx that certainly did nothing)
    SENT = "sent"  # committed before the request left; outcome not known yet
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the request may have reached the server: check the tenant before resending


SETTLED = frozenset({OpState.SUCCEEDED, OpState.FAILED})

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    run_id TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    input_path TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    command_line TEXT NOT NULL,
    tenant TEXT NOT NULL,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL CHECK (status IN ('ready', 'running', 'interrupted', 'finished')),
    requests_sent INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    throttle_wait_s REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sheet (
    idx INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT,
    format TEXT NOT NULL,
    encoding TEXT,
    delimiter TEXT,
    header_row INTEGER NOT NULL,
    blank_rows INTEGER NOT NULL,
    columns TEXT NOT NULL,
    notes TEXT NOT NULL,
    headers TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS input_row (
    idx INTEGER PRIMARY KEY, sheet INTEGER NOT NULL, number INTEGER NOT NULL, cells TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS row_check (
    row INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    action TEXT NOT NULL,
    target_id TEXT,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    fix TEXT NOT NULL,
    findings TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (row, seq)
);
CREATE TABLE IF NOT EXISTS pool (
    pool_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    total INTEGER NOT NULL,
    used_before INTEGER NOT NULL,
    used_after INTEGER,
    PRIMARY KEY (kind, pool_id)
);
CREATE TABLE IF NOT EXISTS operation (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    api TEXT NOT NULL,
    target_id TEXT NOT NULL,
    target_name TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    rows TEXT NOT NULL,
    depends_on TEXT,
    add_licenses TEXT NOT NULL,
    remove_licenses TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned', 'sent', 'succeeded', 'failed', 'unknown')),
    attempts INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    error_code TEXT,
    error_message TEXT,
    fix TEXT,
    request_id TEXT,
    settled TEXT
);
CREATE INDEX IF NOT EXISTS operation_state ON operation (state);
CREATE TABLE IF NOT EXISTS target_state (
    api TEXT NOT NULL,
    target_id TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (api, target_id)
);
CREATE TABLE IF NOT EXISTS observation (
    row INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('done', 'failed', 'pending')),
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    fix TEXT NOT NULL,
    after TEXT NOT NULL,
    checked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attempt (
    op_key TEXT NOT NULL,
    n INTEGER NOT NULL,
    sent TEXT NOT NULL,
    status INTEGER,
    request_id TEXT,
    batch_request_id TEXT,
    response TEXT,
    PRIMARY KEY (op_key, n)
);
"""



def scrub_argv(argv: Sequence[str]) -> str:
    """The command line as text, secrets replaced by ``***`` (the same rules as the reports)."""
    return " ".join(_scrub_argv(argv))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# ------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class RunMeta:
    """What the run row records about where the run came from. Holds no secret."""

    run_id: str
    tool_version: str = ""
    input_path: str = ""
    input_sha256: str = ""
    command_line: str = ""  # already scrubbed (see :func:`scrub_argv`)
    tenant: str = ""
    argv: tuple[str, ...] = ()  # the same command line as a list, already scrubbed


@dataclass(slots=True)
class RunInfo:
    run_id: str
    tool_version: str
    input_path: str
    input_sha256: str
    command_line: str
    tenant: str
    started: datetime
    finished: datetime | None
    status: str
    requests_sent: int
    throttled: int
    throttle_wait_s: float


@dataclass(frozen=True, slots=True)
class RowCheck:
    """One validated request of one input row, as the journal keeps it."""

    row: int
    seq: int
    status: RequestStatus
    action: str
    target_id: str | None  # the user's or environment's id
    code: str
    message: str
    fix: str
    state: str  # the target's state at snapshot time, as people read it ("SPE_E3, SPE_E5"; "AI Builder credits 100")
    findings: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class OpRecord:
    """An operation and where it stands."""

    op: Operation
    seq: int
    state: OpState
    attempts: int = 0
    status: int | None = None
    error_code: str = ""
    error_message: str = ""
    fix: str = ""
    request_id: str = ""
    settled: datetime | None = None

    @property
    def key(self) -> str:
        return self.op.key


@dataclass(frozen=True, slots=True)
class Observation:
    """What the tenant showed for one row after its write succeeded, for changes that complete asynchronously
    (a group's licenses reach a new member minutes later): ``done`` (in effect), ``failed`` (the service
    could not complete it, e.g. CountViolation) or ``pending`` (not processed yet when last looked at)."""

    row: int
    target_id: str
    state: str  # done | failed | pending
    code: str = ""
    message: str = ""
    fix: str = ""
    after: str = ""  # the row's state afterwards, as people read it
    checked: datetime | None = None


@dataclass(frozen=True, slots=True)
class Sent:
    """One operation about to leave in a $batch."""

    key: str
    attempt: int  # 1-based


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What became of one sent operation (built with keywords only: ten fields of like types)."""

    key: str
    attempt: int
    state: OpState  # succeeded | failed | unknown | planned (re-queued)
    status: int | None = None
    error_code: str = ""
    error_message: str = ""
    fix: str = ""
    request_id: str = ""
    batch_request_id: str = ""
    response: str = ""  # a short excerpt: status, code, message; never headers or tokens


@dataclass(slots=True)
class SkuRecord:
    """A capacity pool as the run found it and left it: a SKU's seats (``sku_id``, ``part_number``,
    ``enabled``, ``consumed``) or, with ``kind == "addons"``, an add-on's units (currencyType, purchased,
    allocated across all environments)."""

    sku_id: str
    part_number: str
    enabled: int
    consumed_before: int
    consumed_after: int | None = None
    kind: Kind = Kind.LICENSES
    label: str = ""  # what people call it: the product name ("Microsoft 365 E3"), the add-on's name


# ------------------------------------------------------------------------------------------- journal


def journal_state(path: Path) -> str:
    """``missing`` (no file), ``empty`` (a crash before the plan was committed: nothing was sent),
    or the run's status: ``ready`` | ``running`` | ``interrupted`` | ``finished``."""
    if not path.exists():
        return "missing"
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            has = con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='run'").fetchone()
            if not has:
                return "empty"
            row = con.execute("SELECT status FROM run WHERE id = 1").fetchone()
            return "empty" if row is None else str(row[0])
        finally:
            con.close()
    except sqlite3.Error as e:
        raise JournalError(f"The journal {path} cannot be read: {e}.") from e


class Journal:
    """A run's journal. Not thread-safe: one engine (one event loop thread) writes it."""

    def __init__(self, con: sqlite3.Connection, path: Path) -> None:
        self._con = con
        self.path = path

    # -------------------------------------------------------------------------------- lifecycle

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=5000")
            return con
        except sqlite3.Error as e:
            raise JournalError(f"The journal {path} cannot be opened: {e}.") from e

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One small transaction; any sqlite3 error becomes a JournalError (and nothing is committed)."""
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.Error as e:
            raise JournalError(f"Writing the journal {self.path} failed: {e}.") from e

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise JournalError(f"Reading the journal {self.path} failed: {e}.") from e

    @classmethod
    def create(
        cls,
        path: Path,
        meta: RunMeta,
        plan: Plan,
        *,
        checks: Iterable[RowCheck],
        skus: Iterable[SkuRecord],
    ) -> Journal:
        """Write a new run's complete plan in one transaction. A journal left ``empty`` by a crash during
        creation is replaced; one that holds a run is refused."""
        state = journal_state(path)
        if state not in ("missing", "empty"):
            raise JournalError(
                f"The run folder {path.parent} already holds a run ({state}).",
            )
        if state == "empty":
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        j = cls(cls._connect(path), path)
        sheet = plan.validation.sheet
        try:
            with j._tx() as con:
                # (executescript would COMMIT on its own: run the statements one by one, in this transaction)
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                # Which tenant the plan was made against: resume refuses to continue it anywhere else.
                con.execute("INSERT INTO meta VALUES ('tenant_id', ?)", (plan.validation.snapshot.tenant_id,))
                # Every command line that worked on this run: apply's, then each resume's (scrubbed lists).
                con.execute("INSERT INTO meta VALUES ('command_lines', ?)",
                            (json.dumps([{"at": now_iso(), "argv": list(meta.argv)}], ensure_ascii=False),))
                con.execute(
                    "INSERT INTO run (id, run_id, tool_version, input_path, input_sha256, command_line, tenant,"
                    " started, status) VALUES (1, ?, ?, ?, ?, ?, ?, ?, 'ready')",
                    (
                        meta.run_id,
                        meta.tool_version,
                        meta.input_path or str(sheet.path),
                        meta.input_sha256 or sheet.sha256,
                        meta.command_line,
                        meta.tenant,
                        now_iso(),
                    ),
                )
                for k, sh in enumerate(plan.validation.sheets):
                    con.execute(
                        "INSERT INTO sheet VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            k,
                            str(sh.kind),
                            sh.sheet_name,
                            sh.format,
                            sh.encoding,
                            sh.delimiter,
                            sh.header_row,
                            sh.blank_rows,
                            json.dumps({str(r): v for r, v in sh.columns.items()}),
                            json.dumps(list(sh.notes)),
                            json.dumps(list(sh.headers), ensure_ascii=False),
                        ),
                    )
                    con.executemany(
                        "INSERT INTO input_row VALUES (?, ?, ?, ?)",
                        ((r.index, k, r.number, _cells_json(r)) for r in sh.rows),
                    )
                con.executemany(
                    "INSERT INTO row_check VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            c.row,
                            c.seq,
                            str(c.status),
                            c.action,
                            c.target_id,
                            c.code,
                            c.message,
                            c.fix,
                            json.dumps(list(c.findings), ensure_ascii=False),
                            c.state,
                        )
                        for c in checks
                    ),
                )
                skus = list(skus)
                con.executemany(
                    "INSERT INTO pool VALUES (?, ?, ?, ?, ?, NULL)",
                    ((s.sku_id, str(s.kind), s.part_number, s.enabled, s.consumed_before) for s in skus),
                )
                con.execute("INSERT INTO meta VALUES ('pool_labels', ?)", (json.dumps(
                    {f"{s.kind}:{s.sku_id}": s.label for s in skus if s.label}, ensure_ascii=False),))
                con.executemany(
                    "INSERT INTO operation (key, seq, kind, api, target_id, target_name, method, url, body, rows,"
                    " depends_on, add_licenses, remove_licenses, before, after, state)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'planned')",
                    (
                        (
                            op.key,
                            i,
                            str(op.kind),
                            str(op.api),
                            op.target_id,
                            op.target,
                            op.method,
                            op.url,
                            json.dumps(op.body, ensure_ascii=False),
                            json.dumps(list(op.rows)),
                            op.depends_on,
                            json.dumps([[s, list(d)] for s, d in op.add]),
                            json.dumps(list(op.remove)),
                            json.dumps(list(op.before)),
                            json.dumps(list(op.after)),
                        )
                        for i, op in enumerate(plan.operations)
                    ),
                )
                from ..desired.state import prior_states

                con.executemany(
                    "INSERT INTO target_state VALUES (?, ?, ?)",
                    ((a, t, json.dumps(st, ensure_ascii=False)) for a, t, st in prior_states(plan)),
                )
        except BaseException:
            j.close()
            raise
        return j

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open an existing run's journal (for resume or to rebuild results)."""
        state = journal_state(path)
        if state == "missing":
            raise JournalError(f"There is no journal at {path}.")
        if state == "empty":
            raise JournalError(
                f"The journal {path} holds no plan: the run stopped before anything was sent. Start it again."
            )
        j = cls(cls._connect(path), path)
        row = j._query("SELECT value FROM meta WHERE key = 'schema_version'")
        if not row or int(row[0][0]) != SCHEMA_VERSION:
            j.close()
            raise JournalError(f"The journal {path} was written by an incompatible version.")
        return j

    def meta(self, key: str) -> str | None:
        """A value of the journal's meta table (``schema_version``, ``tenant_id``), or None."""
        row = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row[0][0]) if row else None

    def command_lines(self) -> list[dict[str, Any]]:
        """Every command line recorded for this run, oldest first: ``{"at": ISO time, "argv": [...]}``."""
        raw = self.meta("command_lines")
        if raw is None:  # a journal written before command lines were kept: the run row's text
            info = self._query("SELECT command_line, started FROM run WHERE id = 1")
            return [{"at": info[0][1], "argv": info[0][0].split()}] if info and info[0][0] else []
        return list(json.loads(raw))

    def add_command_line(self, argv: Sequence[str]) -> None:
        """Record a further command line (a resume) after the ones already kept; secrets are scrubbed."""
        lines = [*self.command_lines(), {"at": now_iso(), "argv": _scrub_argv(argv)}]
        with self._tx() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('command_lines', ?)",
                        (json.dumps(lines, ensure_ascii=False),))

    def set_meta(self, key: str, value: str) -> None:
        """Record a value in the meta table (e.g. an approved plan's hash and approver)."""
        with self._tx() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def target_states(self) -> dict[tuple[str, str], dict[str, Any]] | None:
        """(api, target id) -> the target's state before the run; None for a journal written without them."""
        has = self._query("SELECT name FROM sqlite_master WHERE type='table' AND name='target_state'")
        if not has:
            return None
        return {(a, t): json.loads(s) for a, t, s in self._query("SELECT api, target_id, state FROM target_state")}

    def close(self) -> None:
        try:
            self._con.close()
        except sqlite3.Error as e:  # pragma: no cover
            raise JournalError(f"Closing the journal {self.path} failed: {e}.") from e

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- run row

    def run_info(self) -> RunInfo:
        r = self._query(
            "SELECT run_id, tool_version, input_path, input_sha256, command_line, tenant, started, finished,"
            " status, requests_sent, throttled, throttle_wait_s FROM run WHERE id = 1"
        )[0]
        return RunInfo(
            run_id=r[0],
            tool_version=r[1],
            input_path=r[2],
            input_sha256=r[3],
            command_line=r[4],
            tenant=r[5],
            started=parse_iso(r[6]) or datetime.now(UTC),
            finished=parse_iso(r[7]),
            status=r[8],
            requests_sent=int(r[9]),
            throttled=int(r[10]),
            throttle_wait_s=float(r[11]),
        )

    def set_status(self, status: str, *, finished: bool = False) -> None:
        with self._tx() as con:
            if finished:
                con.execute("UPDATE run SET status = ?, finished = ? WHERE id = 1", (status, now_iso()))
            else:
                con.execute("UPDATE run SET status = ? WHERE id = 1", (status,))

    def add_counters(self, *, requests: int = 0, throttled: int = 0, wait_s: float = 0.0) -> None:
        with self._tx() as con:
            con.execute(
                "UPDATE run SET requests_sent = requests_sent + ?, throttled = throttled + ?,"
                " throttle_wait_s = throttle_wait_s + ? WHERE id = 1",
                (requests, throttled, wait_s),
            )

    # -------------------------------------------------------------------------------- operations

    def operations(self) -> list[OpRecord]:
        out: list[OpRecord] = []
        strings: dict[str, str] = {}  # one object per distinct skuId/plan id (100k operations share a few)

        def ids(text: str) -> tuple[str, ...]:
            return tuple(strings.setdefault(x, x) for x in json.loads(text))

        for r in self._query(
            "SELECT key, seq, kind, target_id, target_name, method, url, body, rows, depends_on, add_licenses,"
            " remove_licenses, before, after, state, attempts, status, error_code, error_message, fix,"
            " request_id, settled, api FROM operation ORDER BY seq"
        ):
            op = Operation(
                key=r[0],
                kind=OpKind(r[2]),
                target_id=r[3],
                target=r[4],
                method=r[5],
                url=r[6],
                body=json.loads(r[7]),
                rows=tuple(json.loads(r[8])),
                depends_on=r[9],
                add=tuple((strings.setdefault(s, s), tuple(strings.setdefault(x, x) for x in d))
                          for s, d in json.loads(r[10])),
                remove=ids(r[11]),
                before=ids(r[12]),
                after=ids(r[13]),
                api=Api(r[22]),
            )
            out.append(
                OpRecord(
                    op=op,
                    seq=int(r[1]),
                    state=OpState(r[14]),
                    attempts=int(r[15]),
                    status=r[16],
                    error_code=r[17] or "",
                    error_message=r[18] or "",
                    fix=r[19] or "",
                    request_id=r[20] or "",
                    settled=parse_iso(r[21]),
                )
            )
        return out

    def mark_sent(self, items: Sequence[Sent]) -> None:
        """Commit ``items`` as sent (one attempt each) BEFORE their $batch request leaves."""
        t = now_iso()
        with self._tx() as con:
            con.executemany(
                "UPDATE operation SET state = 'sent', attempts = ? WHERE key = ?",
                ((s.attempt, s.key) for s in items),
            )
            con.executemany(
                "INSERT OR REPLACE INTO attempt (op_key, n, sent) VALUES (?, ?, ?)",
                ((s.key, s.attempt, t) for s in items),
            )

    def settle(
        self, items: Sequence[Settlement], *, requests: int = 0, throttled: int = 0, wait_s: float = 0.0
    ) -> None:
        """Record what became of sent operations, and add to the run's counters (one transaction).
        Several settlements of one operation are applied in order (the last one stands)."""
        if not items and not (requests or throttled or wait_s):
            return
        t = now_iso()
        with self._tx() as con:
            if requests or throttled or wait_s:
                con.execute(
                    "UPDATE run SET requests_sent = requests_sent + ?, throttled = throttled + ?,"
                    " throttle_wait_s = throttle_wait_s + ? WHERE id = 1",
                    (requests, throttled, wait_s),
                )
            for s in items:
                settled = t if s.state in SETTLED else None
                con.execute(
                    "UPDATE operation SET state = ?, status = ?, error_code = ?, error_message = ?, fix = ?,"
                    " request_id = ?, settled = ? WHERE key = ?",
                    (
                        str(s.state),
                        s.status,
                        s.error_code,
                        s.error_message,
                        s.fix,
                        s.request_id,
                        settled,
                        s.key,
                    ),
                )
                if s.attempt > 0:
                    con.execute(
                        "UPDATE attempt SET status = ?, request_id = ?, batch_request_id = ?, response = ?"
                        " WHERE op_key = ? AND n = ?",
                        (s.status, s.request_id, s.batch_request_id, s.response[:500], s.key, s.attempt),
                    )

    def attempts(self, key: str) -> list[tuple[int, str, int | None, str | None, str | None]]:
        """(n, sent, status, request_id, response) of every attempt of one operation."""
        return [
            (int(r[0]), r[1], r[2], r[3], r[4])
            for r in self._query(
                "SELECT n, sent, status, request_id, response FROM attempt WHERE op_key = ? ORDER BY n", (key,)
            )
        ]

    def recent_sends(self, since: datetime) -> list[tuple[datetime, int]]:
        """(time, writes) of attempts sent at or after ``since``: a resumed run's pacer starts from them,
        because Graph's quota window still counts the writes of the run that was interrupted."""
        rows = self._query(
            "SELECT sent, COUNT(*) FROM attempt WHERE sent >= ? GROUP BY sent ORDER BY sent",
            (since.astimezone(UTC).isoformat(timespec="milliseconds"),),
        )
        return [(datetime.fromisoformat(t), int(n)) for t, n in rows]

    # -------------------------------------------------------------------------------- sheet, rows

    def sheets(self) -> list[Sheet]:
        """The input sheets as recorded (headers, every row's cells) - no need for the input file."""
        from ..models import Role

        r = self._query("SELECT input_path, input_sha256 FROM run WHERE id = 1")[0]
        rows: dict[int, list[InputRow]] = {}
        for i, k, n, c in self._query("SELECT idx, sheet, number, cells FROM input_row ORDER BY idx"):
            rows.setdefault(int(k), []).append(_input_row(int(i), int(n), c))
        out: list[Sheet] = []
        for k, kind, name, fmt, enc, delim, hrow, blank, cols, notes, headers in self._query(
            "SELECT idx, kind, name, format, encoding, delimiter, header_row, blank_rows, columns, notes, headers"
            " FROM sheet ORDER BY idx"
        ):
            out.append(
                Sheet(
                    path=Path(r[0]),
                    format=fmt,
                    sheet_name=name,
                    encoding=enc,
                    delimiter=delim,
                    header_row=int(hrow),
                    headers=tuple(json.loads(headers)),
                    rows=rows.get(int(k), []),
                    columns={Role(x): int(v) for x, v in json.loads(cols).items()},
                    sha256=r[1],
                    blank_rows=int(blank),
                    notes=list(json.loads(notes)),
                    kind=Kind(kind),
                )
            )
        return out

    def sheet(self) -> Sheet:
        """The first input sheet (see :meth:`sheets`)."""
        return self.sheets()[0]

    def row_checks(self) -> list[RowCheck]:
        return [
            RowCheck(
                row=int(r[0]),
                seq=int(r[1]),
                status=RequestStatus(r[2]),
                action=r[3],
                target_id=r[4],
                code=r[5],
                message=r[6],
                fix=r[7],
                findings=tuple(json.loads(r[8])),
                state=r[9],
            )
            for r in self._query(
                "SELECT row, seq, status, action, target_id, code, message, fix, findings, state"
                " FROM row_check ORDER BY row, seq"
            )
        ]

    def skus(self) -> list[SkuRecord]:
        labels: dict[str, str] = json.loads(self.meta("pool_labels") or "{}")
        return [
            SkuRecord(sku_id=r[0], part_number=r[1], enabled=int(r[2]), consumed_before=int(r[3]),
                      consumed_after=None if r[4] is None else int(r[4]), kind=Kind(r[5]),
                      label=labels.get(f"{r[5]}:{r[0]}", ""))
            for r in self._query("SELECT pool_id, name, total, used_before, used_after, kind FROM pool")
        ]

    def set_seats_after(self, consumed: dict[str, int], kind: Kind = Kind.LICENSES) -> None:
        """Units used after the run, by pool id (skuId, or currencyType for add-ons)."""
        with self._tx() as con:
            con.executemany(
                "UPDATE pool SET used_after = ? WHERE pool_id = ? AND kind = ?",
                ((v, k, str(kind)) for k, v in consumed.items()),
            )


    # ------------------------------------------------------------------------- observations

    def _observation_table(self, con: sqlite3.Connection) -> None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS observation (row INTEGER PRIMARY KEY, target_id TEXT NOT NULL, state TEXT"
            " NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL, fix TEXT NOT NULL, after TEXT NOT NULL,"
            " checked TEXT NOT NULL)"
        )

    def record_observations(self, items: Sequence[Observation]) -> None:
        """Record (replace) what the tenant showed for rows after their writes succeeded."""
        if not items:
            return
        t = now_iso()
        with self._tx() as con:
            self._observation_table(con)
            con.executemany(
                "INSERT OR REPLACE INTO observation VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((o.row, o.target_id, o.state, o.code, o.message, o.fix, o.after, t) for o in items),
            )

    def observations(self) -> dict[int, Observation]:
        """Row index -> its last observation (journals without the table have none)."""
        try:
            rows = self._con.execute(
                "SELECT row, target_id, state, code, message, fix, after, checked FROM observation"
            ).fetchall()
        except sqlite3.Error:
            return {}
        return {int(r[0]): Observation(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], parse_iso(r[7])) for r in rows}

    def update_operation(self, key: str, body: Mapping[str, Any], rows: Sequence[int]) -> None:
        """Change what a not-yet-settled operation sends (an add of 20 members re-planned without those that
        turned out to be members already)."""
        with self._tx() as con:
            con.execute("UPDATE operation SET body = ?, rows = ? WHERE key = ?",
                        (json.dumps(dict(body)), json.dumps(list(rows)), key))


def _typed_json(v: TypedCell | None) -> Any:
    """A workbook cell's type kept in JSON: {"n": number}, {"b": bool}, {"dt"|"d"|"t": ISO}, {"s": seconds}."""
    if v is None:
        return None
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int | float):
        return {"n": v}
    if isinstance(v, datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, date):
        return {"d": v.isoformat()}
    if isinstance(v, time):
        return {"t": v.isoformat()}
    return {"s": v.total_seconds()}


def _typed_value(j: Any) -> TypedCell | None:
    if not isinstance(j, dict):
        return None
    if "b" in j:
        return bool(j["b"])
    if "n" in j:
        return j["n"]
    if "dt" in j:
        return datetime.fromisoformat(j["dt"])
    if "d" in j:
        return date.fromisoformat(j["d"])
    if "t" in j:
        return time.fromisoformat(j["t"])
    return timedelta(seconds=float(j.get("s", 0)))


def _cells_json(r: InputRow) -> str:
    """An input row's cells (a JSON list of text), with its typed cells when it has any."""
    if r.values is None:
        return json.dumps(list(r.cells), ensure_ascii=False)
    return json.dumps({"cells": list(r.cells), "values": [_typed_json(v) for v in r.values]}, ensure_ascii=False)


def _input_row(index: int, number: int, text: str) -> InputRow:
    data = json.loads(text)
    if isinstance(data, dict):
        return InputRow(index=index, number=number, cells=tuple(data["cells"]),
                        values=tuple(_typed_value(v) for v in data["values"]))
    return InputRow(index=index, number=number, cells=tuple(data))


def finding_record(f: RowFinding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": str(f.severity),
        "message": f.message,
        "fix": f.fix,
        "row": f.row,
        "column": f.column,
    }


__all__ = [
    "JOURNAL_NAME",
    "SETTLED",
    "Journal",
    "Observation",
    "OpRecord",
    "OpState",
    "RowCheck",
    "RunInfo",
    "RunMeta",
    "Sent",
    "Settlement",
    "SkuRecord",
    "finding_record",
    "journal_state",
    "now_iso",
    "scrub_argv",
]
