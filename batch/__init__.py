"""license-batch: apply Microsoft 365 licenses and Power Platform add-ons from spreadsheets.

The library API; the CLI (``batch.cli``) is a thin layer over it::

    from batch import load_settings, open_session, validate_file, plan_file, execute

    with open_session(load_settings()) as session:
        prepared = plan_file(session, "wave.xlsx")
        result = execute(session, prepared)

The stages, for finer control: ``read_sheet`` / ``parse_requests`` -> ``Tenant.snapshot`` ->
``batch.validate.validate`` -> ``batch.plan.plan`` -> ``batch.apply.apply`` / ``resume`` -> ``write_results``
(the three middle ones share their module's name, so they are not re-exported here). Names are imported on
first use, so ``import batch`` (and the CLI's ``--help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

_LAZY = {
    "load_settings": ".config",
    "Settings": ".config",
    "Limits": ".config",
    "Target": ".config",
    "open_session": ".jobs",
    "Session": ".jobs",
    "validate_file": ".jobs",
    "plan_file": ".jobs",
    "execute": ".jobs",
    "resume_run": ".jobs",
    "read_sheet": ".sheets",
    "parse_requests": ".sheets",
    "ProductCatalog": ".sheets",
    "Tenant": ".tenant",
    "resume": ".apply",
    "write_validation": ".report",
    "write_results": ".report",
    "SandboxServer": ".sandbox",
    "init_tenant": ".sandbox",
}

if TYPE_CHECKING:
    from .apply import resume
    from .config import Limits, Settings, Target, load_settings
    from .jobs import Session, execute, open_session, plan_file, resume_run, validate_file
    from .report import write_results, write_validation
    from .sandbox import SandboxServer, init_tenant
    from .sheets import ProductCatalog, parse_requests, read_sheet
    from .tenant import Tenant


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(mod, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AuthenticationError",
    "ColumnError",
    "ConfigError",
    "EmptySheetError",
    "InputError",
    "JournalError",
    "LicenseBatchError",
    "Limits",
    "OutputError",
    "PermissionDeniedError",
    "ProductCatalog",
    "RetryableTenantError",
    "RowFinding",
    "SandboxServer",
    "ServiceError",
    "ServiceUnavailableError",
    "Session",
    "Settings",
    "Severity",
    "SheetReadError",
    "StrictModeError",
    "Target",
    "Tenant",
    "TenantError",
    "TenantUnreachableError",
    "ThrottledError",
    "__version__",
    "execute",
    "init_tenant",
    "load_settings",
    "open_session",
    "parse_requests",
    "plan_file",
    "read_sheet",
    "resume",
    "resume_run",
    "validate_file",
    "write_results",
    "write_validation",
]
