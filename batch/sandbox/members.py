"""The Graph face's directoryObject listings of membership: a group's direct ``members``, its
``transitiveMembers`` (with the OData casts) and a user's ``memberOf``; and the query helpers they share with
``graph`` (a user's ``$select``, whether a request is an advanced query)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import behaviour as B
from . import directory as D
from .http import Context, Reply, decode_skiptoken

if TYPE_CHECKING:
    from .graph import GraphFace


def _user_props(face: GraphFace, query: Mapping[str, str]) -> list[str]:
    return face.select(query, D.USER_PROPERTIES, B.USER_DEFAULT_PROPERTIES, "User")


def advanced_query(ctx: Context, query: Mapping[str, str]) -> bool:
    """The request carries the advanced query parameters: ``ConsistencyLevel: eventual`` and ``$count=true``."""
    return ctx.eventual and query.get("$count", "").strip().lower() == "true"


def _member_props(face: GraphFace, query: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(user properties, group properties) a directoryObject listing renders. ``$select`` may name a property
    of either type; each member shows those its type has (and always ``@odata.type`` and ``id``)."""
    if "$select" not in query:
        return list(B.USER_DEFAULT_PROPERTIES), list(D.GROUP_DEFAULT_PROPERTIES)
    props = face.select(query, D.USER_PROPERTIES | D.GROUP_PROPERTIES, (), "DirectoryObject")
    return [p for p in props if p in D.USER_PROPERTIES], [p for p in props if p in D.GROUP_PROPERTIES]


def _render_member(props: tuple[list[str], list[str]]) -> Callable[[Any], dict[str, Any]]:
    def render(r: Any) -> dict[str, Any]:
        if r["kind"] == "group":
            return {"@odata.type": "#microsoft.graph.group", **D.group_json(r, props[1])}
        return {"@odata.type": "#microsoft.graph.user", **D.user_json(r, props[0])}

    return render


def _as_page_row(r: sqlite3.Row, n: int, kind: str) -> dict[str, Any]:
    d = dict(zip(r.keys(), tuple(r), strict=True))
    d["n"], d["kind"] = n, kind
    return d


def _after(query: Mapping[str, str]) -> int:
    tok = query.get("$skiptoken")
    if tok is None:
        return 0
    dec = decode_skiptoken(tok)
    if dec is None:
        raise D.bad_request("Specified skiptoken is invalid.")
    return dec


