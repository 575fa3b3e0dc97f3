"""reconcile --sku: a sheet that is the desired state of some licenses only (an export made with --sku)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.sandbox.seed import list_users, tenant_info

from .conftest import read_csv, run, run_json, upn, write_csv


def held(workdir: Path) -> set[tuple[str, str]]:
    """(upn, part number) of every license a user holds (not in state Error), read from the sandbox."""
    parts = {v["skuId"].lower(): k for k, v in tenant_info(workdir / "sandbox.db")["skus"].items()}
    return {(u["userPrincipalName"].lower(), parts[st["skuId"].lower()]) for u in list_users(workdir / "sandbox.db")
            for st in u["licenseAssignmentStates"] if st.get("state") != "Error"}


def test_an_sku_export_is_the_desired_state_of_that_license_only(workdir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    export = workdir / "e3.csv"
    assert run(capsys, "export", "users", "-o", str(export), "--sku", "SPE_E3", "--filter",
               "department=Finance")[0] == 0
    rows = read_csv(export)
    assert rows and {r["skuPartNumber"] for r in rows} == {"SPE_E3"}
    users = {r["userPrincipalName"].lower() for r in rows}
    # what these users hold besides SPE_E3, read from the sandbox: without --sku each is called extra
    others = {(u, s) for u, s in held(workdir) if u in users and s != "SPE_E3"}
    assert others, "the test needs Finance users holding SPE_E3 and something else"

    code, summary, err = run_json(capsys, "reconcile", str(export))
    assert code == 1, err
    kinds = summary["kinds"]
    assert isinstance(kinds, dict)
    assert kinds.get("extra", 0) + kinds.get("group-unexpected", 0) == len(others)
    assert ("The sheet names only SPE_E3: if it is the desired state of SPE_E3 alone (an export made with --sku "
            "SPE_E3), reconcile with --sku SPE_E3 and users' other licenses are left alone.") in err.splitlines()

    code, _out, err = run(capsys, "reconcile", str(export), "--sku", "SPE_E3")
    assert code == 0, err
    assert "No drift: the tenant matches the sheet (scope users, licenses SPE_E3)." in err.splitlines(), err


def test_rows_naming_other_licenses_are_still_compared(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = write_csv(workdir / "want.csv", [
        {"userPrincipalName": upn("adele.vance"), "skuPartNumber": "POWER_BI_PRO"},
    ])
    code, summary, err = run_json(capsys, "reconcile", str(sheet), "--sku", "SPE_E3")
    assert code == 1, err
    # the row asks for Power BI: --sku never hides an ask; of adele's other licenses only SPE_E3 is compared
    e3 = int((upn("adele.vance").lower(), "SPE_E3") in held(workdir))
    assert summary["kinds"] == {"missing": 1, **({"extra": 1} if e3 else {})}, err
    assert any(line.startswith("Drift (scope users, licenses SPE_E3): ") for line in err.splitlines()), err


def test_an_unknown_sku_refuses_the_run(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = write_csv(workdir / "want.csv", [{"userPrincipalName": upn("adele.vance"), "skuPartNumber": "SPE_E3"}])
    code, _out, err = run(capsys, "reconcile", str(sheet), "--sku", "NOT_A_SKU", "--apply")
    assert code == 2, err
    assert err.splitlines()[0].startswith("error: --sku NOT_A_SKU: No license called 'NOT_A_SKU' exists"), err
