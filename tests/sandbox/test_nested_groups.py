"""Nested groups: a group as a member of a group (/members lists directoryObjects of mixed types),
transitiveMembers walks the nesting (cycles end), its OData cast is an advanced query, and group-based licensing
reaches direct members only."""

from __future__ import annotations

from typing import Any

import httpx

from batch.sandbox import SandboxServer
from batch.sandbox import catalogue as C

from .sbtest import assert_graph_error
from .test_groups import group_id

ADVANCED = {"ConsistencyLevel": "eventual"}


def ref(object_id: str) -> dict[str, str]:
    return {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}"}


def pages(g: httpx.Client, url: str, params: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    nxt: str | None = url
    first = True
    while nxt:
        r = g.get(nxt, params=params if first else None, headers=headers)
        assert r.status_code == 200, r.text
        out += r.json()["value"]
        nxt, first = r.json().get("@odata.nextLink"), False
    return out


def dept_user_ids(g: httpx.Client, dept: str) -> set[str]:
    return {u["id"] for u in pages(g, "/users", {"$filter": f"department eq '{dept}'", "$select": "id",
                                                  "$top": "999"})}


def test_members_lists_users_and_nested_groups_with_their_types(graph: httpx.Client) -> None:
    sales, marketing = group_id(graph, "Sales Team"), group_id(graph, "Marketing Team")
    direct = {m["id"] for m in pages(graph, f"/groups/{sales}/members", {"$top": "999", "$select": "id"})}
    assert graph.post(f"/groups/{sales}/members/$ref", json=ref(marketing)).status_code == 204
    assert_graph_error(graph.post(f"/groups/{sales}/members/$ref", json=ref(marketing)), 400, "Request_BadRequest")
    assert_graph_error(graph.post(f"/groups/{sales}/members/$ref", json=ref(sales)), 400, "Request_BadRequest")
    got = pages(graph, f"/groups/{sales}/members", {"$top": "3", "$select": "id,userPrincipalName,displayName"})
    assert [m["@odata.type"] for m in got].count("#microsoft.graph.group") == 1
    (grp,) = [m for m in got if m["@odata.type"] == "#microsoft.graph.group"]
    assert grp == {"@odata.type": "#microsoft.graph.group", "id": marketing, "displayName": "Marketing Team"}
    assert got[-1] == grp  # in the order added, across pages of 3
    users = [m for m in got if m["@odata.type"] == "#microsoft.graph.user"]
    assert {m["id"] for m in users} == direct and all(m["userPrincipalName"] for m in users)
    # removing the nested group takes it out of the listing; the users stay
    assert graph.delete(f"/groups/{sales}/members/{marketing}/$ref").status_code == 204
    assert {m["id"] for m in pages(graph, f"/groups/{sales}/members", {"$top": "999"})} == direct


def test_transitive_members_walk_the_nesting_once_and_the_cast_is_an_advanced_query(graph: httpx.Client) -> None:
    sales, marketing, finance = (group_id(graph, n) for n in ("Sales Team", "Marketing Team", "Finance Team"))
    # Sales > Marketing > Finance > Sales: a cycle, and one PATCH binding a group and a user at once
    outsider = next(iter(dept_user_ids(graph, "Legal")))
    r = graph.patch(f"/groups/{sales}", json={"members@odata.bind": [ref(marketing)["@odata.id"],
                                                                     ref(outsider)["@odata.id"]]})
    assert r.status_code == 204, r.text
    assert graph.post(f"/groups/{marketing}/members/$ref", json=ref(finance)).status_code == 204
    assert graph.post(f"/groups/{finance}/members/$ref", json=ref(sales)).status_code == 204
    users_url = f"/groups/{sales}/transitiveMembers/microsoft.graph.user"
    for params, headers in (({"$select": "id"}, ADVANCED), ({"$select": "id", "$count": "true"}, None)):
        r = graph.get(users_url, params=params, headers=headers)
        assert_graph_error(r, 400, "Request_UnsupportedQuery")
        assert "ConsistencyLevel:eventual" in r.json()["error"]["message"]
    want = dept_user_ids(graph, "Sales") | dept_user_ids(graph, "Marketing") | dept_user_ids(graph, "Finance")
    want.add(outsider)
    got = pages(graph, users_url, {"$select": "id,userPrincipalName", "$top": "7", "$count": "true"}, ADVANCED)
    assert [u["id"] for u in got] == sorted({u["id"] for u in got}, key=[u["id"] for u in got].index)  # each once
    assert {u["id"] for u in got} == want and all(u["@odata.type"] == "#microsoft.graph.user" for u in got)
    first = graph.get(users_url, params={"$top": "7", "$count": "true"}, headers=ADVANCED).json()
    assert first["@odata.count"] == len(want)
    assert list(first) == ["@odata.context", "@odata.count", "@odata.nextLink", "value"]  # Graph's order
    # without a cast: the nested groups too (not the group itself, though the cycle comes back to it)
    every = pages(graph, f"/groups/{sales}/transitiveMembers", {"$select": "id,displayName", "$top": "2"})
    groups = [m["id"] for m in every if m["@odata.type"] == "#microsoft.graph.group"]
    assert sorted(groups) == sorted([marketing, finance])
    assert {m["id"] for m in every if m["@odata.type"] == "#microsoft.graph.user"} == want
    r = graph.get(f"/groups/{sales}/transitiveMembers/microsoft.graph.device", params={"$count": "true"},
                  headers=ADVANCED)
    assert_graph_error(r, 400, "Request_UnsupportedQuery")


def test_group_licensing_reaches_direct_members_only(server: SandboxServer, graph: httpx.Client) -> None:
    e3, marketing = group_id(graph, "Licensing - Microsoft 365 E3"), group_id(graph, "Marketing Team")
    direct = {m["id"] for m in pages(graph, f"/groups/{e3}/members", {"$top": "999"})}
    nested_only = dept_user_ids(graph, "Marketing") - direct
    assert nested_only
    assert graph.post(f"/groups/{e3}/members/$ref", json=ref(marketing)).status_code == 204
    # the group's licenses processed again for all its members: still only the direct ones get E3 from it
    r = graph.post(f"/groups/{e3}/assignLicense", json={"addLicenses": [{"skuId": C.SPE_E3, "disabledPlans": []}],
                                                        "removeLicenses": []})
    assert r.status_code == 202, r.text
    server.process_group_jobs(wait=True)
    for uid in nested_only:
        st = graph.get(f"/users/{uid}", params={"$select": "id,licenseAssignmentStates"}).json()
        assert not [s for s in st["licenseAssignmentStates"] if s["assignedByGroup"] == e3], uid
    holders = {m["id"] for m in pages(graph, "/users", {"$select": "id,licenseAssignmentStates", "$top": "999"})
               if any(s["assignedByGroup"] == e3 for s in m["licenseAssignmentStates"])}
    assert holders == direct
