"""Pure name resolution against a tenant snapshot: licenses, service plans, usage locations.

Used by validation. Nothing here does I/O. Every failure is a RowFinding (returned, not raised) with a
stable code, a plain message and a fix; pass ``row``/``column`` to have them filled in.

Finding codes: sku-unknown, sku-not-in-tenant, sku-ambiguous, sku-not-assignable, license-missing,
plan-not-in-sku, usage-location-invalid.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import RowFinding, Severity, shorten
from ..models import Sku
from .catalog import Product, ProductCatalog, loose_key, name_key
from .countries import COUNTRIES, lookup, suggest

GUID_RE = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")
_LIST_MAX = 8


@dataclass(frozen=True, slots=True)
class ResolvedSku:
    text: str  # as given
    sku: Sku
    matched_by: str  # "sku-id" | "part-number" | "product-name"
    product_name: str | None = None  # Microsoft's friendly name, when known

    @property
    def sku_id(self) -> str:
        return self.sku.sku_id.lower()

    @property
    def label(self) -> str:
        return _label(self.sku, self.product_name)


def _label(sku: Sku, name: str | None) -> str:
    return f"{sku.part_number} ({name})" if name else sku.part_number


def _guid(text: str) -> str | None:
    m = GUID_RE.match(text.strip())
    return m.group(1).lower() if m else None


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_MAX])
    return shown + (f" ... ({len(items)} in all)" if len(items) > _LIST_MAX else "")


def _stamp(f: RowFinding, row: int | None, column: str | None) -> RowFinding:
    if row is None and column is None:
        return f
    return dataclasses.replace(f, row=row if row is not None else f.row, column=column or f.column)


class SkuResolver:
    """Resolves license texts against one tenant's SKUs (and the catalog); caches per text.

    Build one per validation run: ``resolve`` is then a dict look-up for repeated texts.
    """

    def __init__(self, skus: Mapping[str, Sku], catalog: ProductCatalog | None = None) -> None:
        self.catalog = catalog
        self.skus: dict[str, Sku] = {k.lower(): v for k, v in skus.items()}
        for s in skus.values():
            self.skus.setdefault(s.sku_id.lower(), s)
        self._by_part: dict[str, Sku] = {s.part_number.upper(): s for s in self.skus.values()}
        self._names: dict[str, str | None] = {}
        self._by_name: dict[str, list[Sku]] = {}
        for sid, s in self.skus.items():
            name = s.product_name
            if not name and catalog is not None:
                p = catalog.by_guid(sid)
                name = p.name if p else None
            self._names[sid] = name
            if name:
                self._by_name.setdefault(loose_key(name), []).append(s)
        for s in self.skus.values():
            # a string id written as words ("Microsoft 365 Copilot" for Microsoft_365_Copilot, whose name in
            # Microsoft's list is "Microsoft Copilot for Microsoft 365") names that SKU too
            same = self._by_name.setdefault(loose_key(s.part_number), [])
            if s not in same:
                same.append(s)
        self._cache: dict[str, ResolvedSku | RowFinding] = {}

    def name_of(self, sku: Sku) -> str | None:
        return self._names.get(sku.sku_id.lower())

    def label(self, sku: Sku) -> str:
        return _label(sku, self.name_of(sku))

    def resolve(self, text: str, *, row: int | None = None, column: str | None = None) -> ResolvedSku | RowFinding:
        key = text.strip()
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._resolve(key)
        return _stamp(hit, row, column) if isinstance(hit, RowFinding) else hit

    # ------------------------------------------------------------------------------------------

    def _found(self, text: str, sku: Sku, how: str) -> ResolvedSku | RowFinding:
        name = self.name_of(sku)
        if sku.applies_to.lower() == "company":
            return RowFinding(
                "sku-not-assignable",
                Severity.ERROR,
                f"{_label(sku, name)} applies to the whole organisation (appliesTo Company); "
                "it cannot be assigned to a user.",
                "Remove this row: company-wide subscriptions need no per-user assignment.",
            )
        return ResolvedSku(text, sku, how, name)

    def _resolve(self, text: str) -> ResolvedSku | RowFinding:
        if not text:
            return RowFinding(
                "license-missing",
                Severity.ERROR,
                "The license cell is empty.",
                "Fill in the license (skuPartNumber such as SPE_E3, its skuId, or the product name).",
            )
        cat = self.catalog
        guid = _guid(text)
        if guid is not None:
            sku = self.skus.get(guid)
            if sku is not None:
                return self._found(text, sku, "sku-id")
            product = cat.by_guid(guid) if cat else None
            if product is not None:
                return self._not_in_tenant(text, [product])
            return self._unknown(text, "no product has this skuId")

        sku = self._by_part.get(text.upper())
        if sku is not None:
            return self._found(text, sku, "part-number")

        key = loose_key(text)
        matches: dict[str, Sku] = {s.sku_id.lower(): s for s in self._by_name.get(key, ())}
        products = cat.by_name(text) if cat else []
        for p in products:
            s = self.skus.get(p.guid)
            if s is not None:
                matches.setdefault(p.guid, s)
        if len(matches) == 1:
            return self._found(text, next(iter(matches.values())), "product-name")
        if len(matches) > 1:
            labels = sorted(self.label(s) for s in matches.values())
            return RowFinding(
                "sku-ambiguous",
                Severity.ERROR,
                f"'{shorten(text)}' matches {len(labels)} licenses in this tenant: {_listing(labels)}.",
                "Write the skuPartNumber of the one you mean instead of the product name.",
            )
        if cat is not None:
            by_part = cat.by_string_id(text)
            if by_part:
                return self._not_in_tenant(text, by_part)
            if len(products) == 1:
                return self._not_in_tenant(text, products)
            if len(products) > 1:
                labels = [p.label() for p in products]
                return RowFinding(
                    "sku-ambiguous",
                    Severity.ERROR,
                    f"'{shorten(text)}' names {len(products)} products, and this tenant has none of them: "
                    f"{_listing(labels)}.",
                    "Write the skuPartNumber of the one you mean; the tenant also needs a subscription for it.",
                )
        return self._unknown(text, None)

    def _not_in_tenant(self, text: str, products: list[Product]) -> RowFinding:
        what = " / ".join(p.label() for p in products)
        have = sorted(self.label(s) for s in self.skus.values() if s.applies_to.lower() != "company")
        return RowFinding(
            "sku-not-in-tenant",
            Severity.ERROR,
            f"'{shorten(text)}' is {what} in Microsoft's product list, but it is not purchased in this tenant.",
            "Buy it first, or use a license the tenant has"
            + (f": {_listing(have)}." if have else " (it has none assignable to users)."),
        )

    def _unknown(self, text: str, why: str | None) -> RowFinding:
        # Two licenses written with a comma between them, where a comma does not split (product names)?
        if "," in text:
            parts = [x.strip() for x in text.split(",") if x.strip()]
            if len(parts) > 1 and all(isinstance(self.resolve(x), ResolvedSku) for x in parts):
                return RowFinding(
                    "sku-unknown",
                    Severity.ERROR,
                    f"'{shorten(text)}' looks like {len(parts)} licenses separated by commas.",
                    "Separate several licenses in one cell with ';' (commas can be part of a product name).",
                )
        near = self._nearest(text)
        hint = f" Nearest names: {', '.join(repr(n) for n in near)}." if near else ""
        where = "in this tenant or in Microsoft's product list" if self.catalog else "in this tenant"
        have = sorted(self.label(s) for s in self.skus.values() if s.applies_to.lower() != "company")
        reason = f" ({why})" if why else ""
        return RowFinding(
            "sku-unknown",
            Severity.ERROR,
            f"No license called '{shorten(text)}' exists {where}{reason}.{hint}",
            "Write the skuPartNumber (e.g. SPE_E3), the skuId or the product name"
            + (f"; the tenant has: {_listing(have)}." if have else "."),
        )

    def _nearest(self, text: str, n: int = 3) -> list[str]:
        """The closest part numbers and product names of the tenant, then of Microsoft's list."""
        pool: dict[str, str] = {}
        for part, sku in self._by_part.items():
            pool.setdefault(loose_key(part), sku.part_number)
        for name in self._names.values():
            if name:
                pool.setdefault(loose_key(name), name)
        out = [pool[k] for k in difflib.get_close_matches(loose_key(text), list(pool), n=n, cutoff=0.75)]
        if self.catalog is not None:
            for name in self.catalog.nearest_names(text, n):
                if name not in out:
                    out.append(name)
        return out[:n]


