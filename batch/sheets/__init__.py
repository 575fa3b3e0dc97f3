"""Reading input sheets: formats, encodings, header and column detection, rows -> requests, and the
name resolution validation uses (licenses, service plans, usage locations).

    read_sheet(path, *, sheet=None, column_map=None) -> models.Sheet
    read_source(path_or_dataframe, ...) -> list[models.Sheet]   (every input sheet; a DataFrame in memory)
    parse_requests(sheet, *, catalog=None) -> list[models.LicenseRequest]
    ProductCatalog.load(path) / .cached(cache_dir); refresh_product_list(cache_dir, url, client)
    resolve_sku(text, skus, catalog=None) -> ResolvedSku | RowFinding   (SkuResolver for many rows)
    resolve_plans(texts, sku, catalog=None) -> (frozenset[plan id], list[RowFinding])
    resolve_usage_location(text) -> str | RowFinding
"""

from __future__ import annotations

from .catalog import (
    CACHE_FILENAME,
    MICROSOFT_URL,
    CatalogPlan,
    Product,
    ProductCatalog,
    refresh_product_list,
)
from .columns import SYNONYMS, detect_columns
from .reader import Source, read_sheet, read_sheets, read_source, source_label
from .resolve import (
    ResolvedSku,
    SkuResolver,
    country_name,
    resolve_plans,
    resolve_sku,
    resolve_usage_location,
)
from .rows import ACTION_WORDS, parse_requests, split_licenses

__all__ = [
    "ACTION_WORDS",
    "CACHE_FILENAME",
    "MICROSOFT_URL",
    "SYNONYMS",
    "CatalogPlan",
    "Product",
    "ProductCatalog",
    "ResolvedSku",
    "SkuResolver",
    "Source",
    "country_name",
    "detect_columns",
    "parse_requests",
    "read_sheet",
    "read_sheets",
    "read_source",
    "refresh_product_list",
    "resolve_plans",
    "resolve_sku",
    "resolve_usage_location",
    "source_label",
    "split_licenses",
]
