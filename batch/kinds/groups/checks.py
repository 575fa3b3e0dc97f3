"""Checking membership rows against the snapshot: per row, across rows, and the seats the members will take.

Capacity goes through the shared policy (``batch.kinds.capacity``) on the net change per SKU, like direct
assignments: a user added to a group needs a seat of each SKU the group gives that they do not hold yet
(directly or through another group); a user taken out frees a seat of each SKU they held only through this
group. A seat a group cannot give does not fail the write: Entra puts the member's assignment in Error
(``CountViolation``) and the results say so. Validation predicts it; ``stop`` refuses the wave, ``partial``
skips the rows past the seats left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...errors import RowFinding, Severity
from ...models import (
    Action,
    CapacityLine,
    Group,
    Kind,
    RequestStatus,
    Role,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
    User,
)
from ...sheets.catalog import ProductCatalog
from ..capacity import Demand, apply_policy
from ..licenses.checks import Resolver
from ..licenses.findings import is_user_key
from ..licenses.plan_checks import PlanChecker, RowChange
from ..rules import RULE_FINDINGS
from .records import CheckedGroup, GroupRequest
from .resolve import candidates

_ERR, _WARN, _INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

FINDINGS: dict[str, tuple[Severity, str]] = {
    "user-missing": (_ERR, "The row names no user."),
    "user-malformed": (_ERR, "The user cell is neither an email-like user principal name nor an object id (GUID)."),
    "user-not-found": (_ERR, "No user with this UPN, mail or object id exists in the tenant."),
    "user-guest": (_WARN, "The user is a guest (B2B) account; licensing guests is unusual."),
    "user-disabled": (_WARN, "The user's account is disabled (sign-in blocked); the license still takes a seat."),
    "action-unknown": (_ERR, "The action cell is not a known word (assign, remove, replace and their synonyms)."),
    "priority-invalid": (_WARN, "The priority cell is not a whole number; the row has no priority."),
    "group-missing": (_ERR, "A membership row names no group."),
    "group-action-replace": (_ERR, "Replace does not apply to a group membership: remove and add rows instead."),
    "group-unknown": (_ERR, "No group with this display name or object id exists in the tenant."),
    "group-ambiguous": (_ERR, "Several groups have this display name; give the group's object id."),
    "group-dynamic": (_ERR, "The group's members come from a rule (dynamic membership): it cannot take members."),
    "group-no-license": (_WARN, "The group gives no license: membership changes no license."),
    "group-license-mismatch": (_ERR, "The license column names a license the group does not give."),
    "group-license-conflict": (_ERR, "A service plan the group gives conflicts with (or depends on a plan missing "
                                     "from) the user's licenses: Entra would leave the group's license in Error."),
    "member-already": (_INFO, "The user is already a member of the group: nothing to do."),
    "member-not": (_INFO, "The user is not a member of the group: nothing to remove."),
    "direct-redundant": (_WARN, "The user already holds a license the group gives, directly: the direct copy is "
                                "redundant once the group's applies (remove it later; no second seat is taken)."),
    "remove-keeps-license": (_INFO, "The user keeps the group's license through a direct assignment or another group."),
    "duplicate-row": (_ERR, "An earlier row already asks the same for this user and group."),
    "user-reached-twice": (_ERR, "The user is reached by two rows for the same group (a rule and another row)."),
    "conflicting-rows": (_ERR, "Rows both add the user to and remove them from the same group."),
    **RULE_FINDINGS,
}


def _f(code: str, message: str, fix: str, row: int, column: str | None = None) -> RowFinding:
    return RowFinding(code, FINDINGS[code][0], message, fix, row, column)


def _names(snapshot: TenantSnapshot, sku_ids: Sequence[str]) -> str:
    return ", ".join(snapshot.skus[s].part_number if s in snapshot.skus else s for s in sku_ids)


class _Work:
    __slots__ = ("findings", "gains", "group", "loses", "req", "status", "user")

    def __init__(self, req: GroupRequest) -> None:
        self.req = req
        self.findings: list[RowFinding] = list(req.findings)
        self.user: User | None = None
        self.group: Group | None = None
        self.status = RequestStatus.READY
        self.gains: tuple[str, ...] = ()
        self.loses: tuple[str, ...] = ()


def _predict_conflicts(w: _Work, user: User, g: Group, checker: PlanChecker, row: int) -> None:
    """Entra applies the same service-plan rules to a group's license as to a direct one, but the write succeeds
    and the member's assignment ends in Error (MutuallyExclusiveViolation, DependencyViolation): predict it."""
    changes = [RowChange(index=i, row_number=row, action=Action.ASSIGN, sku_id=s, plan_ids=frozenset(d))
               for i, (s, d) in enumerate(g.licenses) if s in w.gains]
    if not changes:
        return
    for _i, found in checker.check_user(user, changes):
        if found.code in ("plan-conflict", "plan-dependency", "refused-before"):
            w.findings.append(_f("group-license-conflict", f"Row {row}: through '{g.display_name}', {found.message}",
                                 found.fix or "Disable the conflicting plan on the group's license, or use another "
                                 "group.", row))
            return


