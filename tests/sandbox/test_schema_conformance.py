"""Every property the sandbox returns exists in Graph's official v1.0 schema (CSDL), with the right type."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch.sandbox import SandboxServer
from batch.sandbox import directory as D

from .sbtest import REFERENCE, upn

CSDL = REFERENCE / "graph-v1.0-Prod.csdl"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

pytestmark = pytest.mark.skipif(
    not CSDL.exists(), reason=f"Graph's v1.0 CSDL is not at {CSDL} (reference files absent)"
)


@cache
def types() -> dict[str, tuple[str | None, dict[str, tuple[str, bool]]]]:
    """name -> (base type, {property: (type, nullable)}) for microsoft.graph entity and complex types."""
    root = ET.parse(Path(CSDL)).getroot()
    out: dict[str, tuple[str | None, dict[str, tuple[str, bool]]]] = {}
    for schema in root.iter(f"{EDM}Schema"):
        if schema.get("Namespace") != "microsoft.graph":
            continue
        for t in schema:
            if t.tag in (f"{EDM}EntityType", f"{EDM}ComplexType"):
                props = {
                    p.get("Name", ""): (p.get("Type", ""), p.get("Nullable") != "false")
                    for p in t
                    if p.tag in (f"{EDM}Property", f"{EDM}NavigationProperty")
                }
                out[t.get("Name", "")] = (t.get("BaseType"), props)
    return out


def _short(name: str) -> str:
    return name.split(".")[-1]


def properties(name: str) -> dict[str, tuple[str, bool]]:
    base, props = types()[name]
    merged = dict(properties(_short(base))) if base else {}
    merged.update(props)
    return merged


def check(obj: dict[str, Any], type_name: str, where: str) -> int:
    """Assert every key of ``obj`` is a property of ``type_name`` with a value of its type. Returns #checked."""
    props = properties(type_name)
    n = 0
    for key, value in obj.items():
        if key.startswith("@odata."):
            continue
        assert key in props, f"{where}: '{key}' is not a property of microsoft.graph.{type_name}"
        typ, nullable = props[key]
        n += 1 + check_value(value, typ, nullable, f"{where}.{key}")
    return n


def check_value(value: Any, typ: str, nullable: bool, where: str) -> int:
    if value is None:
        assert nullable or typ.startswith("Collection("), f"{where}: null but {typ} is not nullable"
        return 0
    if typ.startswith("Collection("):
        assert isinstance(value, list), f"{where}: {typ} must be a JSON array"
        inner = typ[len("Collection(") : -1]
        return sum(check_value(v, inner, False, f"{where}[]") for v in value)
    if typ == "Edm.String":
        assert isinstance(value, str), f"{where}: not a string"
    elif typ == "Edm.Guid":
        assert isinstance(value, str) and GUID.match(value), f"{where}: not a lower-case GUID: {value!r}"
    elif typ == "Edm.Boolean":
        assert isinstance(value, bool), f"{where}: not a boolean"
    elif typ in ("Edm.Int32", "Edm.Int64"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: not an integer"
    elif typ == "Edm.DateTimeOffset":
        assert isinstance(value, str) and STAMP.match(value), f"{where}: not an ISO 8601 UTC stamp: {value!r}"
    elif typ.startswith(("graph.", "microsoft.graph.")):
        name = _short(typ)
        if name in types():
            assert isinstance(value, dict), f"{where}: {typ} must be an object"
            return check(value, name, where)
        assert isinstance(value, str), f"{where}: enum {typ} must be a string"
    else:
        raise AssertionError(f"{where}: type {typ} not handled by this test")
    return 0


def test_user_properties(graph: httpx.Client) -> None:
    sel = ",".join(sorted(D.USER_PROPERTIES))
    n = 0
    for key in (
        upn("nestor.wilke"),
        upn("grady.archie"),
        upn("megan.bowen"),
        "jane.doe_fabrikam.com%23EXT%23@contoso.onmicrosoft.com",
    ):
        u = graph.get(f"/users/{key}", params={"$select": sel}).json()
        assert set(u) - {"@odata.context"} == D.USER_PROPERTIES
        n += check(u, "user", key)
    page = graph.get("/users", params={"$select": sel, "$top": "50"}).json()["value"]
    for u in page:
        n += check(u, "user", u["userPrincipalName"])
    assert n > 1000
    # the default set too, and assignLicense's answer
    check(graph.get(f"/users/{upn('adele.vance')}").json(), "user", "default")
    r = graph.post(f"/users/{upn('adele.vance')}/assignLicense", json={"addLicenses": [], "removeLicenses": []})
    check(r.json(), "user", "assignLicense")


def test_subscribed_sku_properties(graph: httpx.Client) -> None:
    for s in graph.get("/subscribedSkus").json()["value"]:
        check(s, "subscribedSku", s["skuPartNumber"])


def test_license_details_properties(graph: httpx.Client) -> None:
    for who in ("diego.siciliani", "patti.fernandez"):
        for d in graph.get(f"/users/{upn(who)}/licenseDetails").json()["value"]:
            check(d, "licenseDetails", who)


def test_group_properties(server: SandboxServer, graph: httpx.Client) -> None:
    sel = ",".join(sorted(D.GROUP_PROPERTIES))
    for g in graph.get("/groups", params={"$select": sel}).json()["value"]:
        check(g, "group", g["displayName"])
    gid = graph.get("/groups", params={"$filter": "displayName eq 'Sales Team'"}).json()["value"][0]["id"]
    r = graph.post(f"/groups/{gid}/assignLicense", json={"addLicenses": [], "removeLicenses": []})
    assert r.status_code == 202
    check(r.json(), "group", "group assignLicense")
    for m in graph.get(f"/groups/{gid}/members").json()["value"]:
        check(m, "user", "member")
