"""What the groups kind reads from the tenant before validation (blocking; through ``Tenant.graph``).

- the groups the sheet names: by id (``GET /groups/{id}``) or by display name (``GET /groups?$filter=displayName
  eq '...'``: several answers = ambiguous), with ``groupTypes``, ``membershipRule`` and ``assignedLicenses``;
- their member ids (``GET /groups/{id}/members?$select=id&$top=999``, paged), to tell "already a member": the
  direct USER members (the listing also holds nested groups, devices, contacts: skipped by ``@odata.type``);
- the users each rule row reaches, through Graph's ``$filter`` (``department eq 'Sales'``; an advanced query
  for companyName, officeLocation, employeeType) or a group's direct user members, with their licenses: never
  the whole directory.

Every read goes through ``Graph.read_many`` (20 per ``$batch``) or the paged GET, so it shares the client's
pacing and retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ...models import Group, TenantSnapshot, User
from ...tenant.graph import USER_SELECT, Graph, is_guid, user_from_json
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


def _is_user(d: Mapping[str, Any]) -> bool:
    """A member listing holds directoryObjects of mixed types (users, nested groups, devices, contacts): only
    users count here. An entry without ``@odata.type`` is taken as a user."""
    t = d.get("@odata.type")
    return t is None or str(t).lower() == "#microsoft.graph.user"


def _page_members(graph: Graph, url: str) -> list[dict[str, Any]]:
    """Every user entry of a member listing, following its nextLinks."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        body = graph.http.get_json(next_url)
        out.extend(d for d in body.get("value") or () if isinstance(d, dict) and d.get("id") and _is_user(d))
        nxt = body.get("@odata.nextLink")
        next_url = nxt if nxt and nxt not in seen else None
        seen.add(str(nxt))
    return out


def member_ids(graph: Graph, group_id: str) -> frozenset[str]:
    """Every DIRECT user member's id (nested groups are left out: group-based licensing reaches direct members
    only, and a membership write adds a user to this group itself)."""
    url = f"/groups/{quote_segment(group_id)}/members?$select=id&$top=999"
    return frozenset(str(d["id"]).lower() for d in _page_members(graph, url))


def _page_users(graph: Graph, url: str, headers: Mapping[str, str] | None = None) -> list[User]:
    out: list[User] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        users, nxt = graph.user_page(next_url, headers=headers)
        out.extend(u for u in users if u.id not in seen)
        seen.update(u.id for u in users)
        next_url = nxt if nxt not in seen else None
    return out


def users_where(graph: Graph, attribute: str, value: str) -> list[User]:
    """Users whose ``attribute`` (Graph's name) equals ``value`` (Graph ``$filter``; comparison ignores case, as
    Graph's). Attributes Graph filters only in an advanced query (companyName, officeLocation, employeeType) are
    sent as one (``ConsistencyLevel: eventual`` + ``$count=true``)."""
    from ...tenant.user_filters import ATTRIBUTES, Attribute, Condition, users_query

    attr = next((a for a in ATTRIBUTES if a.name.lower() == attribute.lower()), Attribute(attribute))
    flt, headers = users_query([Condition(attr, value)])
    return _page_users(graph, f"/users?$select={USER_SELECT}&$top=999{flt}", headers or None)


def users_in_group(graph: Graph, group_id: str) -> list[User]:
    """The group's DIRECT user members with their licenses (nested groups in the listing are skipped)."""
    url = f"/groups/{quote_segment(group_id)}/members?$select={USER_SELECT}&$top=999"
    out: dict[str, User] = {}
    for d in _page_members(graph, url):
        u = user_from_json(d)
        out.setdefault(u.id, u)
    return list(out.values())


def add_users(snapshot: TenantSnapshot, users: Sequence[User]) -> None:
    for u in users:
        snapshot.users.setdefault(u.id, u)
    snapshot.reindex()


__all__ = ["GROUP_SELECT", "add_users", "group_from_json", "member_ids", "read_groups", "users_in_group",
           "users_where"]
