"""Seeding: a realistic, deterministic tenant (same seed, same tenant) in one SQLite file.

The first users are fixed personas with documented situations (see the README, "The sandbox tenant"), so sample
sheets and tests can name them; the rest are generated from the seed with predictable UPNs
``firstname.lastname[N]@contoso.onmicrosoft.com`` (a number is appended on a clash).
"""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import catalogue as C
from .store import (
    LEGACY_TABLES,
    SCHEMA_VERSION,
    TABLES,
    connect,
    create_schema,
    dumps,
    install_default_tokens,
    migrate,
)

DOMAIN = "contoso.onmicrosoft.com"
TENANT_NAME = "Contoso"
TENANT_COUNTRY = "US"
#: Fixed timestamps keep the seed deterministic.
SEED_STAMP = "2026-01-05T09:00:00Z"

#: given, surname, job title, department, country (None = no usageLocation), licenses, flags
#: licenses: list of (skuId, disabled plan ids, group key or None). Group keys: see LICENSING_GROUPS.
License = tuple[str, tuple[str, ...], str | None]
PERSONAS: tuple[tuple[str, str, str, str, str | None, tuple[License, ...], str], ...] = (
    ("Adele", "Vance", "Retail Manager", "Sales", "US", ((C.SPE_E3, (), None),), ""),
    ("Alex", "Wilber", "Marketing Assistant", "Marketing", "US", ((C.O365_E1, (), None),), ""),
    ("Megan", "Bowen", "Marketing Manager", "Marketing", None, (), ""),
    ("Lee", "Gu", "Director", "Engineering", "US", ((C.SPE_E3, (), None),), "disabled"),
    ("Nestor", "Wilke", "Director", "Operations", "US", ((C.SPE_E3, (), "e3"),), ""),
    ("Isaiah", "Langer", "Sales Rep", "Sales", "US", ((C.SPE_E3, (), None), (C.SPE_E3, (), "e3")), ""),
    ("Lynne", "Robbins", "Planner", "Operations", "US", ((C.SPE_E5, (), None), (C.COPILOT, (), None)), ""),
    ("Diego", "Siciliani", "HR Manager", "Human Resources", "US",
     ((C.O365_E3, (C.SWAY, C.YAMMER_ENTERPRISE), None),), ""),
    ("Johanna", "Lorenz", "Senior Engineer", "Engineering", "DE",
     ((C.SPE_E3, (), None), (C.POWERAPPS_PREMIUM, (), "powerapps")), ""),
    ("Pradeep", "Gupta", "Accountant", "Finance", "IN", (), ""),
    ("Grady", "Archie", "Designer", "Research", "US", ((C.SPE_E3, (), None), (C.COPILOT, (), "copilot")), ""),
    ("Henrietta", "Mueller", "Developer", "Engineering", "DE", ((C.TEAMS_EEA, (), None),), ""),
    ("Joni", "Sherman", "Paralegal", "Legal", "US", ((C.POWER_BI_PRO, (), None),), ""),
    ("Lidia", "Holloway", "Product Manager", "Engineering", "US", ((C.SPE_E3, (), None), (C.AUDIO_CONF, (), None)), ""),
    ("Miriam", "Graham", "Director", "Sales", "US", ((C.SPE_E5, (), None), (C.ENTRA_P2, (), None)), ""),
    ("Patti", "Fernandez", "President", "Executive", "US",
     ((C.SPE_E5, (), None), (C.COPILOT, (), None), (C.POWERAUTOMATE_PREMIUM, (), None)), ""),
)  # fmt: skip
#: Fixed guests: (given, surname, home domain, licenses)
GUEST_PERSONAS = (
    ("Jane", "Doe", "fabrikam.com", ((C.O365_E1, (), None),)),
    ("Raj", "Patel", "northwindtraders.com", ()),
)

#: key -> (displayName, skuId, description)
LICENSING_GROUPS: dict[str, tuple[str, str, str]] = {
    "e3": ("Licensing - Microsoft 365 E3", C.SPE_E3, "Members get Microsoft 365 E3"),
    "powerapps": ("Licensing - Power Apps Premium", C.POWERAPPS_PREMIUM, "Members get Power Apps Premium"),
    "copilot": ("Licensing - Copilot", C.COPILOT, "Members get Microsoft 365 Copilot"),
    "audio": ("Licensing - Audio Conferencing", C.AUDIO_CONF, "Members get Audio Conferencing"),
}


