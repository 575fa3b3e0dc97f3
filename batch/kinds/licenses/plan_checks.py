"""The service-plan check of validation: ONE check per user, on the user's RESULT after all of that user's rows
(adds, removes, swaps, disabled plans merged as the plan merges them), against :mod:`.rules`.

Findings (codes in :data:`FINDING_CODES`, merged into ``batch.validate.FINDING_CODES``):

- ``plan-conflict`` (error): the result holds two plans of a refused family; the fix says which plan to disable
  or to replace instead of adding. Given to the rows that add either pack.
- ``plan-dependency`` (error): Audio Conferencing / Teams Phone without Teams or Skype for Business Online. Given
  to the rows that add the pack (or, when a removal breaks it, to the removing rows).
- ``refused-before`` (error): the tenant refused this combination during an earlier apply (remembered per tenant).
- ``redundant-license`` (warning): a pack that adds nothing the user does not already get; it still takes a seat.

Rows found in error are taken out and the user's result is checked again, so the rows left are the ones the
tenant will accept together (the plan merges them into one assignLicense call).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ...errors import RowFinding, Severity
from ...models import HELD_STATES, Action, Operation, Sku, TenantSnapshot, User
from . import rules
from .rules import Combination, Pack, Refusal

FINDING_CODES: dict[str, tuple[Severity, str]] = {
    "plan-conflict": (Severity.ERROR, "The user's licenses would hold two service plans Microsoft refuses together."),
    "plan-dependency": (Severity.ERROR, "A service plan needs another the user's licenses would not hold."),
    "refused-before": (Severity.ERROR, "The tenant refused this combination of licenses in an earlier run."),
    "redundant-license": (Severity.WARNING, "A license adds nothing the user does not already get; it takes a seat."),
}

@dataclass(frozen=True, slots=True)
class RowChange:
    """What one valid row changes for its user (input of the check)."""

    index: int  # the caller's position of the row (findings come back keyed by it)
    row_number: int
    action: Action
    sku_id: str  # assign / remove / replace-to
    from_sku_id: str | None = None  # replace only
    plan_ids: frozenset[str] = frozenset()  # plans the row asks to disable


def _finding(code: str, message: str, fix: str, row: int) -> RowFinding:
    return RowFinding(code, FINDING_CODES[code][0], message, fix, row, None)


# --------------------------------------------------------------------------------------- the result


def held(user: User) -> list[tuple[str, frozenset[str], str | None]]:
    """The user's held assignments (skuId, disabled plan ids, group or None), by ``User.holding``'s rule: a direct
    assignment unless in Error, a group's in Active/ActiveWithError (an Error gives nothing, takes no seat)."""
    out = [(s.sku_id, s.disabled_plans, s.assigned_by_group) for s in user.states
           if (s.state != "Error" if s.assigned_by_group is None else s.state in HELD_STATES)]  # fmt: skip
    seen = {s for s, _, _ in out} | {s.sku_id for s in user.states}
    out.extend((sku, frozenset(), None) for sku in user.assigned if sku not in seen)  # no state given: direct
    return out


def result_licenses(
    assignments: Iterable[tuple[str, frozenset[str], str | None]],
) -> list[tuple[str, frozenset[str]]]:
    """Per SKU, in order: the plans disabled in EVERY held assignment of it (Graph's assignedLicenses rule)."""
    out: dict[str, frozenset[str]] = {}
    for sku, dis, _g in assignments:
        out[sku] = out[sku] & dis if sku in out else dis
    return list(out.items())


def apply_changes(user: User, changes: Iterable[RowChange]) -> list[tuple[str, frozenset[str], str | None]]:
    """The user's assignments after ``changes``, merged as the plan merges them: a direct assignment's disabled
    plans = what it had ∪ what the rows ask; removing takes the direct assignment away (a group's stays)."""
    assigns = held(user)

    def drop(sku: str) -> None:
        assigns[:] = [a for a in assigns if not (a[0] == sku and a[2] is None)]

    def give(sku: str, plans: frozenset[str]) -> None:
        for i, (s, dis, g) in enumerate(assigns):
            if s == sku and g is None:
                assigns[i] = (s, dis | plans, None)
                return
        assigns.append((sku, plans | _direct_disabled(user, sku), None))

    for c in changes:
        if c.action is Action.REMOVE:
            drop(c.sku_id)
        elif c.action is Action.REPLACE:
            if c.from_sku_id:
                drop(c.from_sku_id)
            give(c.sku_id, c.plan_ids)
        else:
            give(c.sku_id, c.plan_ids)
    return assigns


