"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

#: Variables that would point a test at another target, credential, folder or product list.
_TARGET_VARS = ("LICENSE_BATCH_GRAPH_URL", "LICENSE_BATCH_POWERPLATFORM_URL", "LICENSE_BATCH_TENANT",
                "LICENSE_BATCH_TOKEN", "LICENSE_BATCH_REPORT_DIR", "LICENSE_BATCH_PRODUCT_LIST",
                "LICENSE_BATCH_CLIENT_ID", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of its own with its own embedded sandbox (seeded from the default seed on first use) and an
    empty cache (no product list downloaded: offline behaviour)."""
    monkeypatch.chdir(tmp_path)
    for var in _TARGET_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


JournalSql = Callable[..., list[tuple[object, ...]]]


def _journal_sql(run_dir: Path, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    con = sqlite3.connect(run_dir / "journal.sqlite")
    try:
        with con:
            return con.execute(sql, args).fetchall()
    finally:
        con.close()


@pytest.fixture
def journal_sql() -> JournalSql:
    """``journal_sql(run_dir, sql, args=())``: one statement on a run's journal (to read it, or to leave an
    operation's state as a crash would)."""
    return _journal_sql
