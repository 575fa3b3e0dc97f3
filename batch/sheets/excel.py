"""Workbooks (.xlsx .xlsm .xlsb .xls .ods) -> a grid of text cells, through python-calamine directly (and, beside
it, the cells that are not text with their types, which the results write back as they were).

Cell values become the text Excel would show in a General-format cell: 1.0 -> "1", 2.5 -> "2.5",
TRUE/FALSE, dates as ISO ``2024-05-01`` (``2024-05-01 13:05:00`` with a time). Formulas give the value
Excel cached when it last saved the file; a formula with no cached value (written by a library that does
not calculate, e.g. openpyxl) reads as an empty cell. Row *n* of the grid is Excel row *n + 1*.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO

import python_calamine as pc

from ..errors import ColumnError, EmptySheetError, SheetReadError
from ..models import TypedCell
from .detect import DAMAGED_FIX, DAMAGED_MESSAGE, ENCRYPTED_FIX, ENCRYPTED_MESSAGE

Cell = int | float | str | bool | dt.time | dt.date | dt.datetime | dt.timedelta
MergedRange = tuple[tuple[int, int], tuple[int, int]]


@dataclass(slots=True)
class WorkbookGrid:
    sheet_name: str
    grid: list[list[str]]
    merged: list[MergedRange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sheet_count: int = 1
    #: Per grid row: None when every cell is text, else the cells with their workbook types (None for text).
    typed: list[list[TypedCell | None] | None] = field(default_factory=list)


def cell_text(v: Cell) -> str:
    """One calamine value as the text a General-format cell shows (not trimmed)."""
    t = type(v)
    if t is str:
        return v  # type: ignore[return-value]
    if t is float:
        f: float = v  # type: ignore[assignment]
        if f.is_integer() and abs(f) < 1e21:
            return str(int(f))
        return f"{f:.15g}"
    if t is bool:
        return "TRUE" if v else "FALSE"
    if t is int:
        return str(v)
    if t is dt.datetime:
        d: dt.datetime = v  # type: ignore[assignment]
        if d.hour == d.minute == d.second == d.microsecond == 0:
            return d.date().isoformat()
        return d.isoformat(sep=" ", timespec="seconds")
    if t is dt.date:
        return v.isoformat()  # type: ignore[union-attr]
    if t is dt.time:
        tm: dt.time = v  # type: ignore[assignment]
        return tm.isoformat(timespec="seconds")
    return str(v)


def read_workbook(
    data: bytes,
    path: str,
    fmt: str,
    sheet: str | None,
    looks_like_input: Callable[[list[list[str]]], bool] = lambda rows: False,
) -> WorkbookGrid:
    """The chosen sheet of the workbook in ``data`` as text cells.

    Without ``sheet``: the first sheet for which ``looks_like_input(top rows)`` holds, else the first
    sheet with data."""
    try:
        wb = pc.CalamineWorkbook.from_filelike(BytesIO(data))
    except pc.PasswordError as e:
        raise SheetReadError(ENCRYPTED_MESSAGE, path=path, fix=ENCRYPTED_FIX) from e
    except pc.ZipError as e:
        raise SheetReadError(DAMAGED_MESSAGE, path=path, fix=DAMAGED_FIX) from e
    except (pc.CalamineError, ValueError, OSError) as e:
        raise SheetReadError(
            f"The file cannot be read as a {fmt} workbook ({_short(e)}).",
            path=path,
            fix="Open it in Excel and save it again as .xlsx.",
        ) from e
    with wb:
        names = list(wb.sheet_names)
        try:
            if sheet is not None:
                name = _pick_named(names, sheet, path)
                ws = wb.get_sheet_by_name(name)
                rows = ws.to_python(skip_empty_area=False)
                if not rows:
                    raise EmptySheetError(
                        f"The sheet '{name}' is empty.",
                        path=path,
                        fix=f"Pick the sheet with the data: {_list(names)}.",
                    )
                notes: list[str] = []
            else:
                ws, rows, notes = _first_with_data(wb, names, path, looks_like_input)
            merged = list(ws.merged_cell_ranges or [])
        except pc.PasswordError as e:
            raise SheetReadError(ENCRYPTED_MESSAGE, path=path, fix=ENCRYPTED_FIX) from e
        except pc.CalamineError as e:
            raise SheetReadError(
                f"The workbook is damaged: a sheet cannot be read ({_short(e)}).",
                path=path,
                fix="Open it in Excel and save it again, or export it once more.",
            ) from e
    # Text and trimmed in one pass (most cells are already str).
    grid = [[c.strip() if type(c) is str else cell_text(c).strip() for c in row] for row in rows]
    # Keep what is not text (numbers, dates, booleans) beside the text, so results can write it back typed.
    typed: list[list[TypedCell | None] | None] = [
        None if all(type(c) is str for c in row) else [None if isinstance(c, str) else c for c in row] for row in rows
    ]
    return WorkbookGrid(ws.name, grid, merged, notes, len(names), typed)


def workbook_input_sheets(
    data: bytes, path: str, fmt: str, looks_like_input: Callable[[list[list[str]]], bool]
) -> list[str]:
    """Names of the visible worksheets whose top rows hold a header of known column names, in workbook order
    (the sheets of a workbook that may each be an input sheet). Unreadable workbooks give [] (read_workbook
    then says what is wrong)."""
    try:
        wb = pc.CalamineWorkbook.from_filelike(BytesIO(data))
    except (pc.CalamineError, ValueError, OSError):
        return []
    out: list[str] = []
    try:
        with wb:
            for m in wb.sheets_metadata:
                if m.visible != pc.SheetVisibleEnum.Visible or m.typ != pc.SheetTypeEnum.WorkSheet:
                    continue
                ws = wb.get_sheet_by_name(m.name)
                if ws.start is None:
                    continue
                rows = ws.to_python(skip_empty_area=False)[:200]
                top = [[c.strip() if type(c) is str else cell_text(c).strip() for c in r] for r in rows]
                if looks_like_input(top):
                    out.append(m.name)
    except pc.CalamineError:
        return []
    return out


def _pick_named(names: list[str], wanted: str, path: str) -> str:
    if wanted in names:
        return wanted
    folded = [n for n in names if n.strip().casefold() == wanted.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    raise ColumnError(
        f"There is no sheet named '{wanted}'. The sheets are: {_list(names)}.",
        path=path,
        fix="Give --sheet one of these names.",
    )


def _first_with_data(
    wb: pc.CalamineWorkbook, names: list[str], path: str, looks_like_input: Callable[[list[list[str]]], bool]
) -> tuple[pc.CalamineSheet, list[list[Cell]], list[str]]:
    """The first visible worksheet whose top rows hold a header of known column names, else the first
    visible one with any value (a workbook often starts with an instructions sheet); hidden sheets
    likewise, only when no visible sheet has data."""
    meta = {m.name: m for m in wb.sheets_metadata}
    visible = [n for n in names if meta[n].visible == pc.SheetVisibleEnum.Visible]
    hidden = [n for n in names if n not in visible]
    fallback: tuple[pc.CalamineSheet, list[list[Cell]]] | None = None
    chosen: tuple[pc.CalamineSheet, list[list[Cell]]] | None = None
    for group in (visible, hidden):
        for name in group:
            if meta[name].typ != pc.SheetTypeEnum.WorkSheet:
                continue
            ws = wb.get_sheet_by_name(name)
            if ws.start is None:
                continue
            rows = ws.to_python(skip_empty_area=False)
            if not any(any(c != "" for c in r) for r in rows):
                continue
            top = [[c.strip() if type(c) is str else cell_text(c).strip() for c in r] for r in rows[:200]]
            if looks_like_input(top):
                chosen = (ws, rows)
                break
            if fallback is None:
                fallback = (ws, rows)
        if chosen or fallback:
            break
    pick = chosen or fallback
    if pick is not None:
        ws, rows = pick
        name = ws.name
        notes = []
        if len(names) > 1:
            how = "the first with a header row" if chosen else "the first with data"
            others = [n for n in names if n != name]
            notes.append(f"read sheet '{name}', {how}; the workbook also has {_list(others)} (choose with --sheet)")
        if name in hidden:
            notes.append(f"sheet '{name}' is hidden")
        return ws, rows, notes
    raise EmptySheetError(
        "No sheet in the workbook has any data." if len(names) != 1 else "The workbook's only sheet is empty.",
        path=path,
        fix="Check that this is the right file and that it was saved after the data was entered.",
    )


def _list(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _short(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text if len(text) <= 160 else text[:157] + "..."
