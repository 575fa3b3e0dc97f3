"""Seats: the licenses kind's capacity pools (one per SKU), counted on the net change.

``needed`` counts users who will gain the SKU (a user who holds it directly or through a group needs no
seat); ``freed`` counts valid removals and replace-froms that make a user lose it. Short when
``needed - freed > enabled - consumed - reserve``. The policy (stop / partial) is applied by
:func:`batch.kinds.capacity.apply_policy`, the same way as for add-ons.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from ...models import CapacityLine, RequestStatus, ShortfallPolicy, TenantSnapshot
from ..capacity import Demand, apply_policy
from .checks import Work


def capacity(
    works: Sequence[Work],
    snapshot: TenantSnapshot,
    policy: ShortfallPolicy,
    reserve_of: Callable[[int], int],
) -> list[CapacityLine]:
    """Capacity lines for every SKU the ready requests touch; marks the requests the policy refuses
    ``OVER_CAPACITY`` with their finding. ``Validation.capacity`` always shows the sheet's full demand."""
    needed: dict[str, int] = defaultdict(int)
    freed: dict[str, int] = defaultdict(int)
    for w in works:
        if w.status is not RequestStatus.READY:
            continue
        if w.gains:
            needed[w.gains] += 1
        if w.frees:
            freed[w.frees] += 1
    lines: list[CapacityLine] = []
    for sku_id in set(needed) | set(freed):
        sku = snapshot.skus[sku_id]
        lines.append(
            CapacityLine(
                sku_id=sku_id,
                part_number=sku.part_number,
                enabled=sku.enabled,
                consumed=sku.consumed,
                reserve=reserve_of(sku.enabled),
                needed=needed.get(sku_id, 0),
                freed=freed.get(sku_id, 0),
                label=sku.product_name or "",
            )
        )
    lines.sort(key=lambda c: (c.part_number.upper(), c.sku_id))
    demands = [
        Demand(
            index=i,
            row_number=w.req.row_number,
            priority=w.req.priority,
            pool=w.gains,
            amount=1 if w.gains else 0,
            frees=w.frees,
            frees_amount=1 if w.frees else 0,
            who=w.user.upn if w.user else w.req.user,
        )
        for i, w in enumerate(works)
        if w.status is RequestStatus.READY and (w.gains or w.frees)
    ]
    for i, finding in apply_policy(lines, demands, policy).items():
        works[i].status = RequestStatus.OVER_CAPACITY
        works[i].findings.append(finding)
    return lines
