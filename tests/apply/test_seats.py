"""Seats freed by the same sheet: an add that reaches Graph before the removal it relies on is re-sent once.

Against the sandbox over HTTP. Microsoft 365 Copilot is full in the seeded tenant (0 free): a sheet that gives
it to new users while taking it from others is valid (net change 0), but batches run concurrently and the items
of one $batch run in any order, so the adds can be answered "no available licenses" before the removals land.
"""

from __future__ import annotations

from pathlib import Path

from batch.apply import apply
from batch.config import Limits, Target
from batch.models import Outcome
from batch.plan import plan
from batch.sandbox import SandboxServer, init_tenant, list_users, tenant_info
from batch.sheets import parse_requests, read_sheet
from batch.tenant import Tenant
from batch.validate import validate


def _holders_and_others(db: Path) -> tuple[list[str], list[str], str]:
    copilot = tenant_info(db)["skus"]["Microsoft_365_Copilot"]["skuId"]
    users = list_users(db)
    direct = [
        u["userPrincipalName"]
        for u in users
        if any(s["skuId"] == copilot and s["assignedByGroup"] is None for s in u["licenseAssignmentStates"])
        and not any(s["skuId"] == copilot and s["assignedByGroup"] for s in u["licenseAssignmentStates"])
    ]
    others = [
        u["userPrincipalName"]
        for u in users
        if u["usageLocation"] and u["accountEnabled"] and u["userType"] == "Member"
        and not any(s["skuId"] == copilot for s in u["licenseAssignmentStates"])
    ][: len(direct)]
    return direct, others, copilot


def test_adds_wait_for_the_removals_that_free_their_seats(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    init_tenant(db, users=500, seed=1)
    holders, others, copilot = _holders_and_others(db)
    assert len(holders) >= 2 and len(others) == len(holders)
    assert tenant_info(db)["skus"]["Microsoft_365_Copilot"]["consumed"] == tenant_info(db)["skus"][
        "Microsoft_365_Copilot"]["enabled"]  # fmt: skip
    # The adds come first in the sheet, so they are sent first.
    lines = ["User,Action,License"]
    lines += [f"{u},assign,Microsoft_365_Copilot" for u in others]
    lines += [f"{u},remove,Microsoft_365_Copilot" for u in holders]
    sheet_path = tmp_path / "handover.csv"
    sheet_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with SandboxServer(db) as sb:
        target = Target(name="sandbox", graph_url=sb.graph_url, powerplatform_url=sb.powerplatform_url)
        with Tenant(target, Limits()) as tenant:
            sheet = read_sheet(sheet_path)
            requests = parse_requests(sheet)
            v = validate(sheet, requests, tenant.snapshot([r.user for r in requests]))
            assert not v.wave_refused
            p = plan(v)
            result = apply(p, tenant, run_dir=tmp_path / "run", limits=Limits())
            after = tenant.read_users([op.target_id for op in p.operations])

    assert [r.status for r in result.rows] == [Outcome.APPLIED] * len(lines[1:]), [
        (r.row_number, r.status, r.message) for r in result.rows
    ]
    for op in p.operations:
        assert (copilot in after[op.target_id].assigned) == (op.target in others)
    info = tenant_info(db)["skus"]["Microsoft_365_Copilot"]
    assert info["consumed"] == info["enabled"]
