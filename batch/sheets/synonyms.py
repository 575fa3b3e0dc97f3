"""The names columns go by, and how a header is matched against them (``role_of``).

A header is tried, in order, as:

1. the whole text, after ``norm`` (lower case, accents dropped, only letters and digits kept);
2. the attribute in square brackets, as Microsoft Entra's bulk templates write it:
   ``User name [userPrincipalName] Required`` is ``userPrincipalName``;
3. the label without bracketed or parenthesised remarks and without a trailing ``Required`` /
   ``Optional`` / ``*`` (``Email Address [Required]`` is ``Email Address``; ``Email (work)`` is ``Email``);
4. the label with leading qualifier words dropped, for the user, license and usage-location roles only, and
   only words that keep the meaning (``Employee Email Address`` and ``Primary Work Email`` are the user's
   email; ``Work Country`` is the usage location; ``Assigned Licenses`` the license). Words that change
   whose value it is (``Manager Email``, ``Personal Email``, ``Alternate email address``) are not
   qualifiers, so those columns are never taken for the user. A match this way ranks just after the name
   it qualifies: ``Work Country`` is as good as ``Country`` (and beats the generic ``Location``, which in
   HR exports is an office site), ``Email`` never beats ``User principal name``.

Where the names come from (the corpus in ``tests/sheets/corpus`` imitates each):

- Microsoft Entra admin center, Bulk operations templates: a ``version:v1.0`` line above the header and
  headers ``<Item name> [propertyName] <Required or blank>``: bulk create (``User name [userPrincipalName]
  Required``, ``Usage location [usageLocation]``, ``Country or region [country]``), bulk invite (``Email
  address to invite [inviteeEmail] Required``), group member import (``Member object ID or user principal
  name [memberObjectIdOrUpn] Required``). learn.microsoft.com/entra/identity/users/users-bulk-add,
  .../users-bulk-delete, .../groups-bulk-import-members, .../external-id/tutorial-bulk-invite
  (MicrosoftDocs/entra-docs).
- Microsoft Entra "Download users": Graph property names as headers (``userPrincipalName``, ``displayName``,
  ``mail``, ``objectId``/``id``, ``usageLocation``, ``country``, ``alternateEmailAddress``, ...), as read
  back by public conversion scripts of that file.
- Microsoft 365 admin center, Active users > Export users: ``Display name``, ``User principal name``,
  ``Licenses`` (product names joined with ``+``), ``Usage location``, ``Country/Region``, ``Object Id``,
  ``Proxy addresses``, ``License assignment details`` ...; and its "Add multiple users" CSV (``User Name``,
  ``Alternate email address``, ``Country or Region``).
- PowerShell license reports: ``Get-MgUser ... | Select DisplayName, UserPrincipalName, AssignedLicenses``,
  ``Get-MgUserLicenseDetail`` (``userPrincipalName``, ``skuPartNumber``, ``servicePlanName``), AzureAD-era
  scripts (``UserName``, ``AssignedLicences`` joined with ``;``), MSOnline scripts (``Licenses`` as
  ``AccountSkuId`` joined with ``, ``).
- HR systems: BambooHR (``Work Email``, ``Location``, ``Country``), Workday reports (``Email - Primary Work``,
  ``Primary Work Email``, ``Work Country``), SAP SuccessFactors (``Business Email Address``, ``Country/Region``),
  generic HR exports (``Employee Email Address``, ``Official Email ID``, ``Login``, ``Office Country``);
  Google Workspace's user export (``Email Address [Required]``, ``Manager Email``) is the model for columns
  that must *not* be the user.
"""

from __future__ import annotations

import re
import unicodedata

from ..models import Role

