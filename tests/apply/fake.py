"""An in-process stand-in for Tenant with a scripted fault per request, for exact engine scenarios.

The sandbox (over real HTTP) is what the integration tests use; this fake pins down single paths that random
faults only hit by chance (a 424 after a failed PATCH, a drop after the effect, ...).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from batch.errors import ServiceError, ServiceUnavailableError, TenantUnreachableError, ThrottledError
from batch.models import LicenseState, User
from batch.tenant.graph import BatchReply, ItemReply


def err(status: int, code: str, message: str, retry_after: str | None = None) -> ItemReply:
    headers = {"request-id": f"rid-{status}"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    return ItemReply(status, headers, {"error": {"code": code, "message": message}})


class FakeTenant:
    def __init__(self, users: Sequence[User]) -> None:
        self.loc = {u.id: u.usage_location for u in users}
        self.direct: dict[str, dict[str, frozenset[str]]] = {u.id: {s: frozenset() for s in u.assigned}
                                                             for u in users}
        self.upn = {u.id: u.upn for u in users}
        # (method, url) -> list of scripted behaviours, used one per attempt:
        #   an ItemReply to answer instead of acting, "drop-after" (act, then raise unreachable),
        #   "drop-before" (raise unreachable without acting), "envelope-429", "envelope-503",
        #   "garbled-after" (act, then answer 200 with a body that cannot be read)
        self.script: dict[tuple[str, str], list[Any]] = defaultdict(list)
        self.effects: Counter[tuple[str, str]] = Counter()
        self.batches: list[list[Mapping[str, Any]]] = []
        self.reads = 0

    async def post_batch(self, items: Sequence[Mapping[str, Any]]) -> BatchReply:
        await asyncio.sleep(0.001)
        self.batches.append(list(items))
        envelope: Any = None
        for it in items:
            s = self.script.get((it["method"], it["url"]))
            if s and isinstance(s[0], str) and s[0].startswith(("envelope", "drop", "garbled")):
                envelope = s.pop(0)
                break
        if envelope == "envelope-429":
            raise ThrottledError("throttled", status=429, retry_after=0.01)
        if envelope == "envelope-503":
            raise ServiceUnavailableError("unavailable", status=503, retry_after=0.01)
        if envelope == "drop-before":
            raise TenantUnreachableError("dropped")
        replies: dict[str, ItemReply] = {}
        failed: set[str] = set()
        for it in items:
            rid = str(it["id"])
            if any(d in failed for d in it.get("dependsOn", [])):
                replies[rid] = err(424, "FailedDependency", "The dependent request failed.")
                failed.add(rid)
                continue
            s = self.script.get((it["method"], it["url"]))
            if s and isinstance(s[0], ItemReply):
                r = s.pop(0)
                replies[rid] = r
                if r.status >= 300:
                    failed.add(rid)
                continue
            replies[rid] = self._act(it)
            if replies[rid].status >= 300:
                failed.add(rid)
        if envelope == "drop-after":
            raise TenantUnreachableError("dropped after the effect")
        if envelope == "garbled-after":
            raise ServiceError("The tenant answered with something that is not JSON.", status=200)
        return BatchReply(replies, "batch-rid", "crid", 200)

    def _act(self, it: Mapping[str, Any]) -> ItemReply:
        url: str = it["url"]
        uid = url.split("/")[2]
        if uid not in self.loc:
            return err(404, "Request_ResourceNotFound", f"Resource '{uid}' does not exist.")
        body = it["body"]
        self.effects[(it["method"], url)] += 1
        if it["method"] == "PATCH":
            self.loc[uid] = body["usageLocation"]
            return ItemReply(204, {}, None)
        if not self.loc[uid]:
            return err(400, "Request_BadRequest",
                       "License assignment cannot be done for user with invalid usage location.")
        d = self.direct[uid]
        for r in body["removeLicenses"]:
            d.pop(r, None)
        for a in body["addLicenses"]:
            d[a["skuId"]] = frozenset(a["disabledPlans"])
        return ItemReply(200, {}, {"id": uid})

    def read_users(self, ids: Sequence[str]) -> dict[str, User]:
        self.reads += 1
        out = {}
        for uid in ids:
            if uid in self.loc:
                out[uid] = User(id=uid, upn=self.upn[uid], mail=None, usage_location=self.loc[uid],
                                account_enabled=True, user_type="Member", assigned=tuple(self.direct[uid]),
                                states=tuple(LicenseState(s, d) for s, d in self.direct[uid].items()))
        return out
