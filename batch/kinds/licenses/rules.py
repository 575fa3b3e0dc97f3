"""Service-plan rules: which plans the tenant refuses together, which need another, which packs stack for nothing.

Pure data and logic, no I/O except the small remembered-refusals store at the end. Dated sources:

- Microsoft, "Product names and service plan identifiers for licensing" (entra-docs,
  ``docs/identity/users/licensing-service-plan-reference.md``, 29 Oct 2025), section "Service plans that cannot be
  assigned at the same time". Microsoft says it does not keep that table current.
- Exchange team blog, "Introducing Support for Concurrent Exchange Online License Assignments" (January 2023,
  message-center MC541151): any mix of Exchange-bearing packs is accepted on one user; the best plan wins and
  every pack still takes a seat. The same post says SharePoint Online and Teams have supported concurrent
  assignments "for some time"; the reference page itself calls SharePoint Plan 1 + Plan 2 "not recommended".

So: the families still listed without a later lifting are refused (:data:`REFUSED_FAMILIES`); Exchange and
SharePoint packs stack and are only worth a warning when a pack adds nothing (:func:`redundant` for a change,
:func:`redundant_holdings` for what a user holds, as reconcile reports it); Audio
Conferencing and Teams Phone need Teams or Skype for Business Online (:data:`DEPENDENCIES`). A refusal the tenant
returns anyway is the truth: it is remembered per tenant (:func:`remember_refusal`) and predicted next time.

Plans are named by ``servicePlanName`` (the families are published by name); a :class:`Pack` is one SKU in a
user's result with its ENABLED plans (the SKU's plans minus the disabled ones).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

#: The date of the newest source above: what these rules know.
RULES_AS_OF = date(2025, 10, 29)

#: Families of which a user may hold only ONE plan (two different plans of one family are refused).
REFUSED_FAMILIES: dict[str, frozenset[str]] = {
    "Dynamics CRM": frozenset({"CRMPLAN1", "CRMPLAN2", "CRMSTANDARD", "DYN365_ENTERPRISE_P1_IW",
                               "DYN365_ENTERPRISE_SALES", "DYN365_ENTERPRISE_TEAM_MEMBERS", "EMPLOYEE_SELF_SERVICE"}),
    "Rights management": frozenset({"RMS_S_ENTERPRISE", "RMS_S_ENTERPRISE_GOV"}),
    "Intune": frozenset({"INTUNE_A", "INTUNE_A_VL", "INTUNE_B"}),
    "Skype for Business": frozenset({"MCOIMP", "MCOSTANDARD_MIDMARKET", "MCOSTANDARD", "MCOLITE"}),
    "PSTN calling": frozenset({"MCOPSTN1", "MCOPSTN2", "MCOPSTN5"}),
    "Yammer": frozenset({"YAMMER_ENTERPRISE", "YAMMER_EDU", "YAMMER_MIDSIZE"}),
}  # fmt: skip

#: Teams or Skype for Business Online, one of which Audio Conferencing and Teams Phone need.
TEAMS_OR_SKYPE: tuple[str, ...] = ("TEAMS1", "MCOSTANDARD", "MCOIMP", "MCOSTANDARD_MIDMARKET", "MCOLITE")
#: plan -> plans of which at least one must be enabled in the user's result too.
DEPENDENCIES: dict[str, tuple[str, ...]] = {"MCOMEETADV": TEAMS_OR_SKYPE, "MCOEV": TEAMS_OR_SKYPE}
#: Friendly names for messages.
PLAN_LABELS: dict[str, str] = {"MCOMEETADV": "Audio Conferencing", "MCOEV": "Teams Phone", "TEAMS1": "Teams",
                               "MCOSTANDARD": "Skype for Business Online (Plan 2)",
                               "MCOIMP": "Skype for Business Online (Plan 1)"}  # fmt: skip

#: Plans of one service in tiers, lowest first: a plan is covered by the same plan or a higher tier from another
#: pack (EXCHANGE_S_FOUNDATION, the Exchange plumbing many add-ons carry, is below every mailbox plan). Exchange and
#: SharePoint are the stacking families of the sources; the others are the same service in
#: the E1/E3/E5 suites (Forms, Stream, Whiteboard, Power Apps and Power Automate for Office 365, ...).
TIERS: tuple[tuple[frozenset[str], ...], ...] = (
    (frozenset({"EXCHANGE_S_FOUNDATION"}), frozenset({"EXCHANGE_S_DESKLESS", "EXCHANGE_S_ESSENTIALS"}),
     frozenset({"EXCHANGE_S_STANDARD", "EXCHANGE_B_STANDARD", "EXCHANGE_S_STANDARD_MIDMARKET"}),
     frozenset({"EXCHANGE_S_ENTERPRISE"})),
    (frozenset({"SHAREPOINTDESKLESS", "SHAREPOINTLITE"}),
     frozenset({"SHAREPOINTSTANDARD", "SHAREPOINTSTANDARD_EDU", "SHAREPOINTSTANDARD_YAMMERSHADOW",
                "SHAREPOINTENTERPRISE_MIDMARKET", "ONEDRIVEENTERPRISE"}),
     frozenset({"SHAREPOINTENTERPRISE", "SHAREPOINTENTERPRISE_EDU", "SHAREPOINT_S_DEVELOPER"})),
    (frozenset({"FORMS_PLAN_K"}), frozenset({"FORMS_PLAN_E1"}), frozenset({"FORMS_PLAN_E3"}),
     frozenset({"FORMS_PLAN_E5"})),
    (frozenset({"STREAM_O365_K"}), frozenset({"STREAM_O365_E1"}), frozenset({"STREAM_O365_E3"}),
     frozenset({"STREAM_O365_E5"})),
    (frozenset({"WHITEBOARD_FIRSTLINE1"}), frozenset({"WHITEBOARD_PLAN1"}), frozenset({"WHITEBOARD_PLAN2"}),
     frozenset({"WHITEBOARD_PLAN3"})),
    (frozenset({"POWERAPPS_O365_S1"}), frozenset({"POWERAPPS_O365_P1"}), frozenset({"POWERAPPS_O365_P2"}),
     frozenset({"POWERAPPS_O365_P3"})),
    (frozenset({"FLOW_O365_S1"}), frozenset({"FLOW_O365_P1"}), frozenset({"FLOW_O365_P2"}),
     frozenset({"FLOW_O365_P3"})),
    (frozenset({"ADALLOM_S_DISCOVERY"}), frozenset({"ADALLOM_S_STANDALONE"})),
    (frozenset({"ONEDRIVE_BASIC", "ONEDRIVE_BASIC_P2"}), frozenset({"ONEDRIVESTANDARD"})),
)  # fmt: skip
_TIER: dict[str, tuple[int, int]] = {
    p: (i, rank) for i, chain in enumerate(TIERS) for rank, ps in enumerate(chain) for p in ps
}


@dataclass(frozen=True, slots=True)
class Pack:
    """One SKU in a user's result (after the change)."""

    sku_id: str
    name: str  # skuPartNumber, for messages
    plans: tuple[str, ...]  # ENABLED servicePlanNames, in the SKU's order
    added: bool = False  # the change gives the user this SKU (they did not hold it before)


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two plans of one refused family in the result: the tenant refuses the change."""

    family: str
    held: Pack  # the pack the first plan comes from (held before, or listed first)
    held_plan: str
    other: Pack
    other_plan: str
    fix: str

    @property
    def audit_text(self) -> str:
        return f"License assignment failed because service plans {self.held_plan}, {self.other_plan} are mutually " \
               "exclusive."  # fmt: skip


@dataclass(frozen=True, slots=True)
class MissingDependency:
    pack: Pack
    plan: str
    needs: tuple[str, ...]
    fix: str

    @property
    def audit_text(self) -> str:
        return (f"License assignment failed because service plan {self.plan} depends on the service plan(s) "
                f"{', '.join(self.needs)}.")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Redundancy:
    """A pack that adds no enabled plan the user does not already get from other packs: it costs a seat."""

    pack: Pack
    covered_by: tuple[Pack, ...]
    fix: str


def plan_label(plan: str) -> str:
    lab = PLAN_LABELS.get(plan)
    return f"{lab} ({plan})" if lab else plan


# ----------------------------------------------------------------------------------------- conflicts


def conflicts(result: Sequence[Pack]) -> list[Conflict]:
    """Every refused-family pair in ``result`` (one per family: the first two different plans met), with the fix.
    The same plan from two packs stacks (INTUNE_A from Microsoft 365 E3 and EMS E3 is fine)."""
    ordered = sorted(result, key=lambda p: p.added)  # packs held before come first: they are 'held'
    out: list[Conflict] = []
    for family, members in REFUSED_FAMILIES.items():
        seen: list[tuple[Pack, str]] = []
        for pack in ordered:
            for plan in pack.plans:
                if plan in members and all(plan != q for _, q in seen):
                    seen.append((pack, plan))
        if len(seen) < 2:
            continue
        (a, pa), (b, pb) = seen[0], seen[1]
        if a.sku_id == b.sku_id:
            fix = f"Disable {pb} or {pa} in {a.name} (disabled plans column)."
        elif b.added and not a.added:
            fix = (f"Disable {pb} in {b.name} (disabled plans column), or replace {a.name} with {b.name} "
                   "instead of adding it.")  # fmt: skip
        else:
            fix = f"Disable {pb} in {b.name} or {pa} in {a.name} (disabled plans column), or give only one of them."
        out.append(Conflict(family, a, pa, b, pb, fix))
    return out


# -------------------------------------------------------------------------------------- dependencies


def missing_dependencies(result: Sequence[Pack]) -> list[MissingDependency]:
    """Plans whose required plans are all missing from ``result`` (Audio Conferencing or Teams Phone without Teams
    or Skype for Business Online)."""
    enabled = {p for pack in result for p in pack.plans}
    out: list[MissingDependency] = []
    for pack in result:
        for plan in pack.plans:
            needs = DEPENDENCIES.get(plan)
            if needs is None or any(n in enabled for n in needs):
                continue
            fix = (f"Give the user a license with Teams (TEAMS1) or Skype for Business Online in the same sheet "
                   f"(e.g. Microsoft 365 E3), or drop {pack.name}.")  # fmt: skip
            out.append(MissingDependency(pack, plan, needs, fix))
    return out


# ----------------------------------------------------------------------------------------- redundant


def _covers(plan: str, others: Iterable[Pack]) -> bool:
    tier = _TIER.get(plan)
    for o in others:
        for q in o.plans:
            if q == plan:
                return True
            t = _TIER.get(q)
            if tier is not None and t is not None and t[0] == tier[0] and t[1] >= tier[1]:
                return True
    return False


def _fewest_covering(pack: Pack, others: Sequence[Pack]) -> tuple[Pack, ...]:
    """The packs that cover ``pack``'s plans, greedily fewest (the one covering most first), in result order."""
    todo, chosen = list(pack.plans), []
    while todo and others:
        best = max(others, key=lambda o: sum(_covers(p, [o]) for p in todo))
        left = [p for p in todo if not _covers(p, [best])]
        if len(left) == len(todo):
            break  # nothing covers the rest (callers only ask for covered packs)
        chosen.append(best)
        todo = left
    return tuple(o for o in others if o in chosen)


