"""Planning for the add-ons kind: one allocation request per environment, carrying every currency type the
sheet changes for it. Pure; no I/O.

Allocations are ABSOLUTE in every API version: the body says what the environment holds afterwards, so a
request sent twice does no harm. Which endpoint (cloud-facts, "Power Platform licensing API"):

- ``2022-03-01-preview`` (default; the one Microsoft's tutorials use):
  ``PATCH /licensing/environments/{id}/allocations?api-version=2022-03-01-preview``
- ``2024-10-01``: ``PATCH /licensing/allocationsByEnvironment?api-version=2024-10-01`` with environmentId in the body.

Both bodies are ``{"environmentId", "currencyAllocations": [{"currencyType", "allocated"}, ...]}``.
Keys are ``f"{environmentId}/allocateAddons"``; ``before``/``after`` are ``"AI=500"`` tokens, sorted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

from ...models import Api, CheckedAddon, CheckedRequest, Operation, OpKind, RequestStatus, SeatChange, TenantSnapshot
from .names import addon_label


def allocation_url(environment_id: str, api_version: str) -> str:
    if api_version == "2024-10-01":
        return f"/licensing/allocationsByEnvironment?api-version={api_version}"
    return f"/licensing/environments/{quote(environment_id, safe='')}/allocations?api-version={api_version}"


def allocation_body(environment_id: str, allocations: Mapping[str, int]) -> dict[str, object]:
    """The body of both endpoints: absolute values, sorted by currency type."""
    return {"environmentId": environment_id,
            "currencyAllocations": [{"currencyType": ct, "allocated": n} for ct, n in sorted(allocations.items())]}


def allocation_operation(environment_id: str, name: str, before: Mapping[str, int], after: Mapping[str, int],
                         rows: tuple[int, ...], api_version: str) -> Operation:
    """The one write that sets ``after`` on an environment (plan, reconcile and rollback all build it here)."""
    return Operation(key=f"{environment_id}/{OpKind.ALLOCATE_ADDONS.value}", kind=OpKind.ALLOCATE_ADDONS,
                     target_id=environment_id, target=name, method="PATCH",
                     url=allocation_url(environment_id, api_version), body=allocation_body(environment_id, after),
                     rows=rows, before=tokens(before), after=tokens(after), api=Api.POWERPLATFORM)


def tokens(allocations: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(f"{ct}={n}" for ct, n in sorted(allocations.items()))


def parse_tokens(items: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in items:
        ct, _, n = t.partition("=")
        if n.lstrip("-").isdigit():
            out[ct] = int(n)
    return out


def plan_addons(
    checked: Sequence[CheckedRequest | CheckedAddon], snapshot: TenantSnapshot, *, api_version: str
) -> tuple[list[Operation], list[SeatChange]]:
    per_env: dict[str, dict[str, int]] = {}
    before: dict[str, dict[str, int]] = {}
    rows: dict[str, set[int]] = {}
    for c in checked:
        if not isinstance(c, CheckedAddon) or c.status is not RequestStatus.READY:
            continue
        assert c.environment_id and c.currency_type and c.after is not None and c.before is not None
        per_env.setdefault(c.environment_id, {})[c.currency_type] = c.after
        before.setdefault(c.environment_id, {})[c.currency_type] = c.before
        rows.setdefault(c.environment_id, set()).add(c.request.row)
    ops: list[Operation] = []
    takes: dict[str, int] = {}
    frees: dict[str, int] = {}
    for env_id, alloc in per_env.items():
        env = snapshot.environments.get(env_id)
        ops.append(allocation_operation(env_id, env.display_name if env else env_id, before[env_id], alloc,
                                        tuple(sorted(rows[env_id])), api_version))
        for ct, n in alloc.items():
            delta = n - before[env_id][ct]
            if delta > 0:
                takes[ct] = takes.get(ct, 0) + delta
            elif delta < 0:
                frees[ct] = frees.get(ct, 0) - delta
    seats = [SeatChange(sku_id=ct, part_number=ct, takes=takes.get(ct, 0), frees=frees.get(ct, 0))
             for ct in sorted(set(takes) | set(frees))]
    return ops, seats


def describe(operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
    """``Sales Production: AI Builder credits (AI) 100 -> 500, Power Apps per app (AppPass) 0 -> 20``."""
    lines = []
    for op in operations:
        if op.kind is not OpKind.ALLOCATE_ADDONS:
            continue
        b, a = parse_tokens(op.before), parse_tokens(op.after)
        parts = [f"{addon_label(ct)} {b.get(ct, 0)} -> {n}" for ct, n in sorted(a.items())]
        lines.append(f"{op.target}: {', '.join(parts)}")
    return lines
