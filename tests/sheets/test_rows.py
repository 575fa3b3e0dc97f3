"""parse_requests: rows -> LicenseRequests, in order, none dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.errors import Severity
from batch.models import Action, InputRow, LicenseRequest, Role, Sheet
from batch.sheets import ProductCatalog, parse_requests, split_licenses


def sheet(headers: tuple[str, ...], columns: dict[Role, int], *rows: tuple[str, ...]) -> Sheet:
    return Sheet(
        path=Path("in.csv"),
        format="csv",
        sheet_name=None,
        encoding="utf-8",
        delimiter=",",
        header_row=1,
        headers=headers,
        rows=[InputRow(i, i + 2, r) for i, r in enumerate(rows)],
        columns=columns,
    )


FULL = ("UPN", "Action", "License", "From license", "Disabled plans", "Usage location", "Priority")
FULL_COLS = {
    Role.USER: 0,
    Role.ACTION: 1,
    Role.SKU: 2,
    Role.FROM_SKU: 3,
    Role.DISABLED_PLANS: 4,
    Role.USAGE_LOCATION: 5,
    Role.PRIORITY: 6,
}


def one(*cells: str) -> list[LicenseRequest]:
    return parse_requests(sheet(FULL, FULL_COLS, tuple(cells)))


@pytest.mark.parametrize(
    ("word", "action"),
    [
        ("assign", Action.ASSIGN),
        ("Add", Action.ASSIGN),
        ("GRANT", Action.ASSIGN),
        ("+", Action.ASSIGN),
        ("remove", Action.REMOVE),
        ("Revoke", Action.REMOVE),
        ("unassign", Action.REMOVE),
        ("delete", Action.REMOVE),
        ("-", Action.REMOVE),
        (" remove ", Action.REMOVE),
        ("", Action.ASSIGN),
    ],
)
def test_action_words(word: str, action: Action) -> None:
    [r] = one("a@contoso.com", word, "SPE_E3", "", "", "", "")
    assert r.action is action and r.sku == "SPE_E3" and r.findings == ()


@pytest.mark.parametrize("word", ["replace", "Swap", "change", "MOVE"])
def test_replace_words(word: str) -> None:
    [r] = one("a@contoso.com", word, "SPE_E5", "SPE_E3", "", "", "")
    assert (r.action, r.sku, r.from_sku, r.findings) == (Action.REPLACE, "SPE_E5", "SPE_E3", ())


def test_empty_action_with_from_is_replace() -> None:
    [r] = one("a@contoso.com", "", "SPE_E5", "SPE_E3", "", "", "")
    assert (r.action, r.sku, r.from_sku) == (Action.REPLACE, "SPE_E5", "SPE_E3")


def test_several_licenses_per_cell() -> None:
    reqs = one("a@contoso.com", "", "SPE_E3; EMS | POWER_BI_PRO\nFLOW_FREE, VISIOCLIENT", "", "", "DE", "2")
    assert [r.sku for r in reqs] == ["SPE_E3", "EMS", "POWER_BI_PRO", "FLOW_FREE", "VISIOCLIENT"]
    assert {(r.row, r.row_number, r.usage_location, r.priority) for r in reqs} == {(0, 2, "DE", 2)}


def test_repeated_license_in_cell_once() -> None:
    assert [r.sku for r in one("a@contoso.com", "", "SPE_E3;spe_e3;EMS", "", "", "", "")] == ["SPE_E3", "EMS"]


def test_disabled_plans_split() -> None:
    [r] = one(
        "a@contoso.com",
        "",
        "SPE_E3",
        "",
        "SWAY; YAMMER_ENTERPRISE, TEAMS1|a1b2c3d4-0000-0000-0000-000000000000",
        "",
        "",
    )
    assert r.disabled_plans == ("SWAY", "YAMMER_ENTERPRISE", "TEAMS1", "a1b2c3d4-0000-0000-0000-000000000000")


def test_priority_parsing() -> None:
    assert one("a@x", "", "E3", "", "", "", "1.0")[0].priority == 1
    assert one("a@x", "", "E3", "", "", "", " 12 ")[0].priority == 12
    [r] = one("a@x", "", "E3", "", "", "", "high")
    assert r.priority is None
    [f] = r.findings
    assert (f.code, f.severity, f.row, f.column) == ("priority-invalid", Severity.WARNING, 2, "Priority")
    assert f.message == "Priority 'high' is not a whole number, so the row has no priority."


def test_user_missing_gives_one_request_with_finding() -> None:
    [r] = one("", "", "SPE_E3; EMS", "", "", "", "")
    assert r.user == "" and r.sku == "SPE_E3; EMS"
    [f] = r.findings
    assert (f.code, f.severity, f.row, f.column) == ("user-missing", Severity.ERROR, 2, "UPN")
    assert f.fix


def test_action_unknown() -> None:
    [r] = one("a@contoso.com", "upgrade", "SPE_E5", "", "", "", "")
    assert r.action is None
    [f] = r.findings
    assert (f.code, f.column, f.message) == ("action-unknown", "Action", "'upgrade' is not an action this tool knows.")


def test_replace_incomplete() -> None:
    [r] = one("a@contoso.com", "replace", "SPE_E5", "", "", "", "")
    assert [(f.code, f.column) for f in r.findings] == [("replace-incomplete", "From license")]
    [r] = one("a@contoso.com", "swap", "", "SPE_E3", "", "", "")
    assert [(f.code, f.column) for f in r.findings] == [("replace-incomplete", "License")]


def test_replace_with_several_licenses() -> None:
    [r] = one("a@contoso.com", "replace", "SPE_E5", "SPE_E3; EMS", "", "", "")
    assert [f.code for f in r.findings] == ["replace-multiple"]


def test_license_missing() -> None:
    [r] = one("a@contoso.com", "assign", "", "", "", "", "")
    assert [(f.code, f.column) for f in r.findings] == [("license-missing", "License")]


def test_several_errors_on_one_row() -> None:
    [r] = one("", "frobnicate", "", "", "", "", "x")
    assert [f.code for f in r.findings] == ["user-missing", "action-unknown", "priority-invalid"]


def test_assign_with_from_license_warns() -> None:
    [r] = one("a@contoso.com", "assign", "SPE_E5", "SPE_E3", "", "", "")
    assert (r.action, r.sku, r.from_sku) == (Action.ASSIGN, "SPE_E5", None)
    assert [(f.code, f.severity) for f in r.findings] == [("from-sku-ignored", Severity.WARNING)]


def test_from_to_sheet() -> None:
    s = sheet(
        ("UPN", "From", "To"),
        {Role.USER: 0, Role.FROM_SKU: 1, Role.TO_SKU: 2},
        ("a@x", "SPE_E3", "SPE_E5"),
        ("b@x", "", "EMS"),
        ("c@x", "EMS", ""),
    )
    reqs = parse_requests(s)
    assert [(r.action, r.sku, r.from_sku) for r in reqs[:2]] == [
        (Action.REPLACE, "SPE_E5", "SPE_E3"),
        (Action.ASSIGN, "EMS", None),
    ]
    assert [f.code for f in reqs[2].findings] == ["replace-incomplete"]


def test_only_a_from_column_means_remove() -> None:
    s = sheet(("UPN", "License to remove"), {Role.USER: 0, Role.FROM_SKU: 1}, ("a@x", "SPE_E3"))
    [r] = parse_requests(s)
    assert (r.action, r.sku, r.findings) == (Action.REMOVE, "SPE_E3", ())


def test_input_order_and_no_row_dropped() -> None:
    rows = [(f"u{i}@x" if i % 7 else "", "", "E3;EMS" if i % 3 == 0 else "E3", "", "", "", "") for i in range(50)]
    reqs = parse_requests(sheet(FULL, FULL_COLS, *rows))
    assert sorted({r.row for r in reqs}) == list(range(50))
    assert [r.row for r in reqs] == sorted(r.row for r in reqs)


def test_commas_inside_product_names() -> None:
    # No catalog: a comma splits only tokens without spaces.
    assert split_licenses("SPE_E3, EMS") == ["SPE_E3", "EMS"]
    name = "Dynamics 365 for Sales, Enterprise Edition for Government"
    assert split_licenses(name) == [name]
    assert split_licenses(f"{name}; SPE_E3") == [name, "SPE_E3"]


def test_commas_with_catalog() -> None:
    text = (
        "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n"
        '"Windows 365 Business 16 vCPU, 64 GB, 1 TB",CPC_B_16C_64GB_1TB,11111111-1111-1111-1111-111111111111,P,'
        "22222222-2222-2222-2222-222222222222,Plan\n"
        "Power BI Pro,POWER_BI_PRO,33333333-3333-3333-3333-333333333333,P,22222222-2222-2222-2222-222222222222,Plan\n"
        "Microsoft 365 E3,SPE_E3,44444444-4444-4444-4444-444444444444,P,22222222-2222-2222-2222-222222222222,Plan\n"
    )
    cat = ProductCatalog.from_text(text)
    w = "Windows 365 Business 16 vCPU, 64 GB, 1 TB"
    assert split_licenses(w, cat) == [w]
    assert split_licenses("Microsoft 365 E3, Power BI Pro", cat) == ["Microsoft 365 E3", "Power BI Pro"]
