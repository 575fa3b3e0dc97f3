"""Turning a plan into journal records, and a journal back into one RowResult per input row.

Both directions live here so that ``apply`` and ``resume`` (and rebuilding results of a finished run without
its input file) share exactly one definition of a row's outcome.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import Severity
from ..journal import OpRecord, OpState, RowCheck, SkuRecord, finding_record
from ..models import (
    Action,
    CheckedRequest,
    InputRow,
    OpKind,
    Outcome,
    Plan,
    RequestStatus,
    RowResult,
    TenantSnapshot,
)

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
    (404, "",
     "The user no longer exists (deleted or renamed since the sheet was checked): correct the user in the row."),
    (403, "",
     "The app lacks a permission: grant LicenseAssignment.ReadWrite.All (and User.ReadWrite.All to set usage "
     "locations) with admin consent, then resume."),
    (429, "", "Graph kept throttling: resume the run later."),
    (None, "serviceunavailable", "Graph was unavailable: resume the run later."),
)


def graph_fix(status: int | None, code: str, message: str) -> str:
    """Advice for a Graph error answer, or "" when we have none."""
    text = f"{code} {message}".lower()
    for st, needle, fix in GRAPH_FIXES:
        if (st is None or st == status) and (needle in text if needle else st == status):
            return fix
    if status is not None and status >= 500:
        return "Graph was unavailable: resume the run later."
    return ""


# ----------------------------------------------------------------------------------- plan -> journal


def part_numbers(snapshot: TenantSnapshot) -> dict[str, str]:
    return {sid: s.part_number for sid, s in snapshot.skus.items()}


def licenses_text(sku_ids: Iterable[str], parts: Mapping[str, str]) -> str:
    return ", ".join(parts.get(s, s) for s in sku_ids)


def action_text(c: CheckedRequest, parts: Mapping[str, str]) -> str:
    """What the row asks, in words: "assign SPE_E5", "replace SPE_E3 -> SPE_E5", "remove X",
    followed by "set usage location DE" when the row also sets one."""
    r = c.request
    to = parts.get(c.sku_id, r.sku) if c.sku_id else r.sku
    words: list[str] = []
    if r.action is Action.ASSIGN:
        words.append(f"assign {to}")
    elif r.action is Action.REMOVE:
        words.append(f"remove {to}")
    elif r.action is Action.REPLACE:
        frm = parts.get(c.from_sku_id, r.from_sku or "") if c.from_sku_id else (r.from_sku or "")
        words.append(f"replace {frm} -> {to}")
    elif r.sku:
        words.append(r.sku)
    if c.usage_location:
        words.append(f"set usage location {c.usage_location}")
    return "; ".join(w.strip() for w in words if w.strip())


def row_checks(plan: Plan) -> list[RowCheck]:
    """One RowCheck per validated request, with what the results need later (action, licenses, finding)."""
    v = plan.validation
    parts = part_numbers(v.snapshot)
    seqs: dict[int, int] = defaultdict(int)
    out: list[RowCheck] = []
    for c in v.requests:
        row = c.request.row
        seq = seqs[row]
        seqs[row] += 1
        main = next((f for f in c.findings if f.severity is Severity.ERROR), None)
        if main is None and c.status is RequestStatus.UNCHANGED:
            main = next(iter(c.findings), None)
        user = v.snapshot.users.get(c.user_id) if c.user_id else None
        out.append(
            RowCheck(
                row=row,
                seq=seq,
                status=c.status,
                action=action_text(c, parts),
                user_id=c.user_id,
                code=main.code if main else ("" if c.status is RequestStatus.READY else str(c.status)),
                message=main.message if main else "",
                fix=main.fix if main else "",
                licenses=licenses_text(user.assigned, parts) if user else "",
                findings=tuple(finding_record(f) for f in c.findings),
            )
        )
    return out


def sku_records(plan: Plan) -> list[SkuRecord]:
    return [
        SkuRecord(sku_id=s.sku_id, part_number=s.part_number, enabled=s.enabled, consumed_before=s.consumed)
        for s in plan.validation.snapshot.skus.values()
    ]


# ----------------------------------------------------------------------------------- journal -> results


@dataclass(frozen=True, slots=True)
class _Parts:
    by_id: Mapping[str, str]

    def text(self, ids: Iterable[str]) -> str:
        return licenses_text(ids, self.by_id)


def row_results(
    rows: Iterable[InputRow],
    checks: Iterable[RowCheck],
    ops: Iterable[OpRecord],
    skus: Iterable[SkuRecord],
) -> list[RowResult]:
    """Exactly one RowResult per input row, in input order.

    A row's outcome, most serious first: failed (an operation for it failed) > not run (one has not settled) >
    skipped (a request of the row has an error finding or is over capacity) > applied > unchanged.
    """
    parts = _Parts({s.sku_id: s.part_number for s in skus})
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
        cs = by_row_checks.get(row.index, [])
        os_ = sorted(by_row_ops.get(row.index, []), key=lambda o: o.seq)
        action = "; ".join(dict.fromkeys(c.action for c in cs if c.action))
        assign = next((o for o in os_ if o.op.kind is OpKind.ASSIGN_LICENSE), None)
        before = parts.text(assign.op.before) if assign else next((c.licenses for c in cs), "")
        res = RowResult(row=row.index, row_number=row.number, status=Outcome.UNCHANGED, action=action,
                        licenses_before=before, licenses_after=before)
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
            if len(failed.op.rows) > 1:  # one assignLicense per user: its rows succeed or fail together
                others = ", ".join(str(numbers[r]) for r in failed.op.rows if r != row.index and r in numbers)
                res.message += (
                    f" (This user's rows {row.number}, {others} go to Graph as one call, so they fail together.)"
                )

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
                    res.licenses_after = parts.text(assign.op.after)
        elif any(c.status is RequestStatus.READY for c in cs) and not os_:
            # validation passed the row but the plan holds nothing for it: the wave was refused as a whole
            res.status = Outcome.SKIPPED
            res.code = "wave-refused"
            res.message = "Not applied: the wave was refused because a license is short of seats."
            res.fix = "Buy or free seats, or run with --on-shortfall partial."
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
            res.licenses_after = parts.text(assign.op.after)
        out.append(res)
    return out


def seats_by_part(skus: Iterable[SkuRecord], *, after: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in skus:
        v = s.consumed_after if after else s.consumed_before
        if v is not None:
            out[s.part_number] = v
    return out


def expected_consumed(skus: Iterable[SkuRecord], ops: Iterable[OpRecord]) -> dict[str, int]:
    """Consumed units per skuId as the settled operations imply (used when the tenant cannot be read)."""
    consumed = {s.sku_id: s.consumed_before for s in skus}
    for rec in ops:
        if rec.state is not OpState.SUCCEEDED or rec.op.kind is not OpKind.ASSIGN_LICENSE:
            continue
        before, after = set(rec.op.before), set(rec.op.after)
        for sid in after - before:
            consumed[sid] = consumed.get(sid, 0) + 1
        for sid in before - after:
            consumed[sid] = consumed.get(sid, 0) - 1
    return consumed
