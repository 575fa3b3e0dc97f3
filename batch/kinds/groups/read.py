"""What the groups kind reads from the tenant before validation (blocking; through ``Tenant.graph``).

- the groups the sheet names: by id (``GET /groups/{id}``) or by display name (``GET /groups?$filter=displayName
  eq '...'``: several answers = ambiguous), with ``groupTypes``, ``membershipRule`` and ``assignedLicenses``;
- their member ids (``GET /groups/{id}/members?$select=id&$top=999``, paged), to tell "already a member";
- the users each rule row reaches, through Graph's ``$filter`` (``department eq 'Sales'``) or a group's members,
  with their licenses: never the whole directory.

Every read goes through ``Graph.read_many`` (20 per ``$batch``) or the paged GET, so it shares the client's
pacing and retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ...models import Group, TenantSnapshot, User
from ...tenant.graph import USER_SELECT, Graph, is_guid
from ...tenant.http import quote_segment

GROUP_SELECT = "id,displayName,groupTypes,membershipRule,assignedLicenses"


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def group_from_json(d: Mapping[str, Any]) -> Group:
    lic = tuple(
        (str(x.get("skuId", "")).lower(), tuple(sorted(str(p).lower() for p in (x.get("disabledPlans") or ()))))
        for x in (d.get("assignedLicenses") or ())
        if isinstance(x, dict)
    )
    return Group(
        id=str(d["id"]).lower(),
        display_name=str(d.get("displayName") or d["id"]),
        group_types=tuple(str(t) for t in (d.get("groupTypes") or ())),
        membership_rule=d.get("membershipRule") or None,
        licenses=lic,
    )


def read_groups(graph: Graph, names: Iterable[str]) -> dict[str, list[Group]]:
    """Each name or id as given -> the groups it names (0: unknown, 1: found, 2+: ambiguous)."""
    wanted = sorted({n.strip() for n in names if n.strip()})
    items = []
    for n, key in enumerate(wanted):
        if is_guid(key):
            url = f"/groups/{quote_segment(key.lower())}?$select={GROUP_SELECT}"
        else:
            flt = quote(f"displayName eq {_odata_string(key)}", safe="")
            url = f"/groups?$filter={flt}&$select={GROUP_SELECT}&$top=999"
        items.append({"id": str(n), "method": "GET", "url": url})
    replies = graph.read_many(items) if items else {}
    out: dict[str, list[Group]] = {}
    for n, key in enumerate(wanted):
        r = replies.get(str(n))
        found: list[Group] = []
        if r is not None and r.ok and isinstance(r.body, dict):
            if "value" in r.body:
                found = [group_from_json(g) for g in r.body["value"] if isinstance(g, dict) and g.get("id")]
            elif r.body.get("id"):
                found = [group_from_json(r.body)]
        out[key] = found
    return out


def _page_ids(graph: Graph, url: str) -> set[str]:
    ids: set[str] = set()
    next_url: str | None = url
    while next_url:
        body = graph.http.get_json(next_url)
        for d in body.get("value") or ():
            if isinstance(d, dict) and d.get("id"):
                ids.add(str(d["id"]).lower())
        next_url = body.get("@odata.nextLink")
    return ids


def member_ids(graph: Graph, group_id: str) -> frozenset[str]:
    """Every member's id (users only matter here; other objects are harmless extras)."""
    return frozenset(_page_ids(graph, f"/groups/{quote_segment(group_id)}/members?$select=id&$top=999"))


def _page_users(graph: Graph, url: str) -> list[User]:
    out: list[User] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        users, nxt = graph.user_page(next_url)
        out.extend(u for u in users if u.id not in seen)
        seen.update(u.id for u in users)
        next_url = nxt if nxt not in seen else None
    return out


def users_where(graph: Graph, attribute: str, value: str) -> list[User]:
    """Users whose ``attribute`` equals ``value`` (Graph ``$filter``; comparison ignores case, as Graph's)."""
    flt = quote(f"{attribute} eq {_odata_string(value)}", safe="")
    return _page_users(graph, f"/users?$filter={flt}&$select={USER_SELECT}&$top=999")


def users_in_group(graph: Graph, group_id: str) -> list[User]:
    return _page_users(graph, f"/groups/{quote_segment(group_id)}/members?$select={USER_SELECT}&$top=999")


def add_users(snapshot: TenantSnapshot, users: Sequence[User]) -> None:
    for u in users:
        snapshot.users.setdefault(u.id, u)
    snapshot.reindex()


__all__ = ["GROUP_SELECT", "add_users", "group_from_json", "member_ids", "read_groups", "users_in_group",
           "users_where"]
