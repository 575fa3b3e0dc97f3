"""``apply --via-group NAME``: license rows planned as membership of a licensing group, 20 users per write.

Graph's write quota counts requests, and one ``PATCH /groups/{id}`` binds up to 20 members (cloud-facts,
"group-based licensing"), so a wave of one license moves up to 20x more users per write than ``assignLicense``.
It is the administrator's choice, never silent: the users end up with a license inherited from the group (not a
direct one), and ``plan`` says how many rows go through the group.

A user's assignLicense is replaced by membership only when it adds exactly what the group gives (the same
SKU, the same disabled plans), removes nothing and needs no usage location set first; every other operation
stays as planned. The group must be an assigned (not dynamic) group whose licenses are exactly that one SKU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ...errors import ConfigError
from ...models import Operation, OpKind, TenantSnapshot
from .plan import add_members_ops, members_of
from .read import member_ids, read_groups
from .resolve import candidates


def read_via_group(tenant: Any, snapshot: TenantSnapshot, name: str) -> None:
    """Read the group ``--via-group`` names (with its members) into the snapshot; ConfigError when unusable."""
    found = read_groups(tenant.graph, [name]).get(name.strip(), [])
    if not found:
        raise ConfigError(f"--via-group: no group '{name}' in the tenant.",
                          fix="Give the licensing group's exact display name or its object id.")
    if len(found) > 1:
        raise ConfigError(f"--via-group: {len(found)} groups are called '{name}': "
                          f"{', '.join(g.id for g in found)}.", fix="Give the object id of the one you mean.")
    g = found[0]
    if g.dynamic:
        raise ConfigError(f"--via-group: '{g.display_name}' has dynamic membership ({g.membership_rule}); it cannot "
                          "take members.", fix="Use an assigned group that carries the license.")
    if len(g.licenses) != 1:
        gives = ", ".join(snapshot.skus[s].part_number if s in snapshot.skus else s for s, _ in g.licenses)
        raise ConfigError(f"--via-group: '{g.display_name}' gives {gives or 'no license'}; a wave goes through a "
                          "group that gives exactly the one license the rows add.",
                          fix="Use a group with exactly that license assigned.")
    snapshot.groups[g.id] = replace(g, members=member_ids(tenant.graph, g.id))


def via_group(operations: Sequence[Operation], snapshot: TenantSnapshot, name: str) -> tuple[list[Operation], int]:
    """The operations with the eligible assignLicense calls replaced by membership of the group (and how many
    users go through it). The group must have been read (:func:`read_via_group`)."""
    found = candidates(snapshot, name)
    if len(found) != 1:
        return list(operations), 0
    g = found[0]
    sku, plans = g.licenses[0]
    wanted = ((sku, tuple(sorted(plans))),)
    users: list[tuple[str, tuple[int, ...]]] = []
    out: list[Operation] = []
    first_at: int | None = None
    for op in operations:
        eligible = (op.kind is OpKind.ASSIGN_LICENSE and not op.remove and op.depends_on is None
                    and tuple((s, tuple(sorted(p))) for s, p in op.add) == wanted
                    and not (g.members and op.target_id in g.members))
        if eligible:
            if first_at is None:
                first_at = len(out)
            users.append((op.target_id, op.rows))
        else:
            out.append(op)
    if first_at is None:
        return out, 0
    out[first_at:first_at] = add_members_ops(g.id, g.display_name, users)
    return out, len(users)


def via_group_lines(operations: Sequence[Operation], snapshot: TenantSnapshot, name: str | None) -> list[str]:
    if not name:
        return []
    adds = [op for op in operations if op.kind is OpKind.ADD_MEMBERS]
    n = sum(len(members_of(op)) for op in adds)
    found = candidates(snapshot, name)
    if not found or not n:
        return [f"--via-group '{name}': no row adds exactly what the group gives; every row is assigned directly."]
    g = found[0]
    part = snapshot.skus[g.licenses[0][0]].part_number if g.licenses and g.licenses[0][0] in snapshot.skus else ""
    return [f"--via-group: {n} users get {part} as members of '{g.display_name}' ({len(adds)} writes of up to 20), "
            "not as a direct assignment: their license is inherited from the group, and each row's outcome is the "
            "license state Entra gives them once it has processed the group."]


__all__ = ["read_via_group", "via_group", "via_group_lines"]
