"""Power Platform licensing endpoints over real HTTP: environments, currency reports, allocations on both API
versions, allocationsV2, the environment locked by its group policy, errors, throttling and faults."""

from __future__ import annotations

import re
import sqlite3
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch.sandbox import READ_ONLY_TOKEN, SandboxServer, issue_token, tenant_info
from batch.sandbox.store import ALL_SCOPES

from .conftest import start

V1 = {"api-version": "2022-03-01-preview"}
V2 = {"api-version": "2024-10-01"}
REPORTS = "/licensing/tenantCapacity/currencyReports"


def envs(p: httpx.Client) -> dict[str, dict[str, Any]]:
    return {e["displayName"]: e for e in p.get("/environmentmanagement/environments", params=V2).json()["value"]}


def report(p: httpx.Client) -> dict[str, dict[str, Any]]:
    r = p.get(REPORTS, params={**V2, "includeAllocations": "true"})
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list)
    return {x["currencyType"]: x for x in r.json()}


def allocated(body: dict[str, Any]) -> dict[str, int]:
    return {a["currencyType"]: a["allocated"] for a in body["currencyAllocations"]}


def per_env(env_id: str) -> str:
    return f"/licensing/environments/{env_id}/allocations"


def unlocked_entry(cur: str, amount: int, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"currencyType": cur, "allocated": amount, "autoAllocated": 0, "enforcementRules": rules or []}


# ------------------------------------------------------------------------------------------- reads


def test_environments_paged_default_and_the_locked_one(db: Path, info: dict[str, Any]) -> None:
    with start(db, powerplatform_page_size=2) as sb, httpx.Client(headers=sb.auth_headers) as p:
        url: str | None = sb.powerplatform_url + "/environmentmanagement/environments?api-version=2024-10-01"
        seen: list[dict[str, Any]] = []
        while url:
            body = p.get(url).json()
            seen += body["value"]
            url = body.get("@odata.nextLink")
        assert [e["displayName"] for e in seen] == [
            "Contoso (default)", "Contoso Production", "Contoso Sales EU", "Contoso UAT", "Contoso Dev",
            "Contoso Trial", "Contoso Finance",
        ]  # fmt: skip
        default = next(e for e in seen if e["type"] == "Default")
        assert default["id"] == f"Default-{info['tenant_id']}"
        assert {"id", "displayName", "type", "geo", "azureRegion", "state", "tenantId", "url"} <= set(default)
        assert info["locked_environments"] == [info["environments"]["Contoso Finance"]]


def test_seed_is_stable_for_the_existing_environments(info: dict[str, Any]) -> None:
    # samples name environments by id (seed 1, 120 users here): appending the locked one kept the earlier ids
    assert info["environments"]["Contoso Production"] == "5d0cd9e4-7959-42a8-9d19-07e26d1e121d"
    assert info["environments"]["Contoso Dev"] == "b529e5f5-d3ca-4afb-aeb6-5112d88e5847"


def test_currency_report(pp: httpx.Client) -> None:
    rep = report(pp)
    assert rep["AI"] == {"currencyType": "AI", "purchased": 3_000_000, "allocated": 1_750_000,
                         "consumed": {"unitsConsumed": 412_500, "lastUpdatedDay": "2026-01-04"}}  # fmt: skip
    assert rep["MCSMessages"]["allocated"] == 12_000  # Production 10,000 + Finance (locked) 2,000
    assert "allocated" not in pp.get(REPORTS, params=V2).json()[0]


def test_per_environment_get_on_both_versions(pp: httpx.Client) -> None:
    prod = envs(pp)["Contoso Production"]["id"]
    old = pp.get(per_env(prod), params=V1)
    assert old.status_code == 200
    assert old.json() == {"environmentId": prod, "currencyAllocations": [
        {"currencyType": "AI", "allocated": 1_000_000}, {"currencyType": "AppPass", "allocated": 20},
        {"currencyType": "MCSMessages", "allocated": 10_000}, {"currencyType": "PAUnattendedRPA", "allocated": 2},
        {"currencyType": "PowerAutomatePerProcess", "allocated": 5}]}  # fmt: skip
    new = pp.get(per_env(prod), params=V2)
    assert new.status_code == 200
    assert new.json() == {"environmentId": prod, "currencyAllocations": [
        unlocked_entry("AI", 1_000_000, [{"ruleType": "Alert", "enabled": True}]),
        unlocked_entry("AppPass", 20),
        unlocked_entry("MCSMessages", 10_000, [{"ruleType": "Alert", "enabled": True},
                                               {"ruleType": "PayGo", "enabled": False},
                                               {"ruleType": "TenantPool", "enabled": True}]),
        unlocked_entry("PAUnattendedRPA", 2), unlocked_entry("PowerAutomatePerProcess", 5)]}  # fmt: skip


