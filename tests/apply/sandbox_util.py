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


ADDONS = ("AAD_PREMIUM", "POWER_BI_PRO", "MCOMEETADV", "EMS")


def add_seats(db: Path, parts: tuple[str, ...], n: int) -> None:
    """Buy ``n`` more seats of each SKU in ``parts`` (server-side, before the server starts)."""
    con = sqlite3.connect(db)
    try:
        with con:
            con.executemany("UPDATE skus SET enabled = enabled + ? WHERE part_number = ?", [(n, p) for p in parts])
    finally:
        con.close()


def write_wave(db: Path, path: Path, rows: int, *, rng_seed: int = 11, graph_failures: bool = True) -> dict[str, int]:
    """A CSV wave over the seeded users (seats bought so capacity does not bind): mostly add-on assigns,
    swaps SPE_E3 -> SPE_E5 (atomic), removes of direct licenses, rows that also set a usage location, rows
    that validation skips (unknown user) and, with ``graph_failures``, rows Graph refuses (an Office E1 for a
    user with E3: mutually exclusive Exchange plans). Returns the count of each kind."""
    from batch.sandbox.seed import list_users, tenant_info

    add_seats(db, (*ADDONS, "SPE_E5"), rows)
    skus = tenant_info(db)["skus"]
    part_of = {s["skuId"]: p for p, s in skus.items()}
    users = [u for u in list_users(db) if u["accountEnabled"] and u["userType"] == "Member"]
    rng = random.Random(rng_seed)
    rng.shuffle(users)
    kinds: dict[str, int] = {}
    out: list[list[str]] = []

    def add(kind: str, row: list[str]) -> None:
        out.append(row)
        kinds[kind] = kinds.get(kind, 0) + 1

    for u in users:
        if len(out) >= rows:
            break
        states = u["licenseAssignmentStates"]
        direct = {part_of[s["skuId"]] for s in states if not s.get("assignedByGroup")}
        held = {part_of[s["skuId"]] for s in states}
        upn = u["userPrincipalName"]
        loc = "" if u["usageLocation"] else "DE"
        r = rng.random()
        removable = sorted(direct & set(ADDONS))
        if r < 0.02:
            add("bad", [f"nobody{len(out)}@nowhere.example", ADDONS[0], "assign", "", ""])
        elif r < 0.10 and "SPE_E3" in direct and "SPE_E5" not in held:
            add("replace", [upn, "SPE_E5", "replace", "SPE_E3", loc])
        elif r < 0.17 and removable:
            add("remove", [upn, removable[0], "remove", "", ""])
        elif graph_failures and r < 0.19 and "SPE_E3" in held and "STANDARDPACK" not in held:
            add("refused", [upn, "STANDARDPACK", "assign", "", loc])
        else:
            choice = [p for p in ADDONS if p not in held]
            if choice:
                add("assign", [upn, choice[0], "assign", "", loc])
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
            states = tuple(sorted(
                (s["skuId"], tuple(sorted(s.get("disabledPlans") or [])), s.get("assignedByGroup") or "")
                for s in json.loads(lic)))
            users[uid] = (loc, states)
        consumed = {p: int(c) for p, c in con.execute("SELECT part_number, consumed FROM skus")}
    finally:
        con.close()
    return State(users, consumed)


def outcome_rows(result: Any) -> list[tuple[Any, ...]]:
    """What must be identical between two runs of the same wave (no times or request ids)."""
    return [(r.row, r.status.value, r.action, r.code, r.message, r.fix, r.before, r.after)
            for r in result.rows]
