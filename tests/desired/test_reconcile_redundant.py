"""reconcile's redundant packs against the sandbox: validation's rule (enabled plans and tiers) on what users hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import read_csv, run, run_json, upn, write_csv


def test_redundant_packs_follow_the_enabled_plans_and_count_the_seats(workdir: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # three users holding Microsoft 365 E3 only, directly, get a second pack
    sheet = write_csv(workdir / "give.csv", [
        {"User": upn("adele.vance"), "License": "SPE_E5", "Disabled plans": ""},  # E3 adds nothing to E5
        {"User": upn("lee.gu"), "License": "SPE_E5", "Disabled plans": "EXCHANGE_S_ENTERPRISE"},  # E3 has the mailbox
        {"User": upn("sanne.wilson"), "License": "EMS", "Disabled plans": ""},  # EMS adds nothing to E3
    ])
    code, _, err = run(capsys, "apply", str(sheet))
    assert code == 0, err
    names = {upn(n) for n in ("adele.vance", "lee.gu", "sanne.wilson")}
    assert run(capsys, "export", "users", "-o", "now.csv")[0] == 0
    rows = [r for r in read_csv(workdir / "now.csv") if r["userPrincipalName"] in names]
    assert sorted((r["userPrincipalName"], r["skuPartNumber"], r["Disabled plans"]) for r in rows) == [
        (upn("adele.vance"), "SPE_E3", ""), (upn("adele.vance"), "SPE_E5", ""),
        (upn("lee.gu"), "SPE_E3", ""), (upn("lee.gu"), "SPE_E5", "EXCHANGE_S_ENTERPRISE"),
        (upn("sanne.wilson"), "EMS", ""), (upn("sanne.wilson"), "SPE_E3", "")]
    write_csv(workdir / "wanted.csv", rows)

    code, summary, err = run_json(capsys, "reconcile", "wanted.csv")
    assert code == 0, err  # advice only: no drift
    assert summary["kinds"] == {"redundant": 2}
    assert summary["redundant_seats"] == {"EMS": 1, "SPE_E3": 1}
    lines = err.splitlines()
    assert f"  redundant         {upn('adele.vance')}: SPE_E3 adds nothing next to SPE_E5: removing it frees 1 seat  " \
           "[advice]" in lines, err
    assert f"  redundant         {upn('sanne.wilson')}: EMS adds nothing next to SPE_E3: removing it frees 1 seat  " \
           "[advice]" in lines, err
    assert upn("lee.gu") not in err  # E5 without Exchange Online: E3's mailbox is not redundant
    assert "  EMS: 1 seat(s) held as redundant packs could be freed" in lines
    assert "  SPE_E3: 1 seat(s) held as redundant packs could be freed" in lines
