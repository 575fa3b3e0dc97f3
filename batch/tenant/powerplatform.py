"""Power Platform licensing API (api.powerplatform.com): environments, add-on allocations, tenant capacity.

Same HTTP boundary as Graph (``tenant/http.py``), with its own token scope
``https://api.powerplatform.com/.default``. Throttling figures are not published: reads retry 429/5xx
honouring Retry-After like Graph reads.

Writes (``apatch_allocations``) set ONE environment's allocations, ABSOLUTE values, in ONE attempt: every HTTP
answer comes back as an ``AllocationReply`` (status, error code/message, Retry-After, request-id, the allocations
the service now holds), transport failures raise like ``Graph.post_batch`` (``TenantUnreachableError``), so the
apply engine owns retries and pacing exactly as for a one-item ``$batch``. Two endpoints (cloud-facts):

- ``2022-03-01-preview``: ``PATCH /licensing/environments/{id}/allocations`` ``{"currencyAllocations": [...]}``
- ``2024-10-01``: ``PATCH /licensing/allocationsByEnvironment`` ``{"environmentId", "currencyAllocations": [...]}``;
  each entry may carry its ``enforcementRules``. An entry sent without them keeps the rules it has (the sandbox's
  UNCONFIRMED choice, ``behaviour.PP_PATCH_KEEPS_OMITTED_RULES``: PATCH semantics, and the 2022 body and
  Microsoft's seed sample send only currencyType/allocated), so a plain allocation change sends only those two
  fields and costs one request; pass ``enforcement_rules`` (e.g. read by ``allocation_details``) to send them too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from ..config import Limits, Target
from ..errors import ConfigError, ServiceError
from ..models import CurrencyReport, Environment
from .auth import TokenCredentialLike, TokenProvider, make_credential, powerplatform_scope
from .http import HttpClient, Response, error_details, parse_retry_after, quote_segment

ENVIRONMENTS_API_VERSION = "2024-10-01"
#: The per-environment endpoint of the seed tutorials (the default for writes and reads).
ALLOCATIONS_API_VERSION = "2022-03-01-preview"
#: allocationsByEnvironment, allocationsV2 and currencyReports.
ALLOCATIONS_V2_API_VERSION = "2024-10-01"
REPORTS_API_VERSION = "2024-10-01"
ALLOCATION_API_VERSIONS = (ALLOCATIONS_API_VERSION, ALLOCATIONS_V2_API_VERSION)
RULE_TYPES = ("Alert", "PayGo", "TenantPool", "Deny")


@dataclass(frozen=True, slots=True)
class EnforcementRule:
    """What happens when an environment uses up a currency's allocation (2024-10-01 entries)."""

    rule_type: str  # Alert | PayGo | TenantPool | Deny
    enabled: bool


@dataclass(frozen=True, slots=True)
class CurrencyAllocation:
    """One currency entry of an environment (2024-10-01 shape; 2022 entries have only the first two)."""

    currency_type: str
    allocated: int
    auto_allocated: int = 0
    enforcement_rules: tuple[EnforcementRule, ...] = ()


