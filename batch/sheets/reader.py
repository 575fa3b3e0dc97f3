"""``read_sheet``: a CSV or workbook file -> ``models.Sheet``; ``read_source``: a file or a DataFrame -> its
input sheets (the one place the library turns what it was given into sheets)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from ..errors import ColumnError, EmptySheetError, SheetReadError
from ..models import Kind, Sheet
from .csvread import UnclosedQuote, read_csv_text
from .detect import TEXT_SUFFIXES, sniff
from .encoding import decode, nul_padding
from .excel import read_workbook, workbook_input_sheets
from .table import build_sheet, looks_like_input

if TYPE_CHECKING:
    import pandas as pd

#: What the library reads: a file's path, or a pandas DataFrame (read in memory, ``batch.sheets.frame``).
Source: TypeAlias = "str | os.PathLike[str] | pd.DataFrame"


def read_source(
    source: Source,
    *,
    sheet: str | None = None,
    column_map: Mapping[str, str] | None = None,
    kind: Kind | None = None,
) -> list[Sheet]:
    """The input sheets of a file (:func:`read_sheets`) or of a DataFrame (one sheet, built in memory)."""
    from .frame import is_frame, sheet_from_frame

    if is_frame(source):
        return [sheet_from_frame(source, column_map=column_map, kind=kind, sheet=sheet)]
    if not isinstance(source, str | os.PathLike):
        raise SheetReadError(
            f"Cannot read a {type(source).__name__}: give a file's path (.csv, .xlsx, ...) or a pandas DataFrame.")
    return read_sheets(source, sheet=sheet, column_map=column_map, kind=kind)


def source_label(source: Source) -> Path:
    """What messages and records call the source: the file's path, or ``<DataFrame>``."""
    from .frame import FRAME_LABEL, is_frame

    return Path(FRAME_LABEL) if is_frame(source) else Path(source)


def read_sheets(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    column_map: Mapping[str, str] | None = None,
    kind: Kind | None = None,
) -> list[Sheet]:
    """Every input sheet of the file: a workbook may hold several (a Licenses sheet and an Add-ons sheet, as
    the templates do), and they are one run. Row indexes run on across the sheets.

    Without ``sheet``, every worksheet whose header names the columns of some kind of change is read (a sheet
    of another shape, such as instructions or drop-down lists, is skipped with a note on the first sheet);
    ``kind`` keeps only sheets of that kind. A CSV file, a workbook with one input sheet, or ``sheet`` given:
    exactly :func:`read_sheet`.
    """
    p = Path(path)
    if sheet is not None:
        return [read_sheet(p, sheet=sheet, column_map=column_map, kind=kind)]
    data = _read_bytes(p)
    fmt = sniff(data, p.suffix, str(p)) if data else "csv"
    if fmt == "csv":
        return [read_sheet(p, column_map=column_map, kind=kind)]
    names = workbook_input_sheets(data, str(p), fmt, lambda rows: looks_like_input(rows, column_map))
    if len(names) <= 1:
        return [read_sheet(p, column_map=column_map, kind=kind)]
    out: list[Sheet] = []
    skipped: list[str] = []
    for name in names:
        try:
            sh = read_sheet(p, sheet=name, column_map=column_map, kind=kind)
        except ColumnError as e:
            skipped.append(f"sheet '{name}' skipped: {e.message}")
            continue
        offset = sum(len(x.rows) for x in out)
        if offset:
            sh.rows = [replace(r, index=r.index + offset) for r in sh.rows]
        out.append(sh)
    if not out:
        return [read_sheet(p, column_map=column_map, kind=kind)]  # the single-sheet error, with its message
    out[0].notes.extend(skipped)
    if len(out) > 1:
        out[0].notes.append(
            "this workbook has several input sheets, one run: " + ", ".join(f"'{x.sheet_name}' ({x.kind})" for x in out)
        )
    return out


def read_sheet(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    column_map: Mapping[str, str] | None = None,
    kind: Kind | None = None,
) -> Sheet:
    """Read the input sheet at ``path``.

    ``sheet`` picks a workbook sheet by name (default: the first with data; ignored for CSV).
    ``column_map`` maps role values ("user", "sku", ...) to headers and overrides detection.
    Row numbers are the ones Excel shows: for CSV, the record's position counting the header and any
    blank lines, where a quoted field spanning several lines is still one record.
    Raises the InputError subclasses (SheetReadError, EmptySheetError, ColumnError).
    """
    p = Path(path)
    where = str(p)
    data = _read_bytes(p)
    if not data:
        raise EmptySheetError(
            "The file is empty (0 bytes).",
            path=where,
            fix="Export the sheet again, or check that this is the right file.",
        )
    digest = hashlib.sha256(data).hexdigest()
    fmt = sniff(data, p.suffix, where)
    notes: list[str] = []
    suffix = p.suffix.lower().lstrip(".")
    if fmt == "csv":
        if suffix and f".{suffix}" not in TEXT_SUFFIXES:
            notes.append(f"the file is named .{suffix} but holds text; read as CSV")
        if sheet is not None:
            notes.append(f"--sheet '{sheet}' ignored: a CSV file has one sheet")
        text, encoding = decode(data, where)
        if nul_padding(data):
            notes.append("NUL bytes padding the end of the file ignored")
        try:
            grid, delimiter, csv_notes = read_csv_text(text)
        except UnclosedQuote as e:
            raise SheetReadError(
                f"A quoted field in row {e.row} is never closed, so the rest of the file would be one cell.",
                path=where,
                row=e.row,
                fix='Close the quote, or write a literal quote inside a quoted field as two ("").',
            ) from None
        notes.extend(csv_notes)
        return build_sheet(
            grid,
            path=p,
            fmt="csv",
            sheet_name=None,
            encoding=encoding,
            delimiter=delimiter,
            sha256=digest,
            column_map=column_map,
            notes=notes,
            kind=kind,
        )
    if suffix and suffix != fmt and not (suffix in ("xltx", "xltm") and fmt in ("xlsx", "xlsm")):
        notes.append(f"the file is named .{suffix} but is a {fmt} workbook; read as {fmt}")
    wb = read_workbook(data, where, fmt, sheet, lambda rows: looks_like_input(rows, column_map))
    notes.extend(wb.notes)
    return build_sheet(
        wb.grid,
        path=p,
        fmt=fmt,
        sheet_name=wb.sheet_name,
        encoding=None,
        delimiter=None,
        sha256=digest,
        column_map=column_map,
        merged=wb.merged,
        notes=notes,
        in_sheet=f" in sheet '{wb.sheet_name}'" if wb.sheet_count > 1 else "",
        kind=kind,
        typed=wb.typed,
    )


def _read_bytes(p: Path) -> bytes:
    where = str(p)
    try:
        return p.read_bytes()
    except FileNotFoundError as e:
        raise SheetReadError("The file does not exist.", path=where, fix="Check the path and the file name.") from e
    except IsADirectoryError as e:
        raise SheetReadError("This is a folder, not a file.", path=where, fix="Give the spreadsheet's path.") from e
    except PermissionError as e:
        raise SheetReadError(
            "The file cannot be opened: permission denied.",
            path=where,
            fix="Close it in Excel if it is open there (Windows locks open workbooks), or check its permissions.",
        ) from e
    except OSError as e:
        raise SheetReadError(f"The file cannot be read: {e.strerror or e}.", path=where) from e
