"""Groups: listing, members, $ref, and asynchronous group-based licensing into licenseAssignmentStates."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from batch.sandbox import SandboxServer
from batch.sandbox import catalogue as C

from .conftest import start
from .sbtest import assert_graph_error, assign_body, upn

SEL = {"$select": "id,assignedLicenses,licenseAssignmentStates"}


def group_id(g: httpx.Client, name: str) -> str:
    r = g.get("/groups", params={"$filter": f"displayName eq '{name}'"})
    assert r.status_code == 200, r.text
    (grp,) = r.json()["value"]
    assert grp["displayName"] == name
    return str(grp["id"])


def seats(g: httpx.Client, sku: str) -> tuple[int, int]:
    s = next(x for x in g.get("/subscribedSkus").json()["value"] if x["skuId"] == sku)
    return s["prepaidUnits"]["enabled"], s["consumedUnits"]


def states(g: httpx.Client, user: str) -> list[dict[str, Any]]:
    return g.get(f"/users/{user}", params=SEL).json()["licenseAssignmentStates"]


def test_list_groups_and_members(graph: httpx.Client) -> None:
    body = graph.get("/groups").json()
    names = {x["displayName"] for x in body["value"]}
    assert {"Licensing - Microsoft 365 E3", "Licensing - Copilot", "Sales Team"} <= names
    gid = group_id(graph, "Licensing - Microsoft 365 E3")
    grp = graph.get(f"/groups/{gid}", params={"$select": "id,displayName,assignedLicenses"}).json()
    assert grp["assignedLicenses"] == [{"disabledPlans": [], "skuId": C.SPE_E3}]
    url: str | None = f"/groups/{gid}/members?$top=3&$select=id,userPrincipalName"
    members: list[str] = []
    while url:
        page = graph.get(url).json()
        assert all(m["@odata.type"] == "#microsoft.graph.user" for m in page["value"])
        members += [m["userPrincipalName"] for m in page["value"]]
        url = page.get("@odata.nextLink")
    assert upn("nestor.wilke") in members and upn("isaiah.langer") in members
    assert len(members) == len(set(members))
    assert_graph_error(graph.get("/groups/00000000-0000-4000-8000-000000000000"), 404, "Request_ResourceNotFound")


def test_add_member_licenses_the_user_asynchronously(server: SandboxServer, graph: httpx.Client) -> None:
    gid = group_id(graph, "Licensing - Microsoft 365 E3")
    pradeep = graph.get(f"/users/{upn('pradeep.gupta')}").json()["id"]
    enabled, used = seats(graph, C.SPE_E3)
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{pradeep}"}
    r = graph.post(f"/groups/{gid}/members/$ref", json=ref)
    assert r.status_code == 204, r.text
    assert_graph_error(graph.post(f"/groups/{gid}/members/$ref", json=ref), 400, "Request_BadRequest")
    server.process_group_jobs(wait=True)
    (st,) = states(graph, pradeep)
    assert (st["skuId"], st["assignedByGroup"], st["state"], st["error"]) == (C.SPE_E3, gid, "Active", "None")
    assert seats(graph, C.SPE_E3) == (enabled, used + 1)
    # and it cannot be removed directly
    r = graph.post(f"/users/{pradeep}/assignLicense", json=assign_body(remove=[C.SPE_E3]))
    assert_graph_error(r, 400, "Request_BadRequest")
    # leaving the group removes it
    assert graph.delete(f"/groups/{gid}/members/{pradeep}/$ref").status_code == 204
    server.process_group_jobs(wait=True)
    assert states(graph, pradeep) == [] and seats(graph, C.SPE_E3) == (enabled, used)


def test_group_assign_license_202_and_count_violation(server: SandboxServer, graph: httpx.Client) -> None:
    gid = group_id(graph, "Sales Team")
    enabled, used = seats(graph, C.POWERAPPS_PREMIUM)
    assert enabled - used == 1
    r = graph.post(f"/groups/{gid}/assignLicense", json=assign_body([C.POWERAPPS_PREMIUM]))
    assert r.status_code == 202, r.text
    assert r.json()["assignedLicenses"] == [{"disabledPlans": [], "skuId": C.POWERAPPS_PREMIUM}]
    state = graph.get(f"/groups/{gid}", params={"$select": "licenseProcessingState"}).json()
    assert state["licenseProcessingState"] == {"state": "QueuedForProcessing"}
    server.process_group_jobs(wait=True)
    members = [m["id"] for m in graph.get(f"/groups/{gid}/members", params={"$top": "999"}).json()["value"]]
    got = [s for m in members for s in states(graph, m) if s["assignedByGroup"] == gid]
    assert len(got) == len(members) > 2
    assert seats(graph, C.POWERAPPS_PREMIUM) == (enabled, enabled)  # never oversold
    errors = {s["error"] for s in got if s["state"] == "Error"}
    assert "CountViolation" in errors
    assert all(s["error"] == "None" for s in got if s["state"] == "Active")
    done = graph.get(f"/groups/{gid}", params={"$select": "licenseProcessingState"}).json()
    assert done["licenseProcessingState"] == {"state": "ProcessingComplete"}
    # removing the license from the group frees the seats it took
    assert graph.post(f"/groups/{gid}/assignLicense", json=assign_body(remove=[C.POWERAPPS_PREMIUM])).status_code == 202
    server.process_group_jobs(wait=True)
    assert not [s for m in members for s in states(graph, m) if s["assignedByGroup"] == gid]
    assert seats(graph, C.POWERAPPS_PREMIUM) == (enabled, used)


def test_group_licensing_reports_exclusive_plans(server: SandboxServer, graph: httpx.Client) -> None:
    gid = group_id(graph, "Licensing - Audio Conferencing")
    # Henrietta holds Microsoft Teams EEA (MCOIMP, Skype for Business Online Plan 1); Office 365 E3 brings
    # MCOSTANDARD (Plan 2): one Skype for Business family, still refused.
    henrietta = graph.get(f"/users/{upn('henrietta.mueller')}").json()["id"]
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{henrietta}"}
    graph.post(f"/groups/{gid}/members/$ref", json=ref)
    graph.post(f"/groups/{gid}/assignLicense", json=assign_body([C.O365_E3]))
    server.process_group_jobs(wait=True)
    st = next(s for s in states(graph, henrietta) if s["assignedByGroup"] == gid and s["skuId"] == C.O365_E3)
    assert (st["state"], st["error"]) == ("Error", "MutuallyExclusiveViolation")


def test_group_jobs_run_by_themselves(db: Path) -> None:
    with (
        start(db, group_processing_seconds=0.05) as sb,
        httpx.Client(base_url=sb.graph_url, headers=sb.auth_headers) as g,
    ):
        gid = group_id(g, "Licensing - Microsoft 365 E3")
        uid = g.get(f"/users/{upn('pradeep.gupta')}").json()["id"]
        g.post(
            f"/groups/{gid}/members/$ref",
            json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}"},
        )
        for _ in range(200):  # bounded wait, no timing assertion
            if states(g, uid):
                break
            time.sleep(0.02)
        assert [s["skuId"] for s in states(g, uid)] == [C.SPE_E3]
