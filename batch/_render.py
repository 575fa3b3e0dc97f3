"""Text rendering and progress for the CLI (private: the library returns records, the CLI prints these)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO

from .apply.engine import ProgressNote
from .jobs import PlanRun, ValidationRun, plan_summary, run_summary, validation_summary
from .models import WAVE_REFUSED, Kind, Outcome, RunResult
from .report.capacity import CapacityReport

if TYPE_CHECKING:
    from .apply.engine import ProgressEvent


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A plain aligned text table (numbers right-aligned)."""
    body = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in body:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if c.lstrip("-").isdigit() else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return [fmt(list(headers)), fmt(["-" * w for w in widths]), *(fmt(r) for r in body)]


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 operation``, ``2 operations`` (``many`` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def row_list(numbers: Iterable[int], limit: int = 6) -> str:
    """Distinct row numbers in order, at most ``limit`` of them: "2, 11, 18, ..." """
    rows = list(dict.fromkeys(numbers))
    return ", ".join(str(r) for r in rows[:limit]) + (", ..." if len(rows) > limit else "")


def _findings_by_code(res: ValidationRun | PlanRun, limit: int = 6, codes: int = 40) -> list[str]:
    """One line per finding code (every code, or the first ``codes`` and "and N more"): how many rows
    carry it, which (distinct) rows, and one example message."""
    rows: dict[str, list[int]] = {}
    message: dict[str, str] = {}
    for c in res.validation.requests:
        for f in c.findings:
            rows.setdefault(f.code, []).append(c.request.row_number)
            message.setdefault(f.code, f"{f.severity}: {f.message}")
    distinct = {code: list(dict.fromkeys(r)) for code, r in rows.items()}
    order = sorted(distinct, key=lambda code: (-len(distinct[code]), code))
    lines = []
    for code in order[:codes]:
        n = len(distinct[code])
        lines.append(f"  {code} x{n} ({'row' if n == 1 else 'rows'} {row_list(distinct[code], limit)})"
                     f"  e.g. {message[code]}")
    if len(order) > codes:
        lines.append(f"  ... and {len(order) - codes} more finding codes (see the report)")
    return lines


def render_validation(res: ValidationRun | PlanRun) -> list[str]:
    s = validation_summary(res)
    v = res.validation
    lines = [
        f"{v.sheet.path.name}: {plural(s['rows'], 'row')} - {s['ok']} ok ({s['warnings']} of them with warnings), "
        f"{s['unchanged']} unchanged, {s['errors']} with errors, {s['over_capacity']} over capacity",
    ]
    for sh in v.sheets:
        where = f"sheet '{sh.sheet_name}': " if len(v.sheets) > 1 else ""
        if sh.blank_rows:
            lines.append(f"({where}{sh.blank_rows} blank rows ignored)")
        lines.extend(f"Note: {where}{n}" for n in sh.notes)
    findings = _findings_by_code(res)
    if findings:
        lines.append("Findings:")
        lines.extend(findings)
    seats = [c for c in v.capacity if c.kind is Kind.LICENSES]
    units = [c for c in v.capacity if c.kind is Kind.ADDONS]
    if seats:
        lines.append("Capacity (seats):")
        lines.extend(
            "  " + ln
            for ln in table(
                ["SKU", "available", "needed", "freed", "net", "short by"],
                [(c.part_number, c.available, c.needed, c.freed, c.net, c.short) for c in seats],
            )
        )
    if units:
        lines.append("Capacity (add-on units):")
        lines.extend(
            "  " + ln
            for ln in table(
                ["add-on", "purchased", "allocated elsewhere", "asked", "short by"],
                [(c.name, c.enabled, c.consumed, c.needed, c.short) for c in units],
            )
        )
    if v.wave_refused:
        lines.append(
            "Not applicable: a license or add-on is short (--on-shortfall stop). Buy more, free some, "
            "or use --on-shortfall partial."
        )
    if s["report"]:
        lines.append(f"Report: {s['report']}")
    return lines


def render_plan(res: PlanRun, *, brief: bool = False, limit: int = 50) -> list[str]:
    from .plan import describe_operations

    lines = render_validation(res)
    s = plan_summary(res)
    ops = describe_operations(res.plan)
    n_ops = s["operations"]
    lines.append(f"Plan {res.run_id}: {plural(n_ops, 'operation')}")
    lines.extend("  " + n for n in res.plan.notes)  # choices people must see even in brief (--via-group)
    ops = ops[len(res.plan.notes):]
    shown = ops if not brief else ops[:0]
    if not brief:
        lines.extend("  " + o for o in shown[:limit])
        if len(ops) > limit:
            lines.append(f"  ... and {len(ops) - limit} more")
    if res.plan_csv:
        lines.append(f"Every operation, with its exact request body: {res.plan_csv}")
    if res.plan.seats:
        lines.extend(
            "  " + ln
            for ln in table(
                ["SKU / add-on", "takes", "frees"], [(x.part_number, x.takes, x.frees) for x in res.plan.seats]
            )
        )
    return lines


def render_capacity(report: CapacityReport) -> list[str]:
    """The ``capacity`` table: seats per SKU, then add-on units per currency type."""
    lines = [f"Capacity of {report.tenant}:"]
    seats = [r for r in report.rows if r.kind is Kind.LICENSES]
    units = [r for r in report.rows if r.kind is Kind.ADDONS]
    if seats:
        lines.append("Seats per SKU:")
        lines += ["  " + ln for ln in table(
            ["product", "SKU", "purchased", "assigned", "free", "suspended", "warning", "status"],
            [(r.name, r.id, r.purchased, r.used, r.free, r.suspended, r.warning, r.status) for r in seats])]
    if units:
        lines.append("Add-on units per type:")
        lines += ["  " + ln for ln in table(
            ["add-on", "type", "purchased", "allocated", "free", "consumed"],
            [(r.name, r.id, r.purchased, r.used, r.free, "" if r.consumed is None else r.consumed) for r in units])]
    lines += [f"Note: {n}" for n in report.notes]
    return lines


def render_users(users: Sequence[dict[str, object]]) -> list[str]:
    """``sandbox users``: one line per user (UPN, department, job title, location, type, enabled, licenses)."""
    rows = [
        (u["userPrincipalName"], u.get("department") or "", u.get("jobTitle") or "", u.get("usageLocation") or "-",
         u.get("userType") or "", "yes" if u.get("accountEnabled") else "no",
         ", ".join(u.get("licenses") or []) or "-")  # type: ignore[arg-type]
        for u in users
    ]
    return [*table(["userPrincipalName", "department", "job title", "location", "type", "enabled", "licenses"],
                   rows), f"{plural(len(users), 'user')}"]


def changed_anything(result: RunResult) -> bool:
    """Did the run change the tenant? (A skipped row with a request id was partly applied.)"""
    return any(r.status is Outcome.APPLIED or (r.status is Outcome.SKIPPED and r.request_id) for r in result.rows)


def render_run(result: RunResult) -> list[str]:
    s = run_summary(result)
    dur = (result.finished - result.started).total_seconds()
    lines: list[str] = []
    if result.already_finished:
        lines.append(f"Run {result.run_id} had already finished: nothing was sent again. Its results:")
    lines.append(
        f"Run {result.run_id}: {plural(s['rows'], 'row')} - {s['applied']} applied, "
        f"{s['unchanged']} unchanged, {s['skipped']} skipped, {s['failed']} failed, "
        f"{s['not_run']} not run ({dur:.1f} s, {plural(result.requests_sent, 'request')}, "
        f"{result.throttled} throttled, {result.throttle_wait_s:.1f} s waiting on throttling)",
    )
    failed = [r for r in result.rows if r.status is Outcome.FAILED]
    if failed:
        lines.append("Failed (the tenant refused):")
        lines.extend(f"  row {r.row_number}: {r.action}: {r.code}: {r.message}" for r in failed[:10])
        if len(failed) > 10:
            lines.append(f"  ... and {len(failed) - 10} more (see the Errors sheet)")
    skipped = [r for r in result.rows if r.status is Outcome.SKIPPED]
    refused = sum(1 for r in skipped if r.code == WAVE_REFUSED)
    if skipped:
        by: Counter[str] = Counter(r.code for r in skipped)
        lines.append("Skipped (not sent; fix the sheet and run those rows again):")
        order = sorted(by, key=lambda code: (-by[code], code))
        for code in order[:20]:
            lines.append(f"  {code} x{by[code]} ({'row' if by[code] == 1 else 'rows'} "
                         f"{row_list(r.row_number for r in skipped if r.code == code)})")
        if len(order) > 20:
            lines.append(f"  ... and {len(order) - 20} more codes (see the Errors sheet)")
    lines.append(f"Results: {s['report']}")
    if refused:
        lines.append(
            f"The wave was refused: a license or add-on is short (--on-shortfall stop), so nothing was sent and "
            f"{plural(refused, 'valid row')} {'was' if refused == 1 else 'were'} not applied. Buy or free seats, "
            "or run again with --on-shortfall partial."
        )
    elif s["rows"] and not s["not_run"] and not s["failed"] and not changed_anything(result):
        lines.append("Nothing needed changing: the tenant already matches every valid row.")
    if result.interrupted:
        lines.append(f"Interrupted. Continue with: license-batch resume {result.run_id}")
    return lines


class ProgressPrinter:
    """Progress on a TTY (one updating line), plain log lines every few seconds otherwise.

    Called with the engine's :class:`~batch.apply.engine.Progress` records. The final line (every row done)
    is written once, however often the engine reports it.
    """

    def __init__(self, stream: TextIO | None = None, *, every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.t0 = time.monotonic()
        self.last = 0.0
        self.width = 0  # length of the progress line last written on the TTY
        self.final_written: tuple[int, int] | None = None  # (done, total) of the final line written

    def __call__(self, p: ProgressEvent) -> None:
        if isinstance(p, ProgressNote):  # a phase with its own line (group processing after the writes)
            self.stream.write(("\r" if self.tty and self.width else "") + p.text + "\n")
            self.width = 0
            self.stream.flush()
            return
        done, total, wait = p.done, p.total, p.throttle_wait_s
        now = time.monotonic()
        final = bool(total) and done >= total
        if final and self.final_written == (done, total):
            return  # the engine reports the end more than once: one line
        if self.final_written and not final:  # the next run on the same printer (demo: wave, then add-ons)
            self.t0, self.last = now, 0.0
        if not final and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        self.final_written = (done, total) if final else None
        el = now - self.t0
        rate = done / el if el >= 0.2 else 0.0  # no rate (nor ETA) from the first instants: it would be noise
        eta = (total - done) / rate if rate > 0 else 0.0
        speed = f"  {rate:,.0f} rows/s  ETA {eta:,.0f} s" if rate > 0 else ""
        text = f"{done}/{total} rows{speed}  waiting on throttling {wait:.1f} s"
        if self.tty:  # rewrite the line in place; pad over a longer previous text
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
