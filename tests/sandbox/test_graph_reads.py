"""GET endpoints over real HTTP: shapes, $select, $filter, paging, guests, auth."""

from __future__ import annotations

from typing import Any

import httpx

from batch.config import SANDBOX_DEV_TOKEN
from batch.sandbox import READ_ONLY_TOKEN, SandboxServer, issue_token
from batch.sandbox import catalogue as C

from .sbtest import USERS, assert_graph_error, upn

GUEST = "jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com"


def test_dev_token_is_the_published_one(server: SandboxServer) -> None:
    assert server.token == SANDBOX_DEV_TOKEN
    assert server.graph_url.endswith("/v1.0") and server.graph_url.startswith("http://127.0.0.1:")


def test_no_token_is_401_in_graph_shape(server: SandboxServer) -> None:
    r = httpx.get(server.graph_url + "/users", headers={"client-request-id": "abc"})
    err = assert_graph_error(r, 401, "InvalidAuthenticationToken")
    assert r.headers["client-request-id"] == "abc"
    assert "Access token is empty" in err["message"]
    r = httpx.get(server.graph_url + "/users", headers={"Authorization": "Bearer nonsense"})
    assert_graph_error(r, 401, "InvalidAuthenticationToken")


def test_read_only_token_reads_but_cannot_write(server: SandboxServer) -> None:
    h = {"Authorization": f"Bearer {READ_ONLY_TOKEN}"}
    assert httpx.get(server.graph_url + "/subscribedSkus", headers=h).status_code == 200
    r = httpx.patch(server.graph_url + "/users/" + upn("megan.bowen"), headers=h, json={"usageLocation": "DE"})
    err = assert_graph_error(r, 403, "Authorization_RequestDenied")
    assert err["message"] == "Insufficient privileges to complete the operation."
    r = httpx.post(server.graph_url + "/users/" + upn("adele.vance") + "/assignLicense", headers=h,
                   json={"addLicenses": [], "removeLicenses": []})  # fmt: skip
    assert_graph_error(r, 403, "Authorization_RequestDenied")


def test_issued_token_without_user_read_is_denied(server: SandboxServer) -> None:
    tok = issue_token(server.db, ["LicenseAssignment.Read.All"])
    h = {"Authorization": f"Bearer {tok}"}
    assert httpx.get(server.graph_url + "/subscribedSkus", headers=h).status_code == 200
    assert_graph_error(httpx.get(server.graph_url + "/users", headers=h), 403, "Authorization_RequestDenied")


def test_subscribed_skus_shape(graph: httpx.Client, info: dict[str, Any]) -> None:
    r = graph.get("/subscribedSkus")
    assert r.status_code == 200
    assert r.headers["request-id"] and r.headers["client-request-id"]
    body = r.json()
    assert body["@odata.context"].endswith("/$metadata#subscribedSkus")
    skus = {s["skuPartNumber"]: s for s in body["value"]}
    e3 = skus["SPE_E3"]
    assert e3["skuId"] == C.SPE_E3
    assert e3["id"] == f"{info['tenant_id']}_{C.SPE_E3}"
    assert e3["accountId"] == info["tenant_id"]
    assert e3["appliesTo"] == "User" and e3["capabilityStatus"] == "Enabled"
    assert set(e3["prepaidUnits"]) == {"enabled", "suspended", "warning", "lockedOut"}
    assert e3["prepaidUnits"]["enabled"] - e3["consumedUnits"] == 5  # nearly full
    assert skus["Microsoft_365_Copilot"]["prepaidUnits"]["enabled"] == skus["Microsoft_365_Copilot"]["consumedUnits"]
    assert skus["CDSAICAPACITY"]["appliesTo"] == "Company"
    plan = e3["servicePlans"][0]
    assert set(plan) == {"servicePlanId", "servicePlanName", "provisioningStatus", "appliesTo"}
    assert {"EXCHANGE_S_ENTERPRISE", "TEAMS1", "MCOSTANDARD"} <= {p["servicePlanName"] for p in e3["servicePlans"]}
    assert len(e3["subscriptionIds"]) == 1
    # $select works, $filter is not supported on subscribedSkus
    r = graph.get("/subscribedSkus", params={"$select": "skuId,consumedUnits"})
    assert set(r.json()["value"][0]) == {"skuId", "consumedUnits", "id"}
    assert_graph_error(
        graph.get("/subscribedSkus", params={"$filter": "skuId eq 'x'"}), 400, "Request_UnsupportedQuery"
    )