def resolve_sku(
    text: str,
    skus: Mapping[str, Sku],
    catalog: ProductCatalog | None = None,
    *,
    row: int | None = None,
    column: str | None = None,
) -> ResolvedSku | RowFinding:
    """A license as written (skuId, skuPartNumber or product name) -> the tenant's SKU, or a finding.

    For many rows build one ``SkuResolver`` and call ``resolve`` (it caches per text).
    """
    return SkuResolver(skus, catalog).resolve(text, row=row, column=column)


def resolve_plans(
    texts: Iterable[str],
    sku: Sku,
    catalog: ProductCatalog | None = None,
    *,
    row: int | None = None,
    column: str | None = None,
) -> tuple[frozenset[str], list[RowFinding]]:
    """Service plans as written (servicePlanName, servicePlanId, or with a catalog the friendly name)
    -> the plan ids (lower-case) within ``sku``, and a finding per plan that is not in it."""
    by_id = {p.id.lower(): p for p in sku.service_plans}
    by_name = {p.name.casefold(): p for p in sku.service_plans}
    friendly: dict[str, list[str]] = {}
    product_name = sku.product_name
    if catalog is not None:
        for cp in catalog.plans_for(sku.sku_id):
            if cp.friendly_name and cp.id in by_id:
                friendly.setdefault(name_key(cp.friendly_name), []).append(cp.id)
        if not product_name:
            p = catalog.by_guid(sku.sku_id)
            product_name = p.name if p else None
    ids: set[str] = set()
    findings: list[RowFinding] = []
    for raw in texts:
        t = raw.strip()
        if not t:
            continue
        g = _guid(t)
        if g is not None and (g in by_id or not by_id):
            ids.add(g)
            continue
        plan = by_name.get(t.casefold())
        if plan is not None:
            ids.add(plan.id.lower())
            continue
        f_ids = friendly.get(name_key(t))
        if f_ids:
            ids.update(f_ids)
            continue
        label = _label(sku, product_name)
        names = [p.name for p in sku.service_plans if p.applies_to.lower() == "user"] or [
            p.name for p in sku.service_plans
        ]
        if names:
            close = difflib.get_close_matches(t.upper(), [n.upper() for n in names], n=1, cutoff=0.75)
            hint = ""
            if close:
                hint = f" Did you mean '{next(n for n in names if n.upper() == close[0])}'?"
            fix = f"Use a service plan name of {sku.part_number}, e.g. {_listing(names)}."
        else:
            hint = ""
            fix = "The tenant lists no service plans for this license: give plan ids (GUIDs), or none."
        findings.append(
            RowFinding(
                "plan-not-in-sku",
                Severity.ERROR,
                f"Service plan '{shorten(t)}' is not part of {label}.{hint}",
                fix,
                row,
                column,
            )
        )
    return frozenset(ids), findings


def resolve_usage_location(text: str, *, row: int | None = None, column: str | None = None) -> str | RowFinding:
    """A usage location as written (ISO alpha-2 or alpha-3 code, English name or common alias)
    -> the ISO 3166-1 alpha-2 code Graph wants, or a finding."""
    code = lookup(text)
    if code is not None:
        return code
    close = suggest(text)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return RowFinding(
        "usage-location-invalid",
        Severity.ERROR,
        f"'{shorten(text.strip())}' is not a country: the usage location must be a two-letter ISO 3166 code.{hint}",
        "Write the country's two-letter code, e.g. DE (Germany), GB (United Kingdom) or US (United States).",
        row,
        column,
    )


def country_name(code: str) -> str | None:
    """English short name of an alpha-2 code."""
    return COUNTRIES.get(code.upper())
