"""Hand-built tenant snapshots and requests for validation and planning tests (no server needed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from batch.models import (
    Action,
    Group,
    InputRow,
    LicenseRequest,
    LicenseState,
    Role,
    ServicePlan,
    Sheet,
    Sku,
    TenantSnapshot,
    User,
)

E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"
E5 = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
BP = "f245ecc8-75af-4f8e-b61f-27d8114de5f3"  # O365_BUSINESS_PREMIUM
F1 = "66b55226-6b4f-492c-910c-a3b7a3c9d993"  # SPE_F1
FLOW = "f30db892-07e9-47e9-837c-80727f46fd3d"  # company-wide (appliesTo Company)

EXCHANGE = "efb87545-963c-4e0d-99df-69c6916d9eb0"
TEAMS = "57ff2da0-773e-42df-b2af-ffb7a2317929"
SWAY = "a23b959c-7ce8-4e57-9140-b90eb88a9e97"
YAMMER = "7547a3fe-08ee-4ccb-b430-5077c5041653"

PLANS = (
    ServicePlan(EXCHANGE, "EXCHANGE_S_ENTERPRISE"),
    ServicePlan(TEAMS, "TEAMS1"),
    ServicePlan(SWAY, "SWAY"),
    ServicePlan(YAMMER, "YAMMER_ENTERPRISE"),
)

GROUP_SALES = "11111111-1111-1111-1111-111111111111"


def sku(
    part: str,
    sku_id: str,
    *,
    enabled: int = 100,
    consumed: int = 0,
    applies_to: str = "User",
    status: str = "Enabled",
    plans: tuple[ServicePlan, ...] | None = None,
) -> Sku:
    """By default the SKU has PLANS plus one plan of its own (``{part}_OWN``), as real products differ: two SKUs
    with the very same plans would be redundant together (``redundant-license``)."""
    if plans is None:
        plans = (*PLANS, ServicePlan(str(uuid.uuid5(uuid.NAMESPACE_URL, sku_id)), f"{part.upper()}_OWN"))
    return Sku(sku_id, part, applies_to, status, enabled, consumed, service_plans=plans)


def user(
    upn: str,
    *,
    uid: str | None = None,
    location: str | None = "US",
    enabled: bool = True,
    guest: bool = False,
    direct: Mapping[str, Iterable[str]] | None = None,
    groups: Mapping[str, str] | None = None,
) -> User:
    """``direct``: skuId -> disabled plan ids; ``groups``: skuId -> group id it is inherited from."""
    states = [LicenseState(s, frozenset(d)) for s, d in (direct or {}).items()]
    states += [LicenseState(s, frozenset(), assigned_by_group=g) for s, g in (groups or {}).items()]
    assigned = tuple(dict.fromkeys(s.sku_id for s in states))
    return User(
        id=uid or str(uuid.uuid5(uuid.NAMESPACE_DNS, upn)),
        upn=upn,
        mail=upn,
        usage_location=location,
        account_enabled=enabled,
        user_type="Guest" if guest else "Member",
        assigned=assigned,
        states=tuple(states),
    )


def snapshot(skus: Iterable[Sku], users: Iterable[User], groups: Iterable[Group] = ()) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id="tenant",
        skus={s.sku_id: s for s in skus},
        users={u.id: u for u in users},
        groups={g.id: g for g in [Group(GROUP_SALES, "Sales licensing"), *groups]},
        taken_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


HEADERS = ("User", "Action", "License", "From", "Disabled plans", "Usage location", "Priority")


def req(
    row: int,
    upn: str,
    action: Action | None,
    sku_text: str,
    *,
    from_sku: str | None = None,
    plans: tuple[str, ...] = (),
    location: str | None = None,
    priority: int | None = None,
) -> LicenseRequest:
    return LicenseRequest(
        row=row,
        row_number=row + 2,
        user=upn,
        action=action,
        sku=sku_text,
        from_sku=from_sku,
        disabled_plans=plans,
        usage_location=location,
        priority=priority,
    )


def sheet_for(requests: Iterable[LicenseRequest]) -> Sheet:
    rows = []
    seen: set[int] = set()
    for r in requests:
        if r.row in seen:
            continue
        seen.add(r.row)
        cells = (
            r.user,
            r.action.value if r.action else "",
            r.sku,
            r.from_sku or "",
            ";".join(r.disabled_plans),
            r.usage_location or "",
            "" if r.priority is None else str(r.priority),
        )
        rows.append(InputRow(r.row, r.row_number, cells))
    return Sheet(
        path=Path("wave.csv"),
        format="csv",
        sheet_name=None,
        encoding="utf-8",
        delimiter=",",
        header_row=1,
        headers=HEADERS,
        rows=rows,
        columns={
            Role.USER: 0,
            Role.ACTION: 1,
            Role.SKU: 2,
            Role.FROM_SKU: 3,
            Role.DISABLED_PLANS: 4,
            Role.USAGE_LOCATION: 5,
            Role.PRIORITY: 6,
        },
    )
