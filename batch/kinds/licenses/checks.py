"""Row checks of the licenses kind: one users-to-SKU request against the tenant snapshot.

Pure: every function here reads the request and the snapshot and writes findings into the request's
working record (:class:`Work`); nothing is sent anywhere. The rules are in ``batch.kinds.licenses``'s
docstring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from dataclasses import replace as _dc_replace

from ...errors import RowFinding, Severity, shorten
from ...models import Action, LicenseRequest, RequestStatus, Role, Sheet, Sku, TenantSnapshot, User
from ...sheets.catalog import ProductCatalog
from ...sheets.resolve import SkuResolver, resolve_plans, resolve_usage_location
from .findings import _ASSIGNABLE_STATUS, _finding, _is_error, is_user_key

# ----------------------------------------------------------------------------------------- resolving


class Resolver:
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
class Work:
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
    """(holds at all, holds directly, groups it is inherited from): ``User.holding``, the one rule."""
    h = user.holding(sku_id)
    return h.held, h.direct, h.groups


def _group_names(snapshot: TenantSnapshot, ids: Iterable[str]) -> str:
    names = []
    for gid in ids:
        g = snapshot.groups.get(gid)
        names.append(f"'{g.display_name}'" if g else f"'{gid}'")
    return ", ".join(names)


def _plan_names(sku: Sku | None, ids: Iterable[str]) -> str:
    names = {p.id: p.name for p in sku.service_plans} if sku else {}
    return ", ".join(sorted(names.get(i, i) for i in ids))


def check_row(w: Work, snapshot: TenantSnapshot, res: Resolver, sheet: Sheet) -> None:
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
        if not direct and target is not None and w.plan_ids <= target.disabled_plans:
            # Already replaced (e.g. the sheet is run a second time): the desired state holds -> unchanged.
            # A group may still give the old license (it was warned about as remove-still-inherited when the
            # direct one was replaced): that is not the row's to change, so it stays unchanged.
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
    if r.via_group and not direct:
        _via_group(w, user, sku, held, snapshot, row)
        return
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


def _drop_direct(w: Work, snapshot: TenantSnapshot, user: User, sku: Sku, groups: tuple[str, ...], verb: str,
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


def _via_group(w: Work, user: User, sku: Sku, held: bool, snapshot: TenantSnapshot, row: int) -> None:
    """A row that expects the license through a group (an export's "Held: group"): never a direct assignment."""
    states = [s for s in user.states if s.sku_id == sku.sku_id and s.assigned_by_group]
    names = _group_names(snapshot, dict.fromkeys(s.assigned_by_group or "" for s in states))
    if not states:
        w.findings.append(_finding(
            "group-expected", f"No group gives {user.upn} {_name(sku)}; this tool does not assign it directly.",
            "Add the user to the licensing group, or write 'direct' in the Held column to assign it directly.", row))
    elif not held:
        errors = ", ".join(sorted({s.error for s in states}))
        w.findings.append(_finding(
            "group-assignment-error", f"Group {names} assigns {_name(sku)} to {user.upn} but the assignment is in "
            f"error ({errors}): the user does not hold it.", "Fix the group assignment (seats, conflicting plans).",
            row))
    else:
        w.findings.append(_finding("held-through-group", f"{user.upn} holds {_name(sku)} through group {names}.",
                                   "", row))


def unchanged_finding(user: User, sku: Sku, asked: frozenset[str], row: int) -> RowFinding:
    state = user.direct(sku.sku_id)
    kept = (state.disabled_plans if state else frozenset()) - asked
    text = f"{user.upn} already has {_name(sku)}{' with those plans disabled' if asked else ''}: nothing to do."
    if kept:
        text += f" {_plan_names(sku, kept)} stay disabled as they are (this tool never re-enables plans)."
    return _finding("unchanged", text, "", row)


def location_findings(w: Work, row: int) -> None:
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
