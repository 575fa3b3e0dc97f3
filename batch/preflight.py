"""Who am I, what may I do: ``license-batch whoami``, and the permission preflight before ``apply``.

One cheap check per API before anything changes, so a missing permission fails at once (exit 3, naming the
permission and how to grant it) instead of failing 10,000 rows one by one:

* Microsoft Graph: the permissions come from the access token itself when it is a JWT (the ``roles`` claim of an
  app-only token, the ``scp`` claim of a delegated one; decoded without verifying: it is our own token, and the
  service verifies it anyway), else through msgraph-sdk typed calls (the app's service principal and its
  appRoleAssignments, named through Microsoft Graph's appRoles; ``tenant/sdk.py``).
* Power Platform: a token for its scope, then one ``GET /environmentmanagement/environments`` (``$top=1``): a
  service principal that is not registered as a management app is refused there.

What a run needs follows from its planned operations: every run reads users (User.Read.All); assignLicense needs
LicenseAssignment.ReadWrite.All; a usage-location PATCH User.ReadWrite.All; group members
GroupMember.ReadWrite.All; an add-on allocation the Power Platform management-app registration.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import SANDBOX_DEV_TOKEN, Target
from .errors import AuthenticationError, PermissionDeniedError, TenantError

#: Well-known app ids of the sandbox's published tokens (README, "Tokens"): not secrets.
SANDBOX_TOKEN_APPS = {
    SANDBOX_DEV_TOKEN: "5a4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c",
    "sandbox-readonly-token": "6b5e4d3c-2b1a-4098-8e7d-5c4b3a2f1e0d",
}


@dataclass(frozen=True, slots=True)
class Need:
    key: str
    permission: str  # least privileged
    satisfied_by: frozenset[str]  # it, or a higher one
    what: str


NEEDS: dict[str, Need] = {
    n.key: n
    for n in (
        Need("read-users", "User.Read.All",
             frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}),
             "read the users the sheet names"),
        Need("read-licenses", "LicenseAssignment.Read.All",
             frozenset({"LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All", "Organization.Read.All",
                        "Directory.Read.All", "Directory.ReadWrite.All"}), "read the tenant's licenses"),
        Need("read-groups", "Group.Read.All",
             frozenset({"Group.Read.All", "Group.ReadWrite.All", "GroupMember.Read.All", "GroupMember.ReadWrite.All",
                        "Directory.Read.All", "Directory.ReadWrite.All"}), "read licensing groups"),
        Need("assign-licenses", "LicenseAssignment.ReadWrite.All",
             frozenset({"LicenseAssignment.ReadWrite.All", "Directory.ReadWrite.All"}), "assign and remove licenses"),
        Need("usage-location", "User.ReadWrite.All", frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"}),
             "set usage locations"),
        Need("group-members", "GroupMember.ReadWrite.All",
             frozenset({"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}),
             "add and remove group members"),
    )
}  # fmt: skip
POWERPLATFORM = "powerplatform-allocations"


@dataclass
class Identity:
    target: Target
    tenant_id: str | None = None
    tenant_name: str | None = None
    domain: str | None = None
    kind: str = "unknown"  # application | user | unknown
    name: str | None = None
    app_id: str | None = None
    permissions: frozenset[str] | None = None  # None: could not be read
    source: str = "not available"
    signed_in_with: str = ""
    powerplatform: str = "not checked"  # "ok" | "refused: ..." | "not checked"
    notes: list[str] = field(default_factory=list)

    def has(self, need: Need) -> bool | None:
        return None if self.permissions is None else bool(self.permissions & need.satisfied_by)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": {"id": self.tenant_id, "name": self.tenant_name, "domain": self.domain},
            "cloud": self.target.cloud, "graph_url": self.target.graph_url,
            "powerplatform_url": self.target.powerplatform_url,
            "identity": {"kind": self.kind, "name": self.name, "app_id": self.app_id,
                         "signed_in_with": self.signed_in_with},
            "permissions": sorted(self.permissions) if self.permissions is not None else None,
            "permissions_source": self.source,
            "checks": {k: self.has(n) for k, n in NEEDS.items()} | {POWERPLATFORM: self.powerplatform},
            "notes": self.notes,
        }  # fmt: skip


def token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT access token, unverified (ours: we only read what it says we may do), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def needs_for(operations: Iterable[Any]) -> list[str]:
    """The NEEDS keys (and POWERPLATFORM) a set of planned operations calls for; reading users always."""
    keys = {"read-users"}
    for op in operations:
        url = str(getattr(op, "url", "")).lower()
        method = str(getattr(op, "method", "")).upper()
        api = str(getattr(op, "api", "") or getattr(op, "service", "")).lower()
        if "powerplatform" in api or "/licensing/" in url or "allocation" in url:
            keys.add(POWERPLATFORM)
        elif url.endswith("/assignlicense"):
            keys.add("assign-licenses")
        elif "/members" in url or (method == "PATCH" and url.startswith("/groups/")):  # members@odata.bind
            keys.add("group-members")
        elif method == "PATCH" and url.startswith("/users/"):
            keys.add("usage-location")
    order = [*NEEDS, POWERPLATFORM]
    return sorted(keys, key=order.index)


#: A refused read's path -> the need it shows (for ``explain_refusal``).
_PATH_NEEDS = (("/environmentmanagement", POWERPLATFORM), ("/licensing", POWERPLATFORM),
               ("/subscribedskus", "read-licenses"), ("/groups", "read-groups"), ("/users", "read-users"))


def explain_refusal(settings: Any, error: PermissionDeniedError) -> PermissionDeniedError:
    """A 403 met while reading the tenant (before anything changed), said as the preflight says it: which
    permission is missing and how to grant it. The original error when the identity's permissions cannot be read
    or show nothing missing."""
    from . import jobs

    text = str(error).lower()
    keys = [k for path, k in _PATH_NEEDS if path in text][:1]
    if not keys:
        return error
    try:
        with jobs.open_session(settings) as session:
            ident = identify(session.tenant, check_powerplatform=keys == [POWERPLATFORM])
    except TenantError:
        return error
    lacking = missing(ident, keys)
    return refusal(ident, lacking) if lacking else error


def identify(tenant: Any, *, check_powerplatform: bool = True) -> Identity:
    """Who the tenant client signs in as, and what it may do (see the module docstring). ``tenant`` is a
    ``batch.tenant.Tenant``. Raises AuthenticationError when no token can be had at all."""
    from .tenant.auth import graph_scope
    from .tenant.client import _run
    from .tenant.sdk import read_identity

    target: Target = tenant.target
    ident = Identity(target=target, tenant_id=target.tenant_id)
    cred = tenant.tokens.credential
    ident.signed_in_with = getattr(cred, "method", None) or ("sandbox token" if target.is_sandbox else "credential")
    token = tenant.tokens.token(graph_scope(target.graph_url))
    claims = token_claims(token)
    app_id = target.client_id
    if claims is not None:
        ident.tenant_id = str(claims.get("tid") or ident.tenant_id or "") or None
        app_id = str(claims.get("appid") or claims.get("azp") or app_id or "") or None
        if claims.get("scp"):
            ident.kind, ident.name = "user", str(claims.get("upn") or claims.get("unique_name") or "")
            ident.permissions = frozenset(str(claims["scp"]).split())
            ident.source = "the access token's scp claim (delegated)"
        else:
            ident.kind, ident.name = "application", str(claims.get("app_displayname") or app_id or "")
            ident.permissions = frozenset(str(r) for r in claims.get("roles") or ())
            ident.source = "the access token's roles claim"
    elif app_id is None and target.is_loopback:
        app_id = SANDBOX_TOKEN_APPS.get(token)
    ident.app_id = app_id
    info = _run(read_identity(tenant.http, app_id if ident.permissions is None else None))
    org = info["organization"]
    if org:
        ident.tenant_id = org["id"] or ident.tenant_id
        ident.tenant_name, ident.domain = org["displayName"], org["domain"]
    sp = info["service_principal"]
    if sp and ident.permissions is None:
        ident.kind, ident.name = "application", sp["displayName"]
    if info["roles"] is not None and ident.permissions is None:
        ident.permissions = frozenset(info["roles"])
        ident.source = "Microsoft Graph: the service principal's appRoleAssignments"
    if ident.permissions is None:
        ident.notes.append("the token is not a JWT and no client id is configured: set [tenant] client_id "
                           "(or AZURE_CLIENT_ID) to read the app's permissions" if not app_id else
                           "the app's permissions could not be read (" + "; ".join(info["notes"]) + ")")  # fmt: skip
    if check_powerplatform:
        ident.powerplatform = powerplatform_check(tenant)
    return ident


def powerplatform_check(tenant: Any) -> str:
    """"ok", or "refused: <why>" after a token for Power Platform and one cheap environments read."""
    from .tenant.auth import powerplatform_scope
    from .tenant.http import HttpClient

    target: Target = tenant.target
    http = HttpClient(target.powerplatform_url, tenant.tokens, powerplatform_scope(target.powerplatform_url),
                      tenant.limits)  # fmt: skip
    try:
        http.request("GET", "/environmentmanagement/environments?api-version=2024-10-01&$top=1", retry=False)
    except AuthenticationError as e:
        return f"refused: no Power Platform token ({str(e).splitlines()[0]})"
    except PermissionDeniedError:
        return "refused: 403 on GET /environmentmanagement/environments"
    except TenantError as e:
        return f"refused: {e}"
    finally:
        http.close()
    return "ok"


def missing(ident: Identity, keys: Iterable[str]) -> list[str]:
    """The needs (keys) the identity is known to lack; unknown permissions are not reported as missing."""
    out = []
    for k in keys:
        if k == POWERPLATFORM:
            if ident.powerplatform.startswith("refused"):
                out.append(k)
        elif ident.has(NEEDS[k]) is False:
            out.append(k)
    return out


def refusal(ident: Identity, lacking: list[str], counts: Mapping[str, int] | None = None) -> PermissionDeniedError:
    """The exit-3 error: each missing permission, why the run needs it, and how to grant it."""
    who = f"{ident.kind} {ident.name or ident.app_id or '(unknown)'}" + (
        f" (app id {ident.app_id})" if ident.app_id and ident.name != ident.app_id else "")
    lines = [f"The signed-in {who} lacks what this run needs in {ident.target.name} (permissions read from "
             f"{ident.source}):"]  # fmt: skip
    graph_missing = [k for k in lacking if k != POWERPLATFORM]
    delegated = ident.kind == "user"
    for k in graph_missing:
        n = NEEDS[k]
        c = (counts or {}).get(k)
        lines.append(f"  - Microsoft Graph {'delegated' if delegated else 'application'} permission {n.permission}: "
                     f"to {n.what}" + (f" ({c} operations)" if c else "") + ".")  # fmt: skip
    if POWERPLATFORM in lacking:
        lines.append(f"  - Power Platform management app: to allocate add-ons ({ident.powerplatform}).")
    fixes = []
    if graph_missing:
        perms = ", ".join(NEEDS[k].permission for k in graph_missing)
        fixes.append(f"In the Entra admin center, App registrations > {ident.name or ident.app_id or 'your app'} > API "
                     f"permissions > Add a permission > Microsoft Graph > "
                     f"{'Delegated' if delegated else 'Application'} permissions: add {perms}, then 'Grant admin "
                     f"consent'.")  # fmt: skip
    if POWERPLATFORM in lacking:
        fixes.append("As a Power Platform administrator run 'pac admin application register --application-id "
                     f"{ident.app_id or '<client id>'}'.")  # fmt: skip
    lines.append(" ".join(fixes) + " Nothing was applied.")
    return PermissionDeniedError("\n".join(lines))


def check_plan(tenant: Any, operations: Iterable[Any]) -> Identity:
    """The preflight: raise ``refusal`` when the identity is known to lack what ``operations`` need."""
    ops = list(operations)
    keys = needs_for(ops)
    ident = identify(tenant, check_powerplatform=POWERPLATFORM in keys)
    lacking = missing(ident, keys)
    if lacking:
        counts: dict[str, int] = {}
        for op in ops:
            for k in needs_for([op]):
                if k != "read-users":
                    counts[k] = counts.get(k, 0) + 1
        raise refusal(ident, lacking, counts)
    return ident


def render(ident: Identity) -> list[str]:
    """``license-batch whoami`` lines."""
    t = ident.target
    yes = {True: "yes", False: "NO", None: "unknown"}
    lines = [
        f"Tenant:   {ident.tenant_name or t.name} ({ident.domain or t.name}; id {ident.tenant_id or 'unknown'})",
        f"Cloud:    {t.cloud} (Graph {t.graph_url}; Power Platform {t.powerplatform_url}; sign-in {t.authority})"
        if not t.is_sandbox else f"Cloud:    sandbox (Graph {t.graph_url}; Power Platform {t.powerplatform_url})",
        f"Identity: {ident.kind} {ident.name or '(name not readable)'}"
        + (f" (app id {ident.app_id})" if ident.app_id else "") + f"; signed in with {ident.signed_in_with}",
        "Permissions: " + (", ".join(sorted(ident.permissions)) if ident.permissions else
                           "none" if ident.permissions is not None else "unknown") + f" (from {ident.source})",
    ]  # fmt: skip
    for n in NEEDS.values():
        lines.append(f"  {n.what:<32} {n.permission:<33} {yes[ident.has(n)]}")
    lines.append(f"  {'allocate Power Platform add-ons':<32} {'management app registration':<33} "
                 f"{ident.powerplatform}")  # fmt: skip
    lines += [f"Note: {n}." for n in ident.notes]
    return lines
