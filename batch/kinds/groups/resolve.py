"""Before validation: read the named groups (and their members) into the snapshot, and expand rule rows
(``batch.kinds.rules``: one line per user a ``Department=Sales`` row reaches)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...models import Sheet, TenantSnapshot
from ..rules import expand_rules
from .read import member_ids, read_groups
from .records import GroupRequest


def candidates(snapshot: TenantSnapshot, key: str) -> list[Any]:
    """The groups a cell names: by id, else by display name (case-insensitive)."""
    k = key.strip().lower()
    if not k:
        return []
    if k in snapshot.groups:
        return [snapshot.groups[k]]
    return sorted((g for g in snapshot.groups.values() if g.display_name.lower() == k), key=lambda g: g.id)


def resolve_groups(
    tenant: Any, sheet: Sheet, requests: list[GroupRequest], snapshot: TenantSnapshot
) -> list[GroupRequest]:
    graph = tenant.graph
    names = {r.group for r in requests if r.group}
    names |= {r.rule.value for r in requests if r.rule is not None and r.rule.attribute == "group"}
    found = read_groups(graph, names)
    for groups in found.values():
        for g in groups:
            snapshot.groups[g.id] = g
    # members of every group a row adds to or removes from (resolved uniquely)
    for gid in sorted({c[0].id for r in requests if len(c := candidates(snapshot, r.group)) == 1}):
        g = snapshot.groups[gid]
        if g.members is None:
            snapshot.groups[gid] = replace(g, members=member_ids(graph, gid))
    return expand_rules(graph, sheet, requests, snapshot, lambda r: r.rule)


__all__ = ["candidates", "resolve_groups"]
