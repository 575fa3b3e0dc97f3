"""license-batch: apply Microsoft 365 licenses and Power Platform add-ons from spreadsheets.

The library API; the CLI (``batch.cli``) is a thin layer over it.
"""

from __future__ import annotations

from .errors import (
    AuthenticationError,
    ColumnError,
    ConfigError,
    EmptySheetError,
    InputError,
    JournalError,
    LicenseBatchError,
    OutputError,
    PermissionDeniedError,
    RetryableTenantError,
    RowFinding,
    ServiceError,
    ServiceUnavailableError,
    Severity,
    SheetReadError,
    StrictModeError,
    TenantError,
    TenantUnreachableError,
    ThrottledError,
)

__version__ = "0.1.0"

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
    "__version__",
]
