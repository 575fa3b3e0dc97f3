"""Every `$batch` the engine sends is one kind: all-parallel, no dependsOn (cloud-facts "Graph: JSON batching").

The bodies are recorded as the sandbox received them over real HTTP on 127.0.0.1 (the sandbox app's
``handle`` is wrapped; the sandbox itself is unchanged).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from batch.apply import apply
from batch.config import Limits
from batch.models import Outcome

from .sandbox_util import make_plan, running_sandbox, sandbox_available, seed, tenant_for, write_wave

pytestmark = pytest.mark.skipif(sandbox_available() is not None, reason=str(sandbox_available()))


def record_batches(server: Any) -> list[list[dict[str, Any]]]:
    """Every `$batch` body the sandbox receives from now on (its requests, in the order they arrived)."""
    app = server._app
    real = app.handle
    seen: list[list[dict[str, Any]]] = []
    lock = threading.Lock()

    def handle(method: str, path: str, headers: Any, body: bytes) -> Any:
        if method == "POST" and path.split("?")[0].endswith("/$batch"):
            with lock:
                seen.append(orjson.loads(body)["requests"])
        return real(method, path, headers, body)

    app.handle = handle
    return seen


def test_no_batch_mixes_dependson_chains_with_independent_items(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    seed(db, users=300)
    kinds = write_wave(db, tmp_path / "wave.csv", rows=200, graph_failures=False)
    limits = Limits(max_in_flight=4, backoff_base_seconds=0.01, backoff_max_seconds=0.2)
    with running_sandbox(db, throttling=False) as server, tenant_for(server, limits) as tenant:
        plan = make_plan(tenant, tmp_path / "wave.csv")
        patched = {o.target_id for o in plan.operations if o.kind.value == "setUsageLocation"}
        assert patched, "the wave must set some usage locations"
        batches = record_batches(server)
        result = apply(plan, tenant, run_dir=tmp_path / "run", limits=limits)
    assert result.counts()[Outcome.FAILED] == 0 and result.counts()[Outcome.APPLIED] > 0, kinds
    items = [i for b in batches for i in b]
    assert len(items) == len(plan.operations)
    # no item depends on another: every batch is fully parallel
    assert [i for i in items if "dependsOn" in i] == []
    # and each PATCHed user's assignLicense left in a later batch than its PATCH
    first: dict[str, int] = {}
    for n, b in enumerate(batches):
        for i in b:
            uid = i["url"].split("/")[2]
            if i["method"] == "PATCH":
                first[uid] = n
            elif uid in patched:
                assert n > first[uid], f"{i['url']} was sent in batch {n}, its PATCH in batch {first.get(uid)}"
