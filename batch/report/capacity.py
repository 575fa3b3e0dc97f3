"""``license-batch capacity``: seats per SKU and add-on units per currency type, from one read of the tenant.

One table, one line per pool, the same columns for both sides so finance reads one sheet:
kind, name, part number / currency type, purchased, used (consumed seats / units allocated to environments),
free, and for SKUs the suspended and warning units; for add-ons what was consumed where the service reports it.
Written as text (the CLI), ``--json``, ``--csv`` (UTF-8 with BOM) and ``--xlsx``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..kinds.addons.names import BY_CURRENCY
from ..models import CurrencyReport, Kind, Sku
from . import _xlsx
from ._text import iso_utc, neutralise_all

HEADERS = ("Kind", "Name", "Part number / type", "Purchased", "Used", "Free", "Suspended", "Warning", "Consumed",
           "Status")


@dataclass(frozen=True, slots=True)
class CapacityRow:
    kind: Kind
    name: str
    id: str  # skuPartNumber or currencyType
    purchased: int
    used: int  # seats consumed; add-on units allocated to environments
    free: int
    suspended: int = 0
    warning: int = 0
    consumed: int | None = None  # add-ons: units used, where the service reports it
    status: str = ""  # a SKU's capabilityStatus


@dataclass(slots=True)
class CapacityReport:
    tenant: str
    taken_at: datetime
    rows: list[CapacityRow]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "taken_at": iso_utc(self.taken_at),
            "skus": [_row_dict(r) for r in self.rows if r.kind is Kind.LICENSES],
            "addons": [_row_dict(r) for r in self.rows if r.kind is Kind.ADDONS],
            "notes": list(self.notes),
        }


def _row_dict(r: CapacityRow) -> dict[str, Any]:
    d = asdict(r)
    d["kind"] = str(r.kind)
    return d


def build(tenant: str, taken_at: datetime, skus: Iterable[Sku], currencies: Iterable[CurrencyReport],
          notes: Iterable[str] = ()) -> CapacityReport:
    rows = [
        CapacityRow(Kind.LICENSES, s.product_name or s.part_number, s.part_number, s.enabled, s.consumed,
                    s.enabled - s.consumed, s.suspended, s.warning, None, s.capability_status)
        for s in sorted(skus, key=lambda s: (s.product_name or s.part_number).casefold())
    ]
    rows += [
        CapacityRow(Kind.ADDONS, BY_CURRENCY[c.currency_type].name if c.currency_type in BY_CURRENCY
                    else c.currency_type, c.currency_type, round(c.purchased), round(c.allocated),
                    round(c.purchased - c.allocated), consumed=round(c.consumed))
        for c in sorted(currencies, key=lambda c: c.currency_type.casefold())
    ]
    return CapacityReport(tenant, taken_at, rows, list(notes))


def _cells(r: CapacityRow) -> list[Any]:
    return [str(r.kind), r.name, r.id, r.purchased, r.used, r.free, r.suspended, r.warning,
            "" if r.consumed is None else r.consumed, r.status]


def write_csv(report: CapacityReport, path: Path) -> Path:
    with _xlsx.atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(HEADERS)
        for r in report.rows:
            w.writerow(neutralise_all(str(c) for c in _cells(r)))
    return path


def write_xlsx(report: CapacityReport, path: Path) -> Path:
    with _xlsx.atomic_path(path) as tmp:
        wb = _xlsx.new_workbook(tmp)
        try:
            fmt = _xlsx.Formats(wb)
            ws = _xlsx.add_sheet(wb, "Capacity")
            _xlsx.write_header(ws, HEADERS, fmt.header)
            _xlsx.set_widths(ws, [10, max([20, *(len(r.name) + 2 for r in report.rows)]), 26] + [12] * 7)
            for i, r in enumerate(report.rows, start=1):
                for j, v in enumerate(_cells(r)):
                    if isinstance(v, int):
                        ws.write_number(i, j, v, fmt.status_number["error"] if j == 5 and v < 0 else fmt.number)
                    else:
                        ws.write_string(i, j, v)  # a string cell is never run as a formula
            _xlsx.finish_table(ws, header_row=0, last_row=len(report.rows), ncols=len(HEADERS))
            ws.write_string(len(report.rows) + 2, 0, f"Tenant {report.tenant}, read {iso_utc(report.taken_at)}")
            for k, note in enumerate(report.notes):
                ws.write_string(len(report.rows) + 3 + k, 0, note)
        finally:
            _xlsx.close_workbook(wb, path)
    return path


__all__ = ["HEADERS", "CapacityReport", "CapacityRow", "build", "write_csv", "write_xlsx"]
