"""Directory semantics: users, SKUs, groups and license assignment, over the SQLite store.

Functions here take a connection that is already inside a write transaction where they change
anything (the caller holds BEGIN IMMEDIATE), so checking seats and taking them is atomic.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from . import behaviour as B
from .catalogue import COUNTRY_CODES, EXCLUSIVE_FAMILIES, PLAN_DEPENDENCIES
from .store import dumps

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
ACTIVE_STATES = ("Active", "ActiveWithError")


class GraphError(Exception):
    """An error answer in Graph's shape; the dispatcher turns it into the response."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def not_found(key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", B.MSG_RESOURCE_NOT_FOUND.format(id=key))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------- SKUs


class SkuRow:
    __slots__ = ("applies_to", "capability_status", "consumed", "enabled", "locked_out", "ord", "part_number",
                 "plan_ids", "plans", "sku_id", "subscription_ids", "suspended", "warning")  # fmt: skip

    def __init__(self, r: sqlite3.Row) -> None:
        self.sku_id: str = r["sku_id"]
        self.part_number: str = r["part_number"]
        self.applies_to: str = r["applies_to"]
        self.capability_status: str = r["capability_status"]
        self.enabled: int = r["enabled"]
        self.suspended: int = r["suspended"]
        self.warning: int = r["warning"]
        self.locked_out: int = r["locked_out"]
        self.consumed: int = r["consumed"]
        self.subscription_ids: list[str] = orjson.loads(r["subscription_ids"])
        self.plans: list[dict[str, str]] = orjson.loads(r["plans"])
        self.plan_ids = frozenset(p["servicePlanId"] for p in self.plans)
        self.ord: int = r["ord"]

    @property
    def available(self) -> int:
        return self.enabled - self.consumed


def load_skus(conn: sqlite3.Connection, ids: Iterable[str] | None = None) -> dict[str, SkuRow]:
    if ids is None:
        rows = conn.execute("SELECT * FROM skus ORDER BY ord").fetchall()
    else:
        idl = list(dict.fromkeys(ids))
        if not idl:
            return {}
        q = ",".join("?" * len(idl))
        rows = conn.execute(f"SELECT * FROM skus WHERE sku_id IN ({q})", idl).fetchall()
    return {r["sku_id"]: SkuRow(r) for r in rows}


def sku_json(s: SkuRow, tenant_id: str, tenant_name: str) -> dict[str, Any]:
    return {
        "accountId": tenant_id,
        "accountName": tenant_name,
        "appliesTo": s.applies_to,
        "capabilityStatus": s.capability_status,
        "consumedUnits": s.consumed,
        "id": f"{tenant_id}_{s.sku_id}",
        "prepaidUnits": {
            "enabled": s.enabled,
            "suspended": s.suspended,
            "warning": s.warning,
            "lockedOut": s.locked_out,
        },
        "servicePlans": s.plans,
        "skuId": s.sku_id,
        "skuPartNumber": s.part_number,
        "subscriptionIds": s.subscription_ids,
    }


# ------------------------------------------------------------------------------------- users

USER_COLUMNS: dict[str, str] = {
    "id": "id",
    "userPrincipalName": "upn",
    "mail": "mail",
    "displayName": "display_name",
    "givenName": "given_name",
    "surname": "surname",
    "jobTitle": "job_title",
    "department": "department",
    "officeLocation": "office_location",
    "city": "city",
    "country": "country",
    "usageLocation": "usage_location",
    "preferredLanguage": "preferred_language",
    "mobilePhone": "mobile_phone",
    "businessPhones": "business_phones",
    "accountEnabled": "account_enabled",
    "userType": "user_type",
    "companyName": "company_name",
    "employeeType": "employee_type",
    "createdDateTime": "created",
    "assignedLicenses": "licenses",
    "licenseAssignmentStates": "licenses",
}
USER_PROPERTIES = frozenset(USER_COLUMNS)


