"""The Power Platform licensing face: environments, tenant currency capacity, allocations."""

from __future__ import annotations

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
        if len(low) == 4 and low[:2] == ["licensing", "environments"] and low[3] == "allocations":
            self._version(query, B.PP_API_VERSION_ALLOCATIONS)
            env = self._env(segs[2])
            if method == "GET":
                return Reply(200, self._allocation_obj(env, rules=False))
            if method == "PATCH":
                return Reply(200, self._patch(env, body, rules=False))
        if low[:2] == ["licensing", "allocationsbyenvironment"]:
            self._version(query, B.PP_API_VERSION_V2)
            if len(low) == 2 and method == "GET":
                envs = [r[0] for r in self.store.conn.execute("SELECT id FROM environments ORDER BY n")]
                return Reply(200, [self._allocation_obj(e, rules=True) for e in envs])
            if len(low) == 3 and method == "GET":
                return Reply(200, self._allocation_obj(self._env(segs[2]), rules=True))
            if len(low) == 2 and method == "PATCH":
                env_id = body.get("environmentId") if isinstance(body, dict) else None
                if not isinstance(env_id, str) or not env_id:
                    raise PPError(400, B.PP_BAD_REQUEST_CODE, "environmentId is required.")
                return Reply(200, self._patch(self._env(env_id), body, rules=True))
        raise PPError(404, "NotFound", f"The requested resource '/{'/'.join(segs)}' does not exist.", bare=True)

    def _version(self, query: Mapping[str, str], allowed: frozenset[str]) -> None:
        v = query.get("api-version")
        if v not in allowed:
            raise PPError(400, B.PP_API_VERSION_CODE,
                          B.PP_API_VERSION_MSG.format(version=v or "", supported=", ".join(sorted(allowed))),
                          bare=True)  # fmt: skip

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

    def _allocation_obj(self, env_id: str, *, rules: bool) -> dict[str, Any]:
        conn = self.store.conn
        allocs = [
            {"currencyType": r[0], "allocated": r[1]}
            for r in conn.execute(
                "SELECT currency_type, allocated FROM allocations WHERE environment_id=? ORDER BY currency_type",
                (env_id,),
            )
        ]
        obj: dict[str, Any] = {"environmentId": env_id, "currencyAllocations": allocs}
        if rules:
            obj["enforcementRules"] = [
                {"ruleType": r[0], "enabled": bool(r[1])}
                for r in conn.execute(
                    "SELECT rule_type, enabled FROM enforcement WHERE environment_id=? ORDER BY rule_type", (env_id,)
                )
            ]
        return obj

    def _patch(self, env_id: str, body: Any, *, rules: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "The request body must be a JSON object.")
        if "environmentId" in body and str(body["environmentId"]).lower() != env_id.lower():
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "environmentId in the body does not match the environment.")
        allocs = body.get("currencyAllocations")
        if not isinstance(allocs, list):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "currencyAllocations must be a JSON array.")
        wanted: dict[str, int] = {}
        for a in allocs:
            if not isinstance(a, dict) or not isinstance(a.get("currencyType"), str):
                raise PPError(
                    400, B.PP_BAD_REQUEST_CODE, "Each allocation needs a currencyType and an allocated value."
                )
            cur = _CURRENCY_LOWER.get(a["currencyType"].lower())
            if cur is None:
                raise PPError(
                    400, B.PP_UNKNOWN_CURRENCY_CODE, B.PP_UNKNOWN_CURRENCY_MSG.format(currency=a["currencyType"])
                )
            amount = a.get("allocated")
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0 or amount != int(amount):
                raise PPError(400, B.PP_BAD_REQUEST_CODE, f"allocated for '{cur}' must be a whole number >= 0.")
            wanted[cur] = int(amount)
        enforcement = body.get("enforcementRules") if rules else None
        if enforcement is not None and not isinstance(enforcement, list):
            raise PPError(400, B.PP_BAD_REQUEST_CODE, "enforcementRules must be a JSON array.")
        with self.store.write() as c:
            for cur, amount in wanted.items():
                row = c.execute("SELECT purchased FROM currencies WHERE currency_type=?", (cur,)).fetchone()
                purchased = row[0] if row else 0
                others = c.execute(
                    "SELECT COALESCE(SUM(allocated), 0) FROM allocations WHERE currency_type=? AND environment_id<>?",
                    (cur, env_id),
                ).fetchone()[0]
                if others + amount > purchased:
                    raise PPError(400, B.PP_OVER_ALLOCATION_CODE, B.PP_OVER_ALLOCATION_MSG.format(
                        currency=cur, requested=others + amount, purchased=purchased))  # fmt: skip
                c.execute("INSERT OR REPLACE INTO allocations VALUES(?,?,?)", (env_id, cur, amount))
            for rule in enforcement or []:
                if not isinstance(rule, dict) or rule.get("ruleType") not in ("Alert", "PayGo", "TenantPool", "Deny"):
                    raise PPError(400, B.PP_BAD_REQUEST_CODE, "ruleType must be one of Alert, PayGo, TenantPool, Deny.")
                c.execute("INSERT OR REPLACE INTO enforcement VALUES(?,?,?)",
                          (env_id, rule["ruleType"], int(bool(rule.get("enabled")))))  # fmt: skip
        obj = self._allocation_obj(env_id, rules=rules)
        if not B.PP_PATCH_RETURNS_ALL:
            obj["currencyAllocations"] = [a for a in obj["currencyAllocations"] if a["currencyType"] in wanted]
        return obj
