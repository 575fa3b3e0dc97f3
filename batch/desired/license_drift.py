"""License drift in a reconcile: the licenses sheets' user-to-license rows are the desired licenses of the scope.

``drift.desired_frame`` resolves the rows (errors name their row; a user with a row in error keeps their other
licenses), ``drift.classify`` joins them with what the users hold (pandas). Missing licenses, different disabled
plans (the ones to disable) and usage locations are fixed by ``--apply``; extra licenses and plans to re-enable
only with ``--prune``; a redundant pack (one that adds nothing next to the user's other licenses) is advice.
Licenses held through groups are never assigned or removed directly: a license the sheet expects through a group is
fixed by adding the user to the group (``--apply``), one a group gives that the sheet does not ask for by taking
the user out of it (``--apply --prune``; never when the group also gives a license the sheet asks for, nor for
rule-based groups: those stay advice), see ``group_drift``. One assignLicense per user (and one usage-location
write before it), built by ``Builder.operations``.

Licenses (``skus``, ``--sku``): the sheet is the desired state of these licenses only (an export made with
``--sku SPE_E3`` is reconciled with ``--sku SPE_E3``): other licenses a user holds are neither "extra" nor
"redundant". The sheet's rows are all compared whatever they name: a row is always an explicit ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import RowFinding, Severity
from ..models import Action, CheckedRequest, InputRow, LicenseRequest, RequestStatus, Role, Sheet, User
from . import drift as D
from .group_drift import GROUP_DRIFT, GroupDrift
from .reconcile import FIXED_BY
from .where import SheetsOf

if TYPE_CHECKING:
    import pandas as pd

    from ..jobs import Session
    from .reconcile import Builder


def license_drift(b: Builder, sheets: Sequence[Sheet], session: Session, in_scope: set[str] | None,
                  frame: pd.DataFrame | None = None) -> None:
    """Every licenses sheet, one desired state. A line of drift outside the sheets (an extra license, a user
    of the scope no sheet names) gets a row of its own below the sheet that names the user (else the first)."""
    where = SheetsOf(sheets)
    desired = D.desired_frame(sheets, b.snap, session.catalog, frame)
    named = set(desired.frame["uid"].tolist())
    b.sheet_skus = set(desired.frame["sku_id"].unique().tolist())
    relevant = named | (in_scope or set())  # every id is the snapshot's (users named, users in scope)
    users = (list(b.snap.users.values()) if len(relevant) == len(b.snap.users) else
             [b.snap.users[u] for u in relevant if u in b.snap.users])
    actual = D.actual_frame(users)
    diff = D.classify(desired.frame, actual, in_scope, prune=b.prune)
    if b.only_skus is not None:  # --sku: licenses outside it that the sheet does not name are left alone
        diff = diff[(diff["row"] >= 0) | diff["sku_id"].isin(b.only_skus)]
    if desired.error_users:  # a user with a row in error: their other licenses are not "extra" (never pruned)
        diff = diff[~(diff["uid"].isin(desired.error_users) & diff["drift"].isin(["extra", "group-unexpected"]))]
    b._group_drift = GroupDrift(b.memberships, session, sheets, desired.frame, diff, prune=b.prune)
    for at, found in desired.errors.items():
        for f in found:
            b.lines.append({"kind": "row-error", "target": "", "license": "", "detail": f.message,
                            "fix": f.fix + " Until then this user's other licenses are left alone.",
                            "row": f.row or 0, "applied": False, "_at": at})
    locs = D.location_drift(desired, b.snap.users)
    redundant = D.redundant(actual, b.snap.skus, in_scope if in_scope is not None else named)
    if b.only_skus is not None:
        redundant = redundant[redundant["sku_id"].isin(b.only_skus)]
    first_row = _first_rows(desired.frame, set(diff.loc[diff["row"] < 0, "uid"].tolist()) | set(locs))
    texts: dict[int, list[str]] = {}
    extra_rows: dict[int, list[InputRow]] = {}  # id(sheet) -> rows below it
    requests: list[Any] = []  # CheckedRequest, and CheckedGroup for drift fixed through membership
    b.hold_rows(sheets)
    for d in diff.itertuples(index=False):
        user = b.snap.users[d.uid]
        part = b._part(d.sku_id)
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
            below = b.extra_row(home, cells)
            row, row_number = below.index, below.number
            extra_rows.setdefault(id(home), []).append(below)
        else:
            row_number = int(d.number)
        detail, fix, sent = _describe(b, d, user, part)
        texts.setdefault(row, []).append(f"{d.drift}: {detail}")
        b.lines.append({"kind": d.drift, "target": user.upn, "license": part, "detail": detail, "fix": fix,
                        "row": row_number if int(d.row) >= 0 else 0, "applied": sent, "_at": row})
        if sent and d.drift in GROUP_DRIFT:  # fixed through membership: the groups kind's records
            requests.extend(b._group_drift.checked(d, row, row_number, user, part, b.lines[-1],
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
            b.prunable[d.sku_id] = b.prunable.get(d.sku_id, 0) + 1
            b._seats.setdefault(d.sku_id, [0, 0])
        if sent:
            b._rows.setdefault(d.uid, set()).add(row)
            if d.add:
                b._adds.setdefault(d.uid, {})[d.sku_id] = tuple(x for x in d.plans_after.split(",") if x)
            if d.remove:
                b._removes.setdefault(d.uid, []).append(d.sku_id)
            seat = b._seats.setdefault(d.sku_id, [0, 0])
            seat[0] += int(bool(d.takes))
            seat[1] += int(bool(d.frees and d.remove))
    for uid, (now, want) in locs.items():
        row, number = first_row.get(uid, (-1, 0))
        user = b.snap.users[uid]
        detail = f"usage location {now or '(none)'} -> {want}"
        texts.setdefault(row, []).append(f"location: {detail}")
        b.lines.append({"kind": "location", "target": user.upn, "license": "", "detail": detail,
                        "fix": FIXED_BY["location"], "row": number, "applied": True, "_at": row})
        b._locations[uid] = want
        b._loc_rows.setdefault(uid, set()).add(row)
        req = LicenseRequest(row, number, user.upn, Action.ASSIGN, "")
        requests.append(CheckedRequest(req, RequestStatus.READY, [RowFinding(
            "drift-location", Severity.INFO, detail, "", number, None)], user_id=uid,
            usage_location=want))
    for r in sorted(redundant.itertuples(index=False), key=lambda r: (b.snap.users[r.uid].upn, r.sku_id)):
        user = b.snap.users[r.uid]
        detail, frees = _redundant(b, user, r)
        part = b._part(r.sku_id)
        if frees:
            b.redundant_seats[part] = b.redundant_seats.get(part, 0) + 1
        b.lines.append({"kind": "redundant", "target": user.upn, "license": part, "detail": detail,
                        "fix": FIXED_BY["redundant"], "row": 0, "applied": False})
    b.capacity.extend(b.license_capacity())
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
            b.sheets.append(b.drift_sheet(sheet, extra_rows.get(id(sheet), []), texts))
        requests.sort(key=lambda c: c.request.row)
        b.checked.extend(requests)

    b.on_finish(finish)

def _describe(b: Builder, d: Any, user: User, part: str) -> tuple[str, str, bool]:
    """(what differs, how it is fixed, whether this run sends the fix)."""
    k = d.drift
    if k == "missing":
        return f"{user.upn} should hold {part} and does not", FIXED_BY[k], True
    if k == "extra":
        if d.groups:  # the group's part is a group-unexpected line of its own (it frees the seat)
            names = _group_names(b, d.groups)
            head = f"{user.upn} holds {part} directly and through group {names}; the sheet does not ask for it"
            if b.prune:
                return (f"{head}: the direct assignment is removed (the group's: group-unexpected)",
                        FIXED_BY[k], True)
            return head, "run with --apply --prune to remove the direct assignment", False
        if b.prune:
            return f"{user.upn} holds {part} directly; the sheet does not ask for it", FIXED_BY[k], True
        return (f"{user.upn} holds {part}; the sheet does not ask for it",
                "run with --apply --prune to remove it", False)
    if k == "plans":
        parts = []
        if d.disable:
            parts.append(f"to disable: {_plan_names(b, d.sku_id, d.disable)}")
        if d.enable:
            parts.append(f"disabled in the tenant, not in the sheet: {_plan_names(b, d.sku_id, d.enable)}")
        sent = bool(d.disable) or (b.prune and bool(d.enable))
        fix = FIXED_BY[k] if sent or not d.enable else "run with --apply --prune to re-enable them"
        return f"{part} disabled plans differ ({'; '.join(parts)})", fix, sent
    assert b._group_drift is not None  # group-missing, group-unexpected: through membership
    return b._group_drift.describe(d, user, part)


def _redundant(b: Builder, user: User, r: Any) -> tuple[str, bool]:
    """(the advice for a redundant pack, whether following it frees a seat). A pack held through a group
    cannot be removed from the user directly (they leave the group); while a group gives it, removing the
    direct copy frees nothing."""
    part = b._part(r.sku_id)
    other = " + ".join(b._part(x) for x in r.next_to.split(",") if x) or "the rest (every plan disabled)"
    head = f"{user.upn}: {part} adds nothing next to {other}"
    if not r.groups:
        return f"{head}: removing it frees 1 seat", True
    names = _group_names(b, r.groups)
    group = f"group{'s' if ',' in r.groups else ''} {names}"
    if r.direct:
        return (f"{head}: it is held directly and through {group}: removing the direct copy frees no seat "
                f"while the group gives it"), False
    head = f"{head}: it comes through {group} (a license from a group cannot be removed from the user)"
    leaving = {g for g in r.groups.split(",") if g}
    lost = [x for x in r.next_to.split(",") if x and not user.holding(x).direct
            and set(user.holding(x).groups) <= leaving]
    if lost:  # the same group(s) give the pack that covers it: leaving would take that too
        keep = " + ".join(b._part(x) for x in lost)
        return (f"{head}, and leaving would take {keep} as well: remove {part} from the group's licenses, or "
                f"give the user {keep} another way"), True
    return f"{head}: taking the user out of {names} frees 1 seat", True


def _plan_names(b: Builder, sku_id: str, ids: str) -> str:
    s = b.snap.skus.get(sku_id)
    names = {p.id: p.name for p in s.service_plans} if s else {}
    return "; ".join(sorted(names.get(i, i) for i in ids.split(",") if i))


def _group_names(b: Builder, ids: str) -> str:
    return ", ".join(b.memberships.name(g) for g in ids.split(",") if g)


def _first_rows(frame: pd.DataFrame, uids: set[str]) -> dict[str, tuple[int, int]]:
    """uid -> (row index, row number) of the sheet row that gives the user's usage location (else their first
    row), for ``uids`` (the users a line of drift needs it for: a few, of a sheet of any size)."""
    frame = frame[frame["uid"].isin(uids)]
    located = frame[frame["location"] != ""].drop_duplicates("uid")
    first = frame.drop_duplicates("uid")
    out = {u: (int(r), int(n)) for u, r, n in zip(first["uid"], first["row"], first["number"], strict=True)}
    out.update((u, (int(r), int(n))) for u, r, n in zip(located["uid"], located["row"], located["number"], strict=True))
    return out

