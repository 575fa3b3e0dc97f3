"""Benchmark: how many $batch items per second the sandbox serves (latency zero, throttling off).

The server runs in a CHILD process (``python -m batch.sandbox serve``) so client and server each have
a core; ``--clients`` threads each post $batch requests of 20 assignLicense items (add, then remove,
Microsoft Entra ID P1 for their own users, so seats never run out), for ``--seconds``.
Also measures paging all users with ``$top=999``. Target: >= 2,000 batch items/s on 2 cores.

    .venv/bin/python bench/sandbox.py [--users 5000] [--clients 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from batch.sandbox import catalogue as C  # noqa: E402
from batch.sandbox import init_tenant, list_users  # noqa: E402


def start_server(db: Path) -> tuple[subprocess.Popen[str], str, str]:
    env = {**os.environ, "LICENSE_BATCH_SANDBOX_THROTTLING": "0", "LICENSE_BATCH_SANDBOX_LATENCY": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch.sandbox", "serve", "--db", str(db), "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = dict(proc.stdout.readline().strip().split(": ", 1) for _ in range(3))
    return proc, lines["graph-url"], lines["token"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        db = Path(tmp) / "sandbox.db"
        t = time.perf_counter()
        init_tenant(db, users=a.users, seed=1)
        print(f"seed: {a.users} users in {time.perf_counter() - t:.2f} s")
        users = [
            u["id"]
            for u in list_users(db)
            if u["usageLocation"] and not any(s["skuId"] == C.ENTRA_P1 for s in u["licenseAssignmentStates"])
        ]
        per = len(users) // a.clients
        proc, graph, token = start_server(db)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            done = [0] * a.clients
            failed = [0] * a.clients
            stop = threading.Event()

            def client(k: int) -> None:
                mine = users[k * per : (k + 1) * per]
                with httpx.Client(base_url=graph, headers=headers, timeout=60) as c:
                    add = True
                    i = 0
                    while not stop.is_set():
                        chunk = [mine[(i + j) % len(mine)] for j in range(20)]
                        if not add:
                            i += 20
                        body: dict[str, list[Any]] = {
                            "addLicenses": [{"skuId": C.ENTRA_P1, "disabledPlans": []}],
                            "removeLicenses": [],
                        }
                        if not add:
                            body = {"addLicenses": [], "removeLicenses": [C.ENTRA_P1]}
                        reqs = [
                            {"id": str(j), "method": "POST", "url": f"/users/{uid}/assignLicense",
                             "headers": {"Content-Type": "application/json"}, "body": body}
                            for j, uid in enumerate(chunk)
                        ]  # fmt: skip
                        r = c.post("/$batch", json={"requests": reqs})
                        for item in r.json()["responses"]:
                            if item["status"] == 200:
                                done[k] += 1
                            else:
                                failed[k] += 1
                        add = not add

            threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
            t0 = time.perf_counter()
            for th in threads:
                th.start()
            time.sleep(a.seconds)
            stop.set()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t0
            ok, bad = sum(done), sum(failed)
            print(
                f"$batch assignLicense: {ok + bad} items in {wall:.1f} s = {(ok + bad) / wall:,.0f} items/s "
                f"({ok} ok, {bad} failed; {a.clients} clients, 20 items per batch)"
            )
            with httpx.Client(base_url=graph, headers=headers, timeout=60) as c:
                t0 = time.perf_counter()
                url: str | None = "/users?$top=999&$select=id,userPrincipalName,usageLocation,assignedLicenses"
                n = pages = 0
                while url:
                    body = c.get(url).json()
                    n += len(body["value"])
                    pages += 1
                    url = body.get("@odata.nextLink")
                wall = time.perf_counter() - t0
                print(f"GET /users $top=999: {n} users in {pages} pages, {wall:.2f} s = {n / wall:,.0f} users/s")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
