"""The sandbox's state: one SQLite file (WAL), safe under concurrent requests and across processes.

Each thread has its own connection. Reads run in autocommit; every change runs inside
``write()`` (BEGIN IMMEDIATE, so checking and taking a seat is one atomic step even when several
processes serve the same file). ``write()`` nests: an inner call becomes a SAVEPOINT, so a whole
``$batch`` is one transaction while each item still succeeds or fails on its own.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ..config import SANDBOX_DEV_TOKEN
from . import behaviour

SCHEMA_VERSION = "2"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(token TEXT PRIMARY KEY, app_id TEXT NOT NULL, scopes TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS skus(sku_id TEXT PRIMARY KEY, part_number TEXT NOT NULL, applies_to TEXT NOT NULL,
    capability_status TEXT NOT NULL, enabled INTEGER NOT NULL, suspended INTEGER NOT NULL DEFAULT 0,
    warning INTEGER NOT NULL DEFAULT 0, locked_out INTEGER NOT NULL DEFAULT 0, consumed INTEGER NOT NULL DEFAULT 0,
    subscription_ids TEXT NOT NULL, plans TEXT NOT NULL, ord INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users(n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, upn TEXT NOT NULL,
    upn_lower TEXT NOT NULL UNIQUE, mail TEXT, mail_lower TEXT, display_name TEXT, given_name TEXT, surname TEXT,
    job_title TEXT, department TEXT, office_location TEXT, city TEXT, country TEXT, usage_location TEXT,
    preferred_language TEXT, mobile_phone TEXT, business_phones TEXT NOT NULL DEFAULT '[]',
    account_enabled INTEGER NOT NULL, user_type TEXT NOT NULL, company_name TEXT, created TEXT NOT NULL,
    licenses TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS users_mail ON users(mail_lower);
CREATE INDEX IF NOT EXISTS users_department ON users(department);
CREATE INDEX IF NOT EXISTS users_usage_location ON users(usage_location);
CREATE TABLE IF NOT EXISTS groups(n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
    description TEXT, mail_nickname TEXT NOT NULL, mail TEXT, mail_enabled INTEGER NOT NULL,
    security_enabled INTEGER NOT NULL, group_types TEXT NOT NULL DEFAULT '[]', created TEXT NOT NULL,
    licenses TEXT NOT NULL DEFAULT '[]', processing_state TEXT);
CREATE INDEX IF NOT EXISTS groups_name ON groups(display_name);
CREATE TABLE IF NOT EXISTS members(group_id TEXT NOT NULL, user_id TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(group_id, user_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS members_user ON members(user_id);
CREATE TABLE IF NOT EXISTS subgroups(group_id TEXT NOT NULL, member_id TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY(group_id, member_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subgroups_member ON subgroups(member_id);
CREATE TABLE IF NOT EXISTS group_jobs(id INTEGER PRIMARY KEY, group_id TEXT NOT NULL, user_id TEXT,
    due REAL NOT NULL);
CREATE TABLE IF NOT EXISTS environments(n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
    type TEXT NOT NULL, geo TEXT NOT NULL, azure_region TEXT NOT NULL, state TEXT NOT NULL, url TEXT,
    domain_name TEXT, created TEXT NOT NULL, version TEXT);
CREATE TABLE IF NOT EXISTS currencies(currency_type TEXT PRIMARY KEY, purchased INTEGER NOT NULL,
    consumed INTEGER NOT NULL DEFAULT 0, last_updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS allocations(environment_id TEXT NOT NULL, currency_type TEXT NOT NULL,
    allocated INTEGER NOT NULL, auto_allocated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(environment_id, currency_type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS allocation_rules(environment_id TEXT NOT NULL, currency_type TEXT NOT NULL,
    rule_type TEXT NOT NULL, enabled INTEGER NOT NULL,
    PRIMARY KEY(environment_id, currency_type, rule_type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS environment_policies(environment_id TEXT PRIMARY KEY, group_name TEXT NOT NULL,
    tenant_pool_locked INTEGER NOT NULL);
"""

TABLES = ("meta", "tokens", "skus", "users", "groups", "members", "subgroups", "group_jobs", "environments",
          "currencies", "allocations", "allocation_rules", "environment_policies")  # fmt: skip
#: Tables of older schemas, dropped on a reset.
LEGACY_TABLES = ("enforcement",)

