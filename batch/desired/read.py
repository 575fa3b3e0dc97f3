"""Streaming reads for export and reconcile: every user (of the scope) a page at a time, groups by name, a
group's members at any depth of nesting. Plain JSON (orjson), never one request per user.

Pages are read one after the other (the nextLink chain is sequential): a background thread fetching the next
page while this one is written was measured slower (GIL contention), so there is none.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ..errors import ConfigError, ServiceError
from ..tenant.graph import MAX_PAGE_SIZE, USER_SELECT, Graph
from ..tenant.http import odata_literal
from ..tenant.user_filters import ADVANCED_HEADERS, NAMES, Condition, attribute, make, users_query

#: The user properties export and reconcile read (the snapshot's, and department).
SELECT = USER_SELECT + ",department"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which users a reconcile holds to the sheet.

    - ``users`` (the default): the users the sheet names;
    - ``all``: every user of the tenant;
    - ``group=NAME``: the members of the group called NAME at any depth of nesting (a department roster that
      contains other groups reaches their users too);
    - ``ATTRIBUTE=VALUE``: the users whose attribute equals the value (Graph's ``eq``, which ignores case):
      department, jobTitle, companyName, officeLocation, country, city, state, usageLocation, employeeType,
      userType or accountEnabled (true/false). ``kind`` is then Graph's attribute name (``department``).
    """

    kind: str = "users"  # users | all | group | an attribute's Graph name
    value: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        t = (text or "users").strip()
        if t in ("users", "all"):
            return cls(t)
        key, sep, value = t.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--scope must be users, all, group=NAME or ATTRIBUTE=VALUE, not '{text}'.",
                              fix=f"Attributes: {NAMES} (e.g. --scope department=Sales).")
        if key.strip().lower() == "group":
            return cls("group", value.strip())
        cond = make(attribute(key, option="--scope"), value.strip(), option="--scope")
        return cls(cond.attribute.name, str(cond).partition("=")[2])

    @property
    def condition(self) -> Condition | None:
        """The attribute condition of an ``ATTRIBUTE=VALUE`` scope (None for users, all and group)."""
        if self.kind in ("users", "all", "group"):
            return None
        return make(attribute(self.kind, option="--scope"), self.value, option="--scope")

    def __str__(self) -> str:
        return self.kind if not self.value else f"{self.kind}={self.value}"


def _get(graph: Graph, url: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    resp = graph.http.request("GET", url, headers=headers)
    body = orjson.loads(resp.content)
    return body if isinstance(body, dict) else {}


def _pages(graph: Graph, first: str, headers: Mapping[str, str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every page from ``first`` on (``headers`` go with each: an advanced query's nextLink needs them too)."""
    url: str | None = first
    seen: set[str] = set()
    while url:
        body = _get(graph, url, headers)
        yield [u for u in body.get("value") or () if isinstance(u, dict)]
        nxt = body.get("@odata.nextLink")
        if nxt is not None and (nxt in seen or nxt == url):
            raise ServiceError("The listing returned the same next page twice.")
        if nxt:
            seen.add(nxt)
        url = nxt


def find_group(graph: Graph, name: str) -> tuple[str, str]:
    """(id, displayName) of the group called ``name`` (ConfigError when none or several)."""
    body = _get(graph, f"/groups?$filter=displayName%20eq%20{odata_literal(name)}&$select=id,displayName")
    found = [g for g in body.get("value") or () if isinstance(g, dict)]
    if not found:
        raise ConfigError(f"No group is called '{name}'.", fix="Give the group's display name exactly.")
    if len(found) > 1:
        raise ConfigError(f"{len(found)} groups are called '{name}'.", fix="Rename one, or use its members' sheet.")
    return str(found[0]["id"]).lower(), str(found[0].get("displayName") or name)


def group_member_ids(graph: Graph, group_id: str) -> set[str]:
    """Ids of the group's users at any depth of nesting: ``GET /groups/{id}/transitiveMembers/microsoft.graph.user``
    (the cast keeps users only; Graph serves a cast only as an advanced query: ConsistencyLevel + $count=true)."""
    out: set[str] = set()
    url = (f"/groups/{quote(group_id, safe='')}/transitiveMembers/microsoft.graph.user"
           f"?$select=id&$top={MAX_PAGE_SIZE}&$count=true")
    for page in _pages(graph, url, ADVANCED_HEADERS):
        out.update(str(m["id"]).lower() for m in page if m.get("id") and _is_user(m))
    return out


def _is_user(d: Mapping[str, Any]) -> bool:
    """A directoryObject that is a user (an entry without ``@odata.type`` is taken as one: a cast's answer)."""
    t = d.get("@odata.type")
    return t is None or str(t).lower() == "#microsoft.graph.user"


def iter_user_pages(graph: Graph, *, where: Sequence[Condition] = (),
                    members: set[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every user (matching every condition of ``where``; among ``members``) as raw Graph JSON, a page at a time."""
    flt, headers = users_query(where)
    url = f"/users?$select={SELECT}&$top={MAX_PAGE_SIZE}{flt}"
    for page in _pages(graph, url, headers or None):
        if members is not None:
            page = [u for u in page if str(u.get("id", "")).lower() in members]
        yield page


def all_group_names(graph: Graph) -> dict[str, str]:
    """id -> displayName of every group (a tenant has far fewer groups than users)."""
    out: dict[str, str] = {}
    for page in _pages(graph, f"/groups?$select=id,displayName&$top={MAX_PAGE_SIZE}"):
        out.update((str(g["id"]).lower(), str(g.get("displayName") or g["id"])) for g in page if g.get("id"))
    return out
