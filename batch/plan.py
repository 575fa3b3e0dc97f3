"""Planning: turn a Validation into the exact writes apply will send. Pure; no I/O.

Each sheet's kind plans its own operations (``ChangeKind.plan``); this module joins them and renders the plan.
Nothing is planned for UNCHANGED, ERROR or OVER_CAPACITY requests; a refused wave (STOP and a pool short)
plans nothing at all. The licenses kind's rules (``batch.kinds.licenses.plan``):

- All READY requests of one user merge into ONE ``assignLicense`` operation: adds, removes and replace pairs
  together, so a swap is atomic (replace A -> B is ``removeLicenses [A]`` + ``addLicenses [B]`` in one call).
- Each added SKU's ``disabledPlans`` = what the user already has disabled on their DIRECT assignment of that
  SKU ∪ what the sheet asks (the tool never silently re-enables a plan; see ``batch.validate``). Sorted, so the
  body is deterministic. Both ``addLicenses`` and ``removeLicenses`` are always present (Graph needs both).
- A usage location to set becomes a ``PATCH /users/{id}`` operation that the user's ``assignLicense`` depends on
  (``Operation.depends_on``) when that call adds a license.
- URLs are relative and use the user's object id, never the UPN (guest ``#EXT#`` UPNs 404 unencoded).
- Keys are ``f"{user_id}/{kind}"``: stable across runs of the same plan (the journal's identity).
- Operations come in the order of each user's first READY row; a user's PATCH comes before their assignLicense.

Add-ons (``batch.kinds.addons.plan``): one absolute allocation request per environment.
"""

from __future__ import annotations

from ._gc import paused_gc
from .kinds import ChangeKind, kind_of
from .models import Api, Operation, OpKind, Plan, PlanOptions, SeatChange, TenantSnapshot, Validation


def operation_key(user_id: str, kind: OpKind) -> str:
    return f"{user_id}/{kind.value}"


def plan(validation: Validation, options: PlanOptions | None = None) -> Plan:
    """The operations that bring the tenant to what the sheets ask. Pure and deterministic."""
    options = options or PlanOptions()
    if validation.wave_refused:
        return Plan(operations=[], seats=[], validation=validation)
    ops: list[Operation] = []
    seats: list[SeatChange] = []
    with paused_gc():
        for k in _kinds(validation):
            o, s = k.plan(validation.requests, validation.snapshot, options)
            ops.extend(o)
            seats.extend(s)
    notes: list[str] = []
    if options.via_group:
        from .kinds.groups.via_group import via_group, via_group_lines

        ops, _n = via_group(ops, validation.snapshot, options.via_group)
        notes = via_group_lines(ops, validation.snapshot, options.via_group)
    return Plan(operations=ops, seats=seats, validation=validation, notes=notes)


def _kinds(validation: Validation) -> list[ChangeKind]:
    return [kind_of(k) for k in dict.fromkeys(s.kind for s in validation.sheets)]


# ---------------------------------------------------------------------------------------- rendering


def _part(snapshot: TenantSnapshot, sku_id: str) -> str:
    sku = snapshot.skus.get(sku_id)
    return sku.part_number if sku else sku_id


def describe_operations(p: Plan) -> list[str]:
    """One line per target, in plan order, for each kind (``alice@contoso.com: + SPE_E5, - SPE_E3; set usage
    location DE``; ``Sales Production: AI Builder credits (AI) 100 -> 500``)."""
    with paused_gc():
        out: list[str] = list(p.notes)
        kinds = _kinds(p.validation)
        if any(op.kind is OpKind.ADD_MEMBERS for op in p.operations) and kind_of("groups") not in kinds:
            kinds.append(kind_of("groups"))  # --via-group: license rows planned as group membership
        for k in kinds:
            out.extend(k.describe(p.operations, p.validation.snapshot))
            rules = getattr(k, "describe_rules", None)
            if rules is not None:
                out.extend(rules(p.validation.requests))
        return out


def describe_seats(p: Plan) -> list[str]:
    """Per SKU the sheet touches: seats taken and freed, and what is left afterwards."""
    v = p.validation
    caps = {c.sku_id: c for c in v.capacity}
    lines = []
    if v.wave_refused:
        for line in v.capacity:
            if line.short:
                lines.append(
                    f"{line.part_number}: needs {line.net} net, {line.available} available: short by {line.short}"
                )
        return lines
    for s in p.seats:
        sku = v.snapshot.skus.get(s.sku_id)
        cur = v.snapshot.currencies.get(s.sku_id) if sku is None else None
        text = f"{s.part_number}: takes {s.takes}, frees {s.frees}"
        left: int | None = None
        if sku is not None:
            left = sku.enabled - sku.consumed - s.takes + s.frees
        elif cur is not None:
            left = round(cur.purchased - cur.allocated) - s.takes + s.frees
        if left is not None:
            text += f", {left} free afterwards"
            c = caps.get(s.sku_id)
            if c is not None and c.reserve:
                text += f" (reserve {c.reserve})"
        lines.append(text)
    return lines


def render_plan(p: Plan, *, limit: int | None = None) -> list[str]:
    """Human-readable plan: a summary line, one line per user (at most ``limit``), then seats. Never prints."""
    v = p.validation
    if v.wave_refused:
        return [
            "Nothing will be applied: the wave is refused because a license or add-on is short (--on-shortfall stop).",
            *describe_seats(p),
        ]
    users = describe_operations(p)
    n_rows = len({r for op in p.operations for r in op.rows})
    lines = [f"{_count(len(p.operations), 'operation')} for {_targets(p.operations)}, serving "
             f"{_count(n_rows, 'row')}."]
    if limit is not None and len(users) > limit:
        lines += users[:limit]
        lines.append(f"... and {len(users) - limit} more")
    else:
        lines += users
    seats = describe_seats(p)
    if seats:
        lines.append("Seats:")
        lines += [f"  {s}" for s in seats]
    return lines


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


_GROUP_OPS = (OpKind.ADD_MEMBERS, OpKind.REMOVE_MEMBER)


def _targets(operations: list[Operation]) -> str:
    users = {op.target_id for op in operations if op.api is Api.GRAPH and op.kind not in _GROUP_OPS}
    groups = {op.target_id for op in operations if op.kind in _GROUP_OPS}
    envs = {op.target_id for op in operations if op.api is Api.POWERPLATFORM}
    parts = [_count(len(users), "user")] if users or not (envs or groups) else []
    if groups:
        parts.append(_count(len(groups), "group"))
    if envs:
        parts.append(_count(len(envs), "environment"))
    return " and ".join(parts)


__all__ = ["describe_operations", "describe_seats", "operation_key", "plan", "render_plan"]
