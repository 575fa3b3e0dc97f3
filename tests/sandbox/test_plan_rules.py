"""Service-plan rules as cloud-facts lists them (refused families, stacking packs, dependencies), a raw '#' in
a $batch url, and group assignments in state Error: over real HTTP on loopback, exact messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from batch.sandbox import SandboxServer
from batch.sandbox import behaviour as B
from batch.sandbox import catalogue as C

from .conftest import start
from .sbtest import assert_graph_error, assign_body, upn

#: Real products (Microsoft's product list, Dec 2025), each trimmed to the one plan a family test needs:
#: (skuId, part number, servicePlanId, servicePlanName).
EXTRA_SKUS: tuple[tuple[str, str, str, str], ...] = (
    ("d17b27af-3f49-4822-99f9-56a661538792", "CRMSTANDARD", "f9646fb2-e3b2-4309-95de-dc4833737456", "CRMSTANDARD"),
    ("906af65a-2970-46d5-9b58-4e9aa50f0657", "CRMPLAN2", "bf36ca64-95c6-4918-9275-eb9f4ce2c04f", "CRMPLAN2"),
    ("2a914830-d700-444a-b73c-e3f31980d833", "M365_F1_GOV", "6a76346d-5d6e-4051-9fe3-ed3f312b5597",
     "RMS_S_ENTERPRISE_GOV"),
    ("b4288abe-01be-47d9-ad20-311d6e83fc24", "INTUNE_A_VL_USGOV_GCCHIGH", "3e170737-c728-4eae-bbb9-3f3360f7184c",
     "INTUNE_A_VL"),
    ("0dab259f-bf13-4952-b7f8-7db8f131b28d", "MCOPSTN1", "4ed3ff63-69d7-4fb7-b984-5aec7f605ca8", "MCOPSTN1"),
    ("d3b4fe1f-9992-4930-8acb-ca6ec609365e", "MCOPSTN2", "5a10155d-f5c1-411a-a8ec-e99aae125390", "MCOPSTN2"),
    ("dab7782a-93b1-4074-8bb1-0e61318bea0b", "SMB_BUSINESS_ESSENTIALS", "41bf139a-4e60-409f-9346-a1361efc6dfb",
     "YAMMER_MIDSIZE"),
    ("e43b5b99-8dfb-405f-9987-dc307f34bcbd", "MCOEV", "4828c8ec-dc2e-4779-b502-87ac9ce28ab7", "MCOEV"),
)  # fmt: skip
SKU = {part: sku for sku, part, _pid, _name in EXTRA_SKUS}


def add_skus(db: Path) -> None:
    """Buy the extra products in the seeded tenant (10 free seats each), before the server starts."""
    conn = sqlite3.connect(db)
    try:
        n = conn.execute("SELECT COALESCE(MAX(ord), 0) FROM skus").fetchone()[0]
        for i, (sku_id, part, pid, name) in enumerate(EXTRA_SKUS, start=1):
            plans = [{"servicePlanId": pid, "servicePlanName": name, "provisioningStatus": "Success",
                      "appliesTo": "User"}]  # fmt: skip
            conn.execute(
                "INSERT INTO skus VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                (sku_id, part, "User", "Enabled", 10, 0, 0, 0, 0, orjson.dumps([sku_id]).decode(),
                 orjson.dumps(plans).decode(), n + i),
            )  # fmt: skip
        conn.commit()
    finally:
        conn.close()


@pytest.fixture
def rules_graph(db: Path) -> Any:
    add_skus(db)
    sb = start(db)
    try:
        with httpx.Client(base_url=sb.graph_url, headers=sb.auth_headers, timeout=30) as g:
            yield g
    finally:
        sb.stop()


def consumed(g: httpx.Client, sku: str) -> int:
    return next(s["consumedUnits"] for s in g.get("/subscribedSkus").json()["value"] if s["skuId"] == sku)


def refused(g: httpx.Client, user: str, add: list[str]) -> str:
    r = g.post(f"/users/{upn(user)}/assignLicense", json=assign_body(add))
    return str(assert_graph_error(r, B.PLAN_RULE_STATUS, B.PLAN_RULE_CODE)["message"])


def exclusive(a: str, b: str) -> str:
    return f"License assignment failed because service plans {a}, {b} are mutually exclusive."


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ([SKU["CRMSTANDARD"]], [SKU["CRMPLAN2"]], exclusive("CRMSTANDARD", "CRMPLAN2")),
        ([C.SPE_E3], [SKU["M365_F1_GOV"]], exclusive("RMS_S_ENTERPRISE", "RMS_S_ENTERPRISE_GOV")),
        ([C.EMS_E3], [SKU["INTUNE_A_VL_USGOV_GCCHIGH"]], exclusive("INTUNE_A", "INTUNE_A_VL")),
        ([C.TEAMS_EEA], [C.O365_E1], exclusive("MCOIMP", "MCOSTANDARD")),
        ([SKU["MCOPSTN1"]], [SKU["MCOPSTN2"]], exclusive("MCOPSTN1", "MCOPSTN2")),
        ([C.O365_E1], [SKU["SMB_BUSINESS_ESSENTIALS"]], exclusive("YAMMER_ENTERPRISE", "YAMMER_MIDSIZE")),
    ],
    ids=["dynamics-crm", "rights-management", "intune", "skype-for-business", "pstn", "yammer"],
)
def test_each_refused_family(rules_graph: httpx.Client, first: list[str], second: list[str], message: str) -> None:
    g = rules_graph
    assert g.post(f"/users/{upn('pradeep.gupta')}/assignLicense", json=assign_body(first)).status_code == 200
    before = consumed(g, second[0])
    assert refused(g, "pradeep.gupta", second) == message
    assert consumed(g, second[0]) == before  # a refused call takes no seat
    licenses = g.get(f"/users/{upn('pradeep.gupta')}", params={"$select": "assignedLicenses"}).json()
    assert [a["skuId"] for a in licenses["assignedLicenses"]] == first


def test_disabling_one_plan_or_replacing_makes_it_legal(rules_graph: httpx.Client) -> None:
    g = rules_graph
    # Henrietta holds Microsoft Teams EEA (MCOIMP): Office 365 E1 brings MCOSTANDARD.
    assert refused(g, "henrietta.mueller", [C.O365_E1]) == exclusive("MCOIMP", "MCOSTANDARD")
    r = g.post(f"/users/{upn('henrietta.mueller')}/assignLicense",
               json=assign_body([C.O365_E1], disabled={C.O365_E1: [C.MCOSTANDARD]}))  # fmt: skip
    assert r.status_code == 200, r.text
    r = g.post(f"/users/{upn('henrietta.mueller')}/assignLicense", json=assign_body([C.SPE_E3], [C.TEAMS_EEA]))
    assert r.status_code == 200, r.text


def test_same_plan_from_two_packs_stacks(rules_graph: httpx.Client) -> None:
    # Microsoft 365 E3 and EMS E3 both carry INTUNE_A and RMS_S_ENTERPRISE: the same plan twice is no conflict.
    r = rules_graph.post(f"/users/{upn('adele.vance')}/assignLicense", json=assign_body([C.EMS_E3]))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("user", "add", "takes"),
    [
        ("adele.vance", C.O365_E1, C.O365_E1),  # E1 on a Microsoft 365 E3 user: Exchange Plan 1 + Plan 2
        ("lynne.robbins", C.O365_E1, C.O365_E1),  # E1 on an E5 user
        ("alex.wilber", C.SPE_E5, C.SPE_E5),  # E5 on an E1 user
        ("diego.siciliani", C.O365_E1, C.O365_E1),  # SHAREPOINTSTANDARD + SHAREPOINTENTERPRISE: accepted
    ],
)
def test_exchange_and_sharepoint_packs_stack(rules_graph: httpx.Client, user: str, add: str, takes: str) -> None:
    g = rules_graph
    before = consumed(g, takes)
    r = g.post(f"/users/{upn(user)}/assignLicense", json=assign_body([add]))
    assert r.status_code == 200, r.text
    assert add in [a["skuId"] for a in r.json()["assignedLicenses"]]
    assert consumed(g, takes) == before + 1  # the second pack still takes a seat


def test_teams_phone_and_audio_conferencing_need_teams_or_skype(rules_graph: httpx.Client) -> None:
    g = rules_graph
    needs = "TEAMS1, MCOSTANDARD, MCOIMP, MCOSTANDARD_MIDMARKET, MCOLITE"
    assert refused(g, "joni.sherman", [SKU["MCOEV"]]) == (
        f"License assignment failed because service plan MCOEV depends on the service plan(s) {needs}."
    )
    assert refused(g, "joni.sherman", [C.AUDIO_CONF]) == (
        f"License assignment failed because service plan MCOMEETADV depends on the service plan(s) {needs}."
    )
    # Microsoft Teams EEA brings TEAMS1: both are accepted once it is in the result
    r = g.post(f"/users/{upn('joni.sherman')}/assignLicense", json=assign_body([C.TEAMS_EEA, SKU["MCOEV"]]))
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------------------ '#' in a $batch url


def test_raw_hash_in_a_batch_url_cuts_the_path(graph: httpx.Client) -> None:
    guest_raw = "jane.doe_fabrikam.com#EXT#@contoso.onmicrosoft.com"
    guest_enc = guest_raw.replace("#", "%23")
    body = {"addLicenses": [{"skuId": C.ENTRA_P1, "disabledPlans": []}], "removeLicenses": []}
    reqs = [
        {"id": "raw-get", "method": "GET", "url": f"/users/{guest_raw}"},
        {"id": "raw-post", "method": "POST", "url": f"/users/{guest_raw}/assignLicense", "body": body,
         "headers": {"Content-Type": "application/json"}},
        {"id": "enc-get", "method": "GET", "url": f"/users/{guest_enc}?$select=userPrincipalName"},
    ]  # fmt: skip
    r = graph.post("/$batch", json={"requests": reqs})
    assert r.status_code == 200
    got = {x["id"]: x for x in r.json()["responses"]}
    for rid in ("raw-get", "raw-post"):
        assert got[rid]["status"] == 404, got[rid]
        err = got[rid]["body"]["error"]
        assert err["code"] == "Request_ResourceNotFound"
        assert err["message"] == B.MSG_RESOURCE_NOT_FOUND.format(id="jane.doe_fabrikam.com")
    assert got["enc-get"]["status"] == 200
    assert got["enc-get"]["body"]["userPrincipalName"] == guest_raw


# --------------------------------------------------------------------------------- group state Error


def test_group_error_gives_nothing_and_takes_no_seat(server: SandboxServer, graph: httpx.Client) -> None:
    g = graph
    gid = next(x["id"] for x in g.get("/groups").json()["value"] if x["displayName"] == "Licensing - Copilot")
    # Grady Archie's Copilot from the group is in CountViolation (the SKU is full).
    sel = {"$select": "id,assignedLicenses,licenseAssignmentStates"}
    grady = g.get(f"/users/{upn('grady.archie')}", params=sel).json()
    err = next(s for s in grady["licenseAssignmentStates"] if s["skuId"] == C.COPILOT)
    assert (err["state"], err["error"], err["assignedByGroup"]) == ("Error", "CountViolation", gid)
    assert C.COPILOT not in [a["skuId"] for a in grady["assignedLicenses"]]
    details = g.get(f"/users/{grady['id']}/licenseDetails").json()["value"]
    assert C.COPILOT not in [d["skuId"] for d in details]
    sku = next(s for s in g.get("/subscribedSkus").json()["value"] if s["skuId"] == C.COPILOT)
    holders = [u for u in g.get("/users", params={"$top": "999", **sel}).json()["value"]
               if C.COPILOT in [a["skuId"] for a in u["assignedLicenses"]]]  # fmt: skip
    assert sku["consumedUnits"] == len(holders)  # the Error assignment takes no seat

    # A mutually-exclusive group assignment: Error, nothing held, no seat; the error is spelt as Graph does.
    henrietta = g.get(f"/users/{upn('henrietta.mueller')}").json()["id"]
    audio = next(x["id"] for x in g.get("/groups").json()["value"]
                 if x["displayName"] == "Licensing - Audio Conferencing")  # fmt: skip
    g.post(f"/groups/{audio}/members/$ref",
           json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{henrietta}"})  # fmt: skip
    assert g.post(f"/groups/{audio}/assignLicense", json=assign_body([C.O365_E1])).status_code == 202
    server.process_group_jobs(wait=True)
    u = g.get(f"/users/{henrietta}", params=sel).json()
    st = next(s for s in u["licenseAssignmentStates"] if s["skuId"] == C.O365_E1)
    assert (st["state"], st["error"]) == ("Error", "MutuallyExclusiveViolation")
    assert [a["skuId"] for a in u["assignedLicenses"]] == [C.TEAMS_EEA, C.AUDIO_CONF]  # not Office 365 E1
    everyone = g.get("/users", params={"$top": "999", **sel}).json()["value"]
    e1_holders = [x for x in everyone if C.O365_E1 in [a["skuId"] for a in x["assignedLicenses"]]]
    assert consumed(g, C.O365_E1) == len(e1_holders)  # the other members got E1; Henrietta's Error took no seat
    assert "Others" not in {s["error"] for x in everyone for s in x["licenseAssignmentStates"]}


def test_group_error_for_an_unknown_sku_is_other(db: Path) -> None:
    from batch.sandbox import directory as D
    from batch.sandbox.store import connect

    conn = connect(db)
    try:
        conn.execute("BEGIN IMMEDIATE")
        gid = conn.execute("SELECT id FROM groups WHERE display_name='Licensing - Copilot'").fetchone()[0]
        user = conn.execute("SELECT * FROM users WHERE upn_lower=?", (upn("pradeep.gupta"),)).fetchone()
        missing = "00000000-0000-4000-8000-000000000001"
        D.reconcile_user_groups(conn, user, gid, [{"skuId": missing, "disabledPlans": []}], D.now_iso(), "US")
        states = orjson.loads(conn.execute("SELECT licenses FROM users WHERE n=?", (user["n"],)).fetchone()[0])
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    assert [(s["state"], s["error"]) for s in states] == [("Error", "Other")]
    assert D.assigned_licenses(states) == []
