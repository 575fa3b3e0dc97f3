"""Wire helpers shared by the Graph and Power Platform faces: replies, error bodies, query parsing."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

import orjson


@dataclass(slots=True)
class Reply:
    """What a handler answers: status, headers, a JSON-able body (None = no body)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # a text/plain body instead of JSON (e.g. /users/$count)


@dataclass(slots=True)
class Context:
    """One request (or one $batch item)."""

    request_id: str
    client_request_id: str
    app_id: str = ""
    scopes: frozenset[str] = frozenset()
    tenant_id: str = ""
    items: int = 0  # $batch items, for the log
    note: str = ""  # fault injected, for the log
    eventual: bool = False  # the request said ConsistencyLevel: eventual (advanced queries such as $count)


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(code: str, message: str, ctx: Context) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": utc_stamp(),
                "request-id": ctx.request_id,
                "client-request-id": ctx.client_request_id,
            },
        }
    }


def graph_error(status: int, code: str, message: str, ctx: Context, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, graph_error_body(code, message, ctx), dict(headers or {}))


def parse_query(raw: str) -> dict[str, str]:
    """Query string -> dict; '+' is a space (as Graph reads it: a '+' in a UPN must be sent as %2B)."""
    out: dict[str, str] = {}
    if not raw:
        return out
    for part in raw.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out[unquote_plus(k)] = unquote_plus(v)
    return out


def encode_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in params.items())


def split_path(raw_path: str) -> list[str]:
    """Percent-decoded path segments ('%23EXT%23' -> '#EXT#'), split BEFORE decoding."""
    return [unquote(s) for s in raw_path.split("/") if s != ""]


def encode_skiptoken(n: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"n": n})).decode().rstrip("=")


def decode_skiptoken(token: str) -> int | None:
    try:
        pad = "=" * (-len(token) % 4)
        n = orjson.loads(base64.urlsafe_b64decode(token + pad))["n"]
        return int(n)
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
