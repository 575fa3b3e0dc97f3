"""reconcile reads every licenses sheet and every add-ons sheet of a workbook as one desired state; a sheet of a
kind it does not take refuses the file."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from .conftest import run, run_json, state, upn, write_csv, xlsx_rows


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def test_two_licenses_and_two_addons_sheets_are_one_desired_state(workdir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    users, addons = state(capsys, workdir)
    head = list(users[0])
    kept = [r for r in users if r["userPrincipalName"] != upn("alex.wilber")]  # his E1 is extra
    for r in kept:
        if r["userPrincipalName"] == upn("lidia.holloway"):
            r["Usage location"] = "DE"
    half = len(kept) // 2
    lic_a = [head, *[list(r.values()) for r in kept[:half]]]
    lic_b = [head, *[list(r.values()) for r in kept[half:]], [upn("adele.vance"), "POWER_BI_PRO", "", "", "", "", ""]]
    lidia_sheet = "Sales" if any(r["userPrincipalName"] == upn("lidia.holloway") for r in kept[:half]) else "Others"
    for a in addons:
        if a["Environment"] == "Contoso UAT" and a["Add-on"] == "AI":
            a["Allocated"] = "300000"
    add_head = list(addons[0])
    add_a = [add_head, *[list(a.values()) for a in addons[:5]]]
    add_b = [add_head, *[list(a.values()) for a in addons[5:]]]
    uat_ai = ("Contoso UAT", "AI")
    uat_sheet = "Env 1" if any((a["Environment"], a["Add-on"]) == uat_ai for a in addons[:5]) else "Env 2"
    path = _workbook(workdir / "desired.xlsx", {"Sales": lic_a, "Env 1": add_a, "Others": lic_b, "Env 2": add_b})

    code, summary, err = run_json(capsys, "reconcile", str(path), "--scope", "all")
    assert code == 1, err
    # the union: nobody named on one sheet is "extra" because the other sheet leaves them out
    assert summary["kinds"] == {"redundant": 6, "missing": 1, "extra": 1, "location": 1, "allocation": 1,
                                "group-missing": 1}  # a group in error: as in the single-sheet export
    assert (f"extra             {upn('alex.wilber')} holds STANDARDPACK; the sheet does not ask for it  "
            "[run with --apply --prune to remove it]") in err
    assert (f"  missing           row {len(lic_b)} of sheet 'Others': {upn('adele.vance')} should hold "
            "POWER_BI_PRO") in err

    code, summary, err = run_json(capsys, "reconcile", str(path), "--scope", "all", "--apply")
    assert code == 0, err
    assert summary["applied"] == 3  # adele's Power BI (sheet 2), lidia's location, UAT's AI
    results = Path(str(summary["report"]))
    tabs = openpyxl.load_workbook(results, read_only=True).sheetnames
    assert tabs[:4] == ["Licenses results", "Licenses results 2", "Add-ons results", "Add-ons results 2"]
    sales, others = xlsx_rows(results, "Licenses results"), xlsx_rows(results, "Licenses results 2")
    env1, env2 = xlsx_rows(results, "Add-ons results"), xlsx_rows(results, "Add-ons results 2")
    # every input row once, on its own sheet, in input order; alex's extra license: a row below the first sheet
    assert [r["userPrincipalName"] for r in sales] == [*[r[0] for r in lic_a[1:]], upn("alex.wilber")]
    assert [r["userPrincipalName"] for r in others] == [r[0] for r in lic_b[1:]]
    assert [r["Row"] for r in sales] == list(range(2, len(lic_a) + 2))
    assert [r["Row"] for r in others] == list(range(2, len(lic_b) + 1))
    assert [(r["Environment"], r["Add-on"]) for r in env1] == [(a[0], a[2]) for a in add_a[1:]]
    assert [(r["Environment"], r["Add-on"]) for r in env2] == [(a[0], a[2]) for a in add_b[1:]]
    adele = others[-1]
    assert (adele["Status"], adele["Drift"]) == ("applied", f"missing: {upn('adele.vance')} should hold POWER_BI_PRO "
                                                 "and does not")
    assert sales[-1]["Status"] == "unchanged" and str(sales[-1]["Drift"]).startswith("extra: ")
    lidia = next(r for r in (sales if lidia_sheet == "Sales" else others)
                 if r["userPrincipalName"] == upn("lidia.holloway"))
    assert (lidia["Status"], lidia["Drift"]) == ("applied", "location: usage location US -> DE")
    uat = next(r for r in (env1 if uat_sheet == "Env 1" else env2)
               if (r["Environment"], r["Add-on"]) == ("Contoso UAT", "AI"))
    assert (uat["Status"], uat["Drift"]) == ("applied", "allocation: AI Builder credits (AI) 250000 -> 300000")
    assert {r["Status"] for r in [*sales[:-1], *others[:-1], *env1, *env2] if r is not lidia and r is not uat} == {
        "unchanged"}
    users, addons = state(capsys, workdir)
    held = {(u["userPrincipalName"], u["skuPartNumber"]) for u in users}
    assert (upn("adele.vance"), "POWER_BI_PRO") in held
    assert {(a["Environment"], a["Add-on"]): a["Allocated"] for a in addons}[("Contoso UAT", "AI")] == "300000"
    code, summary, _ = run_json(capsys, "reconcile", str(path), "--scope", "all")
    assert summary["kinds"] == {"redundant": 6, "extra": 1, "group-missing": 1}


def test_the_same_user_and_license_on_two_sheets_is_a_duplicate_naming_the_other_sheet(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, addons = state(capsys, workdir)
    uat = next(a["Environment id"] for a in addons if a["Environment"] == "Contoso UAT")
    head = ["userPrincipalName", "skuPartNumber", "Usage location"]
    path = _workbook(workdir / "twice.xlsx", {
        "Wave 1": [head, [upn("adele.vance"), "SPE_E3", "US"], [upn("lidia.holloway"), "SPE_E3", "US"],
                   [upn("adele.vance"), "POWER_BI_PRO", ""]],
        "Wave 2": [head, [upn("nobody"), "SPE_E3", ""], [upn("adele.vance"), "SPE_E3", ""],
                   [upn("lidia.holloway"), "MCOMEETADV", "FR"]],  # lidia: US on Wave 1
        "Environments": [["Environment", "Add-on", "Allocated"], ["Contoso UAT", "AI", "250000"]],
        "More environments": [["Environment", "Add-on", "Allocated"], ["Contoso UAT", "AI", "250000"],
                              ["Contoso UAT", "AppPass", "1"]],
        "Also": [["Environment", "Add-on", "Allocated"], ["Contoso UAT", "AppPass", "2"]],
    })
    code, _, err = run(capsys, "reconcile", str(path))
    assert code == 1, err
    lines = err.splitlines()
    assert ("  row-error         row 3 of sheet 'Wave 2': Row 2 of sheet 'Wave 1' already names this user and "
            "license.  [Keep one row "
            "per user and license. Until then this user's other licenses are left alone.]") in lines, err
    assert ("  row-error         row 4 of sheet 'Wave 2': This row gives usage location FR; row 3 of sheet 'Wave 1' "
            "gives US for the "
            "same user.  [Give one usage location for this user (row 3 of sheet 'Wave 1' and row 4 of sheet "
            "'Wave 2'). Until then this user's other licenses are left alone.]") in lines, err
    code, summary, err = run_json(capsys, "reconcile", str(path), "--apply")
    assert (code, summary["applied"]) == (1, 1), err  # adele's Power BI; the rows in error are skipped
    results = Path(str(summary["report"]))
    dup = xlsx_rows(results, "Add-ons results 2")
    assert [(r["Row"], r["Status"], r["Error code"], r["Message"]) for r in dup] == [
        (2, "skipped", "duplicate-row", "Row 2 of sheet 'Environments' already asks the same (250000) of AI Builder "
         f"credits (AI) for Contoso UAT ({uat})."),
        (3, "skipped", "conflicting-rows", "This row (1) contradicts row 2 of sheet 'Also': 2 for Power Apps per app "
         f"(AppPass) for Contoso UAT ({uat})."),
    ]
    also = xlsx_rows(results, "Add-ons results 3")
    assert [(r["Row"], r["Error code"], r["Fix"]) for r in also] == [
        (2, "conflicting-rows", "Keep one of row 3 of sheet 'More environments', row 2 of sheet 'Also'.")]
    wave2 = xlsx_rows(results, "Licenses results 2")
    assert [(r["Row"], r["Status"], r["Error code"]) for r in wave2] == [
        (2, "skipped", "user-not-found"), (3, "skipped", "duplicate-row"), (4, "skipped", "conflicting-rows")]


def test_the_same_user_and_group_on_two_membership_sheets_is_a_duplicate_naming_the_other_sheet(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = "Licensing - Power Apps Premium"
    head = ["User", "Group"]
    path = _workbook(workdir / "members.xlsx", {
        "Wave 1": [head, [upn("adele.vance"), group]],
        "Wave 2": [head, [upn("adele.vance"), group]],
    })
    code, _, err = run(capsys, "reconcile", str(path))
    assert code == 1, err
    assert [line for line in err.splitlines() if line.startswith("  ")][:2] == [
        f"  member-missing    row 2 of sheet 'Wave 1': {upn('adele.vance')} should be a member of '{group}' and is "
        "not  [--apply]",
        f"  row-error         row 2 of sheet 'Wave 2': Row 2: row 2 of sheet 'Wave 1' already asks the same for "
        f"{upn('adele.vance')} "
        f"and '{group}'.  [Delete the duplicate row (row 2 of sheet 'Wave 1' and row 2 of sheet 'Wave 2': keep one).]",
    ], err
    code, summary, err = run_json(capsys, "reconcile", str(path), "--apply")
    assert code == 1, err
    results = Path(str(summary["report"]))
    assert [(r["Row"], r["User"], r["Status"], r["Error code"]) for r in xlsx_rows(results, "Groups results 2")] == [
        (2, upn("adele.vance"), "skipped", "duplicate-row")]
    assert [(r["Row"], r["Status"]) for r in xlsx_rows(results, "Groups results")] == [(2, "applied")]


def test_a_sheet_of_a_kind_reconcile_does_not_take_refuses_the_file(workdir: Path) -> None:
    """Every kind of sheet is reconciled today; a kind reconcile does not take would be refused at file level (exit
    2, nothing compared or applied), never skipped silently, as membership sheets were before they were taken."""
    from batch.desired.reconcile import RECONCILED_KINDS, refuse_other_kinds
    from batch.errors import InputError
    from batch.models import Kind
    from batch.sheets import read_sheets

    assert set(RECONCILED_KINDS) == set(Kind)
    path = _workbook(workdir / "mixed.xlsx", {
        "Licenses": [["userPrincipalName", "skuPartNumber"], [upn("adele.vance"), "POWER_BI_PRO"]],
        "Members": [["userPrincipalName", "Group"], [upn("adele.vance"), "Licensing - Microsoft 365 E3"]],
    })
    sheets = read_sheets(path)
    assert [s.kind for s in sheets] == [Kind.LICENSES, Kind.GROUPS]
    refuse_other_kinds(sheets)  # taken
    with pytest.raises(InputError) as e:
        refuse_other_kinds(sheets, taken=(Kind.LICENSES, Kind.ADDONS))
    assert str(e.value) == (
        f"{path}: The sheet 'Members' holds group memberships (user-to-group rows): reconcile takes users' licenses "
        "and add-on allocations only, so nothing was compared or applied. Apply that sheet with 'license-batch "
        "apply', and reconcile the sheets of the kinds above; pick one with --sheet NAME.")
    members = write_csv(workdir / "members.csv", [{"userPrincipalName": upn("adele.vance"),
                                                   "Group": "Licensing - Microsoft 365 E3"}])
    with pytest.raises(InputError) as e:
        refuse_other_kinds(read_sheets(members), taken=(Kind.LICENSES,))
    assert str(e.value).startswith(f"{members}: The sheet holds group memberships (user-to-group rows): reconcile "
                                   "takes users' licenses only, so nothing was compared or applied.")
