"""The state of each target an operation changes, as the journal keeps it for rollback.

A user: ``{"usageLocation", "direct": {skuId: [disabled plan ids]}, "assigned": [skuIds]}`` (direct
assignments only: group-held licenses are not changed by a run, so they are not restored by a rollback).
An environment: ``{"allocations": {currencyType: allocated}}``.
A group a run adds members to or removes them from: ``{"members": {userId: was a direct member}}`` for exactly
the users the run's operations on it name (never the whole group). Known from the snapshot when it read the
group's members (the groups kind and ``--via-group`` do), else from ``snapshot.memberships``
(:func:`read_prior_memberships` reads it before the journal is written).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from ..models import Api, Operation, OpKind, Plan, TenantSnapshot, User


def user_state(user: User) -> dict[str, Any]:
    direct = {s.sku_id: sorted(s.disabled_plans) for s in user.states
              if s.assigned_by_group is None and s.state != "Error"}
    for sid in user.assigned:
        if sid not in direct and not user.holding(sid).groups:
            direct[sid] = []
    return {"usageLocation": user.usage_location, "direct": dict(sorted(direct.items())),
            "assigned": sorted(user.assigned)}


def environment_state(allocations: Mapping[str, int]) -> dict[str, Any]:
    return {"allocations": {ct: int(n) for ct, n in sorted(allocations.items())}}


MEMBERSHIP_KINDS = (OpKind.ADD_MEMBERS, OpKind.REMOVE_MEMBER)


def op_members(op: Operation) -> list[str]:
    """The user ids a membership operation adds or removes (lower-case); [] for other operations."""
    from ..kinds.groups.plan import op_members as members

    return members(op)


def was_member(snapshot: TenantSnapshot, group_id: str, user_id: str) -> bool | None:
    """Whether the snapshot knows ``user_id`` as a direct member of ``group_id`` (None: it does not know)."""
    known = snapshot.memberships.get(group_id, {})
    if user_id in known:
        return known[user_id]
    g = snapshot.groups.get(group_id)
    if g is not None and g.members is not None:
        return user_id in g.members
    return None


def unknown_memberships(plan: Plan) -> dict[str, set[str]]:
    """group id -> the users its membership operations name whose membership the plan's snapshot does not know."""
    snap = plan.validation.snapshot
    out: dict[str, set[str]] = {}
    for op in plan.operations:
        for uid in op_members(op):
            if was_member(snap, op.target_id, uid) is None:
                out.setdefault(op.target_id, set()).add(uid)
    return out


def read_prior_memberships(tenant: Any, plan: Plan) -> None:
    """Before a run is journalled: read the membership the snapshot lacks of the users its membership operations
    name (a plan whose groups were not read, e.g. by another planner) into ``snapshot.memberships``."""
    read_missing_memberships(tenant, plan.validation.snapshot, unknown_memberships(plan))


def read_missing_memberships(tenant: Any, snapshot: TenantSnapshot, wanted: Mapping[str, Iterable[str]]) -> None:
    """Read into ``snapshot.memberships`` whether each user of ``wanted`` (group id -> user ids) is a direct
    member of the group, where the snapshot does not know it yet."""
    todo = {gid: {u for u in users if was_member(snapshot, gid, u) is None} for gid, users in wanted.items()}
    todo = {gid: users for gid, users in todo.items() if users}
    graph = getattr(tenant, "graph", None)
    if not todo or graph is None:
        return
    from ..kinds.groups.membership import read_memberships

    for gid, now in read_memberships(graph, todo).items():
        snapshot.memberships.setdefault(gid, {}).update(now)


def prior_states(plan: Plan) -> list[tuple[str, str, dict[str, Any]]]:
    """(api, target id, state) of every target the plan's operations change, as the snapshot saw it."""
    return states_of(plan.operations, plan.validation.snapshot)


