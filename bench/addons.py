"""Benchmark: allocate 3 add-ons to each of 2,000 Power Platform environments against the sandbox's Power
Platform request quota, on a shrunk clock.

    .venv/bin/python bench/addons.py [--environments 2000] [--time-scale 20] [--latency 1.0] [--api 2022-03-01-preview]

What it does and how the figures are computed:

1. Seeds a small sandbox tenant, adds ``--environments`` environments server-side and buys enough of three
   add-ons (AI Builder credits, Copilot credits, Power Pages anonymous users), then writes a long-layout sheet:
   one row per environment and add-on (6,000 rows for 2,000 environments).
2. Serves it with ``SandboxConfig(time_scale=k, latency=L)``: the Power Platform request quota (100 requests per
   60 s per app; Microsoft publishes no figure, cloud-facts) on a clock k times faster, with the realistic
   latency model (150 ms per Power Platform request +-30 %; NOT scaled). The client gets ``Limits().scaled(k)``.
3. Times ``apply`` alone (reading the sheet, the snapshot and validation are reported apart) and prints
   wall / minimum, where the minimum for N requests (one per environment: the plan merges an environment's
   three add-ons into one request) under a sliding-window quota of Q requests per W seconds is
   ``floor((N - 1) / Q) * W``. Target <= 1.15. Also: requests sent, responses answered 429, rows lost.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from batch import jobs  # noqa: E402
from batch.apply.throttle import minimum_seconds  # noqa: E402
from batch.config import Limits, load_settings  # noqa: E402
from batch.models import Outcome  # noqa: E402
from batch.sandbox import SandboxConfig, SandboxServer, init_tenant  # noqa: E402

ADDONS = (("AI Builder credits", "AI"), ("Copilot credits", "MCSMessages"),
          ("Power Pages anonymous users", "PowerPagesAnonymous"))


def prepare(work: Path, n_env: int) -> tuple[Path, Path]:
    db = work / "sandbox.db"
    init_tenant(db, users=50, seed=1)
    con = sqlite3.connect(db)
    with con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(environments)")]
        keep = ", ".join(c for c in cols if c not in ("n", "id", "display_name"))
        template = con.execute("SELECT id FROM environments WHERE display_name = 'Contoso Dev'").fetchone()[0]
        for i in range(n_env):
            con.execute(f"INSERT INTO environments (id, display_name, {keep}) SELECT ?, ?, {keep} FROM environments"
                        " WHERE id = ?", (str(uuid.UUID(int=i + 1)), f"Bench {i:05d}", template))
        for _, ct in ADDONS:
            con.execute("UPDATE currencies SET purchased = purchased + ? WHERE currency_type = ?", (n_env * 1000, ct))
    con.close()
    sheet = work / "addons.csv"
    with sheet.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Environment", "Add-on", "Amount"])
        for i in range(n_env):
            for k, (name, _ct) in enumerate(ADDONS):
                w.writerow([f"Bench {i:05d}", name, str(10 * (k + 1) + i % 7)])
    return db, sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--environments", type=int, default=2000)
    ap.add_argument("--time-scale", type=float, default=20.0)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--api", default="2022-03-01-preview", choices=["2022-03-01-preview", "2024-10-01"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        db, sheet = prepare(work, a.environments)
        print(f"seeded {a.environments} environments and wrote {a.environments * len(ADDONS)} rows in "
              f"{time.perf_counter() - t0:.1f} s")
        cfg = SandboxConfig(time_scale=a.time_scale, latency=a.latency)
        with SandboxServer(db, cfg) as sb:
            settings = load_settings(graph_url=sb.graph_url, powerplatform_url=sb.powerplatform_url,
                                     report_dir=work / "reports",
                                     env={"LICENSE_BATCH_ALLOCATIONS_API": a.api,
                                          "XDG_CACHE_HOME": str(work / "cache")})
            limits = Limits().scaled(a.time_scale)
            from dataclasses import replace

            settings = replace(settings, limits=limits)
            with jobs.open_session(settings) as s:
                t0 = time.perf_counter()
                prepared = jobs.plan_file(s, sheet)
                t_plan = time.perf_counter() - t0
                n_ops = len(prepared.plan.operations)
                t0 = time.perf_counter()
                result = jobs.execute(s, prepared)
                wall = time.perf_counter() - t0
        quota, window = cfg.powerplatform_request_quota, cfg.powerplatform_window_seconds / a.time_scale
        minimum = minimum_seconds(n_ops, quota, window)
        counts = result.counts()
        lost = len(result.rows) - counts[Outcome.APPLIED] - counts[Outcome.UNCHANGED]
        print(f"read + snapshot + validate + plan: {t_plan:.1f} s ({n_ops} requests planned for "
              f"{len(result.rows)} rows)")
        print(f"apply: {wall:.1f} s wall; minimum the quota allows ({quota} requests per {window:.2f} s, clock "
              f"{a.time_scale:g}x faster than real, latency x{a.latency:g}, api {a.api}): {minimum:.1f} s")
        print(f"ratio wall / minimum: {wall / minimum:.3f} (target <= 1.15)")
        print(f"requests sent: {result.requests_sent}; answered 429: {result.throttled} "
              f"({100 * result.throttled / max(1, result.requests_sent):.2f} %); throttle wait "
              f"{result.throttle_wait_s:.1f} s; rows not applied: {lost}")
        print(f"at the real 60 s window the same run would take about {minimum * a.time_scale / 60:.1f} min "
              f"(the quota, not the client, sets the pace)")


if __name__ == "__main__":
    main()
