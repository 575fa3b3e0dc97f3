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
    with pytest.raises(ConfigError, match="Unknown cloud 'mars'"):
        load_settings(config_file=cfg, env={})
    cfg.write_text("[limits]\nwrites_per_hour = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Unknown setting in \[limits\]: .writes_per_hour."):
        load_settings(config_file=cfg, env={})


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
    assert str(e.value).startswith(message)


def test_bad_time_scale_from_env() -> None:
    with pytest.raises(ConfigError, match=r"The setting sandbox time_scale must be a number, not 'abc'\."):
        load_settings(env={"LICENSE_BATCH_SANDBOX_TIME_SCALE": "abc"})