def _check_row(w: _Work, snapshot: TenantSnapshot, sheet: Sheet, res: Resolver, checker: PlanChecker) -> None:
    r, f, row = w.req, w.findings, w.req.row_number
    col_user, col_group = sheet.header_for(Role.USER), sheet.header_for(Role.GROUP) or "Group"
    if any(x.code.startswith("rule-") and x.severity is _ERR for x in f) or (
        r.rule is not None and not r.user
    ):
        return
    # -- the group
    if r.group:
        found = candidates(snapshot, r.group)
        if not found:
            f.append(_f("group-unknown", f"Row {row}: no group '{r.group}' in the tenant (column {col_group}).",
                        "Check the group's display name, or give its object id.", row, col_group))
        elif len(found) > 1:
            ids = ", ".join(g.id for g in found)
            f.append(_f("group-ambiguous", f"Row {row}: {len(found)} groups are called '{r.group}': {ids} "
                        f"(column {col_group}).", "Give the object id of the one you mean in the group column.",
                        row, col_group))
        else:
            w.group = g = found[0]
            if g.dynamic:
                rule = f" (rule: {g.membership_rule})" if g.membership_rule else ""
                f.append(_f("group-dynamic", f"Row {row}: '{g.display_name}' has dynamic membership{rule}; "
                            "Graph refuses to add or remove its members.",
                            "Change the user's attributes so the rule includes or excludes them, or use an assigned "
                            "(static) group.", row, col_group))
            elif not g.licenses:
                f.append(_f("group-no-license", f"Row {row}: '{g.display_name}' gives no license; the membership "
                            "change assigns or removes nothing.",
                            "Use a licensing group, or assign the license to the group first.", row, col_group))
            if r.license and g.licenses:
                sku, problem = res.sku(r.license, to_add=False)
                col_lic = res.col_sku
                if problem is not None:
                    f.append(replace_row(problem, row, col_lic))
                elif sku is not None and sku.sku_id not in {s for s, _ in g.licenses}:
                    f.append(_f("group-license-mismatch", f"Row {row}: '{g.display_name}' gives "
                                f"{_names(snapshot, [s for s, _ in g.licenses])}, not {sku.part_number} "
                                f"(column {col_lic}).",
                                "Pick the group that gives this license, or correct the license column.",
                                row, col_lic))
    # -- the user
    key = r.user.strip()
    if not key:
        if not any(x.code == "user-missing" for x in f):
            f.append(_f("user-missing", f"Row {row}: the row names no user.", "Fill in the user's UPN or email.",
                        row, col_user))
        return
    if not is_user_key(key):
        f.append(_f("user-malformed", f"User '{key}' is not a user principal name (name@domain) or an object id.",
                    "Give the user's sign-in name (e.g. alice@contoso.com) or object id.", row, col_user))
        return
    user = snapshot.find_user(key)
    if user is None:
        f.append(_f("user-not-found", f"No user '{key}' in the tenant.",
                    "Check the spelling, or create the user before adding them to the group.", row, col_user))
        return
    w.user = user
    if user.is_guest:
        f.append(_f("user-guest", f"{user.upn} is a guest account.", "Make sure a guest really needs this license.",
                    row))
    if not user.account_enabled:
        f.append(_f("user-disabled", f"{user.upn}'s account is disabled; the group's license still takes a seat.",
                    "Check the user should get the license while they cannot sign in.", row))
    g = w.group
    if g is None or g.dynamic or r.action not in (Action.ASSIGN, Action.REMOVE):
        return
    member = g.members is not None and user.id in g.members
    skus = [s for s, _ in g.licenses]
    if r.action is Action.ASSIGN:
        if member:
            f.append(_f("member-already", f"{user.upn} is already a member of '{g.display_name}'.", "", row))
            w.status = RequestStatus.UNCHANGED
            return
        w.gains = tuple(s for s in skus if not user.holding(s).held)
        _predict_conflicts(w, user, g, checker, row)
        direct = [s for s in skus if user.holding(s).direct]
        if direct:
            f.append(_f("direct-redundant", f"{user.upn} already holds {_names(snapshot, direct)} directly; "
                        f"'{g.display_name}' gives it too, so the direct assignment becomes redundant.",
                        "Once the group's license is Active, remove the direct assignment (a reconcile sheet can).",
                        row))
    else:
        if not member:
            f.append(_f("member-not", f"{user.upn} is not a member of '{g.display_name}'.", "", row))
            w.status = RequestStatus.UNCHANGED
            return
        w.loses = tuple(s for s in skus if set(user.holding(s).groups) <= {g.id} and not user.holding(s).direct)
        kept = [s for s in skus if s not in w.loses and user.holding(s).held]
        if kept:
            f.append(_f("remove-keeps-license", f"{user.upn} keeps {_names(snapshot, kept)} after leaving "
                        f"'{g.display_name}' (a direct assignment or another group gives it).", "", row))


