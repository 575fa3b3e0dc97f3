"""Real-world layouts read with no map: which header became which role, and which key each messy cell gives.

The files are in ``corpus/`` (``corpus/README.md`` names the source of each); the ``.xlsx`` cases are the same
rows written to a workbook here, so both readers are covered.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

from batch.models import Action, Role
from batch.sheets import ProductCatalog, parse_requests, read_sheet
from batch.sheets.synonyms import role_of

CORPUS = Path(__file__).parent / "corpus"

U, S, L, A, F, T = Role.USER, Role.SKU, Role.USAGE_LOCATION, Role.ACTION, Role.FROM_SKU, Role.TO_SKU

#: file -> (header row, {role: header})
LAYOUTS: dict[str, tuple[int, dict[Role, str]]] = {
    "entra_bulk_create_users_template.csv": (
        2,
        {U: "User name [userPrincipalName] Required", L: "Usage location [usageLocation]", S: "License"},
    ),
    "entra_bulk_create_users_template_older.csv": (
        2,
        {U: "User name [userPrincipalName] Required", L: "Usage location [usageLocation]", S: "Licenses"},
    ),
    "entra_bulk_create_users_template_2019.csv": (
        2,
        {
            U: "User name (example: chris@contoso.com) [userPrincipalName] *",
            L: "Usage location [usageLocation]",
            S: "License",
        },
    ),
    "entra_bulk_delete_template_example_row_left_in.csv": (
        2,
        {U: "User name [userPrincipalName] Required", F: "License to remove"},
    ),
    "entra_bulk_invite_template.csv": (2, {U: "Email address to invite [inviteeEmail] Required", S: "License"}),
    "entra_group_members_import_template.csv": (
        2,
        {U: "Member object ID or user principal name [memberObjectIdOrUpn] Required", S: "License"},
    ),
    "entra_bulk_delete_template_with_action.csv": (
        2,
        {U: "User name [userPrincipalName] Required", A: "Action", S: "License"},
    ),
    "entra_download_users.csv": (1, {U: "userPrincipalName", L: "usageLocation", S: "skuPartNumber"}),
    "entra_download_users_graph_names.csv": (1, {U: "userPrincipalName", L: "usageLocation", S: "License"}),
    "m365_admin_active_users_export.csv": (1, {U: "User principal name", L: "Usage location", S: "Licenses"}),
    "m365_admin_add_multiple_users.csv": (1, {U: "User Name", L: "Country or Region", S: "Licenses"}),
    "powershell_get_mguser_assignedlicenses.csv": (2, {U: "UserPrincipalName", S: "AssignedLicenses"}),
    "powershell_mguser_license_detail.csv": (1, {U: "userPrincipalName", S: "skuPartNumber"}),
    "powershell_azuread_user_licences.csv": (1, {U: "UserName", S: "AssignedLicences"}),
    "powershell_msol_license_breakdown.csv": (1, {U: "UserPrincipalName", S: "Licenses"}),
    "workday_worker_report.csv": (1, {U: "Email - Primary Work", L: "Work Country", S: "License"}),
    "workday_report_title_rows.csv": (4, {U: "Primary Work Email", L: "Work Country", S: "Requested License"}),
    "bamboohr_employee_report.csv": (1, {U: "Work Email", L: "Country", S: "Microsoft 365 License"}),
    "successfactors_employee_export.csv": (1, {U: "Business Email Address", L: "Country/Region", S: "License"}),
    "hr_export_employee_email_office_country.csv": (
        1,
        {U: "Employee Email Address", L: "Office Country", S: "Licenses"},
    ),
    "hr_export_login_column.csv": (1, {U: "Login", L: "Country", S: "License"}),
    "google_workspace_user_export_with_license.csv": (1, {U: "Email Address [Required]", S: "License"}),
    "typed_sheet_instructions_above.csv": (4, {U: "E-mail", S: "Licence(s)", L: "Country"}),
    "replace_sheet_hr_wording.csv": (
        1,
        {U: "Work Email", F: "Current License", T: "New License", L: "Work Country"},
    ),
    "required_suffix_headers.csv": (
        1,
        {U: "User principal name *", S: "License (Required)", L: "Usage location (optional)"},
    ),
    "messy_upn_cells.csv": (1, {U: "UPN", S: "License"}),
    "messy_license_separators.csv": (1, {U: "User principal name", S: "Licenses"}),
}

#: also read as workbooks (same rows, written with openpyxl)
AS_XLSX = [
    "entra_bulk_create_users_template.csv",
    "entra_download_users.csv",
    "m365_admin_active_users_export.csv",
    "workday_report_title_rows.csv",
    "messy_upn_cells.csv",
]


def _csv_rows(name: str) -> list[list[str]]:
    with (CORPUS / name).open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


@pytest.fixture
def corpus_file(write_xlsx: Callable[..., Path]) -> Callable[[str], Path]:
    def get(case: str) -> Path:
        if case.endswith(".xlsx"):
            return write_xlsx(case, {"Sheet1": _csv_rows(case.removesuffix(".xlsx") + ".csv")})
        return CORPUS / case

    return get


def test_corpus_is_complete() -> None:
    files = sorted(p.name for p in CORPUS.glob("*.csv"))
    assert files == sorted(LAYOUTS)
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    assert [f for f in files if f"| {f} |" not in readme] == []
    assert len(files) + len(AS_XLSX) >= 25


@pytest.mark.parametrize("case", [*LAYOUTS, *(f"{n.removesuffix('.csv')}.xlsx" for n in AS_XLSX)])
def test_layout_read_without_map(case: str, corpus_file: Callable[[str], Path]) -> None:
    header_row, expected = LAYOUTS[case.removesuffix(".xlsx") + ".csv" if case.endswith(".xlsx") else case]
    sheet = read_sheet(corpus_file(case))
    assert {role: sheet.headers[i] for role, i in sheet.columns.items()} == expected
    assert sheet.header_row == header_row


def test_admin_center_export_notes_the_columns_it_passed_over() -> None:
    sheet = read_sheet(CORPUS / "m365_admin_active_users_export.csv")
    assert sheet.notes == [
        "columns 'Country/Region' also look like the usage_location column; using 'Usage location' "
        "(choose with --map usage_location=...)",
        "columns 'Object Id' also look like the user column; using 'User principal name' (choose with --map user=...)",
    ]


MESSY_KEYS = [
    "adele.vance@contoso.com",
    "alex.wilber@contoso.com",
    "megan.bowen@contoso.com",
    "lee.gu@contoso.com",
    "adele.vance@contoso.com",
    "diego.siciliani@contoso.com",
    "isaiah.langer@contoso.com",
    "johanna.lorenz@contoso.com",
    "grady.archie@contoso.com",
    "lynne.robbins@contoso.com",
    "Nestor.Wilke@contoso.com",
    "pradeep.gupta@contoso.com",
    "joni.sherman@contoso.com",
    "irvin.sayers@contoso.com",
    "miriam.graham@contoso.com",
    "patti.fernandez@contoso.com",
    "adele_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    "6e03a2db-564a-47ec-ba51-d0cd38af069a",
    "5bde3e51-d13b-4db1-9948-fe4b109d11a7",
    "",
]


@pytest.mark.parametrize("case", ["messy_upn_cells.csv", "messy_upn_cells.xlsx"])
def test_messy_upn_cells_are_looked_up_clean_and_kept_as_written(case: str, corpus_file: Callable[[str], Path]) -> None:
    sheet = read_sheet(corpus_file(case))
    reqs = parse_requests(sheet)
    assert [r.user for r in reqs] == MESSY_KEYS
    written = [row[0] for row in _csv_rows("messy_upn_cells.csv")[1:]]
    # the cells stay exactly as written, only trimmed of ordinary spaces the way every cell is
    assert [row.cells[0] for row in sheet.rows] == [w.strip() for w in written]
    assert sheet.rows[0].cells[0] == "Adele Vance <adele.vance@contoso.com>"
    assert sheet.rows[2].cells[0] == "\u200bmegan.bowen@contoso.com\u200b"
    [empty] = [r for r in reqs if r.user == ""]
    assert [f.code for f in empty.findings] == ["user-missing"]


def test_template_example_row_is_not_taken_for_a_user() -> None:
    reqs = parse_requests(read_sheet(CORPUS / "entra_bulk_delete_template_example_row_left_in.csv"))
    assert [(r.user, r.action, r.sku, [f.code for f in r.findings]) for r in reqs] == [
        ("Example: chris@contoso.com", Action.ASSIGN, "", ["license-missing"]),
        ("isaiah.langer@contoso.com", Action.REMOVE, "SPE_E3", []),
    ]


LICENSE_CELLS_NO_CATALOG = [
    ("a1@contoso.com", "SPE_E3"),
    ("a1@contoso.com", "POWER_BI_PRO"),
    ("a2@contoso.com", "SPE_E3"),
    ("a2@contoso.com", "EMS"),
    ("a3@contoso.com", "SPE_E3"),
    ("a3@contoso.com", "EMS"),
    ("a4@contoso.com", "SPE_E3"),
    ("a4@contoso.com", "POWER_BI_PRO"),
    ("a5@contoso.com", "SPE_E3"),
    ("a5@contoso.com", "POWER_BI_PRO"),
    ("a6@contoso.com", "Microsoft 365 E3"),
    ("a6@contoso.com", "Enterprise Mobility + Security E3"),
    ("a7@contoso.com", "Enterprise Mobility + Security E5"),
    ("a8@contoso.com", "Microsoft 365 E5 (no Teams)"),
    ("a8@contoso.com", "Power BI Pro"),
    ("a9@contoso.com", "Windows 365 Business 16 vCPU, 64 GB, 1 TB"),
    ("a10@contoso.com", "Microsoft 365 F5 Security + Compliance Add-on"),
    ("a10@contoso.com", "Microsoft 365 F3"),
]


def test_license_separators_without_catalog() -> None:
    reqs = parse_requests(read_sheet(CORPUS / "messy_license_separators.csv"))
    assert [(r.user, r.sku) for r in reqs] == LICENSE_CELLS_NO_CATALOG


def test_license_separators_with_microsofts_product_list(product_list: Path) -> None:
    reqs = parse_requests(
        read_sheet(CORPUS / "messy_license_separators.csv"), catalog=ProductCatalog.load(product_list)
    )
    assert [(r.user, r.sku) for r in reqs] == LICENSE_CELLS_NO_CATALOG


def test_admin_center_licenses_cells_split_on_plus(product_list: Path) -> None:
    sheet = read_sheet(CORPUS / "m365_admin_active_users_export.csv")
    reqs = parse_requests(sheet, catalog=ProductCatalog.load(product_list))
    assert [(r.user, r.sku, r.usage_location) for r in reqs] == [
        ("grady.archie@contoso.com", "Microsoft 365 E3", "US"),
        ("grady.archie@contoso.com", "Microsoft Power Automate Free", "US"),
        ("lynne.robbins@contoso.com", "Enterprise Mobility + Security E3", "FR"),
        ("lynne.robbins@contoso.com", "Office 365 E3", "FR"),
        ("nestor.wilke@contoso.com", "Microsoft 365 E5 (no Teams)", "NL"),
        ("nestor.wilke@contoso.com", "Microsoft Teams Enterprise", "NL"),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "Manager Email",
        "Personal Email",
        "Home Email",
        "Email - Primary Home",
        "Alternate email address",
        "alternateEmailAddress",
        "Recovery Email",
        "Work Secondary Email",
        "New Primary Email [UPLOAD ONLY]",
        "Proxy addresses",
        "Name [displayName] Required",
        "Block sign in (Yes/No) [accountEnabled] Required",
        "License assignment details",
        "servicePlanName",
        "Employee ID",
        "TenantId",
        "officeLocation",
        "Office Location",
        "Work Location",
        "Home Country",
        "Supervisor",
    ],
)
def test_generic_words_do_not_make_a_role(header: str) -> None:
    assert role_of(header) is None


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("Country", Role.USAGE_LOCATION),
        ("Location", Role.USAGE_LOCATION),
        ("Country or region [country]", Role.USAGE_LOCATION),
        ("Work Country/Region", Role.USAGE_LOCATION),
        ("Official Email ID", Role.USER),
        ("O365 Email", Role.USER),
        ("Entra ID UPN", Role.USER),
        ("M365 License", Role.SKU),
        ("Assigned Licenses", Role.SKU),
        ("Environment ID", Role.ENVIRONMENT),
        ("Currency type", Role.ADDON),
        ("Amount", Role.AMOUNT),
    ],
)
def test_role_of_variants(header: str, role: Role) -> None:
    hit = role_of(header)
    assert hit is not None and hit[0] is role


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        ("User principal name", "Email"),
        ("User name [userPrincipalName] Required", "Email"),
        ("UPN", "Work Email"),
        ("Work Email", "Employee User ID"),
        ("Business Email Address", "Username"),
        ("Business Email Address", "User ID"),
        ("Usage location [usageLocation]", "Country or region [country]"),
        ("Work Country", "Location"),
        ("Country", "Work Country"),
    ],
)
def test_more_specific_name_wins(better: str, worse: str) -> None:
    b, w = role_of(better), role_of(worse)
    assert b is not None
    assert w is None or (w[0] is b[0] and b[1] < w[1])
