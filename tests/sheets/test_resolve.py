"""Resolution helpers: licenses, service plans and usage locations, against a tenant's SKUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.errors import RowFinding, Severity
from batch.models import ServicePlan, Sku
from batch.sheets import (
    ProductCatalog,
    ResolvedSku,
    SkuResolver,
    country_name,
    resolve_plans,
    resolve_sku,
    resolve_usage_location,
)
from batch.sheets.countries import ALPHA3, COUNTRIES

E3_ID = "05e9a617-0261-4cee-bb44-138d3ef5d965"
F1_ID = "44575883-256e-4a79-9da4-ebe9acabe2b2"
F1_COMM_ID = "50f60901-3181-4b75-8a2c-4c8e4c1d5a72"
E5_ID = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"
AAD_ID = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"  # AAD_PREMIUM
COMPANY_ID = "00000000-0000-0000-0000-00000000c0c0"

EXO = ServicePlan("efb87545-963c-4e0d-99df-69c6916d9eb0", "EXCHANGE_S_ENTERPRISE")
SWAY = ServicePlan("a23b959c-7ce8-4e57-9140-b90eb88a9e97", "SWAY")
TEAMS = ServicePlan("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1")
FOUNDATION = ServicePlan("113feb6c-3fe4-4440-bddc-54d774bf0318", "EXCHANGE_S_FOUNDATION", applies_to="Company")


def sku(
    sku_id: str, part: str, applies_to: str = "User", name: str | None = None, plans: tuple[ServicePlan, ...] = ()
) -> Sku:
    return Sku(sku_id, part, applies_to, "Enabled", 100, 10, service_plans=plans, product_name=name)


SKUS = {
    E3_ID: sku(E3_ID, "SPE_E3", plans=(EXO, SWAY, TEAMS, FOUNDATION)),
    F1_ID: sku(F1_ID, "M365_F1"),
    F1_COMM_ID: sku(F1_COMM_ID, "M365_F1_COMM"),
    COMPANY_ID: sku(COMPANY_ID, "MCOPSTNC", applies_to="Company", name="Communications Credits"),
}

CATALOG_TEXT = (
    "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n"
    f"Microsoft 365 E3,SPE_E3,{E3_ID},EXCHANGE_S_ENTERPRISE,{EXO.id},Exchange Online (Plan 2)\n"
    f"Microsoft 365 E3,SPE_E3,{E3_ID},SWAY,{SWAY.id},Sway\n"
    f"Microsoft 365 E3,SPE_E3,{E3_ID},TEAMS1,{TEAMS.id},Microsoft Teams\n"
    f"Microsoft 365 F1,M365_F1,{F1_ID},SWAY,{SWAY.id},Sway\n"
    f"Microsoft 365 F1,M365_F1_COMM,{F1_COMM_ID},SWAY,{SWAY.id},Sway\n"
    f"Microsoft 365 E5,SPE_E5,{E5_ID},SWAY,{SWAY.id},Sway\n"
    f"Microsoft Entra ID P1,AAD_PREMIUM,{AAD_ID},AAD_PREMIUM,"
    "41781fb2-bc02-4b7c-bd55-b576c07bb09d,Microsoft Entra ID P1\n"
    f"Microsoft Entra ID P1,AAD_PREMIUM_FACULTY,11111111-2222-3333-4444-555555555555,AAD_PREMIUM,"
    "41781fb2-bc02-4b7c-bd55-b576c07bb09d,Microsoft Entra ID P1\n"
)


@pytest.fixture
def catalog() -> ProductCatalog:
    return ProductCatalog.from_text(CATALOG_TEXT)


def ok(result: ResolvedSku | RowFinding) -> ResolvedSku:
    assert isinstance(result, ResolvedSku), result
    return result


def finding(result: object) -> RowFinding:
    assert isinstance(result, RowFinding), result
    return result


# --------------------------------------------------------------------------------------- licenses


@pytest.mark.parametrize("text", ["SPE_E3", "spe_e3", f"{E3_ID}", E3_ID.upper(), "{" + E3_ID + "}", " SPE_E3 "])
def test_offline_by_part_number_or_guid(text: str) -> None:
    r = ok(resolve_sku(text, SKUS))
    assert r.sku.sku_id == E3_ID
    assert r.matched_by in ("part-number", "sku-id")


def test_product_name_via_catalog(catalog: ProductCatalog) -> None:
    r = ok(resolve_sku("microsoft 365  e3", SKUS, catalog))
    assert (r.sku.part_number, r.matched_by, r.product_name) == ("SPE_E3", "product-name", "Microsoft 365 E3")
    assert r.label == "SPE_E3 (Microsoft 365 E3)"


def test_product_name_via_tenant_product_name() -> None:
    skus = {E3_ID: sku(E3_ID, "SPE_E3", name="Microsoft 365 E3")}
    assert ok(resolve_sku("Microsoft 365 E3", skus)).matched_by == "product-name"


def test_product_name_offline_without_names_is_unknown() -> None:
    f = finding(resolve_sku("Microsoft 365 E3", SKUS))
    assert f.code == "sku-unknown"
    assert f.message == "No license called 'Microsoft 365 E3' exists in this tenant."


def test_ambiguous_in_tenant(catalog: ProductCatalog) -> None:
    f = finding(resolve_sku("Microsoft 365 F1", SKUS, catalog, row=7, column="License"))
    assert (f.code, f.severity, f.row, f.column) == ("sku-ambiguous", Severity.ERROR, 7, "License")
    assert f.message == (
        "'Microsoft 365 F1' matches 2 licenses in this tenant: M365_F1 (Microsoft 365 F1), "
        "M365_F1_COMM (Microsoft 365 F1)."
    )
    assert f.fix == "Write the skuPartNumber of the one you mean instead of the product name."


def test_ambiguous_products_none_in_tenant(catalog: ProductCatalog) -> None:
    f = finding(resolve_sku("Microsoft Entra ID P1", SKUS, catalog))
    assert f.code == "sku-ambiguous"
    assert f.message == (
        "'Microsoft Entra ID P1' names 2 products, and this tenant has none of them: "
        "AAD_PREMIUM (Microsoft Entra ID P1), AAD_PREMIUM_FACULTY (Microsoft Entra ID P1)."
    )


@pytest.mark.parametrize("text", ["SPE_E5", "Microsoft 365 E5", E5_ID])
def test_not_in_tenant(catalog: ProductCatalog, text: str) -> None:
    f = finding(resolve_sku(text, SKUS, catalog))
    assert f.code == "sku-not-in-tenant"
    assert (
        f.message
        == f"'{text}' is SPE_E5 (Microsoft 365 E5) in Microsoft's product list, but it is not purchased in this tenant."
    )
    assert f.fix == (
        "Buy it first, or use a license the tenant has: M365_F1 (Microsoft 365 F1), "
        "M365_F1_COMM (Microsoft 365 F1), SPE_E3 (Microsoft 365 E3)."
    )


def test_unknown_everywhere(catalog: ProductCatalog) -> None:
    f = finding(resolve_sku("SPE_E33", SKUS, catalog))
    assert f.code == "sku-unknown"
    assert (
        f.message
        == "No license called 'SPE_E33' exists in this tenant or in Microsoft's product list. Nearest names: 'SPE_E3'."
    )
    f = finding(resolve_sku("11111111-0000-0000-0000-000000000000", SKUS, catalog))
    assert f.code == "sku-unknown"
    assert "(no product has this skuId)" in f.message


def test_not_assignable() -> None:
    f = finding(resolve_sku("MCOPSTNC", SKUS))
    assert f.code == "sku-not-assignable"
    assert f.message == (
        "MCOPSTNC (Communications Credits) applies to the whole organisation (appliesTo Company); "
        "it cannot be assigned to a user."
    )


def test_comma_separated_names_are_explained(catalog: ProductCatalog) -> None:
    f = finding(resolve_sku("Microsoft 365 E3, M365_F1", SKUS, catalog))
    assert f.code == "sku-unknown"
    assert f.message == "'Microsoft 365 E3, M365_F1' looks like 2 licenses separated by commas."


def test_empty_text() -> None:
    assert finding(resolve_sku("  ", SKUS)).code == "license-missing"


def test_resolver_caches_but_stamps_rows(catalog: ProductCatalog) -> None:
    r = SkuResolver(SKUS, catalog)
    a = finding(r.resolve("nope", row=2, column="License"))
    b = finding(r.resolve("nope", row=9))
    assert (a.row, a.column, b.row, b.column) == (2, "License", 9, None)
    assert ok(r.resolve("SPE_E3")) is ok(r.resolve(" SPE_E3 "))  # cached per trimmed text


def test_with_reference_catalog(product_list: Path) -> None:
    cat = ProductCatalog.load(product_list)
    skus = {E3_ID: sku(E3_ID, "SPE_E3")}
    assert ok(resolve_sku("Microsoft 365 E3", skus, cat)).sku.part_number == "SPE_E3"
    f = finding(resolve_sku("Visio Plan 2", skus, cat))
    assert f.code == "sku-ambiguous" and "VISIOCLIENT" in f.message and "VISIO_PLAN2_DEPT" in f.message
    f = finding(resolve_sku("POWER_BI_PRO", skus, cat))
    assert f.code == "sku-not-in-tenant" and "Power BI Pro" in f.message


# ------------------------------------------------------------------------------------------ plans


def test_plans_by_name_id_and_friendly(catalog: ProductCatalog) -> None:
    e3 = SKUS[E3_ID]
    ids, findings = resolve_plans(["sway", EXO.id.upper(), "Microsoft Teams"], e3, catalog)
    assert ids == frozenset({SWAY.id, EXO.id, TEAMS.id}) and findings == []


def test_plan_not_in_sku(catalog: ProductCatalog) -> None:
    ids, findings = resolve_plans(
        ["SWAYY", "YAMMER_ENTERPRISE", "Microsoft Teams"], SKUS[E3_ID], None, row=4, column="Disabled plans"
    )
    assert ids == frozenset()
    assert [f.code for f in findings] == ["plan-not-in-sku"] * 3
    f = findings[0]
    assert (f.row, f.column) == (4, "Disabled plans")
    assert f.message == "Service plan 'SWAYY' is not part of SPE_E3. Did you mean 'SWAY'?"
    assert f.fix == "Use a service plan name of SPE_E3, e.g. EXCHANGE_S_ENTERPRISE, SWAY, TEAMS1."
    # with a catalog the message names the product too
    _, [g] = resolve_plans(["YAMMER_ENTERPRISE"], SKUS[E3_ID], catalog)
    assert g.message == "Service plan 'YAMMER_ENTERPRISE' is not part of SPE_E3 (Microsoft 365 E3)."


def test_plan_guid_of_other_sku() -> None:
    _, [f] = resolve_plans(["41781fb2-bc02-4b7c-bd55-b576c07bb09d"], SKUS[E3_ID])
    assert f.code == "plan-not-in-sku"


# ------------------------------------------------------------------------------------ usage location


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        (" gb ", "GB"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("USA", "US"),
        ("US", "US"),
        ("United States of America", "US"),
        ("united states", "US"),
        ("Deutschland", "DE"),
        ("Germany", "DE"),
        ("DEU", "DE"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("Netherlands", "NL"),
        ("NLD", "NL"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Korea, Republic of", "KR"),
        ("South Korea", "KR"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Åland Islands", "AX"),
        ("St Lucia", "LC"),
        ("Bosnia & Herzegovina", "BA"),
        ("CHE", "CH"),
        ("Schweiz", "CH"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
    ],
)
def test_usage_location_ok(text: str, code: str) -> None:
    assert resolve_usage_location(text) == code


@pytest.mark.parametrize("text", ["XX", "EU", "Germnay", "Berlin office", "", "ZZZ", "12"])
def test_usage_location_invalid(text: str) -> None:
    f = finding(resolve_usage_location(text, row=3, column="Country"))
    assert (f.code, f.severity, f.row, f.column) == ("usage-location-invalid", Severity.ERROR, 3, "Country")
    assert f.fix == "Write the country's two-letter code, e.g. DE (Germany), GB (United Kingdom) or US (United States)."


def test_usage_location_suggestion() -> None:
    f = finding(resolve_usage_location("Germnay"))
    assert f.message == (
        "'Germnay' is not a country: the usage location must be a two-letter ISO 3166 code. Did you mean Germany (DE)?"
    )


def test_country_table() -> None:
    assert len(COUNTRIES) == 249 and len(ALPHA3) == 249
    assert all(len(c) == 2 and c.isupper() for c in COUNTRIES)
    assert all(len(c) == 3 and c.isupper() for c in ALPHA3)
    assert country_name("gb") == "United Kingdom"


def test_a_string_id_written_as_words_resolves_to_the_tenants_sku() -> None:
    """Admins write "Microsoft 365 Copilot"; the tenant's part number is Microsoft_365_Copilot and Microsoft's
    list calls it "Microsoft Copilot for Microsoft 365": the words still name that SKU."""
    from batch.models import Sku
    from batch.sheets import SkuResolver

    copilot = Sku("639dec6b-bb19-468b-871c-c5c441c4b0cb", "Microsoft_365_Copilot", "User", "Enabled", 10, 2)
    got = SkuResolver({copilot.sku_id: copilot}).resolve("Microsoft 365 Copilot")
    assert not isinstance(got, RowFinding) and got.sku is copilot
