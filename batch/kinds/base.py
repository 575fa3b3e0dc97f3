"""What a kind of change provides, and what the shared machinery asks of it.

A kind is like a resource type of a Terraform provider: it says how its rows are read, how they are checked
against the tenant (per row, across rows, and against its capacity pools), which operations bring the tenant
to what the rows ask, where each operation goes and how its effect is read back, and what the results show.
``jobs``, the journal, the engine, the pacer, the results writer and the CLI only talk to these two protocols.

Adding a kind: a folder under ``batch/kinds/`` with an object satisfying :class:`ChangeKind` (and a
:class:`OpHandler` per operation kind it plans), registered in ``batch/kinds/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..errors import Severity
from ..models import (
    Api,
    CapacityLine,
    CheckedAddon,
    CheckedRequest,
    Kind,
    Operation,
    OpKind,
    PlanOptions,
    Role,
    SeatChange,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
)
from ..sheets.catalog import ProductCatalog

Checked = CheckedRequest | CheckedAddon  # a kind may have its own record (batch.kinds.groups: CheckedGroup)


class ChangeKind(Protocol):
    kind: Kind
    title: str  # a sheet name in the results workbook: "Licenses", "Add-ons"
    state_label: str  # what before/after show: "Licenses", "Allocation"
    findings: Mapping[str, tuple[Severity, str]]  # its row finding codes

    def recognises(self, columns: Mapping[Role, int], headers: Sequence[str]) -> bool:
        """Do these detected columns make a sheet of this kind?"""
        ...

    def parse(self, sheet: Sheet, *, catalog: ProductCatalog | None) -> list[Any]:
        """The sheet's rows as this kind's requests (every row gives at least one)."""
        ...

    def user_keys(self, requests: Sequence[Any]) -> set[str]:
        """Users the snapshot must read for these requests."""
        ...

    def needs_powerplatform(self, requests: Sequence[Any]) -> bool: ...

    def validate(
        self,
        sheet: Sheet,
        requests: Sequence[Any],
        snapshot: TenantSnapshot,
        *,
        catalog: ProductCatalog | None,
        policy: ShortfallPolicy,
        reserve_of: Callable[[int], int],
    ) -> tuple[list[Checked], list[CapacityLine]]:
        """Every request checked (statuses and findings), and the capacity pools they touch."""
        ...

    def plan(
        self, checked: Sequence[Checked], snapshot: TenantSnapshot, options: PlanOptions
    ) -> tuple[list[Operation], list[SeatChange]]:
        """The operations that bring the tenant to what the READY requests ask, and the pool changes."""
        ...

    def action_text(self, checked: Checked, snapshot: TenantSnapshot) -> str:
        """What the request asks, in words, for the results ("assign SPE_E5", "AI: 100 -> 500")."""
        ...

    def target(self, checked: Checked, snapshot: TenantSnapshot) -> tuple[str | None, str]:
        """(target id, its state before as text) for the results of a request that planned nothing."""
        ...

    def state_text(self, tokens: Sequence[str], names: Mapping[str, str]) -> str:
        """An operation's before/after tokens as people read them (``names``: the run's pool names)."""
        ...

    def describe(self, operations: Sequence[Operation], snapshot: TenantSnapshot) -> list[str]:
        """One line per target for ``plan``'s output."""
        ...


class OpHandler(Protocol):
    """Where one kind of operation goes, and how its effect is read back when the answer was lost."""

    op_kind: OpKind
    api: Api
    prerequisite: bool  # it only prepares another operation (its before/after do not describe the row)
    what: str  # for "could not <what> first": "set the usage location"

    def read_back(self, tenant: Any, target_ids: Sequence[str]) -> Mapping[str, Any]:
        """Current state of the targets (blocking); targets that no longer exist are left out."""
        ...

    def in_effect(self, op: Operation, state: Any) -> bool:
        """Does ``state`` (one value of :meth:`read_back`) already show the operation's after-state?"""
        ...


# Optional hooks (looked up with getattr; a kind without them is unaffected):
#
# ChangeKind.resolve(tenant, sheet, requests, snapshot) -> requests
#     read what the kind needs beyond users/SKUs into the snapshot before validation (groups: the named groups,
#     their licenses and members), and expand rows that name a set of users (one InputRow per user reached;
#     ``jobs`` moves the following sheets' row indexes along).
# ChangeKind.describe_rules(checked) -> lines    extra lines for ``plan`` (how many users each rule reached).
# OpHandler.amend(op, state) -> Operation | None
#     after a 400 on ``op``, the operation re-planned against the target's state read back (groups: an add
#     of 20 without those already members); None: the 400 stands.
# OpHandler.observe ... see ``batch.apply.observe``: changes that complete asynchronously after the write
#     succeeded (a group's licenses reach its new members later) are looked at per row after the writes.
