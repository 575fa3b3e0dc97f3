"""Typed records passed between the pipeline stages.

    sheet --read--> Sheet + LicenseRequest --validate(TenantSnapshot)--> Validation --plan--> Plan
          --apply--> RunResult (RowResult per input row) --report--> results.xlsx/.csv

Every record here is plain data: no I/O, no methods that talk to anything. GUIDs are kept lower-case;
user look-up keys (UPN, mail, object id) are compared case-insensitively via ``TenantSnapshot.find_user``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from .errors import RowFinding

# ------------------------------------------------------------------------------------------- sheets


class Role(StrEnum):
    """What a column of the input sheet means."""

    USER = "user"  # userPrincipalName, UPN, email, mail, work email, object id
    SKU = "sku"  # skuId, skuPartNumber or product name; several per cell allowed
    ACTION = "action"  # assign | remove | replace (swap)
    FROM_SKU = "from_sku"  # replace: the license to take away
    TO_SKU = "to_sku"  # replace: the license to give (a SKU column serves too)
    DISABLED_PLANS = "disabled_plans"  # service plan names or ids, ; or , separated
    USAGE_LOCATION = "usage_location"  # ISO 3166 alpha-2 or a country name
    PRIORITY = "priority"  # optional: lower number = served first under --on-shortfall partial
    # environment-to-add-on sheets (batch.kinds.addons)
    ENVIRONMENT = "environment"  # Power Platform environment: id, Default-{tenantId} or display name
    ADDON = "addon"  # add-on: currencyType (AI, AppPass, ...) or a friendly name ("AI Builder credits")
    AMOUNT = "amount"  # absolute (500) or a change (+500, -200); 0 unassigns


class Action(StrEnum):
    ASSIGN = "assign"
    REMOVE = "remove"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class InputRow:
    """One data row exactly as the user gave it."""

    index: int  # 0-based position among the data rows: the input order
    number: int  # the row number the user sees in Excel (1-based, title and header rows counted)
    cells: tuple[str, ...]  # every cell as text (trimmed), one per header


@dataclass(slots=True)
class Sheet:
    """A read input sheet: headers, rows and what each column means."""

    path: Path
    format: str  # "csv", "xlsx", "xlsm", "xls", "ods"
    sheet_name: str | None  # None for CSV
    encoding: str | None  # CSV only
    delimiter: str | None  # CSV only
    header_row: int  # Excel row number of the header row
    headers: tuple[str, ...]  # as in the file; duplicates made unique with " (2)", blanks as "Column N"
    rows: list[InputRow]
    columns: dict[Role, int]  # role -> index into headers
    sha256: str = ""  # of the file's bytes
    blank_rows: int = 0  # interior rows with no value at all (not data; counted so they are not silent)
    notes: list[str] = field(default_factory=list)  # e.g. "header found on row 3 below 2 title rows"

    def header_for(self, role: Role) -> str | None:
        i = self.columns.get(role)
        return None if i is None else self.headers[i]


@dataclass(frozen=True, slots=True)
class LicenseRequest:
    """One license change asked for by one row. A cell with several licenses gives several requests.

    A row that cannot be turned into a request at all (empty user cell, unknown action word) still gives
    one request, with empty fields and the finding that says why, so no row is dropped.
    """

    row: int  # InputRow.index
    row_number: int  # InputRow.number
    user: str  # the user key as given (UPN, mail or object id), trimmed
    action: Action | None
    sku: str  # the license as given: to assign, to remove, or the target of a replace
    from_sku: str | None = None  # replace only: the license as given that goes away
    disabled_plans: tuple[str, ...] = ()  # as given: names or ids
    usage_location: str | None = None  # as given: ISO code or country name
    priority: int | None = None
    findings: tuple[RowFinding, ...] = ()  # problems found while reading the row


# ------------------------------------------------------------------------------------------- tenant


@dataclass(frozen=True, slots=True)
class ServicePlan:
    id: str  # servicePlanId, lower-case
    name: str  # servicePlanName
    applies_to: str = "User"
    provisioning_status: str = "Success"


@dataclass(frozen=True, slots=True)
class Sku:
    """A subscribedSku: a product the tenant has bought."""

    sku_id: str
    part_number: str  # skuPartNumber, e.g. SPE_E3
    applies_to: str  # "User" or "Company"
    capability_status: str  # Enabled | Warning | Suspended | Deleted | LockedOut
    enabled: int  # prepaidUnits.enabled
    consumed: int  # consumedUnits
    suspended: int = 0
    warning: int = 0
    locked_out: int = 0
    service_plans: tuple[ServicePlan, ...] = ()
    product_name: str | None = None  # Microsoft's friendly name, when the product list knows it

    @property
    def available(self) -> int:
        """Seats free to assign: prepaidUnits.enabled - consumedUnits (never below 0)."""
        return max(0, self.enabled - self.consumed)


@dataclass(frozen=True, slots=True)
class LicenseState:
    """One entry of a user's licenseAssignmentStates."""

    sku_id: str
    disabled_plans: frozenset[str] = frozenset()
    assigned_by_group: str | None = None  # None = direct assignment
    state: str = "Active"  # Active | ActiveWithError | Disabled | Error
    error: str = "None"  # None | CountViolation | MutuallyExclusiveViolation | DependencyViolation | ...


