"""The result files of a run: results.xlsx, results.csv and run.json.

results.xlsx
    ``Results``: every input row in input order with all its original columns (an xlsx input's numbers, dates
    and booleans written back typed, from ``InputRow.values``), then ``Row`` (the sheet's row number, as every
    message names it), ``Status`` (applied / unchanged / skipped / failed / not run, coloured), ``Action``,
    ``Error code``, ``Message``, ``Fix``, ``Request id``, ``Time`` (an Excel date-time in UTC), and the target's
    state before and after (``Licenses before`` /
    ``Licenses after`` for a user's licenses, ``Allocation before`` / ``Allocation after`` for add-ons).
    ``Summary``: run facts, rows per status; per SKU (and per add-on) its product name, part number, purchased,
    used before and after: the pools the run changed first, charted against what is purchased, then the rest.
    ``Errors``: the rows that need attention (failed, skipped, not run), same columns as ``Results``.
    A workbook with several input sheets (licenses and add-ons) gets a results and an errors sheet per input
    sheet ("Licenses results", "Add-ons errors", ...).
    Header rows are frozen and filtered. If an input column already carries one of the outcome names
    (say the sheet is an earlier results file), the new outcome column is called ``<name> (result)``.

results.csv
    The ``Results`` columns, UTF-8 with a BOM (Excel then opens it as UTF-8), every field quoted. Further input
    sheets of a workbook get ``results-2.csv``, ``results-3.csv``, ... (named in run.json's ``files``).

Text that a spreadsheet would run as a formula cannot run from either file: in the xlsx it is a string cell
(inert; written exactly as it was, no apostrophe), in the CSV it goes through :func:`neutralise` (``'`` prefix).
The CSV's Row and Time are text (Time in ISO 8601 UTC).

run.json (``schema`` 1; keys are stable, new keys may be added, none renamed)::

    schema          1
    tool            "license-batch"
    version         batch.__version__
    run_id          RunResult.run_id
    tenant          RunResult.tenant
    input           {"path", "sha256", "format", "sheet", "rows"}: the input sheet
    command_line    the run's first command line (apply's, from the journal; else meta["argv"]) with secrets
                    replaced by "***" (after --token, --client-secret,
                    --password and kin, "Bearer ...", anything JWT-shaped); [] when not given
    resumes         [{"at", "command_line"}]: every resume of the run, oldest first (scrubbed the same way)
    started         ISO 8601 UTC, milliseconds, "Z"
    finished        ditto
    duration_s      finished - started, seconds
    interrupted     bool
    rows            number of rows reported
    counts          {"applied", "unchanged", "skipped", "failed", "not_run"}: rows per status
    needs_attention failed + skipped + not run
    requests        {"sent": int}
    throttling      {"throttled_responses": int, "wait_s": float}
    seats           {"before": {part number: consumed}, "after": {...}}
    addons          {"before": {currencyType: allocated}, "after": {...}} (only when add-ons were planned)
    files           {"results_xlsx": "results.xlsx", "results_csv": "results.csv", "results_csv_more": [...]}
    extra           every other key of ``meta``, scrubbed of secrets the same way

:func:`run_summary` is the one flat summary of a run (the CLI's ``--json`` for apply, resume and demo):
``run_id, tenant, rows, applied, unchanged, skipped, failed, not_run, needs_attention, requests, throttled,
throttle_wait_s, duration_s, interrupted, already_finished, report``; run.json's counts come from it.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xlsxwriter.format import Format
from xlsxwriter.utility import quote_sheetname, xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook

from ..kinds import kind_of
from ..kinds.addons.names import addon_label
from ..models import InputRow, Kind, Outcome, RowResult, RunResult, Sheet
from . import _xlsx
from ._text import iso_utc, iso_utc_precise, neutralise_all, scrub_argv, scrub_value

RESULT_HEADERS: tuple[str, ...] = (
    "Row",
    "Status",
    "Action",
    "Error code",
    "Message",
    "Fix",
    "Request id",
    "Time",
    "Licenses before",
    "Licenses after",
)


def result_headers(kind: Kind) -> tuple[str, ...]:
    """The outcome columns added after an input sheet's own, for a sheet of ``kind``."""
    label = kind_of(kind).state_label
    return (*RESULT_HEADERS[:-2], f"{label} before", f"{label} after")
