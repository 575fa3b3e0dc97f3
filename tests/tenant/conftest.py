"""A sandbox tenant over real HTTP on 127.0.0.1, shared by the tenant tests of one module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from batch.config import Limits, Target
from batch.tenant import Tenant


@dataclass
class Sandbox:
    server: Any
    summary: Any
    target: Target

    def tenant(self, **limits: Any) -> Tenant:
        return Tenant(self.target, Limits(**limits))


def start_sandbox(db: Path, users: int, seed: int, **config: Any) -> tuple[Any, Any]:
    from batch.sandbox import SandboxConfig, SandboxServer, init_tenant

    summary = init_tenant(db, users=users, seed=seed)
    server = SandboxServer(db, SandboxConfig(**config))
    server.start()
    return server, summary


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """1,500 users: two pages at $top=999, guests, licensing groups."""
    server, summary = start_sandbox(tmp_path_factory.mktemp("sb") / "sandbox.db", 1500, 7)
    try:
        yield Sandbox(server, summary, Target(name="sandbox", graph_url=server.graph_url,
                                              powerplatform_url=server.powerplatform_url))  # fmt: skip
    finally:
        server.stop()
