"""Benchmark: read_sheet + parse_requests on a 100,000-row x 6-column xlsx and CSV.

    .venv/bin/python bench/sheets_read.py [--rows 100000] [--keep DIR]

Generates the files with xlsxwriter / csv in a scratch folder (not committed), then prints wall and CPU
time per stage. Target: read + parse of the xlsx in about 1.5 s CPU or less (validate's budget is 6 s
for read + validate).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

HEADERS = ["userPrincipalName", "Action", "License", "Disabled plans", "Usage location", "Priority"]
SKUS = ["SPE_E3", "SPE_E5", "EMS", "POWER_BI_PRO", "SPE_E3;POWER_BI_PRO"]


def row(i: int) -> list[object]:
    return [
        f"user{i:06d}@contoso.onmicrosoft.com",
        "assign" if i % 10 else "remove",
        SKUS[i % len(SKUS)],
        "SWAY;YAMMER_ENTERPRISE" if i % 4 == 0 else "",
        ["DE", "GB", "US", "FR"][i % 4],
        i % 5 + 1,
    ]


def write_xlsx(path: Path, n: int) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Licenses")
    ws.write_row(0, 0, HEADERS)
    for i in range(n):
        ws.write_row(i + 1, 0, row(i))
    wb.close()


def write_csv(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        for i in range(n):
            w.writerow(row(i))


def timed(label: str, fn):  # type: ignore[no-untyped-def]
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    print(f"  {label:<28} wall {time.perf_counter() - t0:6.3f} s   CPU {time.process_time() - c0:6.3f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()

    from batch.sheets import parse_requests, read_sheet

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        xlsx, csvp = folder / "bench.xlsx", folder / "bench.csv"
        print(f"generating {args.rows:,} rows x {len(HEADERS)} columns in {folder}")
        write_xlsx(xlsx, args.rows)
        write_csv(csvp, args.rows)
        print(f"  xlsx {xlsx.stat().st_size / 1e6:.1f} MB, csv {csvp.stat().st_size / 1e6:.1f} MB")
        for path in (xlsx, csvp):
            print(f"{path.suffix[1:]}:")
            t0, c0 = time.perf_counter(), time.process_time()
            sheet = timed("read_sheet", lambda p=path: read_sheet(p))
            reqs = timed("parse_requests", lambda s=sheet: parse_requests(s))
            print(
                f"  {'read + parse':<28} wall {time.perf_counter() - t0:6.3f} s   "
                f"CPU {time.process_time() - c0:6.3f} s   ({len(sheet.rows):,} rows -> {len(reqs):,} requests)"
            )


if __name__ == "__main__":
    main()
