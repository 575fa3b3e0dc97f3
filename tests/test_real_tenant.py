"""A tenant that is not the embedded sandbox: permission preflight (exit 3, exact message), whoami, the one-paragraph
sign-in failure at the command line, and no secret in any file a run writes or in its output.

The "real" tenant here is a sandbox server on a loopback port reached with --graph-url, with tokens minted for
chosen permissions (``issue_token``), so each missing permission can be exercised.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch.cli import main
from batch.config import Limits, Target
from batch.errors import PermissionDeniedError
from batch.sandbox import SandboxServer, init_tenant, issue_token, list_users

APP = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
READS = ["User.Read.All", "LicenseAssignment.Read.All", "Group.Read.All", "Organization.Read.All"]
SECRET = "fake-client-secret-Zq8~do-not-print-3141"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    db = tmp_path_factory.mktemp("real") / "tenant.db"
    init_tenant(db, users=40, seed=1)
    with SandboxServer(db) as sb:
        yield sb


def _target_args(sb: SandboxServer) -> list[str]:
    return ["--graph-url", sb.graph_url, "--powerplatform-url", sb.powerplatform_url]


def _sheet(workdir: Path) -> Path:
    p = workdir / "wave.csv"
    p.write_text("user,license,usage location\nmegan.bowen@contoso.onmicrosoft.com,POWER_BI_PRO,Germany\n",
                 encoding="utf-8")  # fmt: skip
    return p


def _megan(sb: SandboxServer) -> dict[str, Any]:
    return next(u for u in list_users(sb.db) if u["userPrincipalName"].startswith("megan.bowen@"))


def test_apply_without_user_readwrite_fails_before_any_change(
    server: SandboxServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = issue_token(server.db, [*READS, "LicenseAssignment.ReadWrite.All"], app_id=APP)
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", token)
    monkeypatch.setenv("LICENSE_BATCH_CLIENT_ID", APP)
    before = _megan(server)
    code = main(["apply", str(_sheet(workdir)), *_target_args(server), "--preflight", "always", "--yes"])
    err = capsys.readouterr().err
    assert code == 3
    host = server.graph_url.split("/")[2]
    assert (
        "error: The signed-in application license-batch sandbox app 7d1e2f3a (app id " + APP + ") lacks what this "
        f"run needs in {host} (permissions read from Microsoft Graph: the service principal's appRoleAssignments):\n"
        "  - Microsoft Graph application permission User.ReadWrite.All: to set usage locations (1 operations).\n"
        "In the Entra admin center, App registrations > license-batch sandbox app 7d1e2f3a > API permissions > "
        "Add a permission > Microsoft Graph > Application permissions: add User.ReadWrite.All, then 'Grant admin "
        "consent'. Nothing was applied.\n"
    ) in err
    assert err.index(f"Target: sandbox tenant (cloud global; Graph {server.graph_url}") < err.index("error: ")
    assert _megan(server) == before
    assert not list((workdir / "reports").rglob("journal.sqlite"))


def test_apply_without_license_write_names_it(
    server: SandboxServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", issue_token(server.db, READS, app_id=APP))
    monkeypatch.setenv("LICENSE_BATCH_CLIENT_ID", APP)
    code = main(["apply", str(_sheet(workdir)), *_target_args(server), "--preflight", "always", "--yes"])
    err = capsys.readouterr().err
    assert code == 3
    assert ("  - Microsoft Graph application permission LicenseAssignment.ReadWrite.All: to assign and remove "
            "licenses (1 operations).\n"
            "  - Microsoft Graph application permission User.ReadWrite.All: to set usage locations (1 operations).\n"
            ) in err  # fmt: skip
    assert "add LicenseAssignment.ReadWrite.All, User.ReadWrite.All, then 'Grant admin consent'." in err


def test_apply_with_every_permission_passes_preflight_and_applies(
    server: SandboxServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", issue_token(
        server.db, [*READS, "LicenseAssignment.ReadWrite.All", "User.ReadWrite.All"], app_id=APP))  # fmt: skip
    monkeypatch.setenv("LICENSE_BATCH_CLIENT_ID", APP)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)  # present in the environment: must appear nowhere
    code = main(["apply", str(_sheet(workdir)), *_target_args(server), "--preflight", "always", "--yes", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Permissions checked (Microsoft Graph: the service principal's appRoleAssignments): the identity has what " \
           "this run needs." in err  # fmt: skip
    assert _megan(server)["usageLocation"] == "DE"
    code = main(["config", "show", *_target_args(server)])
    out2, err2 = capsys.readouterr()
    assert code == 0 and "AZURE_CLIENT_SECRET (set, value hidden)" in out2
    written = [p for p in workdir.rglob("*") if p.is_file()]
    assert any(p.name == "journal.sqlite" for p in written) and any(p.name == "run.json" for p in written)
    for p in written:
        assert SECRET.encode() not in p.read_bytes(), p
    for text in (out, err, out2, err2):
        assert SECRET not in text


def test_whoami_shows_the_missing_permissions(
    server: SandboxServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", "sandbox-readonly-token")
    code = main(["whoami", *_target_args(server), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    obj = json.loads(out)
    assert obj["identity"]["app_id"] == "6b5e4d3c-2b1a-4098-8e7d-5c4b3a2f1e0d"
    assert obj["tenant"]["domain"] == "contoso.onmicrosoft.com"
    assert obj["checks"] == {"read-users": True, "read-licenses": True, "read-groups": True,
                             "assign-licenses": False, "usage-location": False,
                             "group-members": False, "powerplatform-allocations": "ok"}  # fmt: skip
    assert "  assign and remove licenses       LicenseAssignment.ReadWrite.All   NO" in err.splitlines()


def test_powerplatform_management_app_missing_is_named(server: SandboxServer) -> None:
    from batch.preflight import check_plan
    from batch.tenant import Tenant
    from batch.tenant.auth import StaticTokenCredential

    class Op:
        method, url, api = "PATCH", "/licensing/allocationsByEnvironment", "powerplatform"

    token = issue_token(server.db, READS, app_id=APP)
    target = Target(name="contoso.onmicrosoft.com", graph_url=server.graph_url,
                    powerplatform_url=server.powerplatform_url, client_id=APP)  # fmt: skip
    with Tenant(target, Limits(), StaticTokenCredential(token)) as tenant, pytest.raises(PermissionDeniedError) as e:
        check_plan(tenant, [Op()])
    assert str(e.value).endswith(
        "  - Power Platform management app: to allocate add-ons (refused: 403 on GET "
        "/environmentmanagement/environments).\n"
        "As a Power Platform administrator run 'pac admin application register --application-id " + APP + "'. "
        "Nothing was applied."
    )


def _jwt(claims: dict[str, Any]) -> str:
    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_permissions_from_the_access_token_roles_claim(server: SandboxServer) -> None:
    from batch.preflight import check_plan, token_claims
    from batch.tenant import Tenant

    token = _jwt({"tid": "11111111-1111-1111-1111-111111111111", "appid": APP, "app_displayname": "HR licensing",
                  "roles": ["User.Read.All", "LicenseAssignment.ReadWrite.All"], "idtyp": "app"})  # fmt: skip
    assert token_claims(token)["roles"] == ["User.Read.All", "LicenseAssignment.ReadWrite.All"]  # type: ignore[index]

    class Cred:
        def get_token(self, *scopes: str, **kw: Any) -> Any:
            from azure.core.credentials import AccessToken

            return AccessToken(token, 2_000_000_000)

    class Op:
        def __init__(self, method: str, url: str) -> None:
            self.method, self.url = method, url

    target = Target(name="contoso.onmicrosoft.com", graph_url=server.graph_url,
                    powerplatform_url=server.powerplatform_url)  # fmt: skip
    with Tenant(target, Limits(), Cred()) as tenant:
        ident = check_plan(tenant, [Op("POST", "/users/x/assignLicense")])
        assert ident.source == "the access token's roles claim" and ident.name == "HR licensing"
        with pytest.raises(PermissionDeniedError) as e:
            check_plan(tenant, [Op("POST", "/groups/g/members/$ref"), Op("POST", "/users/x/assignLicense")])
    assert str(e.value).splitlines()[:2] == [
        f"The signed-in application HR licensing (app id {APP}) lacks what this run needs in contoso.onmicrosoft.com "
        "(permissions read from the access token's roles claim):",
        "  - Microsoft Graph application permission GroupMember.ReadWrite.All: to add and remove group members "
        "(1 operations).",
    ]


def test_real_tenant_sign_in_failure_is_one_paragraph_exit_3(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(workdir))  # no az here
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    code = main(["validate", str(_sheet(workdir)), "--tenant", "contoso.onmicrosoft.com", "--cloud", "usgov",
                 "--auth", "azure-cli"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 3
    assert err == (
        "error: Could not sign in to contoso.onmicrosoft.com (cloud usgov, authority login.microsoftonline.us) for "
        "https://graph.microsoft.us/.default. Tried 1 method:\n"
        "  - azure-cli: Azure CLI not found on path\n"
        "To sign in: run 'az login --tenant <tenant>' (Azure CLI). Choose the method with --auth (or [tenant] auth).\n"
    )
    assert SECRET not in out + err


def test_unreachable_graph_url_fails_at_once_naming_the_host(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    code = main(["validate", str(_sheet(workdir)), "--graph-url", f"http://127.0.0.1:{port}/v1.0"])
    err = capsys.readouterr().err
    assert code == 3
    assert f"cannot reach 127.0.0.1:{port} (ConnectError: " in err


def test_every_command_help_has_an_example_and_the_exit_codes() -> None:
    from batch.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for name, p in [("license-batch", parser), *sub.choices.items()]:
        text = p.format_help()
        assert "example:\n  license-batch " in text, name
        assert "exit codes: 0 done; 1 some rows failed or were skipped; 2 the input or command line is unusable; " \
               "3 the tenant refused us (sign-in, permission, unreachable); 130 interrupted" in text, name  # fmt: skip


def test_addons_apply_without_the_management_app_fails_before_any_change(
    server: SandboxServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from batch.sandbox import tenant_info

    # The check is one cheap read: a registered management app may read and allocate alike (the sandbox's finer
    # PowerPlatform.Read / ReadWrite split is not something Power Platform has).
    monkeypatch.setenv("LICENSE_BATCH_CLIENT_ID", APP)
    sheet = workdir / "addons.csv"
    sheet.write_text("environment,add-on,amount\nContoso Production,AI Builder credits,+1\n", encoding="utf-8")
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", issue_token(server.db, READS, app_id=APP))
    before = tenant_info(server.db)
    code = main(["apply", str(sheet), *_target_args(server), "--preflight", "always", "--yes"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert ("  - Power Platform management app: to allocate add-ons (refused: 403 on GET "
            "/environmentmanagement/environments).\n"
            f"As a Power Platform administrator run 'pac admin application register --application-id {APP}'. "
            "Nothing was applied.\n") in err  # fmt: skip
    assert tenant_info(server.db) == before


def test_validate_without_user_read_names_the_permission(
    server: SandboxServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LICENSE_BATCH_TOKEN", issue_token(
        server.db, ["LicenseAssignment.Read.All", "Group.Read.All", "Organization.Read.All"], app_id=APP))  # fmt: skip
    monkeypatch.setenv("LICENSE_BATCH_CLIENT_ID", APP)
    code = main(["validate", str(_sheet(workdir)), *_target_args(server)])
    err = capsys.readouterr().err
    assert code == 3
    assert err.endswith(
        "(permissions read from Microsoft Graph: the service principal's appRoleAssignments):\n"
        "  - Microsoft Graph application permission User.Read.All: to read the users the sheet names.\n"
        "In the Entra admin center, App registrations > license-batch sandbox app 7d1e2f3a > API permissions > "
        "Add a permission > Microsoft Graph > Application permissions: add User.Read.All, then 'Grant admin "
        "consent'. Nothing was applied.\n"
    )
