"""Turning a plan into journal records, and a journal back into one RowResult per input row.

Both directions live here so that ``apply`` and ``resume`` (and rebuilding results of a finished run without
its input file) share exactly one definition of a row's outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from ..errors import Severity
from ..kinds import handler, kind_of, kind_of_checked
from ..kinds.addons.names import addon_label
from ..kinds.addons.plan import parse_tokens
from ..models import WAVE_REFUSED, Api, InputRow, Kind, OpKind, Outcome, Plan, RequestStatus, RowResult, TenantSnapshot
from .journal import Observation, OpRecord, OpState, RowCheck, SkuRecord, finding_record

# ----------------------------------------------------------------------------------- Graph errors -> fix

#: (status or None, text found in Graph's message or code, lower-case) -> what the administrator should do.
#: Logic never keys off the message alone; these only choose the advice shown next to Graph's own words.
GRAPH_FIXES: tuple[tuple[int | None, str, str], ...] = (
    (None, "invalid usage location",
     "Give the user a usage location (a two-letter country code in the usage location column) and run the row again."),
    (None, "usagelocation",
     "Use a two-letter ISO 3166 country code (like DE or US) for the usage location."),
    (None, "does not have any available licenses",
     "No seat is free for this license: buy more, or free seats (remove the license from users who no longer "
     "need it), then run the row again."),
    (None, "mutually exclusive",
     "Two service plans conflict: disable one of them (disabled plans column) or remove the conflicting "
     "license in the same row (replace)."),
    (None, "depends on the service plan",
     "A service plan needs another one that is disabled or missing: do not disable the plan it depends on."),
    (None, "does not correspond to a valid company license",
     "The tenant does not own this license: check the SKU in the row against the tenant's subscriptions."),
    (None, "does not have a corresponding license",
     "The user does not hold this license (any more): nothing to remove; drop the row."),
    (None, "cannot be removed directly",
     "The license comes from a group: remove the user from that group instead."),
    (None, "is not part of the license",
     "A disabled plan named in the row is not part of this license: correct the disabled plans column."),
    (None, "applies to the company",
     "This license is for the organisation, not for users: choose a user license."),
    # before the status-only 404 below: Power Platform's 404 names its code
    (None, "environmentnotfound",
     "The environment no longer exists (deleted since the sheet was checked): correct the environment in the row."),
    (404, "",
     "The user no longer exists (deleted or renamed since the sheet was checked): correct the user in the row."),
    (403, "",
     "The app lacks a permission: grant LicenseAssignment.ReadWrite.All (and User.ReadWrite.All to set usage "
     "locations) with admin consent, then resume."),
    (None, "tenantpoollockedbypolicy",
     "The environment's group policy locks the tenant pool: ask a Power Platform administrator to change the "
     "environment group's rules, or allocate to another environment."),
    (None, "insufficientcapacity",
     "Not enough of this add-on is left unallocated: lower the amount, free units in other environments, or buy "
     "more, then run the row again."),
    (429, "", "The service kept throttling: resume the run later."),
    (None, "serviceunavailable", "The service (Graph or Power Platform) was unavailable: resume the run later."),
)


def graph_fix(status: int | None, code: str, message: str) -> str:
    """Advice for a Graph error answer, or "" when we have none."""
    text = f"{code} {message}".lower()
    for st, needle, fix in GRAPH_FIXES:
        if (st is None or st == status) and (needle in text if needle else st == status):
            return fix
    if status is not None and status >= 500:
        return "The service (Graph or Power Platform) was unavailable: resume the run later."
    return ""


# ----------------------------------------------------------------------------------- plan -> journal


def part_numbers(snapshot: TenantSnapshot) -> dict[str, str]:
    return {sid: s.part_number for sid, s in snapshot.skus.items()}


def licenses_text(sku_ids: Iterable[str], parts: Mapping[str, str]) -> str:
    return ", ".join(parts.get(s, s) for s in sku_ids)


def row_checks(plan: Plan) -> list[RowCheck]:
    """One RowCheck per validated request, with what the results need later (action, state, finding)."""
    v = plan.validation
    seqs: dict[int, int] = defaultdict(int)
    out: list[RowCheck] = []
    for c in v.requests:
        kind = kind_of_checked(c)
        row = c.request.row
        seq = seqs[row]
        seqs[row] += 1
        main = next((f for f in c.findings if f.severity is Severity.ERROR), None)
        if main is None and c.status is RequestStatus.UNCHANGED:
            main = next(iter(c.findings), None)
        target_id, state = kind.target(c, v.snapshot)
        out.append(
            RowCheck(
                row=row,
                seq=seq,
                status=c.status,
                action=kind.action_text(c, v.snapshot),
                target_id=target_id,
                code=main.code if main else ("" if c.status is RequestStatus.READY else str(c.status)),
                message=main.message if main else "",
                fix=main.fix if main else "",
                state=state,
                findings=tuple(finding_record(f) for f in c.findings),
            )
        )
    return out


def sku_records(plan: Plan) -> list[SkuRecord]:
    """The capacity pools a run records before it starts: every SKU, and every add-on when add-ons are planned."""
    snap = plan.validation.snapshot
    out = [
        SkuRecord(sku_id=s.sku_id, part_number=s.part_number, enabled=s.enabled, consumed_before=s.consumed,
                  label=s.product_name or "")
        for s in snap.skus.values()
    ]
    if any(s.kind is Kind.ADDONS for s in plan.validation.sheets):
        out += [
            SkuRecord(sku_id=ct, part_number=ct, enabled=round(r.purchased), consumed_before=round(r.allocated),
                      kind=Kind.ADDONS, label=addon_label(ct))
            for ct, r in snap.currencies.items()
        ]
    return out


# ----------------------------------------------------------------------------------- journal -> results


def row_results(
    rows: Iterable[InputRow],
    checks: Iterable[RowCheck],
    ops: Iterable[OpRecord],
    skus: Iterable[SkuRecord],
    kinds: Mapping[int, Kind] | None = None,
    observations: Mapping[int, Observation] | None = None,
) -> list[RowResult]:
    """Exactly one RowResult per input row, in input order.

    A row's outcome, most serious first: failed (an operation for it failed) > not run (one has not settled) >
    skipped (a request of the row has an error finding or is over capacity) > applied > unchanged.
    """
    names = {s.sku_id: s.part_number for s in skus if s.kind is Kind.LICENSES}
    kinds = kinds or {}
    by_row_checks: dict[int, list[RowCheck]] = defaultdict(list)
    for c in checks:
        by_row_checks[c.row].append(c)
    by_row_ops: dict[int, list[OpRecord]] = defaultdict(list)
    for rec in ops:
        for r in rec.op.rows:
            by_row_ops[r].append(rec)

    rows = list(rows)
    numbers = {r.index: r.number for r in rows}
    out: list[RowResult] = []
    for row in rows:
        kind = kind_of(kinds.get(row.index, Kind.LICENSES))
        cs = by_row_checks.get(row.index, [])
        os_ = sorted(by_row_ops.get(row.index, []), key=lambda o: o.seq)
        action = "; ".join(dict.fromkeys(c.action for c in cs if c.action))
        assign = next((o for o in os_ if not handler(o.op.kind).prerequisite), None)
        before = (kind.state_text(assign.op.before, names) if assign and (assign.op.before or assign.op.after)
                  else next((c.state for c in cs), ""))
        res = RowResult(row=row.index, row_number=row.number, status=Outcome.UNCHANGED, action=action,
                        before=before, after=before)
        failed = next((o for o in os_ if o.state is OpState.FAILED), None)
        pending = [o for o in os_ if o.state not in (OpState.SUCCEEDED, OpState.FAILED)]
        skipped = next(
            (c for c in cs if c.status in (RequestStatus.ERROR, RequestStatus.OVER_CAPACITY)), None
        )
        settled_times = [o.settled for o in os_ if o.settled is not None]
        res.time = max(settled_times) if settled_times else None
        if failed is not None:
            res.status = Outcome.FAILED
            res.code, res.message, res.request_id = failed.error_code, failed.error_message, failed.request_id
            res.fix = failed.fix
            if len(failed.op.rows) > 1:  # one request per user (environment): its rows succeed or fail together
                others = ", ".join(str(numbers[r]) for r in failed.op.rows if r != row.index and r in numbers)
                if failed.op.api is Api.POWERPLATFORM:
                    res.message += (f" (This environment's rows {row.number}, {others} go to Power Platform as one "
                                     "request, so they fail together.)")
                else:
                    res.message += (f" (This user's rows {row.number}, {others} go to Graph as one call, so they "
                                    "fail together.)")

        elif pending:
            res.status = Outcome.NOT_RUN
            o = pending[0]
            res.message = (
                "The run stopped before this row's change was confirmed; resume the run to finish it."
                if o.state in (OpState.SENT, OpState.UNKNOWN)
                else "The run stopped before this row was sent; resume the run to finish it."
            )
            res.fix = "Run 'license-batch resume RUN_ID'."
        elif skipped is not None:
            res.status = Outcome.SKIPPED
            res.code, res.message, res.fix = skipped.code, skipped.message, skipped.fix
            if os_:  # other requests of the same row (a cell with several licenses) went ahead
                done = "; ".join(dict.fromkeys(c.action for c in cs if c.status is RequestStatus.READY and c.action))
                res.message = f"Partly applied: {done or 'the rest of the row'} was applied. Not applied: {res.message}"
                res.request_id = (assign or os_[-1]).request_id
                if assign is not None:
                    res.after = kind.state_text(assign.op.after, names)
        elif any(c.status is RequestStatus.READY for c in cs) and not os_:
            # validation passed the row but the plan holds nothing for it: the wave was refused as a whole
            res.status = Outcome.SKIPPED
            res.code = WAVE_REFUSED
            res.message = "Not applied: the wave was refused because a license or add-on is short."
            res.fix = "Buy or free seats (or add-on units), or run with --on-shortfall partial."
        elif os_:
            res.status = Outcome.APPLIED
            res.request_id = (assign or os_[-1]).request_id
        elif not cs:
            res.status = Outcome.SKIPPED
            res.code, res.message = "no-request", "The row asks for no license change."
        else:
            res.status = Outcome.UNCHANGED
            c0 = cs[0]
            res.code, res.message = c0.code if c0.code != "unchanged" else "", c0.message
        if res.status is Outcome.APPLIED and assign is not None:
            res.after = kind.state_text(assign.op.after, names) if assign.op.after else res.after
        obs = (observations or {}).get(row.index)
        if obs is not None and res.status is Outcome.APPLIED:
            _observed(res, obs)
        out.append(res)
    return out


def touched_pools(skus: Iterable[SkuRecord], ops: Iterable[OpRecord]) -> frozenset[str]:
    """Part numbers and currencyTypes the run's operations change (whatever their outcome)."""
    parts = {s.sku_id: s.part_number for s in skus if s.kind is Kind.LICENSES}
    out: set[str] = set()
    for rec in ops:
        op = rec.op
        if op.kind is OpKind.ASSIGN_LICENSE:
            out.update(parts.get(sid, sid) for sid in (*(a for a, _ in op.add), *op.remove))
        elif op.kind is OpKind.ALLOCATE_ADDONS:
            before, after = parse_tokens(op.before), parse_tokens(op.after)
            out.update(ct for ct in set(before) | set(after) if before.get(ct, 0) != after.get(ct, 0))
    return frozenset(out)


