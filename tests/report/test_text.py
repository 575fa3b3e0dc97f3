"""neutralise and the secret scrubbers, as plain functions."""

from __future__ import annotations

import pytest

from batch.report import neutralise, scrub_argv
from batch.report._text import iso_utc, iso_utc_precise, scrub_value

from .builders import T0

DANGEROUS = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "\nx", "  =1+1", "\uff1d1+1", "-", "=", "@"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_dangerous_text_gets_one_quote(value: str) -> None:
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize(
    "value", ["", "user@contoso.com", "SPE_E5", "1-2", "a=b", " plain", "'=already quoted", "E3 + E5", "0"]
)
def test_safe_text_is_unchanged(value: str) -> None:
    assert neutralise(value) == value


def test_neutralise_is_idempotent_and_handles_non_strings() -> None:
    assert neutralise(neutralise("=cmd|' /C calc'!A0")) == "'=cmd|' /C calc'!A0"
    assert neutralise(None) == ""
    assert neutralise(-5) == "'-5"  # a real negative number becomes text: documented
    assert neutralise(42) == "42"


def test_iso_utc() -> None:
    assert iso_utc(T0) == "2026-03-01T08:00:00Z"
    assert iso_utc(None) == ""
    assert iso_utc(T0.replace(tzinfo=None)) == "2026-03-01T08:00:00Z"
    assert iso_utc_precise(T0) == "2026-03-01T08:00:00.000Z"


def test_scrub_argv_hides_values_of_secret_options() -> None:
    argv = [
        "license-batch",
        "apply",
        "wave.xlsx",
        "--token",
        "s3cr3t-token",
        "--client-secret=hunter2",
        "--password",
        "pa55",
        "--api-key",
        "k3y",
        "--header",
        "Authorization: Bearer abc.def.ghi",
        "Bearer",
        "rawtoken",
        "--note",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "--sheet",
        "Token list",
    ]
    out = scrub_argv(argv)
    text = " ".join(out)
    for secret in ("s3cr3t-token", "hunter2", "pa55", "k3y", "abc.def.ghi", "rawtoken", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in text
    assert out[:4] == ["license-batch", "apply", "wave.xlsx", "--token"]
    assert out[4] == "***"
    assert "--client-secret=***" in out
    assert "Authorization: Bearer ***" in out
    assert out[-2:] == ["--sheet", "Token list"]  # a value that merely mentions a token is kept


def test_scrub_value_drops_secret_keys() -> None:
    out = scrub_value({"argv": ["x", "--token", "t"], "client_secret": "v", "note": "Bearer zzz", "n": 3})
    assert out == {"argv": ["x", "--token", "***"], "client_secret": "***", "note": "Bearer ***", "n": 3}
