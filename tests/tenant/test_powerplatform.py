"""Power Platform licensing client against the sandbox over real HTTP: reads, and allocation writes on both api
versions (every answer an AllocationReply; transport failures raise like Graph.post_batch)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch.config import Limits, Target
from batch.errors import ServiceError, TenantUnreachableError
from batch.sandbox import tenant_info
from batch.tenant.graph import Graph
from batch.tenant.powerplatform import (
    ALLOCATIONS_API_VERSION,
    ALLOCATIONS_V2_API_VERSION,
    AllocationReply,
    CurrencyAllocation,
    EnforcementRule,
    PowerPlatform,
    build_allocation_patch,
)

from .conftest import start_sandbox

V1, V2 = ALLOCATIONS_API_VERSION, ALLOCATIONS_V2_API_VERSION
BOTH = pytest.mark.parametrize("version", [V1, V2])


def target(server: Any) -> Target:
    return Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)


class PP:
    """A sandbox (30 users, seed 5) and a client; ``envs``: display name -> id."""

    def __init__(self, db: Path, **config: Any) -> None:
        self.server, self.summary = start_sandbox(db, 30, 5, **config)
        info = tenant_info(db)
        self.envs: dict[str, str] = info["environments"]
        self.locked: list[str] = info["locked_environments"]
        self.client = PowerPlatform(target(self.server), Limits(max_attempts=2))

    def patch(self, env: str, allocations: dict[str, int], **kw: Any) -> AllocationReply:
        async def once() -> AllocationReply:
            try:
                return await self.client.apatch_allocations(self.envs[env], allocations, **kw)
            finally:
                await self.client.aclose()

        return asyncio.run(once())

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def pp(tmp_path: Path) -> Iterator[PP]:
    s = PP(tmp_path / "pp.db")
    try:
        yield s
    finally:
        s.close()


def test_environments_allocations_and_reports(tmp_path_factory: pytest.TempPathFactory) -> None:
    server, summary = start_sandbox(tmp_path_factory.mktemp("pp") / "pp.db", 30, 5, powerplatform_page_size=2)
    try:
        with PowerPlatform(target(server)) as pp:
            envs = pp.environments()
            assert len(envs) == summary.environments == 7
            assert pp.http.stats.requests == -(-summary.environments // 2)  # paged two at a time
            default = [e for e in envs.values() if e.is_default]
            assert len(default) == 1 and default[0].id == f"Default-{summary.tenant_id}"

            everything = pp.allocations_by_environment()
            assert set(everything) == set(envs)
            for env_id in envs:
                assert pp.allocations(env_id) == everything[env_id]
                assert pp.allocations(env_id, api_version=V2) == everything[env_id]
                assert all(type(v) is int for v in everything[env_id].values())

            reports = pp.currency_reports()
            assert reports and all(r.purchased >= 0 for r in reports.values())
            for ct, r in reports.items():
                allocated = sum(a.get(ct, 0) for a in everything.values())
                assert r.allocated == pytest.approx(allocated)
                assert r.available == max(0.0, r.purchased - r.allocated)
    finally:
        server.stop()


@BOTH
def test_patch_is_absolute_and_read_back_agrees(pp: PP, version: str) -> None:
    reply = pp.patch("Contoso UAT", {"AI": 300_000, "AppPass": 0}, api_version=version)
    assert isinstance(reply, AllocationReply)
    assert (reply.status, reply.ok, reply.error_code, reply.error_message) == (200, True, "", "")
    assert reply.retry_after is None and reply.request_id
    assert reply.allocations == {"AI": 300_000, "AppPass": 0}  # the whole environment, as the service holds it
    uat = pp.envs["Contoso UAT"]
    for v in (V1, V2):
        assert pp.client.allocations(uat, api_version=v) == {"AI": 300_000, "AppPass": 0}
    again = pp.patch("Contoso UAT", {"AI": 300_000, "AppPass": 0}, api_version=version)
    assert again.status == 200 and again.allocations == reply.allocations  # sending it twice changes nothing
    prod, dev = pp.envs["Contoso Production"], pp.envs["Contoso Dev"]
    many = pp.client.read_allocations([uat, dev, "no-such-environment"], api_version=version)
    assert many == {uat: {"AI": 300_000, "AppPass": 0}, dev: {}}
    assert pp.client.read_allocations([prod], api_version=version)[prod]["AI"] == 1_000_000


def test_v2_patch_keeps_the_rules_of_the_entries_it_changes(pp: PP) -> None:
    prod = pp.envs["Contoso Production"]
    before = pp.client.allocation_details(prod)
    seeded = (EnforcementRule("Alert", True), EnforcementRule("PayGo", False), EnforcementRule("TenantPool", True))
    assert before["MCSMessages"] == CurrencyAllocation("MCSMessages", 10_000, 0, seeded)
    method, url, body = build_allocation_patch(prod, {"MCSMessages": 11_000}, api_version=V2)
    assert (method, url) == ("PATCH", "/licensing/allocationsByEnvironment?api-version=2024-10-01")
    assert body == (
        b'{"environmentId":"' + prod.encode() + b'","currencyAllocations":[{"currencyType":"MCSMessages",'
        b'"allocated":11000}]}'
    )
    assert pp.patch("Contoso Production", {"MCSMessages": 11_000}, api_version=V2).status == 200
    after = pp.client.allocation_details(prod)
    assert after["MCSMessages"] == CurrencyAllocation("MCSMessages", 11_000, 0, before["MCSMessages"].enforcement_rules)
    rules = {"AI": [EnforcementRule("Deny", True)]}
    assert pp.patch("Contoso Production", {"AI": 1_000_000}, api_version=V2, enforcement_rules=rules).ok
    assert pp.client.allocation_details(prod)["AI"].enforcement_rules == (EnforcementRule("Deny", True),)


def test_v1_body_and_argument_checks() -> None:
    method, url, body = build_allocation_patch("env/1", {"AI": 5})
    assert (method, url, body) == (
        "PATCH",
        "/licensing/environments/env%2F1/allocations?api-version=2022-03-01-preview",
        b'{"currencyAllocations":[{"currencyType":"AI","allocated":5}]}',
    )
    with pytest.raises(ValueError, match="whole number >= 0"):
        build_allocation_patch("e", {"AI": -1})
    with pytest.raises(ValueError, match="whole number >= 0"):
        build_allocation_patch("e", {"AI": 1.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="No allocation"):
        build_allocation_patch("e", {})
    with pytest.raises(ValueError, match="Unsupported allocations api-version"):
        build_allocation_patch("e", {"AI": 1}, api_version="2019-01-01")
    with pytest.raises(ValueError, match="need api-version 2024-10-01"):
        build_allocation_patch("e", {"AI": 1}, enforcement_rules={"AI": [EnforcementRule("Alert", True)]})


@BOTH
def test_refusals_come_back_as_replies(pp: PP, version: str) -> None:
    over = pp.patch("Contoso Dev", {"AppPass": 6}, api_version=version)  # 5 AppPass free in the seed
    assert (over.status, over.ok, over.error_code) == (400, False, "InsufficientCapacity")
    assert over.error_message == (
        "Insufficient capacity for currency type 'AppPass': 6 requested, 5 available "
        "(50 purchased, 45 allocated to other environments)."
    )
    assert over.allocations is None and over.retry_after is None and over.request_id
    bad = pp.patch("Contoso Dev", {"Gold": 1}, api_version=version)
    assert (bad.status, bad.error_code, bad.error_message) == (
        400, "InvalidCurrencyType", "The currency type 'Gold' is not valid.")  # fmt: skip
    pp.envs["ghost"] = "00000000-0000-4000-8000-000000000000"
    ghost = pp.patch("ghost", {"AI": 1}, api_version=version)
    assert (ghost.status, ghost.error_code) == (404, "EnvironmentNotFound")
    with pytest.raises(ServiceError) as e:
        pp.client.allocations(pp.envs["ghost"], api_version=version)
    assert e.value.status == 404


@BOTH
def test_locked_environment(pp: PP, version: str) -> None:
    fin = pp.envs["Contoso Finance"]
    assert pp.locked == [fin]
    reply = pp.patch("Contoso Finance", {"MCSMessages": 2_500}, api_version=version)
    assert (reply.status, reply.error_code) == (409, "TenantPoolLockedByPolicy")
    assert reply.error_message == (
        f"The allocation of environment '{fin}' cannot be changed: the policy of its environment group "
        "'Regulated workloads' locks the tenant pool."
    )
    assert pp.client.allocations(fin, api_version=version) == {"MCSMessages": 2_000}


def test_availability(pp: PP) -> None:
    uat = pp.envs["Contoso UAT"]
    assert pp.client.availability(uat, ["MCSMessages"]) == {"MCSMessages": 13_000}
    assert pp.patch("Contoso UAT", {"MCSMessages": 3_000}).ok
    assert pp.client.availability(uat, ["MCSMessages", "AI"]) == {"MCSMessages": 10_000, "AI": 1_250_000}


def test_429_comes_back_with_retry_after(tmp_path: Path) -> None:
    s = PP(tmp_path / "pp.db", powerplatform_request_quota=1, powerplatform_window_seconds=600,
           retry_after_fractional_rate=1.0)  # fmt: skip
    try:
        assert s.patch("Contoso UAT", {"AI": 1}).status == 200
        reply = s.patch("Contoso UAT", {"AI": 2}, api_version=V2)
        assert (reply.status, reply.ok, reply.error_code, reply.error_message) == (
            429, False, "TooManyRequests", "Please retry again later.")  # fmt: skip
        assert reply.retry_after is not None and 0 < reply.retry_after <= 1200 and reply.request_id
        assert reply.allocations is None
        assert s.client.http.stats.throttled == 1
    finally:
        s.close()


def test_503_comes_back_with_retry_after(tmp_path: Path) -> None:
    s = PP(tmp_path / "pp.db", fault_503_rate=1.0, fault_503_retry_after_share=1.0)
    try:
        reply = s.patch("Contoso UAT", {"AI": 1})
        assert (reply.status, reply.error_code) == (503, "ServiceUnavailable")
        assert reply.retry_after is not None and reply.retry_after > 0
    finally:
        s.close()


def test_blocking_wrapper(pp: PP) -> None:
    reply = pp.client.patch_allocations(pp.envs["Contoso Dev"], {"AppPass": 5}, api_version=V2)
    assert reply.status == 200 and reply.allocations == {"AppPass": 5}


def test_transport_failures_raise_like_post_batch(tmp_path: Path) -> None:
    s = PP(tmp_path / "pp.db", fault_drop_rate=1.0, fault_seed=1)
    try:
        with pytest.raises(TenantUnreachableError):
            s.patch("Contoso UAT", {"AI": 1})
        graph = Graph(s.client.http)  # the same boundary: a dropped $batch raises the same error

        async def batch() -> object:
            try:
                return await graph.post_batch([{"id": "1", "method": "GET", "url": "/subscribedSkus"}])
            finally:
                await s.client.aclose()

        with pytest.raises(TenantUnreachableError):
            asyncio.run(batch())
    finally:
        s.close()
    closed = PowerPlatform(Target(name="sandbox", graph_url="http://127.0.0.1:9/v1.0",
                                  powerplatform_url="http://127.0.0.1:9"))  # fmt: skip
    try:
        with pytest.raises(TenantUnreachableError):
            closed.patch_allocations("e", {"AI": 1})
    finally:
        closed.close()
