"""Records of the groups kind: a membership request as read from a row, and as checked against the tenant."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from ...errors import RowFinding
from ...models import Action, Kind, RequestStatus

#: Rule attributes a row may name instead of a user (``Department=Sales``) -> the Graph user property.
#: ``group`` reaches the members of another group (``group=All Engineers``).
RULE_ATTRIBUTES: dict[str, str] = {
    "department": "department",
    "country": "country",
    "jobtitle": "jobTitle",
    "companyname": "companyName",
    "company": "companyName",
    "officelocation": "officeLocation",
    "office": "officeLocation",
    "employeetype": "employeeType",
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


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """One membership change asked by one row (a rule row gives one per user it reaches, once resolved)."""

    row: int  # InputRow.index
    row_number: int  # InputRow.number
    user: str  # the user key as given (after cleaning), or the resolved user's UPN for a rule row
    group: str  # the group as given: display name or object id
    action: Action | None  # ASSIGN (add to the group) or REMOVE (take out of it)
    license: str = ""  # a license column beside the group: what the row expects the group to give
    rule: Rule | None = None  # the row names a set of users
    priority: int | None = None
    findings: tuple[RowFinding, ...] = ()


@dataclass(slots=True)
class CheckedGroup:
    """A GroupRequest after validation."""

    kind: ClassVar[Kind] = Kind.GROUPS
    request: GroupRequest
    status: RequestStatus
    findings: list[RowFinding]
    user_id: str | None = None
    group_id: str | None = None
    gains: tuple[str, ...] = field(default_factory=tuple)  # skuIds the user will newly hold (take a seat)
    loses: tuple[str, ...] = field(default_factory=tuple)  # skuIds the user will no longer hold (free a seat)


__all__ = ["RULE_ATTRIBUTES", "CheckedGroup", "GroupRequest", "Rule", "parse_rule"]
