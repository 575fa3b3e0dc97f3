"""Capacity pools shared by every kind: the reserve, the shortfall policy and serving by priority.

A kind turns its checked rows into :class:`Demand` records (this row takes ``amount`` units of a pool, and
frees ``frees_amount`` of another once served: a swap) and its pools into :class:`~batch.models.CapacityLine`
records; :func:`apply_policy` then decides, the same way for seats and add-on units, which demands go ahead:

- ``STOP``: a short pool refuses the whole wave; every demand on a short pool gets ``capacity-shortfall``.
- ``PARTIAL``: demands are served by priority (lower first; rows without one after those with one), then
  sheet order; pure releases count from the start, a served swap's released units go to the earliest demand
  still waiting for that pool; the rest get ``over-capacity``.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError, RowFinding, Severity
from ..models import CapacityLine, Kind, ShortfallPolicy

#: Findings of the capacity check, shared by every kind.
CAPACITY_FINDINGS: dict[str, tuple[Severity, str]] = {
    "capacity-shortfall": (
        Severity.ERROR,
        "A license or add-on is short for this sheet: the wave is refused (--on-shortfall stop).",
    ),
    "over-capacity": (
        Severity.ERROR,
        "Skipped: over capacity; higher-priority or earlier rows got the seats or units (partial).",
    ),
}


def parse_reserve(reserve: str | int | None) -> Callable[[int], int]:
    """``"N"`` -> N units per pool; ``"N%"`` -> ceil(N% of the pool's purchased units). Bad value -> ConfigError.

    The returned function takes a pool's purchased units (a SKU's prepaidUnits.enabled, an add-on's purchased).
    """
    text = "0" if reserve is None else str(reserve).strip()
    fix = 'Give --reserve as a whole number of seats ("5") or a percentage of purchased seats ("2%").'
    if text.endswith("%"):
        try:
            pct = float(text[:-1].strip())
        except ValueError as e:
            raise ConfigError(f"--reserve '{reserve}' is not a percentage.", fix=fix) from e
        if not math.isfinite(pct) or pct < 0 or pct > 100:
            raise ConfigError(f"--reserve '{reserve}' must be between 0% and 100%.", fix=fix)
        return lambda total: math.ceil(max(0, total) * pct / 100 - 1e-9)
    try:
        n = int(text)
    except ValueError as e:
        raise ConfigError(f"--reserve '{reserve}' is not a number of seats.", fix=fix) from e
    if n < 0:
        raise ConfigError(f"--reserve '{reserve}' cannot be negative.", fix=fix)
    return lambda total: n


@dataclass(frozen=True, slots=True)
class Demand:
    """What one ready request asks of the pools (indexes are the kind's own request positions)."""

    index: int
    row_number: int
    priority: int | None
    pool: str | None = None  # the pool it takes from (None: takes nothing)
    amount: int = 0
    frees: str | None = None  # the pool it gives back to once served
    frees_amount: int = 0
    who: str = ""  # for messages: the user's UPN, the environment's name


def shortfall_texts(lines: Sequence[CapacityLine]) -> dict[str, tuple[str, str]]:
    """pool -> (message, fix) for every short pool, as the STOP policy words it."""
    out: dict[str, tuple[str, str]] = {}
    for c in lines:
        if not c.short:
            continue
        reserve = f" (after keeping {c.reserve} in reserve)" if c.reserve else ""
        if c.kind is Kind.ADDONS:
            out[c.sku_id] = (
                f"{c.name} is short: {c.enabled} purchased, {c.consumed} allocated to environments this sheet "
                f"leaves alone{reserve}, this sheet asks {c.needed} for the environments it names: short by "
                f"{c.short}. Nothing in this wave will be applied.",
                f"Buy {c.short} more, lower the amounts, or run with --on-shortfall partial.",
            )
        else:
            out[c.sku_id] = (
                f"{c.part_number} is short of seats: {c.available} available{reserve}, "
                f"this sheet needs {c.net} net ({c.needed} users gain it, {c.freed} lose it): "
                f"short by {c.short}. Nothing in this wave will be applied.",
                f"Buy or free {c.short} {c.part_number} seats, drop rows, or run with --on-shortfall partial.",
            )
    return out


def over_capacity_text(c: CapacityLine, who: str) -> tuple[str, str]:
    """(message, fix) for a demand the PARTIAL policy could not serve."""
    reserve = f" after keeping {c.reserve} in reserve" if c.reserve else ""
    if c.kind is Kind.ADDONS:
        return (
            f"Skipped: over capacity. Not enough {c.name} left for {who} ({c.enabled} purchased, {c.consumed} "
            f"allocated elsewhere{reserve}; the sheet asks {c.needed}: short by {c.short}).",
            f"Buy {c.short} more or lower other rows' amounts and run this row again, or give it a lower "
            "priority number.",
        )
    return (
        f"Skipped: over capacity. No {c.part_number} seat left for {who} ({c.available} available{reserve}, "
        f"{c.freed} freed by this sheet, {c.needed} users asking: short by {c.short}).",
        f"Buy or free {c.short} {c.part_number} seats and run the skipped rows again, "
        "or give this row a lower priority number.",
    )


def capacity_finding(code: str, message: str, fix: str, row: int) -> RowFinding:
    return RowFinding(code, CAPACITY_FINDINGS[code][0], message, fix, row, None)


def apply_policy(
    lines: Sequence[CapacityLine],
    demands: Sequence[Demand],
    policy: ShortfallPolicy,
    budgets: Mapping[str, int] | None = None,
) -> dict[int, RowFinding]:
    """The demands that may NOT go ahead, with the finding that says why (index -> finding).

    ``budgets`` are the units free per pool before the sheet (default: each line's ``available``-like
    figure, ``enabled - consumed - reserve`` for seats).
    """
    by_pool = {c.sku_id: c for c in lines}
    out: dict[int, RowFinding] = {}
    if policy is ShortfallPolicy.STOP:
        texts = shortfall_texts(lines)
        if texts:
            for d in demands:
                if d.pool in texts:
                    message, fix = texts[d.pool]
                    out[d.index] = capacity_finding("capacity-shortfall", message, fix, d.row_number)
        return out
    if not any(c.short for c in lines):
        return out
    budget: dict[str, int] = defaultdict(int)
    for c in lines:
        budget[c.sku_id] = budgets[c.sku_id] if budgets and c.sku_id in budgets else c.available
    takers: list[Demand] = []
    for d in demands:
        if d.pool and d.amount > 0:
            takers.append(d)
        elif d.frees:
            budget[d.frees] += d.frees_amount  # pure releases always go ahead
    takers.sort(key=_priority_key)
    waiting: dict[str, deque[Demand]] = defaultdict(deque)
    served: set[int] = set()

    def serve(first: Demand) -> None:
        todo = [first]
        while todo:
            d = todo.pop()
            assert d.pool is not None
            budget[d.pool] -= d.amount
            served.add(d.index)
            if d.frees:
                budget[d.frees] += d.frees_amount  # units back: the earliest demands waiting for them get them
                q = waiting.get(d.frees)
                while q and budget[d.frees] >= q[0].amount:
                    todo.append(q.popleft())

    for d in takers:
        assert d.pool is not None
        if budget[d.pool] >= d.amount:
            serve(d)
        else:
            waiting[d.pool].append(d)
    for d in takers:
        if d.index in served:
            continue
        assert d.pool is not None
        message, fix = over_capacity_text(by_pool[d.pool], d.who)
        out[d.index] = capacity_finding("over-capacity", message, fix, d.row_number)
    return out


def _priority_key(d: Demand) -> tuple[int, int, int]:
    return (0, d.priority, d.index) if d.priority is not None else (1, 0, d.index)


__all__ = ["CAPACITY_FINDINGS", "Demand", "apply_policy", "capacity_finding", "parse_reserve", "shortfall_texts"]
