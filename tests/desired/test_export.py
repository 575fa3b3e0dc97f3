"""export users|addons: the layout, the filters, and the round trip (export -> apply changes nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.sandbox.seed import list_users

from .conftest import read_csv, run, run_json, upn, xlsx_rows


def test_export_users_layout_and_how_each_license_is_held(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, "export", "users", "-o", "today.csv")
    assert code == 0, err
    assert "Exported 457 rows (500 users read) to today.csv." in err
    rows = read_csv(workdir / "today.csv")
    assert list(rows[0]) == ["userPrincipalName", "skuPartNumber", "Disabled plans", "Usage location", "Department",
                             "Held", "Groups"]
    by = {(r["userPrincipalName"], r["skuPartNumber"]): r for r in rows}
    assert by[(upn("adele.vance"), "SPE_E3")] == {
        "userPrincipalName": upn("adele.vance"), "skuPartNumber": "SPE_E3", "Disabled plans": "",
        "Usage location": "US", "Department": "Sales", "Held": "direct", "Groups": ""}
    assert by[(upn("nestor.wilke"), "SPE_E3")]["Held"] == "group"
    assert by[(upn("nestor.wilke"), "SPE_E3")]["Groups"] == "Licensing - Microsoft 365 E3 (Active)"
    assert by[(upn("isaiah.langer"), "SPE_E3")]["Held"] == "direct, group"
    assert by[(upn("diego.siciliani"), "ENTERPRISEPACK")]["Disabled plans"] == "SWAY; YAMMER_ENTERPRISE"
    assert by[(upn("grady.archie"), "Microsoft_365_Copilot")]["Groups"] == "Licensing - Copilot (Error: CountViolation)"
    assert not any(r["userPrincipalName"] == upn("megan.bowen") for r in rows)  # holds nothing


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_then_apply_of_the_unedited_file_changes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    assert run(capsys, "export", "users", "-o", f"today.{suffix}")[0] == 0
    before = list_users(workdir / "sandbox.db")
    code, summary, err = run_json(capsys, "apply", f"today.{suffix}")
    assert code == 0, err
    assert summary["applied"] == 0 and summary["failed"] == 0 and summary["skipped"] == 0
    assert summary["unchanged"] == summary["rows"] == 457
    assert list_users(workdir / "sandbox.db") == before
    assert run(capsys, "export", "addons", "-o", f"addons.{suffix}")[0] == 0
    code, summary, err = run_json(capsys, "apply", f"addons.{suffix}")
    assert code == 0, err
    assert (summary["applied"], summary["unchanged"], summary["rows"]) == (0, 10, 10)


def test_export_filters_department_sku_group(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "export", "users", "-o", "sales.xlsx", "--filter", "department=Sales")[0] == 0
    rows = xlsx_rows(workdir / "sales.xlsx")
    assert rows and {r["Department"] for r in rows} == {"Sales"}
    assert run(capsys, "export", "users", "-o", "e3.csv", "--sku", "SPE_E3")[0] == 0
    rows_e3 = read_csv(workdir / "e3.csv")
    assert rows_e3 and {r["skuPartNumber"] for r in rows_e3} == {"SPE_E3"}
    assert run(capsys, "export", "users", "-o", "g.csv", "--group", "Licensing - Microsoft 365 E3")[0] == 0
    names = {r["userPrincipalName"] for r in read_csv(workdir / "g.csv")}
    assert {upn("nestor.wilke"), upn("isaiah.langer")} <= names
    assert upn("adele.vance") not in names


def test_export_refuses_a_bad_output_or_group(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "export", "users", "-o", "today.txt")
    assert code == 2 and "-o must end in .csv or .xlsx, not 'today.txt'." in err
    code, _, err = run(capsys, "export", "users", "-o", "x.csv", "--group", "No such group")
    assert code == 2 and "No group is called 'No such group'." in err
