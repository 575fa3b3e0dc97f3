"""The command line end to end: invoke the command, then open the workbook and journal it wrote.

Each test runs in its own folder with its own embedded sandbox (seeded from the default seed), so the
sample onboarding wave meets the tenant it was generated from.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from batch.cli import main

REPO = Path(__file__).resolve().parents[1]
WAVE = REPO / "batch" / "data" / "samples" / "onboarding-wave.csv"
DEPT = REPO / "batch" / "data" / "samples" / "department-assignment.xlsx"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def rows_of(path: Path, sheet: str) -> list[dict[str, object]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    values = list(wb[sheet].iter_rows(values_only=True))
    wb.close()
    head = [str(h) for h in values[0]]
    return [dict(zip(head, r, strict=False)) for r in values[1:]]


def only_run_dir(workdir: Path) -> Path:
    runs = sorted((workdir / "reports").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


# ------------------------------------------------------------------------------------------ validate


def test_validate_sample_wave_reports_every_row_and_the_shortfall(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "validate", str(WAVE), "--json")
    assert code == 1
    summary = json.loads(out)
    assert summary["rows"] == 198
    assert summary["errors"] == 15 and summary["over_capacity"] == 3 and summary["unchanged"] == 1
    copilot = next(c for c in summary["capacity"] if c["sku"] == "Microsoft_365_Copilot")
    assert copilot == {"kind": "licenses", "sku": "Microsoft_365_Copilot",
                       "name": "Microsoft Copilot for Microsoft 365",  # from the product list shipped in the package
                       "available": 0, "needed": 3, "freed": 0, "net": 3, "short": 3}
    assert "Using the built-in sandbox tenant (seeded now" in err
    assert "Not applicable: a license or add-on is short" in err

    report = Path(summary["report"])
    assert report.name == "validation.xlsx" and report.parent.parent == Path("reports")
    rows = rows_of(workdir / report, "Rows")
    assert len(rows) == 198
    assert [r["Employee ID"] for r in rows] == sorted(r["Employee ID"] for r in rows)  # input order kept
    by_note = {r["Notes"]: r for r in rows if r["Notes"]}
    assert by_note["malformed: no @"]["Finding code"] == "user-malformed"
    assert by_note["inherited from a group"]["Finding code"] == "remove-inherited"
    assert "Licensing - Microsoft 365 E3" in str(by_note["inherited from a group"]["Message"])
    assert by_note["already has it"]["Status"] == "unchanged"
    capacity = rows_of(workdir / report, "Capacity")
    assert any(c["SKU part number / add-on"] == "Microsoft_365_Copilot" and c["short by"] == 3
               for c in capacity), capacity


def test_validate_excel_sheet_with_title_rows(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(DEPT), "--json")
    summary = json.loads(out)
    assert summary["rows"] == 42
    assert summary["errors"] == 3  # Finance users without a usage location in the seed
    assert code == 1


# ------------------------------------------------------------------------------------- input errors


def test_missing_file_is_exit_2_and_starts_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "nope.csv")
    assert code == 2 and out == ""
    assert err == "error: nope.csv: The file does not exist. Check the path and the file name.\nNothing was applied.\n"
    assert not (workdir / "sandbox.db").exists()  # refused before the sandbox was even seeded


def test_sheet_without_license_column(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "nolic.csv").write_text("Name,Email\nA,a@contoso.onmicrosoft.com\n", encoding="utf-8")
    code, _, err = run(capsys, "apply", "nolic.csv")
    assert code == 2
    assert err.startswith("error: nolic.csv: No column names the license. The headers (row 1) are: 'Name', 'Email'.")
    assert err.endswith("Nothing was applied.\n")


def test_unknown_map_column(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", str(WAVE), "--map", "user=Mail Address")
    assert code == 2
    assert "column 'Mail Address': --map names the column 'Mail Address' for user, but there is no such header." in err


def test_bad_map_syntax(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", str(WAVE), "--map", "user")
    assert code == 2
    assert err.startswith("error: --map entry 'user' is not of the form role=Header.")


def test_strict_refuses_the_whole_sheet(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "apply", str(WAVE), "--strict", "--on-shortfall", "partial")
    assert code == 2
    assert "15 row(s) have errors and --strict refuses the whole sheet." in err
    assert not list((workdir / "reports").glob("*/journal.sqlite"))


def test_resume_unknown_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "resume", "20260101-000000-dead")
    assert code == 2
    assert "No run '20260101-000000-dead' under reports." in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: license-batch" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------- apply


def test_apply_wave_then_again_is_unchanged(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "apply", str(WAVE), "--on-shortfall", "partial", "--json")
    assert code == 1  # rows failed and were skipped on purpose
    s = json.loads(out)
    assert s["rows"] == 198
    # validation predicts every refusal of the tenant (plan conflicts and dependencies included): none fails
    assert (s["applied"], s["unchanged"], s["skipped"], s["failed"], s["not_run"]) == (179, 1, 18, 0, 0)
    run_dir = only_run_dir(workdir)
    assert s["run_id"] == run_dir.name
    assert "Failed (the tenant refused):" not in err

    results = rows_of(run_dir / "results.xlsx", "Results")
    assert len(results) == 198 and [r["Employee ID"] for r in results][:2] == ["E10401", "E10402"]
    by_note = {r["Notes"]: r for r in results if r["Notes"]}
    conflict = by_note["Teams EEA's MCOIMP and E3's MCOSTANDARD conflict"]
    assert conflict["Status"] == "skipped" and conflict["Error code"] == "plan-conflict"
    assert by_note["Audio Conferencing needs Teams"]["Error code"] == "plan-dependency"
    stacked = by_note["E1 on an E3 user: Exchange packs stack, seat wasted"]
    assert stacked["Status"] == "applied" and stacked["Request id"]
    assert by_note["no Copilot seats left"]["Status"] == "skipped"
    assert by_note["no Copilot seats left"]["Error code"] == "over-capacity"
    promoted = next(r for r in results if r["Notes"] == "promotion")
    assert promoted["Status"] == "applied" and "SPE_E5" in str(promoted["Licenses after"])
    assert "SPE_E3" not in str(promoted["Licenses after"]).split(", ")
    # The formula in the Notes column is neutralised in both outputs.
    injected = next(r for r in results if str(r["Notes"]).startswith("=HYPERLINK"))  # a string cell: inert
    assert injected["Status"] == "applied"
    with (run_dir / "results.csv").open(encoding="utf-8-sig", newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 198
    assert any(r["Notes"].startswith("'=HYPERLINK") for r in csv_rows)
    errors = rows_of(run_dir / "results.xlsx", "Errors")
    assert len(errors) == 18

    # The journal: every operation settled, none sent twice.
    con = sqlite3.connect(run_dir / "journal.sqlite")
    try:
        states = dict(con.execute("SELECT state, COUNT(*) FROM operation GROUP BY state").fetchall())
    finally:
        con.close()
    assert set(states) == {"succeeded"}
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert meta["input"]["sha256"] and meta["counts"]["applied"] == 179

    # Re-running the same sheet changes nothing: every valid row is now unchanged.
    code, out, _ = run(capsys, "apply", str(WAVE), "--on-shortfall", "partial", "--json")
    again = json.loads(out)
    assert again["applied"] == 0 and again["unchanged"] == 180 and code == 1


def test_dry_run_sends_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "apply", str(WAVE), "--dry-run", "--on-shortfall", "partial", "--json")
    s = json.loads(out)
    assert code == 1  # the sample has rows with errors
    assert s["operations"] == 179 and not s["refused"]
    assert "Every operation, with its exact request body: reports/" in err
    with (only_run_dir(workdir) / "plan.csv").open(encoding="utf-8-sig", newline="") as f:
        ops = list(csv.DictReader(f))
    assert len(ops) == 179 and sum(o["Method"] == "PATCH" for o in ops) == 4  # 4 usage locations set first
    patch = next(o for o in ops if o["Change"] == "set usage location DE")
    assert patch["Method"] == "PATCH" and json.loads(patch["Body"]) == {"usageLocation": "DE"}
    after = ops[ops.index(patch) + 1]
    assert after["Depends on"] == f"{patch['URL'].rsplit('/', 1)[1]}/setUsageLocation"
    assert json.loads(after["Body"])["removeLicenses"] == []  # both arrays, always
    assert not list((workdir / "reports").glob("*/journal.sqlite"))
    _, out, _ = run(capsys, "apply", str(WAVE), "--dry-run", "--on-shortfall", "partial", "--json")
    assert json.loads(out)["operations"] == 179  # still all to do: nothing was sent


def test_resume_of_finished_run_changes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "apply", str(WAVE), "--on-shortfall", "partial")
    run_dir = only_run_dir(workdir)

    def counts() -> tuple[int, int]:
        con = sqlite3.connect(run_dir / "journal.sqlite")
        try:
            attempts = con.execute("SELECT COUNT(*) FROM attempt").fetchone()[0]
            sent = con.execute("SELECT requests_sent FROM run").fetchone()[0]
        finally:
            con.close()
        return attempts, sent

    before = counts()
    code, out, _ = run(capsys, "resume", run_dir.name, "--json")
    s = json.loads(out)
    assert code == 1 and s["applied"] == 179 and s["failed"] == 0
    assert counts() == before and before[0] > 0  # resume sent nothing: no new attempt, no new request


def test_demo(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--json")
    assert code == 1  # rows skipped and failed on purpose: exit 1 as the README says for any such run
    s = json.loads(out)
    assert s["applied"] == 179 and s["failed"] == 0
    assert "Applying the sample onboarding wave" in err and "Results: reports/" in err
    assert "operations planned" in err and "ends with exit code 1" in err
    # then the add-on allocations: 10 rows on two sheets; the locked environment fails, the over-allocation
    # and the unknown environment are skipped
    a = s["addons"]
    assert (a["rows"], a["applied"], a["failed"], a["skipped"]) == (10, 7, 1, 2)
    assert "Applying the sample add-on allocations" in err and "TenantPoolLockedByPolicy" in err
    code, _, err = run(capsys, "demo")
    assert code == 1
    wave_run, addons_run = err.split("\nRun ")[1:]
    # every valid row of the wave matches now (the refused swap is remembered and skipped before sending) ...
    assert "Nothing needed changing: the tenant already matches every valid row." in wave_run
    # ... but the locked environment's row failed again: that run must not claim the tenant matches
    assert "TenantPoolLockedByPolicy" in addons_run and "Nothing needed changing" not in addons_run


# ------------------------------------------------------------------------------------------- tenant


def test_tenant_refusing_the_token_is_exit_3(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from batch.sandbox import SandboxServer, init_tenant

    init_tenant(workdir / "other.db", users=50, seed=3)
    with SandboxServer(workdir / "other.db") as sb:
        os.environ["LICENSE_BATCH_TOKEN"] = "not-a-token"
        try:
            code, _, err = run(capsys, "validate", str(WAVE), "--graph-url", sb.graph_url)
        finally:
            del os.environ["LICENSE_BATCH_TOKEN"]
    assert code == 3
    assert err.startswith("error: GET /v1.0/subscribedSkus was refused as unauthenticated (401): ")
    assert "InvalidAuthenticationToken" in err and "(request-id " in err
    assert "not-a-token" not in err


# ---------------------------------------------------------------------------------- process level


def test_help_is_fast_and_imports_no_heavy_modules() -> None:
    code = (
        "import sys; from batch.cli import build_parser; build_parser().format_help();"
        "heavy = [m for m in ('httpx', 'pandas', 'msgraph', 'azure.identity', 'openpyxl', 'python_calamine')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sandbox_serve_prints_three_lines(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "batch.cli", "sandbox", "serve", "--db", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=tmp_path,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline().strip() for _ in range(3)]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert lines[0].startswith("graph-url: http://127.0.0.1:") and lines[0].endswith("/v1.0")
    assert lines[1].startswith("powerplatform-url: http://127.0.0.1:")
    assert lines[2] == "token: sandbox-dev-token"


def test_sandbox_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "sandbox", "init", "--db", str(tmp_path / "x.db"), "--users", "60", "--seed", "7")
    assert code == 0
    assert "60 users" in err and "Seeded a sandbox tenant" in err


def test_ctrl_c_writes_partial_results_then_resume_finishes(tmp_path: Path) -> None:
    """SIGINT mid-run: in-flight requests settle, a partial workbook is written, exit 130; resume finishes."""
    import signal
    import time

    (tmp_path / "license-batch.toml").write_text(
        "[limits]\nwrite_quota = 40\nwrite_window_seconds = 2\n\n"
        "[sandbox]\nwrite_quota = 40\nwrite_window_seconds = 2\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LICENSE_BATCH_")}
    env.update({"LICENSE_BATCH_SANDBOX_DB": str(tmp_path / "sandbox.db"), "XDG_CACHE_HOME": str(tmp_path / "c"),
                "PYTHONUNBUFFERED": "1"})  # fmt: skip
    cmd = [sys.executable, "-m", "batch.cli"]
    with subprocess.Popen(
        [*cmd, "apply", str(WAVE), "--on-shortfall", "partial"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        for line in proc.stderr:  # wait until writes are under way
            if (" rows " in line and not line.startswith("0/")) or time.monotonic() > deadline:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert code == 130, rest
    run_dir = only_run_dir(tmp_path)
    assert f"Interrupted. Continue with: license-batch resume {run_dir.name}" in rest
    partial = rows_of(run_dir / "results.xlsx", "Results")
    statuses = [r["Status"] for r in partial]
    assert len(partial) == 198 and "not run" in statuses and "applied" in statuses

    done = subprocess.run([*cmd, "resume", run_dir.name, "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1, done.stderr  # the sample's deliberate failures
    s = json.loads(done.stdout)
    assert (s["applied"], s["failed"], s["not_run"]) == (179, 0, 0)
    final = rows_of(run_dir / "results.xlsx", "Results")
    assert [r["Employee ID"] for r in final] == [r["Employee ID"] for r in partial]


def test_resume_refuses_another_tenant(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from batch.sandbox import SandboxServer, init_tenant

    run(capsys, "apply", str(WAVE), "--on-shortfall", "partial")
    run_dir = only_run_dir(workdir)
    init_tenant(workdir / "other.db", users=50, seed=9)  # another seed: another tenant id
    with SandboxServer(workdir / "other.db") as sb:
        code, _, err = run(capsys, "resume", run_dir.name, "--graph-url", sb.graph_url)
    assert code == 2
    assert f"error: Run {run_dir.name} was planned against tenant " in err
    assert "Nothing was sent." in err


def test_row_with_one_bad_license_among_several_is_partly_applied(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = workdir / "mixed.csv"
    sheet.write_text(
        'User,License,Country\npradeep.gupta@contoso.onmicrosoft.com,"POWER_BI_PRO; NOPE_SKU",India\n',
        encoding="utf-8",
    )
    code, out, err = run(capsys, "apply", str(sheet), "--json")
    s = json.loads(out)
    assert code == 1 and s["skipped"] == 1 and s["applied"] == 0
    row = rows_of(only_run_dir(workdir) / "results.xlsx", "Results")[0]
    assert row["Status"] == "skipped" and row["Error code"] == "sku-unknown"
    assert str(row["Message"]).startswith("Partly applied: assign POWER_BI_PRO was applied. Not applied: ")
    assert row["Licenses after"] == "POWER_BI_PRO" and row["Request id"]
    assert "Nothing needed changing" not in err


def test_a_refusal_settled_by_resume_is_remembered_too(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from batch import apply as engine
    from batch import jobs
    from batch.config import load_settings
    from batch.kinds.licenses import rules

    monkeypatch.delitem(rules.REFUSED_FAMILIES, "Skype for Business")  # a stale copy of Microsoft's table
    sheet = workdir / "henrietta.csv"
    sheet.write_text("User,License\nhenrietta.mueller@contoso.onmicrosoft.com,SPE_E3\n", encoding="utf-8")
    stopped = threading.Event()
    stopped.set()  # the run is journalled, then stopped before anything is sent
    with jobs.open_session(load_settings()) as session:
        prepared = jobs.plan_file(session, sheet)
        first = engine.apply(prepared.plan, session.tenant, run_dir=prepared.run_dir, limits=session.settings.limits,
                             stop_event=stopped)
    assert first.interrupted and first.rows[0].status.value == "not run"
    code, out, _ = run(capsys, "resume", prepared.run_id, "--json")
    assert code == 1 and json.loads(out)["failed"] == 1
    code, out, _ = run(capsys, "validate", str(sheet), "--json")
    report = rows_of(workdir / json.loads(out)["report"], "Rows")
    assert [r["Finding code"] for r in report] == ["refused-before"]


def test_rows_of_one_user_fail_together_and_say_why(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Microsoft does not keep its table of conflicting plans current: with the client's copy missing a family
    # (as a stale copy would), the tenant refuses and both of the user's rows fail together.
    from batch.kinds.licenses import rules

    monkeypatch.delitem(rules.REFUSED_FAMILIES, "Skype for Business")
    sheet = workdir / "henrietta.csv"
    h = "henrietta.mueller@contoso.onmicrosoft.com"
    sheet.write_text(f"User,License\n{h},SPE_E3\n{h},POWER_BI_PRO\n", encoding="utf-8")
    code, out, _ = run(capsys, "apply", str(sheet), "--json")
    assert code == 1 and json.loads(out)["failed"] == 2
    rows = rows_of(only_run_dir(workdir) / "results.xlsx", "Results")
    assert [r["Status"] for r in rows] == ["failed", "failed"]
    assert "mutually exclusive" in str(rows[1]["Message"])
    assert str(rows[1]["Message"]).endswith("(This user's rows 3, 2 go to Graph as one call, so they fail together.)")

    # The refusal is remembered for this tenant: the next validation predicts it, although the rules still miss it.
    code, out, _ = run(capsys, "validate", str(sheet), "--json")
    assert code == 1 and json.loads(out)["errors"] == 2
    report = rows_of(workdir / json.loads(out)["report"], "Rows")
    assert [r["Finding code"] for r in report] == ["refused-before", "refused-before"]
    assert str(report[0]["Message"]).endswith(
        "(Request_BadRequest: License assignment failed because service plans MCOIMP, MCOSTANDARD are mutually "
        f"exclusive.); {h}'s licenses after this sheet are the same combination."
    )


def test_map_file_keeps_commas_in_headers(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = workdir / "odd.csv"
    sheet.write_text('"Mail, work";"Licence (new)"\nadele.vance@contoso.onmicrosoft.com;SPE_E3\n', encoding="utf-8")
    (workdir / "map.txt").write_text("# HR export\nuser = Mail, work\nsku: Licence (new)\n", encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(sheet), "--map-file", "map.txt", "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 1
    (workdir / "bad.txt").write_text("user Mail\n", encoding="utf-8")
    code, _, err = run(capsys, "validate", str(sheet), "--map-file", "bad.txt")
    assert code == 2
    assert err.startswith("error: bad.txt, row 1: 'user Mail' is not of the form role = Header.")


def test_a_department_license_sheet_is_rule_rows(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No user column, a Department column: each row names the department's users (issue 10's exit-2 case)."""
    sheet = workdir / "dept.csv"
    sheet.write_text("Department,License,Usage location\nFinance,AAD_PREMIUM,United States\n", encoding="utf-8")
    code, out, err = run(capsys, "plan", str(sheet), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["errors"] == 0 and s["rows"] > 1  # one line per user the rule reached
    assert ("Note: no user column: each row names the users whose Department is the row's 'Department' cell (a rule "
            "row, like Department=Finance); every user it reaches gets a line of its own, named in 'User (from "
            "rule)'") in err
    rows = rows_of(workdir / s["report"], "Rows")
    assert {r["Department"] for r in rows} == {"Finance"}
    assert all(str(r["User (from rule)"]).endswith("@contoso.onmicrosoft.com") for r in rows)
