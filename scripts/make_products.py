"""Write the product snapshot shipped with license-batch (batch/data/products.json.gz).

    .venv/bin/python scripts/make_products.py [CSV] [--date YYYY-MM-DD] [--out PATH]

CSV is Microsoft's "Product names and service plan identifiers for licensing.csv" (default: the copy in
../shared/reference beside the checkout). The snapshot is DERIVED data, not the CSV: product names, String_Ids,
GUIDs and service plans (id, name, friendly name), each plan listed once, gzipped JSON, with the source file's
name, date, sha256 and row count. ``--date`` is the date Microsoft published that copy (default: the file's
modification date); the newer of the shipped snapshot and a user's cached copy wins, by this date.
The raw CSV is never committed (cloud-facts: "Do not commit the raw CSV itself").
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from batch.sheets.catalog import SNAPSHOT_RESOURCE, ProductCatalog  # noqa: E402

DEFAULT_CSV = REPO.parent / "shared" / "reference" / "Product names and service plan identifiers for licensing.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--date", type=date.fromisoformat, default=None, help="the list's publication date")
    ap.add_argument("--out", type=Path, default=REPO / "batch" / "data" / SNAPSHOT_RESOURCE)
    a = ap.parse_args(argv)
    data = a.csv.read_bytes()
    catalog = ProductCatalog.from_bytes(data, source=a.csv)
    rows = max(0, data.decode("utf-8-sig", errors="replace").count("\n") - 1)
    dated = a.date or datetime.fromtimestamp(a.csv.stat().st_mtime, UTC).date()
    blob = catalog.to_snapshot(dated=dated, sha256=hashlib.sha256(data).hexdigest(), source_name=a.csv.name,
                               rows=rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(blob)
    plans = sum(len(p.plans) for p in catalog.products)
    print(f"{a.out}: {len(catalog)} products, {plans} service plan entries, dated {dated}, "
          f"{len(blob):,} bytes (source {len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
