"""Streaming reads for export and reconcile: every user (of the scope) a page at a time, groups by name, a
group's members at any depth of nesting (``kinds.groups.read.group_users``, which rule rows' ``group=`` reads too).
Plain JSON (orjson), never one request per user.

Every listing goes through ``Graph.pages``: the next page is asked for (its link is at the head of the body)
while this one is parsed and written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..kinds.groups.read import group_member_ids as group_member_ids  # reconcile and export read it from here
from ..kinds.groups.read import one_group, pages
from ..tenant.graph import MAX_PAGE_SIZE, USER_SELECT, Graph
from ..tenant.user_filters import NAMES, Condition, attribute, make, users_query

#: The user properties export and reconcile read (the snapshot's, and department).
SELECT = USER_SELECT + ",department"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which users a reconcile holds to the sheet.

    - ``users`` (the default): the users the sheet names;
    - ``all``: every user of the tenant;
    - ``group=NAME``: the members of the group called NAME at any depth of nesting (a department roster that
      contains other groups reaches their users too);
    - ``ATTRIBUTE=VALUE``: the users whose attribute equals the value (Graph's ``eq``, which ignores case):
      department, jobTitle, companyName, officeLocation, country, city, state, usageLocation, employeeType,
      userType or accountEnabled (true/false). ``kind`` is then Graph's attribute name (``department``).
    """

    kind: str = "users"  # users | all | group | an attribute's Graph name
    value: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        t = (text or "users").strip()
        if t in ("users", "all"):
            return cls(t)
        key, sep, value = t.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--scope must be users, all, group=NAME or ATTRIBUTE=VALUE, not '{text}'.",
                              fix=f"Attributes: {NAMES} (e.g. --scope department=Sales).")
        if key.strip().lower() == "group":
            return cls("group", value.strip())
        cond = make(attribute(key, option="--scope"), value.strip(), option="--scope")
        return cls(cond.attribute.name, str(cond).partition("=")[2])

    @property
    def condition(self) -> Condition | None:
        """The attribute condition of an ``ATTRIBUTE=VALUE`` scope (None for users, all and group)."""
        if self.kind in ("users", "all", "group"):
            return None
        return make(attribute(self.kind, option="--scope"), self.value, option="--scope")

    def __str__(self) -> str:
        return self.kind if not self.value else f"{self.kind}={self.value}"


def find_group(graph: Graph, name: str) -> tuple[str, str]:
    """(id, displayName) of the group ``name`` names (ConfigError when none or several: ``one_group``)."""
    g = one_group(graph, name)
    return g.id, g.display_name


def iter_user_pages(graph: Graph, *, where: Sequence[Condition] = (),
                    members: set[str] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every user (matching every condition of ``where``; among ``members``) as raw Graph JSON, a page at a time."""
    flt, headers = users_query(where)
    url = f"/users?$select={SELECT}&$top={MAX_PAGE_SIZE}{flt}"
    for page in pages(graph, url, headers or None):
        if members is not None:
            page = [u for u in page if str(u.get("id", "")).lower() in members]
        yield page


def all_group_names(graph: Graph) -> dict[str, str]:
    """id -> displayName of every group (a tenant has far fewer groups than users)."""
    out: dict[str, str] = {}
    for page in pages(graph, f"/groups?$select=id,displayName&$top={MAX_PAGE_SIZE}"):
        out.update((str(g["id"]).lower(), str(g.get("displayName") or g["id"])) for g in page if g.get("id"))
    return out
