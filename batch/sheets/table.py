"""A grid of text cells -> ``models.Sheet``: header row, columns, data rows, blank rows.

The header is the row among the first ``HEADER_SCAN`` non-blank rows that names the most known columns
(``columns.header_score``); rows above it are titles. Merged cells that cover the header row give their
value to the header row (a title merged down over two header rows, or a header merged across columns).
Columns that are empty in the header and every data row at the left and right edges are dropped;
interior rows with no value are counted in ``Sheet.blank_rows``; trailing blank rows are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ColumnError, EmptySheetError, shorten
from ..models import InputRow, Kind, Role, Sheet, TypedCell
from .columns import detect_columns, header_score, mapped_headers, norm

HEADER_SCAN = 20
_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")

MergedRange = tuple[tuple[int, int], tuple[int, int]]


def build_sheet(
    grid: list[list[str]],
    *,
    path: Path,
    fmt: str,
    sheet_name: str | None,
    encoding: str | None,
    delimiter: str | None,
    sha256: str,
    column_map: Mapping[str, str] | None,
    merged: Sequence[MergedRange] = (),
    notes: Sequence[str] = (),
    in_sheet: str = "",
    kind: Kind | None = None,
    typed: Sequence[Sequence[TypedCell | None] | None] = (),
    header_at: int | None = None,
) -> Sheet:
    """``grid`` holds trimmed text cells; row ``i`` is Excel row ``i + 1``; ``typed`` (workbooks) the same
    rows' non-text cells with their types (see ``InputRow.values``). ``in_sheet`` (e.g.
    " in sheet 'Wave 2'") goes into error messages when a workbook has several sheets. ``header_at`` fixes
    the header row (a DataFrame's columns) instead of finding it."""
    where = str(path)
    cells = grid
    nonblank = [i for i, row in enumerate(cells) if any(row)]
    if not nonblank:
        raise EmptySheetError(
            "The file has no data: every row is empty."
            if sheet_name is None
            else f"The sheet '{sheet_name}' has no data: every row is empty.",
            path=where,
            fix="Check that this is the right file, and that it was saved after the data was entered.",
        )

    mapped = mapped_headers(column_map)
    if header_at is not None:
        best_score, h = -1, header_at
    else:
        candidates = nonblank[:HEADER_SCAN]
        scored = [(header_score(_with_merged(cells, i, merged), mapped), i) for i in candidates]
        best_score = max(s for s, _ in scored)
        h = next(i for s, i in scored if s == best_score)
    header_cells = _with_merged(cells, h, merged)
    if best_score == 0 and any("@" in c or _GUID.match(c) for c in header_cells):
        raise EmptySheetError(
            f"The file has no header row{in_sheet}: the first row holds data ({_preview(header_cells)}).",
            path=where,
            row=h + 1,
            fix="Add a header row above the data, e.g. userPrincipalName and License.",
        )

    body = cells[h + 1 :]
    last = len(body)
    while last and not any(body[last - 1]):
        last -= 1
    body = body[:last]
    if not body:
        raise EmptySheetError(
            f"There are no data rows below the header (row {h + 1}){in_sheet}.",
            path=where,
            row=h + 1,
            fix="Add one row per user below the header row.",
        )

    lo, hi = _span(header_cells, body)
    headers = _unique_headers(header_cells, lo, hi)
    width = hi - lo + 1
    rows: list[InputRow] = []
    blank = 0
    append = rows.append
    for k, row in enumerate(body):
        if not any(row):
            blank += 1
            continue
        part = row[lo : hi + 1]
        if len(part) < width:
            part = part + [""] * (width - len(part))
        t = typed[h + 1 + k] if h + 1 + k < len(typed) else None
        values = None
        if t is not None:
            tpart = list(t[lo : hi + 1])
            if any(v is not None for v in tpart):
                values = tuple(tpart + [None] * (width - len(tpart)))
        append(InputRow(len(rows), h + 2 + k, tuple(part), values))

    all_notes = list(notes)
    titles = sum(1 for i in nonblank if i < h)
    if titles:
        all_notes.append(f"header found on row {h + 1} below {titles} title row{'s' if titles > 1 else ''}")
    if blank:
        all_notes.append(f"{blank} blank row{'s' if blank > 1 else ''} between the data rows skipped")

    columns, col_notes = detect_columns(headers, column_map, where)
    all_notes.extend(col_notes)
    if Role.USER not in columns and Role.ENVIRONMENT not in columns and kind in (None, Kind.LICENSES, Kind.GROUPS):
        headers, rows = _rule_column(headers, rows, columns, all_notes)
    found = _require(columns, headers, where, h + 1, in_sheet, kind)
    if found is Kind.GROUPS and kind is None and {Role.SKU, Role.TO_SKU} & columns.keys():
        all_notes.append(
            "read as group memberships (a group column beside the license column): each row's license is checked "
            "against what its group gives; use --kind licenses to assign the licenses directly instead"
        )
    return Sheet(
        path=path,
        format=fmt,
        sheet_name=sheet_name,
        encoding=encoding,
        delimiter=delimiter,
        header_row=h + 1,
        headers=headers,
        rows=rows,
        columns=columns,
        sha256=sha256,
        blank_rows=blank,
        notes=all_notes,
        kind=found,
    )


def looks_like_input(rows: list[list[str]], column_map: Mapping[str, str] | None = None) -> bool:
    """True when one of the first non-blank rows names at least two known (or mapped) columns."""
    mapped = mapped_headers(column_map)
    seen = 0
    for row in rows:
        if not any(row):
            continue
        if header_score(row, mapped) >= 2:
            return True
        seen += 1
        if seen >= HEADER_SCAN:
            break
    return False


def _with_merged(cells: list[list[str]], r: int, merged: Sequence[MergedRange]) -> list[str]:
    row = cells[r]
    out: list[str] | None = None
    for (r0, c0), (r1, c1) in merged:
        if r0 <= r <= r1 and r0 < len(cells):
            top = cells[r0]
            value = top[c0] if c0 < len(top) else ""
            if out is None:
                out = list(row)
            if len(out) <= c1:
                out.extend([""] * (c1 + 1 - len(out)))
            for c in range(c0, c1 + 1):
                if not out[c]:
                    out[c] = value
    return row if out is None else out


def _span(header: list[str], body: list[list[str]]) -> tuple[int, int]:
    """First and last column with a value in the header or any data row."""
    lo, hi = 1 << 30, -1
    for row in [header, *body]:
        n = len(row)
        if n == 0 or not any(row):
            continue
        j = 0
        while j < n and not row[j]:
            j += 1
        lo = min(lo, j)
        k = n - 1
        while not row[k]:
            k -= 1
        hi = max(hi, k)
    return lo, hi


def _unique_headers(header: list[str], lo: int, hi: int) -> tuple[str, ...]:
    """Blank headers -> "Column N" (N = the column's position in the file); repeats -> "Email (2)"."""
    raw = [header[j] if j < len(header) and header[j] else f"Column {j + 1}" for j in range(lo, hi + 1)]
    seen: set[str] = set()
    counts: dict[str, int] = {}
    out: list[str] = []
    for name in raw:
        key = name.casefold()
        if key not in seen:
            seen.add(key)
            out.append(name)
            continue
        n = counts.get(key, 1)
        while True:
            n += 1
            candidate = f"{name} ({n})"
            if candidate.casefold() not in seen:
                break
        counts[key] = n
        seen.add(candidate.casefold())
        out.append(candidate)
    return tuple(out)


#: Headers of a directory attribute that, with no user column, make every row a rule row (Department=Sales).
#: Country is left out on purpose: it is the usage location.
_RULE_HEADERS = frozenset({"department", "jobtitle", "companyname", "company", "officelocation", "office",
                           "employeetype"})
RULE_USER_HEADER = "User (from rule)"


def _rule_column(
    headers: tuple[str, ...], rows: list[InputRow], columns: dict[Role, int], notes: list[str]
) -> tuple[tuple[str, ...], list[InputRow]]:
    """A `Department,License` sheet: no user column, but a directory attribute. Each row names the users whose
    attribute is the cell's value: an added column ``User (from rule)`` holds ``Department=Sales`` (a rule row,
    ``batch.kinds.rules``), which the rule expansion replaces with each reached user's UPN. The input columns
    stay as they were."""
    taken = set(columns.values())
    hit = next((i for i, h in enumerate(headers) if i not in taken and norm(h) in _RULE_HEADERS), None)
    if hit is None:
        return headers, rows
    attr = headers[hit]
    out = [InputRow(r.index, r.number, (*r.cells, f"{attr}={r.cells[hit]}" if r.cells[hit] else ""),
                    None if r.values is None else (*r.values, None)) for r in rows]  # typed cells kept
    columns[Role.USER] = len(headers)
    first = next((r.cells[hit] for r in rows if r.cells[hit]), "...")
    notes.append(f"no user column: each row names the users whose {attr} is the row's '{attr}' cell (a rule row, "
                 f"like {attr}={first}); every user it reaches gets a line of its own, named in '{RULE_USER_HEADER}'")
    return (*headers, RULE_USER_HEADER), out


def _require(
    columns: dict[Role, int],
    headers: Sequence[str],
    where: str,
    header_row: int,
    in_sheet: str = "",
    kind: Kind | None = None,
) -> Kind:
    """The kind of change these columns make (``batch.kinds``), or a ColumnError saying what is missing."""
    from ..kinds import detect_kind

    found = detect_kind(columns, headers, wanted=kind)
    if found is not None:
        return found
    listed = ", ".join(f"'{shorten(h)}'" for h in headers)
    if kind is Kind.ADDONS or (kind is None and Role.ENVIRONMENT in columns and Role.USER not in columns):
        if Role.ENVIRONMENT not in columns:
            raise ColumnError(
                f"No column names the environment{in_sheet}. The headers (row {header_row}) are: {listed}.",
                path=where,
                fix='Head the column Environment (its name or id), or map it: --map "environment=<header>".',
            )
        if Role.ADDON in columns:
            raise ColumnError(
                f"No column gives the amount{in_sheet}. The headers (row {header_row}) are: {listed}.",
                path=where,
                fix='Head the column Amount (or Allocated, Quantity), or map it: --map "amount=<header>".',
            )
        raise ColumnError(
            f"No column names the add-on{in_sheet}. The headers (row {header_row}) are: {listed}.",
            path=where,
            fix=(
                "Head the column Add-on (or Currency type) with an Amount column beside it, or give one column "
                "per add-on headed by its name (AI Builder credits, Power Apps per app, ...), or map it: "
                '--map "addon=<header>".'
            ),
        )
    if Role.USER not in columns:
        raise ColumnError(
            f"No column names the user{in_sheet}. The headers (row {header_row}) are: {listed}.",
            path=where,
            fix='Head the column userPrincipalName (or UPN, Email), or map it: --map "user=<header>".',
        )
    raise ColumnError(
        f"No column names the license{in_sheet}. The headers (row {header_row}) are: {listed}.",
        path=where,
        fix=(
            "Head the column License (or skuPartNumber, SKU, Product name), or give From license and "
            'To license columns for a swap, or map it: --map "sku=<header>".'
        ),
    )


def _preview(cells: Sequence[str]) -> str:
    shown = [c for c in cells if c][:3]
    text = ", ".join(f"'{shorten(c, 40)}'" for c in shown)
    return text
