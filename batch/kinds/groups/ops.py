"""Where membership writes go, how their effect is read back, and how a member's licensing is observed.

- read back: the group's member ids (``GET /groups/{id}/members?$select=id``, paged);
- an add of up to 20 that Graph refused with 400 (one of them is a member already: Graph refuses the whole
  PATCH, "One or more added object references already exist") is re-planned without the members already in
  the group (:meth:`_AddMembers.amend`) and sent again; when none of them is a member the 400 stands. We do not
  fall back to one ``$ref`` POST per user: that would spend up to 20 writes where one does;
- after the writes: each member's ``licenseAssignmentStates`` for the group tell how licensing ended
  (:func:`observe`): ``Active`` -> done, ``Error`` (CountViolation, MutuallyExclusiveViolation, ...) -> failed,
  no state from the group yet -> pending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ...errors import TenantError
from ...models import Api, Operation, OpKind, User
from .plan import member_ref, members_of, removed_member
from .read import direct_users, member_ids, read_groups

if TYPE_CHECKING:  # the journal lives in batch.apply, which imports the kinds: import it where it is used
    from ...apply.journal import Observation, OpRecord

#: What to do about each licensing error a group may leave on a member.
ERROR_FIXES: dict[str, tuple[str, str]] = {
    "CountViolation": ("no seat of {sku} was left when Entra processed the group",
                       "Buy or free {sku} seats; Entra retries the group's members on its own (or reprocess the "
                       "group), then run 'license-batch status {run}'."),
    "MutuallyExclusiveViolation": ("{sku} has service plans that conflict with a license the user already holds",
                                   "Disable the conflicting plan on the group's assignment or remove the other "
                                   "license from the user, then reprocess the group."),
    "DependencyViolation": ("a service plan of {sku} needs another plan the user does not have",
                            "Give the user the license the plan depends on, or enable it, then reprocess the group."),
    "ProhibitedInUsageLocationViolation": ("{sku} cannot be used in the user's usage location (or it is not set)",
                                           "Set the user's usage location, then reprocess the group."),
    "UniquenessViolation": ("{sku} takes a unique value the user's account conflicts with",
                            "Correct the user's attributes, then reprocess the group."),
    "Other": ("Entra could not give {sku}", "Look at the group's licensing errors in the Entra admin center."),
}


def _members(tenant: Any, target_ids: Sequence[str]) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for gid in target_ids:
        try:
            out[gid] = member_ids(tenant.graph, gid)
        except TenantError as e:
            if e.status in (400, 404):
                continue  # the group is gone: re-sending gets Graph's own answer
            raise
    return out


class _AddMembers:
    op_kind = OpKind.ADD_MEMBERS
    api = Api.GRAPH
    prerequisite = False
    what = "add the members"

    def read_back(self, tenant: Any, target_ids: Sequence[str]) -> Mapping[str, Any]:
        return _members(tenant, target_ids)

    def in_effect(self, op: Operation, state: Any) -> bool:
        return isinstance(state, frozenset) and all(u in state for u in members_of(op))

    def amend(self, op: Operation, state: Any) -> Operation | None:
        """The operation without the users that are members already; None when that changes nothing."""
        if not isinstance(state, frozenset):
            return None
        users = members_of(op)
        left = [u for u in users if u not in state]
        if len(left) == len(users) or not left:
            return None
        return replace(op, body={"members@odata.bind": [member_ref(u) for u in left]})


class _RemoveMember:
    op_kind = OpKind.REMOVE_MEMBER
    api = Api.GRAPH
    prerequisite = False
    what = "remove the member"

    def read_back(self, tenant: Any, target_ids: Sequence[str]) -> Mapping[str, Any]:
        return _members(tenant, target_ids)

    def in_effect(self, op: Operation, state: Any) -> bool:
        user = removed_member(op)
        return isinstance(state, frozenset) and user not in state


OP_HANDLERS = (_AddMembers(), _RemoveMember())

#: From this many added rows on, a group's members are paged (999 per request) instead of read 20 per $batch.
PAGE_MEMBERS_FROM = 200


def _read_states(tenant: Any, rows: Sequence[tuple[int, str, OpRecord]]) -> dict[str, User]:
    """The users of ``rows`` with their licenses: a big wave's group is paged (members with their states,
    999 a page), the rest read by id in $batch requests."""
    added: dict[str, set[str]] = {}
    for _r, uid, rec in rows:
        if rec.op.kind is OpKind.ADD_MEMBERS:
            added.setdefault(rec.op.target_id, set()).add(uid)
    out: dict[str, User] = {}
    for gid, uids in added.items():
        if len(uids) >= PAGE_MEMBERS_FROM:
            out.update((u.id, u) for u in direct_users(tenant.graph, gid) if u.id in uids)
    rest = sorted({uid for _r, uid, _rec in rows if uid not in out})
    if rest:
        out.update((u.id, u) for u in tenant.read_users(rest).values())
    return out


def observe(
    tenant: Any, records: Sequence[OpRecord], targets: Mapping[int, str], names: Mapping[str, str], run_id: str
) -> list[Observation]:
    """For every row of a succeeded membership write: how the group's licensing ended for its user."""
    from ...apply.journal import Observation, OpState
    rows: list[tuple[int, str, OpRecord]] = []  # (row, user id, record)
    for rec in records:
        if rec.state is not OpState.SUCCEEDED or rec.op.kind not in (OpKind.ADD_MEMBERS, OpKind.REMOVE_MEMBER):
            continue
        for r in rec.op.rows:
            uid = targets.get(r)
            if uid:
                rows.append((r, uid.lower(), rec))
    if not rows:
        return []
    groups = {g.id: g for gs in read_groups(tenant.graph, {rec.op.target_id for _r, _u, rec in rows}).values()
              for g in gs}
    users = _read_states(tenant, rows)
    out: list[Observation] = []
    for r, uid, rec in rows:
        gid = rec.op.target_id
        g = groups.get(gid)
        gname = g.display_name if g else rec.op.target
        user = users.get(uid)
        if user is None:
            out.append(Observation(r, uid, "failed", "user-gone", f"The user {uid} no longer exists.", ""))
            continue
        held = ", ".join(names.get(s, s) for s in user.assigned)
        mine = [s for s in user.states if s.assigned_by_group == gid]
        skus = [s for s, _ in g.licenses] if g else [s.sku_id for s in mine]
        if rec.op.kind is OpKind.REMOVE_MEMBER:
            if mine:
                out.append(Observation(r, uid, "pending", "group-processing-pending",
                                       f"Removed from '{gname}'; Entra has not taken the group's licenses away yet.",
                                       f"Run 'license-batch status {run_id}' later.", held))
            else:
                out.append(Observation(r, uid, "done", "", "", "", held))
            continue
        if not skus:
            out.append(Observation(r, uid, "done", "", f"Added to '{gname}' (it gives no license).", "", held))
            continue
        errors = [s for s in mine if s.state == "Error"]
        done = {s.sku_id for s in mine if s.state in ("Active", "ActiveWithError")}
        if errors:
            e = errors[0]
            sku = names.get(e.sku_id, e.sku_id)
            why, fix = ERROR_FIXES.get(e.error, ERROR_FIXES["Other"])
            out.append(Observation(r, uid, "failed", e.error,
                                   f"Added to '{gname}', but its license {sku} is in state Error ({e.error}): "
                                   f"{why.format(sku=sku)}. The user has no {sku} from the group.",
                                   fix.format(sku=sku, run=run_id), held))
        elif all(s in done for s in skus):
            out.append(Observation(r, uid, "done", "", "", "", held))
        else:
            waiting = ", ".join(names.get(s, s) for s in skus if s not in done)
            out.append(Observation(r, uid, "pending", "group-processing-pending",
                                   f"Added to '{gname}'; Entra has not processed {waiting} for this user yet.",
                                   f"Run 'license-batch status {run_id}' later to read the outcome.", held))
    return out


__all__ = ["ERROR_FIXES", "OP_HANDLERS", "observe"]