#: Rows that need attention, i.e. go on the Errors sheet.
ATTENTION: frozenset[Outcome] = frozenset({Outcome.FAILED, Outcome.SKIPPED, Outcome.NOT_RUN})

_NO_OUTCOME = "No outcome was recorded for this row."

_WIDTH_CAPS = {"Message": 80, "Fix": 70, "Licenses before": 50, "Licenses after": 50, "Action": 50,
               "Allocation before": 50, "Allocation after": 50}


@dataclass(frozen=True, slots=True)
class ResultPaths:
    xlsx: Path
    csv: Path
    json: Path
    more_csv: tuple[Path, ...] = ()  # results-2.csv, ... for a workbook's further input sheets


def _count_key(o: Outcome) -> str:
    return o.value.replace(" ", "_")


#: The keys of :func:`run_summary` that count rows per outcome (also run.json's ``counts``).
COUNT_KEYS: tuple[str, ...] = tuple(_count_key(o) for o in Outcome)


def run_summary(result: RunResult, counts: Mapping[Outcome, int] | None = None) -> dict[str, Any]:
    """The one machine-readable summary of a run: what ``--json`` prints for apply/resume/demo, and what
    run.json's counts come from. ``counts`` overrides the RunResult's own (the workbook's, when its rows did
    not line up with the sheet)."""
    c = result.counts() if counts is None else counts
    per = {_count_key(o): c.get(o, 0) for o in Outcome}
    return {
        "run_id": result.run_id,
        "tenant": result.tenant,
        "rows": sum(per.values()) if counts is not None else len(result.rows),
        **per,
        "needs_attention": sum(c.get(o, 0) for o in ATTENTION),
        "requests": result.requests_sent,
        "throttled": result.throttled,
        "throttle_wait_s": round(result.throttle_wait_s, 3),
        "duration_s": _duration(result),
        "interrupted": result.interrupted,
        "already_finished": result.already_finished,
        "report": str((result.report_dir or Path()) / "results.xlsx"),
    }


def _duration(result: RunResult) -> float:
    try:
        return round(max(0.0, (result.finished - result.started).total_seconds()), 3)
    except TypeError:  # one naive, one aware: treat both as UTC
        s, f = result.started.replace(tzinfo=None), result.finished.replace(tzinfo=None)
        return round(max(0.0, (f - s).total_seconds()), 3)


def sheet_titles(sheets: Sequence[Sheet], suffix: str) -> list[str]:
    """Worksheet names for the input sheets: ``suffix`` alone for one sheet ("Rows", "Results"), else
    "<kind> <suffix>" ("Add-ons results"), numbered when two sheets share a kind; at most 31 characters."""
    if len(sheets) == 1:
        return [suffix]
    out: list[str] = []
    for sh in sheets:
        base = f"{kind_of(sh.kind).title} {suffix.lower()}"
        name, n = base, 1
        while name in out:
            n += 1
            name = f"{base} {n}"
        out.append(name[:31])
    return out


def output_headers(input_headers: Sequence[str], added: Sequence[str]) -> list[str]:
    """Input headers, then ``added``; an added name that an input column already uses gets ``(result)``."""
    taken = {h.strip().lower() for h in input_headers}
    out = list(input_headers)
    for h in added:
        name = h
        while name.strip().lower() in taken:
            name = f"{name} (result)"
        taken.add(name.lower())
        out.append(name)
    return out


