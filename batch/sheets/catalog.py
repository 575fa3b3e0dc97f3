"""Microsoft's product list: product names, String_Ids (skuPartNumber), GUIDs (skuId) and service plans.

Microsoft publishes "Product names and service plan identifiers for licensing.csv" (UTF-8 with BOM; one
row per product x service plan; columns Product_Display_Name, String_Id, GUID, Service_Plan_Name,
Service_Plan_Id, Service_Plans_Included_Friendly_Names). Product names are NOT unique (GCC, EEA and
other variants share names), so name look-ups return every product with that name.

Two copies, the newer wins (``ProductCatalog.current``):

* the **shipped snapshot** ``batch/data/products.json.gz``: a compact copy DERIVED from the list (product name,
  String_Id, GUID, service plans with their friendly names; not the CSV itself), dated with the source list's
  date and sha256, written by ``scripts/make_products.py``. Always there, so names resolve on a fresh machine
  with no network;
* the **user's cache** (``~/.cache/license-batch``): the CSV that ``refresh_product_list`` downloads from
  Microsoft's address (or ``products refresh --from-file`` copies), its file time set to the list's date.

A run may also name a CSV outright (``--product-list``); that one is used as it is.

Names match loosely (``loose_key``): trademark signs, case, punctuation and spacing do not matter; when
nothing matches that way, a leading "Microsoft" or "Office" may be left out or added (``bare_key``).
"""

from __future__ import annotations

import csv
import difflib
import functools
import gzip
import hashlib
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import orjson

from ..errors import ConfigError, ServiceError, TenantUnreachableError

MICROSOFT_URL = (
    "https://download.microsoft.com/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/"
    "Product%20names%20and%20service%20plan%20identifiers%20for%20licensing.csv"
)
CACHE_FILENAME = "Product names and service plan identifiers for licensing.csv"
REQUIRED_COLUMNS = ("Product_Display_Name", "String_Id", "GUID", "Service_Plan_Name", "Service_Plan_Id")
FRIENDLY_COLUMN = "Service_Plans_Included_Friendly_Names"


SNAPSHOT_FORMAT = 1
SNAPSHOT_RESOURCE = "products.json.gz"  # package data: batch/data/products.json.gz


