from pathlib import Path

import pytest

from batch.config import SANDBOX_DEV_TOKEN, Limits, load_settings, parse_column_map
from batch.errors import ConfigError


def test_no_tenant_configured_means_embedded_sandbox(tmp_path: Path) -> None:
    s = load_settings(config_file=None, env={}, report_dir=tmp_path)
    assert s.target.embedded_sandbox and s.target.is_sandbox
    assert s.target.name == "sandbox"
    assert s.limits.write_quota == 3000 and s.limits.write_window_seconds == 150.0


def test_graph_url_from_env_strips_trailing_slash() -> None:
    s = load_settings(env={"LICENSE_BATCH_GRAPH_URL": "http://127.0.0.1:8080/v1.0/"})
    assert s.target.graph_url == "http://127.0.0.1:8080/v1.0"
    assert s.target.is_loopback and s.target.is_sandbox and not s.target.embedded_sandbox


def test_real_tenant_uses_cloud_hosts_and_is_not_sandbox(tmp_path: Path) -> None:
    cfg = tmp_path / "lb.toml"
    cfg.write_text('[tenant]\nname = "contoso.onmicrosoft.com"\ncloud = "usgov"\n', encoding="utf-8")
    s = load_settings(config_file=cfg, env={})
    assert s.target.graph_url == "https://graph.microsoft.us/v1.0"
    assert not s.target.is_sandbox


def test_time_scale_shrinks_windows_for_the_embedded_sandbox() -> None:
    s = load_settings(env={"LICENSE_BATCH_SANDBOX_TIME_SCALE": "100"})
    assert s.limits.write_window_seconds == pytest.approx(1.5)
    assert s.limits.write_quota == 3000


def test_unknown_cloud_and_limit_are_config_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "lb.toml"
    cfg.write_text('[tenant]\ncloud = "mars"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, env={})
    assert str(e.value) == (
        f"{cfg}: The setting [tenant] cloud must be one of global, usgov, usgov-dod, china, not 'mars'."
    )
    cfg.write_text("[limits]\nwrites_per_hour = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, env={})
    assert str(e.value).startswith(f"{cfg}: Unknown key 'writes_per_hour' in [limits]. Known keys there: write_quota,")


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="The config file does not exist"):
        load_settings(config_file=tmp_path / "nope.toml", env={})


def test_parse_column_map() -> None:
    assert parse_column_map("user=Work Email, sku = License") == {"user": "Work Email", "sku": "License"}
    with pytest.raises(ConfigError) as e:
        parse_column_map("user")
    assert str(e.value) == (
        "--map entry 'user' is not of the form role=Header. Write it like --map \"user=Work Email,sku=License\"."
    )


def test_limits_scaled_rejects_non_positive() -> None:
    with pytest.raises(ConfigError):
        Limits().scaled(0)


def test_dev_token_is_not_empty() -> None:
    assert SANDBOX_DEV_TOKEN


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[limits]\nwrite_quota = \"abc\"\n", "The setting [limits] write_quota must be a whole number, not 'abc'."),
        ("[limits]\nbatch_size = 25\n", "The setting [limits] batch_size must be at least 1 and at most 20, not 25."),
        ("[limits]\nmax_in_flight = 0\n", "The setting [limits] max_in_flight must be at least 1 and at most 64"),
        ("[sandbox]\nusers = \"many\"\n", "The setting [sandbox] users must be a whole number, not 'many'."),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, table: str, message: str) -> None:
    cfg = tmp_path / "lb.toml"
    cfg.write_text(table, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, env={})
    assert str(e.value).startswith(f"{cfg}: {message}")


def test_bad_time_scale_from_env() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"LICENSE_BATCH_SANDBOX_TIME_SCALE": "abc"})
    assert str(e.value) == "The environment variable LICENSE_BATCH_SANDBOX_TIME_SCALE must be a number, not 'abc'."


