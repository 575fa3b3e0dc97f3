"""What the groups kind reads from the tenant before validation (blocking; through ``Tenant.graph``).

- the groups the sheet names: by id (``GET /groups/{id}``) or by display name (``GET /groups?$filter=displayName
  eq '...'``: several answers = ambiguous), with ``groupTypes``, ``membershipRule`` and ``assignedLicenses``;
- their member ids (``GET /groups/{id}/members?$select=id&$top=999``, paged), to tell "already a member": the
  direct USER members (the listing also holds nested groups, devices, contacts: skipped by ``@odata.type``);
- the users each rule row reaches, through Graph's ``$filter`` (``department eq 'Sales'``, ``accountEnabled eq
  false``; an advanced query for companyName, officeLocation, employeeType: ``tenant.user_filters``) or a group's
  users at any depth of nesting (:func:`group_users`, the one reading of "the users of group NAME": rule rows,
  ``--scope group=`` and ``export --group`` all use it), with their licenses: never the whole directory.

Every read goes through ``Graph.read_many`` (20 per ``$batch``) or the paged GET, so it shares the client's
pacing and retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ...errors import ConfigError
from ...models import Group, TenantSnapshot, User
from ...tenant.graph import MAX_PAGE_SIZE, USER_SELECT, Graph, StateCache, is_guid, item_error, user_from_json
from ...tenant.http import quote_segment
from ...tenant.user_filters import ADVANCED_HEADERS, attribute, make, users_query

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
        elif r is not None and r.status != 404:  # only "not found" means no such group; anything else is said
            raise item_error(r, items[n])
        out[key] = found
    return out


def group_problem(name: str, found: Sequence[Group]) -> str | None:
    """Why ``found`` (the groups a name gave) is not one group: the one text for "no group" and "several"."""
    if not found:
        return f"No group is called '{name}'."
    if len(found) > 1:
        return f"{len(found)} groups are called '{name}': {', '.join(g.id for g in found)}."
    return None


def one_group(graph: Graph, name: str) -> Group:
    """The one group ``name`` (display name or id) names; ConfigError when none or several."""
    found = read_groups(graph, [name]).get(name.strip(), [])
    problem = group_problem(name, found)
    if problem is not None:
        raise ConfigError(problem, fix="Give the group's exact display name, or its object id.")
    return found[0]


def is_user(d: Mapping[str, Any]) -> bool:
    """A member listing holds directoryObjects of mixed types (users, nested groups, devices, contacts): only
    users count here. An entry without ``@odata.type`` is taken as a user (a cast's answer)."""
    t = d.get("@odata.type")
    return t is None or str(t).lower() == "#microsoft.graph.user"


def pages(graph: Graph, first: str, headers: Mapping[str, str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every page of a listing from ``first`` on, as plain JSON objects (``Graph.pages``: the next page is read
    while the caller works on this one; ``headers`` go with each: an advanced query's nextLink needs them too)."""
    for body in graph.pages(first, headers):
        yield [d for d in body.get("value") or () if isinstance(d, dict)]


def licensing_groups(graph: Graph) -> list[Group]:
    """Every group of the tenant that assigns a license (all groups paged, 999 a page: read only when needed)."""
    url = f"/groups?$select={GROUP_SELECT}&$top={MAX_PAGE_SIZE}"
    return [group_from_json(d) for page in pages(graph, url) for d in page
            if d.get("id") and d.get("assignedLicenses")]


def member_ids(graph: Graph, group_id: str) -> frozenset[str]:
    """Every DIRECT user member's id (nested groups are left out: group-based licensing reaches direct members
    only, and a membership write adds a user to this group itself)."""
    url = f"/groups/{quote_segment(group_id)}/members?$select=id&$top=999"
    return frozenset(str(d["id"]).lower() for page in pages(graph, url) for d in page if d.get("id") and is_user(d))


def group_users(graph: Graph, group_id: str, *, select: str = USER_SELECT) -> Iterator[list[dict[str, Any]]]:
    """The group's users at any depth of nesting (a roster that contains other groups reaches their users too),
    a page at a time: ``GET /groups/{id}/transitiveMembers/microsoft.graph.user`` (the cast keeps users only;
    Graph serves a cast only as an advanced query: ConsistencyLevel + $count=true)."""
    url = (f"/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user"
           f"?$select={select}&$top={MAX_PAGE_SIZE}&$count=true")
    for page in pages(graph, url, ADVANCED_HEADERS):
        yield [d for d in page if d.get("id") and is_user(d)]


def group_member_ids(graph: Graph, group_id: str) -> set[str]:
    """Ids of the group's users at any depth of nesting (:func:`group_users`)."""
    return {str(d["id"]).lower() for page in group_users(graph, group_id, select="id") for d in page}


def _users(listing: Iterable[list[dict[str, Any]]]) -> list[User]:
    """The users of a listing's pages, each once (nested groups and other objects skipped), sharing one
    ``StateCache``."""
    out: dict[str, User] = {}
    states = StateCache()
    for page in listing:
        for d in page:
            if d.get("id") and is_user(d):
                u = user_from_json(d, states)
                out.setdefault(u.id, u)
    return list(out.values())


def users_where(graph: Graph, attribute_name: str, value: str, *, option: str = "rule") -> list[User]:
    """Users whose attribute (any spelling ``tenant.user_filters`` takes) equals ``value``: Graph ``$filter``,
    which ignores case; a boolean attribute (accountEnabled) takes true/false, sent unquoted; the attributes
    Graph filters only in an advanced query (companyName, officeLocation, employeeType) are sent as one.
    ConfigError (its message starts with ``option``) for an attribute or value that cannot be filtered on."""
    cond = make(attribute(attribute_name, option=option), value, option=option)
    flt, headers = users_query([cond])
    return _users(pages(graph, f"/users?$select={USER_SELECT}&$top=999{flt}", headers or None))


def users_in_group(graph: Graph, group_id: str) -> list[User]:
    """The group's users at any depth of nesting, with their licenses (:func:`group_users`)."""
    return _users(group_users(graph, group_id))


def direct_users(graph: Graph, group_id: str) -> list[User]:
    """The group's DIRECT user members with their licenses (nested groups in the listing are skipped)."""
    return _users(pages(graph, f"/groups/{quote_segment(group_id)}/members?$select={USER_SELECT}&$top=999"))


def add_users(snapshot: TenantSnapshot, users: Sequence[User]) -> None:
    for u in users:
        snapshot.users.setdefault(u.id, u)
    snapshot.reindex()


__all__ = ["GROUP_SELECT", "add_users", "direct_users", "group_from_json", "group_member_ids", "group_problem",
           "group_users", "is_user", "member_ids", "one_group", "pages", "read_groups", "users_in_group",
           "users_where"]