def states_of(ops: Iterable[Operation], snapshot: TenantSnapshot) -> list[tuple[str, str, dict[str, Any]]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for op in ops:
        key = (str(op.api), op.target_id)
        if op.kind in MEMBERSHIP_KINDS:
            members = out.setdefault(key, {"members": {}})["members"]
            for uid in op_members(op):
                if uid not in members:
                    known = was_member(snapshot, op.target_id, uid)
                    # not known (not read): what the plan implies (it adds non-members, removes members)
                    members[uid] = known if known is not None else op.kind is OpKind.REMOVE_MEMBER
            continue
        if key in out:
            continue
        if op.api is Api.GRAPH:
            u = snapshot.users.get(op.target_id)
            if u is not None:
                out[key] = user_state(u)
        else:
            out[key] = environment_state(snapshot.allocations.get(op.target_id, {}))
    return [(a, t, s) for (a, t), s in out.items()]


def state_of(api: str, target_id: str, snapshot: TenantSnapshot, like: Mapping[str, Any] | None = None
             ) -> dict[str, Any] | None:
    """A target's state in a snapshot (None: a user the snapshot does not hold). ``like``: the target's state
    as recorded earlier; a group's (``{"members": ...}``) says whose membership is wanted: the same users' now
    (:func:`read_missing_memberships` first; a membership the snapshot still does not know counts as unchanged)."""
    if like is not None and "members" in like:
        was = like["members"]
        now = {uid: was_member(snapshot, target_id, uid) for uid in was}
        return {"members": {uid: bool(was[uid]) if m is None else m for uid, m in now.items()}}
    if api == str(Api.GRAPH):
        u = snapshot.users.get(target_id)
        return user_state(u) if u is not None else None
    return environment_state(snapshot.allocations.get(target_id, {}))


def expected_after(prior: Mapping[str, Any], ops: Iterable[Operation]) -> dict[str, Any]:
    """A target's state once the given (succeeded) operations took effect on ``prior``."""
    if "members" in prior:
        members = dict(prior["members"])
        for op in ops:
            for uid in op_members(op):
                members[uid] = op.kind is OpKind.ADD_MEMBERS
        return {"members": members}
    if "allocations" in prior:
        alloc = dict(prior["allocations"])
        for op in ops:
            if op.kind is OpKind.ALLOCATE_ADDONS:
                entries: Any = op.body.get("currencyAllocations", ())
                for c in entries:
                    alloc[str(c["currencyType"])] = int(c["allocated"])
        return environment_state(alloc)
    direct = {k: list(v) for k, v in prior.get("direct", {}).items()}
    loc = prior.get("usageLocation")
    for op in ops:
        if op.kind is OpKind.SET_USAGE_LOCATION:
            loc = op.body.get("usageLocation")
        elif op.kind is OpKind.ASSIGN_LICENSE:
            for sid in op.remove:
                direct.pop(sid, None)
            for sid, plans in op.add:
                direct[sid] = sorted(plans)
    return {"usageLocation": loc, "direct": dict(sorted(direct.items()))}


def states_the_run_may_have_left(prior: Mapping[str, Any], ops: Sequence[Operation], unsure: Collection[str]
                                 ) -> list[dict[str, Any]]:
    """Every state ``ops`` (in the order sent) may have left a target in: each operation whose outcome the run
    never learnt (its key in ``unsure``: sent or unknown, a crash mid-run) either took effect or did not, the
    others did. Distinct states only (a user's few operations, a membership pair's one or two)."""
    states: dict[str, dict[str, Any]] = {}
    start = expected_after(prior, ())
    states[json.dumps(start, sort_keys=True)] = start
    for op in ops:
        applied = [expected_after(s, (op,)) for s in states.values()]
        if op.key not in unsure:
            states = {}
        for s in applied:
            states.setdefault(json.dumps(s, sort_keys=True), s)
    return list(states.values())


def left_by_the_run(prior: Mapping[str, Any], ops: Sequence[Operation], unsure: Collection[str],
                    now: Mapping[str, Any] | None, same: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
                    ) -> dict[str, Any] | None:
    """The state the run left the target in, when ``now`` is one the run may have left it in (``same`` compares
    two states); None when it is none of them: someone else changed the target since the run (or it is gone).
    The one rule rollback uses for users, environments and group memberships alike: an unsure write whose target
    is as if it had not been sent simply did not take effect, a sure one never counts as not taken."""
    if now is None:
        return None
    return next((s for s in states_the_run_may_have_left(prior, ops, unsure) if same(now, s)), None)


def same_user_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal usage location (case-insensitive) and direct licenses with the same disabled plans."""
    la, lb = (a.get("usageLocation") or "").upper(), (b.get("usageLocation") or "").upper()
    da = {k: sorted(v) for k, v in a.get("direct", {}).items()}
    db = {k: sorted(v) for k, v in b.get("direct", {}).items()}
    return la == lb and da == db


def same_allocations(a: Mapping[str, Any], b: Mapping[str, Any], currencies: Iterable[str]) -> bool:
    aa, bb = a.get("allocations", {}), b.get("allocations", {})
    return all(int(aa.get(c, 0)) == int(bb.get(c, 0)) for c in currencies)