def test_allocations_by_environment_rules_sit_inside_each_entry(pp: httpx.Client) -> None:
    r = pp.get("/licensing/allocationsByEnvironment", params=V2)
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 7
    for env in body:
        assert set(env) == {"environmentId", "currencyAllocations"}  # nothing beside the entries
        for entry in env["currencyAllocations"]:
            assert set(entry) == {"currencyType", "allocated", "autoAllocated", "enforcementRules"}
    one = pp.get(f"/licensing/allocationsByEnvironment/{envs(pp)['Contoso Sales EU']['id']}", params=V2).json()
    assert one["currencyAllocations"] == [
        unlocked_entry("AI", 500_000, [{"ruleType": "Alert", "enabled": True}, {"ruleType": "Deny", "enabled": False}]),
        unlocked_entry("AppPass", 15),
    ]


# ------------------------------------------------------------------------------------------ writes


def test_per_environment_patch_is_absolute_on_both_versions(pp: httpx.Client) -> None:
    rep = report(pp)
    prod = envs(pp)["Contoso Production"]["id"]
    body = {"environmentId": prod, "currencyAllocations": [{"currencyType": "AppPass", "allocated": 22}]}
    r = pp.patch(per_env(prod), params=V1, json=body)  # Microsoft's sample sends environmentId: accepted
    assert r.status_code == 200, r.text
    assert allocated(r.json())["AppPass"] == 22
    assert set(r.json()["currencyAllocations"][0]) == {"currencyType", "allocated"}
    assert report(pp)["AppPass"]["allocated"] == rep["AppPass"]["allocated"] + 2
    r = pp.patch(per_env(prod), params=V2, json={"currencyAllocations": [{"currencyType": "AppPass", "allocated": 0}]})
    assert r.status_code == 200
    assert unlocked_entry("AppPass", 0) in r.json()["currencyAllocations"]  # the 2024-10-01 shape
    assert report(pp)["AppPass"]["allocated"] == rep["AppPass"]["allocated"] - 20
    # the same value again is accepted (absolute, so a retry is harmless)
    again = {"currencyAllocations": [{"currencyType": "AppPass", "allocated": 0}]}
    assert pp.patch(per_env(prod), params=V1, json=again).status_code == 200


def test_allocations_by_environment_patch_keeps_or_replaces_entry_rules(pp: httpx.Client) -> None:
    prod = envs(pp)["Contoso Production"]["id"]
    url = "/licensing/allocationsByEnvironment"
    r = pp.patch(url, params=V2, json={"environmentId": prod, "currencyAllocations": [
        {"currencyType": "MCSMessages", "allocated": 11_000},  # no rules: the entry keeps its own
        {"currencyType": "AI", "allocated": 900_000, "enforcementRules": [{"ruleType": "Deny", "enabled": True}]},
    ]})  # fmt: skip
    assert r.status_code == 200, r.text
    got = {e["currencyType"]: e for e in r.json()["currencyAllocations"]}
    assert got["MCSMessages"]["allocated"] == 11_000
    assert got["MCSMessages"]["enforcementRules"] == [
        {"ruleType": "Alert", "enabled": True}, {"ruleType": "PayGo", "enabled": False},
        {"ruleType": "TenantPool", "enabled": True}]  # fmt: skip
    assert got["AI"] == unlocked_entry("AI", 900_000, [{"ruleType": "Deny", "enabled": True}])
    assert pp.get(f"{url}/{prod}", params=V2).json() == r.json()
    # autoAllocated is the service's: sent values are ignored
    r = pp.patch(url, params=V2, json={"environmentId": prod, "currencyAllocations": [
        {"currencyType": "AppPass", "allocated": 20, "autoAllocated": 99}]})  # fmt: skip
    assert {e["currencyType"]: e for e in r.json()["currencyAllocations"]}["AppPass"]["autoAllocated"] == 0