def _pairs(result: RunResult, sheet: Sheet | None = None) -> Iterator[tuple[InputRow | None, RowResult]]:
    """(input row, outcome) for every row of ``sheet`` (default: the first), in input order. Tolerates a
    RunResult whose rows do not line up one-to-one with the sheet: missing outcomes become 'not run', stray
    outcomes (of no input sheet) come last, with the first sheet (and no input row)."""
    sheet = sheet or result.sheet
    inputs: list[InputRow] = sheet.rows
    rows = result.rows
    if len(result.sheets) > 1:
        mine = {a.index for a in inputs}
        known = {a.index for sh in result.sheets for a in sh.rows}
        first = sheet is result.sheet
        rows = [r for r in rows if r.row in mine or (first and r.row not in known)]
    if len(inputs) == len(rows) and all(a.index == b.row for a, b in zip(inputs, rows, strict=True)):
        yield from zip(inputs, rows, strict=True)
        return
    by_index = {r.row: r for r in rows}
    seen: set[int] = set()
    for a in inputs:
        r = by_index.get(a.index)
        if r is None:
            r = RowResult(row=a.index, row_number=a.number, status=Outcome.NOT_RUN, message=_NO_OUTCOME)
        else:
            seen.add(a.index)
        yield a, r
    for r in rows:
        if r.row not in seen:
            yield None, r


def _input_cells(a: InputRow | None, n_in: int) -> tuple[str, ...]:
    cells = a.cells if a is not None else ()
    return cells if len(cells) == n_in else (tuple(cells) + ("",) * n_in)[:n_in]


def _row_cells(a: InputRow | None, n_in: int, r: RowResult) -> list[str]:
    """The row as CSV text: input cells, then the outcome; every cell neutralised (a CSV has no cell types)."""
    return neutralise_all(
        (
            *_input_cells(a, n_in),
            str(r.row_number),
            r.status.value,
            r.action,
            r.code,
            r.message,
            r.fix,
            r.request_id,
            iso_utc(r.time),
            r.before,
            r.after,
        )
    )


class _XlsxRows:
    """The row as xlsx cells: text as string cells (a string cell is never run as a formula, so nothing is
    prefixed), the input's numbers and dates as they were typed, the row number as a number and Time as an
    Excel date-time. Formats per row come from a small cache (status x the date kinds of typed cells)."""

    def __init__(self, fmt: _xlsx.Formats, ncols: int, status_col: int, time_col: int) -> None:
        self.fmt, self.ncols, self.status_col, self.time_col = fmt, ncols, status_col, time_col
        self._formats: dict[tuple[Outcome, tuple[tuple[int, str], ...]], list[Format | None]] = {}

    def formats(self, status: Outcome, dated: tuple[tuple[int, str], ...]) -> list[Format | None]:
        key = (status, dated)
        got = self._formats.get(key)
        if got is None:
            got = [None] * self.ncols
            got[self.status_col] = self.fmt.status[status.value]
            got[self.time_col] = self.fmt.dates["datetime"]
            for col, kind in dated:
                got[col] = self.fmt.dates[kind]
            self._formats[key] = got
        return got

    def cells(self, a: InputRow | None, n_in: int, r: RowResult) -> tuple[list[_xlsx.CellValue], list[Format | None]]:
        out: list[_xlsx.CellValue] = list(_input_cells(a, n_in))
        dated: list[tuple[int, str]] = []
        if a is not None and a.values is not None:
            for i, v in enumerate(a.values[:n_in]):
                if v is not None:
                    out[i], kind = _xlsx.excel_value(v)
                    if kind:
                        dated.append((i, kind))
        when: _xlsx.CellValue = _xlsx.excel_value(_utc_naive(r.time))[0] if r.time is not None else ""
        out += [r.row_number, r.status.value, r.action, r.code, r.message, r.fix, r.request_id, when, r.before,
                r.after]
        return out, self.formats(r.status, tuple(dated))


def _utc_naive(when: datetime) -> datetime:
    return when if when.tzinfo is None else when.astimezone(UTC).replace(tzinfo=None)


