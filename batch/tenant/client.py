"""``Tenant``: the remote side as the rest of license-batch sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..config import Limits, Target
from ..errors import ConfigError, PermissionDeniedError, ServiceError
from ..models import Sku, TenantSnapshot, User
from ..throttle import ReadBudget
from .auth import TokenCredentialLike, TokenProvider, graph_scope, make_credential
from .graph import BatchReply, Graph
from .http import HttpClient
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

    # -- counters

    @property
    def requests(self) -> int:
        """HTTP requests sent to Graph so far (every attempt; a $batch counts once)."""
        return self.http.stats.requests

    # -- reads

    def snapshot(self, user_keys: Iterable[str], *, strategy: Strategy | None = None) -> TenantSnapshot:
        """The tenant as one run sees it: SKUs, the named users (or all), their licensing groups."""
        snap = take_snapshot(self.graph, user_keys, tenant_id=self._tenant_id, strategy=strategy)
        self._tenant_id = snap.tenant_id
        return snap

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

    async def post_batch(self, items: Sequence[Mapping[str, Any]]) -> BatchReply:
        """POST one ``$batch`` (<= 20 items with RELATIVE urls) once; see ``Graph.post_batch``."""
        return await self.graph.post_batch(items)

    # -- lifecycle

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        await self.http.aclose()
        self.http.close()

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
