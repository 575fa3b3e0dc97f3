"""Validation agrees with the tenant on service plans: what validate calls OK, the sandbox (over real HTTP on
loopback) applies without a refusal; what it predicts as refused, it says with the fix. Also for every sample."""

from __future__ import annotations

import json
from collections.abc import Set as AbstractSet
from pathlib import Path

import openpyxl
import pytest
from test_cli import REPO, rows_of, run

D = "contoso.onmicrosoft.com"
SAMPLES = sorted(p for p in (REPO / "batch" / "data" / "samples").iterdir() if p.suffix in (".csv", ".xlsx"))


Rows = list[dict[str, object]]
#: Rows a sample has on purpose that only the tenant can refuse (by its note), per sample: not service plans.
TENANT_ONLY: dict[str, set[str]] = {
    # the add-ons kind: an environment group's policy locks the tenant pool (TenantPoolLockedByPolicy)
    "environment-addons.xlsx": {"Its group policy locks the tenant pool"},
}


def _sheets(path: Path, word: str) -> dict[str, Rows]:
    """Every row sheet of a validation (word "rows") or results (word "results") workbook, by its pairing key."""
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        out: dict[str, Rows] = {}
        for name in wb.sheetnames:
            if word not in name.lower().split():
                continue
            values = list(wb[name].iter_rows(values_only=True))
            head = [str(h) for h in values[0]]
            out[name.lower().replace(word, "")] = [dict(zip(head, r, strict=False)) for r in values[1:]]
        return out
    finally:
        wb.close()


def _validate_then_apply(capsys: pytest.CaptureFixture[str], sheet: Path) -> tuple[Rows, Rows]:
    code, out, _ = run(capsys, "validate", str(sheet), "--on-shortfall", "partial", "--json")
    assert code in (0, 1), out
    checked = _sheets(Path.cwd() / json.loads(out)["report"], "rows")
    code, out, _ = run(capsys, "apply", str(sheet), "--on-shortfall", "partial", "--json")
    assert code in (0, 1), out
    results = _sheets(_run_with_results(Path.cwd()) / "results.xlsx", "results")
    assert checked.keys() == results.keys()
    return [r for k in sorted(checked) for r in checked[k]], [r for k in sorted(results) for r in results[k]]


def _run_with_results(folder: Path) -> Path:
    (applied,) = [p for p in (folder / "reports").iterdir() if (p / "results.xlsx").exists()]
    return applied


def _results(folder: Path) -> Rows:
    return rows_of(_run_with_results(folder) / "results.xlsx", "Results")


def _refused_although_ok(checked: Rows, results: Rows, allowed: AbstractSet[str] = frozenset()) -> list[str]:
    assert len(checked) == len(results)
    out = []
    for c, r in zip(checked, results, strict=True):
        note = str(c.get("Notes") or c.get("Note") or "")
        if c["Status"] == "ready" and r["Status"] != "applied" and note not in allowed:
            out.append(f"{note} {r['Status']} {r['Message']}")
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
def test_a_validate_ok_sample_applies_with_no_refusal(
    workdir: Path, capsys: pytest.CaptureFixture[str], sample: Path
) -> None:
    checked, results = _validate_then_apply(capsys, sample)
    assert any(c["Status"] == "ready" for c in checked)
    allowed = TENANT_ONLY.get(sample.name, set())
    assert _refused_although_ok(checked, results, allowed) == []
    failed = {str(r.get("Notes") or r.get("Note") or "") for r in results if r["Status"] == "failed"}
    assert failed <= allowed