#: Free seats left after seeding, per SKU (n = number of users). Some SKUs are nearly or exactly full.
def _free_seats(n: int) -> dict[str, int]:
    return {
        C.SPE_E3: 5,
        C.SPE_E5: n // 20 + 10,
        C.O365_E1: n // 10 + 20,
        C.O365_E3: n // 25 + 5,
        C.O365_E5: 2,
        C.POWERAPPS_PREMIUM: 1,
        C.POWERAUTOMATE_PREMIUM: n // 50 + 5,
        C.ENTRA_P1: n // 10 + 10,
        C.ENTRA_P2: 10,
        C.TEAMS_EEA: n // 20 + 5,
        C.COPILOT: 0,
        C.AUDIO_CONF: n // 20 + 5,
        C.POWER_BI_PRO: n // 20 + 5,
        C.EMS_E3: 25,
        C.AI_BUILDER_CAPACITY: 3,
        C.POWERAPPS_PER_APP: 50,
        C.POWERAUTOMATE_PROCESS: 10,
    }


@dataclass(frozen=True, slots=True)
class SeedSummary:
    db: Path
    tenant_id: str
    domain: str
    seed: int
    users: int
    members: int
    guests: int
    disabled: int
    without_usage_location: int
    groups: int
    licensing_groups: int
    skus: int
    environments: int
    seconds: float


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def init_tenant(db: str | Path, *, users: int = 500, seed: int = 1, domain: str = DOMAIN) -> SeedSummary:
    """Create (or reset) the sandbox tenant in ``db``: same seed, same tenant. Existing state is replaced."""
    t0 = time.perf_counter()
    if users < 0:
        raise ValueError("users must be >= 0")
    path = Path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tenant_id = _uuid(rng)
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for t in (*TABLES, *LEGACY_TABLES):
            conn.execute(f"DROP TABLE IF EXISTS {t}")
        create_schema(conn)
        install_default_tokens(conn)
        summary = _seed(conn, rng, tenant_id, users, seed, domain)
        migrate(conn)  # columns added after the positional inserts above (membershipRule, employeeType)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
    return SeedSummary(db=path, seconds=time.perf_counter() - t0, **summary)