#: Every permission the tool uses (the development token carries them all).
ALL_SCOPES = (
    "User.Read.All",
    "User.ReadWrite.All",
    "LicenseAssignment.Read.All",
    "LicenseAssignment.ReadWrite.All",
    "Group.Read.All",
    "GroupMember.ReadWrite.All",
    "Organization.Read.All",
    "PowerPlatform.Read",
    "PowerPlatform.ReadWrite",
)
READ_SCOPES = ("User.Read.All", "LicenseAssignment.Read.All", "Group.Read.All", "Organization.Read.All",
               "PowerPlatform.Read")  # fmt: skip
DEV_APP_ID = "5a4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"
READ_ONLY_APP_ID = "6b5e4d3c-2b1a-4098-8e7d-5c4b3a2f1e0d"


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.row_factory = sqlite3.Row
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Statement by statement: executescript() would commit the caller's transaction."""
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database seeded by an older version up to this schema (new tables and columns; nothing removed).

    Schema 1 kept one set of enforcement rules per environment (beside the currencies) and had no
    ``auto_allocated`` column and no environment-group policies."""
    create_schema(conn)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(allocations)")}
    if "auto_allocated" not in cols:
        conn.execute("ALTER TABLE allocations ADD COLUMN auto_allocated INTEGER NOT NULL DEFAULT 0")
    # group membership rows: rule-based groups, and the employeeType a rule row may filter on
    if "membership_rule" not in {r[1] for r in conn.execute("PRAGMA table_info(groups)")}:
        conn.execute("ALTER TABLE groups ADD COLUMN membership_rule TEXT")
    ucols = {r[1] for r in conn.execute("PRAGMA table_info(users)")}
    if "employee_type" not in ucols:
        conn.execute("ALTER TABLE users ADD COLUMN employee_type TEXT")
    if "state" not in ucols:  # the user's state or province (a filter attribute)
        conn.execute("ALTER TABLE users ADD COLUMN state TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS users_company ON users(company_name)")


class Store:
    """Per-thread connections to one sandbox database, with nesting write transactions."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    @property
    def conn(self) -> sqlite3.Connection:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            c = connect(self.path)
            self._local.conn = c
            self._local.depth = 0
            with self._lock:
                self._all.append(c)
        return c

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (outermost) or SAVEPOINT (nested); commit or roll back on exit."""
        c = self.conn
        depth: int = self._local.depth
        if depth == 0:
            c.execute("BEGIN IMMEDIATE")
        else:
            c.execute(f"SAVEPOINT sp{depth}")
        self._local.depth = depth + 1
        try:
            yield c
        except BaseException:
            self._local.depth = depth
            if depth == 0:
                c.execute("ROLLBACK")
            else:
                c.execute(f"ROLLBACK TO sp{depth}")
                c.execute(f"RELEASE sp{depth}")
            raise
        self._local.depth = depth
        if depth == 0:
            c.execute("COMMIT")
        else:
            c.execute(f"RELEASE sp{depth}")

    def meta(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT key, value FROM meta")}

    def close(self) -> None:
        with self._lock:
            for c in self._all:
                with contextlib.suppress(sqlite3.ProgrammingError):  # closed from another thread already
                    c.close()
            self._all.clear()
        self._local = threading.local()


# ------------------------------------------------------------------------------------------ tokens


def install_default_tokens(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO tokens VALUES(?,?,?,?)",
        (SANDBOX_DEV_TOKEN, DEV_APP_ID, " ".join(ALL_SCOPES), "development token: every permission"),
    )
    conn.execute(
        "INSERT OR REPLACE INTO tokens VALUES(?,?,?,?)",
        (behaviour.READ_ONLY_TOKEN, READ_ONLY_APP_ID, " ".join(READ_SCOPES), "read-only development token"),
    )


def issue_token(db: str | Path, scopes: tuple[str, ...] | list[str], *, app_id: str | None = None) -> str:
    """Mint a sandbox token carrying ``scopes`` (e.g. for a test of a missing permission)."""
    import secrets
    import uuid

    token = "sandbox-" + secrets.token_urlsafe(24)
    conn = connect(db)
    try:
        conn.execute(
            "INSERT INTO tokens VALUES(?,?,?,?)", (token, app_id or str(uuid.uuid4()), " ".join(scopes), "issued")
        )
    finally:
        conn.close()
    return token
