"""The sandbox's group membership face, as cloud-facts describe Graph: PATCH members@odata.bind (at most 20,
all-or-nothing when one is a member already), $ref add and remove, dynamic groups, membershipRule, the
per-member processing rate, and the $filter attributes rule rows use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from batch.sandbox import SandboxConfig, SandboxServer
from batch.sandbox import behaviour as B

from .conftest import Db

PA = "Licensing - Power Apps Premium"
REF = "https://graph.microsoft.com/v1.0/directoryObjects/"


@pytest.fixture
def graph(workdir: Path) -> Iterator[tuple[httpx.Client, SandboxServer]]:
    server = SandboxServer(workdir / "sandbox.db", SandboxConfig(group_processing_seconds=0.0)).start()
    try:
        with httpx.Client(base_url=server.graph_url, headers=server.auth_headers, timeout=30) as c:
            yield c, server
    finally:
        server.stop()


def _free(db: Db, gid: str, n: int) -> list[str]:
    members = db.members(gid)
    users = db.users("user_type='Member' AND usage_location IS NOT NULL")
    return [u["id"] for u in users if u["id"] not in members][:n]


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    return str(r.json()["error"]["message"])


def test_patch_binds_up_to_20_members_all_or_nothing(db: Db, graph: tuple[httpx.Client, SandboxServer]) -> None:
    g, _server = graph
    gid = db.group_id(PA)
    users = _free(db, gid, 22)
    r = g.patch(f"/groups/{gid}", json={"members@odata.bind": [REF + u for u in users[:21]]})
    assert _error(r, 400, "Request_BadRequest") == B.MSG_TOO_MANY_MEMBERS.format(n=21, max=20)
    assert not set(users) & db.members(gid)
    assert g.patch(f"/groups/{gid}", json={"members@odata.bind": [REF + u for u in users[:20]]}).status_code == 204
    assert set(users[:20]) <= db.members(gid)
    r = g.patch(f"/groups/{gid}", json={"members@odata.bind": [REF + users[20], REF + users[0]]})
    assert _error(r, 400, "Request_BadRequest") == (
        "One or more added object references already exist for the following modified properties: 'members'.")
    assert users[20] not in db.members(gid)  # refused as a whole
    # one at a time, and taking out
    assert g.post(f"/groups/{gid}/members/$ref", json={"@odata.id": REF + users[20]}).status_code == 204
    assert g.delete(f"/groups/{gid}/members/{users[20]}/$ref").status_code == 204
    _error(g.delete(f"/groups/{gid}/members/{users[20]}/$ref"), 404, "Request_ResourceNotFound")
    # inside a $batch too: one item, one write
    body = {"requests": [{"id": "1", "method": "PATCH", "url": f"/groups/{gid}",
                          "headers": {"Content-Type": "application/json"},
                          "body": {"members@odata.bind": [REF + users[21]]}},
                         {"id": "2", "method": "DELETE", "url": f"/groups/{gid}/members/{users[1]}/$ref"}]}
    out = {x["id"]: x["status"] for x in g.post("/$batch", json=body).json()["responses"]}
    assert out == {"1": 204, "2": 204}


def test_dynamic_groups_take_no_members_and_show_their_rule(db: Db, graph: tuple[httpx.Client, SandboxServer]) -> None:
    g, _server = graph
    gid = db.add_group("Dynamic Sales", sku="SPE_E5", rule='(user.department -eq "Sales")')
    (u,) = _free(db, gid, 1)
    body = g.get(f"/groups/{gid}", params={"$select": "id,groupTypes,membershipRule,assignedLicenses"}).json()
    assert body["groupTypes"] == ["DynamicMembership"] and body["membershipRule"] == '(user.department -eq "Sales")'
    msg = _error(g.patch(f"/groups/{gid}", json={"members@odata.bind": [REF + u]}), 400, "Request_BadRequest")
    assert msg == B.MSG_DYNAMIC_MEMBERS
    _error(g.post(f"/groups/{gid}/members/$ref", json={"@odata.id": REF + u}), 400, "Request_BadRequest")


def test_members_are_processed_at_the_configured_rate(workdir: Path, db: Db) -> None:
    gid = db.group_id(PA)
    db.set_seats("POWERAPPS_PER_USER", free=50)
    users = _free(db, gid, 10)
    cfg = SandboxConfig(group_processing_seconds=0.0, group_processing_members_per_second=20.0)
    server = SandboxServer(workdir / "sandbox.db", cfg).start()
    try:
        with httpx.Client(base_url=server.graph_url, headers=server.auth_headers, timeout=30) as g:
            t0 = time.monotonic()
            assert g.patch(f"/groups/{gid}", json={"members@odata.bind": [REF + u for u in users]}).status_code == 204
            while not all(db.states(u, gid) for u in users):
                assert time.monotonic() - t0 < 10
                time.sleep(0.02)
            took = time.monotonic() - t0
    finally:
        server.stop()
    assert took >= 9 / 20 * 0.9  # 10 members at 20 per second: the last one about 0.45 s after the first
    assert all(s["state"] == "Active" for u in users for s in db.states(u, gid))


def test_user_filters_for_rule_rows(db: Db, graph: tuple[httpx.Client, SandboxServer]) -> None:
    g, _server = graph
    db.x("UPDATE users SET company_name='Fabrikam', office_location='Berlin', employee_type='Contractor' "
         "WHERE upn_lower LIKE 'adele.vance%'")
    advanced = {"companyName", "officeLocation", "employeeType"}  # eq only in an advanced query (Graph's table)
    for prop, value in (("department", "Legal"), ("companyName", "Fabrikam"), ("officeLocation", "Berlin"),
                        ("employeeType", "Contractor"), ("jobTitle", "Director"), ("country", "Germany")):
        params = {"$filter": f"{prop} eq '{value}'", "$select": "id,userPrincipalName,employeeType"}
        r = g.get("/users", params=params)
        if prop in advanced:
            assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery", (prop, r.text)
            r = g.get("/users", params={**params, "$count": "true"}, headers={"ConsistencyLevel": "eventual"})
            assert r.json()["@odata.count"] == len(r.json()["value"]) >= 1, prop
        assert r.status_code == 200, (prop, r.text)
        assert r.json()["value"], prop


def test_member_of_lists_a_users_direct_groups_paged(db: Db, graph: tuple[httpx.Client, SandboxServer]) -> None:
    """``GET /users/{id}/memberOf``: the user's direct groups as directoryObjects (paged, $select), 404 for a
    user that does not exist."""
    g, _server = graph
    gid = db.group_id(PA)
    uid = next(iter(db.members(gid)))
    other = db.add_group("Rollback test group")
    db.add_member(other, uid)
    mine = {r["group_id"] for r in db.q("SELECT group_id FROM members WHERE user_id=?", (uid,))}
    assert {gid, other} <= mine
    body = g.get(f"/users/{uid}/memberOf", params={"$select": "id"}).json()
    assert body["@odata.context"].endswith("/$metadata#directoryObjects(id)")
    assert {d["id"] for d in body["value"]} == mine
    assert all(d == {"@odata.type": "#microsoft.graph.group", "id": d["id"]} for d in body["value"])
    seen: set[str] = set()
    page = g.get(f"/users/{uid}/memberOf", params={"$select": "id,displayName", "$top": "1"}).json()
    while True:
        assert len(page["value"]) == 1 and "displayName" in page["value"][0]
        seen.add(page["value"][0]["id"])
        if "@odata.nextLink" not in page:
            break
        page = g.get(page["@odata.nextLink"]).json()
    assert seen == mine
    _error(g.get("/users/00000000-0000-0000-0000-000000000001/memberOf"), 404, "Request_ResourceNotFound")
