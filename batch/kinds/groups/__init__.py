"""Kind of change: a user's membership of a group (user-to-group rows), and the licenses the group gives.

Pieces: ``records`` (GroupRequest, CheckedGroup, rules), ``rows`` (reading), ``read`` and ``resolve`` (the
groups the sheet names, their licenses and members, the users a rule row reaches: read into the snapshot
before validation), ``checks`` (findings and seats through the shared capacity policy), ``plan`` (PATCH
members@odata.bind, 20 users per write; one DELETE per removal), ``ops`` (read back, re-planning a refused
add, observing the members' licensing after the writes), ``via_group`` (``apply --via-group``: license rows
planned as membership of a licensing group).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import Severity
from ...models import (
    Action,
    CapacityLine,
    Kind,
    Operation,
    PlanOptions,
    Role,
    SeatChange,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
)
from ...sheets.catalog import ProductCatalog
from ..rules import describe_rules
from .checks import FINDINGS, validate_groups
from .ops import OP_HANDLERS, observe
from .plan import describe, plan_groups
from .records import CheckedGroup, GroupRequest
from .resolve import resolve_groups
from .rows import parse_group_requests


class _Groups:
    kind = Kind.GROUPS
    title = "Groups"
    state_label = "Licenses"
    findings: Mapping[str, tuple[Severity, str]] = FINDINGS

    def recognises(self, columns: Mapping[Role, int], headers: Sequence[str]) -> bool:
        return Role.USER in columns and Role.GROUP in columns

    def parse(self, sheet: Sheet, *, catalog: ProductCatalog | None) -> list[Any]:
        return list(parse_group_requests(sheet))

    def user_keys(self, requests: Sequence[Any]) -> set[str]:
        return {r.user for r in requests if r.user and r.rule is None}

    def needs_powerplatform(self, requests: Sequence[Any]) -> bool:
        return False

    def resolve(self, tenant: Any, sheet: Sheet, requests: list[Any], snapshot: TenantSnapshot) -> list[Any]:
        """Read the named groups and their members; expand rule rows (one line per user reached)."""
        return resolve_groups(tenant, sheet, requests, snapshot)

    def validate(
        self,
        sheet: Sheet,
        requests: Sequence[Any],
        snapshot: TenantSnapshot,
        *,
        catalog: ProductCatalog | None,
        policy: ShortfallPolicy,
        reserve_of: Callable[[int], int],
    ) -> tuple[list[Any], list[CapacityLine]]:
        checked, lines = validate_groups(sheet, requests, snapshot, catalog=catalog, policy=policy,
                                         reserve_of=reserve_of)
        return list(checked), lines

    def plan(self, checked: Sequence[Any], snapshot: TenantSnapshot, options: PlanOptions
             ) -> tuple[list[Operation], list[SeatChange]]:
        return plan_groups(checked, snapshot)

    def action_text(self, checked: Any, snapshot: TenantSnapshot) -> str:
        assert isinstance(checked, CheckedGroup)
        r = checked.request
        g = snapshot.groups.get(checked.group_id or "")
        name = g.display_name if g else r.group
        verb = "remove from" if r.action is Action.REMOVE else "add to"
        return f"{verb} group {name}" + (f" (rule {r.rule})" if r.rule else "")

    def target(self, checked: Any, snapshot: TenantSnapshot) -> tuple[str | None, str]:
        assert isinstance(checked, CheckedGroup)
        user = snapshot.users.get(checked.user_id) if checked.user_id else None
        if user is None:
            return checked.user_id, ""
        parts = {sid: s.part_number for sid, s in snapshot.skus.items()}
        return checked.user_id, ", ".join(parts.get(s, s) for s in user.assigned)

    def state_text(self, tokens: Sequence[str], names: Mapping[str, str]) -> str:
        return ", ".join(names.get(s, s) for s in tokens)

    def describe(self, operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
        return describe(operations, snapshot)

    def describe_rules(self, checked: Sequence[Any]) -> list[str]:
        """How many users each rule row reached (``plan`` prints it)."""
        return describe_rules(checked)


GROUPS = _Groups()

__all__ = ["GROUPS", "OP_HANDLERS", "CheckedGroup", "GroupRequest", "observe"]
