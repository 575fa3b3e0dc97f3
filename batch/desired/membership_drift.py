"""Membership sheets in a reconcile: "this user should be a member of this group" as desired state.

A membership sheet (user, group[, action]; the groups kind's layout, ``templates/groups.*``) is read, resolved and
checked by the groups kind (``batch.kinds.groups``: unknown or ambiguous groups and users, duplicate and
contradicting rows, each an error naming its row and column). Against the tenant:

- ``member-missing``: a row adds the user to a group they are not in: fixed by ``--apply``;
- ``member-extra``: a row whose action says remove names a member (the user "should not be a member"), or, for a
  ``--scope`` other than ``users``, a member of the scope in a group the sheets name whom no membership sheet lists
  for it (a row of its own below the sheet whose row names the group first): fixed only with ``--apply --prune``,
  and never when the group also gives a license the licenses sheet asks this user for
  (``Memberships.removal_conflict``).

Several membership sheets are one desired state: rows about the same user and group on two sheets are a duplicate
(or, one adding and one removing, a contradiction: both rows in error, nothing sent), and the messages name the
other row's sheet, as ``drift.desired_frame`` does for licenses sheets.

Rule-based (dynamic) groups cannot take member writes: drift there stays advice (change the rule or the user's
attributes). A row that adds a user to a group keeps them there: a removal the license rows' group drift planned
for the same group and user is called off. Writes and seats go through the builder's ``Memberships``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import RowFinding, Severity
from ..kinds.groups.records import CheckedGroup, GroupRequest
from ..models import Action, InputRow, Kind, RequestStatus, Role, Sheet, ShortfallPolicy, TenantSnapshot
from .group_drift import RULE_FIX
from .memberships import CONFLICT_FIX
from .where import SheetsOf

if TYPE_CHECKING:
    from ..jobs import Session
    from .reconcile import Builder

MEMBER_ADD_FIX = "--apply"
MEMBER_REMOVE_FIX = "--apply --prune"


def membership_drift(b: Builder, sheets: list[Sheet], session: Session, in_scope: set[str] | None) -> None:
    """Every membership sheet's drift -> the builder's drift lines, checked rows and membership writes. The sheets
    are checked together (one desired state); each input row keeps its result on its own sheet."""
    from ..kinds.groups.checks import validate_groups
    from ..kinds.groups.resolve import resolve_groups
    from ..kinds.groups.rows import parse_group_requests

    if not sheets:
        return
    mem, snap = b.memberships, b.snap
    placed = [b.place_sheet(sh) for sh in sheets]  # row indexes follow the builder's: unique across the run
    where = SheetsOf(placed)
    parsed = [(sh, parse_group_requests(sh)) for sh in placed]
    _read_users(b, session, {r.user for _sh, reqs in parsed for r in reqs if r.user and r.rule is None})
    checked: list[CheckedGroup] = []
    for sh, reqs in parsed:
        reqs = resolve_groups(session.tenant, sh, reqs, snap)  # groups, their members; rule rows expanded
        found, _lines = validate_groups(sh, reqs, snap, catalog=session.catalog, policy=ShortfallPolicy.STOP,
                                        reserve_of=lambda _n: 0)
        checked.extend(found)
    _across_sheets(checked, where, snap)
    mem.learn(g for g in snap.groups.values() if g.id in {c.group_id for c in checked})
    texts: dict[int, list[str]] = {}
    listed: set[tuple[str, str]] = set()
    erred: set[str] = set()
    out: list[Any] = []  # CheckedGroup: the run's requests are typed for the licenses and add-ons kinds

    def line(kind_: str, c: CheckedGroup, detail: str, fix: str, sent: bool, number: int) -> None:
        gid = c.group_id or ""
        b.lines.append({"kind": kind_, "target": c.request.user, "license": _parts(b, gid), "detail": detail,
                        "fix": fix, "row": number, "applied": sent, "_at": c.request.row})
        texts.setdefault(c.request.row, []).append(f"{kind_}: {detail}")

    for c in checked:  # every sheet's, before any row is judged: a user listed on one sheet is listed
        if c.user_id and c.group_id:
            listed.add((c.group_id, c.user_id))
    for c in checked:
        # reconcile weighs capacity over every fix at once (the builder's pools): the kind's own verdict goes
        # (a row the sheets' cross-check put in error since keeps its error, not the kind's capacity finding)
        if c.status is RequestStatus.OVER_CAPACITY:
            c.status = RequestStatus.READY
        c.findings = [f for f in c.findings if not f.code.startswith("capacity")]
        dynamic = next((f for f in c.findings if f.code == "group-dynamic"), None)
        errors = [f for f in c.findings if f.severity is Severity.ERROR and f is not dynamic]
        if errors or (dynamic is not None and (c.user_id is None or c.group_id is None)):
            if c.user_id:
                erred.add(c.user_id)
            for f in errors or [x for x in (dynamic,) if x is not None]:
                column = f" (column {f.column})" if f.column and f"column {f.column}" not in f.message else ""
                b.lines.append({"kind": "row-error", "target": "", "license": "", "detail": f.message + column,
                                "fix": f.fix, "row": f.row or c.request.row_number, "applied": False,
                                "_at": c.request.row})
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
            fix = RULE_FIX.format(verb="includes" if r.action is Action.ASSIGN else "excludes")
            line(kind_, c, detail, fix, False, r.row_number)
            _advice(c, kind_, detail, fix)
        elif c.status is RequestStatus.READY and r.action is Action.ASSIGN:
            detail = f"{who} should be a member of {name} and is not"
            line("member-missing", c, detail, MEMBER_ADD_FIX, True, r.row_number)
            c.findings.append(RowFinding("drift-member-missing", Severity.INFO, detail, "", r.row_number, None))
            c.gains, c.loses = mem.add(gid, uid, r.row), ()
        elif c.status is RequestStatus.READY:
            _extra(b, c, f"{who} should not be a member of {name} (row {r.row_number} says remove)", r.row_number,
                   line, texts)
        out.append(c)
    extra_rows = _scope_extras(b, where, checked, listed, erred, in_scope, line, texts, out)

    def finish() -> None:
        b.sheets.extend(b.drift_sheet(sh, extra_rows.get(id(sh), []), texts) for sh in placed)
        b.checked.extend(sorted(out, key=lambda c: c.request.row))

    b.on_finish(finish)
    # the membership seats join the license pools (one line per SKU, whatever asked for the seat)
    others = [c for c in b.capacity if c.kind is not Kind.LICENSES]
    b.capacity[:] = [*b.license_capacity(), *others]


def _read_users(b: Builder, session: Session, keys: set[str]) -> None:
    from ..tenant.snapshot import lookup_users

    missing = sorted(k for k in keys if b.snap.find_user(k) is None)
    if missing:
        for u in lookup_users(session.tenant.graph, missing).values():
            b.snap.users.setdefault(u.id, u)
        b.snap.reindex()


def _across_sheets(checked: list[CheckedGroup], where: SheetsOf, snap: TenantSnapshot) -> None:
    """Rows about the same user and group on two membership sheets, each against the first row of all that names
    them (``validate_groups`` compares the rows of one sheet): a duplicate, a user a rule reaches twice, or rows
    that add and remove (both in error). The messages name the other row's sheet."""
    first: dict[tuple[str, str], CheckedGroup] = {}

    def err(c: CheckedGroup, code: str, message: str, fix: str) -> None:
        c.findings.append(RowFinding(code, Severity.ERROR, f"Row {c.request.row_number}: {message}", fix,
                                     c.request.row_number, None))
        c.status = RequestStatus.ERROR

    for c in checked:
        if c.user_id is None or c.group_id is None:
            continue
        prev = first.setdefault((c.user_id, c.group_id), c)
        if prev is c or where.of(prev.request.row) is where.of(c.request.row):
            continue
        p, r = prev.request, c.request
        upn, group = snap.users[c.user_id].upn, snap.groups[c.group_id].display_name
        both = f"{where.row_name(p.row, p.row_number, seen_from=None)} and " \
               f"{where.row_name(r.row, r.row_number, seen_from=None)}"
        if p.action is not r.action:
            for x, other in ((prev, c), (c, prev)):
                o = other.request
                err(x, "conflicting-rows", f"this row {_verb(x.request.action)} {upn} {_to(x.request.action)} "
                    f"'{group}'; {where.row_name(o.row, o.row_number, seen_from=x.request.row)} "
                    f"{_verb(o.action)} them.", f"Keep one of the rows ({both}).")
        elif p.rule is not None or r.rule is not None:
            how = " and ".join(f"rule '{x.rule}'" if x.rule else where.row_name(x.row, x.row_number, seen_from=None)
                               for x in (p, r))
            err(c, "user-reached-twice", f"{upn} is reached twice for '{group}' ({how}); only "
                f"{where.row_name(p.row, p.row_number, seen_from=r.row)}'s line stands.",
                "Drop the user from one of the rows (or narrow the rule).")
        else:
            err(c, "duplicate-row", f"{where.row_name(p.row, p.row_number, seen_from=r.row)} already asks the same "
                f"for {upn} and '{group}'.", f"Delete the duplicate row ({both}: keep one).")


