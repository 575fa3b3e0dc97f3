"""Credentials: where the bearer tokens come from.

* A loopback target (the sandbox, or a rehearsal copy on 127.0.0.1) uses ``LICENSE_BATCH_TOKEN`` when it is
  set, else the sandbox's published development token (``batch.config.SANDBOX_DEV_TOKEN``).
* A real tenant uses azure-identity, imported only when the first token is needed, so ``--help`` and the
  validation of a local file never pay for it. ``LICENSE_BATCH_CREDENTIAL`` picks the kind:
  ``default`` (DefaultAzureCredential, the default), ``environment``, ``certificate``, ``managed-identity``,
  ``azure-cli`` or ``device-code``. Secrets themselves come from azure-identity's own environment variables
  (AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, ...), never from our settings or command line.

Tokens are cached per scope until shortly before they expire. No token is ever logged, and ``repr`` of every
object here hides it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from .._secrets import scrub_text
from ..config import SANDBOX_DEV_TOKEN, Target
from ..errors import AuthenticationError, ConfigError

#: Refresh a cached token this many seconds before it expires (clock skew, long requests).
REFRESH_MARGIN_SECONDS = 300.0

#: A static (loopback) token is treated as valid this long before it is asked for again.
STATIC_TOKEN_LIFETIME_SECONDS = 3600

CREDENTIAL_KINDS = ("default", "environment", "certificate", "managed-identity", "azure-cli", "device-code")


class Token(NamedTuple):
    """Same shape as ``azure.core.credentials.AccessToken`` (token, expires_on as epoch seconds)."""

    token: str
    expires_on: int

    def __repr__(self) -> str:  # never show the secret
        return f"Token(token=<hidden>, expires_on={self.expires_on})"


class TokenCredentialLike(Protocol):
    """What azure-identity credentials offer: ``get_token(*scopes) -> AccessToken``."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class StaticTokenCredential:
    """A fixed bearer token (the sandbox's development token or ``LICENSE_BATCH_TOKEN``)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ConfigError("The token for the loopback tenant is empty.", fix="Set LICENSE_BATCH_TOKEN.")
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Token:
        return Token(self._token, int(time.time()) + STATIC_TOKEN_LIFETIME_SECONDS)

    def __repr__(self) -> str:
        return "StaticTokenCredential(<hidden>)"


def graph_scope(graph_url: str) -> str:
    """``https://graph.microsoft.com/.default`` for the cloud that ``graph_url`` belongs to."""
    host = urlsplit(graph_url).hostname or "graph.microsoft.com"
    return f"https://{host}/.default"


def powerplatform_scope(powerplatform_url: str) -> str:
    """``https://api.powerplatform.com/.default`` (or the national cloud's host)."""
    host = urlsplit(powerplatform_url).hostname or "api.powerplatform.com"
    return f"https://{host}/.default"


def make_credential(
    target: Target, *, kind: str | None = None, env: Mapping[str, str] | None = None
) -> TokenCredentialLike:
    """The credential for ``target``; azure-identity is imported here, and only for a real tenant."""
    env = os.environ if env is None else env
    if target.is_loopback or target.embedded_sandbox:
        return StaticTokenCredential(env.get("LICENSE_BATCH_TOKEN") or SANDBOX_DEV_TOKEN)
    kind = (kind or env.get("LICENSE_BATCH_CREDENTIAL") or "default").strip().lower()
    if kind not in CREDENTIAL_KINDS:
        raise ConfigError(f"Unknown credential kind '{kind}'.", fix=f"Use one of: {', '.join(CREDENTIAL_KINDS)}.")
    try:
        import azure.identity as ai
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise AuthenticationError("azure-identity is not installed.") from e

    tenant_id = target.tenant_id or env.get("AZURE_TENANT_ID")
    client_id = target.client_id or env.get("AZURE_CLIENT_ID")
    authority = _AUTHORITIES.get(target.cloud)
    extra: dict[str, Any] = {"authority": authority} if authority else {}
    try:
        if kind == "default":
            return ai.DefaultAzureCredential(exclude_interactive_browser_credential=True, **extra)
        if kind == "environment":
            return ai.EnvironmentCredential(**extra)
        if kind == "certificate":
            path = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
            if not (tenant_id and client_id and path):
                raise ConfigError(
                    "A certificate credential needs a tenant id, a client id and a certificate path.",
                    fix="Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH.",
                )
            return ai.CertificateCredential(tenant_id, client_id, path, **extra)
        if kind == "managed-identity":
            return ai.ManagedIdentityCredential(client_id=client_id) if client_id else ai.ManagedIdentityCredential()
        if kind == "azure-cli":
            return ai.AzureCliCredential(tenant_id=tenant_id) if tenant_id else ai.AzureCliCredential()
        return (
            ai.DeviceCodeCredential(client_id=client_id, tenant_id=tenant_id, **extra)
            if client_id
            else (ai.DeviceCodeCredential(tenant_id=tenant_id, **extra))
        )
    except ValueError as e:  # azure-identity's constructors raise ValueError on bad arguments
        raise ConfigError(f"Cannot build the {kind} credential: {e}") from e


_AUTHORITIES: dict[str, str] = {
    "usgov": "login.microsoftonline.us",
    "usgov-dod": "login.microsoftonline.us",
    "china": "login.chinacloudapi.cn",
}


class TokenProvider:
    """Bearer tokens per scope from one credential, cached until ``REFRESH_MARGIN_SECONDS`` before expiry.

    Thread-safe: the snapshot's parallel readers share one provider.
    """

    def __init__(self, credential: TokenCredentialLike) -> None:
        self.credential = credential
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.fetched = 0  # tokens obtained from the credential (for tests)

    def token(self, scope: str) -> str:
        now = time.time()
        with self._lock:
            hit = self._cache.get(scope)
            if hit is not None and hit[1] - REFRESH_MARGIN_SECONDS > now:
                return hit[0]
            try:
                at = self.credential.get_token(scope)
            except Exception as e:  # azure-identity raises ClientAuthenticationError, CredentialUnavailableError
                detail = _first_line(str(e))
                raise AuthenticationError(
                    f"Could not get a token for {scope}: {type(e).__name__}{': ' + detail if detail else ''}"
                ) from e
            token = getattr(at, "token", None)
            if not token:
                raise AuthenticationError(f"The credential gave no token for {scope}.")
            expires = float(getattr(at, "expires_on", 0) or 0)
            self._cache[scope] = (token, expires)
            self.fetched += 1
            return str(token)

    def invalidate(self, scope: str) -> None:
        """Forget the cached token (after a 401: it may have been revoked early)."""
        with self._lock:
            self._cache.pop(scope, None)

    def __repr__(self) -> str:
        return f"TokenProvider({self.credential!r})"


__all__ = [
    "CREDENTIAL_KINDS",
    "StaticTokenCredential",
    "Token",
    "TokenCredentialLike",
    "TokenProvider",
    "graph_scope",
    "make_credential",
    "powerplatform_scope",
]


def _first_line(text: str, limit: int = 300) -> str:
    """The first line of a credential error (e.g. ``AADSTS700016: Application ... was not found``), scrubbed."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return scrub_text(line)[:limit]
