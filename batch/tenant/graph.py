"""Microsoft Graph: users, subscribedSkus, groups and JSON batching, as plain JSON.

Large reads are parsed with orjson straight into ``models.User`` (no SDK models: building a typed SDK
object costs ~11 ms of CPU, parsing a user here costs microseconds). ``$batch`` bodies are built here, never
with msgraph-sdk's batch classes (they drop ids, make URLs absolute and lose JSON bodies; see cloud-facts).
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from .._gc import paused_gc
from .._gil import short_switch_interval
from ..errors import RetryableTenantError, ServiceError, TenantError, TenantUnreachableError
from ..models import Group, LicenseState, ServicePlan, Sku, User
from .http import (
    RETRYABLE_STATUSES,
    HttpClient,
    Response,
    backoff_seconds,
    error_for_status,
    parse_retry_after,
    quote_segment,
)
from .reads import read_cost

#: The user properties every read asks for (and nothing more: $select lowers the cost and the bytes).
USER_SELECT = "id,userPrincipalName,mail,usageLocation,accountEnabled,userType,assignedLicenses,licenseAssignmentStates"
#: Graph's ceiling for ``$top`` on /users.
MAX_PAGE_SIZE = 999
#: Graph's ceiling for requests in one ``$batch``.
MAX_BATCH_ITEMS = 20
#: Values one ``in (...)`` filter may carry by default.
MAX_FILTER_IN_VALUES = 15

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value.strip()))


# ---------------------------------------------------------------------------------------- parsing


class StateCache:
    """Interns LicenseState records, and the tuples of them and of assigned skuIds that users carry: most users
    share a handful of identical ones (less memory for a 500,000-user snapshot, and ``drift.actual_frame`` works
    out each distinct shape once)."""

    __slots__ = ("_assigned", "_d", "_tuples")

    def __init__(self) -> None:
        self._d: dict[tuple[Any, ...], LicenseState] = {}
        self._tuples: dict[tuple[int, ...], tuple[LicenseState, ...]] = {}
        self._assigned: dict[tuple[str, ...], tuple[str, ...]] = {}

    def get(self, s: Mapping[str, Any]) -> LicenseState:
        dp = s.get("disabledPlans") or ()
        key = (s.get("skuId"), tuple(dp), s.get("assignedByGroup"), s.get("state"), s.get("error"))
        hit = self._d.get(key)
        if hit is None:
            group = s.get("assignedByGroup")
            hit = LicenseState(
                sku_id=str(s.get("skuId") or "").lower(),
                disabled_plans=frozenset(str(p).lower() for p in dp),
                assigned_by_group=str(group).lower() if group else None,
                state=str(s.get("state") or "Active"),
                error=str(s.get("error") or "None"),
            )
            self._d[key] = hit
        return hit

    def states(self, raw: Iterable[Mapping[str, Any]]) -> tuple[LicenseState, ...]:
        got = tuple(self.get(s) for s in raw)
        return self._tuples.setdefault(tuple(map(id, got)), got)  # interned states: their ids are stable

    def assigned(self, raw: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
        got = tuple(str(x["skuId"]).lower() for x in raw if x.get("skuId"))
        return self._assigned.setdefault(got, got)


def user_from_json(d: Mapping[str, Any], states: StateCache | None = None) -> User:
    """One Graph user object (as selected by ``USER_SELECT``) -> ``models.User``."""
    cache = states or StateCache()
    enabled = d.get("accountEnabled")
    return User(
        id=str(d["id"]).lower(),
        upn=d.get("userPrincipalName") or "",
        mail=d.get("mail") or None,
        usage_location=d.get("usageLocation") or None,
        account_enabled=True if enabled is None else bool(enabled),
        user_type=d.get("userType") or "Member",
        assigned=cache.assigned(d.get("assignedLicenses") or ()),
        states=cache.states(d.get("licenseAssignmentStates") or ()),
    )


def parse_users_page(content: bytes, states: StateCache | None = None) -> tuple[list[User], str | None]:
    """A ``GET /users`` page -> (users, absolute ``@odata.nextLink`` or None)."""
    body = orjson.loads(content)
    cache = states or StateCache()
    return [user_from_json(u, cache) for u in body.get("value") or ()], body.get("@odata.nextLink")


#: The members Graph sends ahead of a page's value: @odata.context, @odata.count, then @odata.nextLink.
_HEAD_LINK = re.compile(
    rb'\A\s*\{\s*(?:"@odata\.(?:context|count)"\s*:\s*(?:"(?:[^"\\]|\\.)*"|\d+)\s*,\s*)*'
    rb'"@odata\.nextLink"\s*:\s*("(?:[^"\\]|\\.)*")'
)


def _head_link(content: bytes) -> str | None:
    """The page's ``@odata.nextLink`` when it comes before ``value`` (as Graph sends it), else None. The JSON
    string is decoded by orjson: the same text a full parse gives."""
    m = _HEAD_LINK.match(content, 0, 65536)
    if m is None:
        return None
    link = orjson.loads(m.group(1))
    return link if isinstance(link, str) else None


def _json_object(content: bytes) -> dict[str, Any]:
    body = orjson.loads(content)
    return body if isinstance(body, dict) else {}


def sku_from_json(d: Mapping[str, Any]) -> Sku:
    pre = d.get("prepaidUnits") or {}
    return Sku(
        sku_id=str(d["skuId"]).lower(),
        part_number=str(d.get("skuPartNumber") or ""),
        applies_to=str(d.get("appliesTo") or "User"),
        capability_status=str(d.get("capabilityStatus") or "Enabled"),
        enabled=int(pre.get("enabled") or 0),
        consumed=int(d.get("consumedUnits") or 0),
        suspended=int(pre.get("suspended") or 0),
        warning=int(pre.get("warning") or 0),
        locked_out=int(pre.get("lockedOut") or 0),
        service_plans=tuple(
            ServicePlan(
                id=str(p.get("servicePlanId") or "").lower(),
                name=str(p.get("servicePlanName") or ""),
                applies_to=str(p.get("appliesTo") or "User"),
                provisioning_status=str(p.get("provisioningStatus") or "Success"),
            )
            for p in d.get("servicePlans") or ()
        ),
    )


def tenant_id_from_skus(raw_skus: Iterable[Mapping[str, Any]]) -> str | None:
    """The tenant id: subscribedSku.id is ``{tenantId}_{skuId}``; ``accountId`` is the tenant id too."""
    for d in raw_skus:
        sid = str(d.get("id") or "")
        if "_" in sid and is_guid(sid.split("_", 1)[0]):
            return sid.split("_", 1)[0].lower()
        acc = str(d.get("accountId") or "")
        if is_guid(acc):
            return acc.lower()
    return None


# ----------------------------------------------------------------------------------------- $batch


class ItemReply(NamedTuple):
    """One ``$batch`` item's answer. Header names are lower-cased; ``body`` is parsed JSON (or None)."""

    status: int
    headers: Mapping[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))

    @property
    def error_code(self) -> str | None:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        return str(err.get("code")) if isinstance(err, dict) and err.get("code") else None

    @property
    def error_message(self) -> str | None:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        return str(err.get("message")) if isinstance(err, dict) and err.get("message") else None

    @property
    def request_id(self) -> str | None:
        rid = self.headers.get("request-id")
        if rid:
            return rid
        err = self.body.get("error") if isinstance(self.body, dict) else None
        inner = (err.get("innerError") or err.get("innererror")) if isinstance(err, dict) else None
        return str(inner["request-id"]) if isinstance(inner, dict) and inner.get("request-id") else None


