"""Text rendering and progress for the CLI (private: the library returns records, the CLI prints these)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from .jobs import PlanRun, ValidationRun, plan_summary, run_summary, validation_summary
from .models import Kind, Outcome, RunResult
from .report.capacity import CapacityReport


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


def _findings_by_code(res: ValidationRun | PlanRun, limit: int = 5) -> list[str]:
    counts: Counter[str] = Counter()
    first: dict[str, list[int]] = {}
    message: dict[str, str] = {}
    for c in res.validation.requests:
        for f in c.findings:
            counts[f.code] += 1
            rows = first.setdefault(f.code, [])
            if len(rows) < limit:
                rows.append(c.request.row_number)
            message.setdefault(f.code, f"{f.severity}: {f.message}")
    lines = []
    for code, n in counts.most_common():
        where = ", ".join(str(r) for r in first[code]) + (", ..." if n > limit else "")
        lines.append(f"  {code} x{n} (rows {where})  e.g. {message[code]}")
    return lines


def render_validation(res: ValidationRun | PlanRun) -> list[str]:
    s = validation_summary(res)
    v = res.validation
    lines = [
        f"{v.sheet.path.name}: {s['rows']} rows - {s['ok']} ok, {s['unchanged']} unchanged, "
        f"{s['warnings']} with warnings, {s['errors']} with errors, {s['over_capacity']} over capacity",
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
    lines.append(f"Plan {res.run_id}: {n_ops} operation{'' if n_ops == 1 else 's'}")
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


def changed_anything(result: RunResult) -> bool:
    """Did the run change the tenant? (A skipped row with a request id was partly applied.)"""
    return any(r.status is Outcome.APPLIED or (r.status is Outcome.SKIPPED and r.request_id) for r in result.rows)


def render_run(result: RunResult) -> list[str]:
    s = run_summary(result)
    dur = (result.finished - result.started).total_seconds()
    lines = [
        f"Run {result.run_id}: {s['rows']} rows - {s['applied']} applied, {s['unchanged']} unchanged, "
        f"{s['skipped']} skipped, {s['failed']} failed, {s['not_run']} not run "
        f"({dur:.1f} s, {result.requests_sent} requests, {result.throttled} throttled, "
        f"{result.throttle_wait_s:.1f} s waiting on throttling)",
    ]
    failed = [r for r in result.rows if r.status is Outcome.FAILED]
    if failed:
        lines.append("Failed (the tenant refused):")
        lines.extend(f"  row {r.row_number}: {r.action}: {r.code}: {r.message}" for r in failed[:10])
        if len(failed) > 10:
            lines.append(f"  ... and {len(failed) - 10} more (see the Errors sheet)")
    skipped = [r for r in result.rows if r.status is Outcome.SKIPPED]
    if skipped:
        by: Counter[str] = Counter(r.code for r in skipped)
        lines.append("Skipped (not sent; fix the sheet and run those rows again):")
        for code, n in by.most_common(12):
            rows = [str(r.row_number) for r in skipped if r.code == code]
            more = ", ..." if len(rows) > 6 else ""
            lines.append(f"  {code} x{n} (rows {', '.join(rows[:6])}{more})")
    lines.append(f"Results: {s['report']}")
    if s["rows"] and not s["not_run"] and not changed_anything(result):
        lines.append("Nothing needed changing: the tenant already matches every valid row.")
    if result.interrupted:
        lines.append(f"Interrupted. Continue with: license-batch resume {result.run_id}")
    return lines


class ProgressPrinter:
    """Progress on a TTY (one updating line), plain log lines every few seconds otherwise.

    Called with the engine's progress records: objects with ``done``, ``total``, ``throttle_wait_s``
    (attributes or mapping keys).
    """

    def __init__(self, stream: TextIO | None = None, *, every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.t0 = time.monotonic()
        self.last = 0.0
        self.width = 0  # length of the progress line last written on the TTY

    def __call__(self, p: Any) -> None:
        get = (lambda k: p.get(k, 0)) if isinstance(p, dict) else (lambda k: getattr(p, k, 0))
        if get("text"):  # a phase with its own line (group processing after the writes)
            self.stream.write(("\r" if self.tty and self.width else "") + str(get("text")) + "\n")
            self.width = 0
            self.stream.flush()
            return
        done, total = int(get("done") or 0), int(get("total") or 0)
        wait = float(get("throttle_wait_s") or 0.0)
        now = time.monotonic()
        final = total and done >= total
        if not final and now - self.last < (0.2 if self.tty else self.every):
            return
        self.last = now
        el = max(now - self.t0, 1e-9)
        rate = done / el
        eta = (total - done) / rate if rate > 0 else 0.0
        text = f"{done}/{total} rows  {rate:,.0f} rows/s  ETA {eta:,.0f} s  waiting on throttling {wait:.1f} s"
        if self.tty:  # rewrite the line in place; pad over a longer previous text
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if final else ""))
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