def redundant(result: Sequence[Pack]) -> list[Redundancy]:
    """Packs that add no enabled plan the user does not already get from the other packs (Exchange and SharePoint
    plans of a lower tier count as had: those families stack), where the change is involved: the pack is being
    added, or a pack that covers it is. Of two packs that cover each other, the one being added is named."""
    flagged: list[Redundancy] = []
    gone: set[str] = set()
    for pack in sorted(result, key=lambda p: not p.added):  # packs being added are judged first
        others = [o for o in result if o.sku_id != pack.sku_id and o.sku_id not in gone]
        if not others or not all(_covers(p, others) for p in pack.plans):
            continue
        covering = _fewest_covering(pack, others)
        if not pack.added and not any(o.added for o in covering):
            continue  # nothing in this change makes it redundant
        gone.add(pack.sku_id)
        if pack.added:
            fix = f"Drop this license from the row if it is not needed: it takes one {pack.name} seat for nothing."
        else:
            fix = f"Remove {pack.name} from the user in the same sheet (a remove row) to free its seat, " \
                  "unless it is kept on purpose."  # fmt: skip
        flagged.append(Redundancy(pack, covering, fix))
    return flagged


def completeness(pack: Pack) -> tuple[int, str, str]:
    """How much a pack's seat buys, for ordering: enabled plans, then part number and skuId (a stable tie-break)."""
    return len(pack.plans), pack.name, pack.sku_id


