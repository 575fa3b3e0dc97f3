"""Helpers shared by the sandbox tests (imported as a top-level module: tests/ has no packages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
USERS = 120


def upn(local: str) -> str:
    return f"{local}@contoso.onmicrosoft.com"


def assign_body(add: list[str] | None = None, remove: list[str] | None = None,
                disabled: dict[str, list[str]] | None = None) -> dict[str, Any]:  # fmt: skip
    disabled = disabled or {}
    return {
        "addLicenses": [{"skuId": s, "disabledPlans": disabled.get(s, [])} for s in add or []],
        "removeLicenses": list(remove or []),
    }


def assert_graph_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Graph's error shape, with request-id / client-request-id in headers and innerError."""
    assert r.status_code == status, r.text
    body = r.json()
    err = body["error"]
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    inner = err["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert inner["request-id"] == r.headers["request-id"]
    assert inner["client-request-id"] == r.headers["client-request-id"]
    return err
