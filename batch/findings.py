"""Row findings: what validation says about one input row (a code, a severity, a message, a fix).

Records, not exceptions: checks return them, validation collects them, the reports show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"  # the row will not be applied
    WARNING = "warning"  # the row will be applied, but look at it
    INFO = "info"  # e.g. the row already matches the tenant


@dataclass(eq=False)
class RowFinding:
    """One problem with one input row: a record collected into reports (not an exception).

    ``code`` is stable (documented in ``batch.validate.FINDING_CODES``); ``message`` is plain language;
    ``fix`` says what the administrator should do.
    """

    code: str
    severity: Severity
    message: str
    fix: str = ""
    row: int | None = None  # the row number as the user sees it in Excel
    column: str | None = None  # the header of the column at fault, when there is one

    def __str__(self) -> str:
        return self.message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RowFinding):
            return NotImplemented
        return (self.code, self.severity, self.message, self.fix, self.row, self.column) == (
            other.code,
            other.severity,
            other.message,
            other.fix,
            other.row,
            other.column,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.row, self.column, self.message))

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


__all__ = ["RowFinding", "Severity"]