# ------------------------------------------------------------------ one strict loader: unknown keys, precedence


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tenant]\ngraph-url = "http://127.0.0.1:1/v1.0"\n',
         "Unknown key 'graph-url' in [tenant]. Did you mean 'graph_url'?"),
        ("[sandbox]\ntime_scael = 10\n", "Unknown key 'time_scael' in [sandbox]. Did you mean 'time_scale'?"),
        ("[sandbox]\nlatncy = 1\n", "Unknown key 'latncy' in [sandbox]. Did you mean 'latency'?"),
        ('report_dri = "x"\n', "Unknown key 'report_dri' in the top level. Did you mean 'report_dir'?"),
        ("[tenant]\nauth = \"device_code\"\n",
         "The setting [tenant] auth must be one of auto, env, certificate, managed-identity, azure-cli, device-code, "
         "not 'device_code'. Did you mean 'device-code'?"),
        ("[sandbox]\nfault_503_rate = 1.5\n",
         "The setting [sandbox] fault_503_rate must be at least 0.0 and at most 1.0, not 1.5."),
        ("[sandbox]\nthrottling = \"maybe\"\n", "The setting [sandbox] throttling must be true or false, not 'maybe'."),
    ],
)  # fmt: skip
def test_unknown_keys_name_file_key_and_nearest(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "license-batch.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, env={})
    assert str(e.value) == f"{cfg}: {message}"


def test_unknown_environment_variable_names_the_nearest() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(env={"LICENSE_BATCH_SANDBOX_TIMESCALE": "3"})
    assert str(e.value) == (
        "The environment variable LICENSE_BATCH_SANDBOX_TIMESCALE is not a license-batch setting. "
        "Did you mean LICENSE_BATCH_SANDBOX_TIME_SCALE?"
    )


def test_precedence_cli_over_env_over_file_and_sources(tmp_path: Path) -> None:
    cfg = tmp_path / "license-batch.toml"
    cfg.write_text(
        'report_dir = "from-file"\n[tenant]\nname = "contoso.onmicrosoft.com"\ncloud = "usgov"\nauth = "env"\n'
        "[limits]\nmax_in_flight = 4\n[sandbox]\nlatency = 1.0\nfault_seed = 3\n",
        encoding="utf-8",
    )
    env = {"LICENSE_BATCH_CLOUD": "china", "LICENSE_BATCH_REPORT_DIR": "from-env",
           "LICENSE_BATCH_SANDBOX_FAULT_SEED": "7"}
    s = load_settings(config_file=cfg, env=env, report_dir="from-cli", auth="azure-cli")
    assert s.report_dir == Path("from-cli") and s.sources["report_dir"] == (Path("from-cli"), "cli")
    assert s.target.cloud == "china" and s.sources["tenant.cloud"] == ("china", "env")
    assert s.target.graph_url == "https://microsoftgraph.chinacloudapi.cn/v1.0"
    assert s.target.powerplatform_url == "https://api.powerplatform.partner.microsoftonline.cn"
    assert s.target.authority == "login.chinacloudapi.cn"
    assert s.target.auth == "azure-cli" and s.sources["tenant.auth"] == ("azure-cli", "cli")
    assert s.limits.max_in_flight == 4 and s.sources["limits.max_in_flight"] == (4, "file")
    assert s.sources["limits.batch_size"] == (20, "default")
    assert s.sandbox_overrides == {"latency": 1.0, "fault_seed": 7}


@pytest.mark.parametrize(
    ("cloud", "graph", "pp", "authority"),
    [
        ("global", "https://graph.microsoft.com/v1.0", "https://api.powerplatform.com", "login.microsoftonline.com"),
        ("usgov", "https://graph.microsoft.us/v1.0", "https://api.gov.powerplatform.microsoft.us",
         "login.microsoftonline.us"),
        ("usgov-dod", "https://dod-graph.microsoft.us/v1.0", "https://api.high.powerplatform.microsoft.us",
         "login.microsoftonline.us"),
        ("china", "https://microsoftgraph.chinacloudapi.cn/v1.0",
         "https://api.powerplatform.partner.microsoftonline.cn", "login.chinacloudapi.cn"),
    ],
)  # fmt: skip
def test_cloud_selects_graph_powerplatform_and_authority_hosts(cloud: str, graph: str, pp: str, authority: str) -> None:
    from azure.identity import AzureAuthorityHosts

    s = load_settings(env={}, tenant="contoso.onmicrosoft.com", cloud=cloud)
    assert (s.target.graph_url, s.target.powerplatform_url, s.target.authority) == (graph, pp, authority)
    assert authority in {AzureAuthorityHosts.AZURE_PUBLIC_CLOUD, AzureAuthorityHosts.AZURE_GOVERNMENT,
                         AzureAuthorityHosts.AZURE_CHINA}  # fmt: skip


def test_sandbox_config_uses_the_same_loader(tmp_path: Path) -> None:
    from batch.sandbox import SandboxConfig

    cfg = tmp_path / "license-batch.toml"
    cfg.write_text("[sandbox]\ntime_scael = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        SandboxConfig.load(toml_path=cfg, env={})
    assert str(e.value) == f"{cfg}: Unknown key 'time_scael' in [sandbox]. Did you mean 'time_scale'?"
    with pytest.raises(ConfigError) as e:
        SandboxConfig.from_env({"LICENSE_BATCH_SANDBOX_WRITE_QUOTA": "0"})
    assert str(e.value) == "The environment variable LICENSE_BATCH_SANDBOX_WRITE_QUOTA must be at least 1, not '0'."


def test_show_settings_hides_secrets(tmp_path: Path) -> None:
    from batch.config import show_settings

    env = {"AZURE_CLIENT_SECRET": "s3cr3t-value-xyz", "AZURE_CLIENT_ID": "22222222-2222-2222-2222-222222222222"}
    s = load_settings(env=env, tenant="contoso.onmicrosoft.com")
    text = "\n".join(show_settings(s, env=env))
    assert "s3cr3t-value-xyz" not in text
    assert "credentials in the environment: AZURE_CLIENT_SECRET (set, value hidden)" in text
    assert "tenant.client_id" in text and "22222222-2222-2222-2222-222222222222  [env]" in text


@pytest.mark.parametrize("cloud", ["global", "usgov", "usgov-dod", "china"])
def test_token_scopes_follow_the_cloud(cloud: str) -> None:
    from batch.tenant.auth import graph_scope, powerplatform_scope

    t = load_settings(env={}, tenant="contoso.onmicrosoft.com", cloud=cloud).target
    assert graph_scope(t.graph_url) == "https://" + t.graph_url.split("/")[2] + "/.default"
    assert powerplatform_scope(t.powerplatform_url) == t.powerplatform_url + "/.default"


def test_config_show_command_prints_origins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from batch.cli import main

    monkeypatch.chdir(tmp_path)
    for var in [v for v in __import__("os").environ if v.startswith(("LICENSE_BATCH_", "AZURE_"))]:
        monkeypatch.delenv(var)
    (tmp_path / "license-batch.toml").write_text('[tenant]\nname = "contoso.onmicrosoft.com"\n', encoding="utf-8")
    monkeypatch.setenv("LICENSE_BATCH_CLOUD", "usgov")
    assert main(["config", "show", "--auth", "azure-cli"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "config file: license-batch.toml"
    assert out[1] == ("Target: tenant contoso.onmicrosoft.com (cloud usgov; Graph https://graph.microsoft.us/v1.0; "
                      "Power Platform https://api.gov.powerplatform.microsoft.us; sign-in azure-cli).")  # fmt: skip
    rows = {line.split("=")[0].strip(): line.rsplit("[", 1)[1].rstrip("]") for line in out[2:-1]}
    assert (rows["tenant.name"], rows["tenant.cloud"], rows["tenant.auth"], rows["limits.batch_size"]) == (
        "file", "env", "cli", "default")
    assert out[-1] == "credentials in the environment: none"


def test_shortfall_and_reserve_options_default_to_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch.cli import _settings, build_parser

    monkeypatch.chdir(tmp_path)
    (tmp_path / "license-batch.toml").write_text('on_shortfall = "partial"\nreserve = "5%"\n', encoding="utf-8")
    args = build_parser().parse_args(["validate", "wave.csv"])
    s = _settings(args)
    assert (args.on_shortfall, args.reserve) == ("partial", "5%")
    assert s.sources["on_shortfall"] == ("partial", "file")
    args = build_parser().parse_args(["validate", "wave.csv", "--on-shortfall", "stop"])
    _settings(args)
    assert args.on_shortfall == "stop"


def test_powerplatform_table_is_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "lb.toml"
    cfg.write_text('[powerplatform]\nallocations_api = "2024-10-01"\n', encoding="utf-8")
    assert load_settings(config_file=cfg, env={}).allocations_api == "2024-10-01"
    cfg.write_text('[powerplatform]\nallocations_api = "2023"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, env={})
    assert str(e.value) == (f"{cfg}: The setting [powerplatform] allocations_api must be one of 2022-03-01-preview, "
                            "2024-10-01, not '2023'.")  # fmt: skip
