"""POST /users/{id}/assignLicense and PATCH usageLocation: the real semantics, over HTTP."""

from __future__ import annotations

import httpx

from batch.sandbox import behaviour as B
from batch.sandbox import catalogue as C

from .sbtest import assert_graph_error, assign_body, upn


def consumed(graph: httpx.Client, sku: str) -> tuple[int, int]:
    for s in graph.get("/subscribedSkus").json()["value"]:
        if s["skuId"] == sku:
            return s["prepaidUnits"]["enabled"], s["consumedUnits"]
    raise AssertionError(sku)


def test_assign_success_returns_user_and_counts_a_seat(graph: httpx.Client) -> None:
    enabled, before = consumed(graph, C.SPE_E5)
    r = graph.post(f"/users/{upn('pradeep.gupta')}/assignLicense",
                   json=assign_body([C.SPE_E5], disabled={C.SPE_E5: [C.SWAY]}))  # fmt: skip
    assert r.status_code == 200, r.text
    user = r.json()
    assert user["userPrincipalName"] == upn("pradeep.gupta") and user["id"]
    assert user["assignedLicenses"] == [{"disabledPlans": [C.SWAY], "skuId": C.SPE_E5}]
    assert consumed(graph, C.SPE_E5) == (enabled, before + 1)
    # adding it again replaces disabledPlans and takes no seat
    r = graph.post(f"/users/{upn('pradeep.gupta')}/assignLicense", json=assign_body([C.SPE_E5]))
    assert r.json()["assignedLicenses"] == [{"disabledPlans": [], "skuId": C.SPE_E5}]
    assert consumed(graph, C.SPE_E5) == (enabled, before + 1)
    # removing frees it
    r = graph.post(f"/users/{upn('pradeep.gupta')}/assignLicense", json=assign_body(remove=[C.SPE_E5]))
    assert r.status_code == 200 and r.json()["assignedLicenses"] == []
    assert consumed(graph, C.SPE_E5) == (enabled, before)


def test_atomic_swap_e3_to_e5(graph: httpx.Client) -> None:
    _, e3 = consumed(graph, C.SPE_E3)
    _, e5 = consumed(graph, C.SPE_E5)
    r = graph.post(f"/users/{upn('adele.vance')}/assignLicense", json=assign_body([C.SPE_E5], [C.SPE_E3]))
    assert r.status_code == 200, r.text
    assert [a["skuId"] for a in r.json()["assignedLicenses"]] == [C.SPE_E5]
    assert consumed(graph, C.SPE_E3)[1] == e3 - 1 and consumed(graph, C.SPE_E5)[1] == e5 + 1


def test_both_arrays_required(graph: httpx.Client) -> None:
    url = f"/users/{upn('adele.vance')}/assignLicense"
    err = assert_graph_error(graph.post(url, json={"removeLicenses": []}), 400, "Request_BadRequest")
    assert err["message"] == (
        "One or more parameters of the operation 'assignLicense' are missing from the request payload. "
        "The missing parameters are: addLicenses."
    )
    err = assert_graph_error(graph.post(url, json={"addLicenses": []}), 400, "Request_BadRequest")
    assert err["message"].endswith("The missing parameters are: removeLicenses.")
    assert graph.post(url, json={"addLicenses": [], "removeLicenses": []}).status_code == 200


def test_invalid_usage_location(graph: httpx.Client) -> None:
    url = f"/users/{upn('megan.bowen')}/assignLicense"
    err = assert_graph_error(graph.post(url, json=assign_body([C.SPE_E5])), 400, "Request_BadRequest")
    assert err["message"] == "License assignment cannot be done for user with invalid usage location."
    r = graph.patch(f"/users/{upn('megan.bowen')}", json={"usageLocation": "DE"})
    assert r.status_code == 204 and r.content == b""
    assert r.headers["request-id"]
    assert graph.post(url, json=assign_body([C.SPE_E5])).status_code == 200
    assert (
        graph.get(f"/users/{upn('megan.bowen')}", params={"$select": "usageLocation"}).json()["usageLocation"] == "DE"
    )


def test_patch_rejects_bad_usage_location(graph: httpx.Client) -> None:
    r = graph.patch(f"/users/{upn('megan.bowen')}", json={"usageLocation": "XX"})
    err = assert_graph_error(r, 400, "Request_BadRequest")
    assert "usageLocation" in err["message"]
    assert_graph_error(graph.patch("/users/nobody@contoso.onmicrosoft.com", json={"usageLocation": "DE"}), 404,
                       "Request_ResourceNotFound")  # fmt: skip


def test_no_available_licenses(graph: httpx.Client) -> None:
    enabled, used = consumed(graph, C.COPILOT)
    assert enabled == used
    err = assert_graph_error(
        graph.post(f"/users/{upn('adele.vance')}/assignLicense", json=assign_body([C.COPILOT])),
        400,
        "Request_BadRequest",
    )
    assert err["message"] == f"Subscription with SKU {C.COPILOT} does not have any available licenses."
    assert consumed(graph, C.COPILOT) == (enabled, used)


def test_last_seat(graph: httpx.Client) -> None:
    enabled, used = consumed(graph, C.POWERAPPS_PREMIUM)
    assert enabled - used == 1
    ok = graph.post(f"/users/{upn('adele.vance')}/assignLicense", json=assign_body([C.POWERAPPS_PREMIUM]))
    assert ok.status_code == 200
    late = graph.post(f"/users/{upn('alex.wilber')}/assignLicense", json=assign_body([C.POWERAPPS_PREMIUM]))
    assert_graph_error(late, 400, "Request_BadRequest")
    assert consumed(graph, C.POWERAPPS_PREMIUM) == (enabled, enabled)


