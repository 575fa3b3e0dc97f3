"""Validation: every license request checked against the tenant snapshot and the seats actually free.

``validate(sheet, requests, snapshot, ...)`` is a pure function of the rows and the snapshot: no I/O. Every
request comes back as a :class:`~batch.models.CheckedRequest` with a status and every finding (a
:class:`~batch.errors.RowFinding` whose ``code`` is listed in :data:`FINDING_CODES`).

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
- **Mutually exclusive / dependent service plans** cannot be checked without Microsoft's rule table: the tenant
  decides, and the apply engine reports its 400 on the row.
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

import math
import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as _dc_replace

from ._gc import paused_gc
from .errors import ConfigError, RowFinding, Severity, shorten
from .models import (
    Action,
    CapacityLine,
    CheckedRequest,
    LicenseRequest,
    RequestStatus,
    Role,
    Sheet,
    ShortfallPolicy,
    Sku,
    TenantSnapshot,
    User,
    Validation,
)
from .sheets.catalog import ProductCatalog
from .sheets.resolve import SkuResolver, resolve_plans, resolve_usage_location

_ERR, _WARN, _INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

#: Every row finding code, from reading the sheet (``batch.sheets``) and from validation: code -> (severity,
#: meaning). Codes are stable: reports, scripts and the result sheet key off them.
FINDING_CODES: dict[str, tuple[Severity, str]] = {
    # the user
    "user-missing": (_ERR, "The row names no user."),
    "user-malformed": (_ERR, "The user cell is neither an email-like user principal name nor an object id (GUID)."),
    "user-not-found": (_ERR, "No user with this UPN, mail or object id exists in the tenant."),
    "user-guest": (_WARN, "The user is a guest (B2B) account; licensing guests is unusual."),
    "user-disabled": (_WARN, "The user's account is disabled (sign-in blocked); the license still takes a seat."),
    # the action and the license
    "action-unknown": (_ERR, "The action cell is not a known word (assign, remove, replace and their synonyms)."),
    "action-missing": (_ERR, "The row gives no usable action (assign, remove or replace)."),
    "replace-incomplete": (_ERR, "A replace row needs both the license to take away and the one to give."),
    "replace-multiple": (_ERR, "A replace row names several licenses to take away or to give; one of each."),
    "from-sku-ignored": (_WARN, "A from-license was given on a row that is not a replace; it is ignored."),
    "priority-invalid": (_WARN, "The priority cell is not a whole number; the row has no priority."),
    "license-missing": (_ERR, "The row names no license."),
    "sku-unknown": (_ERR, "The license is not a known product name, string id or skuId."),
    "sku-not-in-tenant": (_ERR, "The product exists but the tenant has not bought it."),
    "sku-ambiguous": (_ERR, "The name matches several products (e.g. GCC or EEA variants); give the string id."),
    "sku-not-assignable": (_ERR, "The subscription cannot go to users (company-wide, suspended, deleted, locked)."),
    "plan-not-in-sku": (_ERR, "A service plan to disable is not part of that license."),
    "plans-ignored": (_WARN, "Disabled plans were given on a remove row; they are ignored."),
    # usage location (adds only)
    "usage-location-missing": (_ERR, "The user has no usage location and the row gives none; Graph would refuse."),
    "usage-location-invalid": (_ERR, "The usage location given is not an ISO 3166 country code or country name."),
    "usage-location-change": (_WARN, "The row's usage location differs from the user's; the row's will be set."),
    "usage-location-set": (_INFO, "The user has no usage location; the row's will be set before assigning."),
    # what the row asks vs what the user holds
    "unchanged": (_INFO, "The row already matches the tenant: nothing to do."),
    "assign-inherited": (_INFO, "The user inherits this license from a group; a direct assignment is added (no seat)."),
    "remove-not-held": (_INFO, "The user does not hold the license to remove: the desired state already holds."),
    "remove-inherited": (_ERR, "The license comes only from a group; it cannot be removed from the user directly."),
    "remove-still-inherited": (_WARN, "The direct license is removed but the user keeps it through a group."),
    "replace-from-not-held": (_ERR, "The user does not hold the license to replace."),
    "replace-from-inherited": (_ERR, "The license to replace comes only from a group; it cannot be removed directly."),
    "replace-same-sku": (_ERR, "The row replaces a license with itself."),
    "replace-reenables-plans": (_WARN, "Plans disabled in the old license are enabled in the new one."),
    # rows against each other
    "duplicate-row": (_ERR, "An earlier row already asks the same for this user and license."),
    "conflicting-rows": (_ERR, "Rows ask contradictory things for the same user and license (or usage location)."),
    # capacity
    "capacity-shortfall": (_ERR, "The license is short of seats for this sheet: the wave is refused (stop)."),
    "over-capacity": (_ERR, "Skipped: over capacity; higher-priority or earlier rows got the seats (partial)."),
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UPN = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_ADDS = (Action.ASSIGN, Action.REPLACE)
#: subscribedSku.capabilityStatus values whose seats can still be assigned (Warning = grace period).
_ASSIGNABLE_STATUS = frozenset({"Enabled", "Warning"})


def _finding(code: str, message: str, fix: str, row: int | None, column: str | None = None) -> RowFinding:
    return RowFinding(code, FINDING_CODES[code][0], message, fix, row, column)


def _is_error(f: RowFinding) -> bool:
    return f.severity is Severity.ERROR


def is_user_key(key: str) -> bool:
    """True when ``key`` looks like a user principal name / email address or an object id (GUID)."""
    return bool(_UPN.match(key) or _GUID.match(key))


# ------------------------------------------------------------------------------------------- reserve


def parse_reserve(reserve: str | int | None) -> Callable[[Sku], int]:
    """``"N"`` -> N seats per SKU; ``"N%"`` -> ceil(N% of the SKU's enabled units). Bad value -> ConfigError."""
    text = "0" if reserve is None else str(reserve).strip()
    fix = 'Give --reserve as a whole number of seats ("5") or a percentage of purchased seats ("2%").'
    if text.endswith("%"):
        try:
            pct = float(text[:-1].strip())
        except ValueError as e:
            raise ConfigError(f"--reserve '{reserve}' is not a percentage.", fix=fix) from e
        if not math.isfinite(pct) or pct < 0 or pct > 100:
            raise ConfigError(f"--reserve '{reserve}' must be between 0% and 100%.", fix=fix)
        return lambda sku: math.ceil(max(0, sku.enabled) * pct / 100 - 1e-9)
    try:
        n = int(text)
    except ValueError as e:
        raise ConfigError(f"--reserve '{reserve}' is not a number of seats.", fix=fix) from e
    if n < 0:
        raise ConfigError(f"--reserve '{reserve}' cannot be negative.", fix=fix)
    return lambda sku: n


# ----------------------------------------------------------------------------------------- resolving


class _Resolver:
    """Memoised name resolution through ``batch.sheets``'s helpers (a sheet repeats a handful of licenses,
    plans and countries 100,000 times). Findings come back without a row; callers stamp row and column."""

    def __init__(self, snapshot: TenantSnapshot, catalog: ProductCatalog | None, sheet: Sheet) -> None:
        self.catalog = catalog
        self._sku_resolver = SkuResolver(snapshot.skus, catalog)
        self._skus: dict[str, tuple[Sku | None, RowFinding | None]] = {}
        self._plans: dict[tuple[str, tuple[str, ...]], tuple[frozenset[str], tuple[RowFinding, ...]]] = {}
        self._locations: dict[str, tuple[str | None, RowFinding | None]] = {}
        self.col_sku = sheet.header_for(Role.SKU) or sheet.header_for(Role.TO_SKU)
        self.col_from = sheet.header_for(Role.FROM_SKU) or self.col_sku
        self.col_plans = sheet.header_for(Role.DISABLED_PLANS)
        self.col_location = sheet.header_for(Role.USAGE_LOCATION)
        self.col_user = sheet.header_for(Role.USER)

    def sku(self, text: str, *, to_add: bool) -> tuple[Sku | None, RowFinding | None]:
        """(the tenant's SKU, None) or (None, an error finding). A suspended, deleted or locked-out
        subscription can still lose seats, so only ``to_add`` checks its capabilityStatus."""
        hit = self._skus.get(text)
        if hit is None:
            got = self._sku_resolver.resolve(text)
            if isinstance(got, RowFinding):
                hit = (None, got)
            elif got.sku.capability_status not in _ASSIGNABLE_STATUS:
                hit = (
                    got.sku,
                    RowFinding(
                        "sku-not-assignable",
                        Severity.ERROR,
                        f"{got.label} is {got.sku.capability_status} in this tenant; its licenses cannot be assigned.",
                        "Renew or reactivate the subscription first, or use another license.",
                    ),
                )
            else:
                hit = (got.sku, None)
            self._skus[text] = hit
        if hit[1] is not None and hit[0] is not None and not to_add:
            return hit[0], None
        return (None, hit[1]) if hit[1] is not None else hit

    def plans(self, sku: Sku, texts: tuple[str, ...]) -> tuple[frozenset[str], tuple[RowFinding, ...]]:
        key = (sku.sku_id, texts)
        hit = self._plans.get(key)
        if hit is None:
            ids, bad = resolve_plans(texts, sku, self.catalog)
            hit = self._plans[key] = (ids, tuple(bad))
        return hit

    def location(self, text: str) -> tuple[str | None, RowFinding | None]:
        hit = self._locations.get(text)
        if hit is None:
            got = resolve_usage_location(text)
            hit = self._locations[text] = (None, got) if isinstance(got, RowFinding) else (got, None)
        return hit


# -------------------------------------------------------------------------------------- the checks


@dataclass(slots=True)
class _Work:
    """Working state of one request while it is being checked."""

    req: LicenseRequest
    findings: list[RowFinding]
    user: User | None = None
    sku: Sku | None = None
    from_sku: Sku | None = None
    plan_ids: frozenset[str] = frozenset()
    location: str | None = None  # the ISO code the row gives (valid), adds only
    set_location: str | None = None  # the code to SET (differs from the user's)
    license_change: bool = False  # the assignLicense part changes something
    gains: str | None = None  # skuId the user will gain (takes a seat)
    frees: str | None = None  # skuId the user will lose (frees a seat)
    status: RequestStatus = RequestStatus.READY
    touches: list[tuple[str, str]] = field(default_factory=list)  # (skuId, "add"|"remove")
    needs_location: bool = False  # adds a license, the user has no usage location, the row gives none


def _name(sku: Sku) -> str:
    return sku.part_number


def _held(user: User, sku_id: str) -> tuple[bool, bool, tuple[str, ...]]:
    """(holds at all, holds directly, groups it is inherited from)."""
    direct = False
    groups: list[str] = []
    seen = False
    for s in user.states:
        if s.sku_id == sku_id:
            seen = True
            if s.assigned_by_group is None:
                direct = True
            else:
                groups.append(s.assigned_by_group)
    if not seen and sku_id in user.assigned:
        direct = True  # no licenseAssignmentStates for it: assume direct
    return (direct or bool(groups) or sku_id in user.assigned), direct, tuple(groups)


def _group_names(snapshot: TenantSnapshot, ids: Iterable[str]) -> str:
    names = []
    for gid in ids:
        g = snapshot.groups.get(gid)
        names.append(f"'{g.display_name}'" if g else f"'{gid}'")
    return ", ".join(names)


def _plan_names(sku: Sku | None, ids: Iterable[str]) -> str:
    names = {p.id: p.name for p in sku.service_plans} if sku else {}
    return ", ".join(sorted(names.get(i, i) for i in ids))


def _check_row(w: _Work, snapshot: TenantSnapshot, res: _Resolver, sheet: Sheet) -> None:
    r = w.req
    row = r.row_number
    f = w.findings
    # -- the user
    key = r.user.strip()
    if not key:
        if not any(x.code == "user-missing" for x in r.findings):
            f.append(
                _finding(
                    "user-missing", "The row names no user.", "Fill in the user's UPN or email.", row, res.col_user
                )
            )
        return
    if not is_user_key(key):
        f.append(
            _finding(
                "user-malformed",
                f"User '{shorten(key)}' is not a user principal name (name@domain) or an object id.",
                "Give the user's sign-in name (e.g. alice@contoso.com) or object id.",
                row,
                res.col_user,
            )
        )
        return
    user = snapshot.find_user(key)
    if user is None:
        f.append(
            _finding(
                "user-not-found",
                f"No user '{shorten(key)}' in the tenant.",
                "Check the spelling, or create the user before licensing them.",
                row,
                res.col_user,
            )
        )
        return
    w.user = user
    if user.is_guest:
        f.append(
            _finding(
                "user-guest",
                f"{user.upn} is a guest account.",
                "Make sure a guest really needs this license.",
                row,
            )
        )
    if not user.account_enabled:
        f.append(
            _finding(
                "user-disabled",
                f"{user.upn}'s account is disabled; the license will still take a seat.",
                "Enable the account or drop the row if they have left.",
                row,
            )
        )
    # -- the action and licenses
    if any(_is_error(x) for x in r.findings):
        return  # the reader already said what is wrong with the license part of this row
    action = r.action
    if action is None:
        f.append(
            _finding(
                "action-missing", f"The row for {user.upn} gives no action.", "Write assign, remove or replace.", row
            )
        )
        return
    if not r.sku.strip():
        f.append(_finding("license-missing", f"The row for {user.upn} names no license.", "Fill in the license.", row))
        return
    given = (r.usage_location or "").strip()
    if given and action is not Action.REMOVE:
        code, lf = res.location(given)
        if lf is not None:
            f.append(_dc_replace(lf, row=row, column=lf.column or res.col_location))
        if code is not None:
            w.location = code
            if (user.usage_location or "").upper() != code:
                w.set_location = code
    sku, sf = res.sku(r.sku, to_add=action is not Action.REMOVE)
    if sf is not None:
        f.append(_dc_replace(sf, row=row, column=sf.column or res.col_sku))
    if sf is not None and _is_error(sf):
        sku = None
    from_sku: Sku | None = None
    if action is Action.REPLACE:
        if not (r.from_sku or "").strip():
            f.append(
                _finding(
                    "license-missing",
                    f"The replace row for {user.upn} does not say which license to take away.",
                    "Fill in the license to replace.",
                    row,
                )
            )
        else:
            from_sku, ff = res.sku(r.from_sku or "", to_add=False)
            if ff is not None:
                f.append(_dc_replace(ff, row=row, column=ff.column or res.col_from))
            if ff is not None and _is_error(ff):
                from_sku = None
    w.sku, w.from_sku = sku, from_sku
    if sku is None:
        return
    if action is Action.REPLACE and from_sku is None:
        return
    # -- disabled plans
    if r.disabled_plans:
        if action is Action.REMOVE:
            f.append(
                _finding(
                    "plans-ignored",
                    f"Disabled plans are ignored when removing {_name(sku)} from {user.upn}.",
                    "Leave the disabled plans cell empty on remove rows.",
                    row,
                )
            )
        else:
            ids, pf = res.plans(sku, r.disabled_plans)
            w.plan_ids = ids
            f.extend(_dc_replace(x, row=row, column=x.column or res.col_plans) for x in pf)
    # -- what the row changes
    if action is Action.REMOVE:
        w.touches.append((sku.sku_id, "remove"))
        held, direct, groups = _held(user, sku.sku_id)
        if not held:
            f.append(
                _finding(
                    "remove-not-held",
                    f"{user.upn} does not hold {_name(sku)}: nothing to remove.",
                    "",
                    row,
                )
            )
        elif not direct:
            f.append(
                _finding(
                    "remove-inherited",
                    f"{user.upn} gets {_name(sku)} from group {_group_names(snapshot, groups)}; "
                    "it cannot be removed from the user directly.",
                    f"Remove {user.upn} from group {_group_names(snapshot, groups)}.",
                    row,
                )
            )
        else:
            _drop_direct(w, snapshot, user, sku, groups, "removed", row)
        return

    # adds: assign and replace
    w.touches.append((sku.sku_id, "add"))
    if action is Action.REPLACE:
        assert from_sku is not None
        w.touches.append((from_sku.sku_id, "remove"))
        if from_sku.sku_id == sku.sku_id:
            f.append(
                _finding(
                    "replace-same-sku",
                    f"The row replaces {_name(sku)} with itself for {user.upn}.",
                    "Use assign to change disabled plans, or name two different licenses.",
                    row,
                )
            )
            return
        held, direct, groups = _held(user, from_sku.sku_id)
        target = user.direct(sku.sku_id)
        if not held and target is not None and w.plan_ids <= target.disabled_plans:
            # Already replaced (e.g. the sheet is run a second time): the desired state holds -> unchanged.
            w.touches.pop()
            return
        if not held:
            f.append(
                _finding(
                    "replace-from-not-held",
                    f"{user.upn} does not hold {_name(from_sku)}, so it cannot be replaced by {_name(sku)}.",
                    f"Use assign {_name(sku)} instead, or fix the license to replace.",
                    row,
                )
            )
        elif not direct:
            f.append(
                _finding(
                    "replace-from-inherited",
                    f"{user.upn} gets {_name(from_sku)} from group {_group_names(snapshot, groups)}; "
                    "it cannot be replaced on the user directly.",
                    f"Remove {user.upn} from group {_group_names(snapshot, groups)} and assign {_name(sku)}.",
                    row,
                )
            )
        else:
            _drop_direct(w, snapshot, user, from_sku, groups, "replaced", row)
            old = user.direct(from_sku.sku_id)
            if old is not None and old.disabled_plans:
                new_ids = {p.id for p in sku.service_plans}
                existing_new = user.direct(sku.sku_id)
                kept = w.plan_ids | (existing_new.disabled_plans if existing_new else frozenset())
                lost = (old.disabled_plans & new_ids) - kept
                if lost:
                    f.append(
                        _finding(
                            "replace-reenables-plans",
                            f"{user.upn} has {_plan_names(from_sku, lost)} disabled in {_name(from_sku)}; "
                            f"they will be enabled in {_name(sku)}.",
                            "List them in the disabled plans column if they should stay off.",
                            row,
                        )
                    )

    held, direct, groups = _held(user, sku.sku_id)
    if direct:
        state = user.direct(sku.sku_id)
        existing = state.disabled_plans if state else frozenset()
        if not w.plan_ids <= existing:
            w.license_change = True  # more plans to disable
    else:
        w.license_change = True
        if held:
            f.append(
                _finding(
                    "assign-inherited",
                    f"{user.upn} already gets {_name(sku)} from group {_group_names(snapshot, groups)}; "
                    "a direct assignment is added as well (no extra seat).",
                    "",
                    row,
                )
            )
        else:
            w.gains = sku.sku_id

    # -- usage location (only when something is added)
    if not w.license_change:
        return
    if w.set_location is None and not user.usage_location and not (r.usage_location or "").strip():
        w.needs_location = True  # settled in _cross_checks: another row for this user may give one


def _drop_direct(w: _Work, snapshot: TenantSnapshot, user: User, sku: Sku, groups: tuple[str, ...], verb: str,
                 row: int) -> None:  # fmt: skip
    """The row takes the user's direct ``sku`` away (remove, or the old side of a replace): a seat is freed
    unless a group still gives the user the same license."""
    w.license_change = True
    if not groups:
        w.frees = sku.sku_id
        return
    names = _group_names(snapshot, groups)
    w.findings.append(
        _finding(
            "remove-still-inherited",
            f"{user.upn} keeps {_name(sku)} through group {names} after the direct license is {verb}; "
            "no seat is freed.",
            f"Also remove {user.upn} from group {names} if they should lose it.",
            row,
        )
    )


def _unchanged(user: User, sku: Sku, asked: frozenset[str], row: int) -> RowFinding:
    state = user.direct(sku.sku_id)
    kept = (state.disabled_plans if state else frozenset()) - asked
    text = f"{user.upn} already has {_name(sku)}{' with those plans disabled' if asked else ''}: nothing to do."
    if kept:
        text += f" {_plan_names(sku, kept)} stay disabled as they are (this tool never re-enables plans)."
    return _finding("unchanged", text, "", row)


def _location_findings(w: _Work, row: int) -> None:
    """Findings for a location that will be set (only when the row is otherwise going ahead)."""
    user = w.user
    assert user is not None and w.set_location is not None
    if user.usage_location:
        w.findings.append(
            _finding(
                "usage-location-change",
                f"{user.upn}'s usage location changes from {user.usage_location} to {w.set_location}.",
                "Check the sheet if the user should keep their current location.",
                row,
            )
        )
    else:
        w.findings.append(
            _finding(
                "usage-location-set",
                f"{user.upn}'s usage location will be set to {w.set_location} before the license is assigned.",
                "",
                row,
            )
        )


def _rows_text(numbers: Sequence[int]) -> str:
    uniq = sorted(set(numbers))
    return ("row " if len(uniq) == 1 else "rows ") + ", ".join(str(n) for n in uniq)


def _cross_checks(works: list[_Work]) -> None:
    """Duplicates and conflicts between rows of the same user. One pass over the touches, no O(n^2)."""
    by_user_sku: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_user_loc: dict[str, list[int]] = defaultdict(list)
    for i, w in enumerate(works):
        if w.user is None:
            continue
        uid = w.user.id
        for sku_id, _kind in w.touches:
            lst = by_user_sku[(uid, sku_id)]
            if not lst or lst[-1] != i:
                lst.append(i)
        if w.location is not None:
            by_user_loc[uid].append(i)

    dup_of: dict[int, int] = {}  # work -> first work it duplicates
    conflict_with: dict[int, set[int]] = defaultdict(set)
    for (_uid, _sku), idx in by_user_sku.items():
        if len(idx) < 2:
            continue
        sigs = {_signature(works[i]) for i in idx}
        if len(sigs) == 1:
            first = idx[0]
            for i in idx[1:]:
                dup_of.setdefault(i, first)
        else:
            for i in idx:
                conflict_with[i].update(j for j in idx if j != i)
    for _uid, idx in by_user_loc.items():
        if len(idx) < 2 or len({works[i].location for i in idx}) < 2:
            continue
        for i in idx:
            conflict_with[i].update(j for j in idx if j != i and works[j].location != works[i].location)

    for w in works:
        if not w.needs_location:
            continue
        assert w.user is not None
        given = {loc for j in by_user_loc.get(w.user.id, ()) if (loc := works[j].location)}
        if len(given) == 1:
            w.set_location = given.pop()  # another row for this user gives it: set it before this one too
        else:
            disagree = " (the user's other rows disagree on it)" if given else ""
            w.findings.append(
                _finding(
                    "usage-location-missing",
                    f"{w.user.upn} has no usage location and the row gives none{disagree}.",
                    "Add a usage location column (two-letter country code) or set it on the user.",
                    w.req.row_number,
                    None,
                )
            )

    for i, first in sorted(dup_of.items()):
        if i in conflict_with:
            continue  # the conflict says more
        w, w0 = works[i], works[first]
        assert w.user is not None
        w.findings.append(
            _finding(
                "duplicate-row",
                f"Row {w0.req.row_number} already asks the same for {w.user.upn} ({_describe(w0)}).",
                f"Delete this row, or row {w0.req.row_number}.",
                w.req.row_number,
            )
        )
    for i, others in sorted(conflict_with.items()):
        w = works[i]
        assert w.user is not None
        desc = "; ".join(
            f"row {works[j].req.row_number}: {_describe(works[j])}"
            for j in sorted(others, key=lambda j: (works[j].req.row_number, j))
        )
        w.findings.append(
            _finding(
                "conflicting-rows",
                f"This row ({_describe(w)}) contradicts {desc} for {w.user.upn}.",
                f"Keep one of {_rows_text([w.req.row_number, *(works[j].req.row_number for j in others)])} "
                "for this user and license.",
                w.req.row_number,
            )
        )


def _signature(w: _Work) -> tuple[object, ...]:
    return (
        w.req.action,
        w.sku.sku_id if w.sku else None,
        w.from_sku.sku_id if w.from_sku else None,
    )


def _describe(w: _Work) -> str:
    a = w.req.action
    s = _name(w.sku) if w.sku else w.req.sku
    loc = f" (usage location {w.location})" if w.location else ""
    if a is Action.REPLACE:
        fr = _name(w.from_sku) if w.from_sku else (w.req.from_sku or "")
        return f"replace {fr} -> {s}{loc}"
    return f"{a.value if a else '?'} {s}{loc}"


# ---------------------------------------------------------------------------------------- capacity


def _capacity(
    works: list[_Work],
    snapshot: TenantSnapshot,
    policy: ShortfallPolicy,
    reserve_of: Callable[[Sku], int],
) -> list[CapacityLine]:
    needed: dict[str, int] = defaultdict(int)
    freed: dict[str, int] = defaultdict(int)
    for w in works:
        if w.status is not RequestStatus.READY:
            continue
        if w.gains:
            needed[w.gains] += 1
        if w.frees:
            freed[w.frees] += 1
    lines: list[CapacityLine] = []
    by_id = {s.sku_id: s for s in snapshot.skus.values()}
    for sku_id in set(needed) | set(freed):
        sku = by_id[sku_id]
        lines.append(
            CapacityLine(
                sku_id=sku_id,
                part_number=sku.part_number,
                enabled=sku.enabled,
                consumed=sku.consumed,
                reserve=reserve_of(sku),
                needed=needed.get(sku_id, 0),
                freed=freed.get(sku_id, 0),
            )
        )
    lines.sort(key=lambda c: (c.part_number.upper(), c.sku_id))

    if policy is ShortfallPolicy.STOP:
        texts: dict[str, tuple[str, str]] = {}
        for c in lines:
            if c.short:
                texts[c.sku_id] = (
                    f"{c.part_number} is short of seats: {c.available} available"
                    f"{f' (after keeping {c.reserve} in reserve)' if c.reserve else ''}, "
                    f"this sheet needs {c.net} net ({c.needed} users gain it, {c.freed} lose it): "
                    f"short by {c.short}. Nothing in this wave will be applied.",
                    f"Buy or free {c.short} {c.part_number} seats, drop rows, or run with --on-shortfall partial.",
                )
        if texts:
            for w in works:
                if w.status is RequestStatus.READY and w.gains in texts:
                    message, fix = texts[w.gains]
                    w.status = RequestStatus.OVER_CAPACITY
                    w.findings.append(_finding("capacity-shortfall", message, fix, w.req.row_number))
        return lines

    # PARTIAL: serve requests in priority, then sheet order. A served replace frees its old seat, which goes
    # to the earliest request still waiting for that SKU.
    if not any(c.short for c in lines):
        return lines
    budget: dict[str, int] = {c.sku_id: c.available for c in lines}
    takers: list[int] = []
    for i, w in enumerate(works):
        if w.status is not RequestStatus.READY:
            continue
        if w.gains:
            takers.append(i)
        elif w.frees:
            budget[w.frees] += 1  # pure removals always go ahead
    takers.sort(key=lambda i: _priority_key(works[i], i))
    waiting: dict[str, deque[int]] = defaultdict(deque)
    served: set[int] = set()

    def serve(i: int) -> None:
        todo = [i]
        while todo:
            j = todo.pop()
            wj = works[j]
            assert wj.gains is not None
            budget[wj.gains] -= 1
            served.add(j)
            fr = wj.frees
            if fr:
                budget[fr] += 1  # one seat back: the earliest request waiting for it gets it
                q = waiting.get(fr)
                if q:
                    todo.append(q.popleft())

    for i in takers:
        g = works[i].gains
        assert g is not None
        if budget[g] > 0:
            serve(i)
        else:
            waiting[g].append(i)
    skipped: dict[str, tuple[str, str, str]] = {
        c.sku_id: (
            f"Skipped: over capacity. No {c.part_number} seat left for ",
            f" ({c.available} available{f' after keeping {c.reserve} in reserve' if c.reserve else ''}, "
            f"{c.freed} freed by this sheet, {c.needed} users asking: short by {c.short}).",
            f"Buy or free {c.short} {c.part_number} seats and run the skipped rows again, "
            "or give this row a lower priority number.",
        )
        for c in lines
    }
    for i in takers:
        if i in served:
            continue
        w = works[i]
        assert w.gains is not None and w.user is not None
        head, tail, fix = skipped[w.gains]
        w.status = RequestStatus.OVER_CAPACITY
        w.findings.append(_finding("over-capacity", head + w.user.upn + tail, fix, w.req.row_number))
    return lines


def _priority_key(w: _Work, i: int) -> tuple[int, int, int]:
    p = w.req.priority
    return (0, p, i) if p is not None else (1, 0, i)


# ------------------------------------------------------------------------------------------- public


def validate(
    sheet: Sheet,
    requests: Sequence[LicenseRequest],
    snapshot: TenantSnapshot,
    *,
    catalog: ProductCatalog | None = None,
    policy: ShortfallPolicy = ShortfallPolicy.STOP,
    reserve: str | int = "0",
) -> Validation:
    """Check every request against ``snapshot`` and the free seats; see the module docstring for the rules.

    Pure and deterministic: the same rows and snapshot give the same statuses, findings and capacity.
    Raises ``ConfigError`` for a bad ``reserve``.
    """
    reserve_of = parse_reserve(reserve)
    policy = ShortfallPolicy(policy)
    with paused_gc():
        return _validate(sheet, requests, snapshot, catalog, policy, reserve_of)


def _validate(
    sheet: Sheet,
    requests: Sequence[LicenseRequest],
    snapshot: TenantSnapshot,
    catalog: ProductCatalog | None,
    policy: ShortfallPolicy,
    reserve_of: Callable[[Sku], int],
) -> Validation:
    res = _Resolver(snapshot, catalog, sheet)
    works = [_Work(r, list(r.findings)) for r in requests]
    for w in works:
        _check_row(w, snapshot, res, sheet)
    _cross_checks(works)
    for w in works:
        if any(_is_error(x) for x in w.findings):
            w.status = RequestStatus.ERROR
        elif not w.license_change and w.set_location is None:
            w.status = RequestStatus.UNCHANGED
            if w.user is not None and w.sku is not None and w.req.action in _ADDS:
                w.findings.append(_unchanged(w.user, w.sku, w.plan_ids, w.req.row_number))
        else:
            w.status = RequestStatus.READY
            if w.set_location is not None:
                _location_findings(w, w.req.row_number)
    capacity = _capacity(works, snapshot, policy, reserve_of)
    checked = [
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
    return Validation(sheet=sheet, requests=checked, capacity=capacity, snapshot=snapshot, policy=policy)


def summarise(validation: Validation) -> dict[str, int]:
    """Count of requests per status (status value -> count), every status present."""
    out = {s.value: 0 for s in RequestStatus}
    for c in validation.requests:
        out[c.status.value] += 1
    return out


__all__ = ["FINDING_CODES", "is_user_key", "parse_reserve", "summarise", "validate"]
