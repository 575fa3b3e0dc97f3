"""What the console, ``--json`` and run.json say about a run (issue 12): honest outcomes and summaries.

Every test drives the CLI against its own embedded sandbox (real HTTP on loopback, real SQLite journal) and
reads back what was printed and written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from batch import jobs
from batch.cli import main

REPO = Path(__file__).resolve().parents[1]
WAVE = REPO / "batch" / "data" / "samples" / "onboarding-wave.csv"
DOMAIN = "contoso.onmicrosoft.com"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sheet(workdir: Path, name: str, *lines: str) -> str:
    (workdir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return name


def run_dirs(workdir: Path) -> list[Path]:
    return sorted((workdir / "reports").iterdir(), key=lambda p: p.stat().st_mtime)


def test_swap_for_a_user_who_also_has_the_old_license_from_a_group_is_unchanged_the_second_time(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = sheet(workdir, "swap.csv", "User,Action,From license,License",
                 f"isaiah.langer@{DOMAIN},replace,SPE_E3,SPE_E5")
    code, out, _ = run(capsys, "apply", name, "--json")
    assert code == 0 and json.loads(out)["applied"] == 1
    code, out, err = run(capsys, "apply", name, "--json")
    s = json.loads(out)
    assert (code, s["applied"], s["unchanged"], s["skipped"]) == (0, 0, 1, 0)
    assert "replace-from-inherited" not in err
    assert "Nothing needed changing: the tenant already matches every valid row." in err


def test_a_wave_refused_for_a_shortfall_says_so_and_not_nothing_needed_changing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "apply", str(WAVE), "--json")  # --on-shortfall stop: Copilot is short
    s = json.loads(out)
    assert code == 1 and s["applied"] == 0 and s["requests"] == 0
    assert "Nothing needed changing" not in err
    refused = int(re.search(r"wave-refused x(\d+)", err).group(1))  # type: ignore[union-attr]
    assert refused > 100
    assert (f"The wave was refused: a license or add-on is short (--on-shortfall stop), so nothing was sent and "
            f"{refused} valid rows were not applied.") in err
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    codes = readme[readme.index("Row findings have stable codes"):readme.index("A file-level problem")]
    assert "wave-refused" in codes


def test_console_lists_every_finding_code_with_distinct_rows(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = sheet(
        workdir, "many.csv", "User,License",
        f"adele.vance@{DOMAIN},NOPE1;NOPE2",  # row 2: two unknown licenses in one cell
        f"adele.vance@{DOMAIN},NOPE3",
    )
    code, out, err = run(capsys, "validate", name)
    assert code == 1
    assert "  sku-unknown x2 (rows 2, 3)" in err  # not "rows 2, 2, 3"
    # Every code of the sample shows, however many there are (the console used to stop at 12 silently).
    _, out, err = run(capsys, "validate", str(WAVE), "--on-shortfall", "partial", "--json")
    import openpyxl

    wb = openpyxl.load_workbook(workdir / json.loads(out)["report"], read_only=True)
    head, *rows = list(wb["Rows"].iter_rows(values_only=True))
    col = list(head).index("Finding code")
    codes = {c for r in rows if r[col] for c in str(r[col]).replace(";", ",").replace(" ", "").split(",")}
    wb.close()
    assert len(codes) > 12
    listed = set(re.findall(r"^  ([a-z-]+) x\d+ \(rows? ", err, flags=re.M))
    assert codes <= listed, codes - listed
    for line in re.findall(r"\(rows? ([\d, .]+)\)", err):
        numbers = [n for n in line.replace(", ...", "").split(", ") if n]
        assert len(numbers) == len(set(numbers)), line


def test_ok_says_it_includes_warnings_and_json_needed_matches_the_table(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, err = run(capsys, "validate", str(WAVE), "--json")
    s = json.loads(out)
    first = err.splitlines()[1]
    assert f"{s['rows']} rows - {s['ok']} ok ({s['warnings']} of them with warnings), {s['unchanged']} unchanged" \
        in first
    assert s["warnings"] <= s["ok"]
    table = err[err.index("Capacity (seats):"):]
    for c in s["capacity"]:
        if c["kind"] != "licenses":
            continue
        line = next(ln for ln in table.splitlines() if ln.split()[:1] == [c["sku"]])
        available, needed, freed, net, short = (int(x) for x in line.split()[1:6])
        assert (c["available"], c["needed"], c["freed"], c["net"], c["short"]) == (available, needed, freed, net,
                                                                                   short)


def test_one_of_everything_is_singular(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = sheet(workdir, "one.csv", "User,License", f"adele.vance@{DOMAIN},SPE_E5")
    code, _, err = run(capsys, "apply", name)
    assert code == 0
    assert "one.csv: 1 row - 1 ok" in err
    assert re.search(r"Plan \S+: 1 operation$", err, flags=re.M)
    assert re.search(r"Run \S+: 1 row - 1 applied, .* \(\d+\.\d s, 1 request, ", err)
    assert not re.search(r"(?<![/\d])1 (operations|requests|rows)\b", err), err


def test_resume_of_a_finished_run_says_so_and_run_json_keeps_every_command_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = sheet(workdir, "one.csv", "User,License", f"adele.vance@{DOMAIN},SPE_E5")
    assert run(capsys, "apply", name, "--reserve", "0")[0] == 0
    run_id = run_dirs(workdir)[0].name
    for _ in range(2):
        code, out, err = run(capsys, "resume", run_id, "--json")
        assert code == 0 and json.loads(out)["already_finished"] is True
        assert f"Run {run_id} had already finished: nothing was sent again. Its results:" in err
    info = json.loads((workdir / "reports" / run_id / "run.json").read_text(encoding="utf-8"))
    assert info["command_line"][-3:] == ["apply", name, "--reserve", "0"][-3:]
    assert "apply" in info["command_line"]
    assert [r["command_line"][-3:] for r in info["resumes"]] == [["resume", run_id, "--json"]] * 2
    assert all(r["at"] for r in info["resumes"])


def test_resume_of_a_run_killed_before_its_plan_was_journalled_offers_to_start_again(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = sheet(workdir, "one.csv", "User,License", f"adele.vance@{DOMAIN},SPE_E5")
    # What apply leaves when it is killed between planning and journalling: the run folder, no journal.
    assert run(capsys, "plan", name, "--on-shortfall", "partial")[0] == 0
    run_dir = run_dirs(workdir)[0]
    assert not (run_dir / "journal.sqlite").exists()
    code, _, err = run(capsys, "resume", run_dir.name)
    assert code == 2
    source = str((workdir / name).resolve())
    assert err == (
        f"error: Run '{run_dir.name}' stopped before its plan was journalled, so nothing was sent to the tenant and "
        f"there is nothing to resume. Start it again from the recorded input: license-batch apply {source} "
        "--on-shortfall partial\n"
    )


def test_dry_run_strict_is_refused_like_strict(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "apply", str(WAVE), "--dry-run", "--strict", "--on-shortfall", "partial")
    assert code == 2
    assert re.search(r": \d+ row\(s\) have errors and --strict refuses the whole sheet\.", err), err
    assert not list((workdir / "reports").glob("*/plan.csv"))


def test_ctrl_c_before_any_run_says_nothing_was_sent(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "plan_file", interrupted)  # Ctrl-C while the sheet is read / the tenant snapshotted
    code, _, err = run(capsys, "apply", str(WAVE))
    assert code == 130
    assert err == "Interrupted before any run was started: nothing was sent to the tenant.\n"
    monkeypatch.setattr(jobs, "validate_file", interrupted)
    code, _, err = run(capsys, "validate", str(WAVE))
    assert (code, err) == (130, "Interrupted. Nothing was sent to the tenant (this command never changes it).\n")


def test_progress_is_not_doubled_and_the_sandbox_line_comes_first_in_resume(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = sheet(workdir, "one.csv", "User,License", f"adele.vance@{DOMAIN},SPE_E5")
    _, _, err = run(capsys, "apply", name)
    assert err.count("1/1 rows") == 1, err
    run_id = run_dirs(workdir)[0].name
    _, _, err = run(capsys, "resume", run_id)
    lines = err.splitlines()
    assert lines[0].startswith("Using the built-in sandbox tenant (state in ")
    assert err.count("1/1 rows") <= 1


def test_sandbox_users_lists_and_filters(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sandbox", "users", "--filter", "department=Sales", "--json")
    assert code == 0
    users = json.loads(out)
    assert users and all(u["department"] == "Sales" for u in users)
    adele = next(u for u in users if u["userPrincipalName"] == f"adele.vance@{DOMAIN}")
    assert adele["licenses"] == ["SPE_E3"] and adele["usageLocation"] == "US"
    code, out, _ = run(capsys, "sandbox", "users", "--filter", f"upn=nestor.wilke@{DOMAIN}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["userPrincipalName", "department", "job", "title", "location", "type", "enabled",
                                "licenses"]
    assert lines[2].startswith(f"nestor.wilke@{DOMAIN}") and lines[2].endswith("SPE_E3 (group)")
    assert lines[-1] == "1 user"
    code, _, err = run(capsys, "sandbox", "users", "--filter", "shoe=42")
    assert code == 2 and err.startswith("error: --filter 'shoe=42' is not of the form key=value with a known key.")
