"""Power Platform licensing reads against the sandbox over real HTTP."""

from __future__ import annotations

import pytest

from batch.config import Target
from batch.tenant.powerplatform import PowerPlatform

from .conftest import start_sandbox


def test_environments_allocations_and_reports(tmp_path_factory: pytest.TempPathFactory) -> None:
    server, summary = start_sandbox(tmp_path_factory.mktemp("pp") / "pp.db", 30, 5, powerplatform_page_size=2)
    try:
        target = Target(name="sandbox", graph_url=server.graph_url, powerplatform_url=server.powerplatform_url)
        with PowerPlatform(target) as pp:
            envs = pp.environments()
            assert len(envs) == summary.environments
            assert pp.http.stats.requests == -(-summary.environments // 2)  # paged two at a time
            default = [e for e in envs.values() if e.is_default]
            assert len(default) == 1 and default[0].id == f"Default-{summary.tenant_id}"

            everything = pp.allocations_by_environment()
            assert set(everything) == set(envs)
            for env_id in envs:
                assert pp.allocations(env_id) == everything[env_id]

            reports = pp.currency_reports()
            assert reports and all(r.purchased >= 0 for r in reports.values())
            for ct, r in reports.items():
                allocated = sum(a.get(ct, 0.0) for a in everything.values())
                assert r.allocated == pytest.approx(allocated)
                assert r.available == max(0.0, r.purchased - r.allocated)
    finally:
        server.stop()