def redundant_holdings(held: Sequence[Pack]) -> list[Redundancy]:
    """The packs of what a user holds NOW (no change involved: every pack counts, ``added`` is ignored) that add
    no enabled plan the others do not give, by the same coverage as :func:`redundant` (tiers included).

    Of packs that cover each other only one is named: packs are judged least complete first (fewest enabled
    plans, then part number, then skuId; :func:`completeness`) and a pack named is out of the judgement of the
    rest. Microsoft publishes no prices here, so "less complete" stands in for "cheaper": the seat named to free
    is the one that buys fewer enabled plans (E3 next to E5, EMS E3 next to Microsoft 365 E3); two packs with the
    same plans name the one whose part number sorts first, whatever order Graph lists them in. ``covered_by``
    names the fewest packs the user keeps that give what the named one gives (empty for a pack whose every plan
    is disabled)."""
    order = sorted(held, key=completeness)
    gone: set[str] = set()
    for pack in order:
        others = [o for o in held if o.sku_id != pack.sku_id and o.sku_id not in gone]
        if others and all(_covers(p, others) for p in pack.plans):
            gone.add(pack.sku_id)
    kept = [o for o in held if o.sku_id not in gone]  # never empty: the last pack judged has no others left
    return [Redundancy(pack, _fewest_covering(pack, kept),
                       f"Remove {pack.name} from the user to free its seat, unless it is kept on purpose.")
            for pack in order if pack.sku_id in gone]  # fmt: skip


