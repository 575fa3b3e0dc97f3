"""reconcile: every kind of drift is detected, nothing changes without --apply, removals need --prune."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from batch.sandbox.seed import list_users

from .conftest import read_csv, run, run_json, state, upn, write_csv


def desired_workbook(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Today's export, edited: one kind of drift each."""
    users, addons = state(capsys, workdir)
    lic: list[list[str]] = [list(users[0])]
    for r in users:
        name = r["userPrincipalName"].split("@")[0]
        if name in ("alex.wilber", "nestor.wilke"):  # extra (direct) / group-unexpected
            continue
        if name == "diego.siciliani":  # plans: disable FORMS_PLAN_E3 as well, YAMMER_ENTERPRISE not any more
            r["Disabled plans"] = "SWAY; FORMS_PLAN_E3"
        if name == "lidia.holloway":  # location
            r["Usage location"] = "DE"
        lic.append(list(r.values()))
    lic.append([upn("adele.vance"), "POWER_BI_PRO", "", "", "", "", ""])  # missing
    lic.append([upn("pradeep.gupta"), "SPE_E3", "", "", "", "group", ""])  # group-missing
    add: list[list[object]] = [list(addons[0])]
    for a in addons:
        if a["Environment"] == "Contoso UAT" and a["Add-on"] == "AI":
            a["Allocated"] = "300000"  # allocation
        add.append(list(a.values()))
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Licenses"
    for row in lic:
        ws.append(row)
    ws2 = wb.create_sheet("Add-ons")
    for row in add:
        ws2.append(row)
    path = workdir / "desired.xlsx"
    wb.save(path)
    return path


