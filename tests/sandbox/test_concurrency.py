"""Many clients racing for the last seats, through two servers on the same SQLite file: never oversold."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson

from batch.sandbox import catalogue as C
from batch.sandbox import list_users

from .conftest import start
from .sbtest import assign_body


def test_racing_clients_never_oversell(db: Path) -> None:
    exchange2 = {C.SPE_E3, C.SPE_E5, C.O365_E3, C.O365_E5, C.O365_E1}
    candidates = [
        u["id"]
        for u in list_users(db)
        if u["usageLocation"] and not ({s["skuId"] for s in u["licenseAssignmentStates"]} & exchange2)
    ]
    assert len(candidates) >= 24
    con = sqlite3.connect(db)
    enabled, consumed = con.execute("SELECT enabled, consumed FROM skus WHERE sku_id=?", (C.SPE_E3,)).fetchone()
    con.close()
    free = enabled - consumed
    assert 0 < free < len(candidates)

    a = start(db, throttling=False)
    b = start(db, throttling=False)  # a second server: its own connections, like another process
    results: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def worker(k: int) -> None:
        sb = a if k % 2 else b
        mine = candidates[k * 2 : k * 2 + 2]
        with httpx.Client(base_url=sb.graph_url, headers=sb.auth_headers, timeout=60) as g:
            barrier.wait()
            if k % 3 == 0:  # some as one $batch, some as single calls
                reqs = [{"id": str(i), "method": "POST", "url": f"/users/{uid}/assignLicense",
                         "headers": {"Content-Type": "application/json"}, "body": assign_body([C.SPE_E3])}
                        for i, uid in enumerate(mine)]  # fmt: skip
                out: list[Any] = g.post("/$batch", json={"requests": reqs}).json()["responses"]
                statuses = [x["status"] for x in out]
            else:
                statuses = [
                    g.post(f"/users/{uid}/assignLicense", json=assign_body([C.SPE_E3])).status_code for uid in mine
                ]
        with lock:
            results.extend(statuses)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        a.stop()
        b.stop()
    assert len(results) == 24
    assert results.count(200) == free
    assert results.count(400) == 24 - free
    con = sqlite3.connect(db)
    enabled2, consumed2 = con.execute("SELECT enabled, consumed FROM skus WHERE sku_id=?", (C.SPE_E3,)).fetchone()
    holders = sum(
        1
        for (lic,) in con.execute("SELECT licenses FROM users")
        if any(s["skuId"] == C.SPE_E3 and s["state"] == "Active" for s in orjson.loads(lic))
    )
    con.close()
    assert (enabled2, consumed2) == (enabled, enabled)
    assert holders == consumed2
