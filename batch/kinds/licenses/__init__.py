"""Kind of change: a user's direct license (users-to-SKU rows).

Pieces: ``batch.sheets.rows`` reads the rows (``LicenseRequest``); ``checks`` (per row), ``cross`` (between a
user's rows) and ``capacity`` (seats per SKU) validate them into ``CheckedRequest``; ``plan`` merges a user's
rows into one ``assignLicense`` (and a usage-location PATCH before it); ``ops`` says where those go and how
their effect is read back. :data:`LICENSES` is the kind object ``batch.kinds`` registers.

Semantics (decisions, in one place):

- **Disabled plans are merged, never dropped.** The plans a row lists are ADDED to the plans the user already
  has disabled for that SKU by a direct assignment. The tool never silently re-enables a service an admin
  disabled; to re-enable, remove and assign again (or use the admin centre). So assigning a SKU the user already
  holds directly, with no new plan to disable, is ``unchanged``.
- **Usage location from the sheet wins.** A row that adds a license and names a usage location different from
  the user's sets it (HR exports are usually the source of truth): ``CheckedRequest.usage_location`` is the ISO
  code to set, with finding ``usage-location-change`` (warning) or ``usage-location-set`` (info, the user had
  none). Removals ignore the location column. A row whose license already matches but whose location differs
  is READY (only the location is set). A location given on one of a user's rows also serves that user's other
  rows that add a license (the plan sets it once, before the assignment); rows that disagree conflict.
- **Group-inherited licenses.** Graph counts a user once per SKU however many paths assign it. A direct
  assignment of a SKU the user already inherits is a real change but takes no seat (``assign-inherited``,
  info). A license held only through a group cannot be removed or replaced from the user (``remove-inherited``,
  ``replace-from-inherited``): remove the user from the group. Removing the direct copy of a license that is
  also inherited frees no seat (``remove-still-inherited``, warning).
- **Duplicates and conflicts.** Two rows asking the very same thing for one user and SKU: the first stands,
  the later ones are ``duplicate-row`` errors naming the first (exact copies too, so the rule is simple). Rows
  that ask different things of the same user and SKU (assign X and remove X, two replaces from X, replace to X
  and assign X) or give different usage locations: every row involved is a ``conflicting-rows`` error naming
  the others. Rows already in error for other reasons still take part (the sheet contradicts itself either way).
- **Service plans are checked on each user's RESULT** after all of their rows (``cross.plan_rules`` over
  ``plan_checks`` and the dated rules in ``rules``): ``plan-conflict`` and ``plan-dependency`` (errors, with the
  fix), ``redundant-license`` (warning: a pack that adds nothing still takes a seat), ``refused-before`` (a
  combination the tenant refused in an earlier run, ``TenantSnapshot.plan_refusals``).
- **Held means held** (``User.holding``): a license counts as held when a direct assignment exists or a
  group gives it in state Active/ActiveWithError; a group assignment in Error gives nothing and takes no seat.
- **Capacity is checked on the net change per SKU.** ``needed`` counts users who will gain the SKU (a user who
  holds it directly or through a group needs no seat); ``freed`` counts valid removals and replace-froms that
  make a user lose it. Short when ``needed - freed > enabled - consumed - reserve``. Under
  ``ShortfallPolicy.STOP`` every request that needs a seat of a short SKU becomes ``OVER_CAPACITY``
  (``capacity-shortfall``) and the wave is refused. Under ``PARTIAL`` requests are served by priority (lower
  first; rows without a priority after those with one), then sheet order; seats freed by removals count from the
  start, a replace's freed seat counts once the replace is served (and goes to the earliest waiting request);
  the rest become ``OVER_CAPACITY`` (``over-capacity``). ``Validation.capacity`` always shows the sheet's full
  demand, whatever the policy.
- **Reserve** is ``"N"`` seats or ``"N%"`` of ``prepaidUnits.enabled`` per SKU, rounded up.
"""


