"""Validating environment-to-add-on rows against the snapshot and the capacity purchased. Pure.

- **Environment** by id (GUID), by ``Default-{tenantId}`` (or "Default"), or by display name, case-insensitive;
  a name two environments share is ``environment-ambiguous`` listing both ids.
- **Add-on** by currencyType or by a name administrators use (``names.py``); anything else is
  ``addon-unknown`` with the nearest names.
- **Amount**: absolute, or a change of the current allocation; a result below 0 is ``amount-negative``; equal
  to the current allocation is ``unchanged``.
- **Rows against each other**: the same environment and add-on twice is ``duplicate-row`` when the rows agree,
  ``conflicting-rows`` when they do not.
- **Capacity** per currency type, net like seats: what the sheet sets on the environments it names must fit in
  what was purchased minus what the environments it does not name hold (minus ``--reserve``). ``stop`` and
  ``partial`` behave as for licenses (``batch.kinds.capacity``); under ``partial`` a row that raises an
  allocation needs the increase free, a row that lowers one gives the units back.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ...errors import RowFinding, Severity
from ...models import (
    AddonRequest,
    CapacityLine,
    CheckedAddon,
    CheckedRequest,
    Environment,
    Kind,
    RequestStatus,
    Role,
    ShortfallPolicy,
    TenantSnapshot,
)
from ..capacity import Demand, apply_policy
from .names import BY_CURRENCY, addon_label, nearest_addons, resolve_addon
from .rows import READ_FINDINGS

_GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$")

FINDINGS: dict[str, tuple[Severity, str]] = {
    **READ_FINDINGS,
    "environment-unknown": (Severity.ERROR, "No Power Platform environment with this id or name exists."),
    "environment-ambiguous": (Severity.ERROR, "Several environments have this display name; give the id."),
    "addon-unknown": (Severity.ERROR, "The add-on is not a known currency type or add-on name."),
    "addon-not-in-tenant": (Severity.ERROR, "The tenant has no capacity of this add-on at all."),
    "amount-negative": (Severity.ERROR, "The change would leave the environment with less than 0."),
    "unchanged": (Severity.INFO, "The row already matches the tenant: nothing to do."),
    "duplicate-row": (Severity.ERROR, "An earlier row already asks the same for this environment and add-on."),
    "conflicting-rows": (Severity.ERROR, "Rows ask different amounts of the same add-on for the same environment."),
}


class RowPlaces(Protocol):
    """Where a row is when the rows come from several sheets (``batch.desired.where.SheetsOf``)."""

    def header(self, row: int, role: Role) -> str | None: ...

    def row_name(self, row: int, number: int, *, seen_from: int | None) -> str: ...


def _finding(code: str, message: str, fix: str, row: int, column: str | None = None) -> RowFinding:
    return RowFinding(code, FINDINGS[code][0], message, fix, row, column)


def env_label(env: Environment) -> str:
    return f"{env.display_name} ({env.id})" if env.display_name else env.id


class EnvironmentResolver:
    """Environment cells -> environments (memoised; a sheet names a few environments many times)."""

    def __init__(self, snapshot: TenantSnapshot) -> None:
        self.by_id = {e.id.lower(): e for e in snapshot.environments.values()}
        self.by_name: dict[str, list[Environment]] = defaultdict(list)
        for e in snapshot.environments.values():
            self.by_name[e.display_name.strip().casefold()].append(e)
        self.default = next((e for e in snapshot.environments.values() if e.is_default), None)
        self._memo: dict[str, Environment | list[Environment] | None] = {}

    def resolve(self, text: str) -> Environment | list[Environment] | None:
        """The environment, the candidates when the name is shared, or None when nothing matches."""
        if text in self._memo:
            return self._memo[text]
        t = text.strip().strip("{}")
        hit: Environment | list[Environment] | None = self.by_id.get(t.lower())
        if hit is None:
            named = self.by_name.get(t.casefold(), [])
            if len(named) == 1:
                hit = named[0]
            elif len(named) > 1:
                hit = sorted(named, key=lambda e: e.id)
            elif t.casefold() in ("default", "default environment") and self.default is not None:
                hit = self.default
        self._memo[text] = hit
        return hit


@dataclass(slots=True)
class _Work:
    req: AddonRequest
    findings: list[RowFinding]
    env: Environment | None = None
    currency: str | None = None
    before: int | None = None
    after: int | None = None
    status: RequestStatus = RequestStatus.READY
    others: list[int] = field(default_factory=list)


def _check_row(w: _Work, snapshot: TenantSnapshot, envs: EnvironmentResolver, env_column: str | None) -> None:
    r, n, f = w.req, w.req.row_number, w.findings
    if r.environment:
        got = envs.resolve(r.environment)
        if got is None:
            names = ", ".join(f"'{e.display_name}'" for e in sorted(snapshot.environments.values(),
                                                                   key=lambda e: e.display_name.casefold())[:6])
            f.append(_finding("environment-unknown", f"No environment '{r.environment[:80]}' in the tenant.",
                              f"Give the environment's id or its exact display name (the tenant has {names}).", n,
                              env_column))
        elif isinstance(got, list):
            ids = ", ".join(e.id for e in got)
            f.append(_finding("environment-ambiguous",
                              f"{len(got)} environments are called '{r.environment[:80]}': {ids}.",
                              "Give the environment's id instead of its name.", n, env_column))
        else:
            w.env = got
    if r.addon:
        a = resolve_addon(r.addon)
        if a is None:
            near = nearest_addons(r.addon)
            hint = f" Did you mean {' or '.join(repr(x) for x in near)}?" if near else ""
            f.append(_finding("addon-unknown", f"'{r.addon[:80]}' is not a known add-on.{hint}",
                              "Use an add-on name such as AI Builder credits or Power Apps per app, or its "
                              "currency type (AI, AppPass, ...); the README lists them all.", n, r.column))
        else:
            w.currency = a.currency_type
            if a.currency_type not in snapshot.currencies and (r.amount or 0) > 0:
                f.append(_finding("addon-not-in-tenant",
                                  f"The tenant has no {addon_label(a.currency_type)} capacity to allocate.",
                                  "Buy the add-on first, or drop the row.", n, r.column))
    if w.env is None or w.currency is None or r.amount is None:
        return
    w.before = snapshot.allocations.get(w.env.id, {}).get(w.currency, 0)
    w.after = w.before + r.amount if r.relative else r.amount
    if w.after < 0:
        f.append(_finding("amount-negative",
                          f"{env_label(w.env)} holds {w.before} {addon_label(w.currency)}; {r.amount_text} would "
                          f"leave {w.after}.", f"Lower it by at most {w.before}, or write 0 to unassign.", n,
                          r.column))


def _cross_checks(works: Sequence[_Work], places: RowPlaces | None = None) -> None:
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, w in enumerate(works):
        if w.env is not None and w.currency is not None and w.req.amount is not None:
            by_key[(w.env.id, w.currency)].append(i)

    def name(w: _Work, seen_from: _Work | None) -> str:
        """``row 5``; ``row 5 of sheet 'X'`` when the rows are on different sheets (None: any sheets)."""
        if places is None:
            return f"row {w.req.row_number}"
        return places.row_name(w.req.row, w.req.row_number, seen_from=None if seen_from is None else seen_from.req.row)

    for (_env, _ct), idx in by_key.items():
        if len(idx) < 2:
            continue
        first = works[idx[0]]
        assert first.env is not None and first.currency is not None
        label = f"{addon_label(first.currency)} for {env_label(first.env)}"
        sigs = {(works[i].req.amount, works[i].req.relative) for i in idx}
        if len(sigs) == 1:
            for i in idx[1:]:
                w = works[i]
                there = name(first, w)
                w.findings.append(_finding("duplicate-row", f"R{there[1:]} already asks the same "
                                           f"({first.req.amount_text}) of {label}.",
                                           f"Delete this row, or {there}.", w.req.row_number,
                                           w.req.column))
            continue
        names = [name(works[j], None) for j in idx]
        if all(" of " not in n for n in names):
            keep = f"rows {', '.join(map(str, sorted({works[j].req.row_number for j in idx})))}"
        else:
            keep = ", ".join(dict.fromkeys(names))
        for i in idx:
            w = works[i]
            others = "; ".join(f"{name(works[j], w)}: {works[j].req.amount_text}" for j in idx if j != i)
            w.findings.append(_finding("conflicting-rows", f"This row ({w.req.amount_text}) contradicts {others} "
                                       f"for {label}.", f"Keep one of {keep}.",
                                       w.req.row_number, w.req.column))


def validate_addons(
    requests: Sequence[AddonRequest],
    snapshot: TenantSnapshot,
    *,
    env_column: str | None,
    policy: ShortfallPolicy,
    reserve_of: Callable[[int], int],
    places: RowPlaces | None = None,
) -> tuple[list[CheckedRequest | CheckedAddon], list[CapacityLine]]:
    """``places``: the rows come from several sheets (a reconcile's add-ons sheets, one desired state): each
    row's environment column is its own sheet's, and messages about two rows name the other row's sheet."""
    envs = EnvironmentResolver(snapshot)
    works = [_Work(r, list(r.findings)) for r in requests]
    for w in works:
        _check_row(w, snapshot, envs, env_column if places is None else places.header(w.req.row, Role.ENVIRONMENT))
    _cross_checks(works, places)
    for w in works:
        if any(x.severity is Severity.ERROR for x in w.findings):
            w.status = RequestStatus.ERROR
        elif w.after == w.before:
            w.status = RequestStatus.UNCHANGED
            assert w.env is not None and w.currency is not None
            w.findings.append(_finding("unchanged", f"{env_label(w.env)} already has {w.after} "
                                       f"{addon_label(w.currency)}: nothing to do.", "", w.req.row_number))
    lines = _capacity(works, snapshot, policy, reserve_of)
    checked: list[CheckedRequest | CheckedAddon] = [
        CheckedAddon(request=w.req, status=w.status, findings=w.findings, environment_id=w.env.id if w.env else None,
                     currency_type=w.currency, before=w.before, after=w.after)
        for w in works
    ]
    return checked, lines


def _capacity(
    works: Sequence[_Work], snapshot: TenantSnapshot, policy: ShortfallPolicy, reserve_of: Callable[[int], int]
) -> list[CapacityLine]:
    touched: dict[str, dict[str, int]] = defaultdict(dict)  # currency -> environment -> before
    asked: dict[str, int] = defaultdict(int)  # currency -> what the touched environments will hold
    for w in works:
        if w.status in (RequestStatus.READY, RequestStatus.UNCHANGED) and w.currency and w.env:
            assert w.before is not None and w.after is not None
            if w.env.id not in touched[w.currency]:
                touched[w.currency][w.env.id] = w.before
                asked[w.currency] += w.after
    lines: list[CapacityLine] = []
    budgets: dict[str, int] = {}
    for ct, envs in touched.items():
        rep = snapshot.currencies.get(ct)
        purchased = round(rep.purchased) if rep else 0
        allocated = round(rep.allocated) if rep else sum(snapshot.allocations.get(e, {}).get(ct, 0)
                                                               for e in snapshot.allocations)
        elsewhere = allocated - sum(envs.values())
        line = CapacityLine(sku_id=ct, part_number=ct, enabled=purchased, consumed=elsewhere,
                            reserve=reserve_of(purchased), needed=asked[ct], freed=0, kind=Kind.ADDONS,
                            label=BY_CURRENCY[ct].name if ct in BY_CURRENCY else ct)
        lines.append(line)
        budgets[ct] = max(0, purchased - allocated - line.reserve)
    lines.sort(key=lambda c: c.sku_id.casefold())
    demands: list[Demand] = []
    for i, w in enumerate(works):
        if w.status is not RequestStatus.READY or w.currency is None or w.env is None:
            continue
        assert w.before is not None and w.after is not None
        delta = w.after - w.before
        demands.append(Demand(index=i, row_number=w.req.row_number, priority=w.req.priority,
                              pool=w.currency if delta > 0 else None, amount=max(0, delta),
                              frees=w.currency if delta < 0 else None, frees_amount=max(0, -delta),
                              who=env_label(w.env)))
    for i, finding in apply_policy(lines, demands, policy, budgets).items():
        works[i].status = RequestStatus.OVER_CAPACITY
        works[i].findings.append(finding)
    return lines


__all__ = ["FINDINGS", "EnvironmentResolver", "env_label", "validate_addons"]