# ------------------------------------------------------------------------------------ remembered refusals

#: The file under the user cache dir (``Settings.cache_dir``): ``{tenantId: [refusal, ...]}``.
REMEMBERED_FILE = "plan-refusals.json"
Combination = tuple[tuple[str, tuple[str, ...]], ...]  # ((skuId, sorted disabled plan ids), ...) sorted by skuId


def combination(licenses: Iterable[tuple[str, Iterable[str]]]) -> Combination:
    """A user's licenses as a comparable value: sorted (skuId, sorted disabled plan ids)."""
    return tuple(sorted((s.lower(), tuple(sorted(d.lower() for d in dis))) for s, dis in licenses))


def refusal_kind(status: int | None, code: str, message: str) -> str | None:
    """'conflict', 'dependency' or None: is this answer the tenant refusing a plan combination?

    UNCONFIRMED (cloud-facts): the status and code of a direct assignLicense refused for mutually exclusive or
    dependent plans are not documented; Graph gives the audit texts, and group licensing reports
    MutuallyExclusiveViolation / DependencyViolation. So: status 400 and either of those codes, or a
    Request_BadRequest whose text is the audit text. Everything else (seats, usage location, ...) is not a plan
    refusal. The one place to change when Microsoft documents the code.
    """
    if status != 400:
        return None
    if code == "MutuallyExclusiveViolation":
        return "conflict"
    if code == "DependencyViolation":
        return "dependency"
    if code not in ("Request_BadRequest", "BadRequest", ""):
        return None
    text = message.lower()
    if "mutually exclusive" in text:
        return "conflict"
    if "depends on the service plan" in text:
        return "dependency"
    return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A plan combination the tenant refused during apply."""

    kind: str  # "conflict" | "dependency"
    result: Combination  # what the user would have held (skuId, disabled plans)
    add: Combination  # what the operation tried to add
    remove: tuple[str, ...]  # ... and to remove
    status: int
    code: str
    message: str
    user: str  # who it was refused for (UPN), for messages
    when: str  # ISO date-time

    def matches(self, result: Combination) -> bool:
        """A conflict is refused whatever else the user holds (the remembered licenses are all in the result);
        a dependency only for the very same licenses (another license may bring what was missing)."""
        if self.kind == "conflict":
            return set(self.result) <= set(result)
        return self.result == result


def _store_path(cache_dir: str | os.PathLike[str]) -> Path:
    return Path(cache_dir) / REMEMBERED_FILE


def _read_store(path: Path) -> dict[str, list[dict[str, object]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _as_combination(raw: object) -> Combination:
    if not isinstance(raw, list) or not all(isinstance(x, list) and len(x) == 2 and isinstance(x[1], list)
                                            for x in raw):  # fmt: skip
        raise ValueError("not a list of [skuId, [disabled plans]]")
    return combination((str(s), [str(d) for d in dis]) for s, dis in raw)


def load_remembered(cache_dir: str | os.PathLike[str], tenant_id: str) -> list[Refusal]:
    """The refusals remembered for ``tenant_id`` (none when the store is missing or unreadable)."""
    out: list[Refusal] = []
    for e in _read_store(_store_path(cache_dir)).get(tenant_id.lower(), []):
        try:
            remove, status = e["remove"], e["status"]
            if not isinstance(remove, list) or not isinstance(status, int):
                raise ValueError("bad entry")
            out.append(Refusal(
                kind=str(e["kind"]), result=_as_combination(e["result"]), add=_as_combination(e["add"]),
                remove=tuple(str(r) for r in remove), status=status, code=str(e["code"]),
                message=str(e["message"]), user=str(e["user"]), when=str(e["when"]),
            ))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            continue  # a damaged entry is forgotten, never fatal
    return out


def remember_refusal(
    cache_dir: str | os.PathLike[str],
    tenant_id: str,
    *,
    result: Iterable[tuple[str, Iterable[str]]],
    add: Iterable[tuple[str, Iterable[str]]],
    remove: Iterable[str],
    status: int | None,
    code: str,
    message: str,
    user: str = "",
    when: datetime | None = None,
) -> Refusal | None:
    """Remember that the tenant refused this operation, if it is a plan refusal (:func:`refusal_kind`); returns
    what was stored, or None (not a plan refusal: nothing stored). ``result`` is what the user would have held.
    The same combination is stored once. Written atomically; a store that cannot be written is skipped."""
    kind = refusal_kind(status, code, message)
    if kind is None or status is None:
        return None
    ref = Refusal(kind=kind, result=combination(result), add=combination(add),
                  remove=tuple(sorted(r.lower() for r in remove)), status=status, code=code, message=message,
                  user=user, when=(when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
    path = _store_path(cache_dir)
    data = _read_store(path)
    entries = data.setdefault(tenant_id.lower(), [])
    if any(e.get("kind") == kind and e.get("result") == _jsonable(ref.result) for e in entries):
        return ref
    entries.append({"kind": kind, "result": _jsonable(ref.result), "add": _jsonable(ref.add),
                    "remove": list(ref.remove), "status": status, "code": code, "message": message,
                    "user": user, "when": ref.when})  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".plan-refusals-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        return ref
    return ref


def _jsonable(c: Combination) -> list[list[object]]:
    return [[s, list(d)] for s, d in c]


def refused_before(remembered: Sequence[Refusal], result: Combination) -> Refusal | None:
    """The first remembered refusal that this result would meet again, if any."""
    for r in remembered:
        if r.matches(result):
            return r
    return None


__all__ = [
    "DEPENDENCIES",
    "REFUSED_FAMILIES",
    "RULES_AS_OF",
    "TIERS",
    "Conflict",
    "MissingDependency",
    "Pack",
    "Redundancy",
    "Refusal",
    "combination",
    "conflicts",
    "load_remembered",
    "missing_dependencies",
    "plan_label",
    "redundant",
    "refusal_kind",
    "refused_before",
    "remember_refusal",
]  # fmt: skip
