"""Records of the groups kind: a membership request as read from a row, and as checked against the tenant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ...errors import RowFinding
from ...models import Action, Kind, RequestStatus
from ..rules import RULE_ATTRIBUTES, Rule, parse_rule


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