@dataclass(frozen=True, slots=True)
class User:
    id: str
    upn: str
    mail: str | None
    usage_location: str | None
    account_enabled: bool
    user_type: str  # "Member" or "Guest"
    assigned: tuple[str, ...]  # assignedLicenses skuIds (effective: direct and inherited)
    states: tuple[LicenseState, ...]  # licenseAssignmentStates

    @property
    def is_guest(self) -> bool:
        return self.user_type == "Guest" or "#ext#" in self.upn.lower()

    def holds(self, sku_id: str) -> bool:
        return sku_id in self.assigned

    def direct(self, sku_id: str) -> LicenseState | None:
        """The direct assignment of ``sku_id``, if any."""
        for s in self.states:
            if s.sku_id == sku_id and s.assigned_by_group is None:
                return s
        return None

    def groups_for(self, sku_id: str) -> tuple[str, ...]:
        """Ids of the groups ``sku_id`` is inherited from."""
        return tuple(s.assigned_by_group for s in self.states if s.sku_id == sku_id and s.assigned_by_group)


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    display_name: str


@dataclass(slots=True)
class TenantSnapshot:
    """The tenant as read once at the start of a run: what validation and planning are a function of."""

    tenant_id: str
    skus: dict[str, Sku]  # by skuId
    users: dict[str, User]  # by object id; only the users the sheet names (or all, when paged)
    groups: dict[str, Group]  # by object id; at least the groups users inherit licenses from
    taken_at: datetime
    requests: int = 0  # HTTP requests it took to read
    complete_directory: bool = False  # True when every user was paged in (not found == does not exist)
    _index: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self._index:
            self.reindex()

    def reindex(self) -> None:
        idx: dict[str, str] = {}
        for u in self.users.values():
            idx[u.id.lower()] = u.id
            idx[u.upn.lower()] = u.id
            if u.mail:
                idx.setdefault(u.mail.lower(), u.id)
        self._index = idx

    def find_user(self, key: str) -> User | None:
        uid = self._index.get(key.strip().lower())
        return None if uid is None else self.users[uid]

    def sku_by_part_number(self, part_number: str) -> Sku | None:
        p = part_number.strip().upper()
        for s in self.skus.values():
            if s.part_number.upper() == p:
                return s
        return None


# --------------------------------------------------------------------------------------- validation


class RequestStatus(StrEnum):
    READY = "ready"  # will be applied
    UNCHANGED = "unchanged"  # already matches the tenant
    ERROR = "error"  # has an error finding: will not be sent
    OVER_CAPACITY = "over capacity"  # valid, but the SKU is short of seats


class ShortfallPolicy(StrEnum):
    STOP = "stop"  # a short SKU makes the whole wave not applicable
    PARTIAL = "partial"  # serve rows in priority then sheet order until seats run out


@dataclass(slots=True)
class CheckedRequest:
    """A LicenseRequest after validation: resolved ids, status and every finding."""

    request: LicenseRequest
    status: RequestStatus
    findings: list[RowFinding]
    user_id: str | None = None
    sku_id: str | None = None  # resolved license to assign / remove / replace to
    from_sku_id: str | None = None  # replace only
    disabled_plan_ids: frozenset[str] = frozenset()  # resolved plans the row asks to disable
    usage_location: str | None = None  # ISO code to SET before assigning (None = no change needed)


