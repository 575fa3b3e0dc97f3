"""Small, explicit records for the report tests, built straight from batch.models."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batch.errors import RowFinding, Severity
from batch.models import (
    Action,
    CapacityLine,
    CheckedRequest,
    InputRow,
    LicenseRequest,
    Outcome,
    RequestStatus,
    Role,
    RowResult,
    RunResult,
    Sheet,
    ShortfallPolicy,
    Sku,
    TenantSnapshot,
    Validation,
)

HEADERS = ("Employee ID", "Work Email", "Department", "License", "Notes")
T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)

E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
E5 = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"


def sheet(rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> Sheet:
    return Sheet(
        path=Path("/data/hr/wave.xlsx"),
        format="xlsx",
        sheet_name="Wave",
        encoding=None,
        delimiter=None,
        header_row=1,
        headers=tuple(headers),
        rows=[InputRow(index=i, number=i + 2, cells=tuple(r)) for i, r in enumerate(rows)],
        columns={Role.USER: 1, Role.SKU: 3},
        sha256="ab" * 32,
    )


def people(n: int) -> list[tuple[str, ...]]:
    return [(f"E{1000 + i}", f"user{i}@contoso.com", "Finance", "SPE_E5", f"note {i}") for i in range(n)]


def outcome(i: int, status: Outcome, **kw: object) -> RowResult:
    base: dict[str, object] = {
        "action": "assign SPE_E5",
        "time": T0 + timedelta(seconds=i),
        "before": "SPE_E3",
        "after": "SPE_E3, SPE_E5" if status is Outcome.APPLIED else "SPE_E3",
    }
    if status is Outcome.APPLIED:
        base["request_id"] = f"req-{i}"
    if status is Outcome.FAILED:
        base |= {"code": "CountViolation", "message": "No seats left.", "fix": "Free seats.", "request_id": f"req-{i}"}
    if status is Outcome.SKIPPED:
        base |= {"code": "USER_NOT_FOUND", "message": "No such user.", "fix": "Check the address.", "time": None}
    if status is Outcome.NOT_RUN:
        base |= {"message": "The run stopped first.", "time": None}
    base.update(kw)
    return RowResult(i, i + 2, status, **base)  # type: ignore[arg-type]


#: The status of row i in the standard 10-row run.
STATUSES = (
    Outcome.APPLIED,
    Outcome.APPLIED,
    Outcome.FAILED,
    Outcome.UNCHANGED,
    Outcome.SKIPPED,
    Outcome.APPLIED,
    Outcome.NOT_RUN,
    Outcome.APPLIED,
    Outcome.FAILED,
    Outcome.UNCHANGED,
)


def run(rows: Sequence[Sequence[str]] | None = None, statuses: Sequence[Outcome] = STATUSES, **kw: object) -> RunResult:
    s = sheet(rows if rows is not None else people(len(statuses)))
    fields: dict[str, object] = {
        "run_id": "run-1",
        "sheet": s,
        "rows": [outcome(i, st) for i, st in enumerate(statuses)],
        "started": T0,
        "finished": T0 + timedelta(seconds=95.5),
        "tenant": "contoso.onmicrosoft.com",
        "requests_sent": 7,
        "throttled": 2,
        "throttle_wait_s": 12.5,
        "seats_before": {"SPE_E5": 10, "SPE_E3": 40},
        "seats_after": {"SPE_E5": 14, "SPE_E3": 40},
        "purchased": {"SPE_E5": 20, "SPE_E3": 50},
        "pool_names": {"SPE_E5": "Microsoft 365 E5", "SPE_E3": "Microsoft 365 E3"},
        "touched": frozenset({"SPE_E5"}),
    }
    fields.update(kw)
    return RunResult(**fields)  # type: ignore[arg-type]


def finding(code: str, message: str, fix: str = "", severity: Severity = Severity.ERROR) -> RowFinding:
    return RowFinding(code, severity, message, fix)


def checked(row: int, status: RequestStatus, *findings: RowFinding, sku: str = "SPE_E5") -> CheckedRequest:
    req = LicenseRequest(row, row + 2, f"user{row}@contoso.com", Action.ASSIGN, sku)
    return CheckedRequest(req, status, list(findings), sku_id=E5 if sku == "SPE_E5" else E3)


def snapshot() -> TenantSnapshot:
    skus = {
        E3: Sku(E3, "SPE_E3", "User", "Enabled", 50, 40),
        E5: Sku(E5, "SPE_E5", "User", "Enabled", 12, 10),
    }
    return TenantSnapshot("tenant-id", skus, {}, {}, T0)


def validation(
    rows: Sequence[Sequence[str]],
    requests: Sequence[CheckedRequest],
    capacity: Sequence[CapacityLine] | None = None,
    policy: ShortfallPolicy = ShortfallPolicy.STOP,
) -> Validation:
    cap = (
        list(capacity)
        if capacity is not None
        else [CapacityLine(E5, "SPE_E5", 12, 10, 1, 4, 1), CapacityLine(E3, "SPE_E3", 50, 40, 0, 0, 1)]
    )
    return Validation(sheet(rows), list(requests), cap, snapshot(), policy)