@dataclass(slots=True)
class BatchReply(Mapping[str, ItemReply]):
    """A ``$batch`` answer: item id -> ItemReply, matched BY ID (Graph answers in any order).

    ``missing`` lists ids that were sent but not answered (the outcome of those is unknown).
    """

    by_id: dict[str, ItemReply]
    request_id: str | None
    client_request_id: str
    status: int = 200
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = field(default=())  # ids answered that were never sent (ignored)

    def __getitem__(self, key: str) -> ItemReply:
        return self.by_id[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_id)

    def __len__(self) -> int:
        return len(self.by_id)


def build_batch(items: Sequence[Mapping[str, Any]]) -> bytes:
    """The ``$batch`` request body. Raises ValueError for anything Graph would refuse."""
    if not items:
        raise ValueError("A $batch needs at least one request.")
    if len(items) > MAX_BATCH_ITEMS:
        raise ValueError(f"A $batch takes at most {MAX_BATCH_ITEMS} requests, not {len(items)}.")
    seen: set[str] = set()
    out = []
    for it in items:
        rid = str(it.get("id", ""))
        if not rid:
            raise ValueError("Every $batch request needs an id.")
        if rid in seen:
            raise ValueError(f"Duplicate $batch request id {rid!r}.")
        seen.add(rid)
        url = str(it.get("url", ""))
        if not url or url.startswith(("http://", "https://")):
            raise ValueError(f"$batch request {rid!r}: the url must be relative (like /users/...), not {url!r}.")
        if not url.startswith("/"):
            url = "/" + url
        method = str(it.get("method") or "GET").upper()
        req: dict[str, Any] = {"id": rid, "method": method, "url": url}
        headers = dict(it.get("headers") or {})
        if "body" in it and it["body"] is not None:
            req["body"] = it["body"]
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        if headers:
            req["headers"] = headers
        dep = it.get("dependsOn")
        if dep:
            deps = [str(dep)] if isinstance(dep, str) else [str(x) for x in dep]
            unknown = [x for x in deps if x not in seen or x == rid]
            if unknown:
                raise ValueError(f"$batch request {rid!r} depends on {unknown}, which come(s) later or not at all.")
            req["dependsOn"] = deps
        out.append(req)
    return orjson.dumps({"requests": out})