@dataclass(frozen=True, slots=True)
class CapacityLine:
    """Seats for one SKU: what the sheet needs net of what it frees."""

    sku_id: str
    part_number: str
    enabled: int
    consumed: int
    reserve: int  # seats kept free (--reserve)
    needed: int  # users who will gain the SKU
    freed: int  # users who will lose it (remove, replace-from)

    @property
    def available(self) -> int:
        return max(0, self.enabled - self.consumed - self.reserve)

    @property
    def net(self) -> int:
        return self.needed - self.freed

    @property
    def short(self) -> int:
        # Not the clamped ``available``: an over-consumed SKU (consumed > enabled) needs its deficit freed too.
        return max(0, self.net - (self.enabled - self.consumed - self.reserve))


@dataclass(slots=True)
class Validation:
    sheet: Sheet
    requests: list[CheckedRequest]  # in input order
    capacity: list[CapacityLine]
    snapshot: TenantSnapshot
    policy: ShortfallPolicy = ShortfallPolicy.STOP

    @property
    def wave_refused(self) -> bool:
        """True when a SKU is short and the policy is STOP: nothing may be applied."""
        return self.policy is ShortfallPolicy.STOP and any(c.short for c in self.capacity)


# --------------------------------------------------------------------------------------------- plan


class OpKind(StrEnum):
    SET_USAGE_LOCATION = "setUsageLocation"  # PATCH /users/{id}
    ASSIGN_LICENSE = "assignLicense"  # POST /users/{id}/assignLicense


@dataclass(frozen=True, slots=True)
class Operation:
    """One Graph write. Its ``key`` is stable across runs of the same plan (the journal's identity)."""

    key: str  # e.g. "{userId}/assignLicense"
    kind: OpKind
    user_id: str
    user: str  # UPN, for messages
    method: str  # "PATCH" | "POST"
    url: str  # RELATIVE Graph url, e.g. "/users/{id}/assignLicense"
    body: Mapping[str, object]
    rows: tuple[int, ...]  # InputRow.index of every row this operation serves
    depends_on: str | None = None  # key of the operation that must succeed first
    add: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (skuId, disabledPlans) after merging
    remove: tuple[str, ...] = ()
    before: tuple[str, ...] = ()  # skuIds the user held before
    after: tuple[str, ...] = ()  # skuIds the user will hold after


@dataclass(frozen=True, slots=True)
class SeatChange:
    sku_id: str
    part_number: str
    takes: int
    frees: int


@dataclass(slots=True)
class Plan:
    operations: list[Operation]
    seats: list[SeatChange]
    validation: Validation


# -------------------------------------------------------------------------------------------- apply


class Outcome(StrEnum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # not sent: the row has an error finding, or is over capacity
    FAILED = "failed"  # sent, and the tenant said no
    NOT_RUN = "not run"  # the run stopped before the row's operation settled


@dataclass(slots=True)
class RowResult:
    row: int  # InputRow.index
    row_number: int
    status: Outcome
    action: str = ""  # e.g. "assign SPE_E5", "replace SPE_E3 -> SPE_E5", "set usage location DE"
    code: str = ""  # finding code or Graph error code
    message: str = ""
    fix: str = ""
    request_id: str = ""
    time: datetime | None = None
    licenses_before: str = ""  # "SPE_E3, POWERAPPS_PER_USER"
    licenses_after: str = ""


@dataclass(slots=True)
class RunResult:
    run_id: str
    sheet: Sheet
    rows: list[RowResult]  # one per InputRow, in input order
    started: datetime
    finished: datetime
    tenant: str
    requests_sent: int = 0
    throttled: int = 0  # responses (batch or item) answered 429
    throttle_wait_s: float = 0.0
    seats_before: dict[str, int] = field(default_factory=dict)  # part number -> consumed
    seats_after: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    report_dir: Path | None = None

    def counts(self) -> dict[Outcome, int]:
        out = {o: 0 for o in Outcome}
        for r in self.rows:
            out[r.status] += 1
        return out
