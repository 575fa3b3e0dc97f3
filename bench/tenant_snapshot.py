"""Benchmark the tenant snapshot against a sandbox tenant served from ANOTHER process (so client CPU is ours).

    .venv/bin/python bench/tenant_snapshot.py [--users 100000] [--seed 1] [--lookup 2000] [--db PATH]

Seeds (or reuses) a sandbox tenant of ``--users`` users, starts its server in a child process, then
measures from this process, each with a fresh ``Tenant``:

* page: ``snapshot(every UPN)`` (the rule pages: the sheet names the whole directory);
* parse: the same JSON pages parsed again without the network (client CPU of parsing alone);
* lookup: ``snapshot(--lookup keys, strategy="lookup")`` ($batch look-ups, 20 per request, several in flight);
* auto: ``snapshot(--lookup keys)`` (what the rule picks for that many keys).

Prints wall time, client CPU time (this process only), HTTP requests, reads answered 429 (envelope or
``$batch`` item) and the time spent waiting for the resource-unit budget or a Retry-After, for each. Run it
several times back to back: every run must succeed (throttled reads wait; they do not fail the snapshot).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from batch._gc import paused_gc as gc_paused
from batch.config import Limits, Target
from batch.tenant import Tenant
from batch.tenant.graph import USER_SELECT, _StateCache, parse_users_page


def _serve(db: str, conn: Any) -> None:
    from batch.sandbox import SandboxConfig, SandboxServer

    server = SandboxServer(db, SandboxConfig())
    server.start()
    conn.send((server.graph_url, server.powerplatform_url))
    conn.recv()  # wait for the parent to finish
    server.stop()


def measure(label: str, fn: Any, tenant: Tenant | None = None) -> Any:
    w0, c0 = time.perf_counter(), time.process_time()
    r0 = tenant.requests if tenant else 0
    b = tenant.read_budget.stats if tenant else None
    t0, p0, w0b = (b.throttled, b.pacing_wait_s, b.throttle_wait_s) if b else (0, 0.0, 0.0)
    out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    reqs = (tenant.requests - r0) if tenant else 0
    extra = ""
    if b is not None:
        extra = (f"   429s {b.throttled - t0:>4}   paced {b.pacing_wait_s - p0:5.1f} thread-s,"
                 f" Retry-After pauses {b.throttle_wait_s - w0b:5.2f} s")
    print(f"{label:<34} wall {wall:6.2f} s   client CPU {cpu:6.2f} s   requests {reqs:>5}{extra}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lookup", type=int, default=2_000)
    ap.add_argument("--db", type=Path, default=None)
    a = ap.parse_args()

    from batch.sandbox import init_tenant

    db = a.db or Path(__file__).parent / "out" / f"sandbox-{a.users}-{a.seed}.db"
    if not db.exists():
        t0 = time.perf_counter()
        init_tenant(db, users=a.users, seed=a.seed)
        print(f"seeded {a.users} users in {time.perf_counter() - t0:.1f} s -> {db}")

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(str(db), child), daemon=True)
    proc.start()
    graph_url, pp_url = parent.recv()
    target = Target(name="sandbox", graph_url=graph_url, powerplatform_url=pp_url)
    try:
        with Tenant(target, Limits()) as t:
            users = t.graph.list_users()  # warm-up (server caches, connection) and the key list
        upns = [u.upn for u in users]
        print(f"tenant: {len(upns)} users at {graph_url}")

        with Tenant(target, Limits()) as t:
            snap = measure("page: snapshot(all UPNs)", lambda: t.snapshot(upns), t)
            print(
                f"  -> {len(snap.users)} users, complete={snap.complete_directory}, snapshot.requests={snap.requests}"
            )

        with Tenant(target, Limits()) as t:
            pages = []
            url: str | None = f"/users?$select={USER_SELECT}&$top=999"
            while url:
                r = t.http.request("GET", url)
                pages.append(r.content)
                url = orjson.loads(r.content).get("@odata.nextLink")

        def parse_all() -> int:
            cache, n = _StateCache(), 0
            with gc_paused():
                for p in pages:
                    n += len(parse_users_page(p, cache)[0])
            return n

        mb = sum(map(len, pages)) / 1e6
        measure(f"parse only ({mb:.0f} MB JSON)", parse_all)

        keys = upns[:: max(1, len(upns) // a.lookup)][: a.lookup]
        with Tenant(target, Limits()) as t:
            snap = measure(f"lookup: {len(keys)} keys", lambda: t.snapshot(keys, strategy="lookup"), t)
            print(f"  -> {len(snap.users)} users")
        with Tenant(target, Limits()) as t:
            snap = measure(f"auto: {len(keys)} keys", lambda: t.snapshot(keys), t)
            print(f"  -> complete={snap.complete_directory}")
    finally:
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
