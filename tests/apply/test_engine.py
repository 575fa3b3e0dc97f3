"""Engine paths pinned down one by one against an in-process fake tenant (real SQLite journals)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from batch.apply import apply, load_result, resume, start
from batch.apply.journal import Journal, OpState, Sent
from batch.config import Limits
from batch.models import Outcome

from .fake import FakeTenant, err
from .helpers import E5, small_plan

LIMITS = Limits(write_quota=10_000, write_window_seconds=1.0, backoff_base_seconds=0.001,
                backoff_max_seconds=0.01, max_in_flight=4)


def setup(n: int = 3, **kw: object) -> tuple[FakeTenant, object]:
    plan = small_plan(n, **kw)  # type: ignore[arg-type]
    return FakeTenant(list(plan.validation.snapshot.users.values())), plan


def uid(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


def test_everything_applied_patch_first_then_assign_in_all_parallel_batches(tmp_path: Path) -> None:
    tenant, plan = setup(3)
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED] * 3
    assert res.rows[0].action == "assign SPE_E5; set usage location DE"
    assert res.rows[0].before == "" and res.rows[0].after == "SPE_E5"
    # Every batch is all-parallel: no dependsOn anywhere; the PATCH goes first, the assignLicense that needs
    # it only once it has succeeded (cloud-facts, JSON batching: one kind per batch).
    assert len(tenant.batches) == 2
    first, second = tenant.batches
    assert not any("dependsOn" in it for b in tenant.batches for it in b)
    assert [it["method"] for it in first] == ["PATCH", "POST", "POST"]
    assert [it["url"] for it in second] == [f"/users/{uid(0)}/assignLicense"]
    assert all(v == 1 for v in tenant.effects.values())
    assert tenant.loc[uid(0)] == "DE" and all(E5 in tenant.direct[uid(i)] for i in range(3))
    assert not res.interrupted and res.requests_sent == 2
    assert res.seats_after == {"SPE_E5": 13, "SPE_E3": 20}  # the fake has no skus(): computed from effects


def test_item_429_is_requeued_alone_after_retry_after(tmp_path: Path) -> None:
    tenant, plan = setup(3, with_location=False)
    tenant.script[("POST", f"/users/{uid(1)}/assignLicense")] = [err(429, "TooManyRequests", "later", "0.02")]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED] * 3
    assert [len(b) for b in tenant.batches] == [3, 1]
    assert tenant.batches[1][0]["url"] == f"/users/{uid(1)}/assignLicense"
    assert res.throttled == 1 and res.throttle_wait_s > 0.019
    assert all(v == 1 for v in tenant.effects.values())


def test_a_failed_patch_fails_its_assign_unsent_with_the_patch_error(tmp_path: Path) -> None:
    tenant, plan = setup(2)
    tenant.script[("PATCH", f"/users/{uid(0)}")] = [
        err(400, "Request_BadRequest", "Invalid value specified for property 'usageLocation' of resource 'User'.")]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert res.rows[0].status is Outcome.FAILED
    assert res.rows[0].code == "Request_BadRequest"
    assert "usageLocation" in res.rows[0].message and "two-letter" in res.rows[0].fix
    assert res.rows[1].status is Outcome.APPLIED
    assert len(tenant.batches) == 1  # the PATCH (400) was not re-sent and the assign never left


def test_a_throttled_patch_is_resent_and_only_then_the_assign(tmp_path: Path) -> None:
    tenant, plan = setup(1)
    tenant.script[("PATCH", f"/users/{uid(0)}")] = [err(429, "TooManyRequests", "later", "0.01")]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert res.rows[0].status is Outcome.APPLIED
    assert [[i["method"] for i in b] for b in tenant.batches] == [["PATCH"], ["PATCH"], ["POST"]]


def test_400_is_not_retried_and_gets_a_fix(tmp_path: Path) -> None:
    tenant, plan = setup(2, with_location=False)
    tenant.script[("POST", f"/users/{uid(1)}/assignLicense")] = [
        err(400, "Request_BadRequest", f"Subscription with SKU {E5} does not have any available licenses.")]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    r = res.rows[1]
    assert (r.status, r.code, r.request_id) == (Outcome.FAILED, "Request_BadRequest", "rid-400")
    assert "seats" in r.fix
    assert len(tenant.batches) == 1
    with Journal.open(tmp_path / "journal.sqlite") as j:
        assert [o.attempts for o in j.operations()] == [1, 1]


def test_404_user_gone_fails(tmp_path: Path) -> None:
    tenant, plan = setup(2, with_location=False)
    del tenant.loc[uid(1)]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert res.rows[1].status is Outcome.FAILED and res.rows[1].code == "Request_ResourceNotFound"
    assert "no longer exists" in res.rows[1].fix


def test_503_item_retried_with_backoff(tmp_path: Path) -> None:
    tenant, plan = setup(1, with_location=False)
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = [err(503, "ServiceUnavailable", "x")] * 2
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert res.rows[0].status is Outcome.APPLIED and len(tenant.batches) == 3


def test_retries_are_bounded(tmp_path: Path) -> None:
    tenant, plan = setup(1, with_location=False)
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = [err(503, "ServiceUnavailable", "x")] * 50
    res = apply(plan, tenant, run_dir=tmp_path, limits=replace(LIMITS, max_attempts=3))  # type: ignore[arg-type]
    assert res.rows[0].status is Outcome.FAILED and "Gave up after 3 attempts" in res.rows[0].message
    assert len(tenant.batches) == 3


def test_drop_after_effect_is_checked_not_resent(tmp_path: Path) -> None:
    tenant, plan = setup(3, with_location=False)
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = ["drop-after"]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED] * 3
    assert len(tenant.batches) == 1 and tenant.reads == 1
    assert all(v == 1 for v in tenant.effects.values())


def test_drop_before_effect_is_checked_then_resent(tmp_path: Path) -> None:
    tenant, plan = setup(2, with_location=False)
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = ["drop-before"]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED] * 2
    assert len(tenant.batches) == 2 and tenant.reads == 1
    assert all(v == 1 for v in tenant.effects.values())


def test_envelope_429_requeues_and_envelope_503_checks(tmp_path: Path) -> None:
    tenant, plan = setup(2, with_location=False)
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = ["envelope-429", "envelope-503"]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED] * 2
    assert len(tenant.batches) == 3 and tenant.reads == 1 and res.throttled == 1


def test_resume_checks_sent_operations_before_resending(tmp_path: Path) -> None:
    tenant, plan = setup(3, with_location=False)
    j = start(plan, run_dir=tmp_path)  # type: ignore[arg-type]
    ops = j.operations()
    # a crash: ops 0 and 1 were committed as sent; op 0 reached the tenant, op 1 did not
    j.mark_sent([Sent(ops[0].key, 1), Sent(ops[1].key, 1)])
    j.close()
    tenant.direct[uid(0)][E5] = frozenset()
    res = resume(tmp_path, tenant, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED] * 3
    sent_urls = [i["url"] for b in tenant.batches for i in b]
    assert f"/users/{uid(0)}/assignLicense" not in sent_urls
    assert sorted(sent_urls) == sorted([f"/users/{uid(1)}/assignLicense", f"/users/{uid(2)}/assignLicense"])
    # resuming a finished run changes nothing
    before = len(tenant.batches)
    again = resume(tmp_path, tenant, limits=LIMITS)  # type: ignore[arg-type]
    assert len(tenant.batches) == before and [r.status for r in again.rows] == [Outcome.APPLIED] * 3
    assert [r.status for r in load_result(tmp_path).rows] == [Outcome.APPLIED] * 3


def test_stop_event_leaves_not_run_rows_then_resume_finishes(tmp_path: Path) -> None:
    tenant, plan = setup(45, with_location=False)
    stop = threading.Event()
    limits = replace(LIMITS, max_in_flight=1)
    seen: list[int] = []
    post = tenant.post_batch

    async def post_and_stop(items: object) -> object:
        stop.set()  # Ctrl-C while the first batch is on the wire: it settles, nothing more is sent
        return await post(items)  # type: ignore[arg-type]

    tenant.post_batch = post_and_stop  # type: ignore[assignment,method-assign]
    res = apply(plan, tenant, run_dir=tmp_path, limits=limits,  # type: ignore[arg-type]
                progress=lambda p: seen.append(p.done), stop_event=stop)
    tenant.post_batch = post  # type: ignore[method-assign]
    counts = res.counts()
    assert res.interrupted
    assert counts[Outcome.APPLIED] == 20 and counts[Outcome.NOT_RUN] == 25
    assert "resume" in res.rows[-1].message
    res2 = resume(tmp_path, tenant, limits=LIMITS)  # type: ignore[arg-type]
    assert not res2.interrupted and res2.counts()[Outcome.APPLIED] == 45
    assert all(v == 1 for v in tenant.effects.values())
    with Journal.open(tmp_path / "journal.sqlite") as j:
        assert {o.state for o in j.operations()} == {OpState.SUCCEEDED}
        assert j.run_info().status == "finished"


def test_a_refused_wave_sends_nothing_and_skips_every_row(tmp_path: Path) -> None:
    tenant, plan = setup(3)
    plan.operations = []  # what plan() gives for a refused wave (STOP and a SKU short)
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [(r.status, r.code) for r in res.rows] == [(Outcome.SKIPPED, "wave-refused")] * 3
    assert tenant.batches == [] and not res.interrupted


def _swap_pair(plan: object) -> object:
    """Turn a 2-row plan into a swap pair: user 0 gives E3 for E5, user 1 gives E5 for E3."""
    from batch.models import Operation

    from .helpers import E3

    p = plan  # a Plan
    a, b = p.operations  # type: ignore[attr-defined]

    def swap(op: Operation, give: str, take: str) -> Operation:
        body = {"addLicenses": [{"skuId": take, "disabledPlans": []}], "removeLicenses": [give]}
        return replace(op, body=body, add=((take, ()),), remove=(give,), before=(give,), after=(take,))

    p.operations = [swap(a, E3, E5), swap(b, E5, E3)]  # type: ignore[attr-defined]
    return p


def test_400_on_an_add_waits_for_the_removal_that_frees_its_seat(tmp_path: Path) -> None:
    from .helpers import E3

    tenant, plan = setup(2, with_location=False)
    plan = _swap_pair(plan)
    tenant.direct[uid(0)] = {E3: frozenset()}
    tenant.direct[uid(1)] = {E5: frozenset()}
    no_seat = err(400, "Request_BadRequest", f"Subscription with SKU {E5} does not have any available licenses.")
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = [no_seat]  # user 1's removal of E5 not in yet
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED, Outcome.APPLIED]
    assert tenant.direct[uid(0)] == {E5: frozenset()} and tenant.direct[uid(1)] == {E3: frozenset()}
    with Journal.open(tmp_path / "journal.sqlite") as j:
        assert sorted(o.attempts for o in j.operations()) == [1, 2]  # re-sent once, after the removal


def test_seat_waits_never_deadlock_and_retry_only_once(tmp_path: Path) -> None:
    """Both halves of a swap pair refused for seats: one waits for the other, the other fails; then the
    waiting one is re-sent once and fails too. Every row ends; nothing hangs."""
    from .helpers import E3

    tenant, plan = setup(2, with_location=False)
    plan = _swap_pair(plan)
    no_seat = err(400, "Request_BadRequest", "Subscription with SKU x does not have any available licenses.")
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = [no_seat, no_seat, no_seat]
    tenant.script[("POST", f"/users/{uid(1)}/assignLicense")] = [no_seat, no_seat, no_seat]
    tenant.direct[uid(0)] = {E3: frozenset()}
    tenant.direct[uid(1)] = {E5: frozenset()}
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.FAILED, Outcome.FAILED]
    with Journal.open(tmp_path / "journal.sqlite") as j:
        assert sorted(o.attempts for o in j.operations()) == [1, 2]


def test_unreadable_2xx_batch_answer_is_checked_not_resent(tmp_path: Path) -> None:
    """Graph ran the items but its answer was truncated: the items are UNKNOWN, read back, found done."""
    tenant, plan = setup(2, with_location=False)
    tenant.script[("POST", f"/users/{uid(0)}/assignLicense")] = ["garbled-after"]
    res = apply(plan, tenant, run_dir=tmp_path, limits=LIMITS)  # type: ignore[arg-type]
    assert [r.status for r in res.rows] == [Outcome.APPLIED, Outcome.APPLIED]
    assert tenant.reads >= 1 and len(tenant.batches) == 1
    assert all(v == 1 for v in tenant.effects.values())  # nothing done twice