def test_sku_not_in_tenant(graph: httpx.Client) -> None:
    unknown = "00000000-1111-2222-3333-444444444444"
    err = assert_graph_error(
        graph.post(f"/users/{upn('adele.vance')}/assignLicense", json=assign_body([unknown])), 400, "Request_BadRequest"
    )
    assert err["message"] == f"License {unknown} does not correspond to a valid company License."


def test_disabled_plan_must_belong_to_the_sku(graph: httpx.Client) -> None:
    r = graph.post(f"/users/{upn('pradeep.gupta')}/assignLicense",
                   json=assign_body([C.POWER_BI_PRO], disabled={C.POWER_BI_PRO: [C.SWAY]}))  # fmt: skip
    err = assert_graph_error(r, 400, "Request_BadRequest")
    assert err["message"] == B.MSG_PLAN_NOT_IN_SKU.format(plan_id=C.SWAY, sku_id=C.POWER_BI_PRO)


def test_remove_not_held_and_inherited(graph: httpx.Client) -> None:
    err = assert_graph_error(
        graph.post(f"/users/{upn('pradeep.gupta')}/assignLicense", json=assign_body(remove=[C.SPE_E3])),
        400, "Request_BadRequest",
    )  # fmt: skip
    assert "User does not have a corresponding license" in err["message"]
    err = assert_graph_error(
        graph.post(f"/users/{upn('nestor.wilke')}/assignLicense", json=assign_body(remove=[C.SPE_E3])),
        400, "Request_BadRequest",
    )  # fmt: skip
    assert "cannot be removed directly" in err["message"]
    # Isaiah holds E3 directly AND through the group: removing the direct one works, the seat stays
    _, used = consumed(graph, C.SPE_E3)
    r = graph.post(f"/users/{upn('isaiah.langer')}/assignLicense", json=assign_body(remove=[C.SPE_E3]))
    assert r.status_code == 200 and [a["skuId"] for a in r.json()["assignedLicenses"]] == [C.SPE_E3]
    assert consumed(graph, C.SPE_E3)[1] == used


def test_exchange_packs_stack_and_each_takes_a_seat(graph: httpx.Client) -> None:
    # Alex holds Office 365 E1 (Exchange Plan 1): adding Office 365 E3 (Plan 2) is accepted since January 2023
    # (concurrent Exchange Online assignments), and both packs take a seat.
    _, e3 = consumed(graph, C.O365_E3)
    _, e1 = consumed(graph, C.O365_E1)
    r = graph.post(f"/users/{upn('alex.wilber')}/assignLicense", json=assign_body([C.O365_E3]))
    assert r.status_code == 200, r.text
    assert [a["skuId"] for a in r.json()["assignedLicenses"]] == [C.O365_E1, C.O365_E3]
    assert consumed(graph, C.O365_E3)[1] == e3 + 1 and consumed(graph, C.O365_E1)[1] == e1


def test_dependency(graph: httpx.Client) -> None:
    # Joni holds only Power BI Pro: Audio Conferencing needs Skype for Business Online / Teams
    r = graph.post(f"/users/{upn('joni.sherman')}/assignLicense", json=assign_body([C.AUDIO_CONF]))
    err = assert_graph_error(r, 400, "Request_BadRequest")
    assert err["message"] == (
        "License assignment failed because service plan MCOMEETADV depends on the service plan(s) "
        "TEAMS1, MCOSTANDARD, MCOIMP, MCOSTANDARD_MIDMARKET, MCOLITE."
    )
    r = graph.post(f"/users/{upn('joni.sherman')}/assignLicense", json=assign_body([C.TEAMS_EEA, C.AUDIO_CONF]))
    assert r.status_code == 200, r.text
    # removing the base while keeping the add-on breaks the dependency
    r = graph.post(f"/users/{upn('joni.sherman')}/assignLicense", json=assign_body(remove=[C.TEAMS_EEA]))
    assert_graph_error(r, 400, "Request_BadRequest")


def test_company_sku_cannot_go_to_a_user(graph: httpx.Client) -> None:
    r = graph.post(f"/users/{upn('adele.vance')}/assignLicense", json=assign_body([C.AI_BUILDER_CAPACITY]))
    err = assert_graph_error(r, 400, "Request_BadRequest")
    assert err["message"] == B.MSG_COMPANY_SKU.format(sku_id=C.AI_BUILDER_CAPACITY)


def test_unknown_user_and_guest_assign(graph: httpx.Client) -> None:
    r = graph.post("/users/nobody@contoso.onmicrosoft.com/assignLicense", json=assign_body([C.SPE_E5]))
    assert_graph_error(r, 404, "Request_ResourceNotFound")
    guest = "jane.doe_fabrikam.com%23EXT%23@contoso.onmicrosoft.com"
    r = graph.post(f"/users/{guest}/assignLicense", json=assign_body([C.ENTRA_P1]))
    assert r.status_code == 200, r.text


def test_malformed_payload(graph: httpx.Client) -> None:
    url = f"/users/{upn('adele.vance')}/assignLicense"
    assert_graph_error(graph.post(url, json={"addLicenses": [{"skuId": "nope"}], "removeLicenses": []}), 400,
                       "Request_BadRequest")  # fmt: skip
    r = graph.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_graph_error(r, 400, "BadRequest")
