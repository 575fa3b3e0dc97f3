"""GET /users/$count: Graph serves it as an advanced query (ConsistencyLevel: eventual), as text/plain."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from batch.sandbox import SandboxServer, init_tenant


def test_users_count_needs_eventual_consistency(tmp_path: Path) -> None:
    init_tenant(tmp_path / "s.db", users=120, seed=5)
    with SandboxServer(tmp_path / "s.db") as sb, httpx.Client(headers=sb.auth_headers) as c:
        r = c.get(f"{sb.graph_url}/users/$count", headers={"ConsistencyLevel": "eventual"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert r.text == "120"
        r = c.get(f"{sb.graph_url}/users/$count", params={"$filter": "userType eq 'Guest'"},
                  headers={"ConsistencyLevel": "eventual"})  # fmt: skip
        assert 0 < int(r.text) < 120
        bad = c.get(f"{sb.graph_url}/users/$count")
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "Request_BadRequest"
        assert bad.headers["request-id"]
        batch = c.post(f"{sb.graph_url}/$batch", json={"requests": [
            {"id": "1", "method": "GET", "url": "/users/$count", "headers": {"ConsistencyLevel": "eventual"}},
        ]}).json()  # fmt: skip
        item = batch["responses"][0]
        assert item["status"] == 200 and base64.b64decode(item["body"]).decode() == "120"
