"""``license-batch rollback RUN_ID``: undo what a run applied, from its journal.

The journal keeps each changed target's state from before the run (``target_state``) and every operation with
its outcome. For each target a run changed (an operation that succeeded, or whose outcome is unknown):

- what it may look like if nobody touched it since = the state before, with the run's operations applied, each
  operation whose outcome the run never learnt (a crash mid-run) either taken or not
  (:func:`batch.desired.state.left_by_the_run`, the same rule for users, environments and memberships);
- what it looks like now (read from the tenant);
- if it is none of those, someone changed it since the run: it is LEFT ALONE and reported ``changed-since-run``;
- otherwise the operations that bring it back to the state before: one ``assignLicense`` per user (licenses
  the run added removed, licenses it removed or swapped away assigned again with their disabled plans exactly
  as they were), the usage location as it was, each environment's allocations as they were;
- a group's membership: per user the run added or removed (:mod:`batch.desired.rollback_members`).

A rollback is itself a run (``plan_rollback`` gives the same records as any plan; ``jobs.execute`` journals,
applies and reports it, and ``resume`` finishes it), so a rollback can also be rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..apply.journal import JOURNAL_NAME, Journal, OpState
from ..errors import ConfigError, JournalError, RowFinding, Severity
from ..kinds.addons.plan import allocation_operation
from ..kinds.licenses.plan import operation_key
from ..models import (
    AddonRequest,
    Api,
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
    Sheet,
    Validation,
)
from .rollback_members import group_targets, memberships_sheet, plan_memberships, read_now, touched_users
from .state import expected_after, left_by_the_run, same_allocations, same_user_state, user_state

if TYPE_CHECKING:
    from ..jobs import PlanRun, Session

HEADERS = ("Target", "Restores", "Rolled back run")


@dataclass(slots=True)
class Rollback:
    of_run: str
    run_id: str
    run_dir: Path
    plan: Plan
    changed_since: list[str] = field(default_factory=list)  # targets left alone
    restores: list[str] = field(default_factory=list)  # one line per target to restore

    @property
    def prepared(self) -> PlanRun:
        from ..jobs import PlanRun

        return PlanRun(run_id=self.run_id, run_dir=self.run_dir, source=self.run_dir / "rollback",
                       validation=self.plan.validation, plan=self.plan, options={"rollback_of": self.of_run})


def _changed_ops(journal: Journal) -> tuple[dict[tuple[str, str], list[Operation]], set[str]]:
    """(api, target) -> the operations that changed it or may have; and the keys of those whose outcome is
    unknown (sent, never settled)."""
    out: dict[tuple[str, str], list[Operation]] = {}
    unsure: set[str] = set()
    for rec in journal.operations():
        if rec.state in (OpState.SUCCEEDED, OpState.UNKNOWN, OpState.SENT):
            out.setdefault((str(rec.op.api), rec.op.target_id), []).append(rec.op)
            if rec.state is not OpState.SUCCEEDED:
                unsure.add(rec.op.key)
    return out, unsure


def plan_rollback(session: Session, run_id: str) -> Rollback:
    """Read the run's journal and the tenant now; plan what restores every target nobody changed since."""
    from ..jobs import new_run_id

    path = session.settings.report_dir / run_id / JOURNAL_NAME
    if not path.exists():
        raise ConfigError(f"No run '{run_id}' under {session.settings.report_dir}.",
                          fix="Give the run id that apply printed, and the same --report-dir.")
    with Journal.open(path) as journal:
        prior = journal.target_states()
        if prior is None:
            raise JournalError(f"Run {run_id} was journalled before rollback was possible (no states from before "
                               "the run): it cannot be rolled back.")
        planned_tenant = (journal.meta("tenant_id") or "").lower()
        changed, unsure = _changed_ops(journal)
    tenant = session.tenant
    if planned_tenant and tenant.tenant_id.lower() != planned_tenant:
        raise JournalError(f"Run {run_id} was applied to tenant {planned_tenant}, not to the target "
                           f"{tenant.tenant_id}. Nothing was sent.")
    group_ids = group_targets(changed)
    members = touched_users(changed, group_ids)
    user_ids = sorted(t for a, t in changed if a == str(Api.GRAPH) and t not in group_ids)
    env_ids = sorted(t for a, t in changed if a == str(Api.POWERPLATFORM))
    snapshot = tenant.snapshot(sorted(set(user_ids) | {u for us in members.values() for u in us}),
                               powerplatform=bool(env_ids))
    if members:
        read_now(tenant.graph, snapshot, members)
    new_id = new_run_id()
    rb = Rollback(of_run=run_id, run_id=new_id, run_dir=session.settings.report_dir / new_id,
                  plan=Plan([], [], Validation(_sheet(Kind.LICENSES), [], [], snapshot)))
    user_rows: list[InputRow] = []
    env_rows: list[InputRow] = []
    checked: list[Any] = []  # CheckedRequest, CheckedAddon, CheckedGroup (as validate keeps them)
    ops: list[Operation] = []
    for uid in user_ids:
        before = prior.get((str(Api.GRAPH), uid))
        row = len(user_rows)
        user = snapshot.users.get(uid)
        name = user.upn if user else uid
        if before is None:
            continue
        now = user_state(user) if user else None
        left = left_by_the_run(before, changed[(str(Api.GRAPH), uid)], unsure, now, same_user_state)
        restore = _user_restore_text(before, now, snapshot)
        user_rows.append(InputRow(row, row + 2, (name, restore, run_id)))
        req = LicenseRequest(row, row + 2, name, None, restore)
        if now is None or left is None:
            why = "no longer exists" if now is None else "was changed by someone else since the run"
            rb.changed_since.append(name)
            checked.append(CheckedRequest(req, RequestStatus.ERROR, [RowFinding(
                "changed-since-run", Severity.ERROR, f"{name} {why}: left alone (changed since the run).",
                "Check the user by hand; nothing was changed.", row + 2, None)], user_id=uid))
            continue
        if same_user_state(now, before):
            checked.append(CheckedRequest(req, RequestStatus.UNCHANGED, [RowFinding(
                "unchanged", Severity.INFO, f"{name} is already as before the run{_not_taken(uid, changed, unsure)}.",
                "", row + 2, None)], user_id=uid))
            continue
        assert user is not None
        checked.append(CheckedRequest(req, RequestStatus.READY, [], user_id=uid))
        ops.extend(_user_ops(uid, user.upn, user.assigned, before, now, row, snapshot))
        rb.restores.append(f"{name}: {restore}")
    for eid in env_ids:
        before = prior.get((str(Api.POWERPLATFORM), eid))
        if before is None:
            continue
        row = len(user_rows) + len(env_rows)
        env = snapshot.environments.get(eid)
        name = env.display_name if env else eid
        touched = changed[(str(Api.POWERPLATFORM), eid)]
        currencies = sorted(set(expected_after(before, touched)["allocations"]) | set(before["allocations"]))
        now = {"allocations": snapshot.allocations.get(eid, {})}
        left = left_by_the_run(before, touched, unsure, now, partial(same_allocations, currencies=currencies))
        restore = ", ".join(f"{c} {now['allocations'].get(c, 0)} -> {before['allocations'].get(c, 0)}"
                            for c in currencies if now["allocations"].get(c, 0) != before["allocations"].get(c, 0))
        env_rows.append(InputRow(row, len(env_rows) + 2, (name, restore, run_id)))
        req_a = AddonRequest(row, len(env_rows) + 1, name, "", None, amount_text=restore)
        if env is None or left is None:
            rb.changed_since.append(name)
            checked.append(CheckedAddon(req_a, RequestStatus.ERROR, [RowFinding(
                "changed-since-run", Severity.ERROR, f"{name}'s allocations were changed by someone else since the "
                "run: left alone (changed since the run).", "Check the environment by hand.", req_a.row_number,
                None)], environment_id=eid))
            continue
        if not restore:
            checked.append(CheckedAddon(req_a, RequestStatus.UNCHANGED, [], environment_id=eid))
            continue
        checked.append(CheckedAddon(req_a, RequestStatus.READY, [], environment_id=eid))
        alloc = {c: int(before["allocations"].get(c, 0)) for c in currencies}
        ops.append(allocation_operation(eid, name, {c: int(now["allocations"].get(c, 0)) for c in currencies}, alloc,
                                        (row,), session.settings.allocations_api))
        rb.restores.append(f"{name}: {restore}")
    ms = plan_memberships(run_id, prior, changed, unsure, snapshot, len(user_rows) + len(env_rows))
    checked.extend(ms.checked)
    ops.extend(ms.operations)
    rb.restores.extend(ms.restores)
    rb.changed_since.extend(ms.changed_since)
    sheets = []
    if user_rows or not (env_rows or ms.rows):
        sheets.append(_sheet(Kind.LICENSES, user_rows))
    if env_rows:
        sheets.append(_sheet(Kind.ADDONS, env_rows))
    if ms.rows:
        sheets.append(memberships_sheet(ms.rows))
    validation = Validation(sheet=sheets[0], requests=checked, capacity=[], snapshot=snapshot,
                            extra_sheets=sheets[1:])
    rb.plan = Plan(operations=ops, seats=[], validation=validation)
    return rb