def parse_batch(resp: Response, sent_ids: Sequence[str]) -> BatchReply:
    """Match a ``$batch`` answer to what was sent, by id."""
    body = resp.json()
    responses = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(responses, list):
        raise ServiceError("The $batch answer has no 'responses' list.", status=resp.status, request_id=resp.request_id)
    sent = set(sent_ids)
    items: dict[str, ItemReply] = {}
    unexpected: list[str] = []
    for r in responses:
        if not isinstance(r, dict):
            continue
        rid = str(r.get("id", ""))
        if rid not in sent or rid in items:
            unexpected.append(rid)
            continue
        headers = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()}
        try:
            status = int(r.get("status") or 0)
        except (TypeError, ValueError):
            status = 0
        items[rid] = ItemReply(status, headers, r.get("body"))
    missing = tuple(i for i in sent_ids if i not in items)
    return BatchReply(items, resp.request_id, resp.client_request_id, resp.status, missing, tuple(unexpected))


# ------------------------------------------------------------------------------------------ Graph


class Graph:
    """Graph calls over one ``HttpClient``."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    # users

    def first_users_url(self, page_size: int = MAX_PAGE_SIZE) -> str:
        return f"/users?$select={USER_SELECT}&$top={max(1, min(MAX_PAGE_SIZE, page_size))}"

    def user_page(self, url: str, states: StateCache | None = None) -> tuple[list[User], str | None]:
        """One page of users from ``url`` (the first page's path or an absolute nextLink): the snapshot's probe
        of a directory's size. Listings page with ``pages``."""
        resp = self.http.request("GET", url)
        users, nxt = parse_users_page(resp.content, states)
        if nxt is not None and nxt == url:  # a server that loops would page forever
            raise ServiceError("The users listing returned the same page as its next page.", request_id=resp.request_id)
        return users, nxt

    def pages(self, first: str, headers: Mapping[str, str] | None = None, *,
              what: str = "listing") -> Iterator[dict[str, Any]]:
        """Every page of a listing from ``first`` on, following the absolute ``@odata.nextLink``, as parsed JSON
        (``headers`` go with each: an advanced query's nextLink needs them too).

        Pages are read ahead on a thread (at most three beyond the caller's: two waiting, one being handed
        over). Graph sends the nextLink before the page's ``value``: it is read from the head of the body
        (``_head_link``) and the next page requested before this one is parsed, so the server works on page N+1
        while this process parses page N and the caller works on N-1. (Where the link comes after the value, the
        reader parses the page first.) While it pages, the thread switch interval is shortened
        (``batch._gil``): the reader gets the GIL back soon after each network read. A server that sends the
        same nextLink twice would page forever: ServiceError. A caller that stops early (or is interrupted) is
        not held up by a read in flight: the reader drops it."""
        ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            while not stop.is_set():
                try:
                    ahead.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def read() -> None:
            url: str | None = first
            seen: set[str] = set()
            try:
                while url and not stop.is_set():
                    content = self.http.request("GET", url, headers=headers).content
                    nxt = _head_link(content)
                    item: bytes | dict[str, Any] = content
                    if nxt is None:  # no link ahead of the value: it is further on, or there is none
                        item = _json_object(content)
                        nxt = item.get("@odata.nextLink")
                    if nxt is not None and (nxt in seen or nxt == url):
                        raise ServiceError(f"The {what} returned the same next page twice.")
                    if nxt:
                        seen.add(nxt)
                    put(("page", item))
                    url = nxt
                put(("end", None))
            except BaseException as e:  # handed to the caller's thread, raised there
                put(("error", e))

        reader = threading.Thread(target=read, name="graph-pages", daemon=True)
        with short_switch_interval():
            reader.start()
            try:
                while True:
                    kind, item = ahead.get()
                    if kind == "end":
                        return
                    if kind == "error":
                        raise item
                    yield item if isinstance(item, dict) else _json_object(item)
            finally:
                # the caller is done (or interrupted): the reader drops what it reads from now on. It is not waited
                # for beyond a moment: a request in flight may be retrying, or sleeping out a Retry-After
                stop.set()
                reader.join(timeout=0.5)

    def iter_user_pages(
        self, *, page_size: int = MAX_PAGE_SIZE, start: str | None = None, states: StateCache | None = None
    ) -> Iterator[list[User]]:
        """Every user, a page at a time, following the absolute ``@odata.nextLink`` (from ``start`` if given;
        the next page is read while this one is parsed: ``pages``)."""
        cache = states or StateCache()
        for body in self.pages(start or self.first_users_url(page_size), what="users listing"):
            yield [user_from_json(u, cache) for u in body.get("value") or ()]

    def list_users(self, *, page_size: int = MAX_PAGE_SIZE) -> list[User]:
        out: list[User] = []
        with paused_gc():
            for page in self.iter_user_pages(page_size=page_size):
                out.extend(page)
        return out

    def user_count(self) -> int | None:
        """``GET /users/$count`` (needs ConsistencyLevel: eventual); None where it is not served."""
        try:
            resp = self.http.request(
                "GET", "/users/$count", headers={"ConsistencyLevel": "eventual", "Accept": "text/plain"}
            )
        except (ServiceError, RetryableTenantError):
            return None
        try:
            n = int(resp.content.decode("ascii", "replace").strip().lstrip("\ufeff"))
        except ValueError:
            return None
        if self.http.read_budget is not None:
            self.http.read_budget.set_tenant_size(n)  # Graph's read quota depends on it
        return n

    # SKUs

    def subscribed_skus_raw(self) -> list[dict[str, Any]]:
        body = self.http.get_json("/subscribedSkus")
        return list(body.get("value") or ()) if isinstance(body, dict) else []

    # batches

    def batch(self, items: Sequence[Mapping[str, Any]]) -> BatchReply:
        """A ``$batch`` of READS on the sync client; envelope-level failures are retried like a GET."""
        content = build_batch(items)
        units = sum(read_cost(str(i.get("url", ""))) for i in items)
        resp = self.http.request("POST", "/$batch", content=content, retry=True, units=units)
        return parse_batch(resp, [str(i["id"]) for i in items])

    async def post_batch(self, items: Sequence[Mapping[str, Any]]) -> BatchReply:
        """Send one ``$batch`` once. Envelope-level 401/403/429/5xx/drops raise ``batch.errors``;
        item statuses come back as data for the caller to decide on."""
        content = build_batch(items)
        resp = await self.http.arequest("POST", "/$batch", content=content)
        return parse_batch(resp, [str(i["id"]) for i in items])

    def read_many(self, items: Sequence[Mapping[str, Any]]) -> dict[str, ItemReply]:
        """Many READ items (unique ids), 20 per ``$batch``, up to ``Limits.max_in_flight`` batches at once.

        Items answered 429/5xx (or not answered) are sent again after the longest Retry-After (or a backoff),
        up to ``Limits.max_attempts`` rounds. Item-level 401/403 raise; every other status is returned.
        """
        limits = self.http.limits
        budget = self.http.read_budget
        pending = list(items)
        out: dict[str, ItemReply] = {}
        attempt = 0
        throttle_waited = 0.0
        while pending:
            attempt += 1
            sent_at = budget.now() if budget is not None else 0.0
            chunks = [pending[i : i + MAX_BATCH_ITEMS] for i in range(0, len(pending), MAX_BATCH_ITEMS)]
            replies = self._run_chunks(chunks, limits.max_in_flight)
            again: list[Mapping[str, Any]] = []
            last_error: TenantError | None = None
            wait = 0.0
            throttled = 0
            other = 0
            for chunk, reply in zip(chunks, replies, strict=True):
                for it in chunk:
                    iid = str(it["id"])
                    r = reply.get(iid)
                    if r is None or r.status in RETRYABLE_STATUSES:
                        again.append(it)
                        if r is not None and r.status == 429:
                            throttled += 1
                        else:
                            other += 1
                        if r is not None:
                            last_error = item_error(r, it)
                            wait = max(wait, r.retry_after or 0.0)
                        continue
                    if r.status in (401, 403):
                        raise item_error(r, it)
                    out[iid] = r
            pending = again
            if not pending:
                break
            if budget is not None and throttled:
                # throttled reads wait (every reader pauses for the longest Retry-After) and go again; a round
                # of nothing but 429s uses up no attempt, only waiting time
                pause = budget.on_throttled(wait or None, sent_at=sent_at, count=throttled,
                                            fallback=backoff_seconds(attempt, limits))
                self.http.stats.add(retries=len(pending))
                if not other and throttle_waited + pause <= limits.max_throttled_read_wait_seconds:
                    throttle_waited += pause
                    attempt -= 1
                    continue
            if attempt >= limits.max_attempts:
                raise last_error or TenantUnreachableError(
                    f"{len(pending)} batched reads were not answered after {attempt} attempts."
                )
            delay = wait or backoff_seconds(attempt, limits)
            if budget is not None and throttled:
                continue  # the budget's pause holds the next round back
            self.http.stats.add(retries=len(pending), waited=delay)
            self.http._sleep(delay)
        return out

    def _run_chunks(self, chunks: list[list[Mapping[str, Any]]], in_flight: int) -> list[BatchReply]:
        if len(chunks) == 1 or in_flight <= 1:
            return [self.batch(c) for c in chunks]
        with ThreadPoolExecutor(max_workers=min(in_flight, len(chunks)), thread_name_prefix="graph-read") as ex:
            return list(ex.map(self.batch, chunks))

    def groups(self, ids: Iterable[str]) -> dict[str, Group]:
        """Display names of groups by id (``$batch`` GET /groups/{id}); unknown groups keep their id as name."""
        wanted = sorted({i.lower() for i in ids if i})
        replies = self.read_many(
            [
                {"id": str(n), "method": "GET", "url": f"/groups/{quote_segment(g)}?$select=id,displayName"}
                for n, g in enumerate(wanted)
            ]
        )
        out: dict[str, Group] = {}
        for n, g in enumerate(wanted):
            item = replies.get(str(n))
            name = (
                item.body.get("displayName") if item is not None and item.ok and isinstance(item.body, dict) else None
            )
            out[g] = Group(g, str(name or g))
        return out


def item_error(r: ItemReply, item: Mapping[str, Any]) -> TenantError:
    """The TenantError a ``$batch`` item's failure is (the status translated as for a single request)."""
    body = orjson.dumps(r.body) if r.body is not None else b""
    return error_for_status(
        r.status, r.headers, body, what=f"{item.get('method', 'GET')} {str(item.get('url', '')).split('?')[0]}"
    )


__all__ = [
    "MAX_BATCH_ITEMS",
    "MAX_FILTER_IN_VALUES",
    "MAX_PAGE_SIZE",
    "USER_SELECT",
    "BatchReply",
    "Graph",
    "ItemReply",
    "StateCache",
    "build_batch",
    "is_guid",
    "item_error",
    "parse_batch",
    "parse_users_page",
    "sku_from_json",
    "tenant_id_from_skus",
    "user_from_json",
]