from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import Severity
from ...models import (
    Action,
    Api,
    CapacityLine,
    CheckedAddon,
    CheckedRequest,
    Kind,
    Operation,
    OpKind,
    PlanOptions,
    RequestStatus,
    Role,
    SeatChange,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
    User,
)
from ...sheets.catalog import ProductCatalog
from ..rules import RULE_FINDINGS, Rule, describe_rules, expand_rules, parse_rule
from .capacity import capacity
from .checks import Resolver, Work, check_row, location_findings, unchanged_finding
from .cross import cross_checks, plan_rules, plan_rules_after_capacity
from .findings import _ADDS, FINDINGS, _is_error
from .plan import describe, plan_licenses

_LICENSE_ROLES = frozenset({Role.SKU, Role.TO_SKU, Role.FROM_SKU})


def validate_licenses(
    sheet: Sheet,
    requests: Sequence[Any],
    snapshot: TenantSnapshot,
    *,
    catalog: ProductCatalog | None,
    policy: ShortfallPolicy,
    reserve_of: Callable[[int], int],
) -> tuple[list[CheckedRequest | CheckedAddon], list[CapacityLine]]:
    res = Resolver(snapshot, catalog, sheet)
    works = [Work(r, list(r.findings)) for r in requests]
    for w in works:
        check_row(w, snapshot, res, sheet)
    cross_checks(works)
    plan_rules(works, snapshot)  # service plans on each user's result (plan_checks, rules)
    for w in works:
        if any(_is_error(x) for x in w.findings):
            w.status = RequestStatus.ERROR
        elif not w.license_change and w.set_location is None:
            w.status = RequestStatus.UNCHANGED
            if w.user is not None and w.sku is not None and w.req.action in _ADDS:
                w.findings.append(unchanged_finding(w.user, w.sku, w.plan_ids, w.req.row_number))
        else:
            w.status = RequestStatus.READY
            if w.set_location is not None:
                location_findings(w, w.req.row_number)
    lines = capacity(works, snapshot, policy, reserve_of)
    if policy is ShortfallPolicy.PARTIAL:
        plan_rules_after_capacity(works, snapshot)  # rows left out for seats change what the others leave
    checked: list[CheckedRequest | CheckedAddon] = [
        CheckedRequest(
            request=w.req,
            status=w.status,
            findings=w.findings,
            user_id=w.user.id if w.user else None,
            sku_id=w.sku.sku_id if w.sku else None,
            from_sku_id=w.from_sku.sku_id if w.from_sku else None,
            disabled_plan_ids=w.plan_ids,
            usage_location=w.set_location,
        )
        for w in works
    ]
    return checked, lines


def _rule_of(request: Any) -> Rule | None:
    return parse_rule(request.user) if request.user and "@" not in request.user else None


def _parts(snapshot: TenantSnapshot) -> dict[str, str]:
    return {sid: s.part_number for sid, s in snapshot.skus.items()}


