"""Kinds of change: what one kind of input row asks of the tenant, from reading it to reporting it.

Each kind is a folder here (``licenses/``, ``addons/``) with its rows, checks, capacity pools, plan,
operations and result columns; the shared machinery (``jobs``, the journal, the pacer, the results writer,
the CLI) does not know their details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..models import Kind, OpKind, Role
from .addons import ADDONS
from .addons import OP_HANDLERS as _ADDON_OPS
from .base import ChangeKind, Checked, OpHandler
from .groups import GROUPS
from .groups import OP_HANDLERS as _GROUP_OPS
from .licenses import LICENSES
from .licenses import OP_HANDLERS as _LICENSE_OPS

#: Every kind, in the order a sheet's columns are tried against them.
#: Groups first: a membership sheet may carry a license column too (what the group should give).
KINDS: dict[Kind, ChangeKind] = {Kind.GROUPS: GROUPS, Kind.LICENSES: LICENSES, Kind.ADDONS: ADDONS}

#: Every operation kind's handler (where it goes, how its effect is read back).
OP_HANDLERS: dict[OpKind, OpHandler] = {h.op_kind: h for h in (*_LICENSE_OPS, *_ADDON_OPS, *_GROUP_OPS)}


def kind_of(kind: Kind | str) -> ChangeKind:
    return KINDS[Kind(kind)]


def detect_kind(columns: Mapping[Role, int], headers: Sequence[str], *, wanted: Kind | None = None) -> Kind | None:
    """The kind these columns make (``wanted`` forces one: None when its columns are not there)."""
    if wanted is not None:
        return wanted if KINDS[wanted].recognises(columns, headers) else None
    for k, impl in KINDS.items():
        if impl.recognises(columns, headers):
            return k
    return None


def handler(op_kind: OpKind) -> OpHandler:
    return OP_HANDLERS[op_kind]


__all__ = [
    "KINDS", "OP_HANDLERS", "ChangeKind", "Checked", "OpHandler", "detect_kind", "handler", "kind_of", "kind_of_checked"
]


def kind_of_checked(checked: Checked) -> ChangeKind:
    """The kind a checked request belongs to."""
    from ..models import CheckedAddon

    own = getattr(type(checked), "kind", None)  # a kind's own checked record names its kind
    if isinstance(own, Kind):
        return KINDS[own]
    return KINDS[Kind.ADDONS] if isinstance(checked, CheckedAddon) else KINDS[Kind.LICENSES]