def test_plan_rules_are_predicted_with_exact_messages_and_the_rest_applies(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h, j, p = (f"{x}@{D}" for x in ("henrietta.mueller", "joni.sherman", "patti.fernandez"))
    a, m = f"alex.wilber@{D}", f"miriam.graham@{D}"
    new = f"pradeep.gupta@{D}"
    sheet = workdir / "plans.csv"
    sheet.write_text(
        "User,Action,License,From license,Disabled plans\n"
        f"{h},assign,SPE_E3,,\n"  # 2: Teams EEA's MCOIMP + E3's MCOSTANDARD
        f"{j},assign,MCOMEETADV,,\n"  # 3: Audio Conferencing with Power BI Pro only
        f"{p},assign,STANDARDPACK,,\n"  # 4: E1 on an E5 user: stacks, a seat for nothing
        f"{new},assign,Microsoft_Teams_EEA_New,,\n"  # 5-7: two packs that conflict, and Audio Conferencing
        f"{new},assign,STANDARDPACK,,\n"
        f"{new},assign,MCOMEETADV,,\n"
        f"{a},assign,ENTERPRISEPACK,,\n"  # 8: E3 on an E1 user: accepted; E1 now adds nothing
        f"{m},assign,Microsoft_Teams_EEA_New,,MCOIMP\n",  # 9: MCOIMP disabled: no conflict with E5's MCOSTANDARD
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "validate", str(sheet), "--json")
    assert code == 1 and json.loads(out)["errors"] == 5
    rows = rows_of(workdir / json.loads(out)["report"], "Rows")
    got = [(r["Status"], r["Finding code"], r["Message"], r["Fix"]) for r in rows]
    conflict_e3 = (
        f"{h} would hold Microsoft_Teams_EEA_New and SPE_E3: their Skype for Business plans MCOIMP and MCOSTANDARD "
        "are mutually exclusive, so the tenant refuses the change.",
        "Disable MCOSTANDARD in SPE_E3 (disabled plans column), or replace Microsoft_Teams_EEA_New with SPE_E3 "
        "instead of adding it.",
    )
    conflict_new = (
        f"{new} would hold Microsoft_Teams_EEA_New and STANDARDPACK: their Skype for Business plans MCOIMP and "
        "MCOSTANDARD are mutually exclusive, so the tenant refuses the change.",
        "Disable MCOSTANDARD in STANDARDPACK or MCOIMP in Microsoft_Teams_EEA_New (disabled plans column), or give "
        "only one of them.",
    )
    needs = "TEAMS1, MCOSTANDARD, MCOIMP, MCOSTANDARD_MIDMARKET, MCOLITE"

    def dependency(who: str) -> tuple[str, str]:
        return (
            f"{who} would hold Audio Conferencing (MCOMEETADV) from MCOMEETADV without Teams or Skype for Business "
            f"Online: service plan MCOMEETADV depends on one of {needs}, so the tenant refuses the change.",
            "Give the user a license with Teams (TEAMS1) or Skype for Business Online in the same sheet (e.g. "
            "Microsoft 365 E3), or drop MCOMEETADV.",
        )

    assert got == [
        ("error", "plan-conflict", *conflict_e3),
        ("error", "plan-dependency", *dependency(j)),
        ("ready", "redundant-license",
         f"STANDARDPACK adds nothing {p} does not already get from SPE_E5; it still takes one STANDARDPACK seat.",
         "Drop this license from the row if it is not needed: it takes one STANDARDPACK seat for nothing."),
        ("error", "plan-conflict", *conflict_new),
        ("error", "plan-conflict", *conflict_new),
        # rows 5 and 6 are out: what is left (Audio Conferencing alone) is checked again
        ("error", "plan-dependency", *dependency(new)),
        ("ready", "redundant-license",
         f"After this row {a}'s STANDARDPACK adds nothing ENTERPRISEPACK does not give; it keeps taking one "
         "STANDARDPACK seat.",
         "Remove STANDARDPACK from the user in the same sheet (a remove row) to free its seat, unless it is kept "
         "on purpose."),
        ("ready", None, None, None),
    ]  # fmt: skip

    code, out, _ = run(capsys, "apply", str(sheet), "--json")
    s = json.loads(out)
    assert (s["applied"], s["skipped"], s["failed"]) == (3, 5, 0)
    results = _results(workdir)
    assert [r["Status"] for r in results] == ["skipped", "skipped", "applied", "skipped", "skipped", "skipped",
                                              "applied", "applied"]  # fmt: skip


def test_a_row_left_out_for_seats_changes_what_the_users_other_rows_leave(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Henrietta's Teams EEA (MCOIMP) is replaced by Copilot (no seat free) and she gets Office 365 E1
    # (MCOSTANDARD): together fine; with the replace left out under --on-shortfall partial, E1 would conflict.
    h = f"henrietta.mueller@{D}"
    sheet = workdir / "partial.csv"
    sheet.write_text(
        "User,Action,License,From license\n"
        f"{h},replace,Microsoft_365_Copilot,Microsoft_Teams_EEA_New\n"
        f"{h},assign,STANDARDPACK,\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "validate", str(sheet), "--on-shortfall", "partial", "--json")
    assert code == 1
    rows = rows_of(workdir / json.loads(out)["report"], "Rows")
    assert [(r["Status"], r["Finding code"]) for r in rows] == [("over capacity", "over-capacity"),
                                                                ("error", "plan-conflict")]  # fmt: skip
    code, out, _ = run(capsys, "validate", str(sheet), "--json")  # stop: the wave is refused, no extra finding
    assert code == 1
    rows = rows_of(workdir / json.loads(out)["report"], "Rows")
    assert [(r["Status"], r["Finding code"]) for r in rows] == [("over capacity", "capacity-shortfall"),
                                                                ("ready", None)]  # fmt: skip
    checked, results = _validate_then_apply(capsys, sheet)
    assert _refused_although_ok(checked, results) == [] and [r["Status"] for r in results] == ["skipped", "skipped"]
