"""The remote side: credentials, Graph over one httpx client, the tenant snapshot.

Public names are imported lazily (``import batch.tenant`` stays cheap: no httpx, no azure, no msgraph until
a name is used)::

    Tenant(target, limits, credential=None)   .snapshot(keys) .read_users(ids) await .post_batch(items)
    BatchReply / ItemReply                    a $batch answer matched by id
    parse_retry_after(value) -> float | None
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import StaticTokenCredential, TokenProvider, make_credential
    from .client import Tenant
    from .graph import BatchReply, ItemReply, build_batch
    from .http import parse_retry_after, user_path
    from .snapshot import choose_strategy

_NAMES = {
    "Tenant": ".client",
    "BatchReply": ".graph",
    "ItemReply": ".graph",
    "build_batch": ".graph",
    "parse_retry_after": ".http",
    "user_path": ".http",
    "choose_strategy": ".snapshot",
    "StaticTokenCredential": ".auth",
    "TokenProvider": ".auth",
    "make_credential": ".auth",
}


def __getattr__(name: str) -> Any:
    mod = _NAMES.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(mod, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BatchReply",
    "ItemReply",
    "StaticTokenCredential",
    "Tenant",
    "TokenProvider",
    "build_batch",
    "choose_strategy",
    "make_credential",
    "parse_retry_after",
    "user_path",
]
