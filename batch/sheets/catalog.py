"""Microsoft's product list: product names, String_Ids (skuPartNumber), GUIDs (skuId) and service plans.

Microsoft publishes "Product names and service plan identifiers for licensing.csv" (UTF-8 with BOM; one
row per product x service plan; columns Product_Display_Name, String_Id, GUID, Service_Plan_Name,
Service_Plan_Id, Service_Plans_Included_Friendly_Names). Product names are NOT unique (GCC, EEA and
other variants share names), so name look-ups return every product with that name.

The product reads the list from a path the user gives, or from a cached copy that ``refresh_product_list``
downloads from Microsoft's published address; without either it works from the tenant's own data.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..errors import ConfigError, ServiceError, TenantUnreachableError

MICROSOFT_URL = (
    "https://download.microsoft.com/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/"
    "Product%20names%20and%20service%20plan%20identifiers%20for%20licensing.csv"
)
CACHE_FILENAME = "Product names and service plan identifiers for licensing.csv"
REQUIRED_COLUMNS = ("Product_Display_Name", "String_Id", "GUID", "Service_Plan_Name", "Service_Plan_Id")
FRIENDLY_COLUMN = "Service_Plans_Included_Friendly_Names"


def name_key(text: str) -> str:
    """A product or plan name for comparison: case-folded, compatibility-normalised, one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@dataclass(frozen=True, slots=True)
class CatalogPlan:
    id: str  # Service_Plan_Id, lower-case
    name: str  # Service_Plan_Name (what Graph calls servicePlanName)
    friendly_name: str


@dataclass(frozen=True, slots=True)
class Product:
    name: str  # Product_Display_Name
    string_id: str  # skuPartNumber
    guid: str  # skuId, lower-case
    plans: tuple[CatalogPlan, ...]  # in file order; a plan id may appear under two spellings

    def label(self) -> str:
        return f"{self.string_id} ({self.name})"


