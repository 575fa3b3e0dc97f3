"""The one place msgraph-sdk is used: typed single calls (imported only when called).

Why it is here at all: a typed single read is what the SDK does soundly, and it proves that our credential
plumbing works with the SDK the admin may also be scripting with. Why it is not used for volume: the first
request loads ~1,800 modules (~0.8 s) and each typed call costs ~11 ms of CPU; its batch classes are
unreliable (cloud-facts). So bulk reads and every write go through ``tenant/graph.py``.

Settings that make it behave (cloud-facts, "msgraph-sdk against a local server"): ``base_url`` set WITHOUT a
trailing slash, explicit ``scopes``, ``allowed_hosts`` naming our host (else the token is silently not sent),
and ``RetryHandlerOption(max_retries=0)`` per request (its RetryHandler fails on fractional Retry-After; our
own retry loop is used instead).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from ..models import LicenseState, User
from .auth import TokenProvider
from .http import HttpClient, error_for_status, error_for_transport

SELECT = ["id", "userPrincipalName", "mail", "usageLocation", "accountEnabled", "userType",
          "assignedLicenses", "licenseAssignmentStates"]  # fmt: skip


class _AccessTokenCredential:
    """Adapts our cached TokenProvider to azure-core's TokenCredential (the SDK checks for AccessToken)."""

    def __init__(self, tokens: TokenProvider, scope: str) -> None:
        self._tokens = tokens
        self._scope = scope

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._tokens.token(self._scope), int(time.time()) + 300)


def graph_service_client(http: HttpClient) -> tuple[Any, Any]:
    """A GraphServiceClient bound to ``http``'s base URL, host and credential, and the transport to close.

    The httpx client is ours (HTTP/1.1, our timeouts) wrapped in the SDK's default middleware. msgraph-core's
    ``AsyncGraphTransport`` has no ``aclose``, so closing the client would leak its pooled connections:
    the caller closes the returned inner transport itself.
    """
    import httpx
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as sdk_options
    from msgraph_core import GraphClientFactory
    from msgraph_core.authentication import AzureIdentityAuthenticationProvider

    host = urlsplit(http.base_url).hostname or ""
    auth = AzureIdentityAuthenticationProvider(
        _AccessTokenCredential(http.tokens, http.scope), scopes=[http.scope], allowed_hosts=[host]
    )
    raw = httpx.AsyncClient(timeout=http.limits.request_timeout_seconds, http1=True, http2=False)
    inner = raw._transport
    client = GraphClientFactory.create_with_default_middleware(client=raw, options=sdk_options)
    adapter = GraphRequestAdapter(auth, client=client)
    adapter.base_url = http.base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter), inner


async def get_user_typed(http: HttpClient, key: str) -> User | None:
    """``GET /users/{id | UPN}`` through msgraph-sdk, as a ``models.User``; None when it does not exist."""
    import httpx
    from kiota_abstractions.api_error import APIError
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

    client, transport = graph_service_client(http)
    config = RequestConfiguration(
        query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=SELECT),
        options=[RetryHandlerOption(max_retries=0)],
    )
    http.stats.add(requests=1)
    try:
        u = await client.users.by_user_id(key.strip()).get(request_configuration=config)
    except APIError as e:
        status = e.response_status_code or 0
        if status == 404:
            return None
        err = getattr(e, "error", None)
        code, message = getattr(err, "code", None), getattr(err, "message", None)
        body = b'{"error":{"code":%s,"message":%s}}' % (_js(code), _js(message))
        raise error_for_status(status, e.response_headers or {}, body, what=f"GET /users/{key}") from e
    except httpx.HTTPError as e:
        raise error_for_transport(e, what=f"GET /users/{key}") from e
    finally:
        await transport.aclose()
    if u is None or not u.id:
        return None
    return _from_sdk(u)


def _js(v: object) -> bytes:
    import orjson

    return orjson.dumps(None if v is None else str(v))