def write_results(result: RunResult, run_dir: Path, *, meta: Mapping[str, Any] | None = None) -> ResultPaths:
    """Write results.xlsx, results.csv and run.json into ``run_dir`` and return their paths.

    ``meta`` carries what the library cannot know: ``argv`` (the command line; scrubbed of secrets here
    too) and anything else the caller wants recorded under run.json's ``extra``.
    Raises ``OSError`` when a file cannot be written (e.g. it is open in Excel on Windows).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    sheets = result.sheets
    more = tuple(run_dir / f"results-{k}.csv" for k in range(2, len(sheets) + 1))
    paths = ResultPaths(run_dir / "results.xlsx", run_dir / "results.csv", run_dir / "run.json", more)
    csvs = [paths.csv, *more]
    with contextlib.ExitStack() as stack:
        tmp_x = stack.enter_context(_xlsx.atomic_path(paths.xlsx))
        tmp_csvs = [stack.enter_context(_xlsx.atomic_path(c)) for c in csvs]
        wb = _xlsx.new_workbook(tmp_x)
        try:
            counts = _write_workbook(wb, result, tmp_csvs)
        finally:
            _xlsx.close_workbook(wb, paths.xlsx)

    run_info = _run_json(result, meta or {}, counts, paths)
    with _xlsx.atomic_path(paths.json) as tmp_j:
        tmp_j.write_text(json.dumps(run_info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def _write_workbook(wb: Workbook, result: RunResult, csv_paths: list[Path]) -> dict[Outcome, int]:
    fmt = _xlsx.Formats(wb)
    sheets = result.sheets
    tabs = [_xlsx.add_sheet(wb, t) for t in sheet_titles(sheets, "Results")]
    ws_sum = _xlsx.add_sheet(wb, "Summary")
    errs = [_xlsx.add_sheet(wb, t) for t in sheet_titles(sheets, "Errors")]
    counts = {o: 0 for o in Outcome}
    n = 0
    for sheet, ws_rows, ws_err, csv_path in zip(sheets, tabs, errs, csv_paths, strict=True):
        n += _write_sheet(result, sheet, ws_rows, ws_err, csv_path, fmt, counts)
    _write_summary(wb, ws_sum, fmt, result, counts, n)
    tabs[0].activate()
    return counts


def _write_sheet(
    result: RunResult,
    sheet: Sheet,
    ws_rows: _xlsx.StreamSheet,
    ws_err: _xlsx.StreamSheet,
    csv_path: Path,
    fmt: _xlsx.Formats,
    counts: dict[Outcome, int],
) -> int:
    added = result_headers(sheet.kind)
    headers = output_headers(sheet.headers, added)
    n_in = len(sheet.headers)
    ncols = len(headers)
    status_col = n_in + 1
    xl = _XlsxRows(fmt, ncols, status_col, n_in + RESULT_HEADERS.index("Time"))

    # Widths from a sample, before any data row is written.
    sample = [_row_cells(a, n_in, r) for a, r in _xlsx.sample_rows(list(_pairs(result, sheet)), 400)]
    widths = _xlsx.column_widths(headers, sample)
    for j, name in enumerate(added):
        widths[n_in + j] = min(widths[n_in + j], float(_WIDTH_CAPS.get(name, 40)))
    widths[status_col] = max(widths[status_col], 12.0)
    widths[n_in + RESULT_HEADERS.index("Time")] = 20.0

    # Pass 1: Results sheet and CSV, in input order.
    for ws in (ws_rows, ws_err):
        _xlsx.write_header(ws, headers, fmt.header)
        _xlsx.set_widths(ws, widths)
    n = 0
    with open(csv_path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(neutralise_all(headers))
        write_row = ws_rows.write_text_row
        for a, r in _pairs(result, sheet):
            n += 1
            counts[r.status] += 1
            w.writerow(_row_cells(a, n_in, r))
            write_row(n, *xl.cells(a, n_in, r))
    _xlsx.finish_table(ws_rows, header_row=0, last_row=n, ncols=ncols)

    # Pass 2: Errors sheet (constant_memory: each sheet is written top to bottom in one go).
    e = 0
    write_err = ws_err.write_text_row
    for a, r in _pairs(result, sheet):
        if r.status in ATTENTION:
            e += 1
            write_err(e, *xl.cells(a, n_in, r))
    _xlsx.finish_table(ws_err, header_row=0, last_row=e, ncols=ncols)
    return n


def _write_summary(
    wb: Workbook, ws: _xlsx.StreamSheet, fmt: _xlsx.Formats, result: RunResult, counts: dict[Outcome, int], n: int
) -> None:
    ws.set_column(0, 0, 32)
    ws.set_column(1, 3, 16)
    sheet = result.sheet
    ws.write_string(0, 0, "license-batch run summary", fmt.title)
    facts: list[tuple[str, str | float | int]] = [
        ("Run id", result.run_id),
        ("Tenant", result.tenant),
        ("Input file", str(sheet.path)),
        ("Input sha256", sheet.sha256),
        ("Started (UTC)", iso_utc(result.started)),
        ("Finished (UTC)", iso_utc(result.finished)),
        ("Duration (s)", _duration(result)),
        ("Requests sent", result.requests_sent),
        ("Throttled responses", result.throttled),
        ("Time waiting on throttling (s)", round(result.throttle_wait_s, 1)),
        ("Interrupted", "yes" if result.interrupted else "no"),
    ]
    if n >= _xlsx.EXCEL_MAX_ROWS:
        # Excel stops at 1,048,576 rows and xlsxwriter drops what lies beyond; the CSV has every row.
        facts.append(
            (
                "Note",
                f"Only the first {_xlsx.EXCEL_MAX_ROWS - 1:,} of {n:,} rows fit in this workbook; "
                "results.csv has them all.",
            )
        )
    row = 2
    for label, value in facts:
        ws.write_string(row, 0, label, fmt.bold)
        if isinstance(value, str):
            ws.write_string(row, 1, value)
        else:
            ws.write_number(row, 1, value, fmt.decimal if isinstance(value, float) else fmt.number)
        row += 1

    row += 1
    ws.write_string(row, 0, "Status", fmt.header)
    ws.write_string(row, 1, "Rows", fmt.header)
    row += 1
    for o in Outcome:
        ws.write_string(row, 0, o.value, fmt.status[o.value])
        ws.write_number(row, 1, counts.get(o, 0), fmt.status_number[o.value])
        row += 1
    ws.write_string(row, 0, "Total", fmt.bold)
    ws.write_number(row, 1, n, fmt.number)
    row += 2

    row = _write_pools(wb, ws, fmt, result, row, Kind.LICENSES)
    if result.units_before or result.units_after:
        _write_pools(wb, ws, fmt, result, row + 1, Kind.ADDONS)


#: The pool tables of the Summary sheet: product (or add-on) name, part number (currencyType), purchased,
#: used before and after, change.
POOL_HEADERS = ("Purchased", "Before", "After", "Change")


def _write_pools(
    wb: Workbook, ws: _xlsx.StreamSheet, fmt: _xlsx.Formats, result: RunResult, row: int, kind: Kind
) -> int:
    """One pool table (seats per SKU, or add-on units): the pools the run touched first, charted against
    what is purchased, then the others. Returns the next free row."""
    if kind is Kind.LICENSES:
        before, after, bought = result.seats_before, result.seats_after, result.purchased
        title, id_head, what = "Seats per SKU (consumed)", "SKU", "Seats"
    else:
        before, after, bought = result.units_before, result.units_after, result.units_purchased
        title, id_head, what = "Add-on units allocated", "Add-on", "Units"
    pools = set(before) | set(after)

    def name(p: str) -> str:
        return result.pool_names.get(p) or (addon_label(p) if kind is Kind.ADDONS else p)

    order = sorted(pools, key=lambda p: (name(p).casefold(), p))
    touched = [p for p in order if p in result.touched]
    others = [p for p in order if p not in result.touched]
    ws.write_string(row, 0, title, fmt.title)
    row += 1
    if not pools:
        ws.write_string(row, 0, "No figures were recorded for this run.")
        return row + 2

    def table(head_text: str, parts: list[str], start: int) -> int:
        ws.write_string(start, 0, head_text, fmt.header)
        ws.write_string(start, 1, id_head, fmt.header)
        for k, h in enumerate(POOL_HEADERS, start=2):
            ws.write_string(start, k, h, fmt.header)
        r = start
        for p in parts:
            r += 1
            b, a = before.get(p, 0), after.get(p, 0)
            ws.write_string(r, 0, name(p))
            ws.write_string(r, 1, p)
            if p in bought:
                ws.write_number(r, 2, bought[p], fmt.number)
            ws.write_number(r, 3, b, fmt.number)
            ws.write_number(r, 4, a, fmt.number)
            ws.write_number(r, 5, a - b, fmt.number)
        return r

    if touched:
        head = row
        row = table("Changed by this run", touched, head) + 1
        chart_at = row + 1
        row = chart_at + max(16, 4 + 2 * len(touched))  # room for the chart below the table
        _chart(wb, ws, head, len(touched), f"{what} this run changed: purchased, before and after",
               f"{what}", chart_at)
    else:
        ws.write_string(row, 0, "This run changed none of these.")
        row += 1
    if others:
        row = table("Not changed by this run", others, row + 1) + 1
    return row + 1


def _chart(wb: Workbook, ws: _xlsx.StreamSheet, head: int, count: int, title: str, axis: str, at_row: int) -> None:
    """A bar chart of the Purchased/Before/After columns of the table whose header is on row ``head``,
    labelled with the names in column A."""
    name = quote_sheetname(ws.get_name())
    first, last = head + 1, head + count
    chart = wb.add_chart({"type": "bar"})
    assert chart is not None
    for col, label in ((2, "Purchased"), (3, "Before"), (4, "After")):
        chart.add_series(
            {
                "name": label,
                "categories": f"={name}!{_abs(first, 0)}:{_abs(last, 0)}",
                "values": f"={name}!{_abs(first, col)}:{_abs(last, col)}",
                "data_labels": {"value": count <= 12},
            }
        )
    chart.set_title({"name": title})
    chart.set_x_axis({"name": axis, "min": 0})
    chart.set_y_axis({"reverse": True})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 720, "height": max(300, 100 + 54 * count)})
    ws.insert_chart(at_row, 0, chart)


def _abs(row: int, col: int) -> str:
    return xl_rowcol_to_cell(row, col, row_abs=True, col_abs=True)


def _run_json(
    result: RunResult, meta: Mapping[str, Any], counts: dict[Outcome, int], paths: ResultPaths
) -> dict[str, Any]:
    from .. import __version__

    summary = run_summary(result, counts)
    sheet = result.sheet
    argv = meta.get("argv") or ()
    if isinstance(argv, str):
        argv = argv.split()
    # The run's first command line (apply's, from the journal) stays; every resume is listed after it.
    lines = list(result.command_lines)
    command_line = list(lines[0]["argv"]) if lines else scrub_argv(argv)
    resumes = [{"at": x.get("at"), "command_line": list(x.get("argv", []))} for x in lines[1:]]
    extra = {k: v for k, v in meta.items() if k != "argv"}
    return {
        "schema": 1,
        "tool": "license-batch",
        "version": __version__,
        "run_id": result.run_id,
        "tenant": result.tenant,
        "input": {
            "path": str(sheet.path),
            "sha256": sheet.sha256,
            "format": sheet.format,
            "sheet": sheet.sheet_name,
            "rows": len(sheet.rows),
            **({"sheets": [{"sheet": sh.sheet_name, "kind": str(sh.kind), "rows": len(sh.rows)}
                           for sh in result.sheets]} if len(result.sheets) > 1 else {}),
        },
        "command_line": scrub_argv(command_line),
        "resumes": resumes,
        "started": iso_utc_precise(result.started),
        "finished": iso_utc_precise(result.finished),
        "duration_s": summary["duration_s"],
        "interrupted": result.interrupted,
        "rows": summary["rows"],
        "counts": {k: summary[k] for k in COUNT_KEYS},
        "needs_attention": summary["needs_attention"],
        "requests": {"sent": summary["requests"]},
        "throttling": {"throttled_responses": summary["throttled"], "wait_s": summary["throttle_wait_s"]},
        "seats": {"before": dict(result.seats_before), "after": dict(result.seats_after)},
        **({"addons": {"before": dict(result.units_before), "after": dict(result.units_after)}}
           if result.units_before or result.units_after else {}),
        "files": {"results_xlsx": paths.xlsx.name, "results_csv": paths.csv.name,
                  **({"results_csv_more": [p.name for p in paths.more_csv]} if paths.more_csv else {})},
        "extra": scrub_value(extra),
    }
