"""Before validation: read the named groups (and their members) into the snapshot, and expand rule rows.

A rule row (``Department=Sales`` in the user column) becomes one line per user it reaches: the sheet gets one
``InputRow`` per user, with the rule's row number and the user's UPN in the user cell, so the results have
a line per user, each with the rule's row number. A rule reaching nobody stays one line (a warning).
Row indexes of the sheet are renumbered in order; ``jobs`` moves the following sheets' indexes along.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...errors import RowFinding, Severity, TenantError
from ...models import InputRow, Role, Sheet, TenantSnapshot, User
from .read import add_users, member_ids, read_groups, users_in_group, users_where
from .records import GroupRequest, Rule


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
    if not any(r.rule is not None for r in requests):
        return requests
    return _expand(graph, sheet, requests, snapshot)


def _reach(graph: Any, rule: Rule, snapshot: TenantSnapshot) -> tuple[list[User], RowFinding | None]:
    if rule.attribute == "group":
        c = candidates(snapshot, rule.value)
        if len(c) != 1:
            what = "no group" if not c else f"{len(c)} groups ({', '.join(g.id for g in c)})"
            return [], RowFinding("rule-group-unknown" if not c else "rule-group-ambiguous", Severity.ERROR,
                                  f"The rule '{rule}' names {what} called '{rule.value}'.",
                                  "Name the group by its exact display name or its object id.")
        return users_in_group(graph, c[0].id), None
    try:
        return users_where(graph, rule.attribute, rule.value), None
    except TenantError as e:
        return [], RowFinding("rule-unsupported", Severity.ERROR,
                              f"Graph could not resolve the rule '{rule}': {e}",
                              "Use department, country, jobTitle, companyName, officeLocation, employeeType or group.")


def _expand(graph: Any, sheet: Sheet, requests: list[GroupRequest], snapshot: TenantSnapshot) -> list[GroupRequest]:
    user_col = sheet.columns.get(Role.USER)
    user_h = sheet.header_for(Role.USER) or "User"
    reached: dict[Rule, tuple[list[User], RowFinding | None]] = {}
    for r in requests:
        if r.rule is not None and r.rule not in reached:
            reached[r.rule] = _reach(graph, r.rule, snapshot)
    for users, _f in reached.values():
        add_users(snapshot, users)
    by_index = {row.index: row for row in sheet.rows}
    base = sheet.rows[0].index if sheet.rows else 0
    new_rows: list[InputRow] = []
    out: list[GroupRequest] = []
    for r in requests:
        row = by_index[r.row]
        if r.rule is None:
            new_rows.append(replace(row, index=base + len(new_rows)))
            out.append(replace(r, row=new_rows[-1].index))
            continue
        users, problem = reached[r.rule]
        users = sorted(users, key=lambda u: u.upn.lower())
        if problem is not None or not users:
            f = problem or RowFinding(
                "rule-no-users", Severity.WARNING,
                f"Row {r.row_number}: the rule '{r.rule}' in column {user_h} reaches no user.",
                "Check the attribute's spelling against the users' profiles (Graph compares the whole value).")
            f = replace(f, row=r.row_number, column=user_h)
            new_rows.append(replace(row, index=base + len(new_rows)))
            out.append(replace(r, row=new_rows[-1].index, findings=(*r.findings, f)))
            continue
        note = RowFinding("rule-reached", Severity.INFO,
                          f"Row {r.row_number}: reached by the rule '{r.rule}' ({len(users)} users).", "",
                          r.row_number, user_h)
        for u in users:
            cells = list(row.cells)
            if user_col is not None:
                cells[user_col] = u.upn
            new_rows.append(InputRow(index=base + len(new_rows), number=row.number, cells=tuple(cells)))
            out.append(replace(r, row=new_rows[-1].index, user=u.upn, findings=(*r.findings, note)))
    sheet.rows[:] = new_rows
    return out


__all__ = ["candidates", "resolve_groups"]
