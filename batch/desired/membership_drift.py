"""Membership sheets in a reconcile: "this user should be a member of this group" as desired state.

A membership sheet (user, group[, action]; the groups kind's layout, ``templates/groups.*``) is read, resolved and
checked by the groups kind (``batch.kinds.groups``: unknown or ambiguous groups and users, duplicate and
contradicting rows, each an error naming its row and column). Against the tenant:

- ``member-missing``: a row adds the user to a group they are not in: fixed by ``--apply``;
- ``member-extra``: a row whose action says remove names a member (the user "should not be a member"), or, for a
  ``--scope`` other than ``users``, a member of the scope in a group the sheet names whom the sheet does not list
  for it (a row of its own below the sheet): fixed only with ``--apply --prune``, and never when the group also
  gives a license the licenses sheet asks this user for (``Memberships.removal_conflict``).

Rule-based (dynamic) groups cannot take member writes: drift there stays advice (change the rule or the user's
attributes). A row that adds a user to a group keeps them there: a removal the license rows' group drift planned
for the same group and user is called off. Writes and seats go through the builder's ``Memberships``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import RowFinding, Severity
from ..kinds.groups.records import CheckedGroup, GroupRequest
from ..models import Action, InputRow, Kind, RequestStatus, Role, Sheet, ShortfallPolicy
from .memberships import CONFLICT_FIX

if TYPE_CHECKING:
    from ..jobs import Session
    from .reconcile import _Builder

DRIFT_COLUMN = "Drift"  # as batch.desired.reconcile
MEMBER_ADD_FIX = "--apply"
MEMBER_REMOVE_FIX = "--apply --prune"
_RULE_FIX = "change the group's rule or the user's attributes so the rule {verb} them"


def membership_drift(b: _Builder, sheets: list[Sheet], session: Session, in_scope: set[str] | None) -> None:
    """Every membership sheet's drift -> the builder's drift lines, checked rows and membership writes."""
    if not sheets:
        return
    for sheet in sheets:
        _sheet_drift(b, sheet, session, in_scope)
    # the membership seats join the license pools (one line per SKU, whatever asked for the seat)
    others = [c for c in b.capacity if c.kind is not Kind.LICENSES]
    b.capacity[:] = [*b._license_capacity(), *others]


def _read_users(b: _Builder, session: Session, keys: set[str]) -> None:
    from ..tenant.snapshot import lookup_users

    missing = sorted(k for k in keys if b.snap.find_user(k) is None)
    if missing:
        for u in lookup_users(session.tenant.graph, missing).values():
            b.snap.users.setdefault(u.id, u)
        b.snap.reindex()


def _sheet_drift(b: _Builder, sheet: Sheet, session: Session, in_scope: set[str] | None) -> None:
    from ..kinds.groups.checks import validate_groups
    from ..kinds.groups.resolve import resolve_groups
    from ..kinds.groups.rows import parse_group_requests

    mem, snap = b.memberships, b.snap
    offset = b._next_row - min((r.index for r in sheet.rows), default=0)
    sheet = replace(sheet, rows=[InputRow(r.index + offset, r.number, r.cells, r.values) for r in sheet.rows])
    requests = parse_group_requests(sheet)
    _read_users(b, session, {r.user for r in requests if r.user and r.rule is None})
    requests = resolve_groups(session.tenant, sheet, requests, snap)  # groups, their members; rule rows expanded
    checked, _lines = validate_groups(sheet, requests, snap, catalog=session.catalog, policy=ShortfallPolicy.STOP,
                                      reserve_of=lambda _n: 0)
    mem.learn(g for g in snap.groups.values() if g.id in {c.group_id for c in checked})
    texts: dict[int, list[str]] = {}
    listed: set[tuple[str, str]] = set()
    erred: set[str] = set()
    out: list[Any] = []  # CheckedGroup: the run's requests are typed for the licenses and add-ons kinds

    def line(kind_: str, c: CheckedGroup, detail: str, fix: str, sent: bool, number: int) -> None:
        gid = c.group_id or ""
        b.lines.append({"kind": kind_, "target": c.request.user, "license": _parts(b, gid), "detail": detail,
                        "fix": fix, "row": number, "applied": sent})
        texts.setdefault(c.request.row, []).append(f"{kind_}: {detail}")

    for c in checked:
        if c.user_id and c.group_id:
            listed.add((c.group_id, c.user_id))
        # reconcile weighs capacity over every fix at once (the builder's pools): the kind's own verdict goes
        if c.status is RequestStatus.OVER_CAPACITY:
            c.status = RequestStatus.READY
            c.findings = [f for f in c.findings if not f.code.startswith("capacity")]
        dynamic = next((f for f in c.findings if f.code == "group-dynamic"), None)
        errors = [f for f in c.findings if f.severity is Severity.ERROR and f is not dynamic]
        if errors or (dynamic is not None and (c.user_id is None or c.group_id is None)):
            if c.user_id:
                erred.add(c.user_id)
            for f in errors or [x for x in (dynamic,) if x is not None]:
                where = f" (column {f.column})" if f.column and f"column {f.column}" not in f.message else ""
                b.lines.append({"kind": "row-error", "target": "", "license": "", "detail": f.message + where,
                                "fix": f.fix, "row": f.row or c.request.row_number, "applied": False})
            out.append(c)
            continue
        assert c.user_id is not None and c.group_id is not None
        gid, uid, r = c.group_id, c.user_id, c.request
        g = snap.groups[gid]
        who, name = r.user, mem.name(gid)
        if r.action is Action.ASSIGN:
            mem.keep(gid, uid, f"the membership sheet keeps {who} in {name} (row {r.row_number})")
        if dynamic is not None:  # Graph refuses member writes: drift is advice, no drift is no error
            member = g.members is not None and uid in g.members
            c.findings = [f for f in c.findings if f is not dynamic]
            if member == (r.action is Action.ASSIGN):
                c.status = RequestStatus.UNCHANGED
                out.append(c)
                continue
            kind_ = "member-missing" if r.action is Action.ASSIGN else "member-extra"
            detail = (f"{who} should {'' if r.action is Action.ASSIGN else 'not '}be a member of {name}; "
                      f"its members come from a rule ({g.membership_rule or 'dynamic'})")
            fix = _RULE_FIX.format(verb="includes" if r.action is Action.ASSIGN else "excludes")
            line(kind_, c, detail, fix, False, r.row_number)
            _advice(c, kind_, detail, fix)
        elif c.status is RequestStatus.READY and r.action is Action.ASSIGN:
            detail = f"{who} should be a member of {name} and is not"
            line("member-missing", c, detail, MEMBER_ADD_FIX, True, r.row_number)
            c.findings.append(RowFinding("drift-member-missing", Severity.INFO, detail, "", r.row_number, None))
            c.gains, c.loses = mem.add(gid, uid, r.row), ()
        elif c.status is RequestStatus.READY:
            _extra(b, c, f"{who} should not be a member of {name} (row {r.row_number} says remove)", r.row_number,
                   line)
        out.append(c)
    extra_rows = _scope_extras(b, sheet, checked, listed, erred, in_scope, line, out)
    out_rows = [InputRow(x.index, x.number, (*x.cells, "; ".join(texts.get(x.index, []))), x.values)
                for x in sheet.rows]
    extra_rows = [InputRow(x.index, x.number, (*x.cells[:-1], "; ".join(texts.get(x.index, []))))
                  for x in extra_rows]
    b._next_row = max((x.index for x in (*sheet.rows, *extra_rows)), default=b._next_row - 1) + 1

    def finish() -> None:
        b.sheets.append(replace(sheet, headers=(*sheet.headers, DRIFT_COLUMN), rows=out_rows + extra_rows))
        b.checked.extend(sorted(out, key=lambda c: c.request.row))

    b._finish.append(finish)


def _parts(b: _Builder, gid: str) -> str:
    return ", ".join(b.memberships.part(s) for s in b.memberships.skus_of(gid)) if gid else ""


def _advice(c: CheckedGroup, kind_: str, detail: str, fix: str) -> None:
    c.status = RequestStatus.UNCHANGED
    c.gains = c.loses = ()
    c.findings.append(RowFinding(f"drift-{kind_}", Severity.WARNING, detail, fix, c.request.row_number, None))


def _extra(b: _Builder, c: CheckedGroup, detail: str, number: int, line: Callable[..., None]) -> None:
    """A member who should not be one: taken out with --prune, unless that would cost a license the sheet asks
    for (or a membership sheet keeps them in)."""
    mem = b.memberships
    assert c.group_id is not None and c.user_id is not None
    why = mem.removal_conflict(c.group_id, c.user_id)
    if why:
        detail, fix = f"{detail}; left alone: {why}", CONFLICT_FIX
    elif not b.prune:
        mem.note_prunable(c.group_id, c.user_id)
        fix = f"run with --apply --prune to remove the user from {mem.name(c.group_id)}"
    else:
        line("member-extra", c, detail, MEMBER_REMOVE_FIX, True, number)
        c.status = RequestStatus.READY
        c.findings.append(RowFinding("drift-member-extra", Severity.INFO, detail, "", c.request.row_number, None))
        c.gains, c.loses = (), mem.remove(c.group_id, c.user_id, c.request.row)
        return
    line("member-extra", c, detail, fix, False, number)
    _advice(c, "member-extra", detail, fix)


def _scope_extras(b: _Builder, sheet: Sheet, checked: list[CheckedGroup], listed: set[tuple[str, str]],
                  erred: set[str], in_scope: set[str] | None, line: Callable[..., None],
                  out: list[Any]) -> list[InputRow]:
    """Members of the scope in a group the sheet names whom it does not list for that group: rows below it."""
    if in_scope is None:
        return []
    snap = b.snap
    ui, gi, ai = (sheet.columns.get(x) for x in (Role.USER, Role.GROUP, Role.ACTION))
    number = max((r.number for r in sheet.rows), default=sheet.header_row)
    nxt = max((r.index for r in sheet.rows), default=b._next_row - 1) + 1
    rows: list[InputRow] = []
    for gid in dict.fromkeys(c.group_id for c in checked if c.group_id):
        g = snap.groups[gid]
        if g.dynamic or g.members is None:
            continue
        left_out = [u for u in g.members & in_scope if (gid, u) not in listed and u not in erred and u in snap.users]
        for uid in sorted(left_out, key=lambda u: snap.users[u].upn.lower()):
            user = snap.users[uid]
            number += 1
            cells = [""] * len(sheet.headers)
            for i, v in ((ui, user.upn), (gi, g.display_name), (ai, "remove")):
                if i is not None:
                    cells[i] = v
            rows.append(InputRow(nxt, number, (*cells, "")))
            c = CheckedGroup(GroupRequest(nxt, number, user.upn, g.display_name, Action.REMOVE), RequestStatus.READY,
                             [], user_id=uid, group_id=gid)
            _extra(b, c, f"{user.upn} is a member of {b.memberships.name(gid)}; the sheet does not list them for it",
                   0, line)
            out.append(c)
            nxt += 1
    return rows


__all__ = ["MEMBER_ADD_FIX", "MEMBER_REMOVE_FIX", "membership_drift"]