def _verb(action: Action | None) -> str:
    return "removes" if action is Action.REMOVE else "adds"


def _to(action: Action | None) -> str:
    return "from" if action is Action.REMOVE else "to"


def _parts(b: Builder, gid: str) -> str:
    return ", ".join(b.memberships.part(s) for s in b.memberships.skus_of(gid)) if gid else ""


def _advice(c: CheckedGroup, kind_: str, detail: str, fix: str) -> None:
    c.status = RequestStatus.UNCHANGED
    c.gains = c.loses = ()
    c.findings.append(RowFinding(f"drift-{kind_}", Severity.WARNING, detail, fix, c.request.row_number, None))


def _extra(b: Builder, c: CheckedGroup, detail: str, number: int, line: Callable[..., None],
           texts: dict[int, list[str]]) -> None:
    """A member who should not be one: taken out with --prune, unless that would cost a license the sheet asks
    for (or a membership sheet keeps them in: then, should a later row keep them, the removal is called off)."""
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
        mem.cancellable(c.group_id, c.user_id, b.lines[-1], c, detail, texts[c.request.row])
        return
    line("member-extra", c, detail, fix, False, number)
    _advice(c, "member-extra", detail, fix)


def _scope_extras(b: Builder, where: SheetsOf, checked: list[CheckedGroup], listed: set[tuple[str, str]],
                  erred: set[str], in_scope: set[str] | None, line: Callable[..., None],
                  texts: dict[int, list[str]], out: list[Any]) -> dict[int, list[InputRow]]:
    """Members of the scope in a group the sheets name whom no sheet lists for that group: rows below the sheet
    whose row names the group first (id(sheet) -> its rows)."""
    if in_scope is None:
        return {}
    snap = b.snap
    home_of: dict[str, Sheet] = {}  # group id -> the sheet whose row names it first
    for c in checked:
        if c.group_id and c.group_id not in home_of:
            home_of[c.group_id] = where.of(c.request.row)
    rows: dict[int, list[InputRow]] = {}
    for gid, home in home_of.items():
        g = snap.groups[gid]
        if g.dynamic or g.members is None:
            continue
        ui, gi, ai = (home.columns.get(x) for x in (Role.USER, Role.GROUP, Role.ACTION))
        left_out = [u for u in g.members & in_scope if (gid, u) not in listed and u not in erred and u in snap.users]
        for uid in sorted(left_out, key=lambda u: snap.users[u].upn.lower()):
            user = snap.users[uid]
            cells = [""] * len(home.headers)
            for i, v in ((ui, user.upn), (gi, g.display_name), (ai, "remove")):
                if i is not None:
                    cells[i] = v
            below = b.extra_row(home, cells)
            rows.setdefault(id(home), []).append(below)
            c = CheckedGroup(GroupRequest(below.index, below.number, user.upn, g.display_name, Action.REMOVE),
                             RequestStatus.READY, [], user_id=uid, group_id=gid)
            _extra(b, c, f"{user.upn} is a member of {b.memberships.name(gid)}; the sheet does not list them for it",
                   0, line, texts)
            out.append(c)
    return rows


__all__ = ["MEMBER_ADD_FIX", "MEMBER_REMOVE_FIX", "membership_drift"]
