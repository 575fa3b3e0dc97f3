"""Benchmark the report writers on a synthetic run.

    .venv/bin/python bench/report.py [--rows 100000] [--out DIR] [--slow]

Builds a RunResult of ``--rows`` rows (6 input columns + the 9 outcome columns; 90 % applied, 4 % unchanged,
3 % failed, 2 % skipped, 1 % not run; a few cells that need neutralising or escaping) and a matching
Validation, then times ``write_results`` (results.xlsx + results.csv + run.json) and ``write_validation``.
Prints wall time, CPU time, peak traced Python memory (tracemalloc, in a separate measured run) and the
process's max RSS, and the ratio of write_results' wall time to the 8 s target. ``--slow`` forces
xlsxwriter's public per-cell path, for comparison.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch.errors import RowFinding, Severity
from batch.models import (
    Action,
    CapacityLine,
    CheckedRequest,
    InputRow,
    LicenseRequest,
    Outcome,
    RequestStatus,
    Role,
    RowResult,
    RunResult,
    Sheet,
    ShortfallPolicy,
    Sku,
    TenantSnapshot,
    Validation,
)
from batch.report import _xlsx, write_results, write_validation

TARGET_S = 8.0
HEADERS = ("Employee ID", "Work Email", "Department", "License", "Usage Location", "Manager")
SKUS = ("SPE_E3", "SPE_E5", "ENTERPRISEPACK", "POWERAPPS_PER_USER", "FLOW_PER_USER", "Microsoft_365_Copilot")
DEPTS = ("Finance", "Sales", "R&D", "Operations", "HR", "Legal <EU>", "Support")


def synthetic_sheet(n: int, seed: int = 1) -> Sheet:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        dept = rnd.choice(DEPTS)
        mgr = '=HYPERLINK("http://x")' if i % 997 == 0 else f"manager{rnd.randrange(500)}@contoso.com"
        cells = (f"E{100000 + i}", f"user{i}@contoso.com", dept, rnd.choice(SKUS), rnd.choice(("DE", "US", "FR")), mgr)
        rows.append(InputRow(index=i, number=i + 2, cells=cells))
    return Sheet(
        path=Path("/data/hr/wave-42.xlsx"),
        format="xlsx",
        sheet_name="Wave",
        encoding=None,
        delimiter=None,
        header_row=1,
        headers=HEADERS,
        rows=rows,
        columns={Role.USER: 1, Role.SKU: 3, Role.USAGE_LOCATION: 4},
        sha256="0" * 64,
    )


def synthetic_result(sheet: Sheet, seed: int = 2) -> RunResult:
    rnd = random.Random(seed)
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    out = []
    for a in sheet.rows:
        x = rnd.random()
        sku = a.cells[3]
        before = "ENTERPRISEPACK" if sku != "ENTERPRISEPACK" else "SPE_E3"
        t = t0 + timedelta(milliseconds=a.index * 40)
        if x < 0.90:
            r = RowResult(
                a.index,
                a.number,
                Outcome.APPLIED,
                f"assign {sku}",
                request_id=f"{a.index:08x}-1f2e-4c3b-9a8d-{a.index:012x}",
                time=t,
                before=before,
                after=f"{before}, {sku}",
            )
        elif x < 0.94:
            r = RowResult(
                a.index,
                a.number,
                Outcome.UNCHANGED,
                f"assign {sku}",
                message="Already assigned.",
                time=t,
                before=sku,
                after=sku,
            )
        elif x < 0.97:
            r = RowResult(
                a.index,
                a.number,
                Outcome.FAILED,
                f"assign {sku}",
                code="CountViolation",
                message="License assignment failed because no more licenses are available.",
                fix="Buy or free seats and re-run.",
                request_id=f"{a.index:08x}-aaaa-bbbb-cccc-dddddddddddd",
                time=t,
                before=before,
                after=before,
            )
        elif x < 0.99:
            r = RowResult(
                a.index,
                a.number,
                Outcome.SKIPPED,
                f"assign {sku}",
                code="USER_NOT_FOUND",
                message=f"No user {a.cells[1]} in the tenant.",
                fix="Check the spelling of the e-mail address.",
            )
        else:
            r = RowResult(
                a.index,
                a.number,
                Outcome.NOT_RUN,
                f"assign {sku}",
                message="The run stopped first.",
                fix="Run `license-batch resume`.",
            )
        out.append(r)
    return RunResult(
        run_id="20260301-080000-bench",
        sheet=sheet,
        rows=out,
        started=t0,
        finished=t0 + timedelta(minutes=70),
        tenant="contoso.onmicrosoft.com",
        requests_sent=len(out) // 20 + 37,
        throttled=37,
        throttle_wait_s=123.4,
        seats_before={s: 1000 + 10 * i for i, s in enumerate(SKUS)},
        seats_after={s: 1000 + 10 * i + len(out) // len(SKUS) for i, s in enumerate(SKUS)},
    )


def synthetic_validation(sheet: Sheet, seed: int = 3) -> Validation:
    rnd = random.Random(seed)
    skus = {
        f"0000000{i}-0000-0000-0000-000000000000": Sku(
            f"0000000{i}-0000-0000-0000-000000000000", p, "User", "Enabled", 50_000, 1000
        )
        for i, p in enumerate(SKUS)
    }
    reqs = []
    for a in sheet.rows:
        x = rnd.random()
        lr = LicenseRequest(a.index, a.number, a.cells[1], Action.ASSIGN, a.cells[3])
        if x < 0.9:
            reqs.append(CheckedRequest(lr, RequestStatus.READY, []))
        elif x < 0.95:
            reqs.append(
                CheckedRequest(
                    lr, RequestStatus.UNCHANGED, [RowFinding("ALREADY_ASSIGNED", Severity.INFO, "Already assigned.")]
                )
            )
        else:
            reqs.append(
                CheckedRequest(
                    lr,
                    RequestStatus.ERROR,
                    [RowFinding("USER_NOT_FOUND", Severity.ERROR, f"No user {a.cells[1]}.", "Check the address.")],
                )
            )
    cap = [CapacityLine(k, s.part_number, s.enabled, s.consumed, 0, len(sheet.rows) // 6, 0) for k, s in skus.items()]
    snap = TenantSnapshot("tenant", skus, {}, {}, datetime(2026, 3, 1, tzinfo=UTC))
    return Validation(sheet, reqs, cap, snap, ShortfallPolicy.STOP)


def measure(label: str, fn: Callable[[], object]) -> float:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:<16} wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak traced {peak / 2**20:7.1f} MiB  "
        f"max RSS so far {rss:7.1f} MiB"
    )
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temp folder)")
    ap.add_argument("--slow", action="store_true", help="force xlsxwriter's public per-cell path")
    args = ap.parse_args()
    if args.slow:
        _xlsx.StreamSheet.fast_path = False

    t = time.perf_counter()
    sheet = synthetic_sheet(args.rows)
    result = synthetic_result(sheet)
    validation = synthetic_validation(sheet)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"built {args.rows:,} rows x {len(HEADERS)} input + 9 outcome columns in {time.perf_counter() - t:.2f} s "
        f"(max RSS {rss:.1f} MiB); fast path {'off' if args.slow else 'on'}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        meta = {"argv": ["license-batch", "apply", "wave.xlsx", "--token", "secret"]}
        wall = measure("write_results", lambda: write_results(result, out, meta=meta))
        measure("write_validation", lambda: write_validation(validation, out))
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in sorted(out.iterdir()) if p.is_file())
        print(f"files: {sizes}")
    print(
        f"write_results: {wall:.2f} s = {wall / TARGET_S:.2f} x the {TARGET_S:.0f} s target "
        f"({'within' if wall <= TARGET_S else 'OVER'} target)"
    )


if __name__ == "__main__":
    main()
