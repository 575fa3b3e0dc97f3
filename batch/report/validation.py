"""validation.xlsx: what a run would do, before anything changes.

``Rows``: every input row in input order with all its original columns, then ``Status`` (error / over
capacity / ready / unchanged, coloured), ``Finding code``, ``Message``, ``Fix``. A row that gave several
requests (several licenses in one cell) is one line: the worst status wins (error > over capacity > ready >
unchanged) and the codes, messages and fixes are joined with "; " (each distinct text once).

``Capacity``: per SKU the seats enabled, consumed, kept in reserve, available, needed, freed, the net change
and how many seats it is short by (red when short).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xlsxwriter.format import Format

from ..models import CheckedRequest, RequestStatus, Validation
from . import _xlsx
from ._text import neutralise, neutralise_all
from .results import output_headers

VALIDATION_HEADERS: tuple[str, ...] = ("Status", "Finding code", "Message", "Fix")
CAPACITY_HEADERS: tuple[str, ...] = (
    "SKU part number",
    "skuId",
    "enabled",
    "consumed",
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
    requests: Sequence[CheckedRequest], part_numbers: dict[str, str] | None = None
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
        if not c.findings and c.status is RequestStatus.OVER_CAPACITY:
            part = (part_numbers or {}).get(c.sku_id or "", c.request.sku)
            messages.append(f"Not enough free seats of {part}: see the Capacity sheet.")
            fixes.append("Buy seats, free some, or run with --on-shortfall partial.")
    return worst.value, _join(codes), _join(messages), _join(fixes)


def write_validation(validation: Validation, run_dir: Path) -> Path:
    """Write ``run_dir/validation.xlsx`` and return its path. Raises ``OSError`` when it cannot be written."""
    run_dir = Path(run_dir)
    path = run_dir / "validation.xlsx"
    sheet = validation.sheet
    n_in = len(sheet.headers)
    headers = output_headers(sheet.headers, VALIDATION_HEADERS)
    ncols = len(headers)

    by_row: dict[int, list[CheckedRequest]] = {}
    for c in validation.requests:
        by_row.setdefault(c.request.row, []).append(c)
    parts = {s.sku_id: s.part_number for s in validation.snapshot.skus.values()}

    def cells_of(i: int) -> list[str]:
        a = sheet.rows[i]
        cells = a.cells if len(a.cells) == n_in else (tuple(a.cells) + ("",) * n_in)[:n_in]
        return neutralise_all((*cells, *combine(by_row.get(a.index, ()), parts)))

    with _xlsx.atomic_path(path) as tmp:
        wb = _xlsx.new_workbook(tmp)
        try:
            fmt = _xlsx.Formats(wb)
            ws = _xlsx.add_sheet(wb, "Rows")
            cap = _xlsx.add_sheet(wb, "Capacity")

            n_rows = len(sheet.rows)
            sample_idx = _xlsx.sample_rows(range(n_rows), 400)
            widths = _xlsx.column_widths(headers, [cells_of(i) for i in sample_idx])
            widths[n_in] = max(widths[n_in], 14.0)
            for i in range(n_in + 1, ncols):
                widths[i] = min(widths[i], 80.0)
            _xlsx.write_header(ws, headers, fmt.header)
            _xlsx.set_widths(ws, widths)
            plain: list[Format | None] = [None] * ncols
            formats: dict[str, list[Format | None]] = {"": plain}
            for s in RequestStatus:
                f = list(plain)
                f[n_in] = fmt.status[s.value]
                formats[s.value] = f
            for i in range(n_rows):
                out = cells_of(i)
                ws.write_text_row(i + 1, out, formats.get(out[n_in], plain))
            _xlsx.finish_table(ws, header_row=0, last_row=n_rows, ncols=ncols)

            _write_capacity(cap, fmt, validation)
            ws.activate()
        finally:
            _xlsx.close_workbook(wb, path)
    return path


def _write_capacity(ws: _xlsx.StreamSheet, fmt: _xlsx.Formats, validation: Validation) -> None:
    _xlsx.write_header(ws, CAPACITY_HEADERS, fmt.header)
    widths = [max([18.0, *(len(c.part_number) + 2.0 for c in validation.capacity)]), 38.0] + [11.0] * 8
    _xlsx.set_widths(ws, widths)
    row = 0
    for c in validation.capacity:
        row += 1
        ws.write_string(row, 0, neutralise(c.part_number))
        ws.write_string(row, 1, neutralise(c.sku_id))
        for col, v in enumerate((c.enabled, c.consumed, c.reserve, c.available, c.needed, c.freed, c.net), 2):
            ws.write_number(row, col, v, fmt.number)
        ws.write_number(row, 9, c.short, fmt.status_number["error" if c.short else "ready"])
    _xlsx.finish_table(ws, header_row=0, last_row=row, ncols=len(CAPACITY_HEADERS))
    if validation.wave_refused:
        short = ", ".join(c.part_number for c in validation.capacity if c.short)
        ws.write_string(
            row + 2,
            0,
            neutralise(
                f"Nothing will be applied: {short} short of seats and the shortfall policy is 'stop'. "
                "Free or buy seats, or use --on-shortfall partial."
            ),
            fmt.bold,
        )
