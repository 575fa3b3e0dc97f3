"""Seeding is deterministic and realistic; SandboxConfig loads from kwargs, a mapping, TOML and env."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import pytest

from batch.errors import ConfigError
from batch.sandbox import PERSONAS, SandboxConfig, init_tenant, list_users, serve, tenant_info
from batch.sandbox import catalogue as C


def test_same_seed_same_tenant(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    sa = init_tenant(a, users=300, seed=5)
    init_tenant(b, users=300, seed=5)
    sc = init_tenant(c, users=300, seed=6)
    assert list_users(a) == list_users(b)
    assert tenant_info(a) == tenant_info(b)
    assert list_users(a) != list_users(c) and sa.tenant_id != sc.tenant_id


def test_reset_replaces_state(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    init_tenant(db, users=50, seed=1)
    init_tenant(db, users=80, seed=1)
    assert len(list_users(db)) == 80


def test_seed_is_realistic(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    s = init_tenant(db, users=1000, seed=2)
    users = list_users(db)
    assert s.users == len(users) == 1000
    upns = [u["userPrincipalName"] for u in users]
    assert upns[0] == "adele.vance@contoso.onmicrosoft.com" and len(PERSONAS) == 16
    assert len(set(map(str.lower, upns))) == len(upns)
    guests = [u for u in users if u["userType"] == "Guest"]
    assert guests and all("#EXT#@contoso.onmicrosoft.com" in u["userPrincipalName"] for u in guests)
    assert any(not u["usageLocation"] for u in users) and any(not u["accountEnabled"] for u in users)
    assert len({u["department"] for u in users if u["department"]}) >= 8
    states = [st for u in users for st in u["licenseAssignmentStates"]]
    assert any(st["assignedByGroup"] for st in states) and any(st["assignedByGroup"] is None for st in states)
    info = tenant_info(db)
    assert info["environments"]  # several, one Default-{tenantId}
    assert f"Default-{info['tenant_id']}" in info["environments"].values()
    skus = info["skus"]
    assert skus["SPE_E3"]["skuId"] == C.SPE_E3
    assert skus["Microsoft_365_Copilot"]["enabled"] == skus["Microsoft_365_Copilot"]["consumed"]
    assert {p for p, x in skus.items() if x["appliesTo"] == "Company"} == {
        "CDSAICAPACITY", "POWERAPPS_PER_APP_NEW", "Power_Automate_per_process"}  # fmt: skip
    # consumedUnits agrees with the users' active states
    for part, x in skus.items():
        held = sum(1 for u in users if any(st["skuId"] == x["skuId"] and st["state"] == "Active"
                                           for st in u["licenseAssignmentStates"]))  # fmt: skip
        assert held == x["consumed"], part


def test_config_sources(tmp_path: Path) -> None:
    assert SandboxConfig().write_quota == 3000 and SandboxConfig().write_window_seconds == 150
    assert SandboxConfig().resource_units_for(40) == 3500
    assert SandboxConfig().resource_units_for(500) == 5000 and SandboxConfig().resource_units_for(501) == 8000
    cfg = SandboxConfig.from_mapping({"time-scale": 10, "fault_503_rate": "0.1", "db": "ignored.db"})
    assert cfg.time_scale == 10 and cfg.fault_503_rate == 0.1
    env = {"LICENSE_BATCH_SANDBOX_THROTTLING": "off", "LICENSE_BATCH_SANDBOX_WRITE_QUOTA": "10"}
    cfg = SandboxConfig.from_env(env)
    assert cfg.throttling is False and cfg.write_quota == 10
    toml = tmp_path / "license-batch.toml"
    toml.write_text('[sandbox]\ndb = "x.db"\ntime_scale = 5.0\nlatency = 1.0\n', encoding="utf-8")
    cfg = SandboxConfig.load(toml_path=toml, env={"LICENSE_BATCH_SANDBOX_TIME_SCALE": "20"}, fault_seed=9)
    assert (cfg.time_scale, cfg.latency, cfg.fault_seed) == (20.0, 1.0, 9)
    with pytest.raises(ConfigError):
        SandboxConfig.from_mapping({"no_such_thing": 1})
    with pytest.raises(ConfigError):
        SandboxConfig(time_scale=0)
    with pytest.raises(ConfigError):
        SandboxConfig(fault_503_rate=2)


def test_serve_prints_three_lines_then_logs(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    init_tenant(db, users=30)
    out = io.StringIO()
    stop = threading.Event()
    t = threading.Thread(target=serve, args=(db,), kwargs={"out": out, "stop": stop})
    t.start()
    try:
        for _ in range(500):
            if out.getvalue().count("\n") >= 3:
                break
            stop.wait(0.01)
        lines = out.getvalue().splitlines()[:3]
        assert [ln.split(": ", 1)[0] for ln in lines] == ["graph-url", "powerplatform-url", "token"]
        graph = lines[0].split(": ", 1)[1]
        assert graph.endswith("/v1.0")
        token = lines[2].split(": ", 1)[1]
        assert httpx.get(graph + "/subscribedSkus", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        stop.set()
        t.join()
    assert "GET /v1.0/subscribedSkus 200" in out.getvalue()
