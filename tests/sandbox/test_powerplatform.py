"""Power Platform licensing endpoints: environments, currency reports, allocations (both API versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from batch.sandbox import READ_ONLY_TOKEN

from .conftest import start

V1 = {"api-version": "2022-03-01-preview"}
V2 = {"api-version": "2024-10-01"}


def envs(p: httpx.Client) -> dict[str, dict[str, Any]]:
    return {e["displayName"]: e for e in p.get("/environmentmanagement/environments", params=V2).json()["value"]}


def report(p: httpx.Client) -> dict[str, dict[str, Any]]:
    r = p.get("/licensing/tenantCapacity/currencyReports", params={**V2, "includeAllocations": "true"})
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list)
    return {x["currencyType"]: x for x in r.json()}


def test_environments_paged_and_default(db: Path, info: dict[str, Any]) -> None:
    with start(db, powerplatform_page_size=2) as sb, httpx.Client(headers=sb.auth_headers) as p:
        url: str | None = sb.powerplatform_url + "/environmentmanagement/environments?api-version=2024-10-01"
        seen: list[dict[str, Any]] = []
        while url:
            body = p.get(url).json()
            seen += body["value"]
            url = body.get("@odata.nextLink")
        assert len(seen) == 6
        default = next(e for e in seen if e["type"] == "Default")
        assert default["id"] == f"Default-{info['tenant_id']}"
        assert {"id", "displayName", "type", "geo", "azureRegion", "state", "tenantId", "url"} <= set(default)


def test_currency_report_and_allocations(pp: httpx.Client) -> None:
    rep = report(pp)
    ai = rep["AI"]
    assert set(ai) == {"currencyType", "purchased", "allocated", "consumed"}
    assert set(ai["consumed"]) == {"unitsConsumed", "lastUpdatedDay"}
    assert "allocated" not in pp.get("/licensing/tenantCapacity/currencyReports", params=V2).json()[0]
    prod = envs(pp)["Contoso Production"]["id"]
    r = pp.get(f"/licensing/environments/{prod}/allocations", params=V1)
    assert r.status_code == 200
    cur = {a["currencyType"]: a["allocated"] for a in r.json()["currencyAllocations"]}
    assert r.json()["environmentId"] == prod and cur["AI"] == 1_000_000
    # absolute values: setting 400 then 0
    body = {"environmentId": prod, "currencyAllocations": [{"currencyType": "AppPass", "allocated": 22}]}
    r = pp.patch(f"/licensing/environments/{prod}/allocations", params=V1, json=body)
    assert r.status_code == 200, r.text
    assert {a["currencyType"]: a["allocated"] for a in r.json()["currencyAllocations"]}["AppPass"] == 22
    assert report(pp)["AppPass"]["allocated"] == rep["AppPass"]["allocated"] + 2
    body = {"currencyAllocations": [{"currencyType": "AppPass", "allocated": 0}]}
    assert pp.patch(f"/licensing/environments/{prod}/allocations", params=V1, json=body).status_code == 200
    assert report(pp)["AppPass"]["allocated"] == rep["AppPass"]["allocated"] - 20


def test_over_allocation_and_bad_requests(pp: httpx.Client) -> None:
    rep = report(pp)
    dev = envs(pp)["Contoso Dev"]["id"]
    free = rep["AppPass"]["purchased"] - rep["AppPass"]["allocated"]
    url = f"/licensing/environments/{dev}/allocations"
    r = pp.patch(url, params=V1, json={"currencyAllocations": [{"currencyType": "AppPass", "allocated": free + 1}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InsufficientCapacity"
    assert report(pp)["AppPass"]["allocated"] == rep["AppPass"]["allocated"]
    ok = pp.patch(url, params=V1, json={"currencyAllocations": [{"currencyType": "AppPass", "allocated": free}]})
    assert ok.status_code == 200
    r = pp.patch(url, params=V1, json={"currencyAllocations": [{"currencyType": "Gold", "allocated": 1}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidCurrencyType"
    r = pp.patch(url, params=V1, json={"currencyAllocations": '[{"currencyType": "AI", "allocated": 1}]'})
    assert r.status_code == 400 and "error" in r.json()
    r = pp.get("/licensing/environments/not-an-env/allocations", params=V1)
    assert r.status_code == 404 and r.json()["error"]["code"] == "EnvironmentNotFound"
    r = pp.get(url, params={"api-version": "2019-01-01"})
    assert r.status_code == 400 and r.json()["code"] == "ApiVersionInvalid"
    assert pp.get(url).json()["code"] == "ApiVersionInvalid"


def test_allocations_by_environment_v2(pp: httpx.Client) -> None:
    r = pp.get("/licensing/allocationsByEnvironment", params=V2)
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list) and len(body) == 6
    uat = envs(pp)["Contoso UAT"]["id"]
    patch = {"environmentId": uat, "currencyAllocations": [{"currencyType": "AI", "allocated": 1000}],
             "enforcementRules": [{"ruleType": "Alert", "enabled": True}]}  # fmt: skip
    r = pp.patch("/licensing/allocationsByEnvironment", params=V2, json=patch)
    assert r.status_code == 200, r.text
    one = pp.get(f"/licensing/allocationsByEnvironment/{uat}", params=V2).json()
    assert {a["currencyType"]: a["allocated"] for a in one["currencyAllocations"]}["AI"] == 1000
    assert one["enforcementRules"] == [{"ruleType": "Alert", "enabled": True}]
    r = pp.patch("/licensing/allocationsByEnvironment", params=V2, json={"currencyAllocations": []})
    assert r.status_code == 400


def test_auth(server: Any) -> None:
    url = server.powerplatform_url + "/licensing/allocationsByEnvironment?api-version=2024-10-01"
    assert httpx.get(url).status_code == 401
    ro = {"Authorization": f"Bearer {READ_ONLY_TOKEN}"}
    assert httpx.get(url, headers=ro).status_code == 200
    r = httpx.patch(url, headers=ro, json={"environmentId": "x", "currencyAllocations": []})
    assert r.status_code == 403