def _list_members(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    """``GET /groups/{id}/members``: the DIRECT members, users and nested groups (directoryObjects of mixed
    types, each with its ``@odata.type``), in the order they were added."""
    conn = face.store.conn
    g = D.find_group(conn, segs[1])
    props = _member_props(face, query)
    top = face.top(query)
    after = _after(query)
    users = conn.execute("SELECT m.n AS mn, u.* FROM members m JOIN users u ON u.id = m.user_id "
                         "WHERE m.group_id=? AND m.n > ? ORDER BY m.n LIMIT ?", (g["id"], after, top + 1)).fetchall()
    groups = conn.execute("SELECT s.n AS mn, g.* FROM subgroups s JOIN groups g ON g.id = s.member_id "
                          "WHERE s.group_id=? AND s.n > ? ORDER BY s.n LIMIT ?", (g["id"], after, top + 1)).fetchall()
    rows = sorted([_as_page_row(r, r["mn"], "user") for r in users] + [_as_page_row(r, r["mn"], "group")
                                                                         for r in groups], key=lambda d: d["n"])
    return face.page(ctx, "directoryObjects", f"groups/{g['id']}/members", query, rows[:top + 1], top,  # type: ignore[arg-type]
                     _render_member(props), None)


#: A transitive listing pages nested groups first (skiptoken = the group's row number), then users (skiptoken =
#: _USERS_FROM + the user's row number): one integer position across both.
_USERS_FROM = 1 << 40


def _list_transitive_members(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str],
                             body: Any) -> Reply:
    """``GET /groups/{id}/transitiveMembers[/microsoft.graph.user | /microsoft.graph.group]``: every member at
    any depth of nesting, each once (a cycle ends where it closes). The OData cast needs an advanced query."""
    conn = face.store.conn
    g = D.find_group(conn, segs[1])
    cast = segs[3].lower() if len(segs) == 4 else None
    if cast is not None and cast not in ("microsoft.graph.user", "microsoft.graph.group"):
        raise D.bad_request(B.MSG_UNSUPPORTED_CAST.format(cast=segs[3]), code="Request_UnsupportedQuery")
    if cast is not None and B.CAST_NEEDS_ADVANCED_QUERY and not advanced_query(ctx, query):
        raise D.bad_request(B.MSG_NEEDS_ADVANCED_QUERY.format(what="OData cast"), code="Request_UnsupportedQuery")
    if cast == "microsoft.graph.user":
        props: tuple[list[str], list[str]] = (_user_props(face, query), [])
    elif cast == "microsoft.graph.group":
        props = ([], face.select(query, D.GROUP_PROPERTIES, D.GROUP_DEFAULT_PROPERTIES, "Group"))
    else:
        props = _member_props(face, query)
    top = face.top(query)
    after = _after(query)
    nested = [g["id"], *D.nested_group_ids(conn, g["id"])]
    q = ",".join("?" * len(nested))
    rows: list[dict[str, Any]] = []
    if cast != "microsoft.graph.user" and after < _USERS_FROM:
        found = conn.execute(f"SELECT * FROM groups WHERE id IN ({q}) AND id != ? AND n > ? ORDER BY n LIMIT ?",
                             (*nested, g["id"], after, top + 1)).fetchall()
        rows = [_as_page_row(r, r["n"], "group") for r in found]
    if cast != "microsoft.graph.group" and len(rows) <= top:
        # users in n order, each once, kept while the page is not full (a member of several nested groups once)
        found = conn.execute(
            f"SELECT * FROM users u WHERE u.n > ? AND EXISTS (SELECT 1 FROM members m WHERE m.user_id = u.id "
            f"AND m.group_id IN ({q})) ORDER BY u.n LIMIT ?",
            (max(0, after - _USERS_FROM), *nested, top + 1 - len(rows))).fetchall()
        rows += [_as_page_row(r, _USERS_FROM + r["n"], "user") for r in found]
    entity = {"microsoft.graph.user": "users", "microsoft.graph.group": "groups"}.get(cast or "", "directoryObjects")
    reply = face.page(ctx, entity, "/".join(["groups", g["id"], *segs[2:]]), query, rows, top,  # type: ignore[arg-type]
                      _render_member(props), None)
    if advanced_query(ctx, query) and reply.body is not None:
        count = _transitive_count(conn, nested, g["id"], cast)  # after the context, as Graph sends it
        reply.body = {"@odata.context": reply.body["@odata.context"], "@odata.count": count,
                      **{k: v for k, v in reply.body.items() if k != "@odata.context"}}
    return reply


def _transitive_count(conn: sqlite3.Connection, nested: list[str], group_id: str, cast: str | None) -> int:
    q = ",".join("?" * len(nested))
    n = 0
    if cast != "microsoft.graph.user":
        n += len(nested) - 1
    if cast != "microsoft.graph.group":
        n += conn.execute(f"SELECT COUNT(DISTINCT user_id) FROM members WHERE group_id IN ({q})", nested).fetchone()[0]
    return int(n)


def _member_of(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    """``GET /users/{id}/memberOf``: the groups the user is a DIRECT member of (not transitive; Graph also lists
    directory roles and administrative units, which the sandbox has none of), paged like every collection."""
    conn = face.store.conn
    u = D.find_user(conn, segs[1])
    props = face.select(query, D.GROUP_PROPERTIES, D.GROUP_DEFAULT_PROPERTIES, "Group")
    top = face.top(query)
    after = 0
    tok = query.get("$skiptoken")
    if tok is not None:
        dec = decode_skiptoken(tok)
        if dec is None:
            raise D.bad_request("Specified skiptoken is invalid.")
        after = dec
    rows = conn.execute(
        "SELECT g.* FROM members m JOIN groups g ON g.id = m.group_id WHERE m.user_id=? AND g.n > ? "
        "ORDER BY g.n LIMIT ?",
        (u["id"], after, top + 1),
    ).fetchall()

    def render(r: Any) -> dict[str, Any]:
        return {"@odata.type": "#microsoft.graph.group", **D.group_json(r, props)}

    sel = props if "$select" in query else None
    return face.page(ctx, "directoryObjects", f"users/{u['id']}/memberOf", query, rows, top, render, sel)
