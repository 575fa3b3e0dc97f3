"""Credentials: loopback tokens, azure-identity wiring (lazily imported), caching, scopes, no token in logs."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

import pytest

from batch.config import SANDBOX_DEV_TOKEN, Target
from batch.errors import AuthenticationError, ConfigError
from batch.tenant.auth import (
    REFRESH_MARGIN_SECONDS,
    SignIn,
    StaticTokenCredential,
    Token,
    TokenProvider,
    graph_scope,
    make_credential,
    powerplatform_scope,
)

REAL = Target(
    name="contoso.onmicrosoft.com",
    graph_url="https://graph.microsoft.us/v1.0",
    powerplatform_url="https://api.gov.powerplatform.microsoft.us",
    cloud="usgov",
    tenant_id="11111111-1111-1111-1111-111111111111",
    client_id="22222222-2222-2222-2222-222222222222",
)
LOOP = Target(name="sandbox", graph_url="http://127.0.0.1:8080/v1.0", powerplatform_url="http://127.0.0.1:8080")


def test_scopes_follow_the_cloud() -> None:
    assert graph_scope("https://graph.microsoft.com/v1.0") == "https://graph.microsoft.com/.default"
    assert graph_scope(REAL.graph_url) == "https://graph.microsoft.us/.default"
    assert powerplatform_scope("https://api.powerplatform.com") == "https://api.powerplatform.com/.default"


def test_loopback_uses_dev_token_or_env() -> None:
    assert make_credential(LOOP, env={}).get_token("s").token == SANDBOX_DEV_TOKEN
    assert make_credential(LOOP, env={"LICENSE_BATCH_TOKEN": "t2"}).get_token("s").token == "t2"


def test_real_tenant_signs_in_through_azure_identity_methods() -> None:
    env = {"AZURE_CLIENT_CERTIFICATE_PATH": "/nonexistent.pem"}
    for kind, expected in (("environment", "env"), ("env", "env"), ("azure-cli", "azure-cli"),
                           ("managed-identity", "managed-identity"), ("default", "auto")):  # fmt: skip
        cred = make_credential(REAL, kind=kind, env=env)
        assert isinstance(cred, SignIn) and cred.kind == expected
    assert make_credential(REAL, env={"LICENSE_BATCH_CREDENTIAL": "device-code"}).kind == "device-code"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as e:
        make_credential(REAL, kind="password", env=env)
    assert str(e.value) == (
        "Unknown sign-in method 'password'. "
        "Use one of: auto, env, certificate, managed-identity, azure-cli, device-code."
    )


def test_importing_the_tenant_package_is_cheap() -> None:
    code = (
        "import sys, batch.tenant, batch.tenant.auth; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'azure', 'msgraph', 'kiota_abstractions'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class Expiring:
    def __init__(self, lifetime: float) -> None:
        self.calls = 0
        self.lifetime = lifetime

    def get_token(self, *scopes: str, **kw: Any) -> Token:
        self.calls += 1
        return Token(f"tok{self.calls}", int(time.time() + self.lifetime))


def test_tokens_are_cached_until_shortly_before_expiry() -> None:
    long = Expiring(3600)
    tp = TokenProvider(long)
    assert tp.token("a") == tp.token("a") == "tok1"
    assert tp.token("b") == "tok2"  # per scope
    short = Expiring(REFRESH_MARGIN_SECONDS - 1)  # already inside the refresh margin
    tp = TokenProvider(short)
    assert tp.token("a") == "tok1" and tp.token("a") == "tok2"
    tp = TokenProvider(long)
    tp.token("a")
    tp.invalidate("a")
    assert tp.token("a") == "tok4"


def test_credential_failure_is_authentication_error() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class Broken:
        def get_token(self, *scopes: str, **kw: Any) -> Token:
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")

    with pytest.raises(AuthenticationError) as info:
        TokenProvider(Broken()).token("https://graph.microsoft.com/.default")
    assert isinstance(info.value.__cause__, ClientAuthenticationError)
    with pytest.raises(ConfigError):
        StaticTokenCredential("")


def test_no_token_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    from .stub import Stub, js

    stub = Stub().start()
    try:
        stub.on("GET", "/v1.0/subscribedSkus", js({"value": []}))
        from batch.tenant import Tenant

        target = Target(name="stub", graph_url=stub.url, powerplatform_url=stub.url)
        with caplog.at_level(logging.DEBUG), Tenant(target, credential=StaticTokenCredential("s3cr3t-token")) as t:
            t.http.get_json("/subscribedSkus")
            assert "s3cr3t-token" not in repr(t.tokens) + repr(t.tokens.credential)
    finally:
        stub.stop()
    assert caplog.records and all("s3cr3t-token" not in r.getMessage() for r in caplog.records)
