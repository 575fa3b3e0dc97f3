"""End to end over real HTTP: a CSV written here -> read_sheet -> Tenant.snapshot (sandbox on 127.0.0.1)
-> validate -> plan; then the planned writes are sent as one $batch and the tenant is read back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch.config import Limits, Target
from batch.models import OpKind, Plan, RequestStatus, TenantSnapshot, User, Validation
from batch.plan import describe_operations, plan
from batch.sandbox import SandboxConfig, SandboxServer, init_tenant
from batch.sheets import parse_requests, read_sheet
from batch.tenant import Tenant
from batch.validate import validate

D = "contoso.onmicrosoft.com"
GUEST = f"jane.doe_fabrikam.com#EXT#@{D}"
SHEET = f"""User,Action,License,From License,Disabled plans,Usage location
adele.vance@{D},replace,SPE_E5,SPE_E3,SWAY,
megan.bowen@{D},assign,SPE_E5,,,Germany
pradeep.gupta@{D},assign,SPE_E3,,,
nestor.wilke@{D},remove,SPE_E3,,,
isaiah.langer@{D},remove,SPE_E3,,,
lynne.robbins@{D},assign,SPE_E5,,,
diego.siciliani@{D},assign,ENTERPRISEPACK,,TEAMS1,
{GUEST},assign,POWER_BI_PRO,,,
ghost@{D},assign,SPE_E5,,,
lee.gu@{D},remove,SPE_E3,,,
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    db = tmp_path_factory.mktemp("sandbox") / "sandbox.db"
    init_tenant(db, users=60, seed=1)
    with SandboxServer(db, SandboxConfig(latency=0.0)) as sb:
        yield sb


@pytest.fixture(scope="module")
def checked(server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Validation, TenantSnapshot]:
    path = tmp_path_factory.mktemp("sheet") / "wave.csv"
    path.write_text(SHEET, encoding="utf-8")
    sheet = read_sheet(path)
    requests = parse_requests(sheet)
    target = Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)
    with Tenant(target, Limits()) as tenant:
        snap = tenant.snapshot([r.user for r in requests])
    return validate(sheet, requests, snap), snap


def _by_user(v: Validation) -> dict[str, tuple[str, list[str]]]:
    return {c.request.user.split("@")[0]: (c.status.value, [f.code for f in c.findings]) for c in v.requests}


def test_validate_against_the_sandbox(checked: tuple[Validation, TenantSnapshot]) -> None:
    v, snap = checked
    assert snap.requests > 0
    got = _by_user(v)
    assert got["adele.vance"] == ("ready", [])
    assert got["megan.bowen"] == ("ready", ["usage-location-set"])
    assert got["pradeep.gupta"] == ("ready", [])
    assert got["nestor.wilke"] == ("error", ["remove-inherited"])
    assert got["isaiah.langer"] == ("ready", ["remove-still-inherited"])
    assert got["lynne.robbins"] == ("unchanged", ["unchanged"])
    assert got["diego.siciliani"] == ("ready", [])
    assert got["jane.doe_fabrikam.com#EXT#"] == ("ready", ["user-guest"])
    assert got["ghost"] == ("error", ["user-not-found"])
    assert got["lee.gu"] == ("ready", ["user-disabled"])
    nestor = next(c for c in v.requests if c.request.user.startswith("nestor"))
    assert "Licensing - Microsoft 365 E3" in nestor.findings[0].message
    assert not v.wave_refused


@pytest.fixture(scope="module")
def applied(server: SandboxServer, checked: tuple[Validation, TenantSnapshot]) -> tuple[Plan, dict[str, User]]:
    """The plan sent to the sandbox as one $batch (dependsOn by item id), and the users read back."""
    v, _snap = checked
    p = plan(v)
    ids = {op.key: str(i) for i, op in enumerate(p.operations, start=1)}
    items = [
        {
            "id": ids[op.key],
            "method": op.method,
            "url": op.url,
            "body": dict(op.body),
            **({"dependsOn": [ids[op.depends_on]]} if op.depends_on else {}),
        }
        for op in p.operations
    ]
    assert len(items) <= 20
    target = Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)
    with Tenant(target, Limits()) as tenant:

        async def send() -> dict[str, tuple[int, object]]:
            try:
                reply = await tenant.post_batch(items)
                return {k: (r.status, r.body) for k, r in reply.items()}
            finally:
                await tenant.aclose()

        statuses = asyncio.run(send())
        bad = {k: v for k, v in statuses.items() if not 200 <= v[0] < 300}
        assert not bad, bad
        after = tenant.read_users([op.target_id for op in p.operations])
    return p, after


def test_plan_is_accepted_by_the_tenant(
    checked: tuple[Validation, TenantSnapshot], applied: tuple[Plan, dict[str, User]]
) -> None:
    v, snap = checked
    p, after = applied
    assert [op.key for op in plan(v).operations] == [op.key for op in p.operations]  # pure: same plan again
    lines = describe_operations(p)
    assert f"adele.vance@{D}: + SPE_E5 (disabled: SWAY), - SPE_E3" in lines
    assert f"megan.bowen@{D}: + SPE_E5; set usage location DE" in lines
    diego = next(op for op in p.operations if op.target.startswith("diego"))
    # SWAY and YAMMER were disabled by an admin: kept, and TEAMS1 added
    ((_, disabled),) = diego.add
    names = {pl.id: pl.name for s in snap.skus.values() for pl in s.service_plans}
    assert {names[d] for d in disabled} == {"SWAY", "YAMMER_ENTERPRISE", "TEAMS1"}

    for op in p.operations:
        u = after[op.target_id]
        if op.kind is OpKind.ASSIGN_LICENSE:
            assert sorted(u.assigned) == sorted(op.after), op.target
            for sku_id, disabled in op.add:
                d = u.direct(sku_id)
                assert d is not None and d.disabled_plans == frozenset(disabled)
        else:
            assert u.usage_location == op.body["usageLocation"]


def test_revalidating_after_apply_is_unchanged(
    server: SandboxServer, applied: tuple[Plan, dict[str, User]], tmp_path: Path
) -> None:
    """Running the same sheet again after it was applied finds nothing left to do."""
    path = tmp_path / "wave.csv"
    path.write_text(SHEET, encoding="utf-8")
    sheet = read_sheet(path)
    requests = parse_requests(sheet)
    target = Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)
    with Tenant(target, Limits()) as tenant:
        snap = tenant.snapshot([r.user for r in requests])
    v = validate(sheet, requests, snap)
    statuses = {c.request.user.split("@")[0]: c.status for c in v.requests}
    # adele.vance's replace E3 -> E5 already happened: the desired state holds, so it is unchanged too.
    done = ("adele.vance", "megan.bowen", "pradeep.gupta", "lynne.robbins", "diego.siciliani",
            "jane.doe_fabrikam.com#EXT#", "lee.gu")  # fmt: skip
    for who in done:
        assert statuses[who] is RequestStatus.UNCHANGED, who
    assert plan(v).operations == []  # nothing left to send
    # the rows that were errors the first time still are (nothing about them changed)
    assert [statuses[w] for w in ("nestor.wilke", "isaiah.langer", "ghost")] == [RequestStatus.ERROR] * 3
