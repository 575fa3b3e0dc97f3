"""Streaming reads for export and reconcile: every user (with department) a page at a time, groups by name,
group members, department filters. Plain JSON (orjson), never one request per user.

Pages are read one after the other (the nextLink chain is sequential): a background thread fetching the next
page while this one is written was measured slower (GIL contention), so there is none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ..errors import ConfigError, ServiceError
from ..tenant.graph import MAX_PAGE_SIZE, USER_SELECT, Graph
from ..tenant.http import odata_literal

#: The user properties export and reconcile read (the snapshot's, and department).
SELECT = USER_SELECT + ",department"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which users: all, those of one department, the members of one group (by name), or the named ones."""

    kind: str = "users"  # users | all | department | group
    value: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        t = (text or "users").strip()
        if t in ("users", "all"):
            return cls(t)
        key, sep, value = t.partition("=")
        key = key.strip().lower()
        if sep and key in ("department", "group") and value.strip():
            return cls(key, value.strip())
        raise ConfigError(f"--scope must be users, all, department=NAME or group=NAME, not '{text}'.")

    def __str__(self) -> str:
        return self.kind if not self.value else f"{self.kind}={self.value}"


def _get(graph: Graph, url: str) -> dict[str, Any]:
    resp = graph.http.request("GET", url)
    body = orjson.loads(resp.content)
    return body if isinstance(body, dict) else {}


def _pages(graph: Graph, first: str) -> Iterator[list[dict[str, Any]]]:
    url: str | None = first
    seen: set[str] = set()
    while url:
        body = _get(graph, url)
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
    out: set[str] = set()
    for page in _pages(graph, f"/groups/{quote(group_id, safe='')}/members?$select=id&$top={MAX_PAGE_SIZE}"):
        out.update(str(m["id"]).lower() for m in page if m.get("id"))
    return out


def iter_user_pages(graph: Graph, *, department: str | None = None,
                    members: set[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every user (of ``department``; among ``members``) as raw Graph JSON, a page at a time."""
    url = f"/users?$select={SELECT}&$top={MAX_PAGE_SIZE}"
    if department is not None:
        url += f"&$filter=department%20eq%20{odata_literal(department)}"
    for page in _pages(graph, url):
        if members is not None:
            page = [u for u in page if str(u.get("id", "")).lower() in members]
        yield page


def all_group_names(graph: Graph) -> dict[str, str]:
    """id -> displayName of every group (a tenant has far fewer groups than users)."""
    out: dict[str, str] = {}
    for page in _pages(graph, f"/groups?$select=id,displayName&$top={MAX_PAGE_SIZE}"):
        out.update((str(g["id"]).lower(), str(g.get("displayName") or g["id"])) for g in page if g.get("id"))
    return out
