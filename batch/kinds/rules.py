"""Rule rows, shared by every kind whose rows name users: a user cell such as ``Department=Sales`` names a set.

The set is resolved through Graph before validation (``$filter`` on the attribute, or the users of a group at any
depth of nesting for ``group=All Engineers``, as ``--scope group=`` reads them; never by reading the whole
directory: a nested group's users are the group's users, and the rows' membership writes go to the target group
itself, so nesting does not change what they license), and :func:`expand_rules` makes the sheet one
line per user reached: an ``InputRow`` with the rule's row number and the user's UPN in the user cell, and each of
the row's requests repeated for that user with an info finding ``rule-reached``. A rule reaching nobody stays one
line (``rule-no-users``, a warning). The sheet's row indexes are renumbered in order; ``jobs`` moves the following
sheets' indexes along.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError, RowFinding, Severity, TenantError
from ..models import InputRow, Role, Sheet, TenantSnapshot, User
from ..tenant.user_filters import ATTRIBUTES, NAMES

#: Rule attributes a row may name instead of a user (``Department=Sales``) -> the Graph user property: every
#: attribute of ``tenant.user_filters.ATTRIBUTES`` (the one table of user attributes; keys lower-case letters),
#: with the short names ``company`` and ``office``. ``group`` (or ``memberOf``) reaches the users of a group at
#: any depth of nesting (``group=All Engineers``).
RULE_ATTRIBUTES: dict[str, str] = {
    **{re.sub(r"[^a-z]", "", a.name.lower()): a.name for a in ATTRIBUTES},
    "company": "companyName",
    "office": "officeLocation",
    "group": "group",
    "memberof": "group",
}
_RULE = re.compile(r"^\s*([A-Za-z][A-Za-z _-]*?)\s*(?:=|:|\beq\b)\s*(.+?)\s*$")


@dataclass(frozen=True, slots=True)
class Rule:
    """A set of users named by one attribute: ``Department=Sales`` -> Rule("department", "Sales")."""

    attribute: str  # Graph property name, or "group"
    value: str
    text: str  # as written

    def __str__(self) -> str:
        return self.text


def parse_rule(cell: str) -> Rule | None:
    """``Department=Sales`` / ``job title: Engineer`` / ``group=All Engineers`` -> Rule; anything else None.

    A cell with ``@`` before the ``=`` is a user (mail addresses may contain ``=`` in odd exports)."""
    m = _RULE.match(cell)
    if not m or "@" in m.group(1):
        return None
    key = re.sub(r"[^a-z]", "", m.group(1).lower())
    attr = RULE_ATTRIBUTES.get(key)
    if attr is None:
        return None
    value = m.group(2).strip().strip('"').strip("'").strip()
    return Rule(attr, value, cell.strip()) if value else None


#: Findings of rule rows (every kind that expands them lists these).
RULE_FINDINGS: dict[str, tuple[Severity, str]] = {
    "rule-reached": (Severity.INFO, "The line is one user reached by the row's rule (Department=Sales, group=...)."),
    "rule-no-users": (Severity.WARNING, "The row's rule reaches no user."),
    "rule-group-unknown": (Severity.ERROR, "The rule's group=... names no group."),
    "rule-group-ambiguous": (Severity.ERROR, "The rule's group=... names several groups."),
    "rule-unsupported": (Severity.ERROR, "The rule cannot be resolved: a value its attribute does not take, or "
                                         "Graph refused the filter."),
}


def _group_candidates(snapshot: TenantSnapshot, key: str) -> list[Any]:
    k = key.strip().lower()
    if k in snapshot.groups:
        return [snapshot.groups[k]]
    return sorted((g for g in snapshot.groups.values() if g.display_name.lower() == k), key=lambda g: g.id)


def reach(graph: Any, rule: Rule, snapshot: TenantSnapshot) -> tuple[list[User], RowFinding | None]:
    """The users a rule reaches (or the finding that says why none could be found)."""
    from .groups.read import group_problem, read_groups, users_in_group, users_where

    if rule.attribute == "group":
        c = _group_candidates(snapshot, rule.value)
        if not c:
            for g in read_groups(graph, [rule.value]).get(rule.value.strip(), []):
                snapshot.groups.setdefault(g.id, g)
            c = _group_candidates(snapshot, rule.value)
        problem = group_problem(rule.value, c)
        if problem is not None:
            return [], RowFinding("rule-group-unknown" if not c else "rule-group-ambiguous", Severity.ERROR,
                                  f"The rule '{rule}': {problem}",
                                  "Name the group by its exact display name or its object id.")
        return users_in_group(graph, c[0].id), None
    try:
        return users_where(graph, rule.attribute, rule.value, option=f"The rule '{rule}'"), None
    except ConfigError as e:
        return [], RowFinding("rule-unsupported", Severity.ERROR, e.message,
                              e.fix or "Give the attribute a value it takes (true or false for accountEnabled).")
    except TenantError as e:
        return [], RowFinding("rule-unsupported", Severity.ERROR,
                              f"Graph could not resolve the rule '{rule}': {e}",
                              f"Use group or one of: {NAMES}.")


def expand_rules(
    graph: Any,
    sheet: Sheet,
    requests: Sequence[Any],
    snapshot: TenantSnapshot,
    rule_of: Callable[[Any], Rule | None],
) -> list[Any]:
    """One line per user each rule row reaches (see the module). ``requests`` have ``row``, ``row_number``,
    ``user`` and ``findings`` fields; ``rule_of`` tells a request's rule (None: an ordinary row)."""
    rules = {r.row: rule for r in requests if (rule := rule_of(r)) is not None}
    if not rules:
        return list(requests)
    user_col = sheet.columns.get(Role.USER)
    user_h = sheet.header_for(Role.USER) or "User"
    reached = {rule: reach(graph, rule, snapshot) for rule in dict.fromkeys(rules.values())}
    for users, _f in reached.values():
        for u in users:
            snapshot.users.setdefault(u.id, u)
    snapshot.reindex()
    per_row: dict[int, list[Any]] = {}
    for r in requests:
        per_row.setdefault(r.row, []).append(r)
    base = sheet.rows[0].index if sheet.rows else 0
    new_rows: list[InputRow] = []
    out: list[Any] = []
    for row in sheet.rows:
        reqs = per_row.get(row.index, [])
        rule = rules.get(row.index)
        users, problem = reached[rule] if rule is not None else ([], None)
        if rule is None or problem is not None or not users:
            extra: tuple[RowFinding, ...] = ()
            if rule is not None:
                f = problem or RowFinding(
                    "rule-no-users", Severity.WARNING,
                    f"Row {row.number}: the rule '{rule}' in column {user_h} reaches no user.",
                    "Check the attribute's spelling against the users' profiles (Graph compares the whole value).")
                msg = f.message if f.message.startswith("Row ") else f"Row {row.number}: {f.message}"
                extra = (replace(f, message=msg, row=row.number, column=user_h),)
            new_rows.append(replace(row, index=base + len(new_rows)))
            out.extend(replace(r, row=new_rows[-1].index, findings=(*r.findings, *extra)) for r in reqs)
            continue
        note = RowFinding("rule-reached", Severity.INFO,
                          f"Row {row.number}: reached by the rule '{rule}' ({len(users)} users).", "",
                          row.number, user_h)
        for u in sorted(users, key=lambda u: u.upn.lower()):
            cells = list(row.cells)
            if user_col is not None:
                cells[user_col] = u.upn
            typed = None if row.values is None else tuple(
                None if i == user_col else v for i, v in enumerate(row.values))  # the row's typed cells, kept
            new_rows.append(InputRow(index=base + len(new_rows), number=row.number, cells=tuple(cells), values=typed))
            out.extend(replace(r, row=new_rows[-1].index, user=u.upn, findings=(*r.findings, note)) for r in reqs)
    sheet.rows[:] = new_rows
    return out


def describe_rules(checked: Sequence[Any]) -> list[str]:
    """``row 5: rule 'Department=Sales' reached 12 users (10 to change)`` for each rule row (from the lines'
    ``rule-reached`` findings)."""
    reach_of: dict[tuple[int, str], list[Any]] = {}
    for c in checked:
        note = next((f for f in c.findings if f.code == "rule-reached"), None)
        if note is not None:
            rule = note.message.split("rule '", 1)[1].rsplit("' (", 1)[0]
            reach_of.setdefault((c.request.row_number, rule), []).append(c)
    out = []
    for (row, rule), cs in reach_of.items():
        users = len({c.request.row for c in cs})
        ready = len({c.request.row for c in cs if c.status == "ready"})
        out.append(f"row {row}: rule '{rule}' reached {users} user{'s' if users != 1 else ''} ({ready} to change)")
    return out


__all__ = ["RULE_ATTRIBUTES", "RULE_FINDINGS", "Rule", "describe_rules", "expand_rules", "parse_rule", "reach"]
