"""Which of a reconcile's sheets a row is on: a workbook may hold several licenses (and add-ons) sheets, one
desired state; their row indexes run on across the sheets (``batch.sheets.read_sheets``), so a row index
names its sheet. Messages about two rows on different sheets name the other row's sheet."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from ..models import Role, Sheet


class SheetsOf:
    """Row index -> its sheet, among ``sheets`` (each sheet's rows a run of indexes in input order, as read)."""

    def __init__(self, sheets: Sequence[Sheet]) -> None:
        if not sheets:
            raise ValueError("SheetsOf needs at least one sheet")
        spans = sorted((s.rows[0].index if s.rows else 0, k) for k, s in enumerate(sheets))  # rows: input order
        self.sheets = list(sheets)
        self._starts = [s for s, _ in spans]
        self._order = [k for _, k in spans]

    def of(self, row: int) -> Sheet:
        i = bisect_right(self._starts, row) - 1
        return self.sheets[self._order[max(i, 0)]]

    def header(self, row: int, role: Role) -> str | None:
        """The header of ``role``'s column on the row's sheet (sheets of one kind may head it differently)."""
        return self.of(row).header_for(role) if len(self.sheets) > 1 else self.sheets[0].header_for(role)

    def row_name(self, row: int, number: int, *, seen_from: int | None) -> str:
        """``row 5``, or ``row 5 of sheet 'Licenses 2'`` when ``row`` is on another sheet than ``seen_from`` (None:
        whenever there are several sheets)."""
        if len(self.sheets) == 1:
            return f"row {number}"
        mine = self.of(row)
        if seen_from is not None and mine is self.of(seen_from):
            return f"row {number}"
        return f"row {number} of sheet '{mine.sheet_name}'" if mine.sheet_name else f"row {number} of {mine.path}"
