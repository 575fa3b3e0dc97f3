"""xlsxwriter plumbing for the report writers: a streaming worksheet with a fast row writer, formats,
column widths, and writing a file under a temporary name so a crash never leaves half a workbook.

Why a fast row writer: xlsxwriter's public ``write_string`` costs about 6 µs per cell on this machine
(argument decoding, a per-cell tuple, escaping regexes, attribute lists), which makes 100,000 rows x 16
columns take ~10 s. ``StreamSheet.write_text_row`` renders a whole row of plain text cells to the same XML
xlsxwriter itself writes in ``constant_memory`` mode (``<c r=".." s=".." t="inlineStr">``), straight into
the sheet's row file. Rows holding anything that needs xlsxwriter's special handling (control characters,
literal ``_xHHHH_`` sequences, leading or trailing whitespace, very long text) go through the public path
instead, cell by cell. ``tests/report/test_fastpath.py`` checks that both paths give byte-identical sheet XML,
and the fast path switches itself off if the xlsxwriter internals it relies on are missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.exceptions import XlsxWriterException
from xlsxwriter.format import Format
from xlsxwriter.utility import _datetime_to_excel_datetime, xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from ..models import TypedCell

#: What a row writer takes per cell: text, or a number (dates are numbers with a date format).
CellValue = str | int | float | bool

def excel_value(v: TypedCell) -> tuple[CellValue, str]:
    """A typed value as Excel stores it, and the number format it needs ("" for none): dates and times are
    serial numbers shown as dates ("date", "datetime", "time", "duration"). Aware datetimes are put in UTC."""
    t = type(v)
    if t is bool or t is int or t is float:
        return v, ""  # type: ignore[return-value]
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        midnight = v.hour == v.minute == v.second == v.microsecond == 0
        return _datetime_to_excel_datetime(v, False, True), "date" if midnight else "datetime"
    if isinstance(v, dt.date):
        return _datetime_to_excel_datetime(v, False, True), "date"
    if isinstance(v, dt.time):
        return _datetime_to_excel_datetime(v, False, True), "time"
    if isinstance(v, dt.timedelta):
        return v.total_seconds() / 86400.0, "duration"
    return str(v), ""

#: Rows in an Excel sheet, header included.
EXCEL_MAX_ROWS = 1_048_576

#: Characters xlsxwriter escapes as ``_xHHHH_`` (the row is joined with NUL, which is counted separately),
#: and literal ``_xHHHH_`` text, which it escapes too: rows with either go the public way.
_SLOW_CHARS = re.compile(r"[\x01-\x08\x0b-\x1f\ufffe\uffff]")
_ESCAPED_LITERAL = re.compile(r"_x[0-9a-fA-F]{4}_")
_FAST_MAX_LEN = 16_000  # longer cells go the slow way (xlsxwriter truncates at 32,767 UTF-16 units)
_XML_SPECIAL = re.compile(r"[&<>]")


def _xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fast_path_supported(ws: Worksheet) -> bool:
    needed = ("_write_single_row", "_check_dimensions", "_write_row", "_xml_end_tag", "previous_row", "fh")
    return bool(getattr(ws, "constant_memory", False)) and all(hasattr(ws, n) for n in needed)


class StreamSheet(Worksheet):
    """A worksheet for ``constant_memory`` workbooks that can write a row of text cells in one call."""

    fast_path: bool | None = None  # None: decide on first use; tests set False to force the public path

    def write_text_row(self, row: int, values: Sequence[CellValue], formats: Sequence[Format | None]) -> None:
        """Write ``values`` into ``row`` (rows strictly increasing): text as string cells (empty strings are
        left as empty cells), numbers as number cells (a date is a number with a date format, see
        :func:`excel_value`), booleans as boolean cells. ``formats[i]`` is the format of column ``i``."""
        if self.fast_path is None:
            self.fast_path = _fast_path_supported(self)
        if not self.fast_path:
            self._write_row_public(row, values, formats)
            return
        # Flush whatever is pending (e.g. a header written through the public API); after this the
        # in-memory table is empty and previous_row == row.
        if row < self.previous_row or (row == self.previous_row and self.table.get(row)):
            raise ValueError(f"rows must be written in increasing order (row {row} after {self.previous_row})")
        self._write_single_row(row)
        texts = [v for v in values if type(v) is str]
        joined = "\x00".join(texts)
        if (
            len(joined) > _FAST_MAX_LEN
            or _SLOW_CHARS.search(joined)
            or ("_x" in joined and _ESCAPED_LITERAL.search(joined))
            or joined.count("\x00") != len(texts) - 1
        ):
            self._write_row_public(row, values, formats)
            return
        letters = self._letters(len(values))
        styles = self._styles(formats)
        escape = _XML_SPECIAL.search(joined) is not None
        rn = str(row + 1)
        parts: list[str] = []
        first = last = -1
        for i, v in enumerate(values):
            if type(v) is str:
                if not v:
                    continue
                if v[0].isspace() or v[-1].isspace():  # needs xml:space="preserve": leave it to xlsxwriter
                    self._write_row_public(row, values, formats)
                    return
                parts.append(
                    f'<c r="{letters[i]}{rn}"{styles[i]} t="inlineStr"><is><t>'
                    f"{_xml_escape(v) if escape else v}</t></is></c>"
                )
            elif type(v) is bool:
                parts.append(f'<c r="{letters[i]}{rn}"{styles[i]} t="b"><v>{1 if v else 0}</v></c>')
            else:
                parts.append(f'<c r="{letters[i]}{rn}"{styles[i]}><v>{v:.16G}</v></c>')
            if first < 0:
                first = i
            last = i
        if first < 0 or self._check_dimensions(row, first) or self._check_dimensions(row, last):
            return
        self._write_row(row, None)
        self.fh.write("".join(parts))
        self._xml_end_tag("row")

    # -- helpers -------------------------------------------------------------------------------------

    _letter_cache: list[str] | None = None
    _style_cache: dict[int, tuple[Sequence[Format | None], list[str]]] | None = None

    def _letters(self, n: int) -> list[str]:
        cache = self._letter_cache
        if cache is None or len(cache) < n:
            cache = [xl_col_to_name(i) for i in range(max(n, 32))]
            self._letter_cache = cache
        return cache

    def _styles(self, formats: Sequence[Format | None]) -> list[str]:
        if self._style_cache is None:
            self._style_cache = {}
        # Keyed by the identity of the formats list (callers reuse one list per status); the list is kept
        # in the cache so its id cannot be reused. Formats must not be mutated after first use.
        hit = self._style_cache.get(id(formats))
        if hit is None:
            hit = (formats, [f' s="{f._get_xf_index()}"' if f is not None else "" for f in formats])
            self._style_cache[id(formats)] = hit
        return hit[1]

    def _write_row_public(self, row: int, values: Sequence[CellValue], formats: Sequence[Format | None]) -> None:
        for col, v in enumerate(values):
            if type(v) is str:
                if v:
                    self.write_string(row, col, v, formats[col])
            elif type(v) is bool:
                self.write_boolean(row, col, v, formats[col])
            else:
                self.write_number(row, col, v, formats[col])


# ------------------------------------------------------------------------------------------ formats

#: (background, font colour) per status, for both workbooks.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    # results
    "applied": ("#C6EFCE", "#006100"),  # green
    "unchanged": ("#E7E6E6", "#3B3838"),  # grey
    "skipped": ("#FFEB9C", "#9C5700"),  # amber
    "failed": ("#FFC7CE", "#9C0006"),  # red
    "not run": ("#D6DCE4", "#203864"),  # blue-grey
    # validation
    "ready": ("#C6EFCE", "#006100"),
    "over capacity": ("#FFEB9C", "#9C5700"),
    "error": ("#FFC7CE", "#9C0006"),
}

HEADER_BG = "#1F4E78"


class Formats:
    """Every format a report workbook uses, created once per workbook."""

    def __init__(self, wb: Workbook) -> None:
        self.header = wb.add_format(
            {"bold": True, "font_color": "#FFFFFF", "bg_color": HEADER_BG, "border": 1, "valign": "top"}
        )
        self.bold = wb.add_format({"bold": True})
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.number = wb.add_format({"num_format": "#,##0"})
        self.decimal = wb.add_format({"num_format": "#,##0.0"})
        #: Number formats of typed cells by :func:`excel_value`'s kind.
        self.dates: dict[str, Format] = {
            "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
            "datetime": wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
            "time": wb.add_format({"num_format": "hh:mm:ss"}),
            "duration": wb.add_format({"num_format": "[h]:mm:ss"}),
        }
        self.status: dict[str, Format] = {
            name: wb.add_format({"bg_color": bg, "font_color": fg}) for name, (bg, fg) in STATUS_COLOURS.items()
        }
        self.status_number: dict[str, Format] = {
            name: wb.add_format({"bg_color": bg, "font_color": fg, "num_format": "#,##0"})
            for name, (bg, fg) in STATUS_COLOURS.items()
        }


def new_workbook(path: Path) -> Workbook:
    """A streaming workbook whose sheets are ``StreamSheet``; strings are never turned into numbers,
    formulas or URLs by xlsxwriter."""
    return xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "tmpdir": str(path.parent),
        },
    )


def add_sheet(wb: Workbook, name: str) -> StreamSheet:
    ws = wb.add_worksheet(name, worksheet_class=StreamSheet)
    assert isinstance(ws, StreamSheet)
    return ws


def write_header(ws: Worksheet, headers: Sequence[str], fmt: Format, *, row: int = 0) -> None:
    """Header row in bold on a dark band, frozen, with an autofilter set later by ``finish_table``.
    Headers come from the input sheet; a string cell is never run as a formula, so they are written as they are."""
    for col, h in enumerate(headers):
        ws.write_string(row, col, h, fmt)
    ws.freeze_panes(row + 1, 0)


def finish_table(ws: Worksheet, *, header_row: int, last_row: int, ncols: int) -> None:
    """Autofilter over the header and data rows (works in constant_memory: it is sheet metadata)."""
    if ncols:
        ws.autofilter(header_row, 0, max(header_row, last_row), ncols - 1)


def column_widths(
    headers: Sequence[str], sample: Sequence[Sequence[str]], *, cap: int = 60, minimum: int = 8
) -> list[float]:
    """Widths in Excel character units from the header and a sample of rows, capped.

    The header gets room for its filter arrow; a cell's width is its longest line.
    """
    widths = [max(minimum, len(h) + 3) for h in headers]
    for row in sample:
        for i, v in enumerate(row[: len(widths)]):
            if v:
                n = len(v) if "\n" not in v else max(len(line) for line in v.split("\n"))
                if n + 1 > widths[i]:
                    widths[i] = n + 1
    return [float(min(cap, w)) for w in widths]


def set_widths(ws: Worksheet, widths: Sequence[float]) -> None:
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)


# ------------------------------------------------------------------------------- writing safely


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success move it into place, on failure remove it.

    A result file that is open in Excel (Windows locks it) fails here with a clear ``OSError``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial")
    try:
        yield tmp
        try:
            os.replace(tmp, final)
        except OSError as e:
            raise OSError(
                f"Cannot write {final}: {e.strerror or e}. If the file is open in Excel, close it and retry."
            ) from e
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def close_workbook(wb: Workbook, final: Path) -> None:
    """Close (assemble) the workbook, translating xlsxwriter's errors into ``OSError``."""
    try:
        wb.close()
    except XlsxWriterException as e:
        raise OSError(f"Cannot write {final}: {e}") from e


def sample_rows(rows: Sequence[Any], n: int = 500) -> Sequence[Any]:
    """The first ``n`` rows plus a spread of later ones: enough to size columns, cheap for 100,000 rows."""
    if len(rows) <= n:
        return rows
    step = max(1, len(rows) // n)
    return list(rows[: n // 2]) + list(rows[n // 2 :: step])[: n // 2]