def test_allocations_by_environment_patch_errors(pp: httpx.Client) -> None:
    uat = envs(pp)["Contoso UAT"]["id"]
    url = "/licensing/allocationsByEnvironment"
    r = pp.patch(url, params=V2, json={"currencyAllocations": []})
    assert (r.status_code, r.json()) == (400, {"error": {"code": "InvalidRequestBody",
                                                         "message": "environmentId is required."}})  # fmt: skip
    beside = {"environmentId": uat, "currencyAllocations": [{"currencyType": "AI", "allocated": 1000}],
              "enforcementRules": [{"ruleType": "Alert", "enabled": True}]}  # fmt: skip
    r = pp.patch(url, params=V2, json=beside)
    msg = "enforcementRules belong inside each entry of currencyAllocations."
    assert (r.status_code, r.json()) == (400, {"error": {"code": "InvalidRequestBody", "message": msg}})
    bad_rule = {
        "environmentId": uat,
        "currencyAllocations": [
            {"currencyType": "AI", "allocated": 1000, "enforcementRules": [{"ruleType": "Sometimes", "enabled": True}]}
        ],
    }
    r = pp.patch(url, params=V2, json=bad_rule)
    assert (r.status_code, r.json()["error"]["message"]) == (
        400,
        "ruleType must be one of Alert, PayGo, TenantPool, Deny.",
    )
    r = pp.patch(url, params=V1, json={"environmentId": uat, "currencyAllocations": []})
    assert (r.status_code, r.json()) == (400, {"code": "ApiVersionInvalid", "message":
                                         "The specified api version '2022-03-01-preview' is invalid. "
                                         "Supported versions: 2024-10-01."})  # fmt: skip
    assert allocated(pp.get(per_env(uat), params=V1).json())["AI"] == 250_000  # nothing changed


@pytest.mark.parametrize(
    ("value", "status"),
    [(500, 200), (500.0, 200), (0, 200), (-1, 400), (1.5, 400), ("500", 400), (True, 400), (None, 400)],
)
def test_allocation_values_must_be_whole_and_non_negative(pp: httpx.Client, value: Any, status: int) -> None:
    dev = envs(pp)["Contoso Dev"]["id"]
    r = pp.patch(per_env(dev), params=V1, json={"currencyAllocations": [{"currencyType": "AI", "allocated": value}]})
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json() == {"error": {"code": "InvalidRequestBody",
                                      "message": "allocated for 'AI' must be a whole number >= 0."}}  # fmt: skip
    else:
        assert r.json()["currencyAllocations"] == [{"currencyType": "AI", "allocated": int(value)}]


