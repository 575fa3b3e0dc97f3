"""Power Platform licensing client against the sandbox over real HTTP: reads on both api versions.

Writes are the apply engine's (``kinds/addons/plan.allocation_operation`` sent by ``Tenant.send_powerplatform``):
the changes these read tests need go through that same pair; refusals end to end are in
tests/kinds/test_addons_sandbox.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch.config import Limits, Target
from batch.errors import ServiceError, TenantUnreachableError
from batch.kinds.addons.plan import allocation_operation
from batch.models import Operation
from batch.sandbox import tenant_info
from batch.tenant import Tenant
from batch.tenant.graph import Graph, ItemReply
from batch.tenant.powerplatform import (
    ALLOCATIONS_API_VERSION,
    ALLOCATIONS_V2_API_VERSION,
    CurrencyAllocation,
    EnforcementRule,
    PowerPlatform,
)

from .conftest import start_sandbox

V1, V2 = ALLOCATIONS_API_VERSION, ALLOCATIONS_V2_API_VERSION
BOTH = pytest.mark.parametrize("version", [V1, V2])


def target(server: Any) -> Target:
    return Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)


def send(where: Target, op: Operation) -> ItemReply:
    async def once() -> ItemReply:
        with Tenant(where) as t:
            try:
                return await t.send_powerplatform(op.method, op.url, op.body)
            finally:
                await t.aclose_writers()

    return asyncio.run(once())


class PP:
    """A sandbox (30 users, seed 5) and a client; ``envs``: display name -> id."""

    def __init__(self, db: Path, **config: Any) -> None:
        self.server, self.summary = start_sandbox(db, 30, 5, **config)
        info = tenant_info(db)
        self.envs: dict[str, str] = info["environments"]
        self.locked: list[str] = info["locked_environments"]
        self.client = PowerPlatform(target(self.server), Limits(max_attempts=2))

    def patch(self, env: str, allocations: dict[str, int], api_version: str = V1) -> ItemReply:
        """The apply engine's write: the operation plan builds, sent once by ``Tenant.send_powerplatform``."""
        return send(target(self.server), allocation_operation(self.envs[env], env, {}, allocations, (0,), api_version))

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
def test_reads_agree_after_a_write_on_either_version(pp: PP, version: str) -> None:
    reply = pp.patch("Contoso UAT", {"AI": 300_000, "AppPass": 0}, api_version=version)
    assert reply.status == 200
    uat = pp.envs["Contoso UAT"]
    for v in (V1, V2):
        assert pp.client.allocations(uat, api_version=v) == {"AI": 300_000, "AppPass": 0}
    prod, dev = pp.envs["Contoso Production"], pp.envs["Contoso Dev"]
    many = pp.client.read_allocations([uat, dev, "no-such-environment"], api_version=version)
    assert many == {uat: {"AI": 300_000, "AppPass": 0}, dev: {}}
    assert pp.client.read_allocations([prod], api_version=version)[prod]["AI"] == 1_000_000
    with pytest.raises(ServiceError) as e:
        pp.client.allocations("00000000-0000-4000-8000-000000000000", api_version=version)
    assert e.value.status == 404


def test_allocation_details_read_the_rules_a_v2_write_keeps(pp: PP) -> None:
    prod = pp.envs["Contoso Production"]
    before = pp.client.allocation_details(prod)
    seeded = (EnforcementRule("Alert", True), EnforcementRule("PayGo", False), EnforcementRule("TenantPool", True))
    assert before["MCSMessages"] == CurrencyAllocation("MCSMessages", 10_000, 0, seeded)
    assert pp.patch("Contoso Production", {"MCSMessages": 11_000}, api_version=V2).status == 200
    after = pp.client.allocation_details(prod)
    assert after["MCSMessages"] == CurrencyAllocation("MCSMessages", 11_000, 0, seeded)  # the body sends no rules


def test_availability(pp: PP) -> None:
    uat = pp.envs["Contoso UAT"]
    assert pp.client.availability(uat, ["MCSMessages"]) == {"MCSMessages": 13_000}
    assert pp.patch("Contoso UAT", {"MCSMessages": 3_000}).status == 200
    assert pp.client.availability(uat, ["MCSMessages", "AI"]) == {"MCSMessages": 10_000, "AI": 1_250_000}


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
    closed = Target(name="sandbox", graph_url="http://127.0.0.1:9/v1.0", powerplatform_url="http://127.0.0.1:9")
    with pytest.raises(TenantUnreachableError):
        send(closed, allocation_operation("e", "e", {}, {"AI": 1}, (0,), V1))
