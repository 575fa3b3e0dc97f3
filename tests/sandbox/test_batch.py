"""POST /$batch: limits, relative URLs, Content-Type, dependsOn/424, out-of-order answers, per-item throttling."""

from __future__ import annotations

from typing import Any

import httpx

from batch.sandbox import catalogue as C

from .conftest import start
from .sbtest import assert_graph_error, assign_body, upn

JSON = {"Content-Type": "application/json"}


def item(i: int | str, url: str, body: Any = None, method: str = "POST", **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(i), "method": method, "url": url, **kw}
    if body is not None:
        out["body"] = body
        out.setdefault("headers", JSON)
    return out


def by_id(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    return {x["id"]: x for x in r.json()["responses"]}


def test_envelope_is_200_even_when_every_item_fails(graph: httpx.Client) -> None:
    reqs = [item(i, "/users/nobody@contoso.onmicrosoft.com/assignLicense", assign_body([C.SPE_E3])) for i in range(3)]
    r = graph.post("/$batch", json={"requests": reqs})
    out = by_id(r)
    assert {x["status"] for x in out.values()} == {404}
    body = out["0"]["body"]
    assert body["error"]["code"] == "Request_ResourceNotFound"
    assert set(body["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    assert r.headers["request-id"] and r.headers["client-request-id"]


def test_at_most_20_items(graph: httpx.Client) -> None:
    reqs = [item(i, f"/users/{upn('adele.vance')}", method="GET") for i in range(21)]
    assert_graph_error(graph.post("/$batch", json={"requests": reqs}), 400, "BadRequest")
    assert graph.post("/$batch", json={"requests": reqs[:20]}).status_code == 200


def test_absolute_url_is_rejected(graph: httpx.Client, server: Any) -> None:
    reqs = [item(1, server.graph_url + "/users", method="GET")]
    assert_graph_error(graph.post("/$batch", json={"requests": reqs}), 400, "BadRequest")
    reqs = [item(1, "https://graph.microsoft.com/v1.0/users", method="GET")]
    assert_graph_error(graph.post("/$batch", json={"requests": reqs}), 400, "BadRequest")


def test_body_needs_content_type(graph: httpx.Client) -> None:
    reqs = [{"id": "1", "method": "POST", "url": f"/users/{upn('adele.vance')}/assignLicense", "body": assign_body()}]
    err = assert_graph_error(graph.post("/$batch", json={"requests": reqs}), 400, "BadRequest")
    assert "Content-Type" in err["message"]


def test_duplicate_ids_and_unknown_dependency(graph: httpx.Client) -> None:
    reqs = [item(1, "/users", method="GET"), item(1, "/users", method="GET")]
    assert_graph_error(graph.post("/$batch", json={"requests": reqs}), 400, "BadRequest")
    reqs = [item(1, "/users", method="GET", dependsOn=["9"])]
    assert_graph_error(graph.post("/$batch", json={"requests": reqs}), 400, "BadRequest")


def test_depends_on_and_424(graph: httpx.Client) -> None:
    megan = upn("megan.bowen")
    reqs = [
        item("loc", f"/users/{megan}", {"usageLocation": "FR"}, method="PATCH"),
        item("lic", f"/users/{megan}/assignLicense", assign_body([C.SPE_E5]), dependsOn=["loc"]),
        item("bad", f"/users/{megan}", {"usageLocation": "ZZ"}, method="PATCH"),
        item("after-bad", f"/users/{megan}/assignLicense", assign_body([C.ENTRA_P2]), dependsOn=["bad"]),
        item("chain", f"/users/{megan}/assignLicense", assign_body([C.ENTRA_P1]), dependsOn=["after-bad"]),
    ]
    out = by_id(graph.post("/$batch", json={"requests": reqs}))
    assert out["loc"]["status"] == 204 and "body" not in out["loc"]
    assert out["lic"]["status"] == 200 and out["lic"]["body"]["assignedLicenses"][0]["skuId"] == C.SPE_E5
    assert out["bad"]["status"] == 400
    assert out["after-bad"]["status"] == 424 and out["chain"]["status"] == 424
    states = graph.get(f"/users/{megan}", params={"$select": "assignedLicenses"}).json()["assignedLicenses"]
    assert [s["skuId"] for s in states] == [C.SPE_E5]  # the 424 items never ran


def test_answers_come_out_of_order(graph: httpx.Client) -> None:
    reqs = [item(i, f"/users/{upn('adele.vance')}", method="GET") for i in range(20)]
    orders = set()
    for _ in range(3):
        r = graph.post("/$batch", json={"requests": reqs})
        orders.add(tuple(x["id"] for x in r.json()["responses"]))
    assert any(o != tuple(str(i) for i in range(20)) for o in orders)
    assert all(sorted(o, key=int) == [str(i) for i in range(20)] for o in orders)


def test_urls_with_and_without_leading_slash_and_guest_encoding(graph: httpx.Client) -> None:
    reqs = [
        item(1, "users/" + upn("adele.vance") + "?$select=id", method="GET"),
        item(2, "/users/jane.doe_fabrikam.com%23EXT%23@contoso.onmicrosoft.com?$select=userType", method="GET"),
    ]
    out = by_id(graph.post("/$batch", json={"requests": reqs}))
    assert out["1"]["status"] == 200 and out["2"]["body"]["userType"] == "Guest"


def test_each_item_is_throttled_on_its_own(db: Any, info: Any) -> None:
    sb = start(db, write_quota=5, write_window_seconds=100, retry_after_fractional_rate=0,
               retry_after_http_date_rate=0)  # fmt: skip
    try:
        with httpx.Client(base_url=sb.graph_url, headers=sb.auth_headers) as g:
            reqs = [item(i, f"/users/{upn('pradeep.gupta')}", {"jobTitle": f"t{i}"}, method="PATCH") for i in range(12)]
            out = by_id(g.post("/$batch", json={"requests": reqs}))
            statuses = [out[str(i)]["status"] for i in range(12)]
            assert statuses.count(204) == 5 and statuses.count(429) == 7
            throttled = [out[str(i)] for i in range(12) if out[str(i)]["status"] == 429]
            for t in throttled:
                assert int(t["headers"]["Retry-After"]) >= 1
                assert t["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"
                assert t["body"]["error"]["code"] == "TooManyRequests"
            # requests sent while throttled count: later items are told to wait longer
            waits = [int(t["headers"]["Retry-After"]) for t in throttled]
            assert waits == sorted(waits) and waits[-1] > waits[0]
    finally:
        sb.stop()
