"""A $filter literal of the wrong type is a 400, as Graph answers it (OData refuses the comparison), not a
silently empty page: ``accountEnabled eq 'false'`` (a quoted boolean) is refused, ``accountEnabled eq false``
is served; an unquoted boolean on a text property is refused too."""

from __future__ import annotations

from pathlib import Path

import httpx

from batch.sandbox import SandboxServer, init_tenant


def test_a_quoted_boolean_is_refused(tmp_path: Path) -> None:
    init_tenant(tmp_path / "s.db", users=60, seed=5)
    with SandboxServer(tmp_path / "s.db") as sb, httpx.Client(headers=sb.auth_headers) as c:
        ok = c.get(f"{sb.graph_url}/users",
                   params={"$filter": "accountEnabled eq false", "$select": "id,accountEnabled"})
        assert ok.status_code == 200
        assert ok.json()["value"] and all(u["accountEnabled"] is False for u in ok.json()["value"])
        for flt, left, right in (("accountEnabled eq 'false'", "Edm.Boolean", "Edm.String"),
                                 ("accountEnabled in ('true')", "Edm.Boolean", "Edm.String"),
                                 ("department eq true", "Edm.String", "Edm.Boolean")):
            bad = c.get(f"{sb.graph_url}/users", params={"$filter": flt})
            assert bad.status_code == 400, flt
            assert bad.json()["error"]["code"] == "Request_BadRequest"
            assert bad.json()["error"]["message"] == (
                f"A binary operator with incompatible types was detected. Found operand types '{left}' and "
                f"'{right}' for operator kind 'Equal'.")
