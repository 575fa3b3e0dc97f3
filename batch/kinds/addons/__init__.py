"""Kind of change: a Power Platform environment's add-on allocation (environment-to-add-on rows).

Pieces: ``names`` (currency types and the names administrators use), ``rows`` (long and wide sheets ->
``AddonRequest``), ``checks`` (environments, add-ons, amounts, duplicates, capacity per currency type ->
``CheckedAddon``), ``plan`` (one allocation request per environment). :data:`ADDONS` is the kind object
``batch.kinds`` registers; :data:`OP_HANDLERS` say where its operations go and how they are read back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import Severity
from ...models import (
    Api,
    CapacityLine,
    CheckedAddon,
    CheckedRequest,
    Kind,
    Operation,
    OpKind,
    PlanOptions,
    Role,
    SeatChange,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
)
from ...sheets.catalog import ProductCatalog
from .checks import FINDINGS, env_label, validate_addons
from .names import addon_label
from .plan import describe, parse_tokens, plan_addons
from .rows import is_wide, parse_addon_requests


class _Addons:
    kind = Kind.ADDONS
    title = "Add-ons"
    state_label = "Allocation"
    findings: Mapping[str, tuple[Severity, str]] = FINDINGS

    def recognises(self, columns: Mapping[Role, int], headers: Sequence[str]) -> bool:
        if Role.ENVIRONMENT not in columns or Role.USER in columns:
            return False
        if Role.ADDON in columns:
            return Role.AMOUNT in columns
        return is_wide(headers, dict(columns))

    def parse(self, sheet: Sheet, *, catalog: ProductCatalog | None) -> list[Any]:
        return list(parse_addon_requests(sheet))

    def user_keys(self, requests: Sequence[Any]) -> set[str]:
        return set()

    def needs_powerplatform(self, requests: Sequence[Any]) -> bool:
        return bool(requests)

    def validate(
        self,
        sheet: Sheet,
        requests: Sequence[Any],
        snapshot: TenantSnapshot,
        *,
        catalog: ProductCatalog | None,
        policy: ShortfallPolicy,
        reserve_of: Callable[[int], int],
    ) -> tuple[list[CheckedRequest | CheckedAddon], list[CapacityLine]]:
        return validate_addons(requests, snapshot, env_column=sheet.header_for(Role.ENVIRONMENT), policy=policy,
                               reserve_of=reserve_of)

    def plan(
        self, checked: Sequence[CheckedRequest | CheckedAddon], snapshot: TenantSnapshot, options: PlanOptions
    ) -> tuple[list[Operation], list[SeatChange]]:
        return plan_addons(checked, snapshot, api_version=options.allocations_api)

    def action_text(self, checked: CheckedRequest | CheckedAddon, snapshot: TenantSnapshot) -> str:
        assert isinstance(checked, CheckedAddon)
        c = checked
        what = addon_label(c.currency_type) if c.currency_type else c.request.addon
        env = snapshot.environments.get(c.environment_id or "")
        where = env.display_name if env else c.request.environment
        if c.before is not None and c.after is not None:
            return f"{where}: {what} {c.before} -> {c.after}"
        return f"{where}: {what} {c.request.amount_text}".strip()

    def target(self, checked: CheckedRequest | CheckedAddon, snapshot: TenantSnapshot) -> tuple[str | None, str]:
        assert isinstance(checked, CheckedAddon)
        if checked.environment_id is None or checked.currency_type is None:
            return checked.environment_id, ""
        if checked.before is None:
            return checked.environment_id, ""
        return checked.environment_id, f"{addon_label(checked.currency_type)} {checked.before}"

    def state_text(self, tokens: Sequence[str], names: Mapping[str, str]) -> str:
        return ", ".join(f"{addon_label(ct)} {n}" for ct, n in sorted(parse_tokens(tokens).items()))

    def describe(self, operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
        return describe(operations, snapshot)


ADDONS = _Addons()


class _AllocationOp:
    op_kind = OpKind.ALLOCATE_ADDONS
    api = Api.POWERPLATFORM
    prerequisite = False
    what = "allocate the add-ons"

    def read_back(self, tenant: Any, target_ids: Sequence[str]) -> Mapping[str, Any]:
        found: Mapping[str, dict[str, int]] = tenant.read_allocations(target_ids)
        return found

    def in_effect(self, op: Operation, state: Any) -> bool:
        if not isinstance(state, dict):
            return False
        return all(state.get(ct, 0) == n for ct, n in parse_tokens(op.after).items())


OP_HANDLERS = (_AllocationOp(),)

__all__ = ["ADDONS", "OP_HANDLERS", "env_label"]