def _from_sdk(u: Any) -> User:
    def low(x: object) -> str:
        return str(x).lower()

    def enum_text(x: object) -> str:
        return str(getattr(x, "value", x))

    states = tuple(
        LicenseState(
            sku_id=low(s.sku_id),
            disabled_plans=frozenset(low(p) for p in s.disabled_plans or ()),
            assigned_by_group=low(s.assigned_by_group) if s.assigned_by_group else None,
            state=str(s.state or "Active"),
            error=str(s.error or "None"),
        )
        for s in u.license_assignment_states or ()
    )
    return User(
        id=low(u.id),
        upn=u.user_principal_name or "",
        mail=u.mail or None,
        usage_location=u.usage_location or None,
        account_enabled=True if u.account_enabled is None else bool(u.account_enabled),
        user_type=enum_text(u.user_type) if u.user_type else "Member",
        assigned=tuple(low(a.sku_id) for a in u.assigned_licenses or () if a.sku_id),
        states=states,
    )


# ------------------------------------------------------------------------ who am I, what may I do (whoami, preflight)

#: Microsoft Graph's own application id (its service principal holds the appRoles: permission names by id).
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


async def read_identity(http: HttpClient, app_id: str | None) -> dict[str, Any]:
    """Through msgraph-sdk, typed: the organization, and (when ``app_id`` is known) the app's service principal
    and the Microsoft Graph permissions granted to it (appRoleAssignments, named through Graph's appRoles).

    ``{"organization": {...} | None, "service_principal": {...} | None, "roles": [names] | None, "notes": [...]}``;
    a read the identity may not make leaves its part None with a note (403s are answers here, not failures).
    """
    import httpx
    from kiota_abstractions.api_error import APIError
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_http.middleware.options import RetryHandlerOption
    from msgraph.generated.organization.organization_request_builder import OrganizationRequestBuilder
    from msgraph.generated.service_principals.service_principals_request_builder import (
        ServicePrincipalsRequestBuilder,
    )

    def conf(query: Any = None) -> Any:
        return RequestConfiguration(query_parameters=query, options=[RetryHandlerOption(max_retries=0)])

    out: dict[str, Any] = {"organization": None, "service_principal": None, "roles": None, "notes": []}
    client, transport = graph_service_client(http)

    async def call(what: str, coro: Any) -> Any:
        http.stats.add(requests=1)
        try:
            return await coro
        except APIError as e:
            status = e.response_status_code or 0
            if status in (401, 403, 404, 400):
                out["notes"].append(f"{what}: refused ({status})")
                return None
            raise error_for_status(status, e.response_headers or {}, b"", what=what) from e
        except httpx.HTTPError as e:
            raise error_for_transport(e, what=what) from e

    try:
        org_q = OrganizationRequestBuilder.OrganizationRequestBuilderGetQueryParameters(
            select=["id", "displayName", "verifiedDomains"])
        orgs = await call("GET /organization", client.organization.get(request_configuration=conf(org_q)))
        if orgs is not None and orgs.value:
            o = orgs.value[0]
            default = next((d.name for d in o.verified_domains or () if d.is_default), None)
            out["organization"] = {"id": str(o.id or ""), "displayName": o.display_name or "", "domain": default}
        if not app_id:
            return out
        q = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters
        sps = await call("GET /servicePrincipals", client.service_principals.get(
            request_configuration=conf(q(filter=f"appId eq '{app_id}'", select=["id", "appId", "displayName"]))))
        if sps is None or not sps.value:
            if sps is not None:
                out["notes"].append(f"no service principal with appId {app_id} in this tenant")
            return out
        sp = sps.value[0]
        out["service_principal"] = {"id": str(sp.id), "appId": sp.app_id, "displayName": sp.display_name}
        graph = await call("GET /servicePrincipals (Microsoft Graph)", client.service_principals.get(
            request_configuration=conf(q(filter=f"appId eq '{GRAPH_APP_ID}'", select=["id", "appRoles"]))))
        assignments = await call(
            "GET /servicePrincipals/{id}/appRoleAssignments",
            client.service_principals.by_service_principal_id(str(sp.id)).app_role_assignments.get(
                request_configuration=conf()),
        )  # fmt: skip
        if graph is None or not graph.value or assignments is None:
            return out
        g = graph.value[0]
        names = {str(r.id).lower(): r.value for r in g.app_roles or () if r.value}
        out["roles"] = sorted({names.get(str(a.app_role_id).lower(), str(a.app_role_id))
                               for a in assignments.value or () if str(a.resource_id).lower() == str(g.id).lower()})
        return out
    finally:
        await transport.aclose()


__all__ = ["get_user_typed", "graph_service_client", "read_identity"]