#: Usual header names per role, most specific first (when two headers match one role, the one whose
#: synonym comes first wins). Compared after ``norm``.
SYNONYMS: dict[Role, tuple[str, ...]] = {
    Role.USER: (
        "userPrincipalName",
        "UPN",
        "user principal name",
        "sign-in name",
        "memberObjectIdOrUpn",  # Entra group member import template
        "member object id or user principal name",
        "work email",
        "work email address",
        "email - primary work",  # Workday report
        "primary work email",
        "business email",
        "business email address",  # SAP SuccessFactors
        "employee email",
        "employee email address",
        "corporate email",
        "company email",
        "official email",
        "official email id",
        "email address",
        "e-mail address",
        "email",
        "e-mail",
        "mail",
        "email id",
        "user email",
        "user",
        "username",
        "user name",
        "login",
        "login name",
        "login id",
        "sign-in address",
        "inviteeEmail",  # Entra bulk invite template
        "email address to invite",
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
        "skus",
        "assigned licenses",  # Get-MgUser ... AssignedLicenses
        "assigned licences",
        "license plan",
        "license plans",
        "product",
        "product name",
        "products",
        "subscription",
        "license to assign",
        "licenses to assign",
        "licence to assign",
        "licences to assign",
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
        "country name",
        "iso country code",
        "location",
        "usage country",
    ),
    Role.PRIORITY: ("priority", "prio"),
    Role.GROUP: (  # group membership rows (batch.kinds.groups)
        "group",
        "group name",
        "group display name",
        "groupName",
        "group id",
        "groupId",
        "group object id",
        "licensing group",
        "security group",
        "target group",
    ),
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

#: Leading words that keep a column's meaning, per role (item 4 above). Multi-word entries match as a
#: phrase. Never add words that name another person or another address (manager, personal, home,
#: alternate, secondary, recovery, other) or another role (new, old, from, to, current).
QUALIFIERS: dict[Role, tuple[str, ...]] = {
    Role.USER: (
        "work",
        "business",
        "corporate",
        "company",
        "office",
        "official",
        "primary",
        "employee",
        "worker",
        "staff",
        "member",
        "user",
        "microsoft 365",
        "office 365",
        "m365",
        "o365",
        "azure ad",
        "aad",
        "entra id",
        "entra",
    ),
    Role.SKU: ("assigned", "requested", "microsoft 365", "office 365", "m365", "o365", "ms", "user", "product"),
    Role.USAGE_LOCATION: ("work", "office", "business", "employee", "worker", "user", "primary", "location"),
}


#: Names too generic to be reached through qualifier words: ``Office Location`` / ``Work Location`` is a site,
#: not a country; ``Employee User`` says nothing.
_NOT_QUALIFIABLE = frozenset({"location", "user"})

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_REMARK = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_ATTRIBUTE = re.compile(r"\[\s*([A-Za-z][A-Za-z0-9_.]*)\s*\]")
_STATUS_WORDS = {"required", "optional", "readonly", "uploadonly", "mandatory"}
_TRAILING_STATUS = re.compile(r"(?:[\s\-:]*(?:\*|\brequired\b|\boptional\b|\bmandatory\b))+\s*:?\s*$", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[0-9a-z]+")


def norm(text: str) -> str:
    """Header text reduced for comparison."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    return _NON_ALNUM.sub("", t.casefold())


def _words(text: str) -> list[str]:
    t = unicodedata.normalize("NFKD", _CAMEL.sub(" ", text))
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    return _WORD.findall(t.casefold())


#: normalised synonym -> (role, rank); ranks are even, a match through qualifier words is the odd rank after.
_LOOKUP: dict[str, tuple[Role, int]] = {}
for _role, _names in SYNONYMS.items():
    for _rank, _name in enumerate(_names):
        _LOOKUP.setdefault(norm(_name), (_role, 2 * _rank))

_QUALIFIER_WORDS: dict[Role, tuple[tuple[str, ...], ...]] = {
    role: tuple(sorted((tuple(_words(q)) for q in qs), key=len, reverse=True)) for role, qs in QUALIFIERS.items()
}


def label_of(header: str) -> str:
    """The header without bracketed/parenthesised remarks and without a trailing Required/Optional/``*``."""
    t = _REMARK.sub(" ", header)
    t = _TRAILING_STATUS.sub("", t)
    return " ".join(t.split())


def _qualified(label: str) -> tuple[Role, int] | None:
    words = _words(label)
    for role, phrases in _QUALIFIER_WORDS.items():
        rest = words
        while True:
            for p in phrases:
                if len(rest) > len(p) and tuple(rest[: len(p)]) == p:
                    rest = rest[len(p) :]
                    break
            else:
                break
            key = "".join(rest)
            hit = None if key in _NOT_QUALIFIABLE else _LOOKUP.get(key)
            if hit is not None and hit[0] is role:
                return role, hit[1] + 1
    return None


def role_of(header: str) -> tuple[Role, int] | None:
    """The role a header names (with the synonym's rank, lower = more specific), if it is a usual name."""
    key = norm(header)
    if not key:
        return None
    hit = _LOOKUP.get(key)
    if hit is not None:
        return hit
    if "[" in header:
        for attr in _ATTRIBUTE.findall(header):
            if norm(attr) not in _STATUS_WORDS:
                hit = _LOOKUP.get(norm(attr))
                if hit is not None:
                    return hit
    label = label_of(header)
    if label != header:
        hit = _LOOKUP.get(norm(label))
        if hit is not None:
            return hit
    return _qualified(label) if label else None
