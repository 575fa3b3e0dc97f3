"""Planning membership changes: READY rows -> Graph writes. Pure; no I/O.

- Adds: one ``PATCH /groups/{id}`` with ``members@odata.bind`` per group per 20 users (Graph's limit per
  request, group-post-members.md), in the order of the rows. One write serves up to 20 rows
  (``Operation.rows``). Keys ``{groupId}/addMembers/{n}`` (n counts the group's chunks: stable for one plan).
- Removes: one ``DELETE /groups/{id}/members/{userId}/$ref`` per user (Graph has no bulk removal), before the
  adds, so the seats they free are on their way back first. Keys ``{groupId}/removeMember/{userId}``.
- ``before``/``after`` stay empty: a write serves many users, each with their own licenses; the results take
  each row's before from validation and its after from the member's processed license state.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote

from ...models import Action, Operation, OpKind, RequestStatus, SeatChange, TenantSnapshot
from .records import CheckedGroup

MAX_MEMBERS_PER_PATCH = 20
DIRECTORY_OBJECTS = "https://graph.microsoft.com/v1.0/directoryObjects/"


def member_ref(user_id: str) -> str:
    return DIRECTORY_OBJECTS + user_id


def members_of(op: Operation) -> list[str]:
    """The user ids an add-members operation binds (from its body)."""
    refs = op.body.get("members@odata.bind")
    if not isinstance(refs, list | tuple):
        return []
    return [str(r).rstrip("/").rsplit("/", 1)[-1].lower() for r in refs]


def removed_member(op: Operation) -> str:
    """The user id a remove-member operation takes out (``DELETE /groups/{id}/members/{userId}/$ref``)."""
    return unquote(op.url.rstrip("/").split("/")[-2]).lower()


def op_members(op: Operation) -> list[str]:
    """The user ids a membership operation adds or removes; [] for any other operation."""
    if op.kind is OpKind.ADD_MEMBERS:
        return members_of(op)
    return [removed_member(op)] if op.kind is OpKind.REMOVE_MEMBER else []


def add_members_ops(group_id: str, group_name: str, users: Sequence[tuple[str, tuple[int, ...]]],
                    *, first_chunk: int = 0) -> list[Operation]:
    """``users``: (user id, rows it serves) in order -> PATCH operations of up to 20 users each."""
    ops: list[Operation] = []
    for n, i in enumerate(range(0, len(users), MAX_MEMBERS_PER_PATCH), start=first_chunk):
        chunk = users[i : i + MAX_MEMBERS_PER_PATCH]
        rows = tuple(sorted({r for _u, rs in chunk for r in rs}))
        ops.append(Operation(
            key=f"{group_id}/{OpKind.ADD_MEMBERS.value}/{n}", kind=OpKind.ADD_MEMBERS, target_id=group_id,
            target=group_name, method="PATCH", url=f"/groups/{quote(group_id, safe='')}",
            body={"members@odata.bind": [member_ref(u) for u, _rs in chunk]}, rows=rows))
    return ops


def remove_member_op(group_id: str, group_name: str, user_id: str, rows: tuple[int, ...]) -> Operation:
    return Operation(
        key=f"{group_id}/{OpKind.REMOVE_MEMBER.value}/{user_id}", kind=OpKind.REMOVE_MEMBER, target_id=group_id,
        target=group_name, method="DELETE",
        url=f"/groups/{quote(group_id, safe='')}/members/{quote(user_id, safe='')}/$ref", body={}, rows=rows)


def plan_groups(checked: Sequence[object], snapshot: TenantSnapshot) -> tuple[list[Operation], list[SeatChange]]:
    adds: dict[str, dict[str, list[int]]] = {}
    removes: dict[str, dict[str, list[int]]] = {}
    takes: dict[str, int] = {}
    frees: dict[str, int] = {}
    for c in checked:
        if not isinstance(c, CheckedGroup) or c.status is not RequestStatus.READY:
            continue
        assert c.group_id is not None and c.user_id is not None
        where = adds if c.request.action is Action.ASSIGN else removes
        where.setdefault(c.group_id, {}).setdefault(c.user_id, []).append(c.request.row)
        for s in c.gains:
            takes[s] = takes.get(s, 0) + 1
        for s in c.loses:
            frees[s] = frees.get(s, 0) + 1
    ops: list[Operation] = []
    for gid, users in removes.items():
        name = snapshot.groups[gid].display_name if gid in snapshot.groups else gid
        ops.extend(remove_member_op(gid, name, uid, tuple(rows)) for uid, rows in users.items())
    for gid, users in adds.items():
        name = snapshot.groups[gid].display_name if gid in snapshot.groups else gid
        ops.extend(add_members_ops(gid, name, [(u, tuple(rs)) for u, rs in users.items()]))
    seats = [SeatChange(sku_id=s, part_number=snapshot.skus[s].part_number if s in snapshot.skus else s,
                        takes=takes.get(s, 0), frees=frees.get(s, 0)) for s in sorted(set(takes) | set(frees))]
    return ops, seats


def describe(operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
    """``Licensing - Microsoft 365 E3 (gives SPE_E3): add 45 users in 3 requests; remove 2 users in 2 requests``."""
    per: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for op in operations:
        if op.kind is OpKind.ADD_MEMBERS:
            p = per.setdefault(op.target_id, [0, 0, 0, 0])
            p[0] += len(members_of(op))
            p[1] += 1
        elif op.kind is OpKind.REMOVE_MEMBER:
            p = per.setdefault(op.target_id, [0, 0, 0, 0])
            p[2] += 1
        else:
            continue
        names[op.target_id] = op.target
    lines = []
    for gid, (a, ar, r, _x) in per.items():
        g = snapshot.groups.get(gid)
        gives = ", ".join(snapshot.skus[s].part_number if s in snapshot.skus else s for s, _ in g.licenses) if g else ""
        parts = []
        if a:
            parts.append(f"add {a} users in {ar} request{'s' if ar != 1 else ''} (up to 20 per request)")
        if r:
            parts.append(f"remove {r} users in {r} request{'s' if r != 1 else ''}")
        lines.append(f"{names[gid]}{f' (gives {gives})' if gives else ''}: {'; '.join(parts)}")
    return lines


__all__ = ["MAX_MEMBERS_PER_PATCH", "add_members_ops", "describe", "member_ref", "members_of", "op_members",
           "plan_groups", "remove_member_op", "removed_member"]
