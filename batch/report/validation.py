"""validation.xlsx: what a run would do, before anything changes.

``Rows``: every input row in input order with all its original columns (typed as in an xlsx input), then
``Row`` (the sheet's row number), ``Status`` (error / over
capacity / ready / unchanged, coloured), ``Finding code``, ``Message``, ``Fix``. A row that gave several
requests (several licenses in one cell, several add-on columns) is one line: the worst status wins (error >
over capacity > ready > unchanged) and the codes, messages and fixes are joined with "; " (each distinct text
once). A workbook with several input sheets gets one such sheet per input sheet ("Licenses rows",
"Add-ons rows").

``Capacity``: per pool (a SKU's seats, an add-on's units) what was purchased, what is used (consumed seats;
for add-ons what the environments the sheet leaves alone hold), the reserve, what is available, needed and
freed, the net change and how much it is short by (red when short).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xlsxwriter.format import Format

from ..models import CheckedAddon, CheckedRequest, Kind, RequestStatus, Sheet, Validation
from . import _xlsx
from .results import output_headers, sheet_titles

VALIDATION_HEADERS: tuple[str, ...] = ("Row", "Status", "Finding code", "Message", "Fix")
CAPACITY_HEADERS: tuple[str, ...] = (
    "Kind",
    "Name",
    "SKU part number / add-on",
    "skuId",
    "enabled / purchased",
    "consumed / allocated elsewhere",
    "reserve",
    "available",
    "needed",
    "freed",
    "net",
    "short by",
)

#: Worse statuses have higher ranks.
STATUS_RANK: dict[RequestStatus, int] = {
    RequestStatus.UNCHANGED: 0,
    RequestStatus.READY: 1,
    RequestStatus.OVER_CAPACITY: 2,
    RequestStatus.ERROR: 3,
}
_NO_REQUEST = "No license request was read from this row."


def _join(parts: Sequence[str]) -> str:
    seen: dict[str, None] = {}
    for p in parts:
        if p:
            seen.setdefault(p, None)
    return "; ".join(seen)


def combine(
    requests: Sequence[CheckedRequest | CheckedAddon], part_numbers: dict[str, str] | None = None
) -> tuple[str, str, str, str]:
    """(status, codes, messages, fixes) for one input row from the requests it gave."""
    if not requests:
        return "", "", _NO_REQUEST, ""
    worst = max((c.status for c in requests), key=STATUS_RANK.__getitem__)
    codes: list[str] = []
    messages: list[str] = []
    fixes: list[str] = []
    for c in requests:
        for f in c.findings:
            codes.append(f.code)
            messages.append(f.message)
            fixes.append(f.fix)
        if not c.findings and c.status is RequestStatus.OVER_CAPACITY and isinstance(c, CheckedRequest):
            part = (part_numbers or {}).get(c.sku_id or "", c.request.sku)
            messages.append(f"Not enough free seats of {part}: see the Capacity sheet.")
            fixes.append("Buy seats, free some, or run with --on-shortfall partial.")
    return worst.value, _join(codes), _join(messages), _join(fixes)


def write_validation(validation: Validation, run_dir: Path) -> Path:
    """Write ``run_dir/validation.xlsx`` and return its path. Raises OSError when it cannot be written."""
    run_dir = Path(run_dir)
    path = run_dir / "validation.xlsx"
    by_row: dict[int, list[CheckedRequest | CheckedAddon]] = {}
    for c in validation.requests:
        by_row.setdefault(c.request.row, []).append(c)
    parts = {s.sku_id: s.part_number for s in validation.snapshot.skus.values()}
    sheets = validation.sheets
    with _xlsx.atomic_path(path) as tmp:
        wb = _xlsx.new_workbook(tmp)
        try:
            fmt = _xlsx.Formats(wb)
            tabs = [_xlsx.add_sheet(wb, t) for t in sheet_titles(sheets, "Rows")]
            cap = _xlsx.add_sheet(wb, "Capacity")
            for ws, sheet in zip(tabs, sheets, strict=True):
                _write_rows(ws, fmt, sheet, by_row, parts)
            _write_capacity(cap, fmt, validation)
            tabs[0].activate()
        finally:
            _xlsx.close_workbook(wb, path)
    return path


def _write_rows(
    ws: _xlsx.StreamSheet,
    fmt: _xlsx.Formats,
    sheet: Sheet,
    by_row: dict[int, list[CheckedRequest | CheckedAddon]],
    parts: dict[str, str],
) -> None:
    n_in = len(sheet.headers)
    headers = output_headers(sheet.headers, VALIDATION_HEADERS)
    ncols = len(headers)
    status_col = n_in + 1

    def text_of(i: int) -> list[str]:
        a = sheet.rows[i]
        cells = a.cells if len(a.cells) == n_in else (tuple(a.cells) + ("",) * n_in)[:n_in]
        return [*cells, str(a.number), *combine(by_row.get(a.index, ()), parts)]

    n_rows = len(sheet.rows)
    sample_idx = _xlsx.sample_rows(range(n_rows), 400)
    widths = _xlsx.column_widths(headers, [text_of(i) for i in sample_idx])
    widths[status_col] = max(widths[status_col], 14.0)
    for i in range(status_col + 1, ncols):
        widths[i] = min(widths[i], 80.0)
    _xlsx.write_header(ws, headers, fmt.header)
    _xlsx.set_widths(ws, widths)
    formats: dict[tuple[str, tuple[tuple[int, str], ...]], list[Format | None]] = {}

    def formats_for(status: str, dated: tuple[tuple[int, str], ...]) -> list[Format | None]:
        got = formats.get((status, dated))
        if got is None:
            got = [None] * ncols
            if status:
                got[status_col] = fmt.status[status]
            for col, kind in dated:
                got[col] = fmt.dates[kind]
            formats[(status, dated)] = got
        return got

    for i in range(n_rows):
        # Text as string cells (never run as formulas: no prefix needed), the input's numbers and dates typed.
        a = sheet.rows[i]
        out: list[_xlsx.CellValue] = list(text_of(i))
        out[n_in] = a.number
        dated: list[tuple[int, str]] = []
        if a.values is not None:
            for k, v in enumerate(a.values[:n_in]):
                if v is not None:
                    out[k], kind = _xlsx.excel_value(v)
                    if kind:
                        dated.append((k, kind))
        ws.write_text_row(i + 1, out, formats_for(str(out[status_col]), tuple(dated)))
    _xlsx.finish_table(ws, header_row=0, last_row=n_rows, ncols=ncols)


def _write_capacity(ws: _xlsx.StreamSheet, fmt: _xlsx.Formats, validation: Validation) -> None:
    _xlsx.write_header(ws, CAPACITY_HEADERS, fmt.header)
    widths = [10.0, max([18.0, *(len(c.name) + 2.0 for c in validation.capacity)]),
              max([18.0, *(len(c.part_number) + 2.0 for c in validation.capacity)]), 38.0] + [13.0] * 8
    _xlsx.set_widths(ws, widths)
    row = 0
    for c in validation.capacity:
        row += 1
        ws.write_string(row, 0, str(c.kind))
        ws.write_string(row, 1, c.name)
        ws.write_string(row, 2, c.part_number)
        ws.write_string(row, 3, c.sku_id if c.kind is Kind.LICENSES else "")
        for col, v in enumerate((c.enabled, c.consumed, c.reserve, c.available, c.needed, c.freed, c.net), 4):
            ws.write_number(row, col, v, fmt.number)
        ws.write_number(row, 11, c.short, fmt.status_number["error" if c.short else "ready"])
    _xlsx.finish_table(ws, header_row=0, last_row=row, ncols=len(CAPACITY_HEADERS))
    if validation.wave_refused:
        short = ", ".join(c.part_number for c in validation.capacity if c.short)
        ws.write_string(
            row + 2,
            0,
            f"Nothing will be applied: {short} short and the shortfall policy is 'stop'. "
            "Free or buy seats (or add-on units), or use --on-shortfall partial.",
            fmt.bold,
        )
