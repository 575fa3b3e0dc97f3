"""User attributes administrators scope by, and how Graph's ``/users?$filter=`` takes each of them.

Names are case-insensitive on input (``jobtitle``, ``JobTitle``, ``job_title``) and Graph's on the wire
(``jobTitle``). Graph's table of filterable directory properties (aad-advanced-queries.md, "Support for filter
by properties of Microsoft Entra ID (directory) objects") says which take ``eq`` by default and which only in an
advanced query: ``ConsistencyLevel: eventual`` and ``$count=true`` (then the answer comes from an index that may
lag recent changes by a little). :func:`users_query` sends those only where Graph requires them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .http import odata_literal


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str  # Graph's property name
    advanced: bool = False  # eq needs an advanced query (ConsistencyLevel: eventual + $count=true)
    boolean: bool = False  # a true/false value, not a string


#: The attributes, in the order help texts list them.
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("department"),
    Attribute("jobTitle"),
    Attribute("companyName", advanced=True),
    Attribute("officeLocation", advanced=True),
    Attribute("country"),
    Attribute("city"),
    Attribute("state"),
    Attribute("usageLocation"),
    Attribute("employeeType", advanced=True),
    Attribute("userType"),
    Attribute("accountEnabled", boolean=True),
)
_BY_KEY: dict[str, Attribute] = {a.name.lower(): a for a in ATTRIBUTES}
NAMES = ", ".join(a.name for a in ATTRIBUTES)
#: What an advanced query adds: the header, and ``$count=true`` in the query string.
ADVANCED_HEADERS: Mapping[str, str] = {"ConsistencyLevel": "eventual"}


def _key(name: str) -> str:
    return re.sub(r"[\s_-]", "", name).lower()


def attribute(name: str, *, option: str) -> Attribute:
    """The attribute called ``name`` (any case); ConfigError naming the nearest valid one otherwise."""
    hit = _BY_KEY.get(_key(name))
    if hit is not None:
        return hit
    near = difflib.get_close_matches(_key(name), list(_BY_KEY), n=1, cutoff=0.6)
    hint = f"Did you mean '{_BY_KEY[near[0]].name}'? " if near else ""
    raise ConfigError(f"{option}: '{name.strip()}' is not a user attribute that can be filtered on.",
                      fix=f"{hint}Use one of: {NAMES}.")


@dataclass(frozen=True, slots=True)
class Condition:
    """``attribute eq value`` on users."""

    attribute: Attribute
    value: str | bool

    def odata(self) -> str:
        """The clause, percent-encoded for a query string."""
        v = str(self.value).lower() if isinstance(self.value, bool) else odata_literal(self.value)
        return f"{self.attribute.name}%20eq%20{v}"

    def __str__(self) -> str:
        v = str(self.value).lower() if isinstance(self.value, bool) else self.value
        return f"{self.attribute.name}={v}"


def condition(text: str, *, option: str) -> Condition:
    """``jobTitle=Engineer`` (``attribute=value``) -> Condition; ConfigError when unusable."""
    key, sep, value = text.partition("=")
    value = value.strip()
    if not sep or not key.strip() or not value:
        raise ConfigError(f"{option} takes ATTRIBUTE=VALUE (e.g. department=Sales), not '{text}'.",
                          fix=f"Attributes: {NAMES}.")
    return make(attribute(key, option=option), value, option=option)


def make(attr: Attribute, value: str, *, option: str) -> Condition:
    if not attr.boolean:
        return Condition(attr, value)
    b = {"true": True, "yes": True, "false": False, "no": False}.get(value.strip().lower())
    if b is None:
        raise ConfigError(f"{option}: {attr.name} takes true or false, not '{value}'.")
    return Condition(attr, b)


def users_query(conditions: Sequence[Condition]) -> tuple[str, dict[str, str]]:
    """(what to add to a ``/users?...`` query string, the headers to send with every page) for the ANDed
    conditions: ``&$filter=...`` and, where an attribute needs it, ``&$count=true`` + ConsistencyLevel."""
    if not conditions:
        return "", {}
    q = "&$filter=" + "%20and%20".join(c.odata() for c in conditions)
    if any(c.attribute.advanced for c in conditions):
        return q + "&$count=true", dict(ADVANCED_HEADERS)
    return q, {}


__all__ = ["ADVANCED_HEADERS", "ATTRIBUTES", "NAMES", "Attribute", "Condition", "attribute", "condition", "make",
           "users_query"]
