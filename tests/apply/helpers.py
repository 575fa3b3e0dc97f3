"""Hand-built plans for journal and engine unit tests (no sheet file, no tenant)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from batch.models import (
    Action,
    CheckedRequest,
    InputRow,
    LicenseRequest,
    Operation,
    OpKind,
    Plan,
    RequestStatus,
    Role,
    Sheet,
    Sku,
    TenantSnapshot,
    User,
    Validation,
)

E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
E5 = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"


def user(i: int, *, assigned: tuple[str, ...] = (), location: str | None = "DE") -> User:
    return User(
        id=f"00000000-0000-0000-0000-{i:012d}",
        upn=f"user{i}@contoso.example",
        mail=None,
        usage_location=location,
        account_enabled=True,
        user_type="Member",
        assigned=assigned,
        states=(),
    )


def small_plan(n: int = 3, *, with_location: bool = True) -> Plan:
    """n rows: row i assigns E5 to user i; user 0 also needs a usage location (PATCH + dependent assign)."""
    users = [user(i, location=None if (with_location and i == 0) else "DE") for i in range(n)]
    rows = [InputRow(index=i, number=i + 2, cells=(u.upn, "SPE_E5", "assign")) for i, u in enumerate(users)]
    sheet = Sheet(
        path=Path("wave.csv"),
        format="csv",
        sheet_name=None,
        encoding="utf-8",
        delimiter=",",
        header_row=1,
        headers=("User", "License", "Action"),
        rows=rows,
        columns={Role.USER: 0, Role.SKU: 1, Role.ACTION: 2},
        sha256="ab" * 32,
    )
    skus = {
        E5: Sku(sku_id=E5, part_number="SPE_E5", applies_to="User", capability_status="Enabled", enabled=100,
                consumed=10),
        E3: Sku(sku_id=E3, part_number="SPE_E3", applies_to="User", capability_status="Enabled", enabled=100,
                consumed=20),
    }
    snap = TenantSnapshot(tenant_id="t", skus=skus, users={u.id: u for u in users}, groups={},
                          taken_at=datetime.now(UTC))
    requests = []
    ops: list[Operation] = []
    for i, u in enumerate(users):
        loc = "DE" if (with_location and i == 0) else None
        req = LicenseRequest(row=i, row_number=i + 2, user=u.upn, action=Action.ASSIGN, sku="SPE_E5",
                             usage_location=loc)
        requests.append(CheckedRequest(request=req, status=RequestStatus.READY, findings=[], user_id=u.id,
                                       sku_id=E5, usage_location=loc))
        dep = None
        if loc:
            dep = f"{u.id}/setUsageLocation"
            ops.append(Operation(key=dep, kind=OpKind.SET_USAGE_LOCATION, target_id=u.id, target=u.upn,
                                 method="PATCH", url=f"/users/{u.id}", body={"usageLocation": loc}, rows=(i,)))
        ops.append(Operation(key=f"{u.id}/assignLicense", kind=OpKind.ASSIGN_LICENSE, target_id=u.id, target=u.upn,
                             method="POST", url=f"/users/{u.id}/assignLicense",
                             body={"addLicenses": [{"skuId": E5, "disabledPlans": []}], "removeLicenses": []},
                             rows=(i,), depends_on=dep, add=((E5, ()),), remove=(), before=(), after=(E5,)))
    validation = Validation(sheet=sheet, requests=requests, capacity=[], snapshot=snap)
    return Plan(operations=ops, seats=[], validation=validation)