def _direct_disabled(user: User, sku_id: str) -> frozenset[str]:
    st = user.direct(sku_id)
    return st.disabled_plans if st is not None else frozenset()


class _Packs:
    """Packs built once per (skuId, disabled plans): a 100,000-row sheet repeats a handful."""

    def __init__(self, skus: Mapping[str, Sku]) -> None:
        self.skus = skus
        self._cache: dict[tuple[str, frozenset[str], bool], Pack | None] = {}

    def get(self, sku_id: str, disabled: frozenset[str], added: bool) -> Pack | None:
        key = (sku_id, disabled, added)
        if key not in self._cache:
            sku = self.skus.get(sku_id)
            self._cache[key] = None if sku is None else Pack(
                sku_id, sku.part_number, tuple(p.name for p in sku.service_plans if p.id not in disabled), added
            )  # fmt: skip
        return self._cache[key]


# ---------------------------------------------------------------------------------------- the check


@dataclass(frozen=True, slots=True)
class _Verdict:
    conflicts: tuple[rules.Conflict, ...]
    missing: tuple[rules.MissingDependency, ...]
    redundant: tuple[rules.Redundancy, ...]


class PlanChecker:
    """Checks users' results against the rules and the remembered refusals. Verdicts are memoised per result."""

    def __init__(self, snapshot: TenantSnapshot, remembered: Sequence[Refusal] = ()) -> None:
        self.snapshot = snapshot
        self.remembered = tuple(remembered)
        self._packs = _Packs(snapshot.skus)
        self._verdicts: dict[tuple[Pack, ...], _Verdict] = {}
        self._results: dict[object, tuple[tuple[Pack, ...], Combination]] = {}

    def _verdict(self, result: tuple[Pack, ...]) -> _Verdict:
        v = self._verdicts.get(result)
        if v is None:
            v = self._verdicts[result] = _Verdict(
                tuple(rules.conflicts(result)),
                tuple(rules.missing_dependencies(result)),
                tuple(rules.redundant(result)),
            )
        return v

    def result(self, user: User, changes: Sequence[RowChange]) -> tuple[tuple[Pack, ...], Combination]:
        """The user's packs and licenses after ``changes`` (memoised: a big sheet repeats the same holdings and
        the same rows for thousands of users)."""
        key = (user.states, user.assigned, tuple((c.action, c.sku_id, c.from_sku_id, c.plan_ids) for c in changes))
        hit = self._results.get(key)
        if hit is None:
            before = {s for s, _d, _g in held(user)}
            lic = result_licenses(apply_changes(user, changes))
            packs = tuple(p for s, d in lic if (p := self._packs.get(s, d, s not in before)) is not None)
            hit = self._results[key] = (packs, rules.combination(lic))
        return hit

    def check_user(self, user: User, changes: Sequence[RowChange]) -> Iterator[tuple[int, RowFinding]]:
        """(RowChange.index, finding) for every finding of this user's rows."""
        active = sorted(changes, key=lambda c: (c.row_number, c.index))
        while active:
            packs, combo = self.result(user, active)
            v = self._verdict(packs)
            errors: list[tuple[list[RowChange], str, str, str]] = []
            for k in v.conflicts:
                errors.append((_adding(active, k.held.sku_id, k.other.sku_id), "plan-conflict",
                               f"{user.upn} would hold {k.held.name} and {k.other.name}: their {k.family} plans "
                               f"{k.held_plan} and {k.other_plan} are mutually exclusive, so the tenant refuses "
                               "the change.", k.fix))  # fmt: skip
            for m in v.missing:
                targets = _adding(active, m.pack.sku_id) or [x for x in active if x.action is not Action.ASSIGN]
                errors.append((targets, "plan-dependency",
                               f"{user.upn} would hold {rules.plan_label(m.plan)} from {m.pack.name} without Teams or "
                               f"Skype for Business Online: service plan {m.plan} depends on one of "
                               f"{', '.join(m.needs)}, so the tenant refuses the change.", m.fix))  # fmt: skip
            if not errors and (ref := rules.refused_before(self.remembered, combo)) is not None:
                who = f" for {ref.user}" if ref.user and ref.user.lower() != user.upn.lower() else ""
                errors.append((list(active), "refused-before",
                               f"The tenant refused these licenses{who} on {ref.when[:10]} ({ref.code}: "
                               f"{ref.message}); {user.upn}'s licenses after this sheet are the same combination.",
                               "Change this user's licenses or disabled plans so the combination differs."))
            if not errors:
                for r in v.redundant:
                    yield from _redundant_findings(user, active, r)
                return
            hit: set[int] = set()
            for targets, code, message, fix in errors:
                for ch in targets or active:
                    hit.add(ch.index)
                    yield ch.index, _finding(code, message, fix, ch.row_number)
            active = [c for c in active if c.index not in hit]