def assigned_licenses(states: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Effective licenses: one per SKU with an active assignment; a plan is disabled only if every
    active assignment of that SKU disables it."""
    out: dict[str, set[str]] = {}
    order: list[str] = []
    for s in states:
        if s["state"] not in ACTIVE_STATES:
            continue
        sku = s["skuId"]
        dis = set(s["disabledPlans"])
        if sku in out:
            out[sku] &= dis
        else:
            out[sku] = dis
            order.append(sku)
    return [{"disabledPlans": sorted(out[k]), "skuId": k} for k in order]


def user_json(r: sqlite3.Row | Mapping[str, Any], props: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    states: list[dict[str, Any]] | None = None
    for p in props:
        col = USER_COLUMNS[p]
        v = r[col]
        if p == "businessPhones":
            v = orjson.loads(v)
        elif p == "accountEnabled":
            v = bool(v)
        elif col == "licenses":
            if states is None:
                states = orjson.loads(v)
            v = assigned_licenses(states) if p == "assignedLicenses" else states
        out[p] = v
    return out


def find_user(conn: sqlite3.Connection, key: str) -> sqlite3.Row:
    """By object id or userPrincipalName (case-insensitive)."""
    k = key.strip()
    if GUID_RE.match(k):
        r = conn.execute("SELECT * FROM users WHERE id=?", (k.lower(),)).fetchone()
    else:
        r = conn.execute("SELECT * FROM users WHERE upn_lower=?", (k.lower(),)).fetchone()
    if r is None:
        raise not_found(key)
    return r


def active_skus(states: Iterable[Mapping[str, Any]]) -> set[str]:
    return {s["skuId"] for s in states if s["state"] in ACTIVE_STATES}


def enabled_plans(states: Iterable[Mapping[str, Any]], skus: Mapping[str, SkuRow]) -> dict[str, str]:
    """servicePlanName -> skuId giving it, over the held (Active/ActiveWithError) assignments, in the order
    the states list them (so messages name the plan the user had before the one being added)."""
    out: dict[str, str] = {}
    for s in states:
        if s["state"] not in ACTIVE_STATES:
            continue
        sku = skus.get(s["skuId"])
        if sku is None:
            continue
        dis = set(s["disabledPlans"])
        for p in sku.plans:
            if p["servicePlanId"] not in dis:
                out.setdefault(p["servicePlanName"], s["skuId"])
    return out


def plan_violation(plans: Mapping[str, str]) -> tuple[str, str] | None:
    """(group-licensing error, message) of the first mutually-exclusive or dependency violation, or None.

    ``plans``: enabled servicePlanName -> skuId (see :func:`enabled_plans`). Two DIFFERENT plans of one family
    conflict (the same plan from two packs stacks, e.g. INTUNE_A from Microsoft 365 E3 and EMS E3)."""
    for family in EXCLUSIVE_FAMILIES.values():
        held = [p for p in plans if p in family]
        if len(held) >= 2:
            return "MutuallyExclusiveViolation", B.MSG_MUTUALLY_EXCLUSIVE.format(a=held[0], b=held[1])
    for plan, needs in PLAN_DEPENDENCIES.items():
        if plan in plans and not any(n in plans for n in needs):
            return "DependencyViolation", B.MSG_DEPENDENCY.format(a=plan, b=", ".join(needs))
    return None


def parse_license_body(body: Any) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """Validate an assignLicense payload: both arrays required, GUIDs, no SKU both added and removed."""
    if not isinstance(body, dict):
        raise bad_request(B.MSG_MISSING_PARAMETERS.format(names="addLicenses, removeLicenses"))
    missing = [n for n in ("addLicenses", "removeLicenses") if n not in body or body[n] is None]
    if missing:
        raise bad_request(B.MSG_MISSING_PARAMETERS.format(names=", ".join(missing)))
    add_raw, rem_raw = body["addLicenses"], body["removeLicenses"]
    if not isinstance(add_raw, list) or not isinstance(rem_raw, list):
        raise bad_request(
            B.MSG_BAD_PAYLOAD.format(name="addLicenses" if not isinstance(add_raw, list) else "removeLicenses")
        )
    add: list[tuple[str, list[str]]] = []
    for item in add_raw:
        if not isinstance(item, dict) or not isinstance(item.get("skuId"), str) or not GUID_RE.match(item["skuId"]):
            raise bad_request(B.MSG_BAD_PAYLOAD.format(name="skuId"))
        dis = item.get("disabledPlans") or []
        if not isinstance(dis, list) or not all(isinstance(d, str) and GUID_RE.match(d) for d in dis):
            raise bad_request(B.MSG_BAD_PAYLOAD.format(name="disabledPlans"))
        add.append((item["skuId"].lower(), sorted({d.lower() for d in dis})))
    rem: list[str] = []
    for r in rem_raw:
        if not isinstance(r, str) or not GUID_RE.match(r):
            raise bad_request(B.MSG_BAD_PAYLOAD.format(name="removeLicenses"))
        rem.append(r.lower())
    for sku, _ in add:
        if sku in rem:
            raise bad_request(B.MSG_ADD_AND_REMOVE.format(sku_id=sku))
    return add, rem


def _check_skus(add: list[tuple[str, list[str]]], rem: list[str], skus: Mapping[str, SkuRow]) -> None:
    for sku_id, dis in add:
        sku = skus.get(sku_id)
        if sku is None:
            raise bad_request(B.MSG_SKU_NOT_IN_TENANT.format(sku_id=sku_id))
        if sku.applies_to != "User":
            raise bad_request(B.MSG_COMPANY_SKU.format(sku_id=sku_id))
        for d in dis:
            if d not in sku.plan_ids:
                raise bad_request(B.MSG_PLAN_NOT_IN_SKU.format(plan_id=d, sku_id=sku_id))
    for sku_id in rem:
        if sku_id not in skus:
            raise bad_request(B.MSG_SKU_NOT_IN_TENANT.format(sku_id=sku_id))


def _apply_seat_delta(conn: sqlite3.Connection, before: set[str], after: set[str]) -> None:
    for sku in after - before:
        conn.execute("UPDATE skus SET consumed = consumed + 1 WHERE sku_id=?", (sku,))
    for sku in before - after:
        conn.execute("UPDATE skus SET consumed = consumed - 1 WHERE sku_id=?", (sku,))


def assign_user_license(conn: sqlite3.Connection, key: str, body: Any) -> sqlite3.Row:
    """POST /users/{id}/assignLicense. Returns the updated user row; raises GraphError."""
    add, rem = parse_license_body(body)
    user = find_user(conn, key)
    states: list[dict[str, Any]] = orjson.loads(user["licenses"])
    skus = load_skus(conn, [s for s, _ in add] + rem + [s["skuId"] for s in states])
    _check_skus(add, rem, skus)
    if add and not user["usage_location"]:
        raise bad_request(B.MSG_INVALID_USAGE_LOCATION)
    new = list(states)
    for sku_id in rem:
        direct = [s for s in new if s["skuId"] == sku_id and s["assignedByGroup"] is None]
        if not direct:
            inherited = [s for s in new if s["skuId"] == sku_id and s["assignedByGroup"]]
            if inherited:
                raise bad_request(
                    B.MSG_REMOVE_INHERITED.format(sku_id=sku_id, group_id=inherited[0]["assignedByGroup"])
                )
            raise bad_request(B.MSG_REMOVE_NOT_HELD.format(sku_id=sku_id))
        new = [s for s in new if not (s["skuId"] == sku_id and s["assignedByGroup"] is None)]
    stamp = now_iso()
    for sku_id, dis in add:
        entry = {"assignedByGroup": None, "disabledPlans": dis, "error": "None",
                 "lastUpdatedDateTime": stamp, "skuId": sku_id, "state": "Active"}  # fmt: skip
        for i, s in enumerate(new):
            if s["skuId"] == sku_id and s["assignedByGroup"] is None:
                new[i] = entry
                break
        else:
            new.append(entry)
    before, after = active_skus(states), active_skus(new)
    for sku_id in after - before:
        sku = skus[sku_id]
        if sku.available < 1 or sku.capability_status in ("Suspended", "Deleted", "LockedOut"):
            raise bad_request(B.MSG_NO_AVAILABLE_LICENSES.format(sku_id=sku_id))
    violation = plan_violation(enabled_plans(new, skus))
    if violation is not None:
        raise GraphError(B.PLAN_RULE_STATUS, B.PLAN_RULE_CODE, violation[1])
    _apply_seat_delta(conn, before, after)
    conn.execute("UPDATE users SET licenses=? WHERE n=?", (dumps(new), user["n"]))
    return conn.execute("SELECT * FROM users WHERE n=?", (user["n"],)).fetchone()


def set_user_properties(conn: sqlite3.Connection, key: str, body: Any) -> None:
    """PATCH /users/{id}: usageLocation (and a few harmless profile fields)."""
    user = find_user(conn, key)
    if not isinstance(body, dict):
        raise bad_request("Empty Payload. JSON content expected.")
    sets: dict[str, Any] = {}
    for k, v in body.items():
        if k == "usageLocation":
            if v is not None and (not isinstance(v, str) or v.upper() not in COUNTRY_CODES):
                raise bad_request(B.MSG_BAD_USAGE_LOCATION_VALUE)
            sets["usage_location"] = v.upper() if isinstance(v, str) else None
        elif k in ("department", "jobTitle", "officeLocation", "city", "country", "companyName"):
            if v is not None and not isinstance(v, str):
                raise bad_request(f"Invalid value specified for property '{k}' of resource 'User'.")
            sets[USER_COLUMNS[k]] = v
        elif k == "accountEnabled":
            if not isinstance(v, bool):
                raise bad_request("Invalid value specified for property 'accountEnabled' of resource 'User'.")
            sets["account_enabled"] = int(v)
        elif k in USER_PROPERTIES:
            raise bad_request(f"Property '{k}' is read-only and cannot be set in the sandbox.")
        else:
            raise bad_request(B.MSG_UNKNOWN_PROPERTY.format(name=k, type="User"))
    if sets:
        cols = ", ".join(f"{c}=?" for c in sets)
        conn.execute(f"UPDATE users SET {cols} WHERE n=?", (*sets.values(), user["n"]))


def license_details(r: sqlite3.Row, skus: Mapping[str, SkuRow]) -> list[dict[str, Any]]:
    out = []
    for lic in assigned_licenses(orjson.loads(r["licenses"])):
        sku = skus.get(lic["skuId"])
        if sku is None:
            continue
        dis = set(lic["disabledPlans"])
        raw = uuid.UUID(r["id"]).bytes + uuid.UUID(sku.sku_id).bytes
        out.append({
            "id": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "skuId": sku.sku_id,
            "skuPartNumber": sku.part_number,
            "servicePlans": [
                {**p, "provisioningStatus": "Disabled" if p["servicePlanId"] in dis else "Success"} for p in sku.plans
            ],
        })  # fmt: skip
    return out


# ------------------------------------------------------------------------------------- groups

GROUP_COLUMNS: dict[str, str] = {
    "id": "id",
    "displayName": "display_name",
    "description": "description",
    "mailNickname": "mail_nickname",
    "mail": "mail",
    "mailEnabled": "mail_enabled",
    "securityEnabled": "security_enabled",
    "groupTypes": "group_types",
    "createdDateTime": "created",
    "assignedLicenses": "licenses",
    "licenseProcessingState": "processing_state",
    "membershipRule": "membership_rule",
}
GROUP_PROPERTIES = frozenset(GROUP_COLUMNS)
GROUP_DEFAULT_PROPERTIES = ("id", "displayName", "description", "mailNickname", "mail", "mailEnabled",
                            "securityEnabled", "groupTypes", "createdDateTime")  # fmt: skip


def group_json(r: sqlite3.Row, props: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in props:
        v = r[GROUP_COLUMNS[p]]
        if p in ("groupTypes", "assignedLicenses"):
            v = orjson.loads(v)
        elif p in ("mailEnabled", "securityEnabled"):
            v = bool(v)
        elif p == "licenseProcessingState":
            v = {"state": v} if v else None
        out[p] = v
    return out


def find_group(conn: sqlite3.Connection, key: str) -> sqlite3.Row:
    r = conn.execute("SELECT * FROM groups WHERE id=?", (key.strip().lower(),)).fetchone()
    if r is None:
        raise not_found(key)
    return r


def _refuse_dynamic(g: sqlite3.Row) -> None:
    """Rule-based groups take no members through the API (cloud-facts)."""
    if _is_dynamic(g):
        raise bad_request(B.MSG_DYNAMIC_MEMBERS)


def _is_dynamic(g: sqlite3.Row) -> bool:
    rule = g["membership_rule"] if "membership_rule" in g.keys() else None  # noqa: SIM118 (a Row's `in` is values)
    return bool(rule) or "DynamicMembership" in orjson.loads(g["group_types"] or "[]")


def _ref_id(ref: Any) -> str:
    if not isinstance(ref, str) or not ref:
        raise bad_request("Invalid object identifier ''.")
    obj_id = ref.rstrip("/").rsplit("/", 1)[-1]
    if not GUID_RE.match(obj_id):
        raise bad_request(f"Invalid object identifier '{obj_id}'.")
    return obj_id.lower()


def _next_n(conn: sqlite3.Connection, group_id: str) -> int:
    """The group's last member position: users (``members``) and nested groups (``subgroups``) share one order."""
    row = conn.execute("SELECT MAX(COALESCE((SELECT MAX(n) FROM members WHERE group_id=?), 0), "
                       "COALESCE((SELECT MAX(n) FROM subgroups WHERE group_id=?), 0))", (group_id, group_id)).fetchone()
    return int(row[0])


def _insert_members(conn: sqlite3.Connection, g: sqlite3.Row, user_ids: Sequence[str], group_ids: Sequence[str],
                    due: Callable[[], float]) -> None:
    """Users get a licensing job when the group carries licenses; nested groups never do (group-based licensing
    reaches only a group's direct user members: cloud-facts)."""
    n = _next_n(conn, g["id"])
    for uid in user_ids:
        n += 1
        conn.execute("INSERT INTO members VALUES(?,?,?)", (g["id"], uid, n))
        if g["licenses"] != "[]":
            conn.execute("INSERT INTO group_jobs(group_id, user_id, due) VALUES(?,?,?)", (g["id"], uid, due()))
    for gid in group_ids:
        n += 1
        conn.execute("INSERT INTO subgroups VALUES(?,?,?)", (g["id"], gid, n))


def _split_refs(conn: sqlite3.Connection, g: sqlite3.Row, ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Referenced object ids -> (user ids, group ids); an unknown id is a 404, the group itself a 400, any of
    them a member already the 400 Graph gives (the whole request is refused)."""
    if not ids:
        return [], []
    q = ",".join("?" * len(ids))
    users = {r[0] for r in conn.execute(f"SELECT id FROM users WHERE id IN ({q})", ids)}
    groups = {r[0] for r in conn.execute(f"SELECT id FROM groups WHERE id IN ({q})", ids)}
    for oid in ids:
        if oid not in users and oid not in groups:
            raise not_found(oid)
    if g["id"] in groups:
        raise bad_request(B.MSG_GROUP_MEMBER_OF_ITSELF)
    if conn.execute(f"SELECT 1 FROM members WHERE group_id=? AND user_id IN ({q}) "
                    f"UNION ALL SELECT 1 FROM subgroups WHERE group_id=? AND member_id IN ({q}) LIMIT 1",
                    (g["id"], *ids, g["id"], *ids)).fetchone():
        raise bad_request(B.MSG_MEMBER_EXISTS)
    return [i for i in ids if i in users], [i for i in ids if i in groups]


def add_member(conn: sqlite3.Connection, group_key: str, body: Any, due: Callable[[], float]) -> None:
    """POST /groups/{id}/members/$ref: one member (a user, or a group: nesting)."""
    g = find_group(conn, group_key)
    _refuse_dynamic(g)
    obj_id = _ref_id(body.get("@odata.id") if isinstance(body, dict) else None)
    users, groups = _split_refs(conn, g, [obj_id])
    _insert_members(conn, g, users, groups, due)


def patch_group(conn: sqlite3.Connection, group_key: str, body: Any, due: Callable[[], float]) -> None:
    """PATCH /groups/{id}: ``members@odata.bind`` (up to 20 users or groups; any of them a member already
    refuses the whole request) and a few plain properties."""
    g = find_group(conn, group_key)
    if not isinstance(body, dict) or not body:
        raise bad_request("Empty Payload. JSON content expected.")
    sets: dict[str, Any] = {}
    refs: list[Any] | None = None
    for k, v in body.items():
        if k == "members@odata.bind":
            if not isinstance(v, list):
                raise bad_request("Invalid value specified for property 'members@odata.bind' of resource 'Group'.")
            refs = v
        elif k in ("displayName", "description"):
            if not isinstance(v, str):
                raise bad_request(f"Invalid value specified for property '{k}' of resource 'Group'.")
            sets[GROUP_COLUMNS[k]] = v
        else:
            raise bad_request(B.MSG_UNKNOWN_PROPERTY.format(name=k, type="Group"))
    if refs is not None:
        if len(refs) > B.MAX_MEMBERS_PER_PATCH:
            raise bad_request(B.MSG_TOO_MANY_MEMBERS.format(n=len(refs), max=B.MAX_MEMBERS_PER_PATCH))
        _refuse_dynamic(g)
        users, groups = _split_refs(conn, g, list(dict.fromkeys(_ref_id(r) for r in refs)))
        _insert_members(conn, g, users, groups, due)
    if sets:
        conn.execute(f"UPDATE groups SET {', '.join(f'{c}=?' for c in sets)} WHERE n=?", (*sets.values(), g["n"]))


def remove_member(conn: sqlite3.Connection, group_key: str, member_key: str, due: float) -> None:
    """DELETE /groups/{id}/members/{id}/$ref: a user (its licensing from the group is then taken back) or a
    nested group."""
    g = find_group(conn, group_key)
    _refuse_dynamic(g)
    key = member_key.lower()
    if conn.execute("DELETE FROM subgroups WHERE group_id=? AND member_id=?", (g["id"], key)).rowcount:
        return
    cur = conn.execute("DELETE FROM members WHERE group_id=? AND user_id=?", (g["id"], key))
    if cur.rowcount == 0:
        raise not_found(member_key)
    if g["licenses"] != "[]":
        conn.execute("INSERT INTO group_jobs(group_id, user_id, due) VALUES(?,?,?)", (g["id"], key, due))


def nested_group_ids(conn: sqlite3.Connection, group_id: str) -> list[str]:
    """Every group nested in ``group_id`` at any depth (each once; a cycle ends where it closes), not itself."""
    rows = conn.execute(
        "WITH RECURSIVE g(id) AS (SELECT ? UNION SELECT s.member_id FROM subgroups s JOIN g ON s.group_id = g.id) "
        "SELECT id FROM g", (group_id,)).fetchall()
    return [r[0] for r in rows if r[0] != group_id]


def assign_group_license(conn: sqlite3.Connection, key: str, body: Any, due: float) -> sqlite3.Row:
    """POST /groups/{id}/assignLicense: validate, record, queue for asynchronous processing."""
    add, rem = parse_license_body(body)
    g = find_group(conn, key)
    lic: list[dict[str, Any]] = orjson.loads(g["licenses"])
    skus = load_skus(conn, [s for s, _ in add] + rem)
    _check_skus(add, rem, skus)
    held = {x["skuId"] for x in lic}
    for sku_id in rem:
        if sku_id not in held:
            raise bad_request(B.MSG_REMOVE_NOT_HELD.format(sku_id=sku_id))
    lic = [x for x in lic if x["skuId"] not in rem]
    for sku_id, dis in add:
        lic = [x for x in lic if x["skuId"] != sku_id]
        lic.append({"disabledPlans": dis, "skuId": sku_id})
    conn.execute("UPDATE groups SET licenses=?, processing_state='QueuedForProcessing' WHERE n=?", (dumps(lic), g["n"]))
    conn.execute("INSERT INTO group_jobs(group_id, user_id, due) VALUES(?,?,?)", (g["id"], None, due))
    return conn.execute("SELECT * FROM groups WHERE n=?", (g["n"],)).fetchone()


def reconcile_user_groups(
    conn: sqlite3.Connection,
    user: sqlite3.Row,
    group_id: str,
    group_licenses: list[dict[str, Any]] | None,
    stamp: str,
    fallback_location: str | None,
) -> None:
    """Bring one user's states from ``group_id`` in line with the group's licenses (None = not a member)."""
    states: list[dict[str, Any]] = orjson.loads(user["licenses"])
    others = [s for s in states if s["assignedByGroup"] != group_id]
    wanted = group_licenses or []
    skus = load_skus(conn, [s["skuId"] for s in states] + [w["skuId"] for w in wanted])
    new = list(others)
    before = active_skus(states)
    location = user["usage_location"] or (fallback_location if B.GROUP_LICENSING_FALLBACK_LOCATION else None)
    for w in wanted:
        sku = skus.get(w["skuId"])
        entry = {"assignedByGroup": group_id, "disabledPlans": list(w["disabledPlans"]), "error": "None",
                 "lastUpdatedDateTime": stamp, "skuId": w["skuId"], "state": "Active"}  # fmt: skip
        needs_seat = w["skuId"] not in active_skus(new) and w["skuId"] not in before
        if sku is None:
            entry.update(state="Error", error="Other")
        elif not location:
            entry.update(state="Error", error="ProhibitedInUsageLocationViolation")
        elif needs_seat and sku.available < 1:
            entry.update(state="Error", error="CountViolation")
        else:
            violation = plan_violation(enabled_plans([*new, entry], skus))
            if violation is not None:
                entry.update(state="Error", error=violation[0])
        new.append(entry)
    _apply_seat_delta(conn, before, active_skus(new))
    conn.execute("UPDATE users SET licenses=? WHERE n=?", (dumps(new), user["n"]))


def process_group_job(
    conn: sqlite3.Connection, group_id: str, user_id: str | None, fallback_location: str | None
) -> None:
    g = conn.execute("SELECT * FROM groups WHERE id=?", (group_id,)).fetchone()
    if g is None:
        return
    lic = orjson.loads(g["licenses"])
    stamp = now_iso()
    if user_id is not None:
        targets = [user_id]
    else:
        members = [r[0] for r in conn.execute("SELECT user_id FROM members WHERE group_id=? ORDER BY n", (group_id,))]
        like = f'%"assignedByGroup":"{group_id}"%'
        holders = [r[0] for r in conn.execute("SELECT id FROM users WHERE licenses LIKE ?", (like,))]
        targets = list(dict.fromkeys(members + holders))
    member_set = (
        {r[0] for r in conn.execute("SELECT user_id FROM members WHERE group_id=?", (group_id,))}
        if user_id is None
        else (
            {user_id}
            if conn.execute("SELECT 1 FROM members WHERE group_id=? AND user_id=?", (group_id, user_id)).fetchone()
            else set()
        )
    )
    for uid in targets:
        u = conn.execute("SELECT * FROM users WHERE id=?", (uid,)).fetchone()
        if u is None:
            continue
        reconcile_user_groups(conn, u, group_id, lic if uid in member_set else None, stamp, fallback_location)
    conn.execute("UPDATE groups SET processing_state='ProcessingComplete' WHERE id=?", (group_id,))