@dataclass(frozen=True, slots=True)
class AllocationReply:
    """The answer to one allocation write, whatever its status (never raised).

    Shares ``status``, ``error_code``, ``error_message``, ``retry_after`` and ``request_id`` with ``graph.ItemReply``
    (here the codes are "" rather than None when absent), so settlement code can treat it as a one-item ``$batch``.
    ``allocations`` (currencyType -> allocated) is parsed from a 2xx body; None otherwise.
    """

    status: int
    error_code: str
    error_message: str
    retry_after: float | None
    request_id: str
    allocations: dict[str, int] | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PowerPlatform:
    """The Power Platform licensing API for one target: reads, and allocation writes for the apply engine."""

    def __init__(
        self,
        target: Target,
        limits: Limits | None = None,
        credential: TokenCredentialLike | None = None,
        *,
        tokens: TokenProvider | None = None,
    ) -> None:
        if not target.powerplatform_url:
            raise ConfigError("The target has no Power Platform URL.")
        self.tokens = tokens or TokenProvider(credential or make_credential(target))
        self.http = HttpClient(
            target.powerplatform_url, self.tokens, powerplatform_scope(target.powerplatform_url), limits
        )

    def iter_environments(self) -> Iterator[Environment]:
        url: str | None = f"/environmentmanagement/environments?api-version={ENVIRONMENTS_API_VERSION}"
        seen: set[str] = set()
        while url:
            body = self.http.get_json(url)
            for d in _value(body):
                yield _environment(d)
            nxt = body.get("@odata.nextLink") if isinstance(body, dict) else None
            if nxt and nxt in seen:
                raise ServiceError("The environments listing returned the same next page twice.")
            if nxt:
                seen.add(nxt)
            url = nxt

    def environments(self) -> dict[str, Environment]:
        return {e.id: e for e in self.iter_environments()}

    # ------------------------------------------------------------------------------- allocations: reads
    def allocations(self, environment_id: str, *, api_version: str = ALLOCATIONS_API_VERSION) -> dict[str, int]:
        """currencyType -> allocated units for one environment (raises ``ServiceError`` 404 for an unknown one).

        2022-03-01-preview reads the per-environment endpoint; 2024-10-01 reads allocationsByEnvironment/{id}."""
        return {c: a.allocated for c, a in self.allocation_details(environment_id, api_version=api_version).items()}

    def allocation_details(
        self, environment_id: str, *, api_version: str = ALLOCATIONS_V2_API_VERSION
    ) -> dict[str, CurrencyAllocation]:
        """currencyType -> entry (allocated, autoAllocated, enforcement rules where the version reports them)."""
        body = self.http.get_json(_read_url(environment_id, _version(api_version)))
        return _entries(body)

    def read_allocations(
        self, environment_ids: Iterable[str], *, api_version: str = ALLOCATIONS_API_VERSION
    ) -> dict[str, dict[str, int]]:
        """Read-back of several environments: id (as given) -> currencyType -> allocated.

        2024-10-01: one request for the whole tenant (allocationsByEnvironment), filtered to the ids asked for;
        2022-03-01-preview: one GET per environment. Environments the service does not know are left out."""
        ids = list(dict.fromkeys(environment_ids))
        if _version(api_version) == ALLOCATIONS_V2_API_VERSION:
            everything = {k.lower(): v for k, v in self.allocations_by_environment().items()}
            return {i: everything[i.lower()] for i in ids if i.lower() in everything}
        out: dict[str, dict[str, int]] = {}
        for env_id in ids:
            try:
                out[env_id] = self.allocations(env_id, api_version=api_version)
            except ServiceError as e:
                if e.status != 404:
                    raise
        return out

    async def aallocations(self, environment_id: str, *, api_version: str = ALLOCATIONS_API_VERSION) -> dict[str, int]:
        """``allocations`` on the async client, ONE attempt (for read-back inside the apply engine): HTTP errors
        raise like every read (``ThrottledError``, ``ServiceUnavailableError``, ``ServiceError``...)."""
        resp = await self.http.arequest("GET", _read_url(environment_id, _version(api_version)))
        return {c: a.allocated for c, a in _entries(resp.json()).items()}

    def allocations_by_environment(self) -> dict[str, dict[str, int]]:
        """environmentId -> currencyType -> allocated, for every environment in one request (2024-10-01)."""
        body = self.http.get_json(f"/licensing/allocationsByEnvironment?api-version={ALLOCATIONS_V2_API_VERSION}")
        out: dict[str, dict[str, int]] = {}
        for r in _value(body):
            env = str(r.get("environmentId") or "")
            if env:
                out[env] = {c: a.allocated for c, a in _entries(r).items()}
        return out

    def availability(self, environment_id: str, entitlement_ids: Iterable[str]) -> dict[str, int]:
        """allocationsV2/availability: entitlementId (= currencyType) -> quantity available to allocate."""
        ents = [str(e) for e in entitlement_ids]
        flt = f"environmentId eq {_odata(environment_id)}"
        if ents:
            flt += " and EntitlementId in (" + ", ".join(_odata(e) for e in ents) + ")"
        body = self.http.get_json(
            f"/licensing/allocationsV2/availability?api-version={ALLOCATIONS_V2_API_VERSION}"
            f"&$filter={quote(flt, safe='')}"
        )
        rows = body.get("entitlementAllocationsAvailable") if isinstance(body, dict) else None
        return {
            str(r["entitlementId"]): _as_int(r.get("availableQuantity"))
            for r in rows or ()
            if isinstance(r, dict) and r.get("entitlementId")
        }

    # ------------------------------------------------------------------------------ allocations: writes
    async def apatch_allocations(
        self,
        environment_id: str,
        allocations: Mapping[str, int],
        *,
        api_version: str = ALLOCATIONS_API_VERSION,
        enforcement_rules: Mapping[str, Sequence[EnforcementRule]] | None = None,
    ) -> AllocationReply:
        """Set ``allocations`` (currencyType -> ABSOLUTE units; 0 unassigns) of one environment, one attempt.

        Every HTTP answer is returned as an ``AllocationReply``; transport failures raise
        ``TenantUnreachableError`` (as ``Graph.post_batch`` does). ``enforcement_rules`` (2024-10-01 only):
        currencyType -> the rules to send inside that entry; entries without are sent as currencyType/allocated.
        Raises ``ValueError`` for arguments no version would accept (not a whole number >= 0, nothing to send).
        """
        method, url, content = build_allocation_patch(
            environment_id, allocations, api_version=api_version, enforcement_rules=enforcement_rules
        )
        resp = await self.http.arequest(method, url, content=content, check=False)
        return allocation_reply(resp)

    def patch_allocations(
        self,
        environment_id: str,
        allocations: Mapping[str, int],
        *,
        api_version: str = ALLOCATIONS_API_VERSION,
        enforcement_rules: Mapping[str, Sequence[EnforcementRule]] | None = None,
    ) -> AllocationReply:
        """Blocking ``apatch_allocations`` (runs its own event loop: not for use inside one)."""

        async def once() -> AllocationReply:
            try:
                return await self.apatch_allocations(
                    environment_id, allocations, api_version=api_version, enforcement_rules=enforcement_rules
                )
            finally:
                await self.http.aclose()

        return asyncio.run(once())

    def currency_reports(self) -> dict[str, CurrencyReport]:
        body = self.http.get_json(
            f"/licensing/tenantCapacity/currencyReports?includeAllocations=true&api-version={REPORTS_API_VERSION}"
        )
        out: dict[str, CurrencyReport] = {}
        for r in _value(body):
            consumed = r.get("consumed")
            units = consumed.get("unitsConsumed") if isinstance(consumed, dict) else consumed
            ct = str(r.get("currencyType") or "")
            if ct:
                out[ct] = CurrencyReport(
                    ct, float(r.get("purchased") or 0), float(r.get("allocated") or 0), float(units or 0)
                )
        return out

    def close(self) -> None:
        self.http.close()

    async def aclose(self) -> None:
        await self.http.aclose()

    def __enter__(self) -> PowerPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_allocation_patch(
    environment_id: str,
    allocations: Mapping[str, int],
    *,
    api_version: str = ALLOCATIONS_API_VERSION,
    enforcement_rules: Mapping[str, Sequence[EnforcementRule]] | None = None,
) -> tuple[str, str, bytes]:
    """(method, path with query, JSON body) of the allocation write for ``api_version``."""
    version = _version(api_version)
    if not environment_id:
        raise ValueError("An environment id is required.")
    if not allocations:
        raise ValueError("No allocation to send.")
    rules = enforcement_rules or {}
    if rules and version != ALLOCATIONS_V2_API_VERSION:
        raise ValueError(f"Enforcement rules need api-version {ALLOCATIONS_V2_API_VERSION}.")
    entries: list[dict[str, Any]] = []
    for cur, amount in allocations.items():
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(f"The allocation of {cur!r} must be a whole number >= 0, not {amount!r}.")
        entry: dict[str, Any] = {"currencyType": cur, "allocated": amount}
        if cur in rules:
            entry["enforcementRules"] = [{"ruleType": r.rule_type, "enabled": bool(r.enabled)} for r in rules[cur]]
        entries.append(entry)
    unknown = set(rules) - set(allocations)
    if unknown:
        raise ValueError(f"Enforcement rules for currencies not being sent: {sorted(unknown)}.")
    if version == ALLOCATIONS_V2_API_VERSION:
        body = {"environmentId": environment_id, "currencyAllocations": entries}
        return "PATCH", f"/licensing/allocationsByEnvironment?api-version={version}", orjson.dumps(body)
    path = f"/licensing/environments/{quote_segment(environment_id)}/allocations?api-version={version}"
    return "PATCH", path, orjson.dumps({"currencyAllocations": entries})


