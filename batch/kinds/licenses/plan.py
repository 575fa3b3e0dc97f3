"""Planning for the licenses kind: READY users-to-SKU requests -> the exact Graph writes. Pure; no I/O.

Rules:

- All READY requests of one user merge into ONE ``assignLicense`` operation: adds, removes and replace pairs
  together, so a swap is atomic (replace A -> B is ``removeLicenses [A]`` + ``addLicenses [B]`` in one call).
- Each added SKU's ``disabledPlans`` = what the user already has disabled on their DIRECT assignment of that
  SKU ∪ what the sheet asks (the tool never silently re-enables a plan). Sorted, so the body is deterministic.
  Both ``addLicenses`` and ``removeLicenses`` are always present (Graph needs both).
- A usage location to set becomes a ``PATCH /users/{id}`` operation that the user's ``assignLicense`` depends on
  (``Operation.depends_on``) when that call adds a license.
- URLs are relative and use the user's object id, never the UPN (guest ``#EXT#`` UPNs 404 unencoded).
- Keys are ``f"{user_id}/{kind}"``: stable across runs of the same plan (the journal's identity).
- Operations come in the order of each user's first READY row; a user's PATCH comes before their assignLicense.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ...models import (
    Action,
    CheckedAddon,
    CheckedRequest,
    Operation,
    OpKind,
    RequestStatus,
    SeatChange,
    TenantSnapshot,
    User,
)


def operation_key(user_id: str, kind: OpKind) -> str:
    return f"{user_id}/{kind.value}"


@dataclass(slots=True)
class _UserPlan:
    user: User
    adds: dict[str, set[str]] = field(default_factory=dict)  # skuId -> disabled plans (merged)
    removes: list[str] = field(default_factory=list)
    assign_rows: set[int] = field(default_factory=set)
    location: str | None = None
    location_rows: set[int] = field(default_factory=set)


def _direct_disabled(user: User, sku_id: str) -> frozenset[str]:
    st = user.direct(sku_id)
    return st.disabled_plans if st is not None else frozenset()


def _inherited(user: User, sku_id: str) -> bool:
    return bool(user.holding(sku_id).groups)


def _holds(user: User, sku_id: str) -> bool:
    return user.holding(sku_id).held


def _collect(requests: Iterable[CheckedRequest | CheckedAddon], snapshot: TenantSnapshot) -> dict[str, _UserPlan]:
    users: dict[str, _UserPlan] = {}
    for c in requests:
        if not isinstance(c, CheckedRequest):
            continue
        if c.status is not RequestStatus.READY or c.user_id is None or c.sku_id is None:
            continue
        user = snapshot.users[c.user_id]
        up = users.get(c.user_id)
        if up is None:
            up = users[c.user_id] = _UserPlan(user)
        row = c.request.row
        if c.usage_location is not None:
            up.location = c.usage_location
            up.location_rows.add(row)
        action = c.request.action
        if action is Action.REMOVE:
            if c.sku_id not in up.removes:
                up.removes.append(c.sku_id)
            up.assign_rows.add(row)
        elif action is Action.REPLACE:
            if c.from_sku_id and c.from_sku_id not in up.removes:
                up.removes.append(c.from_sku_id)
            _add(up, c)
            up.assign_rows.add(row)
        elif action is Action.ASSIGN:
            existing = _direct_disabled(user, c.sku_id)
            if user.direct(c.sku_id) is None or not c.disabled_plan_ids <= existing:
                _add(up, c)
                up.assign_rows.add(row)
            # else: the row only sets the usage location
    return users


def _add(up: _UserPlan, c: CheckedRequest) -> None:
    assert c.sku_id is not None
    plans = up.adds.get(c.sku_id)
    if plans is None:
        plans = up.adds[c.sku_id] = set(_direct_disabled(up.user, c.sku_id))
    plans.update(c.disabled_plan_ids)


def plan_licenses(
    checked: Sequence[CheckedRequest | CheckedAddon], snapshot: TenantSnapshot
) -> tuple[list[Operation], list[SeatChange]]:
    """The Graph writes for the READY license requests, and the seats they take and free per SKU."""
    ops: list[Operation] = []
    takes: dict[str, int] = {}
    frees: dict[str, int] = {}
    for uid, up in _collect(checked, snapshot).items():
        user = up.user
        loc_key: str | None = None
        if up.location is not None:
            loc_key = operation_key(uid, OpKind.SET_USAGE_LOCATION)
            ops.append(
                Operation(
                    key=loc_key,
                    kind=OpKind.SET_USAGE_LOCATION,
                    target_id=uid,
                    target=user.upn,
                    method="PATCH",
                    url=f"/users/{uid}",
                    body={"usageLocation": up.location},
                    rows=tuple(sorted(up.location_rows)),
                    before=tuple(user.assigned),
                    after=tuple(user.assigned),
                )
            )
        if not up.adds and not up.removes:
            continue
        add = tuple((sku_id, tuple(sorted(plans))) for sku_id, plans in up.adds.items())
        remove = tuple(up.removes)
        before = tuple(user.assigned)
        lost = {s for s in remove if not _inherited(user, s)}
        after = tuple(s for s in before if s not in lost) + tuple(
            s for s in up.adds if s not in before and s not in lost
        )
        for s in up.adds:
            if not _holds(user, s):
                takes[s] = takes.get(s, 0) + 1
        for s in lost:
            if _holds(user, s):
                frees[s] = frees.get(s, 0) + 1
        ops.append(
            Operation(
                key=operation_key(uid, OpKind.ASSIGN_LICENSE),
                kind=OpKind.ASSIGN_LICENSE,
                target_id=uid,
                target=user.upn,
                method="POST",
                url=f"/users/{uid}/assignLicense",
                body={
                    "addLicenses": [{"skuId": s, "disabledPlans": list(p)} for s, p in add],
                    "removeLicenses": list(remove),
                },
                rows=tuple(sorted(up.assign_rows)),
                depends_on=loc_key if add else None,
                add=add,
                remove=remove,
                before=before,
                after=after,
            )
        )
    seats = [
        SeatChange(sku_id=s, part_number=_part(snapshot, s), takes=takes.get(s, 0), frees=frees.get(s, 0))
        for s in set(takes) | set(frees)
    ]
    seats.sort(key=lambda c: (c.part_number.upper(), c.sku_id))
    return ops, seats



def _part(snapshot: TenantSnapshot, sku_id: str) -> str:
    sku = snapshot.skus.get(sku_id)
    return sku.part_number if sku else sku_id


def _plan_names(snapshot: TenantSnapshot) -> dict[str, str]:
    """servicePlanId -> servicePlanName across the tenant's SKUs (a plan id names one plan everywhere)."""
    return {p.id: p.name for s in snapshot.skus.values() for p in s.service_plans}


