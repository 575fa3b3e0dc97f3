"""Environment add-ons end to end against the sandbox over real HTTP: every finding, apply (faults and
throttling on), both endpoint versions, a mixed workbook as one run, resume after a kill, and `capacity`."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batch import jobs
from batch.config import load_settings
from batch.kinds.addons.checks import FINDINGS as ADDON_FINDINGS
from batch.kinds.addons.plan import allocation_operation
from batch.kinds.capacity import CAPACITY_FINDINGS
from batch.models import Outcome, RequestStatus
from batch.sandbox import SandboxConfig, SandboxServer, init_tenant, tenant_info
from batch.tenant import Tenant

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("addons") / "template.db"
    init_tenant(db, users=60, seed=1)
    return db


@pytest.fixture
def db(seeded: Path, tmp_path: Path) -> Path:
    """A fresh copy of the seeded tenant for each test (runs change allocations)."""
    copy = tmp_path / "sandbox.db"
    src = sqlite3.connect(seeded)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    dst.close()
    return copy


@pytest.fixture
def server(db: Path) -> Iterator[SandboxServer]:
    with SandboxServer(db, SandboxConfig(time_scale=20)) as sb:
        yield sb


def settings_for(sb: SandboxServer, tmp_path: Path, **env: str) -> Any:
    return load_settings(graph_url=sb.graph_url, powerplatform_url=sb.powerplatform_url,
                         report_dir=tmp_path / "reports", env={"XDG_CACHE_HOME": str(tmp_path / "cache"), **env})


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def allocations(sb: SandboxServer) -> dict[str, dict[str, int]]:
    with Tenant(settings_target(sb)) as t:
        envs = t.powerplatform.environments()
        got = t.read_allocations(list(envs))
    names = {e.id: e.display_name for e in envs.values()}
    return {names[k]: v for k, v in got.items()}


def settings_target(sb: SandboxServer) -> Any:
    from batch.config import Target

    return Target(name="sandbox", graph_url=sb.graph_url, powerplatform_url=sb.powerplatform_url)


# --------------------------------------------------------------------------------------------- findings

ROWS = [
    # environment, add-on, amount, priority, expected status, expected codes
    ("Contoso Production", "AI Builder credits", "+1000", "", "ready", ()),
    ("", "AI", "5", "", "error", ("environment-missing",)),
    ("Contoso Dev", "", "5", "", "error", ("addon-missing",)),
    ("Contoso Dev", "AI", "", "", "error", ("amount-missing",)),
    ("Contoso Dev", "AI", "12.5", "", "error", ("amount-not-whole",)),
    ("Contoso Trial", "app passes", "1", "soon", "ready", ("priority-invalid",)),
    ("Contoso Marketing", "AI", "5", "", "error", ("environment-unknown",)),
    ("Twins", "AI", "5", "", "error", ("environment-ambiguous",)),
    ("Contoso Dev", "AI Bilder credits", "5", "", "error", ("addon-unknown",)),
    ("Contoso Dev", "Virtual agent conversations", "5", "", "error", ("addon-not-in-tenant",)),
    ("Contoso UAT", "AI", "-999999999", "", "error", ("amount-negative",)),
    ("Contoso Sales EU", "AppPass", "15", "", "unchanged", ("unchanged",)),
    ("Contoso Dev", "Copilot credits", "100", "", "ready", ()),
    ("Contoso Dev", "Copilot credits", "100", "", "error", ("duplicate-row",)),
    ("Contoso UAT", "Copilot credits", "100", "", "error", ("conflicting-rows",)),
    ("Contoso UAT", "Copilot credits", "200", "", "error", ("conflicting-rows",)),
    ("Contoso (default)", "Power Automate per process", "9", "2", "over capacity", ("capacity-shortfall",)),
]


def test_every_addon_finding_with_its_message(db: Path, tmp_path: Path) -> None:
    con = sqlite3.connect(db)
    cols = [r[1] for r in con.execute("PRAGMA table_info(environments)")]
    con.close()
    # two environments called "Twins" (case differs): the name is ambiguous
    con = sqlite3.connect(db)
    with con:
        keep = ", ".join(c for c in cols if c not in ("n", "id", "display_name"))
        for k, name in enumerate(("Twins", "twins")):
            con.execute(f"INSERT INTO environments (id, display_name, {keep}) SELECT 'twin-{k}-' || id, ?, {keep}"
                        " FROM environments WHERE display_name = 'Contoso Dev'", (name,))
    con.close()
    sheet = write_csv(tmp_path / "addons.csv", ["Environment", "Add-on", "Amount", "Priority"],
                      [list(r[:4]) for r in ROWS])
    with SandboxServer(db, SandboxConfig(time_scale=20)) as sb, jobs.open_session(settings_for(sb, tmp_path)) as s:
        stop = jobs.check_file(s, sheet)
        partial = jobs.check_file(s, sheet, on_shortfall="partial")
    got = [(c.status.value, tuple(f.code for f in c.findings)) for c in stop.requests]
    assert got == [(r[4], r[5]) for r in ROWS]
    assert stop.wave_refused
    by_code = {f.code: f for c in stop.requests for f in c.findings}
    twins = by_code["environment-ambiguous"]
    assert twins.message.startswith("2 environments are called 'Twins': twin-0-") and twins.column == "Environment"
    assert twins.fix == "Give the environment's id instead of its name."
    assert by_code["addon-unknown"].message == ("'AI Bilder credits' is not a known add-on. Did you mean 'AI Builder "
                                                "credits' or 'Copilot credits'?")
    assert by_code["addon-unknown"].row == 10 and by_code["addon-unknown"].column == "Add-on"
    assert by_code["amount-negative"].message.startswith("Contoso UAT (")
    assert by_code["amount-negative"].message.endswith("holds 250000 AI Builder credits (AI); -999999999 would "
                                                       "leave -999749999.")
    assert by_code["duplicate-row"].message == "Row 14 already asks the same (100) of Copilot credits (MCSMessages) " \
                                               f"for {_label(stop, 'Contoso Dev')}."
    short = by_code["capacity-shortfall"]
    assert short.message == ("Power Automate per process is short: 10 purchased, 5 allocated to environments this "
                             "sheet leaves alone, this sheet asks 9 for the environments it names: short by 4. "
                             "Nothing in this wave will be applied.")
    # partial: the over-allocation alone is skipped, the rest stays ready
    p_codes = [tuple(f.code for f in c.findings) for c in partial.requests]
    assert p_codes[-1] == ("over-capacity",) and not partial.wave_refused
    assert partial.requests[0].status is RequestStatus.READY
    seen = {f.code for v in (stop, partial) for c in v.requests for f in c.findings}
    assert seen == set(ADDON_FINDINGS) | set(CAPACITY_FINDINGS), sorted((set(ADDON_FINDINGS) |
                                                                          set(CAPACITY_FINDINGS)) ^ seen)


def _label(v: Any, name: str) -> str:
    env = next(e for e in v.snapshot.environments.values() if e.display_name == name)
    return f"{name} ({env.id})"


# ------------------------------------------------------------------------------------------------ apply


def test_apply_sets_absolute_allocations_one_request_per_environment(server: SandboxServer, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"], [
        ["Contoso Production", "AI Builder credits", "+1000"],
        ["Contoso Production", "app passes", "-5"],
        ["Contoso UAT", "AI", "0"],
        ["Contoso Trial", "Power Pages authenticated users", "40"],
    ])
    before = allocations(server)
    with jobs.open_session(settings_for(server, tmp_path)) as s:
        prepared = jobs.plan_file(s, sheet)
        ops = prepared.plan.operations
        assert [(o.target, o.method) for o in ops] == [("Contoso Production", "PATCH"), ("Contoso UAT", "PATCH"),
                                                      ("Contoso Trial", "PATCH")]
        assert ops[0].body["currencyAllocations"] == [{"currencyType": "AI", "allocated": 1001000},
                                                      {"currencyType": "AppPass", "allocated": 15}]
        assert ops[0].url.endswith("/allocations?api-version=2022-03-01-preview")
        result = jobs.execute(s, prepared)
    assert [r.status for r in result.rows] == [Outcome.APPLIED] * 4
    assert result.rows[0].before == "AI Builder credits (AI) 1000000, Power Apps per app (AppPass) 20"
    assert result.rows[0].after == "AI Builder credits (AI) 1001000, Power Apps per app (AppPass) 15"
    assert result.rows[0].action == "Contoso Production: AI Builder credits (AI) 1000000 -> 1001000"
    after = allocations(server)
    assert after["Contoso Production"]["AI"] == before["Contoso Production"]["AI"] + 1000
    assert after["Contoso Production"]["AppPass"] == 15
    assert after["Contoso UAT"].get("AI", 0) == 0 and after["Contoso Trial"]["PowerPagesAuthenticated"] == 40
    assert result.units_after["AI"] == result.units_before["AI"] + 1000 - 250000
    # the results workbook: Allocation before/after columns, and the add-on units on the Summary sheet
    wb = openpyxl.load_workbook(result.report_dir / "results.xlsx", read_only=True)
    head = [c.value for c in next(wb["Results"].iter_rows(max_row=1))]
    assert head[-2:] == ["Allocation before", "Allocation after"]
    summary = [r[0] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]]
    wb.close()
    assert "Add-on units allocated" in summary and "AI Builder credits (AI)" in summary
    # and the same sheet again changes nothing
    with jobs.open_session(settings_for(server, tmp_path)) as s:
        again = jobs.plan_file(s, write_csv(tmp_path / "b.csv", ["Environment", "Add-on", "Amount"], [
            ["Contoso Production", "AI Builder credits", str(after["Contoso Production"]["AI"])]]))
    assert again.plan.operations == [] and again.validation.requests[0].status is RequestStatus.UNCHANGED


def test_the_2024_endpoint_is_used_when_configured(server: SandboxServer, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"],
                      [["Contoso Dev", "Copilot credits", "500"]])
    with jobs.open_session(settings_for(server, tmp_path, LICENSE_BATCH_ALLOCATIONS_API="2024-10-01")) as s:
        prepared = jobs.plan_file(s, sheet)
        (op,) = prepared.plan.operations
        assert op.url == "/licensing/allocationsByEnvironment?api-version=2024-10-01"
        assert op.body["environmentId"] == op.target_id
        result = jobs.execute(s, prepared)
    assert result.rows[0].status is Outcome.APPLIED
    assert allocations(server)["Contoso Dev"]["MCSMessages"] == 500


def test_a_locked_environment_fails_its_row_with_advice(server: SandboxServer, tmp_path: Path) -> None:
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"],
                      [["Contoso Finance", "Copilot credits", "2500"], ["Contoso Dev", "Copilot credits", "10"]])
    with jobs.open_session(settings_for(server, tmp_path)) as s:
        result = jobs.execute(s, jobs.plan_file(s, sheet))
    locked, ok = result.rows
    assert ok.status is Outcome.APPLIED
    assert locked.status is Outcome.FAILED and locked.code == "TenantPoolLockedByPolicy"
    assert locked.fix.startswith("The environment's group policy locks the tenant pool")


@pytest.mark.parametrize("version", ["2022-03-01-preview", "2024-10-01"])
def test_refusals_on_either_endpoint_fail_their_rows_with_code_and_advice(
        server: SandboxServer, db: Path, tmp_path: Path, version: str) -> None:
    """The real write path (plan -> engine -> Tenant.send_powerplatform) on both endpoints: the tenant changes
    between plan and apply (another admin takes the last app passes, an environment is deleted), one environment
    is locked by its group's policy; each refused row fails with the service's code and our advice, the rest
    applies, and a 2024-10-01 write leaves the enforcement rules of the entries it changes as they were."""
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"], [
        ["Contoso Finance", "Copilot credits", "2500"],
        ["Contoso Dev", "app passes", "5"],
        ["Contoso Trial", "AI", "1000"],
        ["Contoso Production", "Copilot credits", "11000"],
    ])
    before = allocations(server)
    with jobs.open_session(settings_for(server, tmp_path, LICENSE_BATCH_ALLOCATIONS_API=version)) as s:
        prepared = jobs.plan_file(s, sheet)
        assert {o.url.split("?")[0].rsplit("/", 1)[-1] for o in prepared.plan.operations} == (
            {"allocationsByEnvironment"} if version == "2024-10-01" else {"allocations"})
        # another admin allocates the 5 free app passes to Contoso Sales EU (the same write, sent the same way) ...
        envs = {e.display_name: e.id for e in prepared.validation.snapshot.environments.values()}
        taken = {"AppPass": before["Contoso Sales EU"]["AppPass"] + 5}
        other = allocation_operation(envs["Contoso Sales EU"], "Contoso Sales EU", {}, taken, (0,), version)

        async def send() -> int:
            with Tenant(settings_target(server)) as t:
                try:
                    return (await t.send_powerplatform(other.method, other.url, other.body)).status
                finally:
                    await t.aclose_writers()

        assert asyncio.run(send()) == 200
        # ... and Contoso Trial is deleted
        con = sqlite3.connect(db)
        with con:
            for table in ("allocations", "allocation_rules", "environments"):
                con.execute(f"DELETE FROM {table} WHERE {'id' if table == 'environments' else 'environment_id'} = ?",
                            (envs["Contoso Trial"],))
        con.close()
        result = jobs.execute(s, prepared)
    got = [(r.status, r.code) for r in result.rows]
    assert got == [(Outcome.FAILED, "TenantPoolLockedByPolicy"), (Outcome.FAILED, "InsufficientCapacity"),
                   (Outcome.FAILED, "EnvironmentNotFound"), (Outcome.APPLIED, "")]
    locked, short, gone, _ok = result.rows
    assert locked.fix.startswith("The environment's group policy locks the tenant pool")
    assert short.message == ("Insufficient capacity for currency type 'AppPass': 5 requested, 0 available "
                             "(50 purchased, 50 allocated to other environments).")
    assert short.fix.startswith("Not enough of this add-on is left unallocated")
    assert gone.fix == ("The environment no longer exists (deleted since the sheet was checked): correct the "
                        "environment in the row.")
    after = allocations(server)
    assert after["Contoso Production"]["MCSMessages"] == 11_000
    assert after["Contoso Finance"] == before["Contoso Finance"] and after["Contoso Dev"] == before["Contoso Dev"]
    with Tenant(settings_target(server)) as t:
        rules = t.powerplatform.allocation_details(envs["Contoso Production"])["MCSMessages"].enforcement_rules
    assert [r.rule_type for r in rules] == ["Alert", "PayGo", "TenantPool"]  # seeded; the body sends none


def test_apply_with_faults_and_power_platform_throttling(db: Path, tmp_path: Path) -> None:
    names = [e for e in tenant_info(db)["environments"] if e != "Contoso Finance"]
    rows = [[n, ct, str(k + 1)] for n in names for k, ct in enumerate(("Copilot credits",
                                                                       "Power Pages anonymous users"))]
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"], rows)
    cfg = SandboxConfig(time_scale=20, fault_seed=7, fault_503_rate=0.2, fault_504_rate=0.1, fault_drop_rate=0.1,
                        powerplatform_request_quota=4, powerplatform_window_seconds=20)
    with SandboxServer(db, cfg) as sb:
        env = {"LICENSE_BATCH_SANDBOX_TIME_SCALE": "20"}
        settings = settings_for(sb, tmp_path, **env)
        from dataclasses import replace

        settings = replace(settings, limits=replace(settings.limits, powerplatform_requests_per_minute=4,
                                                    powerplatform_window_seconds=1.0, backoff_base_seconds=0.05,
                                                    backoff_max_seconds=0.2, max_attempts=30))
        with jobs.open_session(settings) as s:
            result = jobs.execute(s, jobs.plan_file(s, sheet))
        got = allocations(sb)
    assert [r.status for r in result.rows] == [Outcome.APPLIED] * len(rows), [(r.code, r.message) for r in
                                                                               result.rows]
    for n in names:
        assert got[n]["MCSMessages"] == 1 and got[n]["PowerPagesAnonymous"] == 2
    con = sqlite3.connect(result.report_dir / "journal.sqlite")
    attempts = con.execute("SELECT COUNT(*) FROM attempt").fetchone()[0]
    statuses = {r[0] for r in con.execute("SELECT DISTINCT status FROM attempt")}
    con.close()
    assert attempts > len(names)  # faults made the engine retry or check ...
    assert statuses & {429, 503, 504, None}  # ... and the journal kept every attempt's answer


# ------------------------------------------------------------------------------------------- mixed workbook


def test_a_workbook_with_licenses_and_add_ons_is_one_run(server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "wave.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Licenses"
    ws.append(["User", "License"])
    ws.append(["adele.vance@contoso.onmicrosoft.com", "POWER_BI_PRO"])
    add = wb.create_sheet("Add-ons")
    add.append(["Environment", "AI Builder credits"])
    add.append(["Contoso Dev", 700])
    lists = wb.create_sheet("Lists")  # not an input sheet: skipped with a note
    lists.append(["Notes"])
    wb.save(path)
    with jobs.open_session(settings_for(server, tmp_path)) as s:
        prepared = jobs.plan_file(s, path)
        assert [sh.kind.value for sh in prepared.validation.sheets] == ["licenses", "addons"]
        assert [r.index for sh in prepared.validation.sheets for r in sh.rows] == [0, 1]
        result = jobs.execute(s, prepared)
    assert [(r.row, r.row_number, r.status) for r in result.rows] == [(0, 2, Outcome.APPLIED),
                                                                     (1, 2, Outcome.APPLIED)]
    out = openpyxl.load_workbook(result.report_dir / "results.xlsx", read_only=True)
    assert out.sheetnames == ["Licenses results", "Add-ons results", "Summary", "Licenses errors", "Add-ons errors"]
    lic = list(out["Licenses results"].iter_rows(values_only=True))
    assert lic[0][-2:] == ("Licenses before", "Licenses after") and "POWER_BI_PRO" in str(lic[1][-1])
    addons = list(out["Add-ons results"].iter_rows(values_only=True))
    assert addons[1][:4] == ("Contoso Dev", 700, 2, "applied")  # the amount typed as in the workbook; the row
    out.close()
    assert (result.report_dir / "results-2.csv").exists()
    run_json = json.loads((result.report_dir / "run.json").read_text())
    assert run_json["input"]["sheets"] == [{"sheet": "Licenses", "kind": "licenses", "rows": 1},
                                           {"sheet": "Add-ons", "kind": "addons", "rows": 1}]
    con = sqlite3.connect(result.report_dir / "journal.sqlite")
    assert con.execute("SELECT idx, kind, name FROM sheet ORDER BY idx").fetchall() == [
        (0, "licenses", "Licenses"), (1, "addons", "Add-ons")]
    assert sorted(r[0] for r in con.execute("SELECT api FROM operation")) == ["graph", "powerplatform"]
    con.close()


# ----------------------------------------------------------------------------------------- kill and resume


def test_resume_after_a_kill_in_an_add_on_run(db: Path, tmp_path: Path) -> None:
    names = [e for e in tenant_info(db)["environments"] if e != "Contoso Finance"]
    rows = [[n, "Power Pages anonymous users", str(10 + k)] for k, n in enumerate(names)]
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"], rows)
    # a Power Platform quota of one request per 0.5 s: the run lasts long enough to be killed in the middle
    with SandboxServer(db, SandboxConfig(time_scale=1, powerplatform_request_quota=1,
                                         powerplatform_window_seconds=0.5)) as sb:
        (tmp_path / "license-batch.toml").write_text("[limits]\npowerplatform_requests_per_minute = 1\n"
                                                     "powerplatform_window_seconds = 0.5\n")
        env = {**os.environ, "LICENSE_BATCH_GRAPH_URL": sb.graph_url,
               "LICENSE_BATCH_POWERPLATFORM_URL": sb.powerplatform_url, "XDG_CACHE_HOME": str(tmp_path / "c")}
        cmd = [sys.executable, "-m", "batch.cli"]
        proc = subprocess.Popen([*cmd, "apply", str(sheet), "--report-dir", "reports"], cwd=tmp_path, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = list((tmp_path / "reports").glob("*/journal.sqlite"))
            if found:
                con = sqlite3.connect(found[0])
                try:
                    done = con.execute("SELECT COUNT(*) FROM operation WHERE state = 'succeeded'").fetchone()[0]
                except sqlite3.Error:
                    done = 0
                con.close()
                if done >= 2:
                    journal = found[0]
                    break
            time.sleep(0.05)
        assert journal is not None, "the run never got going"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        run_id = journal.parent.name
        resumed = subprocess.run([*cmd, "resume", run_id, "--report-dir", "reports", "--json"], cwd=tmp_path,
                                 env=env, capture_output=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
        summary = json.loads(resumed.stdout)
        assert summary["applied"] == len(rows) and summary["failed"] == 0
        got = allocations(sb)
    for k, n in enumerate(names):
        assert got[n]["PowerPagesAnonymous"] == 10 + k
    con = sqlite3.connect(journal)
    states = {r[0] for r in con.execute("SELECT state FROM operation")}
    per_op = con.execute("SELECT MAX(c) FROM (SELECT COUNT(*) c FROM attempt WHERE status BETWEEN 200 AND 299"
                         " GROUP BY op_key)").fetchone()[0]
    con.close()
    assert states == {"succeeded"} and per_op == 1  # every environment written once with success


# ------------------------------------------------------------------------------------------------ capacity


def test_capacity_command(server: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    from batch.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LICENSE_BATCH_GRAPH_URL", server.graph_url)
    monkeypatch.setenv("LICENSE_BATCH_POWERPLATFORM_URL", server.powerplatform_url)
    code = main(["capacity", "--json", "--csv", "cap.csv", "--xlsx", "cap.xlsx"])
    out, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    ai = next(a for a in data["addons"] if a["id"] == "AI")
    assert (ai["name"], ai["purchased"], ai["used"], ai["free"]) == ("AI Builder credits", 3000000, 1750000, 1250000)
    e3 = next(s for s in data["skus"] if s["id"] == "SPE_E3")
    assert e3["free"] == e3["purchased"] - e3["used"]
    assert "Seats per SKU:" in err and "Add-on units per type:" in err
    with (tmp_path / "cap.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0][:6] == ["Kind", "Name", "Part number / type", "Purchased", "Used", "Free"]
    ai_row = next(r for r in rows if r[2] == "AI")
    assert ai_row[:6] == ["addons", "AI Builder credits", "AI", "3000000", "1750000", "1250000"]
    wb = openpyxl.load_workbook(tmp_path / "cap.xlsx", read_only=True)
    assert [c.value for c in next(wb["Capacity"].iter_rows(max_row=1))][:3] == ["Kind", "Name", "Part number / type"]
    wb.close()


def test_reserve_holds_back_add_on_units(server: SandboxServer, tmp_path: Path) -> None:
    # Power Apps per app: 50 purchased, 45 allocated (5 free); a 10% reserve keeps 5 of them back
    sheet = write_csv(tmp_path / "a.csv", ["Environment", "Add-on", "Amount"], [["Contoso Trial", "AppPass", "+1"]])
    with jobs.open_session(settings_for(server, tmp_path)) as s:
        free = jobs.check_file(s, sheet)
        held = jobs.check_file(s, sheet, reserve="10%")
    assert free.requests[0].status is RequestStatus.READY and not free.wave_refused
    (line,) = held.capacity
    assert (line.enabled, line.consumed, line.reserve, line.needed, line.short) == (50, 45, 5, 1, 1)
    (finding,) = held.requests[0].findings
    assert finding.code == "capacity-shortfall" and "(after keeping 5 in reserve)" in finding.message


def test_one_wave_never_counts_a_seat_twice_across_kinds_and_sheets(server: SandboxServer, tmp_path: Path) -> None:
    """Microsoft 365 E3 has 5 free seats. Sheet 1 assigns it directly to 3 users, sheet 2 (another Licenses
    sheet) to 1 more and to one of the first again, sheet 3 adds 2 users to the group that gives it: 6 seats
    for 5, so the wave is refused; and the repeated user is a duplicate across the two Licenses sheets."""
    path = tmp_path / "wave.xlsx"
    users = [f"{u}@contoso.onmicrosoft.com" for u in ("megan.bowen", "pradeep.gupta", "alex.wilber", "joni.sherman",
                                                        "patti.fernandez", "lynne.robbins")]
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    first.title = "Licenses"
    first.append(["User", "License", "Usage location"])
    for u in users[:3]:
        first.append([u, "SPE_E3", "US"])
    second = wb.create_sheet("More licenses")
    second.append(["User", "License", "Usage location"])
    second.append([users[3], "SPE_E3", "US"])
    second.append([users[0], "SPE_E3", "US"])
    groups = wb.create_sheet("Memberships")
    groups.append(["User", "Group"])
    for u in users[4:]:
        groups.append([u, "Licensing - Microsoft 365 E3"])
    wb.save(path)
    with jobs.open_session(settings_for(server, tmp_path)) as s:
        v = jobs.check_file(s, path)
    assert [sh.kind.value for sh in v.sheets] == ["licenses", "licenses", "groups"]
    codes = [(c.request.row, tuple(f.code for f in c.findings)) for c in v.requests]
    assert codes[4] == (4, ("duplicate-row",))
    e3 = [c for c in v.capacity if c.part_number == "SPE_E3"]
    sku = next(x for x in v.snapshot.skus.values() if x.part_number == "SPE_E3")
    assert sku.enabled - sku.consumed == 5
    # the group's line sees the 4 seats the direct assignments take: 1 left for 2 members
    assert [(c.consumed - sku.consumed, c.needed, c.short) for c in e3] == [(0, 4, 0), (4, 2, 1)]
    assert v.wave_refused