class ProductCatalog:
    """Look-ups over Microsoft's product list. Build with ``load``, ``from_text`` or ``cached``."""

    def __init__(self, products: Iterable[Product], source: Path | None = None) -> None:
        self.source = source
        self.products: tuple[Product, ...] = tuple(products)
        self._by_guid: dict[str, Product] = {}
        self._by_string_id: dict[str, list[Product]] = {}
        self._by_name: dict[str, list[Product]] = {}
        for p in self.products:
            self._by_guid[p.guid] = p
            self._by_string_id.setdefault(p.string_id.upper(), []).append(p)
            self._by_name.setdefault(name_key(p.name), []).append(p)

    def __len__(self) -> int:
        return len(self.products)

    def __repr__(self) -> str:
        return f"ProductCatalog({len(self.products)} products from {self.source})"

    # ----------------------------------------------------------------------------------- building

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProductCatalog:
        """Read Microsoft's CSV from ``path``. ConfigError if it is missing or not the product list."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ConfigError(
                f"The product list cannot be read: {e.strerror or e}.",
                path=str(p),
                fix="Give the path of Microsoft's 'Product names and service plan identifiers for licensing.csv', "
                "or run the refresh command to download it.",
            ) from e
        return cls.from_bytes(data, source=p)

    @classmethod
    def from_bytes(cls, data: bytes, source: Path | None = None) -> ProductCatalog:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
        return cls.from_text(text, source=source)

    @classmethod
    def from_text(cls, text: str, source: Path | None = None) -> ProductCatalog:
        where = str(source) if source else None
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise ConfigError("The product list is empty.", path=where, fix="Download it again.")
        header = [h.strip().lstrip("\ufeff") for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ConfigError(
                f"This is not Microsoft's product list: it has no {', '.join(missing)} column.",
                path=where,
                fix="Give 'Product names and service plan identifiers for licensing.csv' as published by Microsoft.",
            )
        i_name, i_sid, i_guid, i_pname, i_pid = (header.index(c) for c in REQUIRED_COLUMNS)
        i_friendly = header.index(FRIENDLY_COLUMN) if FRIENDLY_COLUMN in header else None
        width = max(i_name, i_sid, i_guid, i_pname, i_pid, i_friendly or 0) + 1
        order: list[str] = []
        info: dict[str, tuple[str, str]] = {}
        plans: dict[str, dict[tuple[str, str, str], CatalogPlan]] = {}
        for rec in reader:
            if len(rec) < width:
                continue
            guid = rec[i_guid].strip().lower()
            if not guid:
                continue
            if guid not in info:
                info[guid] = (rec[i_name].strip(), rec[i_sid].strip())
                order.append(guid)
                plans[guid] = {}
            pid = rec[i_pid].strip().lower()
            if pid:
                # The same plan id can be listed twice under different names (5 rows in the Dec 2025
                # list): keep each distinct spelling, so every name resolves.
                friendly = rec[i_friendly].strip() if i_friendly is not None else ""
                key = (pid, rec[i_pname].strip(), friendly)
                if key not in plans[guid]:
                    plans[guid][key] = CatalogPlan(pid, key[1], friendly)
        products = [Product(info[g][0], info[g][1], g, tuple(plans[g].values())) for g in order]
        if not products:
            raise ConfigError("The product list has no products.", path=where, fix="Download it again.")
        return cls(products, source=source)

    @classmethod
    def cached(cls, cache_dir: str | os.PathLike[str]) -> ProductCatalog | None:
        """The catalog from the cache folder, or None when nothing is cached there."""
        p = Path(cache_dir) / CACHE_FILENAME
        if not p.is_file():
            return None
        return cls.load(p)

    # ----------------------------------------------------------------------------------- look-ups

    def by_guid(self, guid: str) -> Product | None:
        return self._by_guid.get(guid.strip().strip("{}").lower())

    def by_string_id(self, string_id: str) -> list[Product]:
        """Products with this String_Id (skuPartNumber), case-insensitive. Almost always one."""
        return list(self._by_string_id.get(string_id.strip().upper(), ()))

    def by_name(self, name: str) -> list[Product]:
        """Every product with this display name (case-insensitive, whitespace normalised)."""
        return list(self._by_name.get(name_key(name), ()))

    def find(self, text: str) -> list[Product]:
        """Products ``text`` names: as a GUID, a String_Id or a display name."""
        p = self.by_guid(text)
        if p is not None:
            return [p]
        return self.by_string_id(text) or self.by_name(text)

    def knows(self, text: str) -> bool:
        return bool(self.find(text))

    def names(self) -> list[str]:
        """Every distinct display name, in file order."""
        return list(dict.fromkeys(p.name for p in self.products))

    def plans_for(self, guid: str) -> tuple[CatalogPlan, ...]:
        p = self.by_guid(guid)
        return () if p is None else p.plans


def refresh_product_list(
    cache_dir: str | os.PathLike[str],
    url: str = MICROSOFT_URL,
    client: httpx.Client | None = None,
    *,
    timeout: float = 60.0,
) -> Path:
    """Download Microsoft's product list into ``cache_dir`` (atomically) and return its path.

    The download is checked to parse as the product list before it replaces the cached copy, so a
    failed or captive-portal download never spoils a good cache.
    """
    own = client is None
    c = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        try:
            r = c.get(url)
        except httpx.TransportError as e:
            raise TenantUnreachableError(f"Cannot download the product list from {url}: {e}.") from e
        if r.status_code != 200:
            raise ServiceError(
                f"Downloading the product list from {url} answered HTTP {r.status_code}.", status=r.status_code
            )
        data = r.content
    finally:
        if own:
            c.close()
    try:
        catalog = ProductCatalog.from_bytes(data)
    except ConfigError as e:
        raise ServiceError(f"The file downloaded from {url} is not the product list: {e.message}") from e
    folder = Path(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / CACHE_FILENAME
        fd, tmp = tempfile.mkstemp(prefix=".product-list-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ConfigError(
            f"Cannot write the product list into the cache: {e.strerror or e}.",
            path=str(folder),
            fix="Check the cache folder's permissions, or give the product list's path instead.",
        ) from e
    del catalog
    return target