def describe(operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
    """One line per user, in plan order: ``alice@contoso.com: + SPE_E5 (disabled: X), - SPE_E3; set usage
    location DE``."""
    plan_names = _plan_names(snapshot)
    order: list[str] = []
    parts: dict[str, list[str]] = {}
    location: dict[str, str] = {}
    upn: dict[str, str] = {}
    for op in operations:
        if op.target_id not in parts:
            order.append(op.target_id)
            parts[op.target_id] = []
            upn[op.target_id] = op.target
        if op.kind is OpKind.SET_USAGE_LOCATION:
            location[op.target_id] = str(op.body.get("usageLocation", ""))
            continue
        for sku_id, disabled in op.add:
            text = f"+ {_part(snapshot, sku_id)}"
            if disabled:
                text += f" (disabled: {', '.join(sorted(plan_names.get(d, d) for d in disabled))})"
            parts[op.target_id].append(text)
        for sku_id in op.remove:
            parts[op.target_id].append(f"- {_part(snapshot, sku_id)}")
    lines = []
    for uid in order:
        text = ", ".join(parts[uid])
        if uid in location:
            text = f"{text}; set usage location {location[uid]}" if text else f"set usage location {location[uid]}"
        lines.append(f"{upn[uid]}: {text}")
    return lines