def test_over_allocation_unknown_environment_and_bad_requests(pp: httpx.Client) -> None:
    rep = report(pp)
    dev = envs(pp)["Contoso Dev"]["id"]
    free = rep["AppPass"]["purchased"] - rep["AppPass"]["allocated"]
    assert free == 5
    url = per_env(dev)
    r = pp.patch(url, params=V1, json={"currencyAllocations": [{"currencyType": "AppPass", "allocated": 6}]})
    assert (r.status_code, r.json()) == (400, {"error": {"code": "InsufficientCapacity", "message":
        "Insufficient capacity for currency type 'AppPass': 6 requested, 5 available "
        "(50 purchased, 45 allocated to other environments)."}})  # fmt: skip
    assert report(pp)["AppPass"]["allocated"] == rep["AppPass"]["allocated"]
    # all or nothing: a second currency that fits is not written when one does not
    two = [{"currencyType": "AI", "allocated": 7}, {"currencyType": "AppPass", "allocated": 6}]
    r = pp.patch(url, params=V1, json={"currencyAllocations": two})
    assert r.status_code == 400 and allocated(pp.get(url, params=V1).json()) == {}
    assert pp.patch(url, params=V1, json={"currencyAllocations": [{"currencyType": "AppPass",
                                                                   "allocated": 5}]}).status_code == 200  # fmt: skip
    r = pp.patch(url, params=V1, json={"currencyAllocations": [{"currencyType": "Gold", "allocated": 1}]})
    assert (r.status_code, r.json()) == (400, {"error": {"code": "InvalidCurrencyType",
                                         "message": "The currency type 'Gold' is not valid."}})  # fmt: skip
    r = pp.patch(url, params=V1, json={"currencyAllocations": '[{"currencyType": "AI", "allocated": 1}]'})
    assert (r.status_code, r.json()) == (400, {"error": {"code": "InvalidRequestBody",
                                         "message": "currencyAllocations must be a JSON array."}})  # fmt: skip
    r = pp.patch(url, params=V1, json={"environmentId": "someone-else", "currencyAllocations": []})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "environmentId in the body does not match the environment."
    for r in (pp.get(per_env("not-an-env"), params=V1),
              pp.patch(per_env("not-an-env"), params=V2, json={"currencyAllocations": []})):  # fmt: skip
        assert (r.status_code, r.json()["error"]["code"]) == (404, "EnvironmentNotFound")
        assert r.json()["error"]["message"].startswith("The environment 'not-an-env' could not be found in the tenant")
    for params in ({"api-version": "2019-01-01"}, {}):
        r = pp.get(url, params=params)
        assert (r.status_code, r.json()) == (400, {"code": "ApiVersionInvalid", "message":
            f"The specified api version '{params.get('api-version', '')}' is invalid. "
            "Supported versions: 2022-03-01-preview, 2024-10-01."})  # fmt: skip


def test_locked_environment_refuses_every_write(pp: httpx.Client, info: dict[str, Any]) -> None:
    fin = info["environments"]["Contoso Finance"]
    before = pp.get(per_env(fin), params=V2).json()
    assert before["currencyAllocations"] == [unlocked_entry("MCSMessages", 2_000, [
        {"ruleType": "TenantPool", "enabled": False}, {"ruleType": "Deny", "enabled": True}])]  # fmt: skip
    expected = {"error": {"code": "TenantPoolLockedByPolicy", "message":
                f"The allocation of environment '{fin}' cannot be changed: the policy of its environment group "
                "'Regulated workloads' locks the tenant pool."}}  # fmt: skip
    entry = [{"currencyType": "MCSMessages", "allocated": 2_500}]
    answers = [
        pp.patch(per_env(fin), params=V1, json={"currencyAllocations": entry}),
        pp.patch(per_env(fin), params=V2, json={"environmentId": fin, "currencyAllocations": entry}),
        pp.patch("/licensing/allocationsByEnvironment", params=V2, json={"environmentId": fin,
                                                                          "currencyAllocations": entry}),
        pp.put("/licensing/allocationsV2", params=V2, json={"scope": {"environmentId": fin}, "allocatedEntitlements": [
            {"entitlementId": "MCSMessages", "allocation": {"quantity": 0}}]}),
    ]  # fmt: skip
    for r in answers:
        assert (r.status_code, r.json()) == (409, expected)
        assert r.headers["request-id"]
    assert pp.get(per_env(fin), params=V2).json() == before
    avail = pp.get("/licensing/allocationsV2/availability", params={**V2, "$filter": f"environmentId eq '{fin}'"})
    assert avail.status_code == 200  # reads still work


