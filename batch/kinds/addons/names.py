"""Power Platform add-on names: the API's ``currencyType`` values and the names administrators write.

The currency types are the ones the licensing API uses (cloud-facts, "Power Platform licensing API").
Friendly names are those of Microsoft's admin center and licensing guide, plus the short forms people type
("app passes", "Copilot credits"). Matching ignores case, punctuation, spaces, accents and a plural "s":
"AI Builder credits", "ai-builder credit" and "AIBuilderCredits" are one name.

To accept another name, add it to :data:`ADDONS` (most specific first); :func:`resolve_addon` and the
templates' drop-down lists read this table and nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AddonType:
    currency_type: str  # the API's currencyType
    name: str  # the name shown to people
    aliases: tuple[str, ...] = ()
    unit: str = "units"


#: Every currencyType the licensing API knows, with the names administrators use for it.
ADDONS: tuple[AddonType, ...] = (
    AddonType("AI", "AI Builder credits", ("AI Builder capacity", "AI Builder", "AI credits", "AI Builder add-on"),
              "credits"),
    AddonType("AppPass", "Power Apps per app", ("Power Apps per app passes", "Power Apps per app plan", "app passes",
                                                 "per app passes", "per app pass", "app pass", "PowerApps per app"),
              "passes"),
    AddonType("AppPassForTeams", "Power Apps per app for Teams", ("app passes for Teams", "Teams app passes"),
              "passes"),
    AddonType("Invoice", "Invoice processing", ("Invoice capacity",)),
    AddonType("MCSSessions", "Copilot Studio sessions", ("Power Virtual Agents sessions", "MCS sessions"), "sessions"),
    AddonType("MCSMessages", "Copilot credits", ("Copilot Studio messages", "Copilot Studio credits", "MCS messages",
                                                  "Copilot messages"), "credits"),
    AddonType("PAHostedRPA", "Power Automate hosted RPA", ("hosted RPA", "hosted RPA add-on", "hosted process",
                                                           "Power Automate hosted process"), "bots"),
    AddonType("PAUnattendedRPA", "Power Automate unattended RPA", ("unattended RPA", "unattended RPA add-on",
                                                                   "Power Automate unattended RPA add-on"), "bots"),
    AddonType("PerFlowPlan", "Power Automate per flow", ("per flow plan", "flow per business process",
                                                         "Power Automate per flow plan"), "flows"),
    AddonType("PortalAddOns", "Power Pages add-ons", ("Portal add-ons", "Power Apps portals add-ons")),
    AddonType("PortalLogins", "Portal logins", ("Power Apps portals logins",), "logins"),
    AddonType("PortalViews", "Portal page views", ("Power Apps portals page views", "portal views"), "views"),
    AddonType("PowerPagesAuthenticated", "Power Pages authenticated users",
              ("Power Pages authenticated", "authenticated users"), "users"),
    AddonType("PowerPagesAnonymous", "Power Pages anonymous users", ("Power Pages anonymous", "anonymous users"),
              "users"),
    AddonType("PowerAutomatePerProcess", "Power Automate per process",
              ("per process", "Power Automate Process", "Power Automate process plan", "process licenses"),
              "processes"),
    AddonType("ProcessMiningDataStorage", "Process mining data storage", ("process mining storage",), "GB"),
    AddonType("SCMessages", "SC messages", ()),
    AddonType("VAConversations", "Power Virtual Agents conversations",
              ("virtual agent conversations", "PVA conversations"), "conversations"),
)

BY_CURRENCY: dict[str, AddonType] = {a.currency_type: a for a in ADDONS}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def _key(text: str) -> str:
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).casefold()
    t = t.replace("™", "").replace("®", "")
    words = [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _NON_ALNUM.split(t) if w]
    return "".join(words)


_LOOKUP: dict[str, str] = {}
for _a in ADDONS:
    for _n in (_a.currency_type, _a.name, *_a.aliases):
        _LOOKUP.setdefault(_key(_n), _a.currency_type)


def resolve_addon(text: str) -> AddonType | None:
    """The add-on a cell or header names (currencyType or a known name), or None."""
    k = _key(text)
    hit = _LOOKUP.get(k) if k else None
    return BY_CURRENCY[hit] if hit else None


def addon_label(currency_type: str) -> str:
    """``"AI Builder credits (AI)"`` for people; the bare type when it is not one we know."""
    a = BY_CURRENCY.get(currency_type)
    return f"{a.name} ({currency_type})" if a else currency_type


def nearest_addons(text: str, n: int = 3) -> list[str]:
    """Known names closest to ``text`` (for "did you mean")."""
    import difflib

    names = [a.name for a in ADDONS] + [a.currency_type for a in ADDONS]
    return difflib.get_close_matches(text, names, n=n, cutoff=0.5)


__all__ = ["ADDONS", "BY_CURRENCY", "AddonType", "addon_label", "nearest_addons", "resolve_addon"]
