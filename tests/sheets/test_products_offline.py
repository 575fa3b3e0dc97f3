"""Product names resolve offline from the shipped snapshot; the newer of snapshot and cache wins; names match
loosely; an unresolved name says whether Microsoft's list knows it."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batch.config import load_settings
from batch.errors import RowFinding, TenantUnreachableError
from batch.models import Sku
from batch.sheets import CACHE_FILENAME, ProductCatalog, ResolvedSku, refresh_product_list, resolve_sku
from batch.sheets.catalog import bare_key, loose_key

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO / "batch" / "data" / "products.json.gz"
SHIPPED_DATE = "2025-12-01"

E3_ID = "05e9a617-0261-4cee-bb44-138d3ef5d965"
O365_E3_ID = "6fd2c87f-b296-42f0-b197-1e91e994b900"
E5_ID = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"


def tenant_skus(*pairs: tuple[str, str]) -> dict[str, Sku]:
    return {i: Sku(i, part, "User", "Enabled", 10, 1) for i, part in pairs}


# ------------------------------------------------------------------------------------ the snapshot


def test_shipped_snapshot_is_compact_dated_and_derived() -> None:
    doc = json.loads(gzip.decompress(SNAPSHOT.read_bytes()))
    assert SNAPSHOT.stat().st_size < 100_000  # the CSV is ~1 MB
    assert doc["format"] == 1 and doc["generated_by"] == "scripts/make_products.py"
    assert doc["source"]["name"] == "Product names and service plan identifiers for licensing.csv"
    assert doc["source"]["date"] == SHIPPED_DATE and doc["source"]["rows"] == 5457
    assert len(doc["source"]["sha256"]) == 64
    cat = ProductCatalog.shipped()
    assert (len(cat), cat.origin, cat.date_text) == (569, "shipped", SHIPPED_DATE)
    e3 = cat.by_string_id("SPE_E3")[0]
    assert (e3.name, e3.guid) == ("Microsoft 365 E3", E3_ID)
    exo = next(p for p in e3.plans if p.name == "EXCHANGE_S_ENTERPRISE")
    assert exo.friendly_name == "Exchange Online (Plan 2)"
    assert not list(REPO.rglob("Product names and service plan identifiers for licensing.csv"))  # not committed


def test_snapshot_is_what_the_script_makes_from_the_reference(product_list: Path, tmp_path: Path) -> None:
    out = tmp_path / "products.json.gz"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_products.py"), str(product_list), "--date", SHIPPED_DATE,
         "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.startswith(f"{out}: 569 products, 5453 service plan entries, dated {SHIPPED_DATE}")
    assert out.read_bytes() == SNAPSHOT.read_bytes()  # reproducible, and the shipped copy is current
    doc = json.loads(gzip.decompress(out.read_bytes()))
    assert doc["source"]["sha256"] == hashlib.sha256(product_list.read_bytes()).hexdigest()
    full = ProductCatalog.load(product_list)
    assert [(p.name, p.string_id, p.guid, p.plans) for p in ProductCatalog.shipped().products] == [
        (p.name, p.string_id, p.guid, p.plans) for p in full.products
    ]


def test_the_wheel_ships_the_snapshot(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0 and ("No matching distribution" in done.stderr or "Could not find" in done.stderr):
        pytest.skip(f"no build backend can be installed here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("license_batch-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("batch/data/products.json.gz") == SNAPSHOT.read_bytes()


# ------------------------------------------------------------------------------------ matching


def test_loose_and_bare_keys() -> None:
    assert loose_key("Microsoft® 365 E3™") == loose_key("MICROSOFT 365 - E3") == "microsoft 365 e3"
    assert loose_key("Microsoft 365 E5 (TM)") == "microsoft 365 e5"
    assert bare_key("Microsoft Office 365 E3") == "365 e3"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Microsoft 365 E3", ["SPE_E3"]),
        ("microsoft 365 e3™", ["SPE_E3"]),
        ("Microsoft® 365 E3", ["SPE_E3"]),
        ("MICROSOFT 365 - E3", ["SPE_E3"]),
        ("Microsoft Office 365 E3", ["ENTERPRISEPACK"]),  # a "Microsoft" in front of Office 365 E3
        ("Teams Rooms Pro", ["Microsoft_Teams_Rooms_Pro"]),  # "Microsoft" left out
        ("Microsoft Power BI Pro", ["POWER_BI_PRO"]),  # "Microsoft" added
        ("365 E3", ["ENTERPRISEPACK", "SPE_E3"]),  # both prefixes gone: two products
        ("Visio Plan 2", ["VISIOCLIENT", "VISIO_PLAN2_DEPT"]),
    ],
)
def test_names_match_loosely(text: str, parts: list[str]) -> None:
    assert sorted(p.string_id for p in ProductCatalog.shipped().by_name(text)) == sorted(parts)


def test_a_name_resolves_with_only_the_shipped_snapshot() -> None:
    skus = tenant_skus((E3_ID, "SPE_E3"))
    r = resolve_sku("Microsoft 365 E3™", skus, ProductCatalog.shipped())
    assert isinstance(r, ResolvedSku) and r.sku_id == E3_ID and r.matched_by == "product-name"
    assert r.label == "SPE_E3 (Microsoft 365 E3)"


def test_known_but_not_purchased() -> None:
    f = resolve_sku("microsoft 365 e5", tenant_skus((E3_ID, "SPE_E3")), ProductCatalog.shipped())
    assert isinstance(f, RowFinding) and f.code == "sku-not-in-tenant"
    assert f.message == (
        "'microsoft 365 e5' is SPE_E5 (Microsoft 365 E5) in Microsoft's product list, "
        "but it is not purchased in this tenant."
    )
    assert f.fix == "Buy it first, or use a license the tenant has: SPE_E3 (Microsoft 365 E3)."


def test_unknown_names_the_nearest() -> None:
    f = resolve_sku("Microsoft 365 E7", tenant_skus((E3_ID, "SPE_E3")), ProductCatalog.shipped())
    assert isinstance(f, RowFinding) and f.code == "sku-unknown"
    assert f.message == (
        "No license called 'Microsoft 365 E7' exists in this tenant or in Microsoft's product list. "
        "Nearest names: 'Microsoft 365 E3', 'Microsoft 365 E5', 'Microsoft 365 F3'."
    )


def test_a_shared_name_is_ambiguous_with_the_candidates() -> None:
    skus = tenant_skus((E3_ID, "SPE_E3"), (O365_E3_ID, "ENTERPRISEPACK"))
    f = resolve_sku("365 E3", skus, ProductCatalog.shipped())
    assert isinstance(f, RowFinding) and f.code == "sku-ambiguous"
    assert f.message == (
        "'365 E3' matches 2 licenses in this tenant: ENTERPRISEPACK (Office 365 E3), SPE_E3 (Microsoft 365 E3)."
    )


# ------------------------------------------------------------------------------------ cache vs shipped


def _cache_csv(cache: Path, text: str, when: datetime) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    p = cache / CACHE_FILENAME
    p.write_text(text, encoding="utf-8")
    os.utime(p, (when.timestamp(), when.timestamp()))
    return p


NEWER = (
    "Product_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n"
    f"Microsoft 365 E3 (renamed),SPE_E3,{E3_ID},SWAY,a23b959c-7ce8-4e57-9140-b90eb88a9e97,Sway\n"
)


def test_the_newer_copy_wins(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert ProductCatalog.current(cache) is ProductCatalog.shipped()  # nothing cached: the shipped snapshot
    _cache_csv(cache, NEWER, datetime(2025, 6, 1, tzinfo=UTC))
    assert ProductCatalog.current(cache) is ProductCatalog.shipped()  # the cache is older
    _cache_csv(cache, NEWER, datetime(2026, 3, 1, tzinfo=UTC))
    cur = ProductCatalog.current(cache)
    assert (cur.origin, cur.date_text, len(cur)) == ("cache", "2026-03-01", 1)
    assert cur.by_name("microsoft 365 e3 renamed")[0].string_id == "SPE_E3"


def test_refresh_from_file_keeps_the_files_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from batch import jobs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    src = _cache_csv(tmp_path / "dl", NEWER, datetime(2026, 3, 1, tzinfo=UTC))
    settings = load_settings()
    dest, count, note = jobs.refresh_products(settings, from_file=str(src))
    assert dest == tmp_path / "xdg" / "license-batch" / CACHE_FILENAME and count == 1
    assert note == f"It is dated 2026-03-01 and is used from now on (the shipped list is dated {SHIPPED_DATE})."
    old = _cache_csv(tmp_path / "dl2", NEWER, datetime(2025, 1, 2, tzinfo=UTC))
    _dest, _count, note = jobs.refresh_products(settings, from_file=str(old))
    assert note == (
        "It is dated 2025-01-02, not newer than the list shipped with license-batch (dated 2025-12-01), "
        "which stays in use."
    )


def test_offline_refresh_says_so_and_names_from_file(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/list.csv"
    with pytest.raises(TenantUnreachableError) as e:
        refresh_product_list(tmp_path, url=url, timeout=5)
    assert str(e.value) == (
        f"Cannot download the product list from {url}: this machine is offline or cannot reach it (ConnectError). "
        f"Nothing changed: product names still resolve from the list shipped with license-batch (dated "
        f"{SHIPPED_DATE}). To refresh without network, download the CSV on another machine and run: "
        "license-batch products refresh --from-file CSV"
    )
    assert ProductCatalog.cached(tmp_path) is None
