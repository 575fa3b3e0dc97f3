"""Templates: read back with openpyxl (notes, drop-downs, instructions), every column recognised by the reader
without a mapping, a filled users template validates end to end against the sandbox, and --from-tenant fills the
drop-downs from the tenant."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from batch import jobs
from batch.cli import main
from batch.config import load_settings
from batch.models import Role
from batch.sheets import read_sheet
from batch.sheets.columns import detect_columns
from batch.sheets.countries import lookup
from batch.templates import TEMPLATES, Lists, write_all, write_template

REPO = Path(__file__).resolve().parents[1]
ROLES = {
    "users": {Role.USER, Role.SKU, Role.ACTION, Role.FROM_SKU, Role.TO_SKU, Role.DISABLED_PLANS,
              Role.USAGE_LOCATION, Role.PRIORITY},
    "addons": {Role.ENVIRONMENT, Role.ADDON, Role.AMOUNT},
    "reconcile": {Role.USER, Role.SKU, Role.DISABLED_PLANS, Role.USAGE_LOCATION},
    "groups": {Role.USER, Role.GROUP, Role.ACTION, Role.SKU},
    "rules": {Role.USER, Role.SKU, Role.ACTION, Role.DISABLED_PLANS, Role.USAGE_LOCATION},
}  # fmt: skip


def test_shipped_templates_are_what_the_script_writes(tmp_path: Path) -> None:
    write_all(tmp_path)
    for kind in TEMPLATES:
        for ext in ("xlsx", "csv"):
            assert (REPO / "templates" / f"{kind}.{ext}").exists()
        with (REPO / "templates" / f"{kind}.csv").open(encoding="utf-8-sig") as f:
            assert next(csv.reader(f)) == [c.header for c in TEMPLATES[kind].columns]
        shipped = openpyxl.load_workbook(REPO / "templates" / f"{kind}.xlsx")
        fresh = openpyxl.load_workbook(tmp_path / f"{kind}.xlsx")
        for name in fresh.sheetnames:
            assert [list(r) for r in shipped[name].iter_rows(values_only=True)] == \
                   [list(r) for r in fresh[name].iter_rows(values_only=True)], (kind, name)  # fmt: skip


@pytest.mark.parametrize("kind", list(TEMPLATES))
def test_template_has_notes_dropdowns_and_instructions(kind: str) -> None:
    t = TEMPLATES[kind]
    wb = openpyxl.load_workbook(REPO / "templates" / f"{kind}.xlsx")
    assert wb.sheetnames == [t.sheet, "Lists", "Instructions"]
    assert wb["Lists"].sheet_state == "hidden"
    ws = wb[t.sheet]
    headers = [c.value for c in ws[1]]
    assert headers == [c.header for c in t.columns]
    for cell, col in zip(ws[1], t.columns, strict=True):
        assert cell.comment is not None and cell.comment.text == col.note
    lists = wb["Lists"]
    by_name = {lists.cell(row=1, column=j).value: j for j in range(1, lists.max_column + 1)}
    validations = {str(dv.sqref): dv for dv in ws.data_validations.dataValidation}
    expected = {"users": {"C": "actions", "G": "countries"}, "addons": {"B": "addons"},
                "reconcile": {"D": "countries"}, "groups": {"C": "member_actions"},
                "rules": {"C": "actions", "E": "countries"}}[kind]  # fmt: skip
    assert {ref[0] for ref in validations} == set(expected)
    for ref, dv in validations.items():
        name = expected[ref[0]]
        assert dv.type == "list" and dv.formula1.startswith("'Lists'!$") and ref == f"{ref[0]}2:{ref[0]}5000"
        col = openpyxl.utils.get_column_letter(by_name[name])
        assert dv.formula1.startswith(f"'Lists'!${col}$2:${col}$")
    instructions = [r[1] for r in wb["Instructions"].iter_rows(values_only=True) if r[1]]
    assert instructions[0] == t.instructions[0]
    wb.close()


def test_dropdown_values_are_understood_by_the_reader() -> None:
    lists = Lists.offline()
    assert len(lists.countries) > 200
    from batch.sheets.countries import COUNTRIES

    assert {lookup(name) for name in lists.countries} == set(COUNTRIES)
    from batch.kinds.addons.names import ADDONS

    assert lists.addons == [a.name for a in ADDONS]
    assert lists.actions == ["assign", "remove", "replace"]


@pytest.mark.parametrize("kind", ["addons", "reconcile"])
def test_every_column_is_recognised_without_a_mapping(kind: str, tmp_path: Path) -> None:
    wb = openpyxl.load_workbook(REPO / "templates" / f"{kind}.xlsx")
    ws = wb[TEMPLATES[kind].sheet]
    if kind == "addons":
        ws.append(["Default-tenant", "AI Builder credits", 500])
    else:
        ws.append(["adele.vance@contoso.onmicrosoft.com", "SPE_E3", "", "Germany"])
    path = tmp_path / f"{kind}.xlsx"
    wb.save(path)
    headers = [str(c.value) for c in ws[1]]
    assert set(detect_columns(headers, None)[0]) == ROLES[kind]
    sheet = read_sheet(path)
    assert sheet.sheet_name == TEMPLATES[kind].sheet
    assert set(sheet.columns) == ROLES[kind]
    assert len(sheet.rows) == 1


def test_filled_users_template_validates_against_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    wb = openpyxl.load_workbook(REPO / "templates" / "users.xlsx")
    ws = wb["Users"]
    ws.append(["megan.bowen@contoso.onmicrosoft.com", "SPE_E3", "assign", None, None, "YAMMER_ENTERPRISE",
               "Germany", 1])
    ws.append(["alex.wilber@contoso.onmicrosoft.com", None, "replace", "STANDARDPACK", "SPE_E3", None, None, None])
    ws.append(["adele.vance@contoso.onmicrosoft.com", "SPE_E3", "remove", None, None, None, None, None])
    path = tmp_path / "wave.xlsx"
    wb.save(path)
    settings = load_settings(env={"LICENSE_BATCH_SANDBOX_DB": str(tmp_path / "sandbox.db")}, report_dir=tmp_path / "r")
    assert settings.column_map == {}
    with jobs.open_session(settings) as session:
        res = jobs.validate_file(session, path)
    assert set(res.validation.sheet.columns) == ROLES["users"]
    summary = jobs.validation_summary(res)
    assert (summary["rows"], summary["errors"], summary["ok"]) == (3, 0, 3), [
        (c.request.row, [f.code for f in c.findings]) for c in res.validation.requests]


def test_template_command_from_tenant_fills_the_dropdowns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("LICENSE_BATCH_GRAPH_URL", "LICENSE_BATCH_TENANT", "LICENSE_BATCH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert main(["template", "users", "-o", "u.xlsx", "--from-tenant"]) == 0
    assert main(["template", "addons", "-o", "a.xlsx", "--from-tenant"]) == 0
    err = capsys.readouterr().err
    assert "Wrote the users template to u.xlsx (drop-downs from the tenant)." in err
    wb = openpyxl.load_workbook(tmp_path / "u.xlsx")
    lists = {col[0].value: [c.value for c in col[1:] if c.value] for col in wb["Lists"].iter_cols()}
    # by product name (each one resolves back to its SKU), one entry per user-assignable SKU
    assert {"Microsoft 365 E3", "Power BI Pro", "Office 365 E1"} <= set(lists["licenses"])
    assert len(lists["licenses"]) == 14
    assert not any("AI Builder" in x for x in lists["licenses"])  # company-only add-ons are not for users
    assert "YAMMER_ENTERPRISE" in lists["plans"]
    refs = {str(dv.sqref)[0] for dv in wb["Users"].data_validations.dataValidation}
    assert refs == {"B", "C", "D", "E", "F", "G"}
    wb = openpyxl.load_workbook(tmp_path / "a.xlsx")
    lists = {col[0].value: [c.value for c in col[1:] if c.value] for col in wb["Lists"].iter_cols()}
    from batch.sandbox import tenant_info

    assert sorted(lists["environments"]) == sorted(tenant_info(tmp_path / "sandbox.db")["environments"])
    assert main(["template", "groups", "-o", "g.xlsx", "--from-tenant"]) == 0
    wb = openpyxl.load_workbook(tmp_path / "g.xlsx")
    lists = {col[0].value: [c.value for c in col[1:] if c.value] for col in wb["Lists"].iter_cols()}
    # the licensing groups (the department groups carry no license and are not offered)
    assert lists["groups"] == ["Licensing - Audio Conferencing", "Licensing - Copilot", "Licensing - Microsoft 365 E3",
                               "Licensing - Power Apps Premium"]
    assert {str(dv.sqref)[0] for dv in wb["Memberships"].data_validations.dataValidation} == {"B", "C", "D"}
    assert main(["template", "users", "-o", "u.csv"]) == 0
    assert (tmp_path / "u.csv").read_text(encoding="utf-8-sig").splitlines() == [
        "User,License,Action,From license,To license,Disabled plans,Usage location,Priority"]


def test_unknown_template_output_suffix_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "users", "-o", str(tmp_path / "u.txt")]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'u.txt'}: A template is written as .xlsx or .csv, not '.txt'.\nNothing was applied.\n")


def test_write_template_rejects_unknown_kind(tmp_path: Path) -> None:
    from batch.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        write_template("departments", tmp_path / "g.xlsx")
    assert str(e.value) == "Unknown template 'departments'. Use one of: users, addons, groups, rules, reconcile."


def test_filled_addons_template_validates_against_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from batch.sandbox import tenant_info

    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"LICENSE_BATCH_SANDBOX_DB": str(tmp_path / "sandbox.db")}, report_dir=tmp_path / "r")
    jobs.ensure_sandbox(settings.sandbox)
    envs = tenant_info(settings.sandbox.db)["environments"]
    wb = openpyxl.load_workbook(REPO / "templates" / "addons.xlsx")
    ws = wb["Add-ons"]
    ws.append(["Contoso Production", "AI Builder credits", 1])
    assert "Contoso Production" in envs
    path = tmp_path / "addons.xlsx"
    wb.save(path)
    with jobs.open_session(settings) as session:
        res = jobs.validate_file(session, path)
    summary = jobs.validation_summary(res)
    assert (summary["rows"], summary["errors"]) == (1, 0), summary


@pytest.mark.parametrize(
    ("kind", "row", "want"),
    [
        ("groups", ["adele.vance@contoso.onmicrosoft.com", "Licensing - Power Apps Premium", "add", None], "groups"),
        ("rules", ["Department=Finance", "AAD_PREMIUM", "assign", None, "United States"], "licenses"),
    ],
)
def test_filled_group_and_rule_templates_validate_against_the_sandbox(
    kind: str, row: list[str | None], want: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    wb = openpyxl.load_workbook(REPO / "templates" / f"{kind}.xlsx")
    wb[TEMPLATES[kind].sheet].append(row)
    path = tmp_path / f"{kind}.xlsx"
    wb.save(path)
    settings = load_settings(env={"LICENSE_BATCH_SANDBOX_DB": str(tmp_path / "sandbox.db")}, report_dir=tmp_path / "r")
    with jobs.open_session(settings) as session:
        res = jobs.validate_file(session, path)
    assert res.validation.sheet.kind.value == want
    assert set(res.validation.sheet.columns) == ROLES[kind]
    errors = [(f.code, f.message) for c in res.validation.requests for f in c.findings if f.severity == "error"]
    assert errors == [] and res.validation.requests
