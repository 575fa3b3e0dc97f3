"""Benchmark: snapshot, then read + validate, of a 100,000-row wave against a 100,000-user sandbox tenant.

    .venv/bin/python bench/validate.py [--users 100000] [--rows 100000] [--policy partial] [--workdir DIR]

What it does:

1. seeds a sandbox tenant (``init_tenant(db, users=N)``) in a temporary folder;
2. writes a wave sheet from the seeded users, as CSV and as xlsx (xlsxwriter, constant-memory mode): a mix of
   assigns (with usage locations and disabled plans), removes, swaps E3 -> E5, rows already satisfied and a
   few bad rows, with priorities;
3. serves the sandbox over HTTP on 127.0.0.1 (in this process, in a thread) and, in a FRESH CHILD PROCESS,
   takes the snapshot of the users the sheet names: wall time, client CPU time (the child's), peak RSS and
   the number of HTTP requests;
4. in a fresh child process per format, loads that snapshot (not timed) and runs read_sheet +
   parse_requests + validate (timed; plan timed separately for information).

Peak memory is the child's ``ru_maxrss``: the whole client process (interpreter, snapshot, sheet, results).
Targets (issue): read + validate of the xlsx under 6 s client CPU, under 1.5 GB peak; the snapshot in at
most a few hundred requests. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Microsoft's product list (reference data beside the checkout; used for product names when present).
PRODUCT_LIST = ROOT / ".." / "shared" / "reference" / "Product names and service plan identifiers for licensing.csv"
HEADERS = ["UserPrincipalName", "Action", "License", "From License", "Disabled Plans", "Usage Location", "Priority"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ------------------------------------------------------------------------------------------ the sheet


def build_rows(users: list[dict[str, Any]], n_rows: int) -> list[list[str]]:
    """A realistic wave over the seeded users, deterministic."""
    from batch.sandbox import catalogue as C

    plans = {d.part_number: [name for _, name in d.plans] for d in C.SKUS}
    common = [p for p in plans.get("SPE_E5", []) if p in plans.get("SPE_E3", [])]
    plan = "SWAY" if "SWAY" in common else (common[0] if common else "")
    countries = ["DE", "US", "FR", "GB", "Netherlands", "JP"]
    rows: list[list[str]] = []
    for i in range(n_rows):
        u = users[i % len(users)]
        upn = u["userPrincipalName"] if i < len(users) else u["userPrincipalName"].upper()  # later: duplicates
        states = u.get("licenseAssignmentStates") or []
        direct = {s["skuId"] for s in states if not s.get("assignedByGroup")}
        prio = str(i % 5 + 1) if i % 3 == 0 else ""
        loc = countries[i % len(countries)] if i % 4 == 0 else ""
        if i % 997 == 0:
            rows.append([f"nobody{i}@nowhere.example", "assign", "SPE_E3", "", "", "", prio])
        elif i % 499 == 0:
            rows.append([upn, "assign", "NOT_A_SKU", "", "", "", prio])
        elif C.SPE_E3 in direct and i % 2 == 0:
            rows.append([upn, "replace", "SPE_E5", "SPE_E3", plan if i % 8 == 0 else "", loc, prio])
        elif C.SPE_E3 in direct:
            rows.append([upn, "assign", "SPE_E3", "", "", loc, prio])  # mostly unchanged
        elif direct and i % 5 == 0:
            rows.append([upn, "remove", "SPE_E5" if C.SPE_E5 in direct else "SPE_E3", "", "", "", ""])
        else:
            rows.append(
                [
                    upn,
                    "assign",
                    "SPE_E3" if i % 2 else ("Microsoft 365 E5" if i % 10 == 0 else "SPE_E5"),
                    "",
                    plan if i % 6 == 0 else "",
                    loc or "US",
                    prio,
                ]
            )
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADERS)
        w.writerows(rows)


def write_xlsx(path: Path, rows: list[list[str]]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Wave")
    ws.write_row(0, 0, HEADERS)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value == "":
                continue
            if c == 6:
                ws.write_number(r, c, int(value))
            else:
                ws.write_string(r, c, value)
    wb.close()


# ------------------------------------------------------------------------------------------ children


def child_snapshot(graph_url: str, csv_path: Path, out: Path) -> dict[str, Any]:
    from batch.config import Limits, Target
    from batch.tenant import Tenant

    with csv_path.open(encoding="utf-8") as f:
        keys = [row[0] for row in csv.reader(f)][1:]
    rss0 = _rss_mb()
    target = Target(name="sandbox", graph_url=graph_url, powerplatform_url="")
    w0, c0 = time.perf_counter(), time.process_time()
    with Tenant(target, Limits()) as tenant:
        snap = tenant.snapshot(keys)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = _rss_mb()
    with out.open("wb") as f:
        pickle.dump(snap, f, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "phase": "snapshot",
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak,
        "rss_before_mb": rss0,
        "requests": snap.requests,
        "users": len(snap.users),
        "skus": len(snap.skus),
        "groups": len(snap.groups),
        "complete_directory": snap.complete_directory,
        "keys": len(keys),
    }


def child_validate(sheet_path: Path, snap_path: Path, policy: str) -> dict[str, Any]:
    from batch.models import ShortfallPolicy
    from batch.plan import plan
    from batch.sheets import ProductCatalog, parse_requests, read_sheet
    from batch.validate import validate

    with snap_path.open("rb") as f:
        snap = pickle.load(f)
    catalog = ProductCatalog.load(PRODUCT_LIST) if PRODUCT_LIST.exists() else None
    rss0 = _rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    sheet = read_sheet(sheet_path)
    c1 = time.process_time()
    requests = parse_requests(sheet, catalog=catalog)
    c2 = time.process_time()
    v = validate(sheet, requests, snap, catalog=catalog, policy=ShortfallPolicy(policy), reserve="1%")
    w3, c3 = time.perf_counter(), time.process_time()
    peak = _rss_mb()
    p = plan(v)
    w4, c4 = time.perf_counter(), time.process_time()
    return {
        "phase": f"read+validate {sheet.format}",
        "wall_s": w3 - w0,
        "cpu_s": c3 - c0,
        "peak_rss_mb": peak,
        "rss_before_mb": rss0,
        "read_cpu_s": c1 - c0,
        "parse_cpu_s": c2 - c1,
        "validate_cpu_s": c3 - c2,
        "plan_cpu_s": c4 - c3,
        "plan_wall_s": w4 - w3,
        "rows": len(sheet.rows),
        "requests": len(requests),
        "status": dict(Counter(c.status.value for c in v.requests)),
        "findings": dict(Counter(f.code for c in v.requests for f in c.findings).most_common(8)),
        "operations": len(p.operations),
        "wave_refused": v.wave_refused,
        "catalog": catalog is not None,
    }


def _run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--policy", choices=["stop", "partial"], default="partial")
    ap.add_argument("--workdir", help="keep files here instead of a temporary folder")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.child:
        kind, *rest = a.child
        if kind == "snapshot":
            res = child_snapshot(rest[0], Path(rest[1]), Path(rest[2]))
        else:
            res = child_validate(Path(rest[0]), Path(rest[1]), rest[2])
        print(json.dumps(res))
        return 0

    from batch.sandbox import SandboxConfig, SandboxServer, init_tenant
    from batch.sandbox.seed import list_users

    tmp = tempfile.TemporaryDirectory(prefix="bench-validate-") if not a.workdir else None
    work = Path(a.workdir) if a.workdir else Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    try:
        db = work / "sandbox.db"
        t = time.perf_counter()
        if not db.exists():
            init_tenant(db, users=a.users)
        print(f"seed: {a.users} users in {time.perf_counter() - t:.1f} s ({db})")
        t = time.perf_counter()
        rows = build_rows(list_users(db), a.rows)
        csv_path, xlsx_path = work / "wave.csv", work / "wave.xlsx"
        write_csv(csv_path, rows)
        write_xlsx(xlsx_path, rows)
        print(
            f"sheet: {len(rows)} rows, csv {csv_path.stat().st_size / 1e6:.1f} MB, "
            f"xlsx {xlsx_path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t:.1f} s"
        )
        snap_path = work / "snapshot.pickle"
        config = SandboxConfig(latency=0.0, throttling=True)
        with SandboxServer(db, config) as server:
            results = [_run_child(["snapshot", server.graph_url, str(csv_path), str(snap_path)])]
        for path in (csv_path, xlsx_path):
            results.append(_run_child(["validate", str(path), str(snap_path), a.policy]))
        print()
        print(f"{'phase':<22}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}  detail")
        for r in results:
            if r["phase"] == "snapshot":
                detail = (
                    f"{r['requests']} HTTP requests, {r['users']} users, {r['groups']} groups, "
                    f"complete directory: {r['complete_directory']}"
                )
            else:
                detail = (
                    f"read {r['read_cpu_s']:.2f} + parse {r['parse_cpu_s']:.2f} + validate "
                    f"{r['validate_cpu_s']:.2f} CPU s (then plan {r['plan_cpu_s']:.2f} s: {r['operations']} ops)"
                )
            print(f"{r['phase']:<22}{r['wall_s']:>8.2f}{r['cpu_s']:>8.2f}{r['peak_rss_mb']:>9.0f}  {detail}")
        v = results[-1]
        print(f"\nproduct list loaded: {v['catalog']}")
        print(f"statuses ({a.policy}): {v['status']}; wave refused: {v['wave_refused']}")
        print(f"top findings: {v['findings']}")
        x = results[2]
        ok_cpu = x["cpu_s"] < 6.0
        ok_mem = max(r["peak_rss_mb"] for r in results) < 1536
        ok_req = results[0]["requests"] <= 500
        print(
            f"targets: xlsx read+validate CPU {x['cpu_s']:.2f} s < 6 s: {'yes' if ok_cpu else 'NO'}; "
            f"peak < 1.5 GB: {'yes' if ok_mem else 'NO'}; snapshot requests {results[0]['requests']} "
            f"<= a few hundred: {'yes' if ok_req else 'NO'}"
        )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
