"""The Power Platform licensing face: environments, tenant currency capacity, allocations (per environment,
allocationsByEnvironment, allocationsV2 and its availability, all on one state), environment-group policy locks."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from . import behaviour as B
from .catalogue import CURRENCY_TYPES
from .config import SandboxConfig
from .http import Context, Reply, decode_skiptoken, encode_query, encode_skiptoken
from .store import Store

PP_READ = frozenset({"PowerPlatform.Read", "PowerPlatform.ReadWrite"})
PP_WRITE = frozenset({"PowerPlatform.ReadWrite"})
_CURRENCY_LOWER = {c.lower(): c for c in CURRENCY_TYPES}


class PPError(Exception):
    def __init__(self, status: int, code: str, message: str, *, bare: bool = False) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.bare = status, code, message, bare

    def reply(self) -> Reply:
        err = {"code": self.code, "message": self.message}
        return Reply(self.status, err if self.bare else {"error": err})


def pp_error(status: int, code: str, message: str) -> Reply:
    return PPError(status, code, message).reply()


class PowerPlatformFace:
    def __init__(self, store: Store, config: SandboxConfig, meta: Mapping[str, str]) -> None:
        self.store = store
        self.config = config
        self.tenant_id = meta["tenant_id"]
        self.base_url = ""

    def call(self, ctx: Context, method: str, segs: list[str], query: dict[str, str], body: Any) -> Reply:
        try:
            return self._dispatch(ctx, method, [s for s in segs], query, body)
        except PPError as e:
            return e.reply()

    # ------------------------------------------------------------------------------ routing
    def _dispatch(self, ctx: Context, method: str, segs: list[str], query: dict[str, str], body: Any) -> Reply:
        low = [s.lower() for s in segs]
        write = method != "GET"
        if not (ctx.scopes & (PP_WRITE if write else PP_READ)):
            raise PPError(403, B.PP_FORBIDDEN_CODE, B.MSG_FORBIDDEN)
        if low == ["environmentmanagement", "environments"] and method == "GET":
            self._version(query, B.PP_API_VERSION_ENVIRONMENTS)
            return self._environments(query)
        if low == ["licensing", "tenantcapacity", "currencyreports"] and method == "GET":
            self._version(query, B.PP_API_VERSION_V2)
            return self._currency_reports(query)
        per_env = len(low) == 4 and low[:2] == ["licensing", "environments"] and low[3] == "allocations"
        if per_env and method in ("GET", "PATCH"):
            v2 = self._version(query, B.PP_API_VERSION_ALLOCATIONS) in B.PP_API_VERSION_V2
            env = self._env(segs[2])
            if method == "GET":
                return Reply(200, self._allocation_obj(env, v2=v2))
            return Reply(200, self._patch(env, body, v2=v2))
        if low[:2] == ["licensing", "allocationsbyenvironment"]:
            if len(low) == 2 and method == "GET":
                self._version(query, B.PP_API_VERSION_V2)
                envs = [r[0] for r in self.store.conn.execute("SELECT id FROM environments ORDER BY n")]
                return Reply(200, [self._allocation_obj(e, v2=True) for e in envs])
            if len(low) == 3 and method == "GET":
                self._version(query, B.PP_API_VERSION_V2)
                return Reply(200, self._allocation_obj(self._env(segs[2]), v2=True))
            if len(low) == 2 and method == "PATCH":
                self._version(query, B.PP_API_VERSION_V2)
                env_id = body.get("environmentId") if isinstance(body, dict) else None
                if not isinstance(env_id, str) or not env_id:
                    raise PPError(400, B.PP_BAD_REQUEST_CODE, "environmentId is required.")
                return Reply(200, self._patch(self._env(env_id), body, v2=True))
        if low == ["licensing", "allocationsv2"] and method == "PUT":
            self._version(query, B.PP_API_VERSION_V2)
            return Reply(200, self._put_v2(body))
        if low == ["licensing", "allocationsv2", "availability"] and method == "GET":
            self._version(query, B.PP_API_VERSION_V2)
            return Reply(200, self._availability(query))
        raise PPError(404, "NotFound", f"The requested resource '/{'/'.join(segs)}' does not exist.", bare=True)

    def _version(self, query: Mapping[str, str], allowed: frozenset[str]) -> str:
        v = query.get("api-version")
        if v not in allowed:
            raise PPError(400, B.PP_API_VERSION_CODE,
                          B.PP_API_VERSION_MSG.format(version=v or "", supported=", ".join(sorted(allowed))),
                          bare=True)  # fmt: skip
        return v

    def _env(self, env_id: str) -> str:
        r = self.store.conn.execute("SELECT id FROM environments WHERE id = ? COLLATE NOCASE", (env_id,)).fetchone()
        if r is None:
            raise PPError(B.PP_UNKNOWN_ENVIRONMENT_STATUS, B.PP_UNKNOWN_ENVIRONMENT_CODE,
                          B.PP_UNKNOWN_ENVIRONMENT_MSG.format(id=env_id, tenant=self.tenant_id))  # fmt: skip
        return str(r[0])

    # ---------------------------------------------------------------------------- handlers
    def _environments(self, query: Mapping[str, str]) -> Reply:
        size = self.config.powerplatform_page_size
        after = 0
        if query.get("$skiptoken"):
            dec = decode_skiptoken(query["$skiptoken"])
            if dec is None:
                raise PPError(400, "InvalidSkipToken", "The skip token is invalid.")
            after = dec
        rows = self.store.conn.execute(
            "SELECT * FROM environments WHERE n > ? ORDER BY n LIMIT ?", (after, size + 1)
        ).fetchall()
        body: dict[str, Any] = {"value": [self._env_json(r) for r in rows[:size]]}
        if len(rows) > size:
            params = {k: v for k, v in query.items() if k != "$skiptoken"}
            params["$skiptoken"] = encode_skiptoken(rows[size - 1]["n"])
            body["@odata.nextLink"] = f"{self.base_url}/environmentmanagement/environments?{encode_query(params)}"
        return Reply(200, body)

    def _env_json(self, r: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": r["id"], "displayName": r["display_name"], "type": r["type"], "tenantId": self.tenant_id,
            "geo": r["geo"], "azureRegion": r["azure_region"], "state": r["state"], "url": r["url"],
            "domainName": r["domain_name"], "createdDateTime": r["created"], "version": r["version"],
            "dataverseId": None,
        }  # fmt: skip

    def _currency_reports(self, query: Mapping[str, str]) -> Reply:
        conn = self.store.conn
        allocated = dict(conn.execute("SELECT currency_type, SUM(allocated) FROM allocations GROUP BY currency_type"))
        include = query.get("includeAllocations", "").lower() == "true"
        out = []
        for r in conn.execute("SELECT * FROM currencies ORDER BY currency_type"):
            item: dict[str, Any] = {"currencyType": r["currency_type"], "purchased": r["purchased"]}
            if include or not B.PP_REPORT_ALLOCATED_ONLY_WHEN_ASKED:
                item["allocated"] = int(allocated.get(r["currency_type"]) or 0)
            item["consumed"] = {"unitsConsumed": r["consumed"], "lastUpdatedDay": r["last_updated"]}
            out.append(item)
        return Reply(200, out)

    def _rules(self, env_id: str) -> dict[str, list[dict[str, Any]]]:
        """currencyType -> that entry's enforcement rules, in the documented rule order."""
        order = {r: i for i, r in enumerate(B.PP_RULE_TYPES)}
        out: dict[str, list[dict[str, Any]]] = {}
        rows = self.store.conn.execute(
            "SELECT currency_type, rule_type, enabled FROM allocation_rules WHERE environment_id=?", (env_id,)
        ).fetchall()
        for cur, rule, enabled in sorted(rows, key=lambda r: (r[0], order.get(r[1], 99))):
            out.setdefault(cur, []).append({"ruleType": rule, "enabled": bool(enabled)})
        return out

    def _entries(self, env_id: str) -> list[tuple[str, int, int]]:
        return [
            (str(r[0]), int(r[1]), int(r[2]))
            for r in self.store.conn.execute(
                "SELECT currency_type, allocated, auto_allocated FROM allocations WHERE environment_id=? "
                "ORDER BY currency_type",
                (env_id,),
            )
        ]

    def _allocation_obj(self, env_id: str, *, v2: bool) -> dict[str, Any]:
        """The 2022-03-01-preview shape ({currencyType, allocated}) or the 2024-10-01 one (autoAllocated and the
        entry's enforcementRules inside each currency entry)."""
        rules = self._rules(env_id) if v2 else {}
        allocs: list[dict[str, Any]] = []
        for cur, allocated, auto in self._entries(env_id):
            entry: dict[str, Any] = {"currencyType": cur, "allocated": allocated}
            if v2:
                entry["autoAllocated"] = auto
                entry["enforcementRules"] = rules.get(cur, [])
            allocs.append(entry)
        return {"environmentId": env_id, "currencyAllocations": allocs}

    # ------------------------------------------------------------------------------ writes
    def _patch(self, env_id: str, body: Any, *, v2: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "The request body must be a JSON object.")
        if "environmentId" in body and str(body["environmentId"]).lower() != env_id.lower():
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "environmentId in the body does not match the environment.")
        if B.PP_REJECT_TOP_LEVEL_RULES and "enforcementRules" in body:
            raise PPError(400, B.PP_BAD_REQUEST_CODE,
                          "enforcementRules belong inside each entry of currencyAllocations.")  # fmt: skip
        allocs = body.get("currencyAllocations")
        if not isinstance(allocs, list):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "currencyAllocations must be a JSON array.")
        wanted: list[tuple[str, int, list[tuple[str, bool]] | None]] = []
        for a in allocs:
            if not isinstance(a, dict) or not isinstance(a.get("currencyType"), str) or "allocated" not in a:
                raise PPError(
                    400, B.PP_BAD_REQUEST_CODE, "Each allocation needs a currencyType and an allocated value."
                )
            cur = self._currency(a["currencyType"])
            wanted.append((cur, _whole(a.get("allocated"), cur), _parse_rules(a.get("enforcementRules"), cur)))
        self._write(env_id, wanted)
        obj = self._allocation_obj(env_id, v2=v2)
        if not B.PP_PATCH_RETURNS_ALL:
            names = {w[0] for w in wanted}
            obj["currencyAllocations"] = [a for a in obj["currencyAllocations"] if a["currencyType"] in names]
        return obj

    def _put_v2(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "The request body must be a JSON object.")
        scope = body.get("scope")
        env_raw = scope.get("environmentId") if isinstance(scope, dict) else None
        if not isinstance(env_raw, str) or not env_raw:
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "scope.environmentId is required.")
        env_id = self._env(env_raw)
        ents = body.get("allocatedEntitlements")
        if not isinstance(ents, list):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "allocatedEntitlements must be a JSON array.")
        wanted: list[tuple[str, int, list[tuple[str, bool]] | None]] = []
        for e in ents:
            alloc = e.get("allocation") if isinstance(e, dict) else None
            if not isinstance(e, dict) or not isinstance(e.get("entitlementId"), str) or not isinstance(alloc, dict):
                msg = "Each allocated entitlement needs an entitlementId and an allocation.quantity."
                raise PPError(400, B.PP_BAD_REQUEST_CODE, msg)
            cur = self._currency(e["entitlementId"])
            wanted.append((cur, _whole(alloc.get("quantity"), cur), _parse_rules(e.get("enforcementRules"), cur)))
        self._write(env_id, wanted)
        rules = self._rules(env_id)
        return {
            "scope": {"environmentId": env_id},
            "allocatedEntitlements": [
                {"entitlementId": cur, "allocation": {"quantity": allocated}, "enforcementRules": rules.get(cur, [])}
                for cur, allocated, _auto in self._entries(env_id)
            ],
        }

    def _currency(self, name: str) -> str:
        cur = _CURRENCY_LOWER.get(name.lower())
        if cur is None:
            raise PPError(400, B.PP_UNKNOWN_CURRENCY_CODE, B.PP_UNKNOWN_CURRENCY_MSG.format(currency=name))
        return cur

    def _write(self, env_id: str, wanted: list[tuple[str, int, list[tuple[str, bool]] | None]]) -> None:
        """Set ABSOLUTE allocations (and, where given, an entry's rules) in one transaction: all or nothing."""
        seen: set[str] = set()
        for cur, _amount, _rules in wanted:
            if cur in seen:
                raise PPError(400, B.PP_BAD_REQUEST_CODE, f"The currency type '{cur}' is listed twice.")
            seen.add(cur)
        with self.store.write() as c:
            lock = c.execute(
                "SELECT group_name FROM environment_policies WHERE environment_id=? AND tenant_pool_locked<>0",
                (env_id,),
            ).fetchone()
            if lock is not None:
                raise PPError(B.PP_TENANT_POOL_LOCKED_STATUS, B.PP_TENANT_POOL_LOCKED_CODE,
                              B.PP_TENANT_POOL_LOCKED_MSG.format(id=env_id, group=lock[0]))  # fmt: skip
            for cur, amount, rules in wanted:
                row = c.execute("SELECT purchased FROM currencies WHERE currency_type=?", (cur,)).fetchone()
                purchased = int(row[0]) if row else 0
                others = int(c.execute(
                    "SELECT COALESCE(SUM(allocated), 0) FROM allocations WHERE currency_type=? AND environment_id<>?",
                    (cur, env_id),
                ).fetchone()[0])  # fmt: skip
                if others + amount > purchased:
                    raise PPError(400, B.PP_OVER_ALLOCATION_CODE, B.PP_OVER_ALLOCATION_MSG.format(
                        currency=cur, requested=amount, available=max(0, purchased - others), purchased=purchased,
                        others=others))  # fmt: skip
                c.execute(
                    "INSERT INTO allocations(environment_id, currency_type, allocated) VALUES(?,?,?) "
                    "ON CONFLICT(environment_id, currency_type) DO UPDATE SET allocated=excluded.allocated",
                    (env_id, cur, amount),
                )
                if rules is not None or not B.PP_PATCH_KEEPS_OMITTED_RULES:
                    c.execute("DELETE FROM allocation_rules WHERE environment_id=? AND currency_type=?", (env_id, cur))
                    c.executemany("INSERT INTO allocation_rules VALUES(?,?,?,?)",
                                  [(env_id, cur, rule, int(on)) for rule, on in rules or ()])  # fmt: skip

    # ------------------------------------------------------------------------- availability
    def _availability(self, query: Mapping[str, str]) -> dict[str, Any]:
        raw = query.get("$filter") or ""
        m = _AVAILABILITY_FILTER.match(raw)
        if m is None:
            msg = "The $filter must be environmentId eq '{id}' [and EntitlementId in ('...', ...)]."
            raise PPError(400, B.PP_FILTER_INVALID_CODE, msg)
        env_id = self._env(m.group(1))
        conn = self.store.conn
        purchased = {str(r[0]): int(r[1]) for r in conn.execute("SELECT currency_type, purchased FROM currencies")}
        if m.group(2) is not None:
            names = [x.strip().strip("'").strip() for x in m.group(2).split(",") if x.strip()]
            wanted = [self._currency(n) for n in names]
        else:
            wanted = sorted(purchased)
        out = []
        for cur in wanted:
            where = "currency_type=? AND environment_id<>?" if B.PP_AVAILABILITY_INCLUDES_OWN else "currency_type=?"
            args = (cur, env_id) if B.PP_AVAILABILITY_INCLUDES_OWN else (cur,)
            held = int(conn.execute(f"SELECT COALESCE(SUM(allocated), 0) FROM allocations WHERE {where}", args)
                       .fetchone()[0])  # fmt: skip
            out.append({"entitlementId": cur, "availableQuantity": max(0, purchased.get(cur, 0) - held)})
        return {"entitlementAllocationsAvailable": out}


_AVAILABILITY_FILTER = re.compile(
    r"^\s*environmentId\s+eq\s+'([^']+)'(?:\s+and\s+EntitlementId\s+in\s+\(([^)]*)\))?\s*$", re.IGNORECASE
)


def _whole(value: Any, cur: str) -> int:
    """A whole, non-negative number (500 or 500.0), or a 400."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (
        float("inf"), float("-inf")) or value < 0 or value != int(value):  # fmt: skip
        raise PPError(400, B.PP_BAD_REQUEST_CODE, f"allocated for '{cur}' must be a whole number >= 0.")
    return int(value)


def _parse_rules(raw: Any, cur: str) -> list[tuple[str, bool]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise PPError(400, B.PP_BAD_REQUEST_CODE, f"enforcementRules of '{cur}' must be a JSON array.")
    out: dict[str, bool] = {}
    for rule in raw:
        if not isinstance(rule, dict) or rule.get("ruleType") not in B.PP_RULE_TYPES:
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "ruleType must be one of Alert, PayGo, TenantPool, Deny.")
        if not isinstance(rule.get("enabled"), bool):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "enabled of an enforcement rule must be true or false.")
        out[rule["ruleType"]] = rule["enabled"]
    return list(out.items())
