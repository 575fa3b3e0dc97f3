"""Fixtures: a freshly seeded sandbox per test, served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batch.sandbox import SandboxConfig, SandboxServer, init_tenant, tenant_info

from .sbtest import USERS


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sandbox-template") / "sandbox.db"
    init_tenant(db, users=USERS, seed=1)
    return db


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "sandbox.db"
    shutil.copyfile(template_db, out)
    return out


@pytest.fixture
def info(db: Path) -> dict[str, Any]:
    return tenant_info(db)


def start(db: Path, **config: Any) -> SandboxServer:
    return SandboxServer(db, SandboxConfig(**config)).start()


@pytest.fixture
def server(db: Path) -> Iterator[SandboxServer]:
    sb = start(db)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def graph(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.graph_url, headers=server.auth_headers, timeout=30) as c:
        yield c


@pytest.fixture
def pp(server: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.powerplatform_url, headers=server.auth_headers, timeout=30) as c:
        yield c
