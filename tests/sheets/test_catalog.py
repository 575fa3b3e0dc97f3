"""Microsoft's product list: loading, look-ups, the cache, and refresh over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from batch.errors import ConfigError, ServiceError, TenantUnreachableError
from batch.sheets import CACHE_FILENAME, MICROSOFT_URL, ProductCatalog, refresh_product_list

TINY = (
    "\ufeffProduct_Display_Name,String_Id,GUID,Service_Plan_Name,Service_Plan_Id,Service_Plans_Included_Friendly_Names\n"
    "Microsoft 365 E3,SPE_E3,05E9A617-0261-4cee-bb44-138d3ef5d965,EXCHANGE_S_ENTERPRISE,"
    "efb87545-963c-4e0d-99df-69c6916d9eb0,Exchange Online (Plan 2)\n"
    "Microsoft 365 E3,SPE_E3,05e9a617-0261-4cee-bb44-138d3ef5d965,SWAY,a23b959c-7ce8-4e57-9140-b90eb88a9e97,Sway\n"
    "Microsoft 365 F1,M365_F1,44575883-256e-4a79-9da4-ebe9acabe2b2,SWAY,a23b959c-7ce8-4e57-9140-b90eb88a9e97,Sway\n"
    "Microsoft 365 F1,M365_F1_COMM,50f60901-3181-4b75-8a2c-4c8e4c1d5a72,SWAY,"
    "a23b959c-7ce8-4e57-9140-b90eb88a9e97,Sway\n"
)


def test_from_text_lookups() -> None:
    cat = ProductCatalog.from_text(TINY)
    assert len(cat) == 3
    e3 = cat.by_guid("{05E9A617-0261-4CEE-BB44-138D3EF5D965}")
    assert e3 is not None and e3.string_id == "SPE_E3" and e3.guid == "05e9a617-0261-4cee-bb44-138d3ef5d965"
    assert [p.name for p in e3.plans] == ["EXCHANGE_S_ENTERPRISE", "SWAY"]
    assert e3.plans[0].friendly_name == "Exchange Online (Plan 2)"
    assert [p.string_id for p in cat.by_name("  microsoft   365 f1 ")] == ["M365_F1", "M365_F1_COMM"]
    assert [p.name for p in cat.by_string_id("spe_e3")] == ["Microsoft 365 E3"]
    assert cat.find("M365_F1_COMM")[0].guid == "50f60901-3181-4b75-8a2c-4c8e4c1d5a72"
    assert cat.by_name("Nope") == [] and cat.by_guid("nope") is None


def test_not_the_product_list(tmp_path: Path) -> None:
    p = tmp_path / "other.csv"
    p.write_text("UPN,License\na,b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        ProductCatalog.load(p)
    assert str(e.value) == (
        f"{p}: This is not Microsoft's product list: it has no Product_Display_Name, String_Id, GUID, "
        "Service_Plan_Name, Service_Plan_Id column. Give 'Product names and service plan identifiers for "
        "licensing.csv' as published by Microsoft."
    )


def test_missing_product_list(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="The product list cannot be read"):
        ProductCatalog.load(tmp_path / "none.csv")


def test_reference_file(product_list: Path) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    cat = ProductCatalog.load(product_list)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\nproduct list: {len(cat)} products loaded in {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU")
    assert len(cat) == 569  # 5,457 rows, 569 products (cloud-facts)
    # 5,457 rows; 4 are exact repeats, 5 more repeat a plan id under another spelling (both kept).
    assert sum(len(p.plans) for p in cat.products) == 5453
    assert sum(len({x.id for x in p.plans}) for p in cat.products) == 5448
    faculty = cat.by_string_id("PROJECTPREMIUM_FACULTY")[0]
    assert {x.friendly_name for x in faculty.plans if x.id == "fafd7243-e5c1-4a3a-9e40-495efcb1d3c3"} == {
        "Project Online Desktop Client",
        "Project Client",
    }
    e3 = cat.by_string_id("SPE_E3")[0]
    assert e3.name == "Microsoft 365 E3" and e3.guid == "05e9a617-0261-4cee-bb44-138d3ef5d965"
    assert "EXCHANGE_S_ENTERPRISE" in {p.name for p in e3.plans}
    assert {p.string_id for p in cat.by_name("Microsoft 365 F1")} == {"M365_F1", "M365_F1_COMM"}
    assert {p.string_id for p in cat.by_name("visio plan 2")} == {"VISIOCLIENT", "VISIO_PLAN2_DEPT"}
    assert len(cat.by_string_id("MCOPSTN5")) == 2  # even String_Ids repeat once
    assert cat.by_name("Windows 365 Business 16 vCPU, 64 GB, 1 TB")


# ------------------------------------------------------------------------------------ the cache


def test_cached_none_when_empty(tmp_path: Path) -> None:
    assert ProductCatalog.cached(tmp_path / "cache") is None


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}
    handler = type("H", (_Handler,), {"routes": routes})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", routes
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_refresh_downloads_into_cache(tmp_path: Path, server) -> None:  # type: ignore[no-untyped-def]
    base, routes = server
    routes["/list.csv"] = (200, TINY.encode("utf-8"))
    cache = tmp_path / "cache"
    path = refresh_product_list(cache, url=f"{base}/list.csv")
    assert path == cache / CACHE_FILENAME
    assert path.read_bytes() == TINY.encode("utf-8")
    cat = ProductCatalog.cached(cache)
    assert cat is not None and len(cat) == 3 and cat.source == path
    assert [p.name for p in cache.iterdir()] == [CACHE_FILENAME]  # no temp file left behind


def test_refresh_with_given_client(tmp_path: Path, server) -> None:  # type: ignore[no-untyped-def]
    base, routes = server
    routes["/list.csv"] = (200, TINY.encode("utf-8"))
    with httpx.Client() as client:
        refresh_product_list(tmp_path, url=f"{base}/list.csv", client=client)
        assert not client.is_closed


def test_failed_refresh_keeps_the_good_cache(tmp_path: Path, server) -> None:  # type: ignore[no-untyped-def]
    base, routes = server
    routes["/good.csv"] = (200, TINY.encode("utf-8"))
    routes["/portal.csv"] = (200, b"<html>Sign in to the Wi-Fi</html>")
    path = refresh_product_list(tmp_path, url=f"{base}/good.csv")
    with pytest.raises(ServiceError, match="is not the product list"):
        refresh_product_list(tmp_path, url=f"{base}/portal.csv")
    with pytest.raises(ServiceError) as e:
        refresh_product_list(tmp_path, url=f"{base}/missing.csv")
    assert str(e.value) == f"Downloading the product list from {base}/missing.csv answered HTTP 404."
    assert e.value.status == 404
    assert path.read_bytes() == TINY.encode("utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_FILENAME]


def test_refresh_unreachable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TenantUnreachableError, match="Cannot download the product list"):
        refresh_product_list(tmp_path, url=f"http://127.0.0.1:{port}/list.csv", timeout=5)
    assert ProductCatalog.cached(tmp_path) is None


def test_microsoft_url() -> None:
    assert MICROSOFT_URL == (
        "https://download.microsoft.com/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/"
        "Product%20names%20and%20service%20plan%20identifiers%20for%20licensing.csv"
    )
