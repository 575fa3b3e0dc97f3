"""The Microsoft Graph v1.0 face: routes, query options, the license semantics, $batch."""

from __future__ import annotations

import base64
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from . import behaviour as B
from . import directory as D
from .config import SandboxConfig
from .http import (
    Context,
    Reply,
    decode_skiptoken,
    encode_query,
    encode_skiptoken,
    graph_error,
    graph_error_body,
    parse_query,
    split_path,
)
from .limits import Chaos, GraphThrottle
from .members import _list_members, _list_transitive_members, _member_of, _user_props, advanced_query
from .store import Store

# Scopes that satisfy a read / a write of each kind (least privileged first, then higher ones).
READ_USERS = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
READ_SKUS = frozenset({"LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All", "Organization.Read.All",
                       "Directory.Read.All", "Directory.ReadWrite.All"})  # fmt: skip
READ_GROUPS = frozenset(
    {"Group.Read.All", "GroupMember.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
WRITE_LICENSES = frozenset({"LicenseAssignment.ReadWrite.All", "Directory.ReadWrite.All"})
WRITE_USERS = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
WRITE_MEMBERS = frozenset({"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"})

Handler = Callable[["GraphFace", Context, list[str], dict[str, str], Any], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    write: bool
    scopes: frozenset[str]
    cost: int  # resource units before query-option adjustments
    kind: str  # for the log / latency model


class GraphFace:
    def __init__(self, store: Store, config: SandboxConfig, chaos: Chaos, throttle: GraphThrottle,
                 meta: Mapping[str, str]) -> None:  # fmt: skip
        self.store = store
        self.config = config
        self.chaos = chaos
        self.throttle = throttle
        self.tenant_id = meta["tenant_id"]
        self.tenant_name = meta.get("tenant_name", "Contoso")
        self.country = meta.get("country", "US")
        self.base_url = ""  # public base, ends in /v1.0 (set by the server once it knows its port)
        self.next_member_slot = 0.0  # group licensing: when the next member's processing may be due

    # ------------------------------------------------------------------------------ routing

    def route(self, method: str, segs: list[str]) -> Route | Reply | None:
        """segs: path segments after v1.0. Returns a Route, None (404), or a ready Reply (405)."""
        n = len(segs)
        head = segs[0].lower() if segs else ""
        if head == "subscribedskus" and n in (1, 2) and method == "GET":
            return Route(_get_skus, False, READ_SKUS, 3 if n == 1 else 1, "read")
        if head == "users":
            if n == 1 and method == "GET":
                return Route(_list_users, False, READ_USERS, 2, "read")
            if n == 2 and segs[1] == "$count" and method == "GET":
                return Route(_count_users, False, READ_USERS, 1, "read")
            if n == 2 and method == "GET":
                return Route(_get_user, False, READ_USERS, B.COST_GET_USER, "read")
            if n == 2 and method == "PATCH":
                return Route(_patch_user, True, WRITE_USERS, B.COST_WRITE, "write")
            if n == 3 and segs[2].lower() == "assignlicense" and method == "POST":
                return Route(_assign_user, True, WRITE_LICENSES, B.COST_WRITE, "write")
            if n == 3 and segs[2].lower() == "licensedetails" and method == "GET":
                return Route(_license_details, False, READ_SKUS | READ_USERS, 2, "read")
            if n == 3 and segs[2].lower() == "memberof" and method == "GET":
                return Route(_member_of, False, READ_USERS | READ_GROUPS, B.COST_GET_MEMBERS, "read")
        if head == "groups":
            if n == 1 and method == "GET":
                return Route(_list_groups, False, READ_GROUPS, B.COST_GET_GROUPS, "read")
            if n == 2 and method == "GET":
                return Route(_get_group, False, READ_GROUPS, B.COST_GET_GROUPS, "read")
            if n == 2 and method == "PATCH":
                return Route(_patch_group, True, WRITE_MEMBERS, B.COST_WRITE, "write")
            if n == 3 and segs[2].lower() == "members" and method == "GET":
                return Route(_list_members, False, READ_GROUPS, B.COST_GET_MEMBERS, "read")
            if n in (3, 4) and segs[2].lower() == "transitivemembers" and method == "GET":
                return Route(_list_transitive_members, False, READ_GROUPS, B.COST_GET_MEMBERS, "read")
            if n == 4 and segs[2].lower() == "members" and segs[3] == "$ref" and method == "POST":
                return Route(_add_member, True, WRITE_MEMBERS, B.COST_WRITE, "write")
            if n == 5 and segs[2].lower() == "members" and segs[4] == "$ref" and method == "DELETE":
                return Route(_remove_member, True, WRITE_MEMBERS, B.COST_WRITE, "write")
            if n == 3 and segs[2].lower() == "assignlicense" and method == "POST":
                return Route(_assign_group, True, WRITE_LICENSES, B.COST_WRITE, "write")
        return identity_route(method, segs)

    def cost(self, route: Route, query: Mapping[str, str]) -> int:
        c = route.cost
        if route.write:
            return c
        if "$select" in query:
            c -= 1
        if "$expand" in query:
            c += 1
        top = query.get("$top")
        if top and top.isdigit() and int(top) < 20:
            c -= 1
        return max(1, c)

    # ------------------------------------------------------------------------ one request

    def call(self, ctx: Context, method: str, segs: list[str], query: dict[str, str], body: Any,
             *, in_batch: bool) -> Reply:  # fmt: skip
        """Authorise, throttle, fault, run. Used for single requests and for each $batch item."""
        route = self.route(method, segs)
        if route is None:
            return self._not_found_route(ctx, method, segs)
        if isinstance(route, Reply):
            return route
        if not (route.scopes & ctx.scopes):
            return graph_error(403, "Authorization_RequestDenied", B.MSG_FORBIDDEN, ctx)
        throttled = self.throttle.check(ctx.app_id, write=route.write, units=self.cost(route, query))
        if throttled is not None:
            ra = self.chaos.retry_after(throttled.retry_after)
            ctx.note = "429"
            return graph_error(429, "TooManyRequests", B.MSG_THROTTLED, ctx, {
                "Retry-After": ra, "x-ms-throttle-scope": throttled.scope,
                "x-ms-throttle-information": throttled.information,
            })  # fmt: skip
        if in_batch:
            fault = self.chaos.fault(connection_level=False)
            if fault is not None:
                return self.fault_reply(ctx, fault)
        try:
            if route.write:
                with self.store.write():
                    reply = route.handler(self, ctx, segs, query, body)
            else:
                reply = route.handler(self, ctx, segs, query, body)
        except D.GraphError as e:
            return graph_error(e.status, e.code, e.message, ctx, e.headers)
        except sqlite3.OperationalError as e:  # database locked beyond the busy timeout
            return graph_error(
                503, "serviceNotAvailable", f"{B.MSG_SERVICE_UNAVAILABLE} ({e})", ctx, {"Retry-After": "1"}
            )
        reply.headers.setdefault("x-ms-resource-unit", str(self.cost(route, query)))
        return reply

    def fault_reply(self, ctx: Context, fault: str) -> Reply:
        ctx.note = fault
        if fault.startswith("503"):
            headers = {}
            if fault == "503-retry":
                headers["Retry-After"] = self.chaos.retry_after(self.config.scaled(B.FAULT_503_RETRY_AFTER_SECONDS))
            return graph_error(503, "serviceNotAvailable", B.MSG_SERVICE_UNAVAILABLE, ctx, headers)
        return graph_error(504, "UnknownError", B.MSG_GATEWAY_TIMEOUT, ctx)

    def _not_found_route(self, ctx: Context, method: str, segs: list[str]) -> Reply:
        head = segs[0].lower() if segs else ""
        if head in ("users", "groups", "subscribedskus") and len(segs) <= 5:
            return graph_error(405, "Request_BadRequest", B.MSG_NOT_ALLOWED, ctx)
        seg = segs[0] if segs else ""
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{seg}'.", ctx)

    # ------------------------------------------------------------------------------ $batch

    def batch(self, ctx: Context, body: Any) -> Reply:
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs:
            return graph_error(400, "BadRequest", B.MSG_BATCH_INVALID, ctx)
        if len(reqs) > B.MAX_BATCH_ITEMS:
            return graph_error(400, "BadRequest", B.MSG_BATCH_TOO_MANY.format(max=B.MAX_BATCH_ITEMS), ctx)
        seen: set[str] = set()
        items: list[tuple[str, str, str, Any, dict[str, str], list[str]]] = []
        for r in reqs:
            if (
                not isinstance(r, dict)
                or not isinstance(r.get("id"), str | int)
                or not isinstance(r.get("method"), str)
                or not isinstance(r.get("url"), str)
            ):
                return graph_error(400, "BadRequest", B.MSG_BATCH_INVALID, ctx)
            rid = str(r["id"])
            if rid in seen:
                return graph_error(400, "BadRequest", B.MSG_BATCH_DUPLICATE_ID.format(id=rid), ctx)
            url = r["url"]
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url) or url.startswith("//"):
                return graph_error(400, "BadRequest", B.MSG_BATCH_ABSOLUTE_URL.format(id=rid), ctx)
            headers = {str(k).lower(): str(v) for k, v in (r.get("headers") or {}).items()} \
                if isinstance(r.get("headers"), dict) else {}  # fmt: skip
            has_body = "body" in r and r["body"] is not None
            if has_body and "content-type" not in headers:
                return graph_error(400, "BadRequest", B.MSG_BATCH_NO_CONTENT_TYPE.format(id=rid), ctx)
            deps = r.get("dependsOn") or []
            if not isinstance(deps, list):
                return graph_error(400, "BadRequest", B.MSG_BATCH_INVALID, ctx)
            deps = [str(d) for d in deps]
            for d in deps:
                if d not in seen:
                    return graph_error(400, "BadRequest", B.MSG_BATCH_BAD_DEPENDS.format(id=rid, dep=d), ctx)
            seen.add(rid)
            items.append((rid, r["method"].upper(), url, r.get("body"), headers, deps))
        ctx.items = len(items)
        writes = any(m != "GET" for _, m, *_ in items)
        statuses: dict[str, int] = {}
        out: list[dict[str, Any]] = []

        def run_all() -> None:
            for rid, method, url, ibody, headers, deps in items:
                ictx = Context(str(uuid.uuid4()), headers.get("client-request-id") or ctx.client_request_id,
                               ctx.app_id, ctx.scopes, ctx.tenant_id)  # fmt: skip
                ictx.eventual = any(k.lower() == "consistencylevel" and str(v).lower() == "eventual"
                                    for k, v in headers.items())  # fmt: skip
                if any(statuses.get(d, 0) >= 400 for d in deps):
                    rep = graph_error(424, "FailedDependency", B.MSG_DEPENDENCY_FAILED, ictx)
                else:
                    # A raw '#' ends the path, as in any URL (guests' #EXT# UPNs need %23): facts.
                    kept, cut, _fragment = url.partition("#")
                    path, _, qs = kept.lstrip("/").partition("?")
                    segs = split_path(path)
                    if segs and segs[0].lower() in ("v1.0", "beta"):
                        segs = segs[1:]
                    rep = self.call(ictx, method, segs, parse_query(qs), ibody, in_batch=True)
                    if cut and rep.status == 405 and B.BATCH_CUT_URL_IS_NOT_FOUND:
                        rep = graph_error(404, "Request_ResourceNotFound",
                                          B.MSG_RESOURCE_NOT_FOUND.format(id=segs[-1] if segs else ""), ictx)
                statuses[rid] = rep.status
                entry: dict[str, Any] = {"id": rid, "status": rep.status}
                h = dict(rep.headers)
                if rep.text is not None:  # non-JSON bodies travel base64-encoded inside a $batch answer
                    h.setdefault("Content-Type", "text/plain")
                    entry["body"] = base64.b64encode(rep.text.encode("utf-8")).decode("ascii")
                elif rep.body is not None:
                    h.setdefault("Content-Type", "application/json")
                    entry["body"] = rep.body
                entry["headers"] = h
                out.append(entry)

        if writes:
            with self.store.write():
                run_all()
        else:
            run_all()
        if self.config.shuffle_batch:
            self.chaos.shuffle(out)  # type: ignore[arg-type]
        return Reply(200, {"responses": out})

    # ----------------------------------------------------------------------- shared helpers

    def select(self, query: Mapping[str, str], known: frozenset[str], default: tuple[str, ...], typ: str) -> list[str]:
        raw = query.get("$select")
        if not raw:
            return list(default)
        lower = {k.lower(): k for k in known}
        out: list[str] = []
        for part in raw.split(","):
            p = part.strip()
            if not p:
                continue
            canon = lower.get(p.lower())
            if canon is None:
                raise D.bad_request(B.MSG_UNKNOWN_PROPERTY.format(name=p, type=typ), code="BadRequest")
            if canon not in out:
                out.append(canon)
        if "id" not in out:
            out.append("id")  # Graph always returns id
        return out

    def top(self, query: Mapping[str, str], default: int = 100, maximum: int = 999) -> int:
        raw = query.get("$top")
        if raw is None:
            return default
        if not raw.isdigit() or not 1 <= int(raw) <= maximum:
            raise D.bad_request(
                f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
                code="Request_UnsupportedQuery",
            )
        return int(raw)

    def context_url(self, entity: str, props: list[str] | None) -> str:
        sel = f"({','.join(props)})" if props else ""
        return f"{self.base_url}/$metadata#{entity}{sel}"

    def page(self, ctx: Context, entity: str, path: str, query: Mapping[str, str], rows: list[sqlite3.Row],
             top: int, render: Callable[[sqlite3.Row], dict[str, Any]], props: list[str] | None) -> Reply:  # fmt: skip
        """One page of a collection, its members in Graph's order: @odata.context, (@odata.count,)
        @odata.nextLink, then value (Graph sends the link before the page: a client may ask for the next page
        before it has parsed this one)."""
        body: dict[str, Any] = {"@odata.context": self.context_url(entity, props)}
        more = len(rows) > top
        rows = rows[:top]
        if more:
            params = {k: v for k, v in query.items() if k.lower() != "$skiptoken"}
            params["$skiptoken"] = encode_skiptoken(rows[-1]["n"])
            body["@odata.nextLink"] = f"{self.base_url}/{path}?{encode_query(params)}"
        body["value"] = [render(r) for r in rows]
        return Reply(200, body)


# ---------------------------------------------------------------------------------- $filter

_TOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|('(?:[^']|'')*')|([A-Za-z_][A-Za-z0-9_/.]*)|(-?\d+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3):
            out.append((",", ","))
        elif m.group(4):
            out.append(("str", m.group(4)[1:-1].replace("''", "'")))
        elif m.group(5):
            out.append(("name", m.group(5)))
        else:
            out.append(("num", m.group(6)))
    return out


def parse_filter(text: str, columns: Mapping[str, tuple[str, bool]],
                 used: set[str] | None = None) -> tuple[str, list[Any]]:
    """A conjunction of ``prop eq value`` / ``prop in (v, ...)`` / ``startswith(prop, 'x')`` -> SQL.

    columns: property (lower-case) -> (column, lower-case the value for an indexed lower column).
    used: filled with the properties (lower-case) the filter names.
    """
    toks = _tokens(text)
    clauses: list[str] = []
    args: list[Any] = []
    i = 0

    def expect(kind: str) -> str:
        nonlocal i
        if i >= len(toks) or toks[i][0] != kind:
            raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")
        v = toks[i][1]
        i += 1
        return v

    def typed(col: str, v: Any) -> Any:
        """``v`` if its type is the property's: a quoted boolean (or an unquoted true on text) is refused."""
        boolean = col in _BOOLEAN_COLUMNS
        if v is not None and (isinstance(v, str) if boolean else isinstance(v, bool)):
            raise D.bad_request(B.MSG_INCOMPATIBLE_OPERANDS.format(
                left="Edm.Boolean" if boolean else "Edm.String", right="Edm.String" if boolean else "Edm.Boolean"))
        return v

    def column(name: str) -> tuple[str, bool]:
        c = columns.get(name.lower())
        if c is None:
            raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")
        if used is not None:
            used.add(name.lower())
        return c

    def value() -> Any:
        nonlocal i
        if i < len(toks) and toks[i][0] == "str":
            i += 1
            return toks[i - 1][1]
        if i < len(toks) and toks[i][0] == "name" and toks[i][1] in ("true", "false", "null"):
            i += 1
            return {"true": True, "false": False, "null": None}[toks[i - 1][1]]
        if i < len(toks) and toks[i][0] == "num":
            i += 1
            return int(toks[i - 1][1])
        raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")

    while True:
        name = expect("name")
        if name.lower() == "startswith":
            expect("(")
            col, _low = column(expect("name"))
            expect(",")
            v = value()
            expect(")")
            clauses.append(f"{col} LIKE ? ESCAPE '\\'")
            args.append(str(v).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        else:
            col, low = column(name)
            op = expect("name").lower()
            if op == "eq":
                v = typed(col, value())
                if v is None:
                    clauses.append(f"{col} IS NULL")
                else:
                    clauses.append(f"{col} = ? COLLATE NOCASE" if not low else f"{col} = ?")
                    args.append(v.lower() if low and isinstance(v, str) else v)
            elif op == "in":
                expect("(")
                vals = [typed(col, value())]
                while i < len(toks) and toks[i][0] == ",":
                    i += 1
                    vals.append(typed(col, value()))
                expect(")")
                if len(vals) > B.MAX_IN_VALUES:
                    raise D.bad_request(B.MSG_TOO_MANY_IN.format(n=len(vals), max=B.MAX_IN_VALUES))
                clauses.append(f"{col} IN ({','.join('?' * len(vals))})")
                args.extend(v.lower() if low and isinstance(v, str) else v for v in vals)
            else:
                raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")
        if i >= len(toks):
            break
        if toks[i] != ("name", "and"):
            raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")
        i += 1
    return " AND ".join(clauses), args


USER_FILTER_COLUMNS: dict[str, tuple[str, bool]] = {
    "id": ("id", True),
    "userprincipalname": ("upn_lower", True),
    "mail": ("mail_lower", True),
    "department": ("department", False),
    "usagelocation": ("usage_location", False),
    "accountenabled": ("account_enabled", False),
    "usertype": ("user_type", False),
    "displayname": ("display_name", False),
    "jobtitle": ("job_title", False),
    "country": ("country", False),
    "companyname": ("company_name", False),
    "officelocation": ("office_location", False),
    "employeetype": ("employee_type", False),
    "city": ("city", False),
    "state": ("state", False),
}
#: Columns of a boolean property: a filter gives them true/false, never a quoted string.
_BOOLEAN_COLUMNS = frozenset({"account_enabled"})
GROUP_FILTER_COLUMNS: dict[str, tuple[str, bool]] = {
    "displayname": ("display_name", False),
    "id": ("id", True),
    "mailnickname": ("mail_nickname", False),
}


# ---------------------------------------------------------------------------------- handlers


def _get_skus(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    if "$filter" in query:
        raise D.bad_request(B.MSG_UNSUPPORTED_QUERY, code="Request_UnsupportedQuery")
    skus = D.load_skus(face.store.conn)
    known = frozenset(D.sku_json(next(iter(skus.values())), "", "").keys()) if skus else frozenset({"id"})
    if len(segs) == 2:
        tid, _, sku_id = segs[1].partition("_")
        s = skus.get(sku_id.lower())
        if s is None or tid.lower() != face.tenant_id:
            raise D.not_found(segs[1])
        return Reply(200, {"@odata.context": face.context_url("subscribedSkus/$entity", None),
                           **D.sku_json(s, face.tenant_id, face.tenant_name)})  # fmt: skip
    props = face.select(query, known, (), "SubscribedSku") if "$select" in query else None
    value = []
    for s in skus.values():
        j = D.sku_json(s, face.tenant_id, face.tenant_name)
        value.append({k: j[k] for k in props} if props else j)
    return Reply(200, {"@odata.context": face.context_url("subscribedSkus", props), "value": value})


def _where(query: Mapping[str, str], columns: Mapping[str, tuple[str, bool]], *, paged: bool = True,
           advanced: bool = True) -> tuple[list[str], list[Any]]:  # fmt: skip
    """SQL conditions for ``$filter`` (and the ``$skiptoken`` position of a paged list). Without ``advanced``,
    a filter on a property that needs an advanced query is refused, as Graph does."""
    where: list[str] = ["1"]
    args: list[Any] = []
    tok = query.get("$skiptoken") if paged else None
    if tok is not None:
        after = decode_skiptoken(tok)
        if after is None:
            raise D.bad_request("Specified skiptoken is invalid.", code="Request_BadRequest")
        where.append("n > ?")
        args.append(after)
    if query.get("$filter"):
        used: set[str] = set()
        sql, fargs = parse_filter(query["$filter"], columns, used)
        if not advanced and used & B.ADVANCED_ONLY_USER_FILTERS and columns is USER_FILTER_COLUMNS:
            raise D.bad_request(B.MSG_NEEDS_ADVANCED_QUERY.format(what="Operator 'eq'"),
                                code="Request_UnsupportedQuery")
        where.append(f"({sql})")
        args.extend(fargs)
    return where, args


def _list(face: GraphFace, ctx: Context, query: Mapping[str, str], table: str, columns: Mapping[str, tuple[str, bool]],
          props: list[str], render: Callable[[Any], dict[str, Any]]) -> Reply:  # fmt: skip
    """A paged collection (users, groups): $filter, $top, $skiptoken, @odata.nextLink (and @odata.count in an
    advanced query)."""
    top = face.top(query)
    advanced = advanced_query(ctx, query)
    where, args = _where(query, columns, advanced=advanced)
    rows = face.store.conn.execute(
        f"SELECT * FROM {table} WHERE {' AND '.join(where)} ORDER BY n LIMIT ?", (*args, top + 1)
    ).fetchall()
    sel = props if "$select" in query else None
    reply = face.page(ctx, table, table, query, rows, top, render, sel)
    if advanced and reply.body is not None:
        cw, cargs = _where(query, columns, paged=False)
        (count,) = face.store.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {' AND '.join(cw)}", cargs).fetchone()
        reply.body = {"@odata.context": reply.body["@odata.context"], "@odata.count": count,
                      **{k: v for k, v in reply.body.items() if k != "@odata.context"}}
    return reply


def _list_users(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    props = _user_props(face, query)
    return _list(face, ctx, query, "users", USER_FILTER_COLUMNS, props, lambda r: D.user_json(r, props))


def _count_users(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    """``GET /users/$count``: an advanced query, served only with ``ConsistencyLevel: eventual``."""
    if not ctx.eventual:
        raise D.bad_request(B.MSG_COUNT_NEEDS_EVENTUAL, code="Request_BadRequest")
    where, args = _where(query, USER_FILTER_COLUMNS, paged=False)
    (count,) = face.store.conn.execute(f"SELECT COUNT(*) FROM users WHERE {' AND '.join(where)}", args).fetchone()
    return Reply(200, text=str(count))


def _get_user(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    props = _user_props(face, query)
    r = D.find_user(face.store.conn, segs[1])
    sel = props if "$select" in query else None
    return Reply(200, {"@odata.context": face.context_url("users", sel) + "/$entity", **D.user_json(r, props)})


def _patch_user(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    D.set_user_properties(face.store.conn, segs[1], body)
    return Reply(204)


def _assign_user(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    r = D.assign_user_license(face.store.conn, segs[1], body)
    return Reply(200, {"@odata.context": face.context_url("users", None) + "/$entity",
                       **D.user_json(r, B.ASSIGN_LICENSE_RESPONSE_PROPERTIES)})  # fmt: skip


def _license_details(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    conn = face.store.conn
    r = D.find_user(conn, segs[1])
    details = D.license_details(r, D.load_skus(conn))
    ctx_url = f"{face.base_url}/$metadata#users('{r['id']}')/licenseDetails"
    return Reply(200, {"@odata.context": ctx_url, "value": details})


def _list_groups(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    props = face.select(query, D.GROUP_PROPERTIES, D.GROUP_DEFAULT_PROPERTIES, "Group")
    return _list(face, ctx, query, "groups", GROUP_FILTER_COLUMNS, props, lambda r: D.group_json(r, props))


def _get_group(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    props = face.select(query, D.GROUP_PROPERTIES, D.GROUP_DEFAULT_PROPERTIES, "Group")
    r = D.find_group(face.store.conn, segs[1])
    sel = props if "$select" in query else None
    return Reply(200, {"@odata.context": face.context_url("groups", sel) + "/$entity", **D.group_json(r, props)})


def _due(face: GraphFace) -> float:
    return time.time() + face.config.scaled(face.config.group_processing_seconds)


def _member_due(face: GraphFace) -> float:
    """When Entra gets to one more member: after the processing delay, and at most
    ``group_processing_members_per_second`` members per second over the whole tenant (0 = no limit)."""
    due = _due(face)
    rate = face.config.group_processing_members_per_second
    if rate > 0:
        due = max(due, face.next_member_slot)
        face.next_member_slot = due + face.config.scaled(1.0 / rate)
    return due


def _add_member(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    D.add_member(face.store.conn, segs[1], body, lambda: _member_due(face))
    return Reply(204)


def _patch_group(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    D.patch_group(face.store.conn, segs[1], body, lambda: _member_due(face))
    return Reply(204)


def _remove_member(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    D.remove_member(face.store.conn, segs[1], segs[3], _due(face))
    return Reply(204)


def _assign_group(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    r = D.assign_group_license(face.store.conn, segs[1], body, _due(face))
    return Reply(202, {"@odata.context": face.context_url("groups", None) + "/$entity",
                       **D.group_json(r, (*D.GROUP_DEFAULT_PROPERTIES, "assignedLicenses"))})  # fmt: skip


def process_due_group_jobs(store: Store, country: str, limit: int = 20) -> int:
    """Run queued group-licensing jobs whose time has come. Returns how many ran."""
    conn = store.conn
    jobs = conn.execute(
        "SELECT id, group_id, user_id FROM group_jobs WHERE due <= ? ORDER BY id LIMIT ?", (time.time(), limit)
    ).fetchall()
    for job in jobs:
        with store.write() as c:
            if c.execute("DELETE FROM group_jobs WHERE id=?", (job["id"],)).rowcount == 0:
                continue  # another process took it
            c.execute("UPDATE groups SET processing_state='ProcessingInProgress' WHERE id=?", (job["group_id"],))
            D.process_group_job(c, job["group_id"], job["user_id"], country)
    return len(jobs)


__all__ = ["GraphFace", "advanced_query", "graph_error_body", "orjson", "process_due_group_jobs"]


# ============================================================================ identity: who am I, what may I do
# GET /organization, GET /servicePrincipals?$filter=appId eq '...', GET /servicePrincipals/{id}/appRoleAssignments:
# enough for `license-batch whoami` and the permission preflight to read what an (opaque) sandbox token may do.
# Graph needs Application.Read.All to read service principals; the sandbox lets every app read its own service
# principal and Microsoft Graph's (so a token minted with chosen scopes can be inspected) and asks
# Application.Read.All or Directory.Read.All for any other. Shapes follow the v1.0 schema (servicePrincipal,
# appRole, appRoleAssignment, organization, verifiedDomain).

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
READ_ORG = frozenset({"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
                      "Directory.ReadWrite.All"})  # fmt: skip
READ_APPS = frozenset({"Application.Read.All", "Application.ReadWrite.All", "Directory.Read.All",
                       "Directory.ReadWrite.All"})  # fmt: skip
#: Microsoft Graph's application permissions (appRole ids as Microsoft publishes them).
GRAPH_APP_ROLES = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "LicenseAssignment.ReadWrite.All": "5facf0c1-8979-4e95-abcf-ff3d079771c0",
    "Group.Read.All": "5b567255-7703-4780-807c-7be8301ae99b",
    "Group.ReadWrite.All": "62a82d76-70ea-41e2-9197-370581804d09",
    "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
    "GroupMember.ReadWrite.All": "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
    "Organization.Read.All": "498476ce-e0fe-48b0-b801-37ba7e2685c6",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
}
_NS = uuid.UUID("6f1c1d3e-7a61-4d59-9a38-5c7c1b2a0e11")


def _role_id(value: str) -> str:
    return GRAPH_APP_ROLES.get(value) or str(uuid.uuid5(_NS, "role:" + value))


def _sp_id(face: GraphFace, app_id: str) -> str:
    return str(uuid.uuid5(_NS, f"sp:{face.tenant_id}:{app_id}"))


def identity_route(method: str, segs: list[str]) -> Route | None:
    n = len(segs)
    head = segs[0].lower() if segs else ""
    anyone = READ_ORG | READ_APPS | READ_USERS | READ_SKUS | READ_GROUPS | WRITE_LICENSES | WRITE_USERS | WRITE_MEMBERS
    if method != "GET":
        return None
    if head == "organization" and n == 1:
        return Route(_get_organization, False, READ_ORG, 1, "read")
    if head == "serviceprincipals" and n == 1:
        return Route(_list_service_principals, False, anyone, 1, "read")
    if head == "serviceprincipals" and n == 3 and segs[2].lower() == "approleassignments":
        return Route(_list_app_role_assignments, False, anyone, 1, "read")
    return None


def _get_organization(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str], body: Any) -> Reply:
    domain = "contoso.onmicrosoft.com"
    row = face.store.conn.execute("SELECT value FROM meta WHERE key='domain'").fetchone()
    if row is not None:
        domain = str(row[0])
    org = {"id": face.tenant_id, "displayName": face.tenant_name, "tenantType": "AAD",
           "countryLetterCode": face.country,
           "verifiedDomains": [{"name": domain, "isDefault": True, "isInitial": True, "type": "Managed",
                                "capabilities": "Email, OfficeCommunicationsOnline"}]}  # fmt: skip
    return Reply(200, {"@odata.context": face.context_url("organization", None), "value": [org]})


def _app_scopes(face: GraphFace, app_id: str, ctx: Context) -> frozenset[str] | None:
    """The permissions granted to ``app_id``: the caller's own, or the union over its tokens in the store."""
    if app_id == ctx.app_id:
        return ctx.scopes
    rows = face.store.conn.execute("SELECT scopes FROM tokens WHERE app_id=?", (app_id,)).fetchall()
    if not rows:
        return None
    return frozenset(x for r in rows for x in str(r[0]).split())


def _sp_json(face: GraphFace, app_id: str, ctx: Context) -> dict[str, Any]:
    if app_id == GRAPH_APP_ID:
        roles = [{"allowedMemberTypes": ["Application"], "description": f"Allows the app to {v}.", "displayName": v,
                  "id": _role_id(v), "isEnabled": True, "origin": "Application", "value": v}
                 for v in sorted({*GRAPH_APP_ROLES, *(s for s in ctx.scopes if "." in s and
                                                        not s.startswith("PowerPlatform"))})]  # fmt: skip
        return {"id": _sp_id(face, app_id), "appId": app_id, "displayName": "Microsoft Graph",
                "servicePrincipalType": "Application", "appRoles": roles}  # fmt: skip
    return {"id": _sp_id(face, app_id), "appId": app_id, "displayName": f"license-batch sandbox app {app_id[:8]}",
            "servicePrincipalType": "Application", "appOwnerOrganizationId": face.tenant_id, "appRoles": []}


def _list_service_principals(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str],
                             body: Any) -> Reply:  # fmt: skip
    m = re.fullmatch(r"\s*appId\s+eq\s+'([^']*)'\s*", query.get("$filter", ""))
    if m is None:
        return graph_error(400, "Request_UnsupportedQuery",
                           "The sandbox serves servicePrincipals only with $filter=appId eq '...'.", ctx)  # fmt: skip
    app_id = m.group(1).lower()
    if app_id not in (ctx.app_id, GRAPH_APP_ID) and not (ctx.scopes & READ_APPS):
        return graph_error(403, "Authorization_RequestDenied", B.MSG_FORBIDDEN, ctx)
    found = app_id == GRAPH_APP_ID or _app_scopes(face, app_id, ctx) is not None
    value = [_sp_json(face, app_id, ctx)] if found else []
    return Reply(200, {"@odata.context": face.context_url("servicePrincipals", None), "value": value})


def _list_app_role_assignments(face: GraphFace, ctx: Context, segs: list[str], query: dict[str, str],
                               body: Any) -> Reply:  # fmt: skip
    sp = segs[1].lower()
    app_id = ctx.app_id if sp == _sp_id(face, ctx.app_id) else None
    if app_id is None:
        rows = face.store.conn.execute("SELECT DISTINCT app_id FROM tokens").fetchall()
        app_id = next((str(r[0]) for r in rows if _sp_id(face, str(r[0])) == sp), None)
        if app_id is not None and not (ctx.scopes & READ_APPS):
            return graph_error(403, "Authorization_RequestDenied", B.MSG_FORBIDDEN, ctx)
    if app_id is None:
        return graph_error(404, "Request_ResourceNotFound", B.MSG_RESOURCE_NOT_FOUND.format(id=segs[1]), ctx)
    scopes = _app_scopes(face, app_id, ctx) or frozenset()
    graph_sp = _sp_id(face, GRAPH_APP_ID)
    value = [{"id": base64.urlsafe_b64encode(uuid.uuid5(_NS, f"ara:{app_id}:{v}").bytes).decode().rstrip("="),
              "appRoleId": _role_id(v), "createdDateTime": "2026-01-01T00:00:00Z", "deletedDateTime": None,
              "principalDisplayName": f"license-batch sandbox app {app_id[:8]}", "principalId": sp,
              "principalType": "ServicePrincipal", "resourceDisplayName": "Microsoft Graph", "resourceId": graph_sp}
             for v in sorted(scopes) if not v.startswith("PowerPlatform")]  # fmt: skip
    return Reply(200, {"@odata.context": face.context_url(f"servicePrincipals('{sp}')/appRoleAssignments", None),
                       "value": value})  # fmt: skip
