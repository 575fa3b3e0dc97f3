"""Sign-in paths that run here: Azure CLI (a real `az` program on PATH), managed identity (App Service's token
endpoint on loopback), injected credentials; and the one-paragraph failure for every method that cannot."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from batch.config import Target
from batch.errors import AuthenticationError
from batch.tenant.auth import SignIn, TokenProvider, make_credential

REAL = Target(name="contoso.onmicrosoft.com", graph_url="https://graph.microsoft.com/v1.0",
              powerplatform_url="https://api.powerplatform.com", tenant_id="11111111-1111-1111-1111-111111111111",
              client_id="22222222-2222-2222-2222-222222222222")  # fmt: skip
SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    for var in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
                "MSI_ENDPOINT", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    return bin_dir


def test_auto_with_nothing_available_is_one_paragraph(empty_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cred = make_credential(REAL, env={"PATH": str(empty_path)})
    with pytest.raises(AuthenticationError) as e:
        TokenProvider(cred).token(SCOPE)
    assert str(e.value) == (
        "Could not sign in to contoso.onmicrosoft.com (cloud global, authority login.microsoftonline.com) for "
        "https://graph.microsoft.com/.default. Tried 4 methods:\n"
        "  - env: AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are not set\n"
        "  - managed-identity: not on an Azure host (no IDENTITY_ENDPOINT or MSI_ENDPOINT; on a VM choose "
        "--auth managed-identity)\n"
        "  - azure-cli: the Azure CLI ('az') is not installed\n"
        "  - device-code: interactive: choose it with --auth device-code\n"
        "To sign in: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH) "
        "for an app registration; or run on an Azure host with a managed identity (set AZURE_CLIENT_ID for a "
        "user-assigned one); or run 'az login --tenant <tenant>' (Azure CLI); or choose --auth device-code to sign in "
        "interactively as an administrator. Choose the method with --auth (or [tenant] auth)."
    )
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_explicit_env_without_secret_names_what_is_missing(empty_path: Path) -> None:
    cred = make_credential(REAL, kind="env", env={})
    with pytest.raises(AuthenticationError) as e:
        cred.get_token(SCOPE)
    assert ("  - env: needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or "
            "AZURE_CLIENT_CERTIFICATE_PATH; missing: AZURE_CLIENT_SECRET\n") in str(e.value)


def _fake_az(bin_dir: Path, body: str) -> None:
    az = bin_dir / "az"
    az.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)


def test_azure_cli_sign_in_runs_az(empty_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "az-args"
    expires = int(time.time()) + 3600
    _fake_az(empty_path, f'echo "$@" > {log}\n'
             f'echo \'{{"accessToken": "cli-token-1", "expiresOn": "2099-01-01 00:00:00.000000", '
             f'"expires_on": {expires}, "tokenType": "Bearer", "tenant": "{REAL.tenant_id}"}}\'\n')  # fmt: skip
    cred = make_credential(REAL, kind="azure-cli", env={"PATH": str(empty_path)})
    tokens = TokenProvider(cred)
    assert tokens.token(SCOPE) == "cli-token-1"
    assert isinstance(cred, SignIn) and cred.method == "azure-cli"
    args = log.read_text(encoding="utf-8")
    assert "get-access-token" in args and "https://graph.microsoft.com" in args and REAL.tenant_id in args


def test_azure_cli_failure_is_one_line_and_azure_logs_are_silent(
    empty_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    _fake_az(empty_path, "echo \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n")
    cred = make_credential(REAL, kind="azure-cli", env={"PATH": str(empty_path)})
    with caplog.at_level(logging.DEBUG), pytest.raises(AuthenticationError) as e:
        cred.get_token(SCOPE)
    lines = str(e.value).splitlines()
    assert lines[1].startswith("  - azure-cli: ") and "az login" in lines[1]
    assert len(lines) == 3
    assert not [r for r in caplog.records if r.name.startswith(("azure", "msal"))]
    assert capsys.readouterr().err == ""


class _MsiHandler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        _MsiHandler.seen.append({"path": self.path, "header": self.headers.get("X-IDENTITY-HEADER")})
        body = json.dumps({"access_token": "msi-token-1", "expires_on": str(int(time.time()) + 3600),
                           "resource": "https://graph.microsoft.com", "token_type": "Bearer"}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def msi_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MsiHandler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/msi/token"
    finally:
        server.shutdown()
        server.server_close()


def test_managed_identity_against_a_loopback_token_endpoint(
    empty_path: Path, msi_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "header-value")
    target = Target(name="contoso.onmicrosoft.com", graph_url=REAL.graph_url, powerplatform_url=REAL.powerplatform_url)
    cred = make_credential(target, env=dict(os.environ))  # auto: managed identity is detected from the environment
    assert TokenProvider(cred).token(SCOPE) == "msi-token-1"
    assert isinstance(cred, SignIn) and cred.method == "managed-identity"
    assert _MsiHandler.seen[-1]["header"] == "header-value"
    assert "resource=https" in _MsiHandler.seen[-1]["path"]


def test_injected_credential_is_used_and_refreshed() -> None:
    class Cred:
        calls = 0

        def get_token(self, *scopes: str, **kw: Any) -> Any:
            Cred.calls += 1
            from azure.core.credentials import AccessToken

            return AccessToken(f"t{Cred.calls}", int(time.time()) + (10 if Cred.calls == 1 else 3600))

    tokens = TokenProvider(Cred())
    assert tokens.token(SCOPE) == "t1"
    assert tokens.token(SCOPE) == "t2"  # the first one was within the refresh margin
    assert tokens.token(SCOPE) == "t2"


def test_device_code_cache_falls_back_cleanly_without_a_keyring() -> None:
    from batch.tenant.auth import persistent_cache_options

    # This machine has no keyring (libsecret): the option is None and device code works without it.
    cred = make_credential(REAL, kind="device-code", env={})
    assert isinstance(cred, SignIn)
    built = cred._build("device-code")
    assert type(built).__name__ == "DeviceCodeCredential"
    if persistent_cache_options() is None:
        assert cred.notes == ["the persistent token cache is not available here (no keyring): tokens are kept "
                              "for this run only"]  # fmt: skip


def test_device_code_reuses_its_account_record_with_a_persistent_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import AuthenticationRecord, TokenCachePersistenceOptions

    import batch.tenant.auth as auth

    monkeypatch.setattr(auth, "persistent_cache_options",
                        lambda: TokenCachePersistenceOptions(name="license-batch-test", allow_unencrypted_storage=True))
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    cred = make_credential(REAL, kind="device-code", env=env)
    assert isinstance(cred, SignIn)
    path = cred.record_path()
    assert path == tmp_path / "license-batch" / f"device-code-{REAL.tenant_id}-{REAL.client_id}.json"
    cred._build("device-code")
    assert cred._record_to_save == path  # first sign-in: the record is saved after authenticate()
    record = AuthenticationRecord(str(REAL.tenant_id), str(REAL.client_id), "login.microsoftonline.com",
                                  "home.account", "admin@contoso.onmicrosoft.com")  # fmt: skip
    path.parent.mkdir(parents=True)
    path.write_text(record.serialize(), encoding="utf-8")
    built = make_credential(REAL, kind="device-code", env=env)._build("device-code")  # type: ignore[attr-defined]
    assert built._auth_record.username == "admin@contoso.onmicrosoft.com"
    assert "secret" not in path.read_text(encoding="utf-8").lower()
