"""Validation: every request of every input sheet checked against the tenant snapshot and the capacity
actually free. Pure: no I/O.

``validate(sheet, requests, snapshot, ...)`` checks one sheet; ``validate_sheets([(sheet, requests), ...])``
checks a workbook's several sheets (a Licenses sheet and an Add-ons sheet) as one wave. Each sheet's kind
(``Sheet.kind``) does the checking (``batch.kinds``: the rules of licenses are in ``batch.kinds.licenses``,
of add-ons in ``batch.kinds.addons.checks``); this module only joins them. Every finding's ``code`` is listed
in :data:`FINDING_CODES` with its severity.

The shortfall policy holds for the whole wave: under ``stop`` a short pool of any kind (a SKU's seats, an
add-on's units) refuses everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ._gc import paused_gc
from .errors import Severity
from .kinds import KINDS, kind_of
from .kinds.capacity import CAPACITY_FINDINGS, parse_reserve
from .kinds.licenses.findings import is_user_key
from .models import CapacityLine, Kind, RequestStatus, Sheet, ShortfallPolicy, TenantSnapshot, Validation
from .sheets.catalog import ProductCatalog


def _all_codes() -> dict[str, tuple[Severity, str]]:
    out: dict[str, tuple[Severity, str]] = {}
    for k in KINDS.values():
        for code, entry in k.findings.items():
            if code in out and out[code][0] is not entry[0]:
                raise AssertionError(f"finding {code} has two severities")  # pragma: no cover
            out.setdefault(code, entry)
    out.update(CAPACITY_FINDINGS)
    return out


#: Every row finding code of every kind (reading and validation) and of the capacity check:
#: code -> (severity, meaning). Codes are stable: reports, scripts and the result sheet key off them.
FINDING_CODES: dict[str, tuple[Severity, str]] = _all_codes()


def validate(
    sheet: Sheet,
    requests: Sequence[Any],
    snapshot: TenantSnapshot,
    *,
    catalog: ProductCatalog | None = None,
    policy: ShortfallPolicy = ShortfallPolicy.STOP,
    reserve: str | int = "0",
) -> Validation:
    """Check every request of one sheet against ``snapshot`` and the free capacity.

    Pure and deterministic: the same rows and snapshot give the same statuses, findings and capacity.
    Raises ``ConfigError`` for a bad ``reserve``.
    """
    return validate_sheets([(sheet, requests)], snapshot, catalog=catalog, policy=policy, reserve=reserve)


def validate_sheets(
    parts: Sequence[tuple[Sheet, Sequence[Any]]],
    snapshot: TenantSnapshot,
    *,
    catalog: ProductCatalog | None = None,
    policy: ShortfallPolicy = ShortfallPolicy.STOP,
    reserve: str | int = "0",
) -> Validation:
    """Check several sheets (each of its own kind) as one wave.

    The sheets of one kind are checked together (a user named on two Licenses sheets is one user: duplicates,
    conflicts and seats are counted across them). Kinds that draw on the same seats (a user's direct license
    and a licensing group's) are checked one after the other, each against what the ones before it take: the
    seats the first kind's ready rows take are no longer free for the next, so one wave never counts a seat
    twice.
    """
    if not parts:
        raise ValueError("validate_sheets needs at least one sheet")
    reserve_of = parse_reserve(reserve)
    policy = ShortfallPolicy(policy)
    by_kind: dict[Kind, list[tuple[Sheet, Sequence[Any]]]] = {}
    for sheet, requests in parts:
        by_kind.setdefault(sheet.kind, []).append((sheet, requests))
    checked: list[Any] = []
    capacity: list[CapacityLine] = []
    seen = snapshot
    with paused_gc():
        for kind, group in by_kind.items():
            requests = [r for _sheet, rs in group for r in rs]
            c, lines = kind_of(kind).validate(group[0][0], requests, seen, catalog=catalog, policy=policy,
                                              reserve_of=reserve_of)
            checked.extend(c)
            capacity.extend(lines)
            if len(by_kind) > 1:
                seen = _after(seen, lines)
    checked.sort(key=lambda x: x.request.row)  # input order across the sheets (stable within a row)
    return Validation(sheet=parts[0][0], requests=checked, capacity=capacity, snapshot=snapshot, policy=policy,
                      extra_sheets=[s for s, _ in parts[1:]])


def _after(snapshot: TenantSnapshot, lines: Sequence[CapacityLine]) -> TenantSnapshot:
    """The snapshot as the next kind should see it: seats the lines take counted as consumed (as far as there
    were any free: what did not fit is refused either way), seats they free given back."""
    skus = dict(snapshot.skus)
    for c in lines:
        if c.kind is not Kind.LICENSES or c.sku_id not in skus:
            continue
        taken = c.net if c.net <= 0 else min(c.net, max(0, c.enabled - c.consumed - c.reserve))
        if taken:
            skus[c.sku_id] = dataclasses.replace(skus[c.sku_id], consumed=skus[c.sku_id].consumed + taken)
    return dataclasses.replace(snapshot, skus=skus, _index=snapshot._index)


def summarise(validation: Validation) -> dict[str, int]:
    """Count of requests per status (status value -> count), every status present."""
    out = {s.value: 0 for s in RequestStatus}
    for c in validation.requests:
        out[c.status.value] += 1
    return out


__all__ = ["FINDING_CODES", "is_user_key", "parse_reserve", "summarise", "validate", "validate_sheets"]
