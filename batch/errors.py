"""The one exception tree of license-batch.

::

    LicenseBatchError                   everything the library raises on purpose
    ├── InputError                      the input or the command line is unusable; nothing is applied (exit 2)
    │   ├── SheetReadError              unreadable, corrupt, password-protected, binary junk, bad encoding
    │   ├── EmptySheetError             no header or no data rows
    │   ├── ColumnError                 no user column, no license column, unknown --map column
    │   ├── ConfigError                 bad license-batch.toml, bad option value, unknown run id
    │   └── StrictModeError             --strict and some row has an error finding
    ├── TenantError                     the tenant refused us or could not be reached (exit 3)
    │   ├── AuthenticationError         401: no or bad token, credential could not get one
    │   ├── PermissionDeniedError       403 Authorization_RequestDenied: the app lacks a permission
    │   ├── ServiceError                any other answer we cannot use (a 4xx that is not the row's fault)
    │   └── RetryableTenantError        worth another try later
    │       ├── ThrottledError          429 (carries retry_after seconds, or None)
    │       ├── ServiceUnavailableError 500/502/503/504 (may carry retry_after)
    │       └── TenantUnreachableError  connect error, dropped connection, read timeout
    ├── JournalError                    the run journal is missing, corrupt, or belongs to other input
    └── OutputError                     a report cannot be written (disk full, file open in Excel)

A row's problem is not an exception: ``batch.findings.RowFinding`` (re-exported here) is a record that
validation collects and the reports show.

Third-party errors (httpx, sqlite3, calamine, openpyxl, azure-identity) are translated into this tree in
one place per boundary (``tenant/http.py``, ``apply/journal.py``, ``sheets/``) and chained with ``raise ... from``.
The CLI maps the tree to exit codes: InputError, JournalError and OutputError -> 2, TenantError -> 3; KeyboardInterrupt
-> 130. Row findings never change the exit code by themselves: rows that end failed or skipped give 1.
"""

from __future__ import annotations

import re

# A row finding is data, not an exception (collected and reported, never raised): it lives in ``batch.findings``
# and is re-exported here so ``from batch.errors import RowFinding, Severity`` keeps working.
from .findings import RowFinding as RowFinding
from .findings import Severity as Severity

#: The longest cell a message quotes in full (a 30,000-character cell, or NUL padding read as a row, would
#: otherwise fill the terminal and the report).
MESSAGE_CELL_MAX = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def shorten(text: str, limit: int = MESSAGE_CELL_MAX) -> str:
    """A cell as a message quotes it: over ``limit`` characters, its first ``limit`` characters then
    ``… (N characters)``; control characters (NUL, CR, ...) written as ``\\x00`` so none reaches a terminal."""
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} characters)"
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text


class LicenseBatchError(Exception):
    """Base of every error license-batch raises on purpose."""


# --------------------------------------------------------------------------------------------- input


class InputError(LicenseBatchError):
    """The input or the command line is unusable: nothing was or will be applied.

    The message names the file and, where known, the row and column, and says what to do.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        self.message = message
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (", ".join(where) + ": " if where else "") + self.message
        if self.fix:
            text += f" {self.fix}"
        return text


class SheetReadError(InputError):
    """The file cannot be read at all (corrupt, encrypted, not a spreadsheet, undecodable)."""


class EmptySheetError(InputError):
    """The file has no header row or no data rows."""


class ColumnError(InputError):
    """A required column is missing, or a --map entry names a column that is not there."""


class ConfigError(InputError):
    """Settings, options or a run id that cannot be used."""


class StrictModeError(InputError):
    """--strict was given and at least one row has an error finding."""


# ------------------------------------------------------------------------------------------- tenant


class TenantError(LicenseBatchError):
    """The tenant (or the sandbox standing in for it) refused us or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.request_id = request_id
        super().__init__(message)


class AuthenticationError(TenantError):
    """401, or the credential could not produce a token."""


class PermissionDeniedError(TenantError):
    """403 Authorization_RequestDenied: the app registration lacks a permission."""


class ServiceError(TenantError):
    """An answer we cannot use and that another try will not fix."""


class RetryableTenantError(TenantError):
    """Worth trying again after ``retry_after`` seconds (or a backoff when it is None)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code, request_id=request_id)


class ThrottledError(RetryableTenantError):
    """429 Too Many Requests."""


class ServiceUnavailableError(RetryableTenantError):
    """500, 502, 503 or 504."""


class TenantUnreachableError(RetryableTenantError):
    """Connection refused or dropped, or the read timed out: the outcome of a write is unknown, unless
    ``never_sent`` (the connection was never established, so the request cannot have reached the tenant)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        never_sent: bool = False,
    ) -> None:
        self.never_sent = never_sent
        super().__init__(message, status=status, code=code, request_id=request_id, retry_after=retry_after)


# ------------------------------------------------------------------------------------------ journal


class JournalError(LicenseBatchError):
    """The run journal cannot be used: missing, corrupt, or recorded for different input."""


class OutputError(LicenseBatchError):
    """A report file cannot be written. What was applied stays applied and the journal is intact."""

    def __init__(self, message: str, *, after_apply: bool = False) -> None:
        self.after_apply = after_apply  # changes were sent: the CLI must not say "nothing was applied"
        super().__init__(message)


__all__ = [
    "AuthenticationError",
    "ColumnError",
    "ConfigError",
    "EmptySheetError",
    "InputError",
    "JournalError",
    "LicenseBatchError",
    "OutputError",
    "PermissionDeniedError",
    "RetryableTenantError",
    "RowFinding",
    "ServiceError",
    "ServiceUnavailableError",
    "Severity",
    "SheetReadError",
    "StrictModeError",
    "TenantError",
    "TenantUnreachableError",
    "ThrottledError",
]