def _observed(res: RowResult, obs: Observation) -> None:
    """A row whose write succeeded but whose effect completes later (group licensing): what the tenant showed."""
    if obs.after:
        res.after = obs.after
    if obs.state == "failed":
        res.status = Outcome.FAILED
    if obs.state != "done" or obs.message:
        res.code, res.message, res.fix = obs.code, obs.message, obs.fix
    if obs.checked is not None:
        res.time = obs.checked


def seats_by_part(skus: Iterable[SkuRecord], *, after: bool, kind: Kind = Kind.LICENSES) -> dict[str, int]:
    """Units used per pool of one kind: part number -> consumed seats; currencyType -> units allocated."""
    out: dict[str, int] = {}
    for s in skus:
        v = s.consumed_after if after else s.consumed_before
        if v is not None and s.kind is kind:
            out[s.part_number] = v
    return out


def expected_allocated(skus: Iterable[SkuRecord], ops: Iterable[OpRecord]) -> dict[str, int]:
    """Allocated units per currencyType as the settled allocation operations imply."""
    allocated = {s.sku_id: s.consumed_before for s in skus if s.kind is Kind.ADDONS}
    for rec in ops:
        if rec.state is not OpState.SUCCEEDED or rec.op.kind is not OpKind.ALLOCATE_ADDONS:
            continue
        before, after = parse_tokens(rec.op.before), parse_tokens(rec.op.after)
        for ct, n in after.items():
            allocated[ct] = allocated.get(ct, 0) + n - before.get(ct, 0)
    return allocated


def expected_consumed(skus: Iterable[SkuRecord], ops: Iterable[OpRecord]) -> dict[str, int]:
    """Consumed units per skuId as the settled operations imply (used when the tenant cannot be read)."""
    consumed = {s.sku_id: s.consumed_before for s in skus if s.kind is Kind.LICENSES}
    for rec in ops:
        if rec.state is not OpState.SUCCEEDED or rec.op.kind is not OpKind.ASSIGN_LICENSE:
            continue
        before, after = set(rec.op.before), set(rec.op.after)
        for sid in after - before:
            consumed[sid] = consumed.get(sid, 0) + 1
        for sid in before - after:
            consumed[sid] = consumed.get(sid, 0) - 1
    return consumed
