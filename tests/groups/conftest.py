"""Fixtures for the groups kind: a seeded sandbox copied per test, the CLI run in its folder, helpers that
shape the tenant server-side (extra groups, seats, members) and read the workbooks back."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from batch.cli import main

USERS = 120


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from batch.sandbox import init_tenant

    db = tmp_path_factory.mktemp("groups-template") / "sandbox.db"
    init_tenant(db, users=USERS, seed=1)
    return db


@pytest.fixture
def workdir(tmp_path: Path, template_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for var in ("LICENSE_BATCH_GRAPH_URL", "LICENSE_BATCH_TENANT", "LICENSE_BATCH_TOKEN", "LICENSE_BATCH_REPORT_DIR"):
        monkeypatch.delenv(var, raising=False)
    shutil.copyfile(template_db, tmp_path / "sandbox.db")
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_DB", str(tmp_path / "sandbox.db"))
    monkeypatch.setenv("LICENSE_BATCH_SANDBOX_GROUP_PROCESSING_SECONDS", "0.1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def rows_of(path: Path, sheet: str) -> list[dict[str, Any]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    values = list(wb[sheet].iter_rows(values_only=True))
    wb.close()
    head = [str(h) for h in values[0]]
    return [dict(zip(head, r, strict=False)) for r in values[1:]]


def only_run_dir(workdir: Path) -> Path:
    runs = sorted((workdir / "reports").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


class Db:
    """The sandbox's state, read and shaped server-side (only while no server writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _con(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path)
        con.row_factory = sqlite3.Row
        return con

    def q(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        con = self._con()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def x(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        con = self._con()
        try:
            with con:
                con.execute(sql, args)
        finally:
            con.close()

    def group_id(self, name: str) -> str:
        return str(self.q("SELECT id FROM groups WHERE display_name=?", (name,))[0]["id"])

    def sku_id(self, part: str) -> str:
        return str(self.q("SELECT sku_id FROM skus WHERE part_number=?", (part,))[0]["sku_id"])

    def add_group(self, name: str, *, sku: str | None = None, rule: str | None = None) -> str:
        gid = str(uuid.uuid4())
        n = self.q("SELECT MAX(n) AS n FROM groups")[0]["n"] + 1
        lic = json.dumps([{"disabledPlans": [], "skuId": self.sku_id(sku)}]) if sku else "[]"
        types = json.dumps(["DynamicMembership"]) if rule else "[]"
        self.x("INSERT INTO groups(n, id, display_name, description, mail_nickname, mail, mail_enabled, "
               "security_enabled, group_types, created, licenses, processing_state, membership_rule) "
               "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
               (n, gid, name, "", name.replace(" ", ""), None, 0, 1, types, "2026-01-05T09:00:00Z", lic, None, rule))
        return gid

    def user(self, upn_prefix: str) -> sqlite3.Row:
        return self.q("SELECT * FROM users WHERE upn_lower LIKE ?", (upn_prefix.lower() + "%",))[0]

    def users(self, where: str = "1", args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self.q(f"SELECT * FROM users WHERE {where} ORDER BY n", args)

    def members(self, gid: str) -> set[str]:
        return {r["user_id"] for r in self.q("SELECT user_id FROM members WHERE group_id=?", (gid,))}

    def add_member(self, gid: str, uid: str) -> None:
        n = self.q("SELECT COALESCE(MAX(n), 0) + 1 AS n FROM members WHERE group_id=?", (gid,))[0]["n"]
        self.x("INSERT INTO members VALUES(?,?,?)", (gid, uid, n))

    def states(self, uid: str, gid: str) -> list[dict[str, Any]]:
        lic = json.loads(self.q("SELECT licenses FROM users WHERE id=?", (uid,))[0]["licenses"])
        return [s for s in lic if s.get("assignedByGroup") == gid]

    def set_seats(self, part: str, *, free: int) -> None:
        self.x("UPDATE skus SET enabled = consumed + ? WHERE part_number=?", (free, part))

    def due_now(self) -> None:
        self.x("UPDATE group_jobs SET due = 0")


@pytest.fixture
def db(workdir: Path) -> Db:
    return Db(workdir / "sandbox.db")