def _adding(active: Sequence[RowChange], *sku_ids: str) -> list[RowChange]:
    return [c for c in active if c.action is not Action.REMOVE and c.sku_id in sku_ids]


def _redundant_findings(user: User, active: Sequence[RowChange], r: rules.Redundancy) -> Iterator[
        tuple[int, RowFinding]]:  # fmt: skip
    names = " + ".join(o.name for o in r.covered_by) or "the user's other licenses"
    if r.pack.added:
        targets = _adding(active, r.pack.sku_id)
        message = f"{r.pack.name} adds nothing {user.upn} does not already get from {names}; " \
                  f"it still takes one {r.pack.name} seat."  # fmt: skip
    else:
        targets = _adding(active, *(o.sku_id for o in r.covered_by if o.added))
        message = f"After this row {user.upn}'s {r.pack.name} adds nothing {names} does not give; " \
                  f"it keeps taking one {r.pack.name} seat."  # fmt: skip
    for c in targets:
        yield c.index, _finding("redundant-license", message, r.fix, c.row_number)


def check_users(
    changes_by_user: Mapping[str, Sequence[RowChange]], snapshot: TenantSnapshot, remembered: Sequence[Refusal] = ()
) -> Iterator[tuple[int, RowFinding]]:
    """The validation hook: every user's rows checked on their result. Yields (RowChange.index, finding)."""
    checker = PlanChecker(snapshot, remembered)
    for uid, changes in changes_by_user.items():
        user = snapshot.users.get(uid)
        if user is not None and changes:
            yield from checker.check_user(user, changes)


# ------------------------------------------------------------------------------------------ apply side


def operation_result(user: User, op: Operation) -> list[tuple[str, frozenset[str]]]:
    """What ``user`` would have held after ``op`` (its merged adds and removes), per SKU with disabled plans."""
    assigns = [a for a in held(user) if not (a[0] in op.remove and a[2] is None)]
    for sku, plans in op.add:
        assigns = [a for a in assigns if not (a[0] == sku and a[2] is None)]
        assigns.append((sku, frozenset(plans), None))
    return result_licenses(assigns)


def remember_operation_refusal(
    cache_dir: str | os.PathLike[str], tenant_id: str, user: User, op: Operation, status: int | None, code: str,
    message: str,
) -> Refusal | None:
    """The apply hook: remember a refused assignLicense when it is a plan refusal (see ``rules.refusal_kind``)."""
    return rules.remember_refusal(
        cache_dir, tenant_id, result=operation_result(user, op), add=op.add, remove=op.remove,
        status=status, code=code, message=message, user=user.upn,
    )  # fmt: skip


__all__ = ["FINDING_CODES", "PlanChecker", "RowChange", "check_users", "operation_result",
           "remember_operation_refusal"]  # fmt: skip
