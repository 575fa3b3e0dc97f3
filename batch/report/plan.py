"""plan.csv: every operation a plan will send, in order - what ``plan`` and ``apply --dry-run`` promise.

Columns: Order, User, Operation, Change, Depends on, Input rows, Method, URL, Body (the exact JSON body that
goes into the ``$batch`` item). UTF-8 with BOM so Excel opens it right; every cell neutralised.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..models import OpKind, Plan
from ._text import neutralise
from ._xlsx import atomic_path

PLAN_HEADERS: tuple[str, ...] = (
    "Order",
    "User",
    "Operation",
    "Change",
    "Depends on",
    "Input rows",
    "Method",
    "URL",
    "Body",
)


def write_plan(plan: Plan, run_dir: Path) -> Path:
    """Write ``run_dir/plan.csv`` (one row per operation, in the order apply sends them)."""
    snapshot = plan.validation.snapshot
    part = {s.sku_id: s.part_number for s in snapshot.skus.values()}
    names = {p.id: p.name for s in snapshot.skus.values() for p in s.service_plans}
    numbers = {r.index: r.number for r in plan.validation.sheet.rows}
    final = run_dir / "plan.csv"
    with atomic_path(final) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(PLAN_HEADERS)
        for i, op in enumerate(plan.operations, start=1):
            if op.kind is OpKind.SET_USAGE_LOCATION:
                change = f"set usage location {op.body.get('usageLocation', '')}"
            else:
                bits = []
                for sku_id, disabled in op.add:
                    text = f"add {part.get(sku_id, sku_id)}"
                    if disabled:
                        text += f" (disabled: {', '.join(sorted(names.get(d, d) for d in disabled))})"
                    bits.append(text)
                bits.extend(f"remove {part.get(s, s)}" for s in op.remove)
                change = ", ".join(bits)
            row = [
                str(i),
                op.target,
                str(op.kind),
                change,
                op.depends_on or "",
                " ".join(str(numbers.get(r, r)) for r in op.rows),
                op.method,
                op.url,
                json.dumps(op.body, separators=(",", ":"), sort_keys=True),
            ]
            w.writerow([neutralise(c) for c in row])
    return final
