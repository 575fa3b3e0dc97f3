"""rollback: a run with a swap, disabled plans, a usage location and add-on allocations is undone exactly; a user
changed by someone else since the run is left alone and reported; a write whose outcome the run never learnt
(a crash) that did not land needs nothing, one that did is undone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from .conftest import run, run_json, state, upn, xlsx_rows

Sql = Callable[..., list[tuple[object, ...]]]  # the journal_sql fixture (tests/conftest.py)


def wave(workdir: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Licenses"
    for row in (
        ["user", "action", "from license", "license", "disabled plans", "usage location"],
        [upn("adele.vance"), "replace", "SPE_E3", "SPE_E5", "", ""],  # swap
        [upn("diego.siciliani"), "assign", "", "ENTERPRISEPACK", "FORMS_PLAN_E3", ""],  # one more plan disabled
        [upn("lidia.holloway"), "assign", "", "POWER_BI_PRO", "", "DE"],  # usage location US -> DE
        [upn("alex.wilber"), "remove", "", "STANDARDPACK", "", ""],  # a removal
    ):
        ws.append(row)
    ws2 = wb.create_sheet("Add-ons")
    for row2 in (["Environment", "Add-on", "Amount"], ["Contoso UAT", "AI", "300000"], ["Contoso UAT", "AppPass", "5"],
                 ["Contoso Sales EU", "AI", "0"]):
        ws2.append(row2)
    path = workdir / "wave.xlsx"
    wb.save(path)
    return path


def applied_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code, summary, err = run_json(capsys, "apply", str(wave(workdir)))
    assert code == 0, err
    assert summary["applied"] == 7
    return str(summary["run_id"])


def test_rollback_restores_the_exact_prior_state(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = state(capsys, workdir)
    run_id = applied_run(workdir, capsys)
    assert state(capsys, workdir) != before
    code, _out, err = run(capsys, "rollback", run_id, "--dry-run")
    assert code == 0, err
    assert f"Rollback of run {run_id}: 6 target(s) to restore, 0 changed since the run (left alone)." in err
    assert f"  restore {upn('adele.vance')}: + SPE_E3, - SPE_E5" in err.splitlines()
    assert f"  restore {upn('lidia.holloway')}: - POWER_BI_PRO, usage location DE -> US" in err.splitlines()
    assert f"  restore {upn('diego.siciliani')}: ENTERPRISEPACK disabled plans as before" in err.splitlines()
    assert "  restore Contoso UAT: AI 300000 -> 250000, AppPass 5 -> 10" in err.splitlines()
    assert "Dry run: nothing was changed." in err
    assert state(capsys, workdir) != before
    code, summary, err = run_json(capsys, "rollback", run_id)
    assert code == 0, err
    assert (summary["applied"], summary["rows"]) == (6, 6)
    assert state(capsys, workdir) == before
    # a rollback is a run: it has its own journal and results, and can itself be rolled back
    rb_dir = workdir / "reports" / str(summary["run_id"])
    assert (rb_dir / "journal.sqlite").exists() and (rb_dir / "results.xlsx").exists()
    code, summary2, err = run_json(capsys, "rollback", str(summary["run_id"]))
    assert code == 0 and summary2["applied"] == 6, err
    assert state(capsys, workdir)[0] != before[0]
    code, _, err = run(capsys, "resume", str(summary["run_id"]))
    assert code == 0, err


def test_rollback_leaves_a_user_changed_since_the_run_alone(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = state(capsys, workdir)
    run_id = applied_run(workdir, capsys)
    (workdir / "later.csv").write_text(f"user,license,usage location\n{upn('lidia.holloway')},POWER_BI_PRO,FR\n")
    assert run(capsys, "apply", "later.csv")[0] == 0
    code, summary, err = run_json(capsys, "rollback", run_id)
    assert code == 1, err
    assert (summary["applied"], summary["skipped"]) == (5, 1)
    assert f"  changed since the run, left alone: {upn('lidia.holloway')}" in err.splitlines()
    users, addons = state(capsys, workdir)
    assert addons == before[1]
    lidia = [u for u in users if u["userPrincipalName"] == upn("lidia.holloway")]
    assert {u["skuPartNumber"] for u in lidia} == {"SPE_E3", "MCOMEETADV", "POWER_BI_PRO"}
    assert {u["Usage location"] for u in lidia} == {"FR"}
    others = [u for u in users if u["userPrincipalName"] != upn("lidia.holloway")]
    assert others == [u for u in before[0] if u["userPrincipalName"] != upn("lidia.holloway")]


def test_rollback_of_an_unknown_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "rollback", "20990101-000000-dead")
    assert code == 2 and "No run '20990101-000000-dead' under reports." in err


def test_an_interrupted_rollback_is_resumed(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from batch import apply as engine
    from batch import jobs
    from batch.config import load_settings
    from batch.desired.rollback import plan_rollback

    before = state(capsys, workdir)
    run_id = applied_run(workdir, capsys)
    with jobs.open_session(load_settings()) as s:
        rb = plan_rollback(s, run_id)
        # journalled, then stopped before anything was sent (as a crash right after planning leaves it)
        engine.start(rb.plan, run_dir=rb.run_dir, run_id=rb.run_id, tenant_name="sandbox").close()
    assert state(capsys, workdir) != before
    code, summary, err = run_json(capsys, "resume", rb.run_id)
    assert code == 0, err
    assert summary["applied"] == 6
    assert state(capsys, workdir) == before


def test_writes_whose_outcome_was_never_known_and_did_not_land(
    journal_sql: Sql, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash mid-run leaves writes 'sent' or 'unknown'. The run's last assignLicense (alex's removal) never
    reached the tenant: alex is as before, nothing to restore, not 'changed by someone else'. Lidia's new usage
    location landed but her assignLicense did not: only the location is restored. The others are restored."""
    before = state(capsys, workdir)
    run_id = applied_run(workdir, capsys)
    run_dir = workdir / "reports" / run_id
    assert journal_sql(run_dir, "SELECT target_name FROM operation WHERE kind='assignLicense' ORDER BY seq DESC "
                             "LIMIT 1") == [(upn("alex.wilber"),)]
    # the tenant as if those writes never landed (alex keeps STANDARDPACK, lidia never got POWER_BI_PRO) ...
    (workdir / "undo.csv").write_text(f"user,action,license\n{upn('alex.wilber')},assign,STANDARDPACK\n"
                                      f"{upn('lidia.holloway')},remove,POWER_BI_PRO\n")
    assert run(capsys, "apply", "undo.csv")[0] == 0
    # ... and the run never learnt their outcome
    journal_sql(run_dir, "UPDATE operation SET state='sent' WHERE kind='assignLicense' AND target_name=?",
             (upn("alex.wilber"),))
    journal_sql(run_dir, "UPDATE operation SET state='unknown' WHERE target_name=?", (upn("lidia.holloway"),))
    code, summary, err = run_json(capsys, "rollback", run_id)
    assert code == 0, err
    assert (summary["applied"], summary["unchanged"]) == (5, 1)
    assert f"Rollback of run {run_id}: 5 target(s) to restore, 0 changed since the run (left alone)." in err
    assert f"  restore {upn('lidia.holloway')}: usage location DE -> US" in err.splitlines()
    assert not [ln for ln in err.splitlines() if upn("alex.wilber") in ln]
    assert state(capsys, workdir) == before
    results = xlsx_rows(workdir / "reports" / str(summary["run_id"]) / "results.xlsx", "Licenses results")
    alex = next(r for r in results if r["Target"] == upn("alex.wilber"))
    assert (alex["Status"], alex["Message"]) == (
        "unchanged", f"{upn('alex.wilber')} is already as before the run (the run's write did not take effect).")


def test_a_write_whose_outcome_was_never_known_but_landed_is_restored(
    journal_sql: Sql, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(capsys, workdir)
    run_id = applied_run(workdir, capsys)
    journal_sql(workdir / "reports" / run_id, "UPDATE operation SET state='sent' WHERE kind='assignLicense' AND "
             "target_name=?", (upn("alex.wilber"),))
    journal_sql(workdir / "reports" / run_id, "UPDATE operation SET state='unknown' WHERE kind='allocateAddons'")
    code, summary, err = run_json(capsys, "rollback", run_id)
    assert code == 0, err
    assert summary["applied"] == 6
    assert f"  restore {upn('alex.wilber')}: + STANDARDPACK" in err.splitlines()
    assert state(capsys, workdir) == before