def replace_row(f: RowFinding, row: int, column: str | None) -> RowFinding:
    return RowFinding(f.code, f.severity, f"Row {row}: {f.message}", f.fix, row, column)


def _cross(works: Sequence[_Work]) -> None:
    """Duplicates and contradictions between rows about the same user and group."""
    first: dict[tuple[str, str], _Work] = {}
    for w in works:
        if w.user is None or w.group is None:
            continue
        key = (w.user.id, w.group.id)
        prev = first.get(key)
        if prev is None:
            first[key] = w
            continue
        row, prow = w.req.row_number, prev.req.row_number
        if prev.req.action is not w.req.action:
            for x, other in ((prev, row), (w, prow)):
                x.findings.append(_f("conflicting-rows", f"Row {x.req.row_number}: rows {prow} and {row} both add "
                                     f"{w.user.upn} to and remove them from '{w.group.display_name}'.",
                                     "Keep one of the rows.", x.req.row_number))
                _ = other
        elif prev.req.rule is not None or w.req.rule is not None:
            how = " and ".join(f"rule '{x.req.rule}'" if x.req.rule else f"row {x.req.row_number}" for x in (prev, w))
            w.findings.append(_f("user-reached-twice", f"Row {row}: {w.user.upn} is reached twice for "
                                 f"'{w.group.display_name}' ({how}); only row {prow}'s line stands.",
                                 "Drop the user from one of the rows (or narrow the rule).", row))
        else:
            w.findings.append(_f("duplicate-row", f"Row {row}: row {prow} already asks the same for {w.user.upn} "
                                 f"and '{w.group.display_name}'.", "Delete the duplicate row.", row))


def validate_groups(
    sheet: Sheet,
    requests: Sequence[GroupRequest],
    snapshot: TenantSnapshot,
    *,
    catalog: ProductCatalog | None,
    policy: ShortfallPolicy,
    reserve_of: Callable[[int], int],
) -> tuple[list[CheckedGroup], list[CapacityLine]]:
    res = Resolver(snapshot, catalog, sheet)
    works = [_Work(r) for r in requests]
    checker = PlanChecker(snapshot, getattr(snapshot, "plan_refusals", ()))
    for w in works:
        _check_row(w, snapshot, sheet, res, checker)
    _cross(works)
    for w in works:
        if any(x.severity is _ERR for x in w.findings):
            w.status = RequestStatus.ERROR
        elif w.status is RequestStatus.READY and (w.user is None or w.group is None):
            w.status = RequestStatus.UNCHANGED  # a rule that reached nobody
    lines = _capacity(works, snapshot, policy, reserve_of)
    checked = [CheckedGroup(request=w.req, status=w.status, findings=w.findings,
                            user_id=w.user.id if w.user else None, group_id=w.group.id if w.group else None,
                            gains=w.gains, loses=w.loses) for w in works]
    return checked, lines


def _capacity(works: Sequence[_Work], snapshot: TenantSnapshot, policy: ShortfallPolicy,
              reserve_of: Callable[[int], int]) -> list[CapacityLine]:
    needed: dict[str, int] = {}
    freed: dict[str, int] = {}
    demands: list[Demand] = []
    ready = [w for w in works if w.status is RequestStatus.READY]
    for i, w in enumerate(ready):
        upn = w.user.upn if w.user else w.req.user
        for s in w.gains:
            needed[s] = needed.get(s, 0) + 1
            demands.append(Demand(index=i, row_number=w.req.row_number, priority=w.req.priority, pool=s, amount=1,
                                  who=upn))
        for s in w.loses:
            freed[s] = freed.get(s, 0) + 1
            demands.append(Demand(index=i, row_number=w.req.row_number, priority=w.req.priority, frees=s,
                                  frees_amount=1, who=upn))
    lines = []
    for sid in sorted(set(needed) | set(freed)):
        sku = snapshot.skus.get(sid)
        if sku is None:
            continue
        lines.append(CapacityLine(sku_id=sid, part_number=sku.part_number, enabled=sku.enabled,
                                  consumed=sku.consumed, reserve=reserve_of(sku.enabled), needed=needed.get(sid, 0),
                                  freed=freed.get(sid, 0), kind=Kind.LICENSES, label=sku.product_name or ""))
    refused = apply_policy(lines, demands, policy)
    for i, finding in refused.items():
        w = ready[i]
        w.findings.append(finding)
        w.status = RequestStatus.OVER_CAPACITY
    return lines


__all__ = ["FINDINGS", "validate_groups"]