def allocation_reply(resp: Response) -> AllocationReply:
    """Any answer to an allocation write -> ``AllocationReply``."""
    code, message, inner_rid = error_details(resp.content) if resp.status >= 300 else (None, None, None)
    allocations: dict[str, int] | None = None
    if 200 <= resp.status < 300:
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("currencyAllocations"), list):
            allocations = {c: a.allocated for c, a in _entries(body).items()}
    return AllocationReply(
        status=resp.status,
        error_code=code or "",
        error_message=message or "",
        retry_after=parse_retry_after(resp.headers.get("retry-after")),
        request_id=resp.request_id or inner_rid or "",
        allocations=allocations,
    )


def _version(api_version: str) -> str:
    if api_version not in ALLOCATION_API_VERSIONS:
        raise ValueError(f"Unsupported allocations api-version {api_version!r}; use one of {ALLOCATION_API_VERSIONS}.")
    return api_version


def _read_url(environment_id: str, version: str) -> str:
    env = quote_segment(environment_id)
    if version == ALLOCATIONS_V2_API_VERSION:
        return f"/licensing/allocationsByEnvironment/{env}?api-version={version}"
    return f"/licensing/environments/{env}/allocations?api-version={version}"


def _as_int(value: Any) -> int:
    """Allocation figures are whole numbers; JSON may carry them as 500 or 500.0."""
    if isinstance(value, bool) or value is None:
        return 0
    try:
        return round(float(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def _entries(body: Any) -> dict[str, CurrencyAllocation]:
    rows = body.get("currencyAllocations") if isinstance(body, dict) else None
    out: dict[str, CurrencyAllocation] = {}
    for r in rows or ():
        if not isinstance(r, dict) or not r.get("currencyType"):
            continue
        rules = tuple(
            EnforcementRule(str(x.get("ruleType") or ""), bool(x.get("enabled")))
            for x in r.get("enforcementRules") or ()
            if isinstance(x, dict) and x.get("ruleType")
        )
        ct = str(r["currencyType"])
        out[ct] = CurrencyAllocation(ct, _as_int(r.get("allocated")), _as_int(r.get("autoAllocated")), rules)
    return out


def _odata(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _value(body: Any) -> list[dict[str, Any]]:
    """Power Platform answers either ``{"value": [...]}`` or a bare JSON array."""
    if isinstance(body, list):
        return [d for d in body if isinstance(d, dict)]
    if isinstance(body, dict):
        return [d for d in body.get("value") or () if isinstance(d, dict)]
    return []


def _environment(d: dict[str, Any]) -> Environment:
    raw = d.get("properties")
    props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return Environment(
        id=str(d.get("id") or d.get("name") or ""),
        display_name=str(d.get("displayName") or props.get("displayName") or ""),
        type=str(d.get("type") or props.get("environmentSku") or ""),
        state=str(d.get("state") or props.get("state") or ""),
        geo=d.get("geo") or props.get("azureRegion"),
        url=d.get("url"),
    )


__all__ = [
    "ALLOCATIONS_API_VERSION",
    "ALLOCATIONS_V2_API_VERSION",
    "ALLOCATION_API_VERSIONS",
    "AllocationReply",
    "CurrencyAllocation",
    "CurrencyReport",
    "EnforcementRule",
    "Environment",
    "PowerPlatform",
    "allocation_reply",
    "build_allocation_patch",
]