def test_allocations_v2_put_and_availability_share_state(pp: httpx.Client) -> None:
    uat = envs(pp)["Contoso UAT"]["id"]
    flt = f"environmentId eq '{uat}' and EntitlementId in ('MCSMessages')"
    r = pp.get("/licensing/allocationsV2/availability", params={**V2, "$filter": flt})
    assert (r.status_code, r.json()) == (200, {"entitlementAllocationsAvailable": [
        {"entitlementId": "MCSMessages", "availableQuantity": 13_000}]})  # fmt: skip
    body = {"scope": {"environmentId": uat}, "allocatedEntitlements": [
        {"entitlementId": "MCSMessages", "allocation": {"quantity": 3_000},
         "enforcementRules": [{"ruleType": "TenantPool", "enabled": True}]}]}  # fmt: skip
    r = pp.put("/licensing/allocationsV2", params=V2, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"scope": {"environmentId": uat}, "allocatedEntitlements": [
        {"entitlementId": "AI", "allocation": {"quantity": 250_000}, "enforcementRules": []},
        {"entitlementId": "AppPass", "allocation": {"quantity": 10}, "enforcementRules": []},
        {"entitlementId": "MCSMessages", "allocation": {"quantity": 3_000},
         "enforcementRules": [{"ruleType": "TenantPool", "enabled": True}]}]}  # fmt: skip
    # the same state through the other endpoints
    assert unlocked_entry("MCSMessages", 3_000, [{"ruleType": "TenantPool", "enabled": True}]) in pp.get(
        f"/licensing/allocationsByEnvironment/{uat}", params=V2).json()["currencyAllocations"]  # fmt: skip
    assert report(pp)["MCSMessages"]["allocated"] == 15_000
    flt2 = f"environmentId eq '{uat}' and EntitlementId in ('MCSMessages', 'AI')"
    r = pp.get("/licensing/allocationsV2/availability", params={**V2, "$filter": flt2})
    assert r.json() == {"entitlementAllocationsAvailable": [
        {"entitlementId": "MCSMessages", "availableQuantity": 10_000},
        {"entitlementId": "AI", "availableQuantity": 1_250_000}]}  # fmt: skip
    # more than the pool: refused like the other endpoints
    body["allocatedEntitlements"][0]["allocation"] = {"quantity": 13_001 + 3_000}
    r = pp.put("/licensing/allocationsV2", params=V2, json=body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InsufficientCapacity")
    r = pp.get("/licensing/allocationsV2/availability", params={**V2, "$filter": "EntitlementId eq 'AI'"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidFilter")
    r = pp.get("/licensing/allocationsV2/availability", params={**V2, "$filter": "environmentId eq 'nope'"})
    assert r.status_code == 404
    r = pp.put("/licensing/allocationsV2", params=V2, json={"allocatedEntitlements": []})
    assert (r.status_code, r.json()["error"]["message"]) == (400, "scope.environmentId is required.")


def test_auth(server: SandboxServer) -> None:
    url = server.powerplatform_url + "/licensing/allocationsByEnvironment?api-version=2024-10-01"
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"
    ro = {"Authorization": f"Bearer {READ_ONLY_TOKEN}"}
    assert httpx.get(url, headers=ro).status_code == 200
    r = httpx.patch(url, headers=ro, json={"environmentId": "x", "currencyAllocations": []})
    assert r.status_code == 403 and r.json()["error"]["code"] == "Forbidden"


# ------------------------------------------------------------------------------ throttling, faults


def _pp(sb: SandboxServer, token: str | None = None, **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else sb.auth_headers
    return httpx.Client(base_url=sb.powerplatform_url, headers=headers, **kw)


def test_throttled_per_app_with_request_ids(db: Path) -> None:
    other = issue_token(db, list(ALL_SCOPES))
    sb = start(db, powerplatform_request_quota=2, powerplatform_window_seconds=120,
               retry_after_fractional_rate=0, retry_after_http_date_rate=0)  # fmt: skip
    with sb, _pp(sb) as p, _pp(sb, other) as q:
        url = f"{REPORTS}?api-version=2024-10-01"
        ok = [p.get(url) for _ in range(2)]
        assert [r.status_code for r in ok] == [200, 200]
        r = p.get(url)
        assert (r.status_code, r.json()) == (429, {"error": {"code": "TooManyRequests",
                                                             "message": "Please retry again later."}})  # fmt: skip
        assert re.fullmatch(r"\d+", r.headers["Retry-After"]) and 0 < int(r.headers["Retry-After"]) <= 120
        # writes count against the same quota
        assert p.patch(per_env("x"), params=V1, json={}).status_code == 429
        for resp in (*ok, r):
            assert resp.headers["request-id"] and resp.headers["client-request-id"]
            assert resp.headers["x-ms-correlation-id"] == resp.headers["request-id"]
        assert q.get(url).status_code == 200  # another app has its own quota


def test_throttle_window_and_retry_after_scale_with_time(db: Path) -> None:
    sb = start(db, powerplatform_request_quota=1, powerplatform_window_seconds=30, time_scale=100)
    with sb, _pp(sb) as p:
        url = f"{REPORTS}?api-version=2024-10-01"
        assert p.get(url).status_code == 200
        r = p.get(url)
        assert r.status_code == 429
        assert re.fullmatch(r"\d+\.\d{3}", r.headers["Retry-After"])  # below a second: fractional
        # a 0.3 s window: the wait is for the request that overflowed plus the throttled one (both counted)
        assert 0 < float(r.headers["Retry-After"]) <= 30 / 100 * 2


def test_retry_after_fractional_and_http_date_forms(db: Path) -> None:
    url = f"{REPORTS}?api-version=2024-10-01"
    with start(db, powerplatform_request_quota=1, powerplatform_window_seconds=600,
               retry_after_fractional_rate=1.0) as sb, _pp(sb) as p:  # fmt: skip
        p.get(url)
        assert re.fullmatch(r"\d+\.\d{3}", p.get(url).headers["Retry-After"])
    with start(db, powerplatform_request_quota=1, powerplatform_window_seconds=600,
               retry_after_fractional_rate=0.0, retry_after_http_date_rate=1.0) as sb, _pp(sb) as p:  # fmt: skip
        p.get(url)
        when = parsedate_to_datetime(p.get(url).headers["Retry-After"])
        assert when.timestamp() > time.time()


@pytest.mark.parametrize(("share", "has_retry"), [(1.0, True), (0.0, False)])
def test_fault_503_on_power_platform(db: Path, share: float, has_retry: bool) -> None:
    with start(db, fault_503_rate=1.0, fault_503_retry_after_share=share) as sb, _pp(sb) as p:
        r = p.get("/licensing/allocationsByEnvironment", params=V2)
        assert (r.status_code, r.json()["error"]["code"]) == (503, "ServiceUnavailable")
        assert ("Retry-After" in r.headers) is has_retry
        assert r.headers["request-id"]


def test_fault_504_on_power_platform(db: Path) -> None:
    with start(db, fault_504_rate=1.0) as sb, _pp(sb) as p:
        r = p.get("/licensing/allocationsByEnvironment", params=V2)
        assert (r.status_code, r.json()["error"]["code"]) == (504, "GatewayTimeout")


def test_dropped_power_platform_writes_may_have_taken_effect(db: Path, info: dict[str, Any]) -> None:
    dev = info["environments"]["Contoso Dev"]
    with start(db, fault_drop_rate=1.0, fault_seed=3) as sb:
        for i in range(12):
            with _pp(sb) as p, pytest.raises(httpx.TransportError):
                p.patch(per_env(dev), params=V1, json={"currencyAllocations": [{"currencyType": "AI",
                                                                                "allocated": i + 1}]})  # fmt: skip
    con = sqlite3.connect(db)
    row = con.execute("SELECT allocated FROM allocations WHERE environment_id=? AND currency_type='AI'", (dev,))
    got = row.fetchone()
    con.close()
    assert got is not None and got[0] >= 1  # at least one dropped request had taken effect


def test_slow_power_platform_answers(db: Path) -> None:
    sb = start(db, fault_slow_rate=1.0, slow_seconds=2.0)
    with sb, _pp(sb, timeout=0.2) as p, pytest.raises(httpx.ReadTimeout):
        p.get("/licensing/allocationsByEnvironment", params=V2)


def test_a_tenant_seeded_by_schema_1_is_migrated(db: Path, info: dict[str, Any]) -> None:
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE allocations DROP COLUMN auto_allocated")
    con.execute("DROP TABLE allocation_rules")
    con.execute("DROP TABLE environment_policies")
    con.execute("CREATE TABLE enforcement(environment_id TEXT, rule_type TEXT, enabled INTEGER)")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()
    prod = info["environments"]["Contoso Production"]
    with start(db) as sb, _pp(sb) as p:
        r = p.get(per_env(prod), params=V2)
        assert r.status_code == 200
        assert unlocked_entry("AppPass", 20) in r.json()["currencyAllocations"]
        body = {"currencyAllocations": [{"currencyType": "AppPass", "allocated": 21}]}
        assert p.patch(per_env(prod), params=V2, json=body).status_code == 200
    assert tenant_info(db)["schema_version"] == "2"
