"""batch.kinds.licenses.plan_checks: the user's result (held means held, merged disabled plans, removals) and the
apply-side memory of a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from batch.kinds.licenses import plan_checks, rules
from batch.models import Action, LicenseState, Operation, OpKind, User
from batch.sandbox import catalogue as C

GROUP = "11111111-1111-1111-1111-111111111111"


def user(*states: LicenseState) -> User:
    held = tuple(dict.fromkeys(s.sku_id for s in states if s.state != "Error"))
    return User("u1", "u1@contoso.com", None, "US", True, "Member", held, states)


def test_a_group_assignment_in_error_is_not_held() -> None:
    u = user(LicenseState(C.SPE_E3), LicenseState(C.COPILOT, assigned_by_group=GROUP, state="Error",
                                                  error="CountViolation"))  # fmt: skip
    assert [s for s, _d, _g in plan_checks.held(u)] == [C.SPE_E3]


def test_changes_merge_disabled_plans_and_removals_keep_a_groups_copy() -> None:
    u = user(LicenseState(C.O365_E3, frozenset({C.SWAY})), LicenseState(C.SPE_E3, assigned_by_group=GROUP),
             LicenseState(C.SPE_E3))  # fmt: skip
    changes = [
        plan_checks.RowChange(0, 2, Action.ASSIGN, C.O365_E3, None, frozenset({C.YAMMER_ENTERPRISE})),
        plan_checks.RowChange(1, 3, Action.REMOVE, C.SPE_E3),
        plan_checks.RowChange(2, 4, Action.REPLACE, C.TEAMS_EEA, C.O365_E3),
    ]
    assert plan_checks.result_licenses(plan_checks.apply_changes(u, changes[:2])) == [
        (C.O365_E3, frozenset({C.SWAY, C.YAMMER_ENTERPRISE})),
        (C.SPE_E3, frozenset()),  # still from the group
    ]
    assert plan_checks.result_licenses(plan_checks.apply_changes(u, changes)) == [
        (C.SPE_E3, frozenset()), (C.TEAMS_EEA, frozenset())]  # fmt: skip


def test_a_refused_operation_is_remembered_with_what_it_tried(tmp_path: Path) -> None:
    u = user(LicenseState(C.TEAMS_EEA))
    op = Operation(key="u1/assignLicense", kind=OpKind.ASSIGN_LICENSE, target_id="u1", target=u.upn, method="POST",
                   url="/users/u1/assignLicense", body={}, rows=(0,), add=((C.O365_E1, ()),))  # fmt: skip
    assert plan_checks.operation_result(u, op) == [(C.TEAMS_EEA, frozenset()), (C.O365_E1, frozenset())]
    msg = "License assignment failed because service plans MCOIMP, MCOSTANDARD are mutually exclusive."
    got = plan_checks.remember_operation_refusal(tmp_path, "t1", u, op, 400, "Request_BadRequest", msg)
    assert got is not None
    (ref,) = rules.load_remembered(tmp_path, "t1")
    assert (ref.kind, ref.add, ref.remove, ref.status, ref.user) == (
        "conflict", ((C.O365_E1, ()),), (), 400, "u1@contoso.com")
    assert ref.result == rules.combination([(C.TEAMS_EEA, ()), (C.O365_E1, ())])
    assert datetime.strptime(ref.when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= datetime.now(UTC)
    # a refusal that is not about plans (seats) is not remembered
    assert plan_checks.remember_operation_refusal(tmp_path, "t1", u, op, 400, "Request_BadRequest",
                                                  f"Subscription with SKU {C.O365_E1} does not have any available "
                                                  "licenses.") is None  # fmt: skip
    assert len(rules.load_remembered(tmp_path, "t1")) == 1