def _sheet(kind: Kind, rows: list[InputRow] | None = None) -> Sheet:
    role = Role.USER if kind is Kind.LICENSES else Role.ENVIRONMENT
    return Sheet(path=Path("rollback"), format="csv", sheet_name="Users" if kind is Kind.LICENSES else "Environments",
                 encoding=None, delimiter=None, header_row=1, headers=HEADERS, rows=rows or [], columns={role: 0},
                 kind=kind)


def _not_taken(uid: str, changed: dict[tuple[str, str], list[Operation]], unsure: set[str]) -> str:
    """Why a user the run changed is as before: a write whose outcome the run never learnt did not take effect."""
    if any(op.key in unsure for op in changed[(str(Api.GRAPH), uid)]):
        return " (the run's write did not take effect)"
    return ""


def _user_restore_text(before: dict[str, Any], now: dict[str, Any] | None, snapshot: Any) -> str:
    if now is None:
        return ""
    parts = {sid: s.part_number for sid, s in snapshot.skus.items()}
    b, n = before.get("direct", {}), now.get("direct", {})
    words = [f"+ {parts.get(s, s)}" for s in b if s not in n]
    words += [f"- {parts.get(s, s)}" for s in n if s not in b]
    words += [f"{parts.get(s, s)} disabled plans as before" for s in b if s in n and sorted(b[s]) != sorted(n[s])]
    if (before.get("usageLocation") or "") != (now.get("usageLocation") or ""):
        was, now_loc = before.get("usageLocation") or "(none)", now.get("usageLocation") or "(none)"
        words.append(f"usage location {now_loc} -> {was}")
    return ", ".join(words)