def test_every_kind_of_drift_is_detected_and_nothing_changes(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = desired_workbook(workdir, capsys)
    before = list_users(workdir / "sandbox.db")
    code, summary, err = run_json(capsys, "reconcile", str(path), "--scope", "all")
    assert code == 1, err
    assert summary["kinds"] == {"redundant": 6, "group-missing": 2, "missing": 1, "plans": 1, "extra": 1,
                                "group-unexpected": 1, "location": 1, "allocation": 1}
    assert list_users(workdir / "sandbox.db") == before
    # 457 exported rows, alex's and nestor's left out, adele's Power BI row added after them: Excel row 457
    assert (f"  missing           row 457 of sheet 'Licenses': {upn('adele.vance')} should hold POWER_BI_PRO and does "
            "not  [--apply]" in err.splitlines()), err
    assert (f"extra             {upn('alex.wilber')} holds STANDARDPACK; the sheet does not ask for it  "
            "[run with --apply --prune to remove it]") in err
    assert (f"group-unexpected  {upn('nestor.wilke')} holds SPE_E3 through group 'Licensing - Microsoft 365 E3'; "
            "the sheet does not ask for it  [run with --apply --prune to remove the user from 'Licensing - Microsoft "
            "365 E3']") in err
    assert ("ENTERPRISEPACK disabled plans differ (to disable: FORMS_PLAN_E3; disabled in the tenant, not in the "
            "sheet: YAMMER_ENTERPRISE)  [--apply (re-enabling: --prune)]") in err
    assert (f"  location          row 14 of sheet 'Licenses': {upn('lidia.holloway')}: usage location US -> DE  "
            "[--apply]" in err.splitlines()), err
    assert ("  allocation        row 10 of sheet 'Add-ons': Contoso UAT: AI Builder credits (AI) 250000 -> 300000  "
            "[--apply (lowering: --prune)]" in err.splitlines())
    assert (f"{upn('pradeep.gupta')} should hold SPE_E3 through a group, and no group gives it: add to 'Licensing - "
            "Microsoft 365 E3' (the Groups cell is empty: the only group of the tenant that gives SPE_E3)  [--apply "
            "(group membership)]") in err
    assert (f"{upn('grady.archie')} should hold Microsoft_365_Copilot through a group: they are a member of "
            "'Licensing - Copilot', but its Microsoft_365_Copilot is in state Error for them (CountViolation)") in err
    assert "  SPE_E3: takes 1, frees 0, 4 free afterwards (--prune would free 1 more)" in err.splitlines()
    assert f"{upn('miriam.graham')}: AAD_PREMIUM_P2 adds nothing next to SPE_E5: removing it frees 1 seat" in err
    assert "  POWER_BI_PRO: takes 1, frees 0, 29 free afterwards" in err.splitlines()
    assert "  STANDARDPACK: takes 0, frees 0, 70 free afterwards (--prune would free 1 more)" in err.splitlines()
    assert "  AI Builder credits: +50000 allocated, 1200000 free afterwards" in err.splitlines()
    drift = read_csv(Path(str(summary["report"])).with_suffix(".csv"))
    assert {d["kind"] for d in drift} == {"missing", "extra", "plans", "location", "group-missing",
                                         "group-unexpected", "redundant", "allocation"}


def test_scope_users_only_looks_at_the_users_the_sheet_names(workdir: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    path = desired_workbook(workdir, capsys)
    code, summary, _ = run_json(capsys, "reconcile", str(path))
    assert code == 1
    assert "extra" not in summary["kinds"] and "group-unexpected" not in summary["kinds"]  # alex, nestor: not named


def test_apply_adds_and_prune_is_required_for_removals(workdir: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_GROUP_PROCESSING_SECONDS", "0.1")  # Entra's group processing, quick
    path = desired_workbook(workdir, capsys)
    code, summary, err = run_json(capsys, "reconcile", str(path), "--scope", "all", "--apply")
    assert code == 0, err
    assert summary["applied"] == 5  # adele's Power BI, diego's plans, lidia's location, UAT's AI, pradeep's group
    users, addons = state(capsys, workdir)
    held = {(u["userPrincipalName"], u["skuPartNumber"]): u for u in users}
    assert (upn("adele.vance"), "POWER_BI_PRO") in held
    assert (upn("alex.wilber"), "STANDARDPACK") in held  # extra kept without --prune
    diego = held[(upn("diego.siciliani"), "ENTERPRISEPACK")]
    assert diego["Disabled plans"] == "FORMS_PLAN_E3; SWAY; YAMMER_ENTERPRISE"
    assert held[(upn("lidia.holloway"), "SPE_E3")]["Usage location"] == "DE"
    assert held[(upn("pradeep.gupta"), "SPE_E3")]["Held"] == "group"  # added to the group; Entra gave it
    assert {(a["Environment"], a["Add-on"]): a["Allocated"] for a in addons}[("Contoso UAT", "AI")] == "300000"
    code, summary, err = run_json(capsys, "reconcile", str(path), "--scope", "all", "--apply", "--prune")
    assert summary["applied"] == 3, err  # alex's E1 removed, diego's Yammer re-enabled, nestor out of the group
    users, _ = state(capsys, workdir)
    held = {(u["userPrincipalName"], u["skuPartNumber"]): u for u in users}
    assert (upn("alex.wilber"), "STANDARDPACK") not in held
    assert held[(upn("diego.siciliani"), "ENTERPRISEPACK")]["Disabled plans"] == "FORMS_PLAN_E3; SWAY"
    assert (upn("nestor.wilke"), "SPE_E3") not in held  # taken out of the group (never removed directly)
    code, summary, _ = run_json(capsys, "reconcile", str(path), "--scope", "all")
    assert code == 1  # what is left no write fixes: grady's Copilot is in Error (no seat); the redundant packs
    assert set(summary["kinds"]) == {"group-missing", "redundant"}


def test_no_drift_exits_0(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "export", "users", "-o", "sales.csv", "--filter", "department=Sales")[0] == 0
    code, _, err = run(capsys, "reconcile", "sales.csv", "--scope", "department=Sales")
    assert code == 0, err
    assert "No drift: the tenant matches the sheet (scope department=Sales)." in err
    # a sheet that names only some of a user's licenses: the others are extra
    assert run(capsys, "export", "users", "-o", "e3.csv", "--sku", "SPE_E3", "--filter", "department=Sales")[0] == 0
    code, summary, _ = run_json(capsys, "reconcile", "e3.csv")
    assert code == 1 and set(summary["kinds"]) == {"extra"}


def test_scope_group_counts_members_the_sheet_leaves_out(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "export", "users", "-o", "e3.csv", "--group", "Licensing - Microsoft 365 E3")[0] == 0
    rows = read_csv(workdir / "e3.csv")
    kept = [r for r in rows if r["userPrincipalName"] != upn("isaiah.langer")]
    write_csv(workdir / "wanted.csv", kept)
    code, summary, err = run_json(capsys, "reconcile", "wanted.csv", "--scope", "group=Licensing - Microsoft 365 E3")
    assert code == 1, err
    assert summary["kinds"] == {"extra": 1, "group-unexpected": 1}
    # isaiah holds E3 directly and through the group: the direct copy is extra, the group's is fixed by membership;
    # the seat is freed (and counted, once) only by both
    isaiah = (f"{upn('isaiah.langer')} holds SPE_E3 directly and through group 'Licensing - Microsoft 365 E3'; the "
              "sheet does not ask for it")
    assert [line for line in err.splitlines() if line.startswith("  ")] == [
        f"  extra             {isaiah}  [run with --apply --prune to remove the direct assignment]",
        f"  group-unexpected  {isaiah}  [run with --apply --prune to remove the user from 'Licensing - Microsoft 365 "
        "E3']",
        "  SPE_E3: takes 0, frees 0, 5 free afterwards (--prune would free 1 more)",
    ]
    code, _, err = run(capsys, "reconcile", "e3.csv", "--scope", "group=Licensing - Microsoft 365 E3")
    assert code == 0, err


def test_an_unedited_addons_export_has_no_drift(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "export", "addons", "-o", "addons.xlsx")[0] == 0
    code, _, err = run(capsys, "reconcile", "addons.xlsx", "--scope", "all")
    assert code == 0, err
    assert "No drift: the tenant matches the sheet (scope all)." in err


def test_a_row_in_error_is_reported_and_its_users_licenses_are_never_pruned(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two rows give one user different usage locations: the second is an error, shown in the output, and the
    license it names is not taken for "extra" (with --prune it would have been removed)."""
    lidia = upn("lidia.holloway")
    path = write_csv(workdir / "d.csv", [
        {"userPrincipalName": lidia, "skuPartNumber": "SPE_E3", "Usage location": "DE"},
        {"userPrincipalName": lidia, "skuPartNumber": "MCOMEETADV", "Usage location": "FR"},
    ])
    code, _out, err = run(capsys, "reconcile", str(path), "--apply", "--prune")
    assert code == 1, err
    assert ("  row-error         row 3: This row gives usage location FR; row 2 gives DE for the same user.  [Give "
            "one usage location for this user (rows 2 and 3). Until then this user's other licenses are left "
            "alone.]") in err.splitlines(), err
    assert "extra" not in err
    users = {u["userPrincipalName"]: u for u in list_users(workdir / "sandbox.db")}
    states = users[lidia]["licenseAssignmentStates"]
    assert isinstance(states, list)
    assert "0c266dff-15dd-4b49-8397-2bb16070ed52" in {s["skuId"] for s in states}  # Audio Conferencing kept
