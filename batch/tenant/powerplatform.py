"""Power Platform licensing API (api.powerplatform.com): environments, add-on allocations, tenant capacity.

Same HTTP boundary as Graph (``tenant/http.py``), with its own token scope
``https://api.powerplatform.com/.default``. Throttling figures are not published: reads retry 429/5xx
honouring Retry-After like Graph reads.

Writes are not made here: the apply engine sends each journalled allocation operation (built by
``kinds/addons/plan.allocation_operation``, the one place that knows both endpoints' urls and body) through
``Tenant.send_powerplatform``. Reads here cover both endpoints (cloud-facts):

- ``2022-03-01-preview``: ``/licensing/environments/{id}/allocations``
- ``2024-10-01``: ``/licensing/allocationsByEnvironment`` (each entry carries its ``enforcementRules``,
  read by ``allocation_details``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..config import Limits, Target
from ..errors import ConfigError, ServiceError
from ..models import CurrencyReport, Environment
from .auth import TokenCredentialLike, TokenProvider, make_credential, powerplatform_scope
from .http import HttpClient, quote_segment

ENVIRONMENTS_API_VERSION = "2024-10-01"
#: The per-environment endpoint of the seed tutorials (the default for writes and reads).
ALLOCATIONS_API_VERSION = "2022-03-01-preview"
#: allocationsByEnvironment, allocationsV2 and currencyReports.
ALLOCATIONS_V2_API_VERSION = "2024-10-01"
REPORTS_API_VERSION = "2024-10-01"
ALLOCATION_API_VERSIONS = (ALLOCATIONS_API_VERSION, ALLOCATIONS_V2_API_VERSION)


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


class PowerPlatform:
    """The Power Platform licensing API for one target: reads (writes go through ``Tenant.send_powerplatform``)."""

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
    "CurrencyAllocation",
    "CurrencyReport",
    "EnforcementRule",
    "Environment",
    "PowerPlatform",
]