def _user_ops(uid: str, upn: str, assigned: tuple[str, ...], before: dict[str, Any], now: dict[str, Any], row: int,
              snapshot: Any) -> list[Operation]:
    ops: list[Operation] = []
    b, n = before.get("direct", {}), now.get("direct", {})
    add = tuple((s, tuple(sorted(p))) for s, p in b.items() if s not in n or sorted(n[s]) != sorted(p))
    remove = tuple(s for s in n if s not in b)
    loc_key = None
    if (before.get("usageLocation") or "").upper() != (now.get("usageLocation") or "").upper():
        loc_key = operation_key(uid, OpKind.SET_USAGE_LOCATION)
        ops.append(Operation(key=loc_key, kind=OpKind.SET_USAGE_LOCATION, target_id=uid, target=upn, method="PATCH",
                             url=f"/users/{uid}", body={"usageLocation": before.get("usageLocation")}, rows=(row,),
                             before=assigned, after=assigned))
    if add or remove:
        after = tuple(sorted(set(before.get("assigned", ())) | {s for s, _ in add}))
        ops.append(Operation(
            key=operation_key(uid, OpKind.ASSIGN_LICENSE), kind=OpKind.ASSIGN_LICENSE, target_id=uid, target=upn,
            method="POST", url=f"/users/{uid}/assignLicense",
            body={"addLicenses": [{"skuId": s, "disabledPlans": list(p)} for s, p in add],
                  "removeLicenses": list(remove)},
            rows=(row,), depends_on=loc_key if add and before.get("usageLocation") else None, add=add, remove=remove,
            before=assigned, after=after))
    return ops


__all__ = ["Rollback", "plan_rollback"]