def name_key(text: str) -> str:
    """A product or plan name for comparison: case-folded, compatibility-normalised, one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


_MARKS = re.compile(r"[\u2122\u00ae\u00a9\u2120]|\((?:tm|r|c)\)", re.IGNORECASE)  # ™ ® © ℠, (TM) (R) (C)
_PUNCT = re.compile(r"[^\w+]+")  # everything but letters, digits, _ and + ("Microsoft 365 E5 + Copilot") splits words
_PREFIXES = ("microsoft", "office")


def loose_key(text: str) -> str:
    """A product name for matching: no trademark signs, case, punctuation or extra spaces."""
    # before NFKC, which would turn ™ into the letters "TM"
    t = _MARKS.sub(" ", unicodedata.normalize("NFKC", _MARKS.sub(" ", text))).casefold()
    return " ".join(_PUNCT.sub(" ", t).replace("_", " ").split())


def bare_key(text: str) -> str:
    """``loose_key`` without leading "Microsoft" / "Office" words ("Microsoft Teams Rooms Pro" ~ "Teams Rooms Pro")."""
    words = loose_key(text).split()
    while len(words) > 1 and words[0] in _PREFIXES:
        words = words[1:]
    return " ".join(words)


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

    def __init__(
        self,
        products: Iterable[Product],
        source: Path | None = None,
        *,
        dated: datetime | None = None,
        origin: str = "file",
        sha256: str | None = None,
    ) -> None:
        self.source = source
        self.dated = dated  # the list's date (UTC), when known
        self.origin = origin  # "shipped" | "cache" | "file"
        self.sha256 = sha256  # of the source CSV, when known
        self.products: tuple[Product, ...] = tuple(products)
        self._by_guid: dict[str, Product] = {}
        self._by_string_id: dict[str, list[Product]] = {}
        self._by_name: dict[str, list[Product]] = {}
        self._by_bare: dict[str, list[Product]] = {}
        for p in self.products:
            self._by_guid[p.guid] = p
            self._by_string_id.setdefault(p.string_id.upper(), []).append(p)
            self._by_name.setdefault(loose_key(p.name), []).append(p)
            self._by_bare.setdefault(bare_key(p.name), []).append(p)

    def __len__(self) -> int:
        return len(self.products)

    def __repr__(self) -> str:
        return f"ProductCatalog({len(self.products)} products from {self.source or self.origin})"

    @property
    def date_text(self) -> str:
        return self.dated.date().isoformat() if self.dated else "undated"

    def describe(self) -> str:
        """Where this list comes from, for messages: "the shipped list (2025-12-01)"."""
        what = {"shipped": "the list shipped with license-batch", "cache": "the cached list"}.get(
            self.origin, f"the list {self.source}"
        )
        return f"{what} (dated {self.date_text})"

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
        cat = cls.from_bytes(data, source=p)
        cat.dated = datetime.fromtimestamp(p.stat().st_mtime, UTC)
        return cat

    @classmethod
    def from_bytes(cls, data: bytes, source: Path | None = None) -> ProductCatalog:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
        cat = cls.from_text(text, source=source)
        cat.sha256 = hashlib.sha256(data).hexdigest()
        return cat

    # ------------------------------------------------------------------------ the shipped snapshot

    def to_snapshot(self, *, dated: date, sha256: str, source_name: str, rows: int) -> bytes:
        """The compact, gzipped JSON snapshot of this list (what ``scripts/make_products.py`` writes).

        Service plans are listed once (id, name, friendly name) and products refer to them by index."""
        plan_index: dict[tuple[str, str, str], int] = {}
        products: list[list[Any]] = []
        for p in self.products:
            refs = [plan_index.setdefault((c.id, c.name, c.friendly_name), len(plan_index)) for c in p.plans]
            products.append([p.name, p.string_id, p.guid, refs])
        doc = {
            "format": SNAPSHOT_FORMAT,
            "source": {"name": source_name, "url": MICROSOFT_URL, "date": dated.isoformat(), "sha256": sha256,
                       "rows": rows},
            "generated_by": "scripts/make_products.py",
            "plans": [list(k) for k in plan_index],
            "products": products,
        }
        return gzip.compress(orjson.dumps(doc), compresslevel=9, mtime=0)

    @classmethod
    def from_snapshot(cls, data: bytes, *, origin: str = "shipped", source: Path | None = None) -> ProductCatalog:
        try:
            doc = orjson.loads(gzip.decompress(data))
            if doc.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"format {doc.get('format')!r}")
            plans = [CatalogPlan(str(i), str(n), str(f)) for i, n, f in doc["plans"]]
            products = [Product(str(n), str(sid), str(g), tuple(plans[k] for k in refs))
                        for n, sid, g, refs in doc["products"]]
            src = doc["source"]
            dated = datetime.combine(date.fromisoformat(src["date"]), datetime.min.time(), UTC)
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as e:
            raise ConfigError(
                f"The product snapshot cannot be read ({e}).",
                path=str(source) if source else None,
                fix="Reinstall license-batch, or run: license-batch products refresh.",
            ) from e
        return cls(products, source=source, dated=dated, origin=origin, sha256=str(src.get("sha256") or ""))

    @classmethod
    def shipped(cls) -> ProductCatalog:
        """The snapshot shipped in the package (read once per process)."""
        return _shipped()

    @classmethod
    def current(cls, cache_dir: str | os.PathLike[str]) -> ProductCatalog:
        """The newer of the shipped snapshot and the cached copy (the shipped one when they are equally old)."""
        shipped = cls.shipped()
        cached = cls.cached(cache_dir)
        if (
            cached is not None
            and cached.dated is not None
            and shipped.dated is not None
            and cached.dated.date() > shipped.dated.date()
        ):
            return cached
        return shipped

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
        cat = cls.load(p)
        cat.origin = "cache"
        return cat

    # ----------------------------------------------------------------------------------- look-ups

    def by_guid(self, guid: str) -> Product | None:
        return self._by_guid.get(guid.strip().strip("{}").lower())

    def by_string_id(self, string_id: str) -> list[Product]:
        """Products with this String_Id (skuPartNumber), case-insensitive. Almost always one."""
        return list(self._by_string_id.get(string_id.strip().upper(), ()))

    def by_name(self, name: str) -> list[Product]:
        """Every product with this display name: trademark signs, case, punctuation and spacing do not matter;
        when no name matches so, one that differs only in a leading "Microsoft" or "Office" does."""
        key = loose_key(name)
        hit = self._by_name.get(key)
        words = key.split()
        while hit is None and len(words) > 1 and words[0] in _PREFIXES:  # "Microsoft Office 365 E3"
            words = words[1:]
            hit = self._by_name.get(" ".join(words))
        if hit is None:  # "Teams Rooms Pro", "365 E3" (then Microsoft 365 E3 and Office 365 E3: ambiguous)
            hit = self._by_bare.get(bare_key(name), [])
        return list(hit)

    def nearest_names(self, text: str, n: int = 3) -> list[str]:
        """Up to ``n`` display names closest to ``text`` (for "did you mean")."""
        keys = {loose_key(p.name): p.name for p in self.products}
        close = difflib.get_close_matches(loose_key(text), list(keys), n=n, cutoff=0.6)
        return [keys[k] for k in close]

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
            shipped = ProductCatalog.shipped()
            raise TenantUnreachableError(
                f"Cannot download the product list from {url}: this machine is offline or cannot reach it "
                f"({type(e).__name__}). Nothing changed: product names still resolve from {shipped.describe()}. "
                "To refresh without network, download the CSV on another machine and run: "
                "license-batch products refresh --from-file CSV"
            ) from e
        if r.status_code != 200:
            raise ServiceError(
                f"Downloading the product list from {url} answered HTTP {r.status_code}.", status=r.status_code
            )
        data = r.content
        listed = _http_date(r.headers.get("last-modified")) or datetime.now(UTC)
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
            stamp = listed.timestamp()
            os.utime(tmp, (stamp, stamp))  # the file's time is the list's date: the newer copy wins
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


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@functools.cache
def _shipped() -> ProductCatalog:
    data = resources.files("batch").joinpath("data", SNAPSHOT_RESOURCE).read_bytes()
    return ProductCatalog.from_snapshot(data, origin="shipped")
