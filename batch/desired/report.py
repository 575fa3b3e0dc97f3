"""The reconcile's report: the drift in words, what fixing it does to capacity, drift.csv/xlsx, --json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models import Kind

if TYPE_CHECKING:
    from .reconcile import Reconciliation


def capacity_lines(rec: Reconciliation) -> list[str]:
    """What fixing the drift does to capacity, per SKU and add-on."""
    out = []
    for c in rec.capacity:
        if c.kind is Kind.ADDONS:
            if c.sku_id in rec.changed_units or c.short:
                free = c.enabled - c.consumed - c.needed
                out.append(f"{c.name}: {rec.changed_units.get(c.sku_id, 0):+d} allocated, {max(free, 0)} free "
                           "afterwards" + (f": short by {c.short}" if c.short else ""))
        else:
            left = c.enabled - c.consumed - c.net
            more = rec.prunable.get(c.sku_id, 0)
            out.append(f"{c.name}: takes {c.needed}, frees {c.freed}, {left} free afterwards"
                       + (f": short by {c.short}" if c.short else "")
                       + (f" (--prune would free {more} more)" if more else ""))
    for part, n in sorted(rec.redundant_seats.items()):
        out.append(f"{part}: {n} seat(s) held as redundant packs could be freed")
    return out


def drift_summary(rec: Reconciliation) -> dict[str, Any]:
    counts = rec.drift["kind"].value_counts().to_dict() if len(rec.drift) else {}
    return {"run_id": rec.run_id, "scope": str(rec.scope), "drift": rec.drift_count,
            "kinds": {str(k): int(v) for k, v in counts.items()}, "operations": len(rec.operations),
            "refused": rec.refused,
            "capacity": [{"kind": str(c.kind), "sku": c.part_number, "takes": c.needed, "frees": c.freed,
                          "available": c.available, "short": c.short} for c in rec.capacity],
            "redundant_seats": rec.redundant_seats, "report": str(rec.report or "")}


def write_drift(rec: Reconciliation) -> Path:
    """``drift.csv`` and ``drift.xlsx`` in the run folder (formula-like cells neutralised)."""
    from ..report._text import neutralise

    rec.run_dir.mkdir(parents=True, exist_ok=True)
    frame = rec.drift.copy()
    for c in ("target", "license", "detail", "fix"):
        frame[c] = frame[c].map(neutralise)
    frame.to_csv(rec.run_dir / "drift.csv", index=False, encoding="utf-8-sig")
    path = rec.run_dir / "drift.xlsx"
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    ws = wb.add_worksheet("Drift")
    ws.write_row(0, 0, list(frame.columns))
    for i, row in enumerate(frame.itertuples(index=False), start=1):
        ws.write_row(i, 0, [bool(v) if isinstance(v, bool) else v for v in row])
    cap = wb.add_worksheet("Capacity")
    for i, line in enumerate(capacity_lines(rec)):
        cap.write_string(i, 0, line)
    wb.close()
    rec.report = path
    return path
