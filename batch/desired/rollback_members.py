"""Rollback of group memberships: each (group, user) a run's membership operations changed, back to before.

The journal keeps, per group, whether each user its operations name was a direct member before the run
(``{"members": {userId: bool}}``, :mod:`batch.desired.state`). For each such pair:

- the run left the membership as its last operation on the pair says (added: member; removed: not);
- the membership now is read for those users only (:func:`batch.kinds.groups.membership.read_memberships`);
- now as the run left it: restored (a user the run added is removed, ``DELETE .../$ref`` one per user; a user
  it removed is added back, ``PATCH members@odata.bind`` 20 per write);
- now as before, after a write that surely took effect: someone changed it since, LEFT ALONE and reported
  ``changed-since-run``; after a write whose outcome was never known (a crash), it simply did not take effect:
  nothing to do (:func:`batch.desired.state.left_by_the_run`, the rule users and environments follow too);
- the user gone, the group gone, or the group now rule-based (Graph refuses member writes to a dynamic group):
  left alone and reported ``changed-since-run``.

Each pair is one row of the rollback's "Memberships" sheet, a groups-kind row, so the results say when Entra
has processed the group for the user (licenses given back or taken away), as for any membership run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RowFinding, Severity
from ..kinds.groups.membership import read_memberships
from ..kinds.groups.plan import add_members_ops, remove_member_op
from ..kinds.groups.read import read_groups
from ..kinds.groups.records import CheckedGroup, GroupRequest
from ..models import Action, Api, InputRow, Kind, Operation, OpKind, RequestStatus, Role, Sheet, TenantSnapshot
from .state import MEMBERSHIP_KINDS, expected_after, left_by_the_run, op_members

HEADERS = ("User", "Group", "Restores", "Rolled back run")


def group_targets(changed: Mapping[tuple[str, str], Sequence[Operation]]) -> list[str]:
    """The groups whose membership the run changed (targets of membership operations)."""
    return sorted(t for (a, t), ops in changed.items()
                  if a == str(Api.GRAPH) and any(op.kind in MEMBERSHIP_KINDS for op in ops))


def touched_users(changed: Mapping[tuple[str, str], Sequence[Operation]], group_ids: Sequence[str]
                  ) -> dict[str, list[str]]:
    """group id -> the users its operations name, in the order the run sent them."""
    out: dict[str, list[str]] = {}
    for gid in group_ids:
        seen = out.setdefault(gid, [])
        for op in changed[(str(Api.GRAPH), gid)]:
            seen.extend(u for u in op_members(op) if u not in seen)
    return out


def read_now(graph: Any, snapshot: TenantSnapshot, users: Mapping[str, Sequence[str]]) -> None:
    """The groups (names, licenses, whether rule-based) and the membership now of the touched users, into the
    snapshot (the rollback's own journal keeps the latter as its state before, so a rollback can be rolled back).
    A touched group that no longer exists is taken out of ``snapshot.groups``."""
    for gid, groups in read_groups(graph, list(users)).items():
        for g in groups:
            snapshot.groups[g.id] = g  # over the snapshot's name-only entry: the rule says if it takes members
        if not groups:
            snapshot.groups.pop(gid.lower(), None)
    for gid, now in read_memberships(graph, users).items():
        snapshot.memberships.setdefault(gid, {}).update(now)


@dataclass(slots=True)
class MembershipRestores:
    rows: list[InputRow] = field(default_factory=list)
    checked: list[CheckedGroup] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    restores: list[str] = field(default_factory=list)
    changed_since: list[str] = field(default_factory=list)


def plan_memberships(
    run_id: str,
    prior: Mapping[tuple[str, str], Mapping[str, Any]],
    changed: Mapping[tuple[str, str], Sequence[Operation]],
    unsure: set[str],
    snapshot: TenantSnapshot,
    first_row: int,
) -> MembershipRestores:
    """Rows, checks and operations restoring every (group, user) pair nobody changed since the run.
    ``unsure``: keys of operations whose outcome the run never learnt (sent, unknown)."""
    out = MembershipRestores()
    removes: list[Operation] = []
    for gid, users in touched_users(changed, group_targets(changed)).items():
        ops = changed[(str(Api.GRAPH), gid)]
        before_all = dict(prior.get((str(Api.GRAPH), gid), {}).get("members", {}))
        g = snapshot.groups.get(gid)
        gname = g.display_name if g else (ops[0].target or gid)
        now_all = snapshot.memberships.get(gid, {})
        adds: list[tuple[str, tuple[int, ...]]] = []
        for uid in users:
            mine = [op for op in ops if uid in op_members(op)]
            # no state kept (a journal from before memberships were kept): what the run's plan implied
            before = bool(before_all.get(uid, mine[0].kind is OpKind.REMOVE_MEMBER))
            pair = {"members": {uid: before}}
            after = bool(expected_after(pair, mine)["members"][uid])
            user = snapshot.users.get(uid)
            name = user.upn if user else uid
            now = now_all.get(uid) if user is not None else None
            left = left_by_the_run(pair, mine, unsure, None if now is None else {"members": {uid: now}},
                                   _same_membership(uid))
            takes = g is not None and not g.dynamic  # a group gone or now rule-based takes no member writes
            row = first_row + len(out.rows)
            number = len(out.rows) + 2
            verb = "add back to" if before else "remove from"
            restoring = takes and left is not None and now != before
            restore = f"{verb} '{gname}'" if restoring else ""
            out.rows.append(InputRow(row, number, (name, gname, restore, run_id)))
            req = GroupRequest(row, number, name, gname, Action.ASSIGN if before else Action.REMOVE)

            if restoring:
                out.checked.append(CheckedGroup(req, RequestStatus.READY, [], user_id=uid, group_id=gid))
                out.restores.append(f"{name}: {restore}")
                if before:
                    adds.append((uid, (row,)))
                else:
                    removes.append(remove_member_op(gid, gname, uid, (row,)))
                continue
            if g is None or g.dynamic:
                status, code, message, fix = _group_refuses(name, gname, g is None)
            else:
                status, code, message, fix = _left_alone(name, gname, before, after, now, left is not None)
            if status is RequestStatus.ERROR:
                out.changed_since.append(f"{name} in '{gname}'")
            severity = Severity.ERROR if status is RequestStatus.ERROR else Severity.INFO
            out.checked.append(CheckedGroup(req, status, [RowFinding(code, severity, message, fix, number, None)],
                                            user_id=uid, group_id=gid))
        out.operations.extend(add_members_ops(gid, gname, adds))
    out.operations[:0] = removes  # removals first, as a membership run sends them
    return out


def _same_membership(uid: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
    """Two states of a group agree on ``uid``'s membership (an add names up to 20 users: only this one counts)."""
    return lambda a, b: bool(a["members"].get(uid)) == bool(b["members"].get(uid))


def _group_refuses(name: str, group: str, gone: bool) -> tuple[RequestStatus, str, str, str]:
    """A group that no longer exists, or is now rule-based (Graph refuses member writes to it): left alone."""
    if gone:
        return (RequestStatus.ERROR, "changed-since-run", f"The group '{group}' no longer exists: {name} left alone "
                "(changed since the run).", "Check the group by hand; nothing was changed.")
    return (RequestStatus.ERROR, "changed-since-run", f"'{group}' is now rule-based: its members follow its rule; "
            f"{name} left alone (changed since the run).", "Check the group's rule by hand; nothing was changed.")


def _left_alone(name: str, group: str, before: bool, after: bool, now: bool | None, left_by_run: bool
                ) -> tuple[RequestStatus, str, str, str]:
    """Why a pair needs no write: (status, finding code, message, fix). ``left_by_run``: the membership now is
    one the run may have left (:func:`batch.desired.state.left_by_the_run`)."""
    if now is None:
        return (RequestStatus.ERROR, "changed-since-run", f"{name} no longer exists: left alone (changed since the "
                "run).", "Check the user by hand; nothing was changed.")
    if not left_by_run:
        what = "removed from" if after else "added back to"
        return (RequestStatus.ERROR, "changed-since-run", f"{name} was {what} '{group}' by someone else since the "
                "run: left alone (changed since the run).", "Check the membership by hand; nothing was changed.")
    if before == after:
        return RequestStatus.UNCHANGED, "unchanged", f"The run did not change {name}'s membership of '{group}'.", ""
    return (RequestStatus.UNCHANGED, "unchanged", f"{name}'s membership of '{group}' is already as before the run "
            "(the run's write did not take effect).", "")


def memberships_sheet(rows: list[InputRow]) -> Sheet:
    return Sheet(path=Path("rollback"), format="csv", sheet_name="Memberships", encoding=None, delimiter=None,
                 header_row=1, headers=HEADERS, rows=rows, columns={Role.USER: 0, Role.GROUP: 1}, kind=Kind.GROUPS)


__all__ = ["MembershipRestores", "group_targets", "memberships_sheet", "plan_memberships", "read_now",
           "touched_users"]
