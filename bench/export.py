"""Benchmark: export and reconcile against a 500,000-user sandbox tenant.

    .venv/bin/python bench/export.py [--users 500000] [--workdir DIR] [--format csv|xlsx] [--latency 1.0]

1. seeds a sandbox tenant (``init_tenant``) in the work folder (kept with --workdir: seeding is not timed);
2. serves it over HTTP on 127.0.0.1 in ITS OWN PROCESS, with the default configuration (latency 0, throttling
   on with Graph's documented quotas); ``--latency 1.0`` turns on the sandbox's latency model (60 ms a read:
   the 501 pages are read one after another, so that alone is 30 s);
3. in a fresh child process: ``license-batch export users -o FILE`` (the library call): wall time, client
   CPU time, peak RSS (the child's ``ru_maxrss``: interpreter, pages in flight, writer);
4. edits the export into a desired-state sheet of the same size (1 % of rows changed: a license removed, a
   disabled plan added, a location changed) and, in a fresh child process, reconciles it with ``--scope all``
   (read the sheet, snapshot every user, the pandas joins, the drift report and the plan; nothing applied).

Targets (issue 9): export under 60 s wall and 1 GB; reconcile of a 500,000-row sheet under 30 s and 1.5 GB.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    """This process's peak RSS: VmHWM (ru_maxrss survives exec, so a child would report its parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _serve(db: str, conn: Any, latency: float = 0.0) -> None:
    from batch.sandbox import SandboxConfig, SandboxServer

    server = SandboxServer(db, SandboxConfig(latency=latency))
    server.start()
    conn.send((server.graph_url, server.powerplatform_url))
    conn.recv()
    server.stop()


def _settings(graph_url: str, pp_url: str, work: Path) -> Any:
    from batch.config import load_settings

    return load_settings(graph_url=graph_url, powerplatform_url=pp_url, report_dir=str(work / "reports"))


def child_export(graph_url: str, pp_url: str, out: Path) -> dict[str, Any]:
    from batch import jobs

    w0, c0 = time.perf_counter(), time.process_time()
    with jobs.open_session(_settings(graph_url, pp_url, out.parent)) as s:
        res = jobs.export_users(s, out)
        requests = s.tenant.requests
    return {"phase": f"export users -> {out.suffix[1:]}", "wall_s": time.perf_counter() - w0,
            "cpu_s": time.process_time() - c0, "peak_rss_mb": _rss_mb(),
            "detail": f"{res.users} users, {res.rows} rows, {requests} requests, {out.stat().st_size / 1e6:.0f} MB"}


def child_reconcile(graph_url: str, pp_url: str, sheet: Path) -> dict[str, Any]:
    from batch import jobs
    from batch.desired.reconcile import reconcile
    from batch.desired.report import write_drift

    w0, c0 = time.perf_counter(), time.process_time()
    with jobs.open_session(_settings(graph_url, pp_url, sheet.parent)) as s:
        rec = reconcile(s, sheet, scope="all")
        t_rec = time.perf_counter() - w0
        write_drift(rec)
        ops = len(rec.operations)
    with sheet.open(encoding="utf-8") as f:
        rows = sum(1 for _ in f) - 1
    kinds = rec.drift["kind"].value_counts().to_dict()
    return {"phase": "reconcile --scope all", "wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0,
            "peak_rss_mb": _rss_mb(),
            "detail": f"{rows} rows, drift {kinds}, {ops} operations planned (reconcile {t_rec:.1f} s, then the "
                      "drift report)"}


def desired_from_export(export: Path, out: Path) -> int:
    """The export with 1 % of rows edited (every 100th: every third of those loses its row (extra), gets a
    plan disabled, or a new usage location). A user's rows are consecutive in an export: a location edit is
    made on a user's first row and carried to the user's other rows (one user, one location: no
    ``conflicting-rows`` errors)."""
    n = 0
    prev_user, moved = "", ("", "")  # (user, new location) of the user whose location is being edited
    with export.open(encoding="utf-8-sig", newline="") as f, out.open("w", encoding="utf-8", newline="") as g:
        r, w = csv.reader(f), csv.writer(g)
        w.writerow(next(r))
        for i, row in enumerate(r):
            first = row[0] != prev_user
            prev_user = row[0]
            if row[0] == moved[0]:
                row[3] = moved[1]
            elif i % 100 == 0 and row[5] == "direct":
                k = (i // 100) % 3
                if k == 0:
                    continue
                if k == 1 and row[1] in ("SPE_E3", "SPE_E5"):
                    row[2] = "; ".join(p for p in (row[2], "SWAY") if p and "SWAY" not in row[2]) or row[2]
                elif row[3] and first:
                    row[3] = "FR" if row[3] != "FR" else "DE"
                    moved = (row[0], row[3])
            w.writerow(row)
            n += 1
    return n


def _run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--workdir", help="keep files (and the seeded tenant) here")
    ap.add_argument("--format", choices=["csv", "xlsx", "both"], default="both")
    ap.add_argument("--latency", type=float, default=0.0,
                    help="the sandbox's latency model: 0 = none (default), 1 = realistic (60 ms a read)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        kind, graph_url, pp_url, path = a.child
        fn = child_export if kind == "export" else child_reconcile
        print(json.dumps(fn(graph_url, pp_url, Path(path))))
        return 0

    from batch.sandbox import init_tenant, is_seeded

    tmp = tempfile.TemporaryDirectory(prefix="bench-export-") if not a.workdir else None
    work = Path(a.workdir) if a.workdir else Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"sandbox-{a.users}.db"
    t = time.perf_counter()
    if not is_seeded(db):
        init_tenant(db, users=a.users)
        print(f"seed: {a.users} users in {time.perf_counter() - t:.1f} s")
    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=_serve, args=(str(db), child, a.latency), daemon=True)
    server.start()
    graph_url, pp_url = parent.recv()
    results = []
    try:
        formats = ["csv", "xlsx"] if a.format == "both" else [a.format]
        for fmt in formats:
            results.append(_run_child(["export", graph_url, pp_url, str(work / f"export.{fmt}")]))
        export_csv = work / "export.csv"
        if not export_csv.exists():
            results.append(_run_child(["export", graph_url, pp_url, str(export_csv)]))
        rows = desired_from_export(export_csv, work / "desired.csv")
        print(f"desired sheet: {rows} rows (the export, 1 % of rows edited)")
        results.append(_run_child(["reconcile", graph_url, pp_url, str(work / "desired.csv")]))
    finally:
        parent.send("stop")
        server.join(10)
    print(f"\n{'phase':<26}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}  detail")
    for r in results:
        print(f"{r['phase']:<26}{r['wall_s']:>8.1f}{r['cpu_s']:>8.1f}{r['peak_rss_mb']:>9.0f}  {r['detail']}")
    print("\ntargets: export < 60 s wall, < 1 GB; reconcile of a 500,000-row sheet < 30 s, < 1.5 GB "
          f"(sandbox in its own process, latency {a.latency:g} (the default is 0), throttling on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
