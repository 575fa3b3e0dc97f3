"""Whether some users are DIRECT members of some groups, read without listing a big group to look at a few users.

Rollback needs it twice: before a run whose snapshot did not read a group's members (the state the journal keeps),
and when it plans (the membership now). Per group, the cheaper of:

- the group's members, paged 999 at a time (``GET /groups/{id}/members?$select=id``), when many of its members
  are asked about (:data:`PAGE_GROUP_FROM` or more);
- otherwise each asked user's direct memberships (``GET /users/{id}/memberOf?$select=id&$top=999``), 20 users
  per ``$batch``: one read per user covers every group asked about for them.

``memberOf`` is direct membership, like ``members`` (``checkMemberGroups`` and ``transitiveMemberOf`` are
transitive; a user in a group nested in a licensing group is not a member Graph lets us remove, and group
licensing ignores nested members). ``$filter=id in (...)`` on ``members`` needs an advanced query (eventual
consistency), which may not yet show the run's own writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ...errors import TenantError
from ...tenant.graph import Graph
from ...tenant.http import quote_segment
from .read import member_ids

#: From this many users asked about in one group on, the group's members are paged instead.
PAGE_GROUP_FROM = 200


def _groups_of(graph: Graph, user_ids: Iterable[str]) -> dict[str, set[str]]:
    """user id -> the ids of the groups it is a direct member of; users that do not exist are left out."""
    wanted = sorted(set(user_ids))
    items = [{"id": str(n), "method": "GET", "url": f"/users/{quote_segment(u)}/memberOf?$select=id&$top=999"}
             for n, u in enumerate(wanted)]
    replies = graph.read_many(items) if items else {}
    out: dict[str, set[str]] = {}
    for n, uid in enumerate(wanted):
        r = replies.get(str(n))
        if r is not None and r.status == 404:
            continue
        if r is None or not r.ok or not isinstance(r.body, dict):
            status = r.status if r is not None else None
            raise TenantError(f"Reading the groups of user {uid} failed (HTTP {status}).", status=status)
        ids: set[str] = set()
        body: Mapping[str, Any] = r.body
        while True:
            ids.update(str(d["id"]).lower() for d in body.get("value") or () if isinstance(d, dict) and d.get("id"))
            nxt = body.get("@odata.nextLink")
            if not nxt:
                break
            body = graph.http.get_json(nxt)  # a user in more than 999 groups and roles
        out[uid] = ids
    return out


def read_memberships(graph: Graph, wanted: Mapping[str, Iterable[str]]) -> dict[str, dict[str, bool]]:
    """group id -> {user id: direct member now} for the users asked about (lower-case ids). A user who does not
    exist is left out; a group that does not exist answers False for each of its users."""
    asked = {g.lower(): {u.lower() for u in us} for g, us in wanted.items()}
    out: dict[str, dict[str, bool]] = {}
    by_user: set[str] = set()
    for gid, users in asked.items():
        if len(users) >= PAGE_GROUP_FROM:
            try:
                members = member_ids(graph, gid)
            except TenantError as e:
                if e.status not in (400, 404):
                    raise
                members = frozenset()
            out[gid] = {u: u in members for u in users}
        else:
            by_user |= users
    groups = _groups_of(graph, by_user)
    for gid, users in asked.items():
        if gid not in out:
            out[gid] = {u: gid in groups[u] for u in sorted(users) if u in groups}
    return out


__all__ = ["PAGE_GROUP_FROM", "read_memberships"]