def _seed(
    conn: sqlite3.Connection, rng: random.Random, tenant_id: str, n_users: int, seed: int, domain: str
) -> dict[str, Any]:
    # ---- groups (ids first: users reference them)
    group_ids = {k: _uuid(rng) for k in LICENSING_GROUPS}
    dept_groups = {d: _uuid(rng) for d in C.DEPARTMENTS}

    users: list[tuple[Any, ...]] = []
    members: list[tuple[str, str, int]] = []
    member_count: dict[str, int] = {}
    taken: set[str] = set()
    counts = {"members": 0, "guests": 0, "disabled": 0, "no_location": 0}

    def add_member(gid: str, uid: str) -> None:
        member_count[gid] = member_count.get(gid, 0) + 1
        members.append((gid, uid, member_count[gid]))

    def state(sku: str, disabled: tuple[str, ...] | list[str], group: str | None) -> dict[str, Any]:
        return {"assignedByGroup": group, "disabledPlans": sorted(disabled), "error": "None",
                "lastUpdatedDateTime": SEED_STAMP, "skuId": sku, "state": "Active"}  # fmt: skip

    def unique(local: str) -> str:
        base, k = local, 1
        while local in taken:
            k += 1
            local = f"{base}{k}"
        taken.add(local)
        return local

    def add_user(given: str, surname: str, title: str | None, dept: str | None, country: str | None,
                 states: list[dict[str, Any]], *, enabled: bool = True, guest_domain: str | None = None,
                 city: str | None = None, lang: str | None = None) -> str:  # fmt: skip
        uid = _uuid(rng)
        local = unique(f"{given}.{surname}".lower().replace(" ", ""))
        if guest_domain:
            mail = f"{local}@{guest_domain}"
            upn = f"{local}_{guest_domain}#EXT#@{domain}"
            user_type = "Guest"
            counts["guests"] += 1
        else:
            upn = mail = f"{local}@{domain}"
            user_type = "Member"
            counts["members"] += 1
        if not enabled:
            counts["disabled"] += 1
        if country is None:
            counts["no_location"] += 1
        for s in states:
            if s["assignedByGroup"]:
                add_member(s["assignedByGroup"], uid)
        if dept in dept_groups and not guest_domain:
            add_member(dept_groups[dept], uid)
        n = len(users) + 1
        phone = f"+1 425 555 {n % 10000:04d}" if not guest_domain else None
        users.append((
            n, uid, upn, upn.lower(), mail, mail.lower(), f"{given} {surname}", given, surname, title, dept,
            f"{city} {n % 40 + 1}/{n % 7 + 1}" if city else None, city,
            next((name for code, name, _c, _l in C.LOCATIONS if code == country), None) if country else None,
            country, lang, None, dumps([phone] if phone else []), int(enabled), user_type,
            TENANT_NAME if not guest_domain else None, SEED_STAMP, dumps(states),
        ))  # fmt: skip
        return uid

    # ---- fixed personas
    for given, surname, title, dept, country, lic, flags in PERSONAS[:n_users]:
        loc = next((x for x in C.LOCATIONS if x[0] == (country or "US")), C.LOCATIONS[0])
        pstates = [state(s, d, group_ids[g] if g else None) for s, d, g in lic]
        add_user(
            given, surname, title, dept, country, pstates, enabled="disabled" not in flags, city=loc[2], lang=loc[3]
        )
    for given, surname, gdomain, lic in GUEST_PERSONAS[: max(0, n_users - len(PERSONAS))]:
        gstates = [state(s, d, group_ids[g] if g else None) for s, d, g in lic]
        add_user(given, surname, None, None, "US" if lic else None, gstates, guest_domain=gdomain)

    # ---- generated users
    depts = list(C.DEPARTMENTS)
    for _ in range(max(0, n_users - len(PERSONAS) - len(GUEST_PERSONAS))):
        given = rng.choice(C.FIRST_NAMES)
        surname = rng.choice(C.LAST_NAMES)
        r_kind = rng.random()
        if r_kind < 0.02:  # guest
            gd = rng.choice(C.GUEST_DOMAINS)
            add_user(given, surname, None, None, None if rng.random() < 0.7 else "US", [], guest_domain=gd)
            continue
        dept = rng.choice(depts)
        title = rng.choice(C.DEPARTMENTS[dept])
        code, _name, city, lang = rng.choice(C.LOCATIONS)
        no_loc = rng.random() < 0.05
        enabled = rng.random() >= 0.03
        states: list[dict[str, Any]] = []
        if not no_loc:
            r = rng.random()
            base: str | None = None
            if r < 0.40:
                base = C.SPE_E3
            elif r < 0.48:
                base = C.SPE_E5
            elif r < 0.63:
                base = C.O365_E1
            elif r < 0.73:
                base = C.O365_E3
            elif r < 0.78:
                base = C.TEAMS_EEA
            if base is not None:
                disabled: tuple[str, ...] = ()
                if base in (C.SPE_E3, C.O365_E3) and rng.random() < 0.2:
                    disabled = (C.SWAY,) if rng.random() < 0.5 else (C.SWAY, C.YAMMER_ENTERPRISE)
                via_group = base == C.SPE_E3 and rng.random() < 0.3
                states.append(state(base, disabled, group_ids["e3"] if via_group else None))
                if base in (C.SPE_E3, C.SPE_E5, C.O365_E3, C.O365_E1):
                    if rng.random() < 0.10:
                        states.append(
                            state(C.POWERAPPS_PREMIUM, (), group_ids["powerapps"] if rng.random() < 0.5 else None)
                        )
                    if rng.random() < 0.05:
                        states.append(state(C.POWERAUTOMATE_PREMIUM, (), None))
                    if rng.random() < 0.05:
                        states.append(state(C.POWER_BI_PRO, (), None))
                    if base != C.SPE_E5 and rng.random() < 0.05:
                        states.append(state(C.AUDIO_CONF, (), group_ids["audio"] if rng.random() < 0.5 else None))
                if base == C.O365_E1 and rng.random() < 0.3:
                    states.append(state(C.ENTRA_P1, (), None))
                if base in (C.SPE_E3, C.SPE_E5) and rng.random() < 0.03:
                    states.append(state(C.COPILOT, (), None))
        add_user(given, surname, title, dept, None if no_loc else code, states, enabled=enabled, city=city, lang=lang)

    # ---- seats: consumed from the states; purchased = consumed + the configured free seats
    consumed: dict[str, int] = {s.sku_id: 0 for s in C.SKUS}
    for row in users:
        held = {st["skuId"] for st in _loads(row[-1]) if st["state"] == "Active"}
        for sku in held:
            consumed[sku] += 1
    # Grady Archie's Copilot from the group hit a full SKU: CountViolation.
    free = _free_seats(n_users)
    if n_users > 10:
        users = [_mark_count_violation(u, group_ids["copilot"], C.COPILOT) if u[2].startswith("grady.archie@") else u
                 for u in users]  # fmt: skip
        consumed[C.COPILOT] = sum(
            1 for u in users if any(st["skuId"] == C.COPILOT and st["state"] == "Active" for st in _loads(u[-1]))
        )
    conn.executemany(f"INSERT INTO users VALUES({','.join('?' * 23)})", users)
    conn.executemany("INSERT INTO members VALUES(?,?,?)", members)

    sku_rows = []
    for i, s in enumerate(C.SKUS):
        status, warning = "Enabled", 0
        units = consumed[s.sku_id] + free[s.sku_id]
        if s.sku_id == C.O365_E5:
            status, warning = "Warning", max(1, units // 10)
        plans = [{"servicePlanId": pid, "servicePlanName": name, "provisioningStatus": "Success",
                  "appliesTo": s.applies_to} for pid, name in s.plans]  # fmt: skip
        sku_rows.append((s.sku_id, s.part_number, s.applies_to, status, units, 0, warning, 0,
                         consumed[s.sku_id], dumps([_uuid(rng)]), dumps(plans), i))  # fmt: skip
    conn.executemany("INSERT INTO skus VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", sku_rows)

    groups: list[tuple[Any, ...]] = []
    n = 0
    for key, (name, sku, desc) in LICENSING_GROUPS.items():
        n += 1
        nick = name.replace(" - ", "-").replace(" ", "")
        groups.append((n, group_ids[key], name, desc, nick, None, 0, 1, "[]", SEED_STAMP,
                       dumps([{"disabledPlans": [], "skuId": sku}]), "ProcessingComplete"))  # fmt: skip
    for dept, gid in dept_groups.items():
        n += 1
        nick = dept.replace(" ", "")
        groups.append((n, gid, f"{dept} Team", f"Everyone in {dept}", nick, f"{nick}@{domain}", 1, 1,
                       dumps(["Unified"]), SEED_STAMP, "[]", None))  # fmt: skip
    conn.executemany("INSERT INTO groups VALUES(?,?,?,?,?,?,?,?,?,?,?,?)", groups)

    envs = _seed_environments(conn, rng, tenant_id)
    meta = {"tenant_id": tenant_id, "tenant_name": TENANT_NAME, "domain": domain, "country": TENANT_COUNTRY,
            "seed": str(seed), "users": str(n_users), "schema_version": SCHEMA_VERSION}  # fmt: skip
    conn.executemany("INSERT INTO meta VALUES(?,?)", list(meta.items()))
    return {
        "tenant_id": tenant_id, "domain": domain, "seed": seed, "users": len(users),
        "members": counts["members"], "guests": counts["guests"], "disabled": counts["disabled"],
        "without_usage_location": counts["no_location"], "groups": len(groups),
        "licensing_groups": len(LICENSING_GROUPS), "skus": len(sku_rows), "environments": envs,
    }  # fmt: skip


def _loads(text: str) -> list[dict[str, Any]]:
    import orjson

    return orjson.loads(text)


def _mark_count_violation(u: tuple[Any, ...], group_id: str, sku_id: str) -> tuple[Any, ...]:
    states = _loads(u[-1])
    for st in states:
        if st["skuId"] == sku_id and st["assignedByGroup"] == group_id:
            st["state"], st["error"] = "Error", "CountViolation"
    return (*u[:-1], dumps(states))


#: (name, type, geo, azureRegion, allocations {currencyType: allocated}). Appended entries keep the earlier
#: ids stable (ids are drawn from the seed in this order).
ENVIRONMENTS: tuple[tuple[str, str, str, str, dict[str, int]], ...] = (
    ("Contoso (default)", "Default", "unitedstates", "westus", {}),
    ("Contoso Production", "Production", "unitedstates", "eastus",
     {"AI": 1_000_000, "AppPass": 20, "PowerAutomatePerProcess": 5, "MCSMessages": 10_000, "PAUnattendedRPA": 2}),
    ("Contoso Sales EU", "Production", "europe", "westeurope", {"AI": 500_000, "AppPass": 15}),
    ("Contoso UAT", "Sandbox", "unitedstates", "eastus", {"AI": 250_000, "AppPass": 10}),
    ("Contoso Dev", "Developer", "unitedstates", "westus", {}),
    ("Contoso Trial", "Trial", "europe", "northeurope", {}),
    ("Contoso Finance", "Production", "unitedstates", "eastus", {"MCSMessages": 2_000}),
)  # fmt: skip
#: Environment name -> (environment group, the group's policy locks the tenant pool). Writes of allocations to a
#: locked environment are refused with TenantPoolLockedByPolicy (behaviour.PP_TENANT_POOL_LOCKED_*).
ENVIRONMENT_GROUPS: dict[str, tuple[str, bool]] = {
    "Contoso Finance": ("Regulated workloads", True),
    "Contoso Production": ("Production", False),
    "Contoso Sales EU": ("Production", False),
}
LOCKED_ENVIRONMENT = "Contoso Finance"
#: (environment name, currencyType) -> enforcement rules of that currency entry (ruleType -> enabled).
ENFORCEMENT_RULES: dict[tuple[str, str], dict[str, bool]] = {
    ("Contoso Production", "AI"): {"Alert": True},
    ("Contoso Production", "MCSMessages"): {"Alert": True, "PayGo": False, "TenantPool": True},
    ("Contoso Sales EU", "AI"): {"Alert": True, "Deny": False},
    ("Contoso Finance", "MCSMessages"): {"TenantPool": False, "Deny": True},
}
#: currencyType -> (purchased, consumed)
CURRENCIES: dict[str, tuple[int, int]] = {
    "AI": (3_000_000, 412_500),  # 3 x AI Builder capacity add-on (1M credits each)
    "AppPass": (50, 31),  # Power Apps per app plans
    "PowerAutomatePerProcess": (10, 4),
    "MCSMessages": (25_000, 6_120),
    "PAUnattendedRPA": (5, 1),
    "PowerPagesAuthenticated": (100, 0),
    "PowerPagesAnonymous": (500, 37),
}


def _seed_environments(conn: sqlite3.Connection, rng: random.Random, tenant_id: str) -> int:
    rows: list[tuple[Any, ...]] = []
    allocs: list[tuple[str, str, int, int]] = []
    rules: list[tuple[str, str, str, int]] = []
    policies: list[tuple[str, str, int]] = []
    for i, (name, typ, geo, region, alloc) in enumerate(ENVIRONMENTS):
        env_id = f"Default-{tenant_id}" if typ == "Default" else _uuid(rng)
        org = f"org{rng.getrandbits(32):08x}"
        host = "crm4.dynamics.com" if geo == "europe" else "crm.dynamics.com"
        rows.append((i + 1, env_id, name, typ, geo, region, "Ready", f"https://{org}.{host}/", org,
                     SEED_STAMP, "9.2.25013.00190"))  # fmt: skip
        allocs.extend((env_id, cur, amount, 0) for cur, amount in alloc.items())
        for (env_name, cur), entry_rules in ENFORCEMENT_RULES.items():
            if env_name == name:
                rules.extend((env_id, cur, rule, int(on)) for rule, on in entry_rules.items())
        if name in ENVIRONMENT_GROUPS:
            group, locked = ENVIRONMENT_GROUPS[name]
            policies.append((env_id, group, int(locked)))
    conn.executemany("INSERT INTO environments VALUES(?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.executemany("INSERT INTO allocations VALUES(?,?,?,?)", allocs)
    conn.executemany("INSERT INTO allocation_rules VALUES(?,?,?,?)", rules)
    conn.executemany("INSERT INTO environment_policies VALUES(?,?,?)", policies)
    conn.executemany(
        "INSERT INTO currencies VALUES(?,?,?,?)",
        [(cur, p, c, "2026-01-04") for cur, (p, c) in CURRENCIES.items()],
    )
    return len(rows)


# ------------------------------------------------------------------------------- reading helpers


def list_users(db: str | Path) -> list[dict[str, Any]]:
    """Every seeded user as plain data (for tests and sample sheets): id, upn, mail, usageLocation,
    accountEnabled, userType, department, jobTitle, licenses (licenseAssignmentStates)."""
    conn = connect(db)
    try:
        rows = conn.execute(
            "SELECT id, upn, mail, usage_location, account_enabled, user_type, department, job_title, licenses "
            "FROM users ORDER BY n"
        ).fetchall()
    finally:
        conn.close()
    return [
        {"id": r[0], "userPrincipalName": r[1], "mail": r[2], "usageLocation": r[3], "accountEnabled": bool(r[4]),
         "userType": r[5], "department": r[6], "jobTitle": r[7], "licenseAssignmentStates": _loads(r[8])}
        for r in rows
    ]  # fmt: skip


def tenant_info(db: str | Path) -> dict[str, Any]:
    """Tenant id, domain, seed, SKUs (part number -> dict with skuId, enabled, consumed), groups, environments
    (display name -> id) and locked_environments (ids whose group policy locks the tenant pool)."""
    conn = connect(db)
    try:
        meta = {r[0]: r[1] for r in conn.execute("SELECT key, value FROM meta")}
        skus = {
            r[1]: {"skuId": r[0], "appliesTo": r[2], "enabled": r[3], "consumed": r[4]}
            for r in conn.execute("SELECT sku_id, part_number, applies_to, enabled, consumed FROM skus ORDER BY ord")
        }
        groups = {r[1]: r[0] for r in conn.execute("SELECT id, display_name FROM groups ORDER BY n")}
        envs = {r[1]: r[0] for r in conn.execute("SELECT id, display_name FROM environments ORDER BY n")}
        locked = [
            r[0] for r in conn.execute("SELECT environment_id FROM environment_policies WHERE tenant_pool_locked <> 0")
        ]
    finally:
        conn.close()
    return {**meta, "skus": skus, "groups": groups, "environments": envs, "locked_environments": locked}


# ------------------------------------------------------------------------------- shaping helpers


def add_member(db: str | Path, group: str, member: str) -> str:
    """Make ``member`` (a user: UPN or id; or a group: display name or id, which nests it) a member of ``group``
    (display name or id), through the same code as ``POST /groups/{id}/members/$ref``: a nested group's users
    get none of the group's licenses (group-based licensing reaches direct members only). For tests and demos
    of nesting; the default seed has none. Returns the member's object id."""
    from . import directory as D

    conn = connect(db)
    try:
        migrate(conn)

        def one(sql: str, key: str) -> str | None:
            rows = conn.execute(sql, (key.strip().lower(), key.strip())).fetchall()
            if len(rows) > 1:
                raise ValueError(f"{len(rows)} objects are called '{key}'.")
            return str(rows[0][0]) if rows else None

        gid = one("SELECT id FROM groups WHERE id=? OR display_name=?", group)
        oid = (one("SELECT id FROM users WHERE id=? OR upn_lower=lower(?)", member)
               or one("SELECT id FROM groups WHERE id=? OR display_name=?", member))
        if gid is None or oid is None:
            raise ValueError(f"No group '{group}'." if gid is None else f"No user or group '{member}'.")
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            D.add_member(conn, gid, {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{oid}"},
                         time.time)
        return oid
    finally:
        conn.close()
