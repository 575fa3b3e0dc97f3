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

from collections.abc import Sequence
from typing import Any

from ._gc import paused_gc
from .errors import Severity
from .kinds import KINDS, kind_of
from .kinds.capacity import CAPACITY_FINDINGS, parse_reserve
from .kinds.licenses.findings import is_user_key
from .models import RequestStatus, Sheet, ShortfallPolicy, TenantSnapshot, Validation
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
    """Check several sheets (each of its own kind) as one wave."""
    if not parts:
        raise ValueError("validate_sheets needs at least one sheet")
    reserve_of = parse_reserve(reserve)
    policy = ShortfallPolicy(policy)
    checked = []
    capacity = []
    with paused_gc():
        for sheet, requests in parts:
            c, lines = kind_of(sheet.kind).validate(sheet, requests, snapshot, catalog=catalog, policy=policy,
                                                    reserve_of=reserve_of)
            checked.extend(c)
            capacity.extend(lines)
    return Validation(sheet=parts[0][0], requests=checked, capacity=capacity, snapshot=snapshot, policy=policy,
                      extra_sheets=[s for s, _ in parts[1:]])


def summarise(validation: Validation) -> dict[str, int]:
    """Count of requests per status (status value -> count), every status present."""
    out = {s.value: 0 for s in RequestStatus}
    for c in validation.requests:
        out[c.status.value] += 1
    return out


__all__ = ["FINDING_CODES", "is_user_key", "parse_reserve", "summarise", "validate", "validate_sheets"]