class _Licenses:
    kind = Kind.LICENSES
    title = "Licenses"
    state_label = "Licenses"
    findings: Mapping[str, tuple[Severity, str]] = {**FINDINGS, **RULE_FINDINGS}

    def recognises(self, columns: Mapping[Role, int], headers: Sequence[str]) -> bool:
        return Role.USER in columns and bool(_LICENSE_ROLES & columns.keys())

    def resolve(self, tenant: Any, sheet: Sheet, requests: list[Any], snapshot: TenantSnapshot) -> list[Any]:
        """Rule rows (``Department=Sales`` in the user column): one line per user reached (``batch.kinds.rules``)."""
        return expand_rules(tenant.graph, sheet, requests, snapshot, _rule_of)

    def describe_rules(self, checked: Sequence[Any]) -> list[str]:
        return describe_rules(checked)

    def parse(self, sheet: Sheet, *, catalog: ProductCatalog | None) -> list[Any]:
        from ...sheets.rows import parse_requests

        return list(parse_requests(sheet, catalog=catalog))

    def user_keys(self, requests: Sequence[Any]) -> set[str]:
        return {r.user for r in requests if r.user and _rule_of(r) is None}

    def needs_powerplatform(self, requests: Sequence[Any]) -> bool:
        return False

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
        return validate_licenses(sheet, requests, snapshot, catalog=catalog, policy=policy, reserve_of=reserve_of)

    def plan(
        self, checked: Sequence[CheckedRequest | CheckedAddon], snapshot: TenantSnapshot, options: PlanOptions
    ) -> tuple[list[Operation], list[SeatChange]]:
        return plan_licenses(checked, snapshot)

    def action_text(self, checked: CheckedRequest | CheckedAddon, snapshot: TenantSnapshot) -> str:
        """What the row asks, in words: "assign SPE_E5", "replace SPE_E3 -> SPE_E5", "remove X",
        followed by "set usage location DE" when the row also sets one."""
        assert isinstance(checked, CheckedRequest)
        c, parts = checked, _parts(snapshot)
        r = c.request
        to = parts.get(c.sku_id, r.sku) if c.sku_id else r.sku
        words: list[str] = []
        if r.action is Action.ASSIGN:
            words.append(f"assign {to}")
        elif r.action is Action.REMOVE:
            words.append(f"remove {to}")
        elif r.action is Action.REPLACE:
            frm = parts.get(c.from_sku_id, r.from_sku or "") if c.from_sku_id else (r.from_sku or "")
            words.append(f"replace {frm} -> {to}")
        elif r.sku:
            words.append(r.sku)
        if c.usage_location:
            words.append(f"set usage location {c.usage_location}")
        return "; ".join(w.strip() for w in words if w.strip())

    def target(self, checked: CheckedRequest | CheckedAddon, snapshot: TenantSnapshot) -> tuple[str | None, str]:
        assert isinstance(checked, CheckedRequest)
        user = snapshot.users.get(checked.user_id) if checked.user_id else None
        return checked.user_id, self.state_text(user.assigned, _parts(snapshot)) if user else ""

    def state_text(self, tokens: Sequence[str], names: Mapping[str, str]) -> str:
        return ", ".join(names.get(s, s) for s in tokens)

    def describe(self, operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
        return describe(operations, snapshot)


LICENSES = _Licenses()


def in_after_state(op: Operation, user: User) -> bool:
    """Does the user already hold exactly what the operation would leave them with?"""
    if op.kind is OpKind.SET_USAGE_LOCATION:
        want = op.body.get("usageLocation")
        return isinstance(want, str) and (user.usage_location or "").upper() == want.upper()
    for sku_id, disabled in op.add:
        d = user.direct(sku_id)
        if d is None or set(d.disabled_plans) != {p.lower() for p in disabled}:
            return False
    return all(user.direct(sku_id) is None for sku_id in op.remove)


class _UserOp:
    api = Api.GRAPH

    def __init__(self, op_kind: OpKind, *, prerequisite: bool, what: str) -> None:
        self.op_kind = op_kind
        self.prerequisite = prerequisite
        self.what = what

    def read_back(self, tenant: Any, target_ids: Sequence[str]) -> Mapping[str, Any]:
        users: Mapping[str, User] = tenant.read_users(target_ids)
        return users

    def in_effect(self, op: Operation, state: Any) -> bool:
        return isinstance(state, User) and in_after_state(op, state)


OP_HANDLERS = (
    _UserOp(OpKind.SET_USAGE_LOCATION, prerequisite=True, what="set the usage location"),
    _UserOp(OpKind.ASSIGN_LICENSE, prerequisite=False, what="assign the licenses"),
)

__all__ = ["LICENSES", "OP_HANDLERS", "in_after_state", "validate_licenses"]
