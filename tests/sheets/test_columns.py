"""Column detection by usual names, and --map overrides."""

from __future__ import annotations

import pytest

from batch.models import Role
from batch.sheets import SYNONYMS, detect_columns, read_sheet
from batch.sheets.columns import norm, role_of


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("userPrincipalName", Role.USER),
        ("User Principal Name", Role.USER),
        ("user_principal_name", Role.USER),
        ("UPN", Role.USER),
        ("E-Mail", Role.USER),
        ("email address", Role.USER),
        ("Work Email", Role.USER),
        ("Mail", Role.USER),
        ("User", Role.USER),
        ("Object ID", Role.USER),
        ("objectId", Role.USER),
        ("User Id", Role.USER),
        ("Email (work)", Role.USER),
        ("skuId", Role.SKU),
        ("SKU", Role.SKU),
        ("skuPartNumber", Role.SKU),
        ("License", Role.SKU),
        ("Licence", Role.SKU),
        ("Licenses", Role.SKU),
        ("License(s)", Role.SKU),
        ("Product", Role.SKU),
        ("Product name", Role.SKU),
        ("String ID", Role.SKU),
        ("String_Id", Role.SKU),
        ("Action", Role.ACTION),
        ("Operation", Role.ACTION),
        ("Change", Role.ACTION),
        ("From SKU", Role.FROM_SKU),
        ("From license", Role.FROM_SKU),
        ("Old License", Role.FROM_SKU),
        ("Current license", Role.FROM_SKU),
        ("Remove license", Role.FROM_SKU),
        ("To SKU", Role.TO_SKU),
        ("To license", Role.TO_SKU),
        ("New License", Role.TO_SKU),
        ("Target license", Role.TO_SKU),
        ("Disabled plans", Role.DISABLED_PLANS),
        ("Disabled service plans", Role.DISABLED_PLANS),
        ("disabledPlans", Role.DISABLED_PLANS),
        ("Exclude plans", Role.DISABLED_PLANS),
        ("Usage location", Role.USAGE_LOCATION),
        ("usageLocation", Role.USAGE_LOCATION),
        ("Country", Role.USAGE_LOCATION),
        ("Country or region", Role.USAGE_LOCATION),
        ("Country/Region", Role.USAGE_LOCATION),
        ("Location", Role.USAGE_LOCATION),
        ("Priority", Role.PRIORITY),
        (" PRIORITY ", Role.PRIORITY),
    ],
)
def test_synonyms(header: str, role: Role) -> None:
    hit = role_of(header)
    assert hit is not None and hit[0] is role


@pytest.mark.parametrize("header", ["Name", "Department", "ID", "From", "To", "Order", "Notes", ""])
def test_not_a_role(header: str) -> None:
    assert role_of(header) is None


def test_synonym_table_has_no_clashes() -> None:
    seen: dict[str, Role] = {}
    for role, names in SYNONYMS.items():
        for n in names:
            k = norm(n)
            assert seen.setdefault(k, role) is role, f"{n!r} is listed for {seen[k]} and {role}"


def test_most_specific_user_column_wins() -> None:
    cols, notes = detect_columns(("Email", "Licence", "UPN"), None)
    assert cols[Role.USER] == 2
    assert notes == ["columns 'Email' also look like the user column; using 'UPN' (choose with --map user=...)"]


def test_replace_sheet_without_sku_column(write_text) -> None:  # type: ignore[no-untyped-def]
    s = read_sheet(write_text("swap.csv", "UPN,Old license,New license\na@contoso.com,SPE_E3,SPE_E5\n"))
    assert s.columns == {Role.USER: 0, Role.FROM_SKU: 1, Role.TO_SKU: 2}


def test_column_map_overrides_detection(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("m.csv", "UPN,Work Email,License,Bundle\nx,a@contoso.com,SPE_E3,EMS\n")
    s = read_sheet(p, column_map={"user": "work email", "SKU": "BUNDLE"})
    assert s.columns == {Role.USER: 1, Role.SKU: 3}  # the detected UPN/License yield to the map
    assert s.header_for(Role.USER) == "Work Email"


def test_column_map_finds_header_with_unknown_names(write_text) -> None:  # type: ignore[no-untyped-def]
    p = write_text("m.csv", "Report\nStaff,Package\na@contoso.com,SPE_E3\n")
    s = read_sheet(p, column_map={"user": "Staff", "sku": "Package"})
    assert s.header_row == 2
    assert s.columns == {Role.USER: 0, Role.SKU: 1}


@pytest.mark.parametrize("role_name", ["from-sku", "From SKU", "FROM_SKU", "fromsku"])
def test_column_map_role_spellings(write_text, role_name: str) -> None:  # type: ignore[no-untyped-def]
    p = write_text("m.csv", "UPN,A,B\na@contoso.com,SPE_E3,SPE_E5\n")
    s = read_sheet(p, column_map={role_name: "A", "to_sku": "B"})
    assert s.columns == {Role.USER: 0, Role.FROM_SKU: 1, Role.TO_SKU: 2}
