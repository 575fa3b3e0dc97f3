"""The sandbox tenant: a local Microsoft Graph + Power Platform licensing service over SQLite.

    from batch.sandbox import init_tenant, SandboxServer, SandboxConfig
    init_tenant("sandbox.db", users=500, seed=1)
    with SandboxServer("sandbox.db", SandboxConfig(time_scale=10)) as sb:
        sb.graph_url, sb.powerplatform_url, sb.token

Undocumented behaviour it had to choose lives in ``batch.sandbox.behaviour``.
"""

from __future__ import annotations

from .behaviour import READ_ONLY_TOKEN
from .config import SandboxConfig
from .seed import PERSONAS, SeedSummary, add_member, init_tenant, list_users, tenant_info
from .server import SandboxApp, SandboxServer, is_seeded, serve
from .store import issue_token

__all__ = [
    "PERSONAS",
    "READ_ONLY_TOKEN",
    "SandboxApp",
    "SandboxConfig",
    "SandboxServer",
    "SeedSummary",
    "add_member",
    "init_tenant",
    "is_seeded",
    "issue_token",
    "list_users",
    "serve",
    "tenant_info",
]
