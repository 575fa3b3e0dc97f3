"""Typed records passed between the pipeline stages.

    sheet --read--> Sheet(s) + requests --validate(TenantSnapshot)--> Validation --plan--> Plan
          --apply--> RunResult (RowResult per input row) --report--> results.xlsx/.csv

Each kind of change (``batch.kinds``) has its own request and checked-request records (a user's license:
:class:`LicenseRequest` / :class:`CheckedRequest`; an environment's add-ons: :class:`AddonRequest` /
:class:`CheckedAddon`); everything after validation (capacity lines, operations, results) is shared.

Every record here is plain data: no I/O, no methods that talk to anything. GUIDs are kept lower-case;
user look-up keys (UPN, mail, object id) are compared case-insensitively via ``TenantSnapshot.find_user``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RowFinding

if TYPE_CHECKING:  # data only; the rules module sits above the models
    from .kinds.licenses.rules import Refusal

# ------------------------------------------------------------------------------------------- sheets

#: A workbook cell that is not text: a number, a boolean, a date, a date-time, a time of day or a duration.
TypedCell = int | float | bool | datetime | date | time | timedelta


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
    # group membership rows (batch.kinds.groups)
    GROUP = "group"  # a group: display name or object id


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
    #: A workbook's typed cells, one per header (None: a text cell, or a row with none): what the results
    #: write back as numbers and dates. Validation only ever reads ``cells``.
    values: tuple[TypedCell | None, ...] | None = None


class Kind(StrEnum):
    """The kinds of change a sheet can carry (``batch.kinds`` holds each one's pieces)."""

    LICENSES = "licenses"  # users-to-SKU rows: a user's direct license
    ADDONS = "addons"  # environment-to-add-on rows: a Power Platform environment's allocation
    GROUPS = "groups"  # user-to-group rows: a user's membership of a (licensing) group


@dataclass(slots=True)
class Sheet:
    """A read input sheet: headers, rows and what each column means.

    A workbook with several input sheets (a Licenses sheet and an Add-ons sheet) is one run: each sheet is
    one ``Sheet``, and row indexes run on across them (the second sheet's first row follows the first
    sheet's last), so a row index names one input row of the whole run.
    """

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
    kind: Kind = Kind.LICENSES

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
    #: the sheet says the user holds it through a group, not directly (the "Held" column of an export):
    #: such a row asks for no direct assignment; it is met when a group gives the license.
    via_group: bool = False


@dataclass(frozen=True, slots=True)
class AddonRequest:
    """One add-on allocation asked for one environment by one row (a wide row gives one per add-on column).

    ``amount`` is the number given; ``relative`` says it was written with a sign (``+500``, ``-200``: a change
    of the current allocation) rather than as the absolute value to set. A row that cannot be read still gives
    one request, with the findings that say why.
    """

    row: int  # InputRow.index
    row_number: int  # InputRow.number
    environment: str  # as given: id, Default-{tenantId} or display name
    addon: str  # as given: currencyType or a friendly name
    amount: int | None  # None when the cell is not a whole number (see findings)
    relative: bool = False
    amount_text: str = ""
    column: str | None = None  # the header of the cell the add-on came from (wide sheets: the add-on's column)
    priority: int | None = None
    findings: tuple[RowFinding, ...] = ()


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


#: licenseAssignmentStates.state values under which a user really holds a license. A group assignment in
#: ``Error`` (CountViolation, MutuallyExclusiveViolation, ...) gives the user nothing and takes no seat.
HELD_STATES = frozenset({"Active", "ActiveWithError"})


@dataclass(frozen=True, slots=True)
class Holding:
    """How a user holds one SKU: the one rule validation, planning and capacity all use."""

    held: bool  # the user has the license (it takes a seat)
    direct: bool  # a direct assignment exists (it can be removed from the user)
    groups: tuple[str, ...] = ()  # groups that give it to the user
    failed_groups: tuple[str, ...] = ()  # groups whose assignment of it ended in Error (not held)


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

    def holding(self, sku_id: str) -> Holding:
        """Whether and how the user holds ``sku_id`` (see :class:`Holding`)."""
        direct = False
        groups: list[str] = []
        failed: list[str] = []
        seen = False
        for s in self.states:
            if s.sku_id != sku_id:
                continue
            seen = True
            ok = s.state in HELD_STATES
            if s.assigned_by_group is None:
                direct = direct or s.state != "Error"
            elif ok:
                groups.append(s.assigned_by_group)
            else:
                failed.append(s.assigned_by_group)
        if not seen and sku_id in self.assigned:
            direct = True  # no licenseAssignmentStates for it: assume direct
        return Holding(direct or bool(groups), direct, tuple(groups), tuple(failed))

    def holds(self, sku_id: str) -> bool:
        return self.holding(sku_id).held

    def direct(self, sku_id: str) -> LicenseState | None:
        """The direct assignment of ``sku_id``, if any."""
        for s in self.states:
            if s.sku_id == sku_id and s.assigned_by_group is None:
                return s
        return None

    def groups_for(self, sku_id: str) -> tuple[str, ...]:
        """Ids of the groups ``sku_id`` is inherited from (assignments in Error excluded)."""
        return self.holding(sku_id).groups


@dataclass(frozen=True, slots=True)
class Group:
    """A group. Beyond id and name, what the groups kind reads about the groups a sheet names."""

    id: str
    display_name: str
    group_types: tuple[str, ...] = ()  # "Unified", "DynamicMembership"
    membership_rule: str | None = None  # set for rule-based ("dynamic") groups
    licenses: tuple[tuple[str, tuple[str, ...]], ...] = ()  # assignedLicenses: (skuId, disabledPlans)
    members: frozenset[str] | None = None  # member user ids, when read (None: not read)

    @property
    def dynamic(self) -> bool:
        return bool(self.membership_rule) or "DynamicMembership" in self.group_types


@dataclass(frozen=True, slots=True)
class Environment:
    """A Power Platform environment."""

    id: str
    display_name: str
    type: str  # Default | Production | Sandbox | Developer | Trial | ...
    state: str
    geo: str | None = None
    url: str | None = None

    @property
    def is_default(self) -> bool:
        return self.type.lower() == "default" or self.id.lower().startswith("default-")


@dataclass(frozen=True, slots=True)
class CurrencyReport:
    """Tenant totals for one add-on currency; free to allocate = purchased - allocated."""

    currency_type: str
    purchased: float
    allocated: float
    consumed: float = 0.0

    @property
    def available(self) -> float:
        return max(0.0, self.purchased - self.allocated)


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
    # Power Platform (read only when a sheet has add-on rows)
    environments: dict[str, Environment] = field(default_factory=dict)  # by environment id
    allocations: dict[str, dict[str, int]] = field(default_factory=dict)  # environment id -> currencyType -> allocated
    currencies: dict[str, CurrencyReport] = field(default_factory=dict)  # by currencyType
    # service-plan combinations this tenant refused in earlier runs (batch.kinds.licenses.rules), from the cache
    plan_refusals: tuple[Refusal, ...] = ()
    # group id -> user id -> direct member, read for a few users where the group's members were not (rollback)
    memberships: dict[str, dict[str, bool]] = field(default_factory=dict)
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


@dataclass(slots=True)
class CheckedAddon:
    """An AddonRequest after validation: the environment and currency resolved, the allocation before and after."""

    request: AddonRequest
    status: RequestStatus
    findings: list[RowFinding]
    environment_id: str | None = None
    currency_type: str | None = None
    before: int | None = None  # allocated now
    after: int | None = None  # allocated once applied (absolute)


@dataclass(frozen=True, slots=True)
class CapacityLine:
    """One capacity pool: what the sheet needs net of what it frees.

    For licenses the pool is a SKU's seats: ``sku_id``/``part_number`` name it, ``enabled`` is
    prepaidUnits.enabled, ``consumed`` consumedUnits, ``needed`` the users who gain it, ``freed`` those who lose it.
    For add-ons (``kind == "addons"``) the pool is a currency type: ``sku_id`` and ``part_number`` are the
    currencyType, ``enabled`` what was purchased, ``consumed`` what environments the sheet leaves alone hold,
    ``needed`` what the sheet sets on the environments it touches (absolute), ``freed`` 0.
    """

    sku_id: str
    part_number: str
    enabled: int
    consumed: int
    reserve: int  # seats (units) kept free (--reserve)
    needed: int  # users who will gain the SKU; add-ons: units the touched environments will hold
    freed: int  # users who will lose it (remove, replace-from)
    kind: Kind = Kind.LICENSES
    label: str = ""  # what people call it ("Microsoft 365 E3", "AI Builder credits")

    @property
    def name(self) -> str:
        return self.label or self.part_number

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
    """Every checked request of every input sheet of a run, and every capacity pool the run touches."""

    sheet: Sheet
    requests: list[CheckedRequest | CheckedAddon]  # in input order (all sheets)
    capacity: list[CapacityLine]
    snapshot: TenantSnapshot
    policy: ShortfallPolicy = ShortfallPolicy.STOP
    extra_sheets: list[Sheet] = field(default_factory=list)  # a workbook's further input sheets

    @property
    def sheets(self) -> list[Sheet]:
        return [self.sheet, *self.extra_sheets]

    @property
    def wave_refused(self) -> bool:
        """True when a SKU is short and the policy is STOP: nothing may be applied."""
        return self.policy is ShortfallPolicy.STOP and any(c.short for c in self.capacity)


# --------------------------------------------------------------------------------------------- plan


class OpKind(StrEnum):
    SET_USAGE_LOCATION = "setUsageLocation"  # Graph: PATCH /users/{id}
    ASSIGN_LICENSE = "assignLicense"  # Graph: POST /users/{id}/assignLicense
    ALLOCATE_ADDONS = "allocateAddons"  # Power Platform: PATCH an environment's allocations
    ADD_MEMBERS = "addMembers"  # Graph: PATCH /groups/{id} members@odata.bind (up to 20 users)
    REMOVE_MEMBER = "removeMember"  # Graph: DELETE /groups/{id}/members/{userId}/$ref


class Api(StrEnum):
    """Which service an operation goes to (each has its own transport and quota)."""

    GRAPH = "graph"  # sent in $batch requests
    POWERPLATFORM = "powerplatform"  # one request per operation


@dataclass(frozen=True, slots=True)
class Operation:
    """One write. Its ``key`` is stable across runs of the same plan (the journal's identity).

    ``target_id`` is what the write changes (a user's object id, an environment's id) and ``before``/``after``
    its state as tokens (for a user, the skuIds held; for an environment, ``"AI=500"`` per currency), which
    is what the results show and what a read-back compares.
    """

    key: str  # e.g. "{userId}/assignLicense"
    kind: OpKind
    target_id: str
    target: str  # UPN or environment name, for messages
    method: str  # "PATCH" | "POST"
    url: str  # RELATIVE url, e.g. "/users/{id}/assignLicense"
    body: Mapping[str, object]
    rows: tuple[int, ...]  # InputRow.index of every row this operation serves
    depends_on: str | None = None  # key of the operation that must succeed first
    add: tuple[tuple[str, tuple[str, ...]], ...] = ()  # licenses: (skuId, disabledPlans) after merging
    remove: tuple[str, ...] = ()  # licenses: skuIds removed
    before: tuple[str, ...] = ()  # the target's state before (tokens, see above)
    after: tuple[str, ...] = ()  # the target's state after
    api: Api = Api.GRAPH


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Choices that change what the plan sends (not what the rows ask)."""

    #: Power Platform allocation endpoint: "2022-03-01-preview" (per environment) or "2024-10-01"
    #: (allocationsByEnvironment). Both are absolute.
    allocations_api: str = "2022-03-01-preview"
    #: ``apply --via-group NAME``: license rows that add exactly what this group gives are planned as
    #: membership of it (20 users per write) instead of one assignLicense per user.
    via_group: str | None = None


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
    notes: list[str] = field(default_factory=list)  # choices the plan made that people must see (--via-group)


# -------------------------------------------------------------------------------------------- apply


#: The code of a valid row that was not applied because the whole wave was refused (a shortfall with
#: ``--on-shortfall stop``).
WAVE_REFUSED = "wave-refused"


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
    before: str = ""  # the target's state before: "SPE_E3, POWERAPPS_PER_USER" / "AI Builder credits 100"
    after: str = ""


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
    units_before: dict[str, int] = field(default_factory=dict)  # add-ons: currencyType -> allocated (all envs)
    units_after: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    report_dir: Path | None = None
    extra_sheets: list[Sheet] = field(default_factory=list)  # a workbook's further input sheets
    already_finished: bool = False  # a resume found the run finished: nothing was sent
    purchased: dict[str, int] = field(default_factory=dict)  # part number -> seats purchased (prepaid enabled)
    units_purchased: dict[str, int] = field(default_factory=dict)  # add-ons: currencyType -> units purchased
    pool_names: dict[str, str] = field(default_factory=dict)  # part number / currencyType -> what people call it
    touched: frozenset[str] = frozenset()  # part numbers and currencyTypes the run's operations change
    command_lines: list[dict[str, Any]] = field(default_factory=list)  # {"at", "argv"}: apply's, then resumes'

    @property
    def sheets(self) -> list[Sheet]:
        return [self.sheet, *self.extra_sheets]

    def counts(self) -> dict[Outcome, int]:
        out = {o: 0 for o in Outcome}
        for r in self.rows:
            out[r.status] += 1
        return out
