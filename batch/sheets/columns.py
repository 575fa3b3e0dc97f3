"""Which column means what: the one synonym table, header scoring, and ``--map`` overrides.

Header text is compared after ``norm``: lower case, accents dropped, everything that is not a letter or a
digit removed ("User Principal Name", "user_principal_name" and "UserPrincipalName" are the same). A
header with a parenthesised remark ("Email (work)") also matches without the remark.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from ..errors import ColumnError
from ..kinds.addons.names import resolve_addon
from ..models import Role

#: Usual header names per role, most specific first (when two headers match one role, the one whose
#: synonym comes first wins). Compared after ``norm``.
SYNONYMS: dict[Role, tuple[str, ...]] = {
    Role.USER: (
        "userPrincipalName",
        "UPN",
        "user principal name",
        "sign-in name",
        "work email",
        "email address",
        "e-mail address",
        "email",
        "e-mail",
        "mail",
        "user email",
        "user",
        "username",
        "user name",
        "login",
        "object id",
        "objectId",
        "user id",
        "user object id",
    ),
    Role.SKU: (
        "skuPartNumber",
        "skuId",
        "sku",
        "string id",
        "license",
        "licence",
        "licenses",
        "licences",
        "license name",
        "licence name",
        "license sku",
        "sku part number",
        "sku id",
        "product",
        "product name",
        "products",
        "subscription",
        "license to assign",
        "licenses to assign",
    ),
    Role.ACTION: ("action", "operation", "change", "license action", "licence action"),
    Role.FROM_SKU: (
        "from sku",
        "from license",
        "from licence",
        "old license",
        "old licence",
        "old sku",
        "current license",
        "current licence",
        "current sku",
        "remove license",
        "remove licence",
        "license to remove",
        "licence to remove",
        "replace license",
        "existing license",
    ),
    Role.TO_SKU: (
        "to sku",
        "to license",
        "to licence",
        "new license",
        "new licence",
        "new sku",
        "target license",
        "target licence",
        "target sku",
        "replace with",
        "replacement license",
    ),
    Role.DISABLED_PLANS: (
        "disabled plans",
        "disabled service plans",
        "disabledPlans",
        "exclude plans",
        "excluded plans",
        "disable plans",
        "plans to disable",
        "disabled services",
        "service plans to disable",
        "excluded service plans",
    ),
    Role.USAGE_LOCATION: (
        "usage location",
        "usageLocation",
        "country or region",
        "country/region",
        "country",
        "country code",
        "location",
        "usage country",
    ),
    Role.PRIORITY: ("priority", "prio"),
    Role.ENVIRONMENT: (
        "environment",
        "environment id",
        "environmentid",
        "environment name",
        "environment display name",
        "power platform environment",
        "env",
        "env id",
    ),
    Role.ADDON: (
        "add-on",
        "addon",
        "add-on type",
        "currency type",
        "currencytype",
        "capacity type",
        "add-ons",
        "capacity",
        "entitlement",
    ),
    Role.AMOUNT: (
        "amount",
        "allocated",
        "allocation",
        "quantity",
        "units",
        "credits",
        "count",
    ),
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_REMARK = re.compile(r"\([^)]*\)|\[[^\]]*\]")


def norm(text: str) -> str:
    """Header text reduced for comparison."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    return _NON_ALNUM.sub("", t.casefold())


#: normalised synonym -> (role, rank)
_LOOKUP: dict[str, tuple[Role, int]] = {}
for _role, _names in SYNONYMS.items():
    for _rank, _name in enumerate(_names):
        _LOOKUP.setdefault(norm(_name), (_role, _rank))


def role_of(header: str) -> tuple[Role, int] | None:
    """The role a header names (with the synonym's rank), if it is a usual name."""
    key = norm(header)
    if not key:
        return None
    hit = _LOOKUP.get(key)
    if hit is None and ("(" in header or "[" in header):
        hit = _LOOKUP.get(norm(_REMARK.sub(" ", header)))
    return hit


def header_score(cells: Sequence[str], mapped: frozenset[str] = frozenset()) -> int:
    """How much a row looks like the header: known names count 1, headers named in --map count 2."""
    score = 0
    roles: set[Role] = set()
    for c in cells:
        if not c:
            continue
        k = norm(c)
        if k in mapped:
            score += 2
            continue
        hit = role_of(c)
        if hit and hit[0] not in roles:
            roles.add(hit[0])
            score += 1
        elif hit is None and Role.ADDON not in roles and resolve_addon(c) is not None:
            roles.add(Role.ADDON)  # a wide add-on sheet: a column headed by an add-on's name
            score += 1
    return score


def parse_role(name: str, path: str | None = None) -> Role:
    """A role from its value ("user", "from_sku"; also "from-sku", "From SKU")."""
    key = norm(name)
    for r in Role:
        if norm(r.value) == key:
            return r
    raise ColumnError(
        f"--map uses the unknown role '{name}'.",
        path=path,
        fix=f"Roles are: {', '.join(r.value for r in Role)}.",
    )


def mapped_headers(column_map: Mapping[str, str] | None) -> frozenset[str]:
    return frozenset(norm(h) for h in (column_map or {}).values() if h)


def detect_columns(
    headers: Sequence[str],
    column_map: Mapping[str, str] | None,
    path: str | None = None,
) -> tuple[dict[Role, int], list[str]]:
    """role -> column index, and notes about choices made. --map entries override detection."""
    notes: list[str] = []
    columns: dict[Role, int] = {}
    taken: dict[int, Role] = {}
    listed = ", ".join(f"'{h}'" for h in headers)
    for role_name, header in (column_map or {}).items():
        role = parse_role(role_name, path)
        want = norm(header)
        matches = [i for i, h in enumerate(headers) if norm(h) == want] if want else []
        if not matches:
            raise ColumnError(
                f"--map names the column '{header}' for {role.value}, but there is no such header. "
                f"The headers are: {listed}.",
                path=path,
                column=header,
                fix="Correct the header in --map (or in [columns] of license-batch.toml).",
            )
        i = matches[0]
        if i in taken and taken[i] is not role:
            raise ColumnError(
                f"--map gives the column '{headers[i]}' two roles: {taken[i].value} and {role.value}.",
                path=path,
                column=headers[i],
                fix="Map each role to its own column.",
            )
        if len(matches) > 1:
            notes.append(f"several columns are headed '{header}'; using the first for {role.value}")
        columns[role] = i
        taken[i] = role

    best: dict[Role, tuple[int, int]] = {}  # role -> (rank, index)
    also: dict[Role, list[int]] = {}
    for i, h in enumerate(headers):
        if i in taken:
            continue
        hit = role_of(h)
        if hit is None:
            continue
        role, rank = hit
        if role in columns:
            continue
        also.setdefault(role, []).append(i)
        if role not in best or rank < best[role][0]:
            best[role] = (rank, i)
    for role, (_, i) in best.items():
        columns[role] = i
        others = [headers[j] for j in also[role] if j != i]
        if others:
            notes.append(
                f"columns {', '.join(repr(o) for o in others)} also look like the {role.value} column; "
                f"using '{headers[i]}' (choose with --map {role.value}=...)"
            )
    return dict(sorted(columns.items(), key=lambda kv: kv[1])), notes
