"""Environment credentials (client secret) against a loopback HTTPS token endpoint started here: azure-identity and
MSAL talk to it as to Entra ID (OpenID configuration, then the token request); the secret goes only there."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest

from batch.config import Target
from batch.errors import AuthenticationError
from batch.tenant.auth import SignIn, TokenProvider, make_credential

TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT = "22222222-2222-2222-2222-222222222222"
SECRET = "loopback-secret-value-9f8e7d"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


class _Entra(BaseHTTPRequestHandler):
    posts: ClassVar[list[dict[str, list[str]]]] = []
    refuse = False

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        host = f"https://{self.headers['Host']}"
        if self.path.startswith(f"/{TENANT}/v2.0/.well-known/openid-configuration"):
            self._json(200, {"token_endpoint": f"{host}/{TENANT}/oauth2/v2.0/token",
                             "authorization_endpoint": f"{host}/{TENANT}/oauth2/v2.0/authorize",
                             "device_authorization_endpoint": f"{host}/{TENANT}/oauth2/v2.0/devicecode",
                             "issuer": f"{host}/{TENANT}/v2.0"})  # fmt: skip
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
        _Entra.posts.append(form)
        if _Entra.refuse:
            self._json(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret "
                             "provided.\r\nTrace ID: 0\r\nCorrelation ID: 0", "error_codes": [7000215]})  # fmt: skip
            return
        self._json(200, {"access_token": "entra-token-1", "token_type": "Bearer", "expires_in": 3600,
                         "ext_expires_in": 3600})  # fmt: skip

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    cert, key = _self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Entra)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # trust our certificate for this test only
    _Entra.posts.clear()
    _Entra.refuse = False
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


TARGET = Target(name="contoso.onmicrosoft.com", graph_url="https://graph.microsoft.com/v1.0",
                powerplatform_url="https://api.powerplatform.com")  # fmt: skip


def _env(authority: str) -> dict[str, str]:
    return {"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT, "AZURE_CLIENT_SECRET": SECRET,
            "AZURE_AUTHORITY_HOST": authority, "PATH": ""}  # fmt: skip


def test_client_secret_from_the_environment_gets_graph_and_powerplatform_tokens(entra: str) -> None:
    cred = make_credential(TARGET, env=_env(entra))  # auto: the secret in the environment is found first
    tokens = TokenProvider(cred)
    assert tokens.token("https://graph.microsoft.com/.default") == "entra-token-1"
    assert tokens.token("https://api.powerplatform.com/.default") == "entra-token-1"
    assert isinstance(cred, SignIn) and cred.method == "env"
    scopes = [p["scope"][0] for p in _Entra.posts]
    assert [s.split()[0] for s in scopes] == ["https://graph.microsoft.com/.default",
                                              "https://api.powerplatform.com/.default"]  # fmt: skip
    assert all(p["client_id"] == [CLIENT] and p["client_secret"] == [SECRET] for p in _Entra.posts)
    assert tokens.token("https://graph.microsoft.com/.default") == "entra-token-1"
    assert len(_Entra.posts) == 2  # cached until shortly before it expires


def test_refused_secret_is_one_line_without_the_secret(entra: str, capsys: pytest.CaptureFixture[str]) -> None:
    _Entra.refuse = True
    cred = make_credential(TARGET, kind="env", env=_env(entra))
    with pytest.raises(AuthenticationError) as e:
        TokenProvider(cred).token("https://graph.microsoft.com/.default")
    text = str(e.value)
    lines = text.splitlines()
    assert lines[0] == (f"Could not sign in to contoso.onmicrosoft.com (cloud global, authority {entra}) for "
                        "https://graph.microsoft.com/.default. Tried 1 method:")  # fmt: skip
    assert lines[1].startswith("  - env: ") and "AADSTS7000215: Invalid client secret provided." in lines[1]
    assert len(lines) == 3
    assert SECRET not in text and SECRET not in "".join(capsys.readouterr())


def test_tokens_are_refreshed_during_a_long_run(entra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import batch.tenant.auth as auth

    tokens = TokenProvider(make_credential(TARGET, env=_env(entra)))
    assert tokens.token("https://graph.microsoft.com/.default") == "entra-token-1"
    real = time.time
    monkeypatch.setattr(auth.time, "time", lambda: real() + 3600 - auth.REFRESH_MARGIN_SECONDS + 1)
    tokens.token("https://graph.microsoft.com/.default")
    assert tokens.fetched == 2
