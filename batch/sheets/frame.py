"""A pandas DataFrame given instead of a file -> ``models.Sheet``, in memory (nothing is written to disk).

The frame reads like a CSV file of it would: its columns are the header (row 1), its rows are the data rows
(the first is row 2, as Excel would number a CSV of the frame), and every cell is text: NaN/None/NaT -> "",
3 -> "3" (a whole float such as 3.0, which a column with gaps turns its integers into, too), dates and
times as ISO (``2024-05-01``, ``2024-05-01 13:05:00``), text trimmed. The same column recognition,
``--map-file`` column map and kind detection as a file follow (``table.build_sheet``), with the same errors.
The index is kept as the first columns when it holds data, so nothing the frame holds is dropped (column
recognition may find the user in it), and dropped when it is only row positions:

- a level with a name (``set_index("userPrincipalName")``) is kept under its name;
- an unnamed level of any dtype but integer (text, dates, ...: ``pd.DataFrame({...}, index=upns)``) is kept as
  ``index`` (``index_0``, ``index_1``, ... for the levels of a MultiIndex);
- an unnamed integer level is row positions and is dropped: the default RangeIndex, and the gaps a filtered frame
  (``df[df.Country == "DE"]``) leaves in it alike.

A kept level whose header is a column's header too (ignoring case) is refused: which would be which is unclear.

pandas is imported only here, only when a frame is actually handled: ``is_frame`` needs no import at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import numbers
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ColumnError, EmptySheetError
from ..models import Kind, Sheet
from .excel import cell_text
from .table import build_sheet

if TYPE_CHECKING:
    import pandas as pd

#: What messages, the journal and run.json call a DataFrame input ("<DataFrame>, row 4, column 'SKU': ...").
FRAME_LABEL = "<DataFrame>"
FRAME_FORMAT = "dataframe"


def is_frame(source: object) -> bool:
    """True for a pandas DataFrame (without importing pandas: no frame exists unless pandas was imported)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(source, pd.DataFrame)


def is_frame_label(path: str | Path) -> bool:
    """True when a recorded input path is a DataFrame's label, not a file."""
    return str(path) == FRAME_LABEL


def frame_grid(df: pd.DataFrame) -> list[list[str]]:
    """The header row and every data row as text cells, as described above."""
    kept = _index_columns(df)
    headers = [h for h, _ in kept] + [_text(c) for c in df.columns]
    columns = [_column_text(c) for _, c in kept] + [_column_text(df.iloc[:, j]) for j in range(df.shape[1])]
    rows = [list(r) for r in zip(*columns, strict=True)] if columns else [[] for _ in range(len(df))]
    return [headers, *rows]


def grid_sha256(grid: list[list[str]]) -> str:
    """The input's hash: of a canonical serialisation (JSON of the text grid), so an edited frame has another
    hash (``resume`` and approved plans refuse a changed input) and an identical one the same."""
    h = hashlib.sha256()
    for row in grid:
        h.update(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def sheet_from_frame(
    df: pd.DataFrame,
    *,
    column_map: Mapping[str, str] | None = None,
    kind: Kind | None = None,
    sheet: str | None = None,
) -> Sheet:
    """The frame as one input sheet (``sheet`` means nothing for a frame: noted, like for a CSV file)."""
    grid = frame_grid(df)
    if len(grid) < 2 or not any(any(r) for r in grid[1:]):
        raise EmptySheetError(
            "The DataFrame has no data rows." if len(grid) < 2 else "The DataFrame has no data: every row is empty.",
            path=FRAME_LABEL,
            fix="Give a DataFrame with one row per user (or environment), e.g. userPrincipalName and License columns.",
        )
    notes = [f"--sheet '{sheet}' ignored: a DataFrame has one sheet"] if sheet is not None else []
    return build_sheet(
        grid,
        path=Path(FRAME_LABEL),
        fmt=FRAME_FORMAT,
        sheet_name=None,
        encoding=None,
        delimiter=None,
        sha256=grid_sha256(grid),
        column_map=column_map,
        notes=notes,
        kind=kind,
        header_at=0,
    )


def _index_columns(df: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(header, values) of each index level kept as a column (the rule is the module's)."""
    index = df.index
    several = index.nlevels > 1
    taken = {_text(c).lower(): _text(c) for c in df.columns}
    out: list[tuple[str, pd.Series]] = []
    for i, name in enumerate(index.names):
        values = index.get_level_values(i).to_series(index=range(len(df)))
        if name is None and values.dtype.kind in "iu":
            continue
        header = _text(name) if name is not None else (f"index_{i}" if several else "index")
        if header.lower() in taken:
            raise ColumnError(
                f"The DataFrame's index{f' level {i}' if several else ''} would be the column '{header}', "
                f"but a column is called '{taken[header.lower()]}' already.",
                path=FRAME_LABEL,
                fix="Rename the index (df.rename_axis(...)) or the column, or drop the index "
                    "(df.reset_index(drop=True)).",
            )
        taken[header.lower()] = header
        out.append((header, values))
    return out


def _column_text(col: pd.Series) -> list[str]:
    missing = col.isna().tolist()
    values = col.tolist()
    if not any(missing) and col.dtype.kind in "iu":
        return [str(v) for v in values]
    return ["" if m else _text(v) for v, m in zip(values, missing, strict=True)]


def _text(v: Any) -> str:
    """One cell as text (a workbook's rules, ``excel.cell_text``, for numbers, booleans, dates and times)."""
    if isinstance(v, str):
        return v.strip()
    if v is None:
        return ""
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return cell_text(bool(v))
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        f = float(v)
        return "" if f != f else cell_text(f)
    if isinstance(v, dt.datetime):  # pandas' Timestamp too
        to_py = getattr(v, "to_pydatetime", None)
        d: dt.datetime = to_py() if to_py is not None else v
        if d.tzinfo is not None:
            return d.isoformat(sep=" ", timespec="seconds")
        return cell_text(dt.datetime(d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond))
    if isinstance(v, dt.date | dt.time):
        return cell_text(v)
    return str(v).strip()