def test_users_default_properties_and_default_page(graph: httpx.Client) -> None:
    body = graph.get("/users").json()
    assert len(body["value"]) == 100  # Graph's default page
    first = body["value"][0]
    assert set(first) == {"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
                          "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}  # fmt: skip
    assert "$skiptoken=" in body["@odata.nextLink"] and body["@odata.nextLink"].startswith("http://127.0.0.1:")
    assert list(body) == ["@odata.context", "@odata.nextLink", "value"]  # Graph's order: the link before the page


def test_users_paging_with_select_covers_everyone_once(graph: httpx.Client) -> None:
    sel = "id,userPrincipalName,mail,usageLocation,accountEnabled,assignedLicenses,licenseAssignmentStates"
    url: str | None = f"/users?$select={sel}&$top=7"
    ids: list[str] = []
    pages = 0
    while url:
        body = graph.get(url).json()
        pages += 1
        for u in body["value"]:
            assert set(u) == set(sel.split(","))
            ids.append(u["id"])
        url = body.get("@odata.nextLink")
        if url:
            assert "$top=7" in httpx.URL(url).query.decode().replace("%24", "$")
    assert len(ids) == len(set(ids)) == USERS
    assert pages == -(-USERS // 7)


def test_top_bounds(graph: httpx.Client) -> None:
    assert graph.get("/users", params={"$top": "999"}).status_code == 200
    assert_graph_error(graph.get("/users", params={"$top": "1000"}), 400, "Request_UnsupportedQuery")


def test_filters(graph: httpx.Client) -> None:
    def q(f: str) -> list[dict[str, Any]]:
        r = graph.get("/users", params={"$filter": f, "$select": "id,userPrincipalName,department,usageLocation"})
        assert r.status_code == 200, r.text
        return r.json()["value"]

    (adele,) = q(f"userPrincipalName eq '{upn('ADELE.VANCE')}'")
    assert adele["userPrincipalName"] == upn("adele.vance")
    assert q(f"id eq '{adele['id']}'")[0]["id"] == adele["id"]
    assert len(q(f"userPrincipalName in ('{upn('adele.vance')}', '{upn('alex.wilber')}', 'x@y.z')")) == 2
    assert len(q(f"mail eq '{upn('lee.gu')}'")) == 1
    assert q("mail eq 'jane.doe@fabrikam.com'")[0]["userPrincipalName"] == GUEST
    sales = q("department eq 'Sales'")
    assert sales and all(u["department"] == "Sales" for u in sales)
    de = q("usageLocation eq 'DE'")
    assert de and all(u["usageLocation"] == "DE" for u in de)
    assert all(
        u["department"] == "Sales" and u["usageLocation"] == "US"
        for u in q("department eq 'Sales' and usageLocation eq 'US'")
    )
    sixteen = ", ".join(f"'u{i}@x.y'" for i in range(16))
    assert_graph_error(graph.get("/users", params={"$filter": f"mail in ({sixteen})"}), 400, "Request_BadRequest")
    assert_graph_error(graph.get("/users", params={"$filter": "surname gt 'a'"}), 400, "Request_UnsupportedQuery")


def test_get_user_by_id_upn_and_guest(graph: httpx.Client) -> None:
    r = graph.get("/users/" + upn("adele.vance"), params={"$select": "id,usageLocation,userType"})
    assert r.status_code == 200
    u = r.json()
    assert u["@odata.context"].endswith("/$metadata#users(id,usageLocation,userType)/$entity")
    assert graph.get("/users/" + u["id"]).json()["userPrincipalName"] == upn("adele.vance")
    guest = graph.get("/users/" + GUEST.replace("#", "%23"), params={"$select": "id,userType,mail"})
    assert guest.status_code == 200 and guest.json()["userType"] == "Guest"
    # '#' not encoded: everything after it is a fragment, never sent: 404
    raw = httpx.URL(graph.base_url.join("/v1.0/users/").raw_path.decode() + "x")  # noqa: F841 - documents the case
    r = graph.get("/users/jane.doe_fabrikam.com")
    err = assert_graph_error(r, 404, "Request_ResourceNotFound")
    assert err["message"].startswith("Resource 'jane.doe_fabrikam.com' does not exist")


def test_unknown_select_property(graph: httpx.Client) -> None:
    assert_graph_error(graph.get("/users", params={"$select": "id,shoeSize"}), 400, "BadRequest")


def test_license_details(graph: httpx.Client) -> None:
    r = graph.get(f"/users/{upn('diego.siciliani')}/licenseDetails")
    assert r.status_code == 200
    (d,) = r.json()["value"]
    assert d["skuId"] == C.O365_E3 and d["skuPartNumber"] == "ENTERPRISEPACK"
    status = {p["servicePlanName"]: p["provisioningStatus"] for p in d["servicePlans"]}
    assert status["SWAY"] == "Disabled" and status["YAMMER_ENTERPRISE"] == "Disabled" and status["TEAMS1"] == "Success"


def test_seeded_situations(graph: httpx.Client) -> None:
    sel = {"$select": "id,usageLocation,accountEnabled,userType,assignedLicenses,licenseAssignmentStates"}
    megan = graph.get("/users/" + upn("megan.bowen"), params=sel).json()
    assert megan["usageLocation"] is None
    assert graph.get("/users/" + upn("lee.gu"), params=sel).json()["accountEnabled"] is False
    nestor = graph.get("/users/" + upn("nestor.wilke"), params=sel).json()
    (state,) = nestor["licenseAssignmentStates"]
    assert state["assignedByGroup"] and state["state"] == "Active" and state["error"] == "None"
    assert nestor["assignedLicenses"] == [{"disabledPlans": [], "skuId": C.SPE_E3}]
    grady = graph.get("/users/" + upn("grady.archie"), params=sel).json()
    copilot = next(s for s in grady["licenseAssignmentStates"] if s["skuId"] == C.COPILOT)
    assert (copilot["state"], copilot["error"]) == ("Error", "CountViolation")
    assert C.COPILOT not in {a["skuId"] for a in grady["assignedLicenses"]}
