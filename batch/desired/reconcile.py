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
only with ``--prune``. Licenses sheets: ``license_drift`` (``skus``/``--sku``: the licenses compared beyond the
sheet's rows; licenses held through groups: ``group_drift``); add-ons sheets: ``addon_drift``. A membership sheet
(user, group[, action]) says who should be in which group: missing members are added (``--apply``); members the
sheet says to remove, and (scope other than ``users``) members of the scope it leaves out, only with ``--prune``
(``membership_drift``). Every membership write, from either, is merged per group (``memberships``). Every input
row keeps one result row; drift outside the sheet (an extra license, a user of the scope the sheet leaves out) is
added as rows below it, marked in a ``Drift`` column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputError, RowFinding
from ..kinds.licenses.plan import operation_key
from ..models import (
    CapacityLine,
    CheckedAddon,
    CheckedRequest,
    InputRow,
    Kind,
    Operation,
    OpKind,
    Plan,
    Role,
    SeatChange,
    Sheet,
    ShortfallPolicy,
    TenantSnapshot,
    Validation,
)
from . import drift as D
from .group_drift import ADD_FIX, REMOVE_FIX, GroupDrift
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
    from ..tenant.graph import StateCache, user_from_json

    graph = session.tenant.graph
    if scope.kind == "users":
        return None
    if scope.kind == "all":
        return set(snapshot.users)
    cond = scope.condition
    if cond is not None:
        ids: set[str] = set()
        states = StateCache()  # one per listing: users share their assignments' tuples (drift.actual_frame)
        for page in iter_user_pages(graph, where=(cond,)):
            for raw in page:
                u = user_from_json(raw, states)
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
            session.tenant.read_powerplatform(snapshot)
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

    def drift_sheet(self, sheet: Sheet, below: Sequence[InputRow], texts: Mapping[int, Sequence[str]]) -> Sheet:
        """The sheet as the run's results show it: its rows, then the rows of drift added below it, each with its
        Drift cell (``texts``: row index -> what differs; typed cells kept, the Drift cell a text one)."""
        rows = [replace(r, cells=(*r.cells, "; ".join(texts.get(r.index, ()))),
                        values=None if r.values is None else (*r.values, None)) for r in [*sheet.rows, *below]]
        return replace(sheet, headers=(*sheet.headers, DRIFT_COLUMN), rows=rows)

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

    def licenses(self, sheets: Sequence[Sheet], session: Session, in_scope: set[str] | None,
                 frame: pd.DataFrame | None = None) -> None:
        """Every licenses sheet, one desired state (``license_drift``)."""
        from .license_drift import license_drift

        license_drift(self, sheets, session, in_scope, frame)

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
        return [*m.removals(), *ops, *self._addon_ops, *m.additions()]

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
        order = {k: i for i, k in enumerate(D.DRIFT_KINDS)}
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


__all__ = ["DRIFT_COLUMN", "Reconciliation", "reconcile"]
