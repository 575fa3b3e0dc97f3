"""Power Platform licensing API (api.powerplatform.com): environments, add-on allocations, tenant capacity.

Reads only for now (the apply side for allocations is a PATCH with an ABSOLUTE value; see cloud-facts).
Same HTTP boundary as Graph (``tenant/http.py``), with its own token scope
``https://api.powerplatform.com/.default``. Throttling figures are not published: reads retry 429/5xx
honouring Retry-After like Graph reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..config import Limits, Target
from ..errors import ConfigError, ServiceError
from ..models import CurrencyReport, Environment
from .auth import TokenCredentialLike, TokenProvider, make_credential, powerplatform_scope
from .http import HttpClient, quote_segment

ENVIRONMENTS_API_VERSION = "2024-10-01"
ALLOCATIONS_API_VERSION = "2022-03-01-preview"
REPORTS_API_VERSION = "2024-10-01"


class PowerPlatform:
    """Reads from the Power Platform licensing API for one target."""

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

    def allocations(self, environment_id: str) -> dict[str, float]:
        """currencyType -> allocated units for one environment."""
        body = self.http.get_json(
            f"/licensing/environments/{quote_segment(environment_id)}/allocations?api-version={ALLOCATIONS_API_VERSION}"
        )
        rows = body.get("currencyAllocations") if isinstance(body, dict) else None
        return {str(r.get("currencyType")): float(r.get("allocated") or 0) for r in rows or () if r.get("currencyType")}

    def allocations_by_environment(self) -> dict[str, dict[str, float]]:
        """environmentId -> currencyType -> allocated, for every environment in one request (2024-10-01)."""
        body = self.http.get_json(f"/licensing/allocationsByEnvironment?api-version={REPORTS_API_VERSION}")
        out: dict[str, dict[str, float]] = {}
        for r in _value(body):
            env = str(r.get("environmentId") or "")
            if env:
                out[env] = {
                    str(a.get("currencyType")): float(a.get("allocated") or 0)
                    for a in r.get("currencyAllocations") or ()
                    if isinstance(a, dict) and a.get("currencyType")
                }
        return out

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

    def __enter__(self) -> PowerPlatform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


__all__ = ["CurrencyReport", "Environment", "PowerPlatform"]
