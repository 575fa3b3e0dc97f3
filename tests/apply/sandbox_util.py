"""Sandbox-backed helpers for the apply tests and bench: seeded tenant, a varied wave sheet, the plan, and
the tenant's state read server-side from the sandbox database."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.config import Limits, Target
from batch.models import Plan, ShortfallPolicy


def sandbox_available() -> str | None:
    """None when the sandbox can be imported, else why not."""
    try:
        from batch.sandbox import SandboxConfig, SandboxServer, init_tenant  # noqa: F401
    except ImportError as e:
        return f"the sandbox server is not available yet: {e}"
    return None


@contextmanager
def running_sandbox(db: Path, **config: Any) -> Iterator[Any]:
    from batch.sandbox import SandboxConfig, SandboxServer

    server = SandboxServer(db, SandboxConfig(**config))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def target(server: Any) -> Target:
    return Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)


def seed(db: Path, users: int, seed: int = 3) -> None:
    from batch.sandbox import init_tenant

    init_tenant(db, users=users, seed=seed)


def write_wave(db: Path, path: Path, rows: int, *, rng_seed: int = 11) -> dict[str, int]:
    """A CSV wave over the seeded users: mostly assigns, swaps E3 -> E5 (atomic), removes, rows that also set
    a usage location, and rows that must fail or be skipped (unknown user / license). Returns kind counts."""
    from batch.sandbox.seed import list_users, tenant_info

    info = tenant_info(db)
    skus = info["skus"]
    users = [u for u in list_users(db) if u["accountEnabled"] and u["userType"] == "Member"]
    rng = random.Random(rng_seed)
    rng.shuffle(users)
    free = {p: s["enabled"] - s["consumed"] for p, s in skus.items() if s["appliesTo"] == "User"}
    big = sorted(free, key=lambda p: -free[p])[:3]  # the SKUs with the most free seats
    kinds: dict[str, int] = {}
    out: list[list[str]] = []

    def direct(u: dict[str, Any]) -> set[str]:
        ids = {s["skuId"] for s in u["licenseAssignmentStates"] if not s.get("assignedByGroup")}
        return {p for p, s in skus.items() if s["skuId"] in ids}

    def held(u: dict[str, Any]) -> set[str]:
        ids = {s["skuId"] for s in u["licenseAssignmentStates"]}
        return {p for p, s in skus.items() if s["skuId"] in ids}

    for u in users:
        if len(out) >= rows:
            break
        d, h = direct(u), held(u)
        r = rng.random()
        loc = ""
        if not u["usageLocation"]:
            loc = "DE"
        if r < 0.1 and "SPE_E3" in d and "SPE_E5" not in h:
            out.append([u["userPrincipalName"], "SPE_E5", "replace", "SPE_E3", loc])
            kinds["replace"] = kinds.get("replace", 0) + 1
        elif r < 0.2 and (d - {"SPE_E3", "SPE_E5"}):
            out.append([u["userPrincipalName"], sorted(d - {"SPE_E3", "SPE_E5"})[0], "remove", "", ""])
            kinds["remove"] = kinds.get("remove", 0) + 1
        elif r < 0.22:
            out.append([f"nobody{len(out)}@nowhere.example", big[0], "assign", "", ""])
            kinds["bad"] = kinds.get("bad", 0) + 1
        else:
            choice = [p for p in big if p not in h]
            if not choice:
                continue
            out.append([u["userPrincipalName"], choice[0], "assign", "", loc])
            kinds["assign"] = kinds.get("assign", 0) + 1
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["userPrincipalName", "License", "Action", "From license", "Usage location"])
        w.writerows(out)
    kinds["rows"] = len(out)
    return kinds


def make_plan(tenant: Any, sheet_path: Path, *, policy: ShortfallPolicy = ShortfallPolicy.PARTIAL) -> Plan:
    from batch.plan import plan
    from batch.sheets import parse_requests, read_sheet
    from batch.validate import validate

    sheet = read_sheet(sheet_path)
    requests = parse_requests(sheet)
    snap = tenant.snapshot([r.user for r in requests if r.user])
    return plan(validate(sheet, requests, snap, policy=policy))


def tenant_for(server: Any, limits: Limits) -> Any:
    from batch.tenant import Tenant

    return Tenant(target(server), limits)


@dataclass(frozen=True)
class State:
    users: dict[str, tuple[str | None, tuple[tuple[str, tuple[str, ...], str | None], ...]]]
    consumed: dict[str, int]


def tenant_state(db: Path) -> State:
    """The tenant as the sandbox stores it: every user's usage location and license states; SKU consumption."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        users = {}
        for uid, loc, lic in con.execute("SELECT id, usage_location, licenses FROM users"):
            states = tuple(sorted((s["skuId"], tuple(sorted(s.get("disabledPlans") or [])), s.get("assignedByGroup"))
                                  for s in json.loads(lic)))
            users[uid] = (loc, states)
        consumed = {p: int(c) for p, c in con.execute("SELECT part_number, consumed FROM skus")}
    finally:
        con.close()
    return State(users, consumed)


def outcome_rows(result: Any) -> list[tuple[Any, ...]]:
    """What must be identical between two runs of the same wave (no times or request ids)."""
    return [(r.row, r.status.value, r.action, r.code, r.message, r.fix, r.licenses_before, r.licenses_after)
            for r in result.rows]
