"""``Tenant``: the remote side as the rest of license-batch sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from ..config import Limits, Target
from ..errors import ConfigError, PermissionDeniedError, ServiceError
from ..models import CurrencyReport, Sku, TenantSnapshot, User
from .auth import TokenCredentialLike, TokenProvider, graph_scope, make_credential
from .graph import BatchReply, Graph, ItemReply
from .http import HttpClient
from .powerplatform import ALLOCATIONS_V2_API_VERSION, PowerPlatform
from .reads import ReadBudget
from .snapshot import Strategy, read_skus, read_users, take_snapshot


class Tenant:
    """One target tenant (or the sandbox): snapshot reads, current-state reads, raw ``$batch`` writes.

    Use as a context manager, or call ``close()`` (and ``await aclose()`` inside the event loop that
    sent writes). Thread-safe for reads.
    """

    def __init__(
        self,
        target: Target,
        limits: Limits | None = None,
        credential: TokenCredentialLike | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not target.graph_url:
            raise ConfigError("The target has no Graph URL (start the sandbox first, or configure a tenant).")
        self.target = target
        self.limits = limits or Limits()
        self.tokens = TokenProvider(credential or make_credential(target))
        self.read_budget = ReadBudget(self.limits, sleep=sleep)  # Graph's resource units per 10 s, for reads
        self.http = HttpClient(target.graph_url, self.tokens, graph_scope(target.graph_url), self.limits, sleep=sleep,
                               read_budget=self.read_budget)
        self.graph = Graph(self.http)
        self._tenant_id = target.tenant_id.lower() if target.tenant_id else None
        self._org: dict[str, Any] | None = None
        self._pp: PowerPlatform | None = None

    @property
    def powerplatform(self) -> PowerPlatform:
        """The Power Platform licensing API of the same target (same credential), opened on first use."""
        if self._pp is None:
            self._pp = PowerPlatform(self.target, self.limits, tokens=self.tokens)
        return self._pp

    # -- counters

    @property
    def requests(self) -> int:
        """HTTP requests sent to Graph so far (every attempt; a $batch counts once)."""
        return self.http.stats.requests

    # -- reads

    def snapshot(
        self, user_keys: Iterable[str], *, strategy: Strategy | None = None, powerplatform: bool = False
    ) -> TenantSnapshot:
        """The tenant as one run sees it: SKUs, the named users (or all), their licensing groups; with
        ``powerplatform`` also the environments, their add-on allocations and the tenant's add-on capacity."""
        snap = take_snapshot(self.graph, user_keys, tenant_id=self._tenant_id, strategy=strategy)
        self._tenant_id = snap.tenant_id
        if powerplatform:
            self.read_powerplatform(snap)
        return snap

    def read_powerplatform(self, snap: TenantSnapshot) -> None:
        """Add to ``snap`` the environments, their add-on allocations and the tenant's add-on capacity (what
        ``snapshot(powerplatform=True)`` reads; reconcile reads it after paging the directory)."""
        pp = self.powerplatform
        before = pp.http.stats.requests
        snap.environments = pp.environments()
        snap.allocations = self.read_allocations(list(snap.environments))
        snap.currencies = pp.currency_reports()
        snap.requests += pp.http.stats.requests - before

    def read_allocations(self, environment_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """environmentId -> currencyType -> allocated, for the given environments (one request for all of
        them, allocationsByEnvironment; per environment where that endpoint is not served). Blocking."""
        pp = self.powerplatform
        try:
            return pp.read_allocations(environment_ids, api_version=ALLOCATIONS_V2_API_VERSION)
        except ServiceError:
            return pp.read_allocations(environment_ids)

    def currency_reports(self) -> dict[str, CurrencyReport]:
        """The tenant's add-on capacity per currency type (purchased, allocated, consumed)."""
        return self.powerplatform.currency_reports()

    def read_users(self, ids: Iterable[str]) -> dict[str, User]:
        """Current state of users (by object id or UPN, batched 20 per request); unknown ones are left out.

        Blocking; from async code use ``await asyncio.to_thread(tenant.read_users, ids)``.
        """
        return read_users(self.graph, ids)

    def skus(self) -> dict[str, Sku]:
        skus, tid, _ = read_skus(self.graph)
        self._tenant_id = self._tenant_id or tid
        return skus

    @property
    def tenant_id(self) -> str:
        """The directory (tenant) id: configured, or from subscribedSku ids (``{tenantId}_{skuId}``)."""
        if not self._tenant_id:
            _, tid, _ = read_skus(self.graph)
            if not tid:
                raise ServiceError("Cannot tell the tenant id: no subscribed SKU carries it and none is configured.")
            self._tenant_id = tid
        return self._tenant_id

    def tenant_info(self) -> dict[str, str]:
        """``{"id", "name", "domain"}`` for confirmations and reports. ``GET /organization`` when served,
        else the id alone (name falls back to the target's name)."""
        if self._org is None:
            org: dict[str, Any] = {}
            try:
                body = self.http.get_json("/organization?$select=id,displayName,verifiedDomains")
                vals = body.get("value") if isinstance(body, dict) else None
                org = vals[0] if vals else {}
            except (ServiceError, PermissionDeniedError):  # not served (sandbox) or not permitted: use what we know
                org = {}
            self._org = org
        org = self._org
        domains = org.get("verifiedDomains") or []
        default = next((d.get("name") for d in domains if d.get("isDefault")), None)
        return {
            "id": str(org.get("id") or self.tenant_id).lower(),
            "name": str(org.get("displayName") or self.target.name),
            "domain": str(default or self.target.name),
        }

    def get_user_typed(self, key: str) -> User | None:
        """One user through msgraph-sdk (typed single call; imported on first use). Blocking."""
        from .sdk import get_user_typed

        return _run(get_user_typed(self.http, key))

    async def aget_user_typed(self, key: str) -> User | None:
        from .sdk import get_user_typed

        return await get_user_typed(self.http, key)

    # -- writes

    async def send_powerplatform(self, method: str, url: str, body: Mapping[str, Any]) -> ItemReply:
        """Send one Power Platform write once (RELATIVE url); its answer, whatever the status, as an
        ``ItemReply`` like a ``$batch`` item's. Transport failures raise like ``post_batch``."""
        resp = await self.powerplatform.http.arequest(
            method, url, content=orjson.dumps(dict(body)), headers={"Content-Type": "application/json"}, check=False
        )
        parsed: Any = None
        if resp.content:
            try:
                parsed = orjson.loads(resp.content)
            except orjson.JSONDecodeError:
                if resp.status < 300:
                    raise ServiceError("Power Platform answered with something that is not JSON.",
                                       status=resp.status, request_id=resp.request_id) from None
                parsed = None
        if isinstance(parsed, dict) and "error" not in parsed and "code" in parsed and resp.status >= 400:
            parsed = {"error": parsed}  # the gateway's own errors: {"code", "message"} at the top
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return ItemReply(resp.status, headers, parsed)

    async def post_batch(self, items: Sequence[Mapping[str, Any]]) -> BatchReply:
        """POST one ``$batch`` (<= 20 items with RELATIVE urls) once; see ``Graph.post_batch``.

        Writes are paced by the engine's write pacer; each also costs Graph 1 resource unit, counted here in
        the read budget (without waiting) so reads made during an apply stay under the shared quota."""
        self.read_budget.spend(len(items))
        return await self.graph.post_batch(items)

    # -- lifecycle

    def close(self) -> None:
        self.http.close()
        if self._pp is not None:
            self._pp.close()

    async def aclose_writers(self) -> None:
        """Close the async clients the writes used (inside the event loop that used them); sync reads go on."""
        await self.http.aclose()
        if self._pp is not None:
            await self._pp.http.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()
        self.http.close()
        if self._pp is not None:
            await self._pp.http.aclose()
            self._pp.close()

    def __enter__(self) -> Tenant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Tenant:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Tenant({self.target.name!r}, {self.target.graph_url!r})"


def _run(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError("Called from inside an event loop: use the async variant.")


__all__ = ["Tenant"]
