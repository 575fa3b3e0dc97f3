"""Reading the tenant once per run: SKUs, the users the sheet names (or all of them), their licensing groups.

Two ways to read the users, chosen by what costs fewer HTTP requests:

* **page**: ``GET /users?$select=...&$top=999`` through every ``@odata.nextLink``: ceil(D / 999) requests for
  a directory of D users, whatever the sheet says. The snapshot is then complete: "not found" means
  "does not exist".
* **look up**: ``$batch`` of ``GET /users/{id | UPN}?$select=...``, 20 per batch, several batches in flight:
  ceil(K / 20) requests for K keys; keys that are mail addresses but not UPNs are found in a second round
  with ``$filter=mail in (...)`` (15 values per item, 20 items per batch). Never one request per row.

The rule (``choose_strategy``): with K <= ``LOOKUP_ONLY_MAX_KEYS`` keys (one batch) look up. Otherwise ask
the directory's size once (``GET /users/$count``, ConsistencyLevel: eventual; 1 request) and page when
paging costs no more requests than looking up: ceil(D / 999) <= ceil(K / 20) * ``PAGE_COST_RATIO``. Where the
count is not served, read the first page: without a nextLink the directory is already complete (1 request);
with one, page on when K >= ``PAGE_WITHOUT_COUNT_MIN_KEYS`` (the first page is then not wasted), else
look up (one page spent on the probe).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from .._gc import paused_gc
from ..errors import ServiceError
from ..models import Group, Sku, TenantSnapshot, User
from .graph import (
    MAX_BATCH_ITEMS,
    MAX_FILTER_IN_VALUES,
    MAX_PAGE_SIZE,
    USER_SELECT,
    Graph,
    ItemReply,
    StateCache,
    is_guid,
    item_error,
    sku_from_json,
    tenant_id_from_skus,
    user_from_json,
)
from .http import odata_literal, quote_segment, user_path

#: Up to this many keys (one $batch) are always looked up: counting the directory would cost as much.
LOOKUP_ONLY_MAX_KEYS = MAX_BATCH_ITEMS
#: Page when ceil(D/999) <= ceil(K/20) * this. 1.0 = whichever takes fewer HTTP requests.
PAGE_COST_RATIO = 1.0
#: Without a directory count, page from this many keys on (250 look-up batches).
PAGE_WITHOUT_COUNT_MIN_KEYS = 5_000

Strategy = Literal["page", "lookup"]


def choose_strategy(keys: int, directory_size: int | None) -> Strategy:
    """Page the whole directory, or look the keys up; see the module docstring for the rule."""
    if keys <= LOOKUP_ONLY_MAX_KEYS:
        return "lookup"
    if directory_size is None:
        return "page" if keys >= PAGE_WITHOUT_COUNT_MIN_KEYS else "lookup"
    pages = max(1, math.ceil(directory_size / MAX_PAGE_SIZE))
    batches = math.ceil(keys / MAX_BATCH_ITEMS)
    return "page" if pages <= batches * PAGE_COST_RATIO else "lookup"


def normalise_keys(user_keys: Iterable[str]) -> list[str]:
    """Trimmed, non-empty, de-duplicated case-insensitively (first spelling kept), in order."""
    seen: set[str] = set()
    out: list[str] = []
    for k in user_keys:
        k = (k or "").strip()
        if k and k.lower() not in seen:
            seen.add(k.lower())
            out.append(k)
    return out


def _user_url(key: str) -> str:
    path = "/users/" + quote_segment(key.lower()) if is_guid(key) else user_path(key)
    return f"{path}?$select={USER_SELECT}"


def lookup_users(graph: Graph, keys: Sequence[str]) -> dict[str, User]:
    """Users for ``keys`` (object ids, UPNs, mails) by batched look-ups: key (lower-case) -> User."""
    cache = StateCache()
    found: dict[str, User] = {}
    replies = graph.read_many([{"id": str(n), "method": "GET", "url": _user_url(k)} for n, k in enumerate(keys)])
    by_mail: list[str] = []
    for n, k in enumerate(keys):
        r = replies[str(n)]
        if r.ok and isinstance(r.body, dict) and r.body.get("id"):
            found[k.lower()] = user_from_json(r.body, cache)
        elif r.status in (400, 404):
            if "@" in k and not is_guid(k):
                by_mail.append(k)
        else:
            raise item_error(r, {"method": "GET", "url": _user_url(k)})
    if by_mail:
        for u in _users_by_mail(graph, by_mail, cache):
            if u.mail:
                found.setdefault(u.mail.lower(), u)
    return found


def _users_by_mail(graph: Graph, mails: Sequence[str], cache: StateCache) -> list[User]:
    """Users whose ``mail`` is one of ``mails``: ``$filter=mail in (...)``, falling back to ``eq`` per mail
    for any chunk the service refuses (400)."""
    chunks = [mails[i : i + MAX_FILTER_IN_VALUES] for i in range(0, len(mails), MAX_FILTER_IN_VALUES)]

    def in_url(chunk: Sequence[str]) -> str:
        values = ",".join(odata_literal(m) for m in chunk)
        return f"/users?$filter=mail%20in%20({values})&$select={USER_SELECT}"

    replies = graph.read_many([{"id": str(n), "method": "GET", "url": in_url(c)} for n, c in enumerate(chunks)])
    out: list[User] = []
    retry_eq: list[str] = []
    for n, c in enumerate(chunks):
        r = replies[str(n)]
        if r.ok:
            out.extend(_users_of(r, cache))
        elif r.status == 400:
            retry_eq.extend(c)
        else:
            raise item_error(r, {"method": "GET", "url": "/users?$filter=mail in (...)"})
    if retry_eq:

        def eq_url(m: str) -> str:
            return f"/users?$filter=mail%20eq%20{odata_literal(m)}&$select={USER_SELECT}"

        replies = graph.read_many([{"id": str(n), "method": "GET", "url": eq_url(m)} for n, m in enumerate(retry_eq)])
        for n, _m in enumerate(retry_eq):
            r = replies[str(n)]
            if r.ok:
                out.extend(_users_of(r, cache))
            elif r.status not in (400, 404):
                raise item_error(r, {"method": "GET", "url": "/users?$filter=mail eq ..."})
    return out


def _users_of(r: ItemReply, cache: StateCache) -> list[User]:
    body = r.body if isinstance(r.body, dict) else {}
    return [user_from_json(u, cache) for u in body.get("value") or () if isinstance(u, dict) and u.get("id")]


def read_skus(graph: Graph) -> tuple[dict[str, Sku], str | None, list[dict[str, Any]]]:
    raw = graph.subscribed_skus_raw()
    skus = {s.sku_id: s for s in (sku_from_json(d) for d in raw if d.get("skuId"))}
    return skus, tenant_id_from_skus(raw), raw


def licensing_group_ids(users: Iterable[User]) -> set[str]:
    return {s.assigned_by_group for u in users for s in u.states if s.assigned_by_group}


def take_snapshot(
    graph: Graph,
    user_keys: Iterable[str],
    *,
    tenant_id: str | None = None,
    strategy: Strategy | None = None,
) -> TenantSnapshot:
    """One snapshot of the tenant for the keys a sheet names; ``strategy`` forces page/lookup (tests, bench)."""
    stats = graph.http.stats
    start_requests = stats.requests
    taken_at = datetime.now(UTC)
    skus, tid, _raw = read_skus(graph)
    keys = normalise_keys(user_keys)
    users: dict[str, User] = {}
    cache = StateCache()
    next_link: str | None = None
    probed = False
    if strategy is None:
        strategy = "lookup"
        if len(keys) > LOOKUP_ONLY_MAX_KEYS:
            size = graph.user_count()
            if size is None:
                # $count not served: the first page tells a small directory (no nextLink) at once, and is
                # not wasted when the rule then pages.
                with paused_gc():
                    first, next_link = graph.user_page(graph.first_users_url(), cache)
                    users.update((u.id, u) for u in first)
                probed = True
                if next_link is None:
                    strategy = "page"
                else:
                    size = None  # more than one page: decide on the key count alone
                    strategy = choose_strategy(len(keys), size)
                    if strategy == "lookup":
                        users.clear()
            else:
                strategy = choose_strategy(len(keys), size)
    if strategy == "page":
        if not probed or next_link is not None:
            with paused_gc():
                for page in graph.iter_user_pages(start=next_link, states=cache):
                    for u in page:
                        users[u.id] = u
    elif keys:
        budget = graph.http.read_budget
        if budget is not None and budget.tenant_users is None and not budget.configured and len(keys) > budget.quota:
            # more look-ups than the smallest read quota allows per window: Graph's quota depends on the
            # directory's size, and one $count (1 unit) may let the look-ups go several times faster
            graph.user_count()
        for u in lookup_users(graph, keys).values():
            users[u.id] = u
    group_ids = licensing_group_ids(users.values())
    groups: dict[str, Group] = graph.groups(group_ids) if group_ids else {}
    resolved_tid = tenant_id or tid
    if not resolved_tid:
        raise ServiceError("Cannot tell the tenant id: no subscribed SKU carries it and none is configured.")
    return TenantSnapshot(
        tenant_id=resolved_tid,
        skus=skus,
        users=users,
        groups=groups,
        taken_at=taken_at,
        requests=stats.requests - start_requests,
        complete_directory=strategy == "page",
    )


def read_users(graph: Graph, ids: Iterable[str]) -> dict[str, User]:
    """Current state of users by object id (or UPN): id as given -> User; unknown ids are left out."""
    return lookup_users_strict(graph, normalise_keys(ids))


def lookup_users_strict(graph: Graph, keys: Sequence[str]) -> dict[str, User]:
    """Like ``lookup_users`` but by id/UPN only (no mail fallback), keyed by the key as given."""
    cache = StateCache()
    replies = graph.read_many([{"id": str(n), "method": "GET", "url": _user_url(k)} for n, k in enumerate(keys)])
    out: dict[str, User] = {}
    for n, k in enumerate(keys):
        r = replies[str(n)]
        if r.ok and isinstance(r.body, dict) and r.body.get("id"):
            out[k] = user_from_json(r.body, cache)
        elif r.status not in (400, 404):
            raise item_error(r, {"method": "GET", "url": _user_url(k)})
    return out


__all__ = [
    "LOOKUP_ONLY_MAX_KEYS",
    "PAGE_COST_RATIO",
    "PAGE_WITHOUT_COUNT_MIN_KEYS",
    "choose_strategy",
    "licensing_group_ids",
    "lookup_users",
    "normalise_keys",
    "read_skus",
    "read_users",
    "take_snapshot",
]
