"""Reading membership rows: user (or a rule naming a set of users), group, action, an optional license.

A sheet of this kind has a user column and a group column (``Group``, ``Group name``, ``Group id``,
``Licensing group``). A license column beside them states what the row expects the group to give; it is
checked against the group's own licenses, never assigned directly. A user cell that reads ``Department=Sales``
(or ``country``, ``jobTitle``, ``companyName``, ``officeLocation``, ``employeeType``, ``group=All Engineers``) is a
rule row: it reaches every user with that attribute, resolved through Graph's ``$filter`` before validation.
"""

from __future__ import annotations

from ...errors import RowFinding, Severity
from ...models import Action, Role, Sheet
from ...sheets.cells import clean_user
from ...sheets.rows import parse_action
from .records import GroupRequest, parse_rule


def _int(text: str) -> int | None:
    t = text.strip()
    try:
        return int(float(t)) if t else None
    except ValueError:
        return None


def parse_group_requests(sheet: Sheet) -> list[GroupRequest]:
    """One GroupRequest per data row, in input order (rule rows are expanded later, by ``resolve``)."""
    cols = sheet.columns
    get = cols.get
    user_i, group_i, action_i, prio_i = get(Role.USER), get(Role.GROUP), get(Role.ACTION), get(Role.PRIORITY)
    lic_i = get(Role.SKU) if Role.SKU in cols else get(Role.TO_SKU)
    group_h = sheet.header_for(Role.GROUP) or "Group"
    action_h = sheet.header_for(Role.ACTION) or "Action"
    prio_h = sheet.header_for(Role.PRIORITY) or "Priority"
    out: list[GroupRequest] = []
    for row in sheet.rows:
        c = row.cells
        raw_user = c[user_i] if user_i is not None else ""
        group = c[group_i].strip() if group_i is not None else ""
        word = c[action_i] if action_i is not None else ""
        prio_text = c[prio_i] if prio_i is not None else ""
        findings: list[RowFinding] = []
        rule = parse_rule(raw_user)
        user = "" if rule else clean_user(raw_user)
        action = parse_action(word) if word.strip() else Action.ASSIGN
        if action is None:
            findings.append(RowFinding(
                "action-unknown", Severity.ERROR,
                f"Row {row.number}: the {action_h} '{word}' is not add or remove.",
                "Write add (assign) to put the user in the group, or remove to take them out.", row.number, action_h))
        elif action is Action.REPLACE:
            findings.append(RowFinding(
                "group-action-replace", Severity.ERROR,
                f"Row {row.number}: the {action_h} '{word}' (replace) does not apply to a group membership.",
                "Use two rows: remove from the old group, add to the new one.", row.number, action_h))
        if not group:
            findings.append(RowFinding(
                "group-missing", Severity.ERROR, f"Row {row.number}: the {group_h} cell is empty.",
                "Name the group (display name or object id) the user goes into or out of.", row.number, group_h))
        priority = _int(prio_text)
        if prio_text.strip() and priority is None:
            findings.append(RowFinding(
                "priority-invalid", Severity.WARNING,
                f"Row {row.number}: the {prio_h} '{prio_text}' is not a whole number; the row has no priority.",
                "Write a whole number (lower is served first).", row.number, prio_h))
        out.append(GroupRequest(
            row=row.index, row_number=row.number, user=user, group=group, action=action,
            license=c[lic_i].strip() if lic_i is not None else "", rule=rule, priority=priority,
            findings=tuple(findings)))
    return out


__all__ = ["parse_group_requests"]
