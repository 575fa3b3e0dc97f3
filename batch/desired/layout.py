"""The desired-state layout: what ``export`` writes and what ``apply`` and ``reconcile`` read.

Users (one row per user and SKU the user holds, or is assigned through a group in error)::

    userPrincipalName | skuPartNumber | Disabled plans | Usage location | Department | Held | Groups

- ``Disabled plans``: service plan NAMES, ``;``-separated (of the direct assignment when there is one, else
  of the group's).
- ``Held``: ``direct``, ``group`` or ``direct, group``. A row held ``group`` only asks for no direct
  assignment: ``apply`` leaves it unchanged when a group gives the license, and ``reconcile`` expects the
  license through a group (drift there is fixed through membership, never by a direct change).
- ``Groups``: each group that assigns the SKU, with its state and error: ``Licensing - Microsoft 365 E3
  (Active)``, ``Licensing - Copilot (Error: CountViolation)``.

Add-ons (one row per environment and add-on)::

    Environment | Environment id | Add-on | Allocated

Every column other than the recognised ones is carried to the results, as for any sheet.
"""

from __future__ import annotations

from collections.abc import Sequence

USER_HEADERS = ("userPrincipalName", "skuPartNumber", "Disabled plans", "Usage location", "Department", "Held",
                "Groups")
ADDON_HEADERS = ("Environment", "Environment id", "Add-on", "Allocated")
DRIFT_COLUMN = "Drift"  # what a reconcile's results add to every sheet: each row's drift

HELD_DIRECT = "direct"
HELD_GROUP = "group"
HELD_BOTH = "direct, group"

#: Headers (normalised: lower case, letters only) that name the Held column.
_HELD_NAMES = frozenset({"held", "howheld", "heldthrough", "assignmentpath", "assignedvia"})


def _norm(header: str) -> str:
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def held_column(headers: Sequence[str]) -> int | None:
    """Index of the Held column, or None."""
    for i, h in enumerate(headers):
        if _norm(h) in _HELD_NAMES:
            return i
    return None


def held_via_group_only(cell: str) -> bool:
    """True when a Held cell says the license comes through a group and not directly."""
    text = cell.casefold()
    return "group" in text and "direct" not in text


def held_text(direct: bool, grouped: bool) -> str:
    if direct and grouped:
        return HELD_BOTH
    return HELD_GROUP if grouped else HELD_DIRECT


def group_text(name: str, state: str, error: str) -> str:
    if error and error != "None":
        return f"{name} ({state}: {error})"
    return f"{name} ({state})"


def group_names(cell: str) -> list[str]:
    """The group names of a Groups cell (state in brackets dropped)."""
    out = []
    for part in cell.split(";"):
        name = part.strip()
        if name.endswith(")") and " (" in name:
            name = name[: name.rfind(" (")]
        if name:
            out.append(name)
    return out
