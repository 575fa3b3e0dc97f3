"""Cross-row checks of the licenses kind: duplicates, conflicts and usage locations between a user's rows; the
service plans of each user's result after all of their rows (``plan_rules``, over ``plan_checks``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from ...models import Action, RequestStatus, TenantSnapshot
from . import plan_checks
from .checks import Work, _name
from .findings import _finding, _is_error


def _rows_text(numbers: Sequence[int]) -> str:
    uniq = sorted(set(numbers))
    return ("row " if len(uniq) == 1 else "rows ") + ", ".join(str(n) for n in uniq)


def cross_checks(works: list[Work]) -> None:
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


def plan_rules(works: list[Work], snapshot: TenantSnapshot) -> None:
    """One service-plan check per user, on the result of all of that user's rows still valid (after
    ``cross_checks``): plan-conflict, plan-dependency, refused-before (``snapshot.plan_refusals``), redundant-license.
    """
    for i, finding in plan_checks.check_users(_changes(works, lambda w: True), snapshot, snapshot.plan_refusals):
        works[i].findings.append(finding)


def plan_rules_after_capacity(works: list[Work], snapshot: TenantSnapshot) -> None:
    """Under ``--on-shortfall partial`` some of a user's rows may end over capacity and not be sent: the rows of
    that user still READY are checked again on what is left (a replace skipped for seats can leave an added pack
    conflicting with the one it was to replace). Rows found in error now become ERROR; the capacity table keeps
    showing the sheet's demand."""
    short = {w.user.id for w in works if w.user is not None and w.status is RequestStatus.OVER_CAPACITY}
    if not short:
        return
    ready = _changes(works, lambda w: w.status is RequestStatus.READY and w.user is not None and w.user.id in short)
    for i, finding in plan_checks.check_users(ready, snapshot, snapshot.plan_refusals):
        if _is_error(finding):
            works[i].findings.append(finding)
            works[i].status = RequestStatus.ERROR


def _changes(works: list[Work], keep: Callable[[Work], bool]) -> dict[str, list[plan_checks.RowChange]]:
    by_user: dict[str, list[plan_checks.RowChange]] = defaultdict(list)
    for i, w in enumerate(works):
        if w.user is None or w.sku is None or w.req.action is None or not w.license_change or not keep(w):
            continue
        if any(_is_error(x) for x in w.findings):
            continue
        by_user[w.user.id].append(plan_checks.RowChange(
            i, w.req.row_number, w.req.action, w.sku.sku_id, w.from_sku.sku_id if w.from_sku else None, w.plan_ids
        ))  # fmt: skip
    return by_user


def _signature(w: Work) -> tuple[object, ...]:
    return (
        w.req.action,
        w.sku.sku_id if w.sku else None,
        w.from_sku.sku_id if w.from_sku else None,
    )


def _describe(w: Work) -> str:
    a = w.req.action
    s = _name(w.sku) if w.sku else w.req.sku
    loc = f" (usage location {w.location})" if w.location else ""
    if a is Action.REPLACE:
        fr = _name(w.from_sku) if w.from_sku else (w.req.from_sku or "")
        return f"replace {fr} -> {s}{loc}"
    return f"{a.value if a else '?'} {s}{loc}"
