"""Credentials: where the bearer tokens come from.

* A loopback target (the sandbox, or a rehearsal copy on 127.0.0.1) uses ``LICENSE_BATCH_TOKEN`` when it is
  set, else the sandbox's published development token (``batch.config.SANDBOX_DEV_TOKEN``).
* A real tenant uses azure-identity, imported only when the first token is needed, so ``--help`` and the
  validation of a local file never pay for it. ``--auth`` / ``[tenant] auth`` / ``LICENSE_BATCH_AUTH`` picks the
  method: ``env`` (client secret or certificate from AZURE_* variables), ``certificate``, ``managed-identity``,
  ``azure-cli``, ``device-code`` (with azure-identity's persistent token cache when the machine has a keyring),
  or ``auto`` (each whose prerequisites are present, in that order; device code only when chosen). Hosts follow
  the cloud (``Target.authority``). Secrets come from azure-identity's own environment variables, never from our
  settings or command line. A failed sign-in is one paragraph (``SignIn.failure``): each method tried and why it
  failed, one line each, and what to set; azure-identity's own log lines are silenced meanwhile.

Tokens are cached per scope until shortly before they expire. No token is ever logged, and ``repr`` of every
object here hides it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from .._secrets import scrub_text
from ..config import SANDBOX_DEV_TOKEN, Target
from ..errors import AuthenticationError, ConfigError

#: Refresh a cached token this many seconds before it expires (clock skew, long requests).
REFRESH_MARGIN_SECONDS = 300.0

#: A static (loopback) token is treated as valid this long before it is asked for again.
STATIC_TOKEN_LIFETIME_SECONDS = 3600

#: Retries and connect timeout for the sign-in (token endpoint) requests.
SIGN_IN_RETRIES = 2
SIGN_IN_CONNECT_TIMEOUT_SECONDS = 5

_KNOWN_AUTHORITIES = frozenset({"login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn"})

#: Sign-in methods (``--auth``); "auto" tries the ones whose prerequisites are present.
CREDENTIAL_KINDS = ("auto", "env", "certificate", "managed-identity", "azure-cli", "device-code")
#: Older names accepted from LICENSE_BATCH_CREDENTIAL.
_ALIASES = {"default": "auto", "environment": "env", "detect": "auto", "detected": "auto"}

#: What to set, per method, in the failure paragraph.
_HOW = {
    "env": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) for an "
           "app registration",
    "certificate": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH (a PEM or PKCS12 file)",
    "managed-identity": "run on an Azure host with a managed identity (set AZURE_CLIENT_ID for a user-assigned one)",
    "azure-cli": "run 'az login --tenant <tenant>' (Azure CLI)",
    "device-code": "choose --auth device-code to sign in interactively as an administrator",
}  # fmt: skip

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
    target: Target,
    *,
    kind: str | None = None,
    env: Mapping[str, str] | None = None,
    say: Callable[[str], None] | None = None,
) -> TokenCredentialLike:
    """The credential for ``target``: a static token for loopback, else a ``SignIn`` over azure-identity.

    ``kind`` (else ``target.auth``, else ``LICENSE_BATCH_CREDENTIAL``) is one of ``CREDENTIAL_KINDS``. Nothing is
    contacted here; azure-identity is imported on the first token.
    """
    env = os.environ if env is None else env
    if target.is_loopback or target.embedded_sandbox:
        return StaticTokenCredential(env.get("LICENSE_BATCH_TOKEN") or SANDBOX_DEV_TOKEN)
    raw = kind or (target.auth if target.auth != "auto" else None) or env.get("LICENSE_BATCH_CREDENTIAL") or "auto"
    k = raw.strip().lower()
    k = _ALIASES.get(k, k)
    if k not in CREDENTIAL_KINDS:
        raise ConfigError(f"Unknown sign-in method '{raw}'.", fix=f"Use one of: {', '.join(CREDENTIAL_KINDS)}.")
    return SignIn(target, k, env, say=say)


class SignIn:
    """Tries the chosen sign-in method (or, for "auto", each whose prerequisites are present) and says, in one
    paragraph, why each failed. azure-identity's own log output is silenced while it works: its reasons are
    in the paragraph, one line each. The method that worked is kept for the rest of the run."""

    def __init__(self, target: Target, kind: str, env: Mapping[str, str], *,
                 say: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.target = target
        self.kind = kind
        self.env = env
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self._working: tuple[str, Any] | None = None
        self.method: str | None = None  # the method that signed in
        self.notes: list[str] = []
        self._record_to_save: Path | None = None

    def __repr__(self) -> str:
        return f"SignIn({self.kind}, method={self.method})"

    # -- which methods, and why not

    def _ids(self) -> tuple[str | None, str | None]:
        return (self.target.tenant_id or self.env.get("AZURE_TENANT_ID"),
                self.target.client_id or self.env.get("AZURE_CLIENT_ID"))  # fmt: skip

    def candidates(self) -> list[tuple[str, str | None]]:
        """(method, reason it was skipped or None) in the order they are tried."""
        if self.kind != "auto":
            return [(self.kind, None)]
        env = self.env
        out: list[tuple[str, str | None]] = []
        has_secret = bool(env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"))
        out.append(("env", None if has_secret else "AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are not set"))
        on_azure = bool(env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"))
        out.append(("managed-identity", None if on_azure else "not on an Azure host (no IDENTITY_ENDPOINT or "
                    "MSI_ENDPOINT; on a VM choose --auth managed-identity)"))
        has_az = shutil.which("az", path=env.get("PATH")) is not None
        out.append(("azure-cli", None if has_az else "the Azure CLI ('az') is not installed"))
        out.append(("device-code", "interactive: choose it with --auth device-code"))
        return out  # fmt: skip

    def _build(self, method: str) -> Any:
        import azure.identity as ai

        tenant_id, client_id = self._ids()
        env = self.env
        # AZURE_AUTHORITY_HOST (azure-identity's own variable) overrides the cloud's sign-in host, e.g. for Azure
        # Stack; a host that is not a Microsoft cloud's skips MSAL's instance discovery (a call to the public cloud).
        authority = env.get("AZURE_AUTHORITY_HOST") or self.target.authority
        custom = authority.removeprefix("https://").rstrip("/") not in _KNOWN_AUTHORITIES
        # an unreachable sign-in host fails within seconds, naming the host (azure-core would retry ten times)
        net: dict[str, Any] = {"authority": authority, "retry_total": SIGN_IN_RETRIES,
                               "connection_timeout": SIGN_IN_CONNECT_TIMEOUT_SECONDS}  # fmt: skip
        if custom:
            net["disable_instance_discovery"] = True
        if method == "env":
            secret, cert = env.get("AZURE_CLIENT_SECRET"), env.get("AZURE_CLIENT_CERTIFICATE_PATH")
            if not (tenant_id and client_id and (secret or cert)):
                raise _Skip("needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or "
                            "AZURE_CLIENT_CERTIFICATE_PATH; missing: " + ", ".join(
                                n for n, v in (("AZURE_TENANT_ID", tenant_id), ("AZURE_CLIENT_ID", client_id),
                                               ("AZURE_CLIENT_SECRET", secret or cert)) if not v))  # fmt: skip
            if secret:
                return ai.ClientSecretCredential(tenant_id, client_id, secret, **net)
            method = "certificate"
        if method == "certificate":
            path = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
            missing = [n for n, v in (("AZURE_TENANT_ID", tenant_id), ("AZURE_CLIENT_ID", client_id),
                                      ("AZURE_CLIENT_CERTIFICATE_PATH", path)) if not v]  # fmt: skip
            if missing:
                raise _Skip("needs " + ", ".join(missing))
            assert tenant_id and client_id and path
            if not os.path.exists(path):
                raise _Skip(f"the certificate file {path} does not exist")
            return ai.CertificateCredential(tenant_id, client_id, path, **net,
                                            password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None)  # fmt: skip
        if method == "managed-identity":
            return ai.ManagedIdentityCredential(client_id=client_id) if client_id else ai.ManagedIdentityCredential()
        if method == "azure-cli":
            return ai.AzureCliCredential(tenant_id=tenant_id) if tenant_id else ai.AzureCliCredential()
        # device code: azure-identity's persistent token cache when its backend works here, else in memory
        kw: dict[str, Any] = {**net, "prompt_callback": self._prompt}
        if tenant_id:
            kw["tenant_id"] = tenant_id
        if client_id:
            kw["client_id"] = client_id
        options = persistent_cache_options()
        self._record_to_save = None
        if options is not None:
            kw["cache_persistence_options"] = options
            # The cache alone is not read silently: azure-identity needs the account's AuthenticationRecord (no
            # token in it: account and authority), kept beside our cache after the first sign-in.
            record = self.record_path()
            try:
                kw["authentication_record"] = ai.AuthenticationRecord.deserialize(record.read_text(encoding="utf-8"))
                kw.pop("authority")  # the record carries it (azure-identity refuses both)
            except (OSError, ValueError, KeyError):
                self._record_to_save = record
        else:
            self.notes.append("the persistent token cache is not available here (no keyring): tokens are kept "
                              "for this run only")  # fmt: skip
        return ai.DeviceCodeCredential(**kw)

    def record_path(self) -> Path:
        """Where the device-code account record is kept (per tenant and client id)."""
        tenant_id, client_id = self._ids()
        base = Path(self.env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "license-batch"
        return base / f"device-code-{tenant_id or 'organizations'}-{client_id or 'default'}.json"

    def _save_record(self, record: Any) -> None:
        path = self._record_to_save
        self._record_to_save = None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(record.serialize(), encoding="utf-8")
        except OSError as e:  # not fatal: the next command asks again
            self.say(f"Note: could not keep the sign-in record in {path} ({e.strerror}); the next command will ask "
                     "again.")  # fmt: skip

    def _prompt(self, verification_uri: str, user_code: str, expires_on: Any) -> None:
        self.say(f"To sign in, open {verification_uri} and enter the code {user_code}.")
        for note in self.notes:
            self.say(f"Note: {note}.")

    # -- tokens

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        if self._working is not None:
            with _quiet_azure():
                return self._working[1].get_token(*scopes, **kwargs)
        tried: list[str] = []
        for method, skipped in self.candidates():
            if skipped:
                tried.append(f"{method}: {skipped}")
                continue
            try:
                with _quiet_azure():
                    cred = self._build(method)
                    if method == "device-code" and self._record_to_save is not None:
                        self._save_record(cred.authenticate(scopes=list(scopes)))
                    token = cred.get_token(*scopes, **kwargs)
            except _Skip as e:
                tried.append(f"{method}: {e}")
                continue
            except ImportError as e:  # pragma: no cover - a declared dependency
                raise AuthenticationError("azure-identity is not installed.") from e
            except Exception as e:  # CredentialUnavailableError, ClientAuthenticationError, ValueError, OSError
                tried.append(f"{method}: {_reason(e)}")
                continue
            self._working = (method, cred)
            self.method = method
            return token
        raise AuthenticationError(self.failure(scopes, tried))

    def failure(self, scopes: tuple[str, ...], tried: list[str]) -> str:
        t = self.target
        authority = self.env.get("AZURE_AUTHORITY_HOST") or t.authority
        tried_methods = [line.split(":", 1)[0] for line in tried]
        how = [_HOW[m] for m in tried_methods if m in _HOW]
        return (
            f"Could not sign in to {t.name} (cloud {t.cloud}, authority {authority}) for {', '.join(scopes)}. "
            f"Tried {len(tried)} method{'s' if len(tried) != 1 else ''}:\n"
            + "".join(f"  - {line}\n" for line in tried)
            + "To sign in: " + "; or ".join(how) + ". Choose the method with --auth (or [tenant] auth)."
        )


class _Skip(Exception):
    """A method whose prerequisites are missing (not tried)."""


def _reason(e: Exception) -> str:
    """One line from an azure-identity error: its first meaningful line, scrubbed of secrets."""
    text = str(getattr(e, "message", None) or e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # azure-identity prefixes its own name ("ClientSecretCredential.get_token failed: ...")
    line = lines[0] if lines else type(e).__name__
    if "Attempted credentials" in line and len(lines) > 1:
        line = lines[1]
    for prefix in ("ClientSecretCredential", "CertificateCredential", "ManagedIdentityCredential",
                   "AzureCliCredential", "DeviceCodeCredential"):  # fmt: skip
        if line.startswith(prefix):
            line = line.split(":", 1)[-1].strip() or line
    return scrub_text(line)[:240]


@contextmanager
def _quiet_azure() -> Iterator[None]:
    """azure-identity and MSAL log every failed attempt at WARNING: their reasons are in our paragraph."""
    loggers = [logging.getLogger(n) for n in ("azure.identity", "azure.core", "msal")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def persistent_cache_options() -> Any:
    """``TokenCachePersistenceOptions`` when its encrypted backend works on this machine, else None."""
    try:
        from azure.identity import TokenCachePersistenceOptions

        options = TokenCachePersistenceOptions(name="license-batch")
        from azure.identity._persistent_cache import _load_persistent_cache  # probe: raises when unusable

        _load_persistent_cache(options, False)
        return options
    except Exception:  # ValueError (no libsecret/keyring), ImportError, an azure-identity internal change
        return None


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
            except AuthenticationError:
                raise
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
    "SignIn",
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
