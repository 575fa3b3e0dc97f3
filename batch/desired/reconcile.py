"""``license-batch reconcile``: the sheet is the desired state of a scope; the drift becomes a plan like any other.

    rec = reconcile(session, "desired.xlsx", scope="department=Sales", prune=False)   # nothing sent
    rec.drift            # DataFrame: one line per user/SKU (environment/add-on, group member) that differs
    rec.plan             # batch.models.Plan: the same CheckedRequest/CheckedAddon/CheckedGroup/Operation records
    result = jobs.execute(session, rec.prepared)   # journalled, applied, resumable, reported like any run

Scope (``read.Scope``): ``users`` (the users the sheet names), ``ATTRIBUTE=VALUE`` (department, jobTitle,
companyName, officeLocation, country, city, state, usageLocation, employeeType, userType, accountEnabled),
``group=NAME`` (its members at any depth of nesting) or ``all``: users in the scope but not in the sheet (and
licenses not in the sheet) count as "should not hold". Missing licenses, different disabled plans (the ones to
disable) and usage locations are fixed by ``--apply``; extra licenses, plans to re-enable and lower allocations
only with ``--prune``. Licenses held through groups are never assigned or removed directly: a license the sheet
expects through a group is fixed by adding the user to the group (``--apply``), one a group gives that the sheet
does not ask for by taking the user out of it (``--apply --prune``; never when the group also gives a license the
sheet asks for, nor for rule-based groups: those stay advice), see ``group_drift``. A membership sheet (user,
group[, action]) says who should be in which group: missing members are added (``--apply``); members the sheet
says to remove, and (scope other than ``users``) members of the scope it leaves out, only with ``--prune``
(``membership_drift``). Every membership write, from either, is merged per group (``memberships``). Every input
row keeps one result row; drift outside the sheet (an extra license, a user of the scope the sheet leaves out) is
added as rows below it, marked in a ``Drift`` column.

Licenses (``skus``, ``--sku``): the sheet is the desired state of these licenses only (an export made with
``--sku SPE_E3`` is reconciled with ``--sku SPE_E3``): other licenses a user holds are neither "extra" nor
"redundant". The sheet's rows are all compared whatever they name: a row is always an explicit ask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputError, RowFinding, Severity
from ..kinds.licenses.plan import operation_key
from ..models import (
    Action,
    CapacityLine,
    CheckedAddon,
    CheckedRequest,
    InputRow,
    Kind,
    LicenseRequest,
    Operation,
    OpKind,
    Plan,
    RequestStatus,
    Role,
    SeatChange,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
    User,
    Validation,
)
from . import drift as D
from .group_drift import ADD_FIX, GROUP_DRIFT, REMOVE_FIX, GroupDrift
from .layout import DRIFT_COLUMN
from .membership_drift import MEMBER_ADD_FIX, MEMBER_REMOVE_FIX, membership_drift
from .memberships import Memberships
from .read import Scope, find_group, group_member_ids, iter_user_pages
from .where import SheetsOf

if TYPE_CHECKING:
    import pandas as pd

    from ..jobs import PlanRun, Session
    from ..sheets import Source

#: Where each kind of drift is fixed (the drift report's "fix" column).
FIXED_BY = {
    "missing": "--apply", "location": "--apply", "plans": "--apply (re-enabling: --prune)", "extra": "--apply --prune",
    "allocation": "--apply (lowering: --prune)", "group-missing": ADD_FIX,
    "group-unexpected": REMOVE_FIX, "member-missing": MEMBER_ADD_FIX, "member-extra": MEMBER_REMOVE_FIX,
    "redundant": "advice",
}


@dataclass
class Reconciliation:
    run_id: str
    run_dir: Path
    source: Path
    scope: Scope
    prune: bool
    #: kind, target, license, detail, fix, sheet (the row's, when the file has several), row (Excel number, 0 = not
    #: in the sheet), applied
    drift: pd.DataFrame
    capacity: list[CapacityLine]
    snapshot: TenantSnapshot
    builder: Builder
    redundant_seats: dict[str, int] = field(default_factory=dict)  # part number -> seats the redundant packs hold
    report: Path | None = None
    changed_units: dict[str, int] = field(default_factory=dict)  # add-on currencyType -> units the fix moves
    prunable: dict[str, int] = field(default_factory=dict)  # skuId -> seats --prune would also free
    licenses: tuple[str, ...] = ()  # --sku: the part numbers the sheet is the desired state of (empty: all)
    sheet_licenses: tuple[str, ...] = ()  # the part numbers the sheet's rows name
    _plan: Plan | None = None

    @property
    def drift_count(self) -> int:
        """Lines of drift that a reconcile can fix or that need membership changes (not advice)."""
        return int((self.drift["kind"] != "redundant").sum()) if len(self.drift) else 0

    @property
    def refused(self) -> bool:
        """Fixing the drift needs more seats (units) than are free: nothing would be applied."""
        return any(c.short for c in self.capacity)

    @property
    def operations(self) -> list[Operation]:
        return self.builder.operations() if not self.refused else []

    @property
    def plan(self) -> Plan:
        """The run a --apply would be: every input row with its checks, and the operations (built on demand)."""
        if self._plan is None:
            b = self.builder
            b.finish()
            validation = Validation(sheet=b.sheets[0], requests=b.checked, capacity=self.capacity,
                                    snapshot=self.snapshot, policy=ShortfallPolicy.STOP, extra_sheets=b.sheets[1:])
            self._plan = Plan(operations=self.operations, seats=b.seats(), validation=validation)
        return self._plan

    @property
    def prepared(self) -> PlanRun:
        from ..jobs import PlanRun

        return PlanRun(run_id=self.run_id, run_dir=self.run_dir, source=self.source, validation=self.plan.validation,
                       plan=self.plan, options={"mode": "reconcile", "scope": str(self.scope), "prune": self.prune,
                                "licenses": list(self.licenses)})


def _scope_users(session: Session, scope: Scope, snapshot: TenantSnapshot) -> set[str] | None:
    """Object ids of the users in scope (added to the snapshot); None for ``users`` (the sheet's only)."""
    from ..tenant.graph import user_from_json

    graph = session.tenant.graph
    if scope.kind == "users":
        return None
    if scope.kind == "all":
        return set(snapshot.users)
    cond = scope.condition
    if cond is not None:
        ids: set[str] = set()
        for page in iter_user_pages(graph, where=(cond,)):
            for raw in page:
                u = user_from_json(raw)
                snapshot.users.setdefault(u.id, u)
                ids.add(u.id)
    else:
        ids = group_member_ids(graph, find_group(graph, scope.value)[0])
        missing = [i for i in ids if i not in snapshot.users]
        snapshot.users.update(session.tenant.read_users(missing).items())
        ids &= set(snapshot.users)
    snapshot.reindex()
    return ids


def reconcile(
    session: Session,
    source: Source,
    *,
    scope: str | Scope = "users",
    prune: bool = False,
    sheet: str | None = None,
    skus: Sequence[str] = (),
) -> Reconciliation:
    """Read the desired state, read the tenant, join them (pandas), and plan the fix. Nothing is sent.

    ``source`` is a file or a pandas DataFrame (read in memory). Every licenses sheet of a workbook, and every
    add-ons sheet, is read: together they are one desired state (membership sheets: ``membership_drift``). A
    sheet of a kind reconcile does not take refuses the whole file (InputError): nothing is silently left out."""
    from .._gc import paused_gc

    with paused_gc():
        return _reconcile(session, source, scope=scope, prune=prune, sheet=sheet, skus=skus)


#: The kinds of sheet reconcile takes. A workbook with a sheet of any other kind is refused as a whole (a kind
#: added to ``models.Kind`` is never skipped silently here).
RECONCILED_KINDS = (Kind.LICENSES, Kind.ADDONS, Kind.GROUPS)

_KIND_WORDS = {Kind.GROUPS: "group memberships (user-to-group rows)", Kind.LICENSES: "users' licenses",
               Kind.ADDONS: "add-on allocations"}


def refuse_other_kinds(sheets: Sequence[Sheet], taken: Sequence[Kind] = RECONCILED_KINDS) -> None:
    """InputError (file level, nothing read from the tenant or applied) when a sheet is of a kind not taken."""
    other = [s for s in sheets if s.kind not in taken]
    if not other:
        return
    s = other[0]
    what = f"The sheet '{s.sheet_name}' holds" if s.sheet_name else "The sheet holds"
    more = f" (and {len(other) - 1} more sheet(s) like it)" if len(other) > 1 else ""
    takes = " and ".join(_KIND_WORDS[k] for k in taken)
    raise InputError(
        f"{what} {_KIND_WORDS.get(s.kind, f'{s.kind} rows')}{more}: reconcile takes {takes} only, so nothing was "
        "compared or applied.",
        path=str(s.path),
        fix="Apply that sheet with 'license-batch apply', and reconcile the sheets of the kinds above"
            + ("; pick one with --sheet NAME." if s.sheet_name else "."),
    )


def _reconcile(
    session: Session,
    source: Source,
    *,
    scope: str | Scope,
    prune: bool,
    sheet: str | None,
    skus: Sequence[str] = (),
) -> Reconciliation:
    from ..jobs import new_run_id
    from ..sheets import read_source, source_label

    sc = scope if isinstance(scope, Scope) else Scope.parse(scope)
    run_id = new_run_id()
    run_dir = session.settings.report_dir / run_id
    cmap = dict(session.settings.column_map) or None
    frame = None
    if sc.kind == "all":
        # every user is paged in whatever the sheet says: read the sheet while the directory is paged (the wait
        # on each page leaves the interpreter free)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="reconcile-snapshot") as ex:
            pending = ex.submit(session.tenant.snapshot, [], strategy="page")
            sheets = read_source(source, sheet=sheet, column_map=cmap)
            refuse_other_kinds(sheets)
            lics = [s for s in sheets if s.kind is Kind.LICENSES]
            frame = D.sheets_frame(lics) if lics else None
            snapshot = pending.result()
        adds = [s for s in sheets if s.kind is Kind.ADDONS]
        if adds:
            _read_powerplatform(session, snapshot)
    else:
        sheets = read_source(source, sheet=sheet, column_map=cmap)
        refuse_other_kinds(sheets)
        lics = [s for s in sheets if s.kind is Kind.LICENSES]
        adds = [s for s in sheets if s.kind is Kind.ADDONS]
        keys = sorted({u for lic in lics for u in _user_cells(lic)})
        snapshot = session.tenant.snapshot(keys, powerplatform=bool(adds))
    in_scope = _scope_users(session, sc, snapshot)
    builder = Builder(snapshot, prune, session.settings.allocations_api)
    builder.only_skus = license_scope(snapshot, skus, session.catalog)
    if lics:
        builder.licenses(lics, session, in_scope, frame)
    if adds:
        builder.addons(adds, all_environments=sc.kind == "all")
    membership_drift(builder, [s for s in sheets if s.kind is Kind.GROUPS], session, in_scope)
    return Reconciliation(run_id=run_id, run_dir=run_dir, source=source_label(source), scope=sc, prune=prune,
                          drift=builder.drift_frame(), capacity=builder.capacity, snapshot=snapshot, builder=builder,
                          redundant_seats=builder.redundant_seats, changed_units=builder.changed_units,
                          prunable=builder.prunable,
                          licenses=tuple(sorted(builder._part(s) for s in builder.only_skus or ())),
                          sheet_licenses=tuple(sorted(builder._part(s) for s in builder.sheet_skus)))


def license_scope(snapshot: TenantSnapshot, texts: Sequence[str], catalog: Any = None) -> set[str] | None:
    """The skuIds ``--sku`` names (part number, skuId or product name); None when none is given. A text the
    tenant has no license for is a ConfigError: nothing is compared or applied."""
    from ..sheets.resolve import SkuResolver

    if not texts:
        return None
    resolver = SkuResolver(snapshot.skus, catalog)
    out: set[str] = set()
    for text in texts:
        got = resolver.resolve(text)
        if isinstance(got, RowFinding):
            raise ConfigError(f"--sku {text}: {got.message}", fix=got.fix or "Give a part number, e.g. SPE_E3.")
        out.add(got.sku.sku_id)
    return out


def _read_powerplatform(session: Session, snap: TenantSnapshot) -> None:
    """What ``Tenant.snapshot(powerplatform=True)`` adds: environments, their allocations, add-on capacity."""
    tenant = session.tenant
    pp = tenant.powerplatform
    snap.environments = pp.environments()
    snap.allocations = tenant.read_allocations(list(snap.environments))
    snap.currencies = pp.currency_reports()


def _user_cells(sheet: Sheet) -> list[str]:
    from ..sheets.cells import clean_user

    i = sheet.columns.get(Role.USER)
    return [] if i is None else [clean_user(r.cells[i]) for r in sheet.rows if i < len(r.cells) and r.cells[i]]


class Builder:
    """Turns the drift into the run's sheets, checked requests, operations and capacity pools."""

    def __init__(self, snapshot: TenantSnapshot, prune: bool, allocations_api: str) -> None:
        self.snap = snapshot
        self.prune = prune
        self.allocations_api = allocations_api  # the configured Power Platform endpoint
        self.only_skus: set[str] | None = None  # --sku: the skuIds compared beyond the sheet's rows (None: all)
        self.sheet_skus: set[str] = set()  # the skuIds the sheet's rows name
        self.sheets: list[Sheet] = []
        self.checked: list[CheckedRequest | CheckedAddon] = []
        self.capacity: list[CapacityLine] = []
        self.lines: list[dict[str, Any]] = []  # the drift report
        self.redundant_seats: dict[str, int] = {}
        self.prunable: dict[str, int] = {}  # skuId -> seats extra licenses would free with --prune
        self.changed_units: dict[str, int] = {}
        self._adds: dict[str, dict[str, tuple[str, ...]]] = {}  # uid -> skuId -> disabled plans after
        self._removes: dict[str, list[str]] = {}
        self._locations: dict[str, str] = {}
        self._rows: dict[str, set[int]] = {}  # uid -> rows served by its assignLicense
        self._loc_rows: dict[str, set[int]] = {}
        self._next_row = 0  # the index the next placed row gets (indexes stay unique across the run's sheets)
        self._last_number: dict[int, tuple[Sheet, int]] = {}  # id(sheet) -> the sheet, its last row number
        self._held: list[Sheet] = []  # every sheet of the run, with its rows' indexes (the drift's "sheet")
        self._addon_ops: list[Operation] = []
        self._seats: dict[str, list[int]] = {}
        self._finish: list[Callable[[], None]] = []
        self.memberships = Memberships(snapshot, self._seats, self.prunable)  # every membership write, merged
        self._group_drift: GroupDrift | None = None

    def finish(self) -> None:
        """Build the run's sheets and checked requests (one result per input row): only what a plan needs."""
        for f in self._finish:
            f()
        self._finish = []

    # -------------------------------------------------------------------------------------- the kinds' API

    def hold_rows(self, sheets: Sequence[Sheet]) -> None:
        """Sheets whose row indexes stay as read (the licenses sheets, placed first): later rows follow them."""
        self._held.extend(sheets)
        self._next_row = max((r.index for sh in sheets for r in sh.rows), default=self._next_row - 1) + 1

    def place_sheet(self, sheet: Sheet) -> Sheet:
        """The sheet with its rows re-indexed to follow every row placed so far (typed cells kept)."""
        offset = self._next_row - min((r.index for r in sheet.rows), default=0)
        if offset:
            sheet = replace(sheet, rows=[replace(r, index=r.index + offset) for r in sheet.rows])
        self.hold_rows([sheet])
        return sheet

    def extra_row(self, home: Sheet, cells: Sequence[str]) -> InputRow:
        """A row of drift outside the sheets, below ``home`` (numbered after its last row, or the rows already
        added below it); its index follows every row placed so far."""
        held = self._last_number.get(id(home))  # (not .get's default: that would scan the sheet every time)
        last = held[1] if held is not None else max((r.number for r in home.rows), default=home.header_row)
        row = InputRow(self._next_row, last + 1, tuple(cells))
        self._last_number[id(home)] = (home, last + 1)
        self._next_row += 1
        return row

    def on_finish(self, fn: Callable[[], None]) -> None:
        """``fn`` adds the run's sheets and checked requests, when a plan is built (``finish``)."""
        self._finish.append(fn)

    def add_operations(self, ops: Sequence[Operation]) -> None:
        """Operations sent after the license writes and before the membership additions (add-on allocations)."""
        self._addon_ops.extend(ops)

    def license_capacity(self) -> list[CapacityLine]:
        """One line per SKU whose seats the fixes take or free (direct and membership writes together)."""
        out = []
        for sid, (takes, frees) in sorted(self._seats.items()):
            s = self.snap.skus.get(sid)
            if s is not None:
                out.append(CapacityLine(sid, s.part_number, s.enabled, s.consumed, 0, takes, frees,
                                        label=s.product_name or ""))
        return out

    # -------------------------------------------------------------------------------------- licenses

    def _part(self, sku_id: str) -> str:
        return self.memberships.part(sku_id)

    def _plan_names(self, sku_id: str, ids: str) -> str:
        s = self.snap.skus.get(sku_id)
        names = {p.id: p.name for p in s.service_plans} if s else {}
        return "; ".join(sorted(names.get(i, i) for i in ids.split(",") if i))

    def _group_names(self, ids: str) -> str:
        return ", ".join(self.memberships.name(g) for g in ids.split(",") if g)

    def licenses(self, sheets: Sequence[Sheet], session: Session, in_scope: set[str] | None,
                 frame: pd.DataFrame | None = None) -> None:
        """Every licenses sheet, one desired state. A line of drift outside the sheets (an extra license, a user
        of the scope no sheet names) gets a row of its own below the sheet that names the user (else the first)."""
        where = SheetsOf(sheets)
        desired = D.desired_frame(sheets, self.snap, session.catalog, frame)
        named = set(desired.frame["uid"].tolist())
        self.sheet_skus = set(desired.frame["sku_id"].unique().tolist())
        relevant = named | (in_scope or set())  # every id is the snapshot's (users named, users in scope)
        users = (list(self.snap.users.values()) if len(relevant) == len(self.snap.users) else
                 [self.snap.users[u] for u in relevant if u in self.snap.users])
        actual = D.actual_frame(users)
        diff = D.classify(desired.frame, actual, in_scope, prune=self.prune)
        if self.only_skus is not None:  # --sku: licenses outside it that the sheet does not name are left alone
            diff = diff[(diff["row"] >= 0) | diff["sku_id"].isin(self.only_skus)]
        if desired.error_users:  # a user with a row in error: their other licenses are not "extra" (never pruned)
            diff = diff[~(diff["uid"].isin(desired.error_users) & diff["drift"].isin(["extra", "group-unexpected"]))]
        self._group_drift = GroupDrift(self.memberships, session, sheets, desired.frame, diff, prune=self.prune)
        for at, found in desired.errors.items():
            for f in found:
                self.lines.append({"kind": "row-error", "target": "", "license": "", "detail": f.message,
                                   "fix": f.fix + " Until then this user's other licenses are left alone.",
                                   "row": f.row or 0, "applied": False, "_at": at})
        locs = D.location_drift(desired, self.snap.users)
        redundant = D.redundant(actual, self.snap.skus, in_scope if in_scope is not None else named)
        if self.only_skus is not None:
            redundant = redundant[redundant["sku_id"].isin(self.only_skus)]
        first_row = _first_rows(desired.frame, set(diff.loc[diff["row"] < 0, "uid"].tolist()) | set(locs))
        texts: dict[int, list[str]] = {}
        extra_rows: dict[int, list[InputRow]] = {}  # id(sheet) -> rows below it
        requests: list[Any] = []  # CheckedRequest, and CheckedGroup for drift fixed through membership
        self.hold_rows(sheets)
        for d in diff.itertuples(index=False):
            user = self.snap.users[d.uid]
            part = self._part(d.sku_id)
            row = int(d.row)
            if row < 0:  # not in the sheets: a row of its own below the sheet that names the user
                home = where.of(first_row[d.uid][0]) if d.uid in first_row else sheets[0]
                cols = home.columns
                ui, si = cols.get(Role.USER), cols.get(Role.SKU, cols.get(Role.TO_SKU))
                cells = [""] * len(home.headers)
                if ui is not None:
                    cells[ui] = user.upn
                if si is not None:
                    cells[si] = part
                below = self.extra_row(home, cells)
                row, row_number = below.index, below.number
                extra_rows.setdefault(id(home), []).append(below)
            else:
                row_number = int(d.number)
            detail, fix, sent = self._describe(d, user, part)
            texts.setdefault(row, []).append(f"{d.drift}: {detail}")
            self.lines.append({"kind": d.drift, "target": user.upn, "license": part, "detail": detail, "fix": fix,
                               "row": row_number if int(d.row) >= 0 else 0, "applied": sent, "_at": row})
            if sent and d.drift in GROUP_DRIFT:  # fixed through membership: the groups kind's records
                requests.extend(self._group_drift.checked(d, row, row_number, user, part, self.lines[-1],
                                                          texts[row]))
                continue
            action = Action.REMOVE if d.drift in ("extra", "group-unexpected") else Action.ASSIGN
            req = LicenseRequest(row, row_number, user.upn, action, part)
            sev = Severity.INFO if sent else Severity.WARNING
            f = RowFinding(f"drift-{d.drift}", sev, detail, fix, row_number, None)
            requests.append(CheckedRequest(req, RequestStatus.READY if sent else RequestStatus.UNCHANGED, [f],
                                           user_id=d.uid, sku_id=d.sku_id,
                                           disabled_plan_ids=frozenset(x for x in d.plans_after.split(",") if x)))
            if d.frees and not sent:  # an extra license kept without --prune: the seat it would free
                self.prunable[d.sku_id] = self.prunable.get(d.sku_id, 0) + 1
                self._seats.setdefault(d.sku_id, [0, 0])
            if sent:
                self._rows.setdefault(d.uid, set()).add(row)
                if d.add:
                    self._adds.setdefault(d.uid, {})[d.sku_id] = tuple(x for x in d.plans_after.split(",") if x)
                if d.remove:
                    self._removes.setdefault(d.uid, []).append(d.sku_id)
                seat = self._seats.setdefault(d.sku_id, [0, 0])
                seat[0] += int(bool(d.takes))
                seat[1] += int(bool(d.frees and d.remove))
        for uid, (now, want) in locs.items():
            row, number = first_row.get(uid, (-1, 0))
            user = self.snap.users[uid]
            detail = f"usage location {now or '(none)'} -> {want}"
            texts.setdefault(row, []).append(f"location: {detail}")
            self.lines.append({"kind": "location", "target": user.upn, "license": "", "detail": detail,
                               "fix": FIXED_BY["location"], "row": number, "applied": True, "_at": row})
            self._locations[uid] = want
            self._loc_rows.setdefault(uid, set()).add(row)
            req = LicenseRequest(row, number, user.upn, Action.ASSIGN, "")
            requests.append(CheckedRequest(req, RequestStatus.READY, [RowFinding(
                "drift-location", Severity.INFO, detail, "", number, None)], user_id=uid,
                usage_location=want))
        for r in sorted(redundant.itertuples(index=False), key=lambda r: (self.snap.users[r.uid].upn, r.sku_id)):
            user = self.snap.users[r.uid]
            detail, frees = self._redundant(user, r)
            part = self._part(r.sku_id)
            if frees:
                self.redundant_seats[part] = self.redundant_seats.get(part, 0) + 1
            self.lines.append({"kind": "redundant", "target": user.upn, "license": part, "detail": detail,
                               "fix": FIXED_BY["redundant"], "row": 0, "applied": False})
        self.capacity.extend(self.license_capacity())
        errors = desired.errors

        def finish() -> None:
            """Every input row keeps its result (errors, drift, or unchanged), on its own sheet: built only for a
            plan."""
            unchanged = [RowFinding("unchanged", Severity.INFO, "Matches the tenant: no drift.", "", None, None)]
            for sheet in sheets:
                for r in sheet.rows:
                    for f in errors.get(r.index, []):
                        requests.append(CheckedRequest(LicenseRequest(r.index, r.number, "", None, ""),
                                                       RequestStatus.ERROR, [f]))
                    if r.index not in texts and r.index not in errors:
                        requests.append(CheckedRequest(LicenseRequest(r.index, r.number, "", None, ""),
                                                       RequestStatus.UNCHANGED, unchanged))
                rows = [InputRow(r.index, r.number, (*r.cells, "; ".join(texts.get(r.index, []))),
                                 None if r.values is None else (*r.values, None))  # typed cells kept
                        for r in [*sheet.rows, *extra_rows.get(id(sheet), [])]]
                self.sheets.append(replace(sheet, headers=(*sheet.headers, DRIFT_COLUMN), rows=rows))
            requests.sort(key=lambda c: c.request.row)
            self.checked.extend(requests)

        self.on_finish(finish)

    def _describe(self, d: Any, user: User, part: str) -> tuple[str, str, bool]:
        """(what differs, how it is fixed, whether this run sends the fix)."""
        k = d.drift
        if k == "missing":
            return f"{user.upn} should hold {part} and does not", FIXED_BY[k], True
        if k == "extra":
            if d.groups:  # the group's part is a group-unexpected line of its own (it frees the seat)
                names = self._group_names(d.groups)
                head = f"{user.upn} holds {part} directly and through group {names}; the sheet does not ask for it"
                if self.prune:
                    return (f"{head}: the direct assignment is removed (the group's: group-unexpected)",
                            FIXED_BY[k], True)
                return head, "run with --apply --prune to remove the direct assignment", False
            if self.prune:
                return f"{user.upn} holds {part} directly; the sheet does not ask for it", FIXED_BY[k], True
            return (f"{user.upn} holds {part}; the sheet does not ask for it",
                    "run with --apply --prune to remove it", False)
        if k == "plans":
            parts = []
            if d.disable:
                parts.append(f"to disable: {self._plan_names(d.sku_id, d.disable)}")
            if d.enable:
                parts.append(f"disabled in the tenant, not in the sheet: {self._plan_names(d.sku_id, d.enable)}")
            sent = bool(d.disable) or (self.prune and bool(d.enable))
            fix = FIXED_BY[k] if sent or not d.enable else "run with --apply --prune to re-enable them"
            return f"{part} disabled plans differ ({'; '.join(parts)})", fix, sent
        assert self._group_drift is not None  # group-missing, group-unexpected: through membership
        return self._group_drift.describe(d, user, part)

    def _redundant(self, user: User, r: Any) -> tuple[str, bool]:
        """(the advice for a redundant pack, whether following it frees a seat). A pack held through a group
        cannot be removed from the user directly (they leave the group); while a group gives it, removing the
        direct copy frees nothing."""
        part = self._part(r.sku_id)
        other = " + ".join(self._part(x) for x in r.next_to.split(",") if x) or "the rest (every plan disabled)"
        head = f"{user.upn}: {part} adds nothing next to {other}"
        if not r.groups:
            return f"{head}: removing it frees 1 seat", True
        names = self._group_names(r.groups)
        group = f"group{'s' if ',' in r.groups else ''} {names}"
        if r.direct:
            return (f"{head}: it is held directly and through {group}: removing the direct copy frees no seat "
                    f"while the group gives it"), False
        head = f"{head}: it comes through {group} (a license from a group cannot be removed from the user)"
        leaving = {g for g in r.groups.split(",") if g}
        lost = [x for x in r.next_to.split(",") if x and not user.holding(x).direct
                and set(user.holding(x).groups) <= leaving]
        if lost:  # the same group(s) give the pack that covers it: leaving would take that too
            keep = " + ".join(self._part(x) for x in lost)
            return (f"{head}, and leaving would take {keep} as well: remove {part} from the group's licenses, or "
                    f"give the user {keep} another way"), True
        return f"{head}: taking the user out of {names} frees 1 seat", True

    def operations(self) -> list[Operation]:
        ops: list[Operation] = []
        for uid in dict.fromkeys([*self._loc_rows, *self._rows]):
            user = self.snap.users[uid]
            loc_key = None
            if uid in self._locations:
                loc_key = operation_key(uid, OpKind.SET_USAGE_LOCATION)
                ops.append(Operation(key=loc_key, kind=OpKind.SET_USAGE_LOCATION, target_id=uid, target=user.upn,
                                     method="PATCH", url=f"/users/{uid}", body={"usageLocation": self._locations[uid]},
                                     rows=tuple(sorted(self._loc_rows[uid])), before=user.assigned,
                                     after=user.assigned))
            adds = self._adds.get(uid, {})
            removes = tuple(self._removes.get(uid, []))
            if not adds and not removes:
                continue
            add = tuple((s, tuple(sorted(p))) for s, p in adds.items())
            lost = {s for s in removes if not user.holding(s).groups}
            after = tuple(s for s in user.assigned if s not in lost) + tuple(
                s for s in adds if s not in user.assigned)
            ops.append(Operation(
                key=operation_key(uid, OpKind.ASSIGN_LICENSE), kind=OpKind.ASSIGN_LICENSE, target_id=uid,
                target=user.upn, method="POST", url=f"/users/{uid}/assignLicense",
                body={"addLicenses": [{"skuId": s, "disabledPlans": list(p)} for s, p in add],
                      "removeLicenses": list(removes)},
                rows=tuple(sorted(self._rows.get(uid, set()))), depends_on=loc_key if add else None,
                add=add, remove=removes, before=user.assigned, after=after))
        m = self.memberships
        located = {uid: operation_key(uid, OpKind.SET_USAGE_LOCATION) for uid in self._locations}
        return [*m.removals(), *ops, *self._addon_ops, *m.additions(after=located)]

    def seats(self) -> list[SeatChange]:
        out = [SeatChange(sid, self._part(sid), t, f) for sid, (t, f) in sorted(self._seats.items())]
        for c in self.capacity:
            if c.kind is Kind.ADDONS:
                out.append(SeatChange(c.sku_id, c.part_number, max(0, c.needed - c.consumed), 0))
        return out

    # -------------------------------------------------------------------------------------- add-ons

    def addons(self, sheets: Sequence[Sheet], *, all_environments: bool) -> None:
        from .addon_drift import addon_drift

        addon_drift(self, sheets, all_environments=all_environments)

    # -------------------------------------------------------------------------------------- report

    def drift_frame(self) -> pd.DataFrame:
        """The drift report: one line per drift, ``sheet`` naming the row's sheet when the run has several."""
        from math import inf

        import pandas as pd

        cols = ["kind", "target", "license", "detail", "fix", "sheet", "row", "applied"]
        order = {k: i for i, k in enumerate(("missing", "extra", "plans", "location", "allocation", "group-missing",
                                             "group-unexpected", "member-missing", "member-extra", "redundant"))}
        held = [sh for sh in self._held if sh.rows]
        where = SheetsOf(held) if len(held) > 1 else None  # one sheet (or a CSV file): no sheet names
        place = {id(sh): n for n, sh in enumerate(held)}
        for d in self.lines:  # the sheet a line's row is on (a line below the sheets, or advice: none)
            on = where.of(d["_at"]) if where is not None and d.get("row") and d.get("_at", -1) >= 0 else None
            d["sheet"], d["_place"] = (on.sheet_name or "", place[id(on)]) if on is not None else ("", 0)
        # sheet order, then row order, within a kind; the lines that name no row last
        lines = sorted(self.lines, key=lambda d: (order.get(d["kind"], 99), d["_place"] if d["row"] else inf,
                                                  d["row"] or inf))
        return pd.DataFrame(lines, columns=cols)


def _first_rows(frame: pd.DataFrame, uids: set[str]) -> dict[str, tuple[int, int]]:
    """uid -> (row index, row number) of the sheet row that gives the user's usage location (else their first
    row), for ``uids`` (the users a line of drift needs it for: a few, of a sheet of any size)."""
    frame = frame[frame["uid"].isin(uids)]
    located = frame[frame["location"] != ""].drop_duplicates("uid")
    first = frame.drop_duplicates("uid")
    out = {u: (int(r), int(n)) for u, r, n in zip(first["uid"], first["row"], first["number"], strict=True)}
    out.update((u, (int(r), int(n))) for u, r, n in zip(located["uid"], located["row"], located["number"], strict=True))
    return out


__all__ = ["DRIFT_COLUMN", "Reconciliation", "reconcile"]
