"""The asynchronous engine: operations from the journal -> paced requests -> settled operations.

Operations go to one of two services (``Operation.api``), each with its own queue and pacer. Graph operations
are packed, in plan order, into ``$batch`` requests of at most ``Limits.batch_size`` independent items: every
batch is all-parallel (no ``dependsOn``; Microsoft's batching page says not to mix chains and independent
items), and an operation that depends on another (a user's assignLicense after the PATCH of their usage
location) is only queued once that one has succeeded, or fails with its error. Power Platform operations go one
request each, paced under ``Limits.powerplatform_requests_per_minute``. For each request the engine asks the
service's :class:`~batch.apply.throttle.Pacer` for room, commits the items as ``sent`` and starts it; up to
``Limits.max_in_flight`` requests per service are on the wire at once. Each answer is settled item by item (a
Power Platform answer is settled as a one-item batch):

=====================================  =========================================================================
2xx                                    succeeded
424 (its dependency failed)            waits for the dependency: re-sent after it succeeds, failed with the
                                       dependency's error when it fails
429                                    re-queued; ALL sending pauses for the longest Retry-After (the pacer)
503                                    re-sent after Retry-After or a jittered exponential backoff
500/502/504, missing from the answer   UNKNOWN: checked against the tenant, then re-sent only if not in effect
401                                    the run stops (AuthenticationError)
400 on an add while another operation  waits until the operations that free that SKU have settled, then is
that frees the SKU is not settled      re-sent once (seats freed by removals and swaps in the same sheet)
other 4xx (400, 403, 404, ...)         failed with Graph's code and message, never retried
envelope 429                           all items re-queued (the batch was refused as a whole)
envelope 5xx, drop after connecting    all items UNKNOWN (the request may have reached the server)
connection refused                     all items re-queued with backoff (nothing left the machine)
envelope 401/403/other 4xx             items back to planned (nothing was done); the run stops and raises
envelope 2xx that cannot be read       all items UNKNOWN (checked against the tenant before any re-send)
=====================================  =========================================================================

Seats: validation counts the seats a sheet frees (removals, swaps) toward the ones it takes, but concurrent
batches may reach Graph before the removals do, and Graph answers 400 ("... does not have any available
licenses") to the early add. The engine does not read that message (Graph's messages are not a contract):
a 400 on an operation that adds a SKU which some not-yet-settled operation of this run removes (or which one
removed after this request left) is re-sent once when those have settled; a second 400 fails it as usual.

An operation is UNKNOWN when its request may have taken effect without our hearing of it. Before such an
operation is sent again its target is read back (the operation kind's ``OpHandler.read_back``: the user, the
environment's allocations): already in the operation's after-state means it succeeded; otherwise it goes back
to the queue. Nothing is ever done twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ..config import Limits, Target
from ..errors import (
    AuthenticationError,
    PermissionDeniedError,
    RetryableTenantError,
    ServiceUnavailableError,
    TenantError,
    TenantUnreachableError,
    ThrottledError,
)
from ..kinds import handler
from ..models import Api, CurrencyReport, OpKind, Sku, User
from .journal import SETTLED, Journal, OpRecord, OpState, Sent, Settlement
from .results import graph_fix
from .throttle import Pacer

log = logging.getLogger(__name__)

RETRY_NOW = 503  # item statuses re-sent after a backoff without a check
UNKNOWN_ITEM = frozenset({500, 502, 504})  # item statuses after which the effect is uncertain


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


class TenantWriter(Protocol):
    async def post_batch(self, items: Sequence[Mapping[str, Any]]) -> Any: ...

    def read_users(self, ids: Sequence[str]) -> dict[str, User]: ...


@runtime_checkable
class ClosesWriters(Protocol):
    """A tenant whose async writers (HTTP clients opened for the run's event loop) must be closed after it."""

    async def aclose_writers(self) -> None: ...


@runtime_checkable
class ReadsPools(Protocol):
    """A tenant that can read what its pools hold now (seats per SKU, add-on units per currency type)."""

    def skus(self) -> Mapping[str, Sku]: ...

    def currency_reports(self) -> Mapping[str, CurrencyReport]: ...


@runtime_checkable
class KnowsTenantId(Protocol):
    """A tenant that knows its directory id (resume refuses to continue a run against another one)."""

    @property
    def tenant_id(self) -> str: ...


@runtime_checkable
class KnowsTarget(Protocol):
    """A tenant that knows the target it was reached at (its name goes into the journal)."""

    @property
    def target(self) -> Target: ...


class PowerPlatformWriter(TenantWriter, Protocol):
    """A tenant that also takes Power Platform writes (needed only when the plan has some)."""

    async def send_powerplatform(self, method: str, url: str, body: Mapping[str, Any]) -> Any: ...

    def read_allocations(self, environment_ids: Sequence[str]) -> dict[str, dict[str, int]]: ...


def powerplatform_pacer(limits: Limits, clock: Callable[[], float]) -> Pacer:
    """The pacer of Power Platform requests (its quota is per request, not per write)."""
    from dataclasses import replace

    quota = max(1, limits.powerplatform_requests_per_minute - limits.powerplatform_reserved_requests)
    return Pacer(replace(limits, write_quota=quota, quota_headroom=1.0,
                         write_window_seconds=limits.powerplatform_window_seconds), clock=clock)


@dataclass(slots=True)
class Progress:
    """What the engine reports after each answer (the CLI's ProgressPrinter reads these attributes)."""

    done: int  # input rows whose outcome is final
    total: int  # input rows
    operations_done: int
    operations_total: int
    requests_sent: int
    throttled: int
    throttle_wait_s: float
    in_flight: int
    elapsed_s: float
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class ProgressNote:
    """A phase with its own progress line (group processing after the writes), between :class:`Progress`
    records."""

    text: str


#: What a progress callback receives.
ProgressEvent = Progress | ProgressNote


@dataclass(slots=True)
class _Op:
    rec: OpRecord
    not_before: float = 0.0
    retries: int = 0  # retryable failures in this process (429, 5xx, drops)
    dependents: list[str] = field(default_factory=list)
    sent_at: float = 0.0
    checks: int = 0
    settled_at: float = 0.0  # clock() when it settled in this process
    seat_retried: bool = False  # re-sent once already after the seats its adds need were freed
    waits_for: set[str] = field(default_factory=set)  # seat-freeing operations it waits on
    refusal: Settlement | None = None  # a 400 held back while the target is read to re-plan it (OpHandler.amend)
    amended: bool = False  # re-planned once already


class Engine:
    """Runs the unsettled operations of one journal to completion (or until stopped)."""

    def __init__(
        self,
        journal: Journal,
        tenant: TenantWriter,
        limits: Limits,
        *,
        pacer: Pacer | None = None,
        progress: Callable[[Progress], None] | None = None,
        stop: StopFlag | None = None,
        rows_total: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.journal = journal
        self.tenant = tenant
        self.limits = limits
        self.clock = clock
        self.pacer = pacer or Pacer(limits, clock=clock)
        self.pacers: dict[Api, Pacer] = {Api.GRAPH: self.pacer, Api.POWERPLATFORM: powerplatform_pacer(limits, clock)}
        self.progress_cb = progress
        self.stop = stop
        self.batch_size = max(1, min(20, limits.batch_size))
        self.max_in_flight = max(1, limits.max_in_flight)
        self.ops: dict[str, _Op] = {}
        self.freed_by: dict[str, list[str]] = {}  # skuId -> keys of the operations that remove it
        self.seat_waiters: dict[str, list[str]] = {}  # freeing op key -> ops waiting for it to settle
        self.ready: dict[Api, deque[str]] = {a: deque() for a in Api}  # planned, no unsettled dependency
        self.flying: dict[Api, int] = dict.fromkeys(Api, 0)  # requests on the wire per service
        self.delayed: list[tuple[float, int, str]] = []  # (not_before, seq, key)
        self.to_check: list[str] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.checking: asyncio.Task[None] | None = None
        self.fatal: BaseException | None = None
        self.requests = 0  # $batch requests sent by this engine
        self._pending: list[Settlement] = []
        self._recorded = (0, 0, 0.0)  # requests, throttled, wait already added to the journal's counters
        self.rows_total = rows_total
        self.row_pending: dict[int, int] = {}
        self.rows_done = 0
        self.ops_done = 0
        self.t0 = clock()
        self._wake = asyncio.Event()
        self._last_progress = -1.0

    # ------------------------------------------------------------------------------------ setup

    def load(self, records: Sequence[OpRecord]) -> None:
        for rec in records:
            self.ops[rec.key] = _Op(rec)
        rows_with_ops: set[int] = set()
        for o in self.ops.values():
            dep = o.rec.op.depends_on
            if dep and dep in self.ops:
                self.ops[dep].dependents.append(o.rec.key)
            for sku_id in o.rec.op.remove:
                self.freed_by.setdefault(sku_id, []).append(o.rec.key)
            rows_with_ops.update(o.rec.op.rows)
            if o.rec.state in SETTLED:
                self.ops_done += 1
            else:
                for r in o.rec.op.rows:
                    self.row_pending[r] = self.row_pending.get(r, 0) + 1
        self.rows_done = self.rows_total - sum(1 for r in rows_with_ops if self.row_pending.get(r, 0) > 0)
        for o in sorted(self.ops.values(), key=lambda x: x.rec.seq):
            st = o.rec.state
            if st in (OpState.SENT, OpState.UNKNOWN):
                o.rec.state = OpState.UNKNOWN
                self.to_check.append(o.rec.key)
            elif st is OpState.PLANNED:
                self._enqueue(o.rec.key)
        self._commit()

    def _dep(self, o: _Op) -> _Op | None:
        d = o.rec.op.depends_on
        return self.ops.get(d) if d else None

    def _enqueue(self, key: str) -> None:
        """A planned operation becomes sendable: a root in the ready (or delayed) queue when it has no
        unsettled dependency; failed when its dependency failed; otherwise it rides with its dependency."""
        o = self.ops[key]
        if o.rec.state is not OpState.PLANNED:
            return
        dep = self._dep(o)
        if dep is not None and dep.rec.state is not OpState.SUCCEEDED:
            if dep.rec.state is OpState.FAILED:
                self._fail_from_dependency(o, dep)
            return
        if o.not_before > self.clock():
            heapq.heappush(self.delayed, (o.not_before, o.rec.seq, key))
        else:
            self.ready[o.rec.op.api].append(key)
        self._wake.set()

    def _fail_from_dependency(self, o: _Op, dep: _Op) -> None:
        what = handler(dep.rec.op.kind).what
        self._settle_local(
            o,
            Settlement(
                key=o.rec.key,
                attempt=0,
                state=OpState.FAILED,
                status=dep.rec.status,
                error_code=dep.rec.error_code,
                error_message=f"Not applied: could not {what} first. {dep.rec.error_message}".strip(),
                fix=dep.rec.fix,
                request_id=dep.rec.request_id,
            ),
        )

    # ------------------------------------------------------------------------------------ main loop

    def _stopping(self) -> bool:
        return self.fatal is not None or (self.stop is not None and self.stop.is_set())

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            # Let every request on the wire settle, whatever happened; then record the counters.
            while self.in_flight:
                await asyncio.gather(*list(self.in_flight), return_exceptions=True)
            if self.checking is not None:
                with contextlib.suppress(Exception):
                    await self.checking
            self._commit(force_progress=True)
        if self.fatal is not None:
            raise self.fatal

    async def _loop(self) -> None:
        while not self._stopping():
            now = self.clock()
            while self.delayed and self.delayed[0][0] <= now:
                _, _, key = heapq.heappop(self.delayed)
                o = self.ops[key]
                if o.rec.state is OpState.PLANNED:
                    self.ready[o.rec.op.api].append(key)
            if self.to_check and self.checking is None:
                self.checking = asyncio.create_task(self._check_unknown())
            sent = False
            timeout = 0.25
            for api, queue in self.ready.items():
                if not queue or self.flying[api] >= self.max_in_flight:
                    continue
                batch = self._take_batch(api)
                if not batch:
                    continue
                wait = self.pacers[api].try_acquire(len(batch))
                if wait > 0:
                    self._put_back(api, batch)
                    if now >= self.pacers[api].pause_until:
                        self.pacers[api].stats.pacing_wait_s += min(wait, timeout)
                    timeout = min(timeout, wait)
                    continue
                self._send(api, batch)
                sent = True
            if sent:
                continue
            busy = any(self.ready.values()) or self.in_flight or self.delayed or self.to_check or self.checking
            if not busy:
                return
            self._wake.clear()
            if self.delayed:
                timeout = max(0.0, min(timeout, self.delayed[0][0] - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _take_batch(self, api: Api) -> list[tuple[str, _Op]]:
        """Up to batch_size independent operations in plan order (one for Power Platform: it has no batching)."""
        size = self.batch_size if api is Api.GRAPH else 1
        queue = self.ready[api]
        batch: list[tuple[str, _Op]] = []
        taken: set[str] = set()
        while queue and len(batch) < size:
            key = queue.popleft()
            o = self.ops[key]
            if o.rec.state is not OpState.PLANNED or key in taken:
                continue
            batch.append((key, o))
            taken.add(key)
        return batch

    def _put_back(self, api: Api, batch: list[tuple[str, _Op]]) -> None:
        for key, _o in reversed(batch):
            self.ready[api].appendleft(key)

    # ------------------------------------------------------------------------------------ sending

    def _send(self, api: Api, batch: list[tuple[str, _Op]]) -> None:
        items: list[dict[str, Any]] = []
        by_id: dict[str, _Op] = {}
        for i, (_key, o) in enumerate(batch, start=1):
            op = o.rec.op
            item: dict[str, Any] = {"id": str(i), "method": op.method, "url": op.url}
            if op.body or op.method not in ("DELETE", "GET"):
                item.update(headers={"Content-Type": "application/json"}, body=dict(op.body))
            items.append(item)
            by_id[str(i)] = o
        now = self.clock()
        sent: list[Sent] = []
        for _key, o in batch:
            o.rec.attempts += 1
            o.rec.state = OpState.SENT
            o.sent_at = now
            sent.append(Sent(o.rec.key, o.rec.attempts))
        self.journal.mark_sent(sent)  # committed BEFORE the request leaves
        self.requests += 1
        if api is Api.GRAPH:
            call = self.tenant.post_batch(items)
        else:
            op = batch[0][1].rec.op
            call = _one(self.tenant, op.method, op.url, op.body)
        self.flying[api] += 1
        task = asyncio.create_task(self._post(api, call, by_id, now))
        self.in_flight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None and self.fatal is None:
            self.fatal = task.exception()
        self._wake.set()

    async def _post(self, api: Api, call: Any, by_id: dict[str, _Op], sent_at: float) -> None:
        pacer = self.pacers[api]
        try:
            reply = await call
        except ThrottledError as e:
            pacer.on_throttled(e.retry_after, sent_at=sent_at)
            self._settle_all(by_id, OpState.PLANNED, e, retry_after=max(0.0, pacer.pause_until - self.clock()))
        except ServiceUnavailableError as e:
            self._settle_all(by_id, OpState.UNKNOWN, e, retry_after=e.retry_after)
        except TenantUnreachableError as e:
            state = OpState.PLANNED if _never_left(e) else OpState.UNKNOWN
            self._settle_all(by_id, state, e, retry_after=e.retry_after)
        except TenantError as e:
            if e.status is not None and 200 <= e.status < 300:
                # The service accepted the request but its answer could not be read (truncated, not JSON): the
                # items may have taken effect. Check each against the tenant before anything is sent again.
                self._settle_all(by_id, OpState.UNKNOWN, e, retry_after=None)
                return
            # 401/403/other 4xx on the envelope: nothing was done; stop the run
            self._settle_all(by_id, OpState.PLANNED, e, retry_after=None, count=False)
            if self.fatal is None:
                self.fatal = e
        except BaseException as e:  # a bug or a cancellation: the request may have left
            self._settle_all(by_id, OpState.UNKNOWN, None, retry_after=None, count=False)
            if self.fatal is None and not isinstance(e, asyncio.CancelledError):
                self.fatal = e
            raise
        else:
            self._settle_reply(reply, by_id, sent_at, pacer)
        finally:
            self.flying[api] -= 1
            self._commit()

    # ------------------------------------------------------------------------------------ settling

    def _settle_all(
        self,
        by_id: Mapping[str, _Op],
        state: OpState,
        err: TenantError | None,
        *,
        retry_after: float | None,
        count: bool = True,
    ) -> None:
        status = err.status if err is not None else None
        code = (err.code or type(err).__name__) if err is not None else "Interrupted"
        rid = (err.request_id or "") if err is not None else ""
        if count:
            for o in by_id.values():
                o.retries += 1
        if retry_after is None and count:  # one backoff for the whole batch: its items are re-sent/checked together
            retry_after = self.pacer.backoff(max(o.retries for o in by_id.values()))
        for o in by_id.values():
            s = Settlement(
                key=o.rec.key,
                attempt=o.rec.attempts,
                state=state,
                status=status,
                error_code=code,
                error_message=str(err) if err else "",
                fix="",
                request_id=rid,
                batch_request_id=rid,
                response=f"envelope {status or code}",
            )
            self._apply_state(o, self._maybe_give_up(o, s), retry_after=retry_after)

    def _settle_reply(self, reply: Any, by_id: Mapping[str, _Op], sent_at: float, pacer: Pacer) -> None:
        items: Mapping[str, Any] = getattr(reply, "items", reply)
        if callable(items):
            items = reply
        batch_rid = getattr(reply, "request_id", None) or ""
        throttled = [it for it in (items.get(i) for i in by_id) if it is not None and it.status == 429]
        if throttled:
            longest = max((it.retry_after or 0.0) for it in throttled) or None
            pacer.on_throttled(longest, sent_at=sent_at, count=len(throttled))
        for rid, o in by_id.items():
            it = items.get(rid)
            key, n = o.rec.key, o.rec.attempts
            if it is None:  # sent but not answered: the effect is unknown
                o.retries += 1
                s = Settlement(
                    key=key,
                    attempt=n,
                    state=OpState.UNKNOWN,
                    status=None,
                    error_code="NoAnswer",
                    error_message="The $batch answer did not include this request.",
                    fix="",
                    request_id="",
                    batch_request_id=batch_rid,
                    response="missing from the answer",
                )
                self._apply_state(o, s, retry_after=None)
                continue
            status = int(it.status)
            code, message = it.error_code or "", it.error_message or ""
            item_rid = it.request_id or batch_rid
            excerpt = f"{status} {code} {message}".strip()[:300]
            retry_after: float | None = None

            def answer(state: OpState, error_code: str = code, error_message: str = message, fix: str = "",
                       *, key: str = key, n: int = n, status: int = status, item_rid: str = item_rid,
                       excerpt: str = excerpt) -> Settlement:
                """This item's answer as a settlement (the fields every branch shares)."""
                return Settlement(key=key, attempt=n, state=state, status=status, error_code=error_code,
                                  error_message=error_message, fix=fix, request_id=item_rid,
                                  batch_request_id=batch_rid, response=excerpt)

            if 200 <= status < 300:
                s = answer(OpState.SUCCEEDED, "", "")
            elif status == 424:
                s = answer(OpState.PLANNED, code or "FailedDependency")
            elif status == 429 or status == RETRY_NOW or status in UNKNOWN_ITEM:
                o.retries += 1
                state = OpState.UNKNOWN if status in UNKNOWN_ITEM else OpState.PLANNED
                s = self._maybe_give_up(o, answer(state))
                retry_after = None if status == 429 else it.retry_after
            elif status == 401:
                s = answer(OpState.PLANNED)
                if self.fatal is None:
                    self.fatal = AuthenticationError(f"Graph refused a write as unauthenticated: {message}",
                                                     status=status, code=code, request_id=item_rid)
            elif status == 403 and code == "Authorization_RequestDenied" and self.ops_done == 0 and all(
                x is not None and x.status == 403 for x in (items.get(i) for i in by_id)
            ):
                # the first answer refuses permission for every item: every write would; stop instead of
                # failing all rows (a 403 for one user, e.g. a privileged admin, fails only that row)
                s = answer(OpState.PLANNED)
                if self.fatal is None:
                    self.fatal = PermissionDeniedError(
                        f"Graph refused a write for lack of permission: {message}",
                        status=status, code=code, request_id=item_rid)
            elif status == 400 and self._wait_for_seats(o):
                s = answer(OpState.PLANNED)
                self._settle_local(o, s)
                if not o.waits_for:  # the seats were freed after this request left: re-send now
                    self._enqueue(key)
                continue
            else:  # 400, 403, 404, 409, ...: the row is wrong (or not permitted): never retried
                s = answer(OpState.FAILED, code or f"HTTP{status}", message or f"Graph answered {status}.",
                           graph_fix(status, code, message))
                if status == 400 and not o.amended and getattr(handler(o.rec.op.kind), "amend", None) is not None:
                    # e.g. one of 20 new members is in the group already and Graph refused the whole PATCH: read
                    # the group, then re-send without those (or let the 400 stand when nothing changes)
                    o.refusal = s
                    s = answer(OpState.UNKNOWN)
                    self._settle_local(o, s)
                    o.not_before = self.clock()
                    self.to_check.append(key)
                    continue
            self._apply_state(o, s, retry_after=retry_after)

    def _wait_for_seats(self, o: _Op) -> bool:
        """After a 400 on ``o``: should it be re-sent once the seats its adds need are freed by this run?

        True when an operation of this run that removes one of the SKUs ``o`` adds has not settled yet (``o``
        then waits for all of them: ``o.waits_for``), or succeeded after ``o``'s request left (re-send now).
        """
        if o.seat_retried or o.rec.op.kind is not OpKind.ASSIGN_LICENSE:
            return False
        pending: set[str] = set()
        freed_since = False
        for sku_id, _plans in o.rec.op.add:
            for k in self.freed_by.get(sku_id, ()):
                f = self.ops[k]
                if k == o.rec.key or f.waits_for:  # itself waiting for seats: no cycles (a swap pair)
                    continue
                if f.rec.state not in SETTLED:
                    pending.add(k)
                elif f.rec.state is OpState.SUCCEEDED and f.settled_at >= o.sent_at:
                    freed_since = True
        if not pending and not freed_since:
            return False
        o.seat_retried = True
        o.waits_for = pending
        for k in pending:
            self.seat_waiters.setdefault(k, []).append(o.rec.key)
        return True

    def _maybe_give_up(self, o: _Op, s: Settlement) -> Settlement:
        """After max_attempts retryable failures an operation fails - unless its effect is unknown (then it
        is checked first, and gives up after the check if it did not take effect)."""
        if o.retries < self.limits.max_attempts or s.state is not OpState.PLANNED:
            return s
        msg = s.error_message or "Graph did not accept the request."
        return Settlement(
            key=s.key,
            attempt=s.attempt,
            state=OpState.FAILED,
            status=s.status,
            error_code=s.error_code or "RetriesExhausted",
            error_message=f"Gave up after {o.retries} attempts: {msg}",
            fix=graph_fix(s.status, s.error_code, s.error_message) or "Resume the run later.",
            request_id=s.request_id,
            batch_request_id=s.batch_request_id,
            response=s.response,
        )

    def _apply_state(self, o: _Op, s: Settlement, *, retry_after: float | None) -> None:
        """Record one settlement (in memory, and pending for the journal) and schedule what follows."""
        self._settle_local(o, s)
        if s.state is OpState.PLANNED:
            if s.status != 424:  # a 424 waits for its dependency (or rides with it): no delay of its own
                wait = retry_after
                if wait is None and s.status != 429 and (s.status is not None or s.error_code):
                    wait = self.pacer.backoff(o.retries)
                o.not_before = self.clock() + (wait or 0.0)
            self._enqueue(o.rec.key)
        elif s.state is OpState.UNKNOWN:
            o.not_before = self.clock() + (retry_after if retry_after is not None else self.pacer.backoff(o.retries))
            self.to_check.append(o.rec.key)
        if s.state in SETTLED:
            for d in o.dependents:
                if self.ops[d].rec.state is OpState.PLANNED:
                    self._enqueue(d)
            for w in self.seat_waiters.pop(o.rec.key, ()):
                waiter = self.ops[w]
                waiter.waits_for.discard(o.rec.key)
                if not waiter.waits_for:
                    self._enqueue(w)

    def _settle_local(self, o: _Op, s: Settlement) -> None:
        was_settled = o.rec.state in SETTLED
        o.rec.state = s.state
        o.rec.status = s.status
        o.rec.error_code, o.rec.error_message, o.rec.fix = s.error_code, s.error_message, s.fix
        o.rec.request_id = s.request_id
        if s.state in SETTLED:
            o.rec.settled = datetime.now(UTC)
            o.settled_at = self.clock()
            if not was_settled:
                self.ops_done += 1
                for r in o.rec.op.rows:
                    left = self.row_pending.get(r, 0) - 1
                    self.row_pending[r] = left
                    if left == 0:
                        self.rows_done += 1
        self._pending.append(s)

    def _commit(self, *, force_progress: bool = False) -> None:
        """Write pending settlements and counter deltas in one transaction; report progress."""
        throttled, wait_s = self._throttling()
        req0, thr0, wait0 = self._recorded
        pending, self._pending = self._pending, []
        self.journal.settle(pending, requests=self.requests - req0, throttled=throttled - thr0,
                            wait_s=wait_s - wait0)
        self._recorded = (self.requests, throttled, wait_s)
        self._report(force=force_progress)
        self._wake.set()

    def _throttling(self) -> tuple[int, float]:
        """Responses answered 429, and seconds sending was paused by them, over every service."""
        return (sum(p.stats.throttled for p in self.pacers.values()),
                sum(p.stats.throttle_wait_s for p in self.pacers.values()))

    def _report(self, *, force: bool = False) -> None:
        if self.progress_cb is None:
            return
        now = self.clock()
        if not force and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        self.progress_cb(
            Progress(
                done=self.rows_done,
                total=self.rows_total,
                operations_done=self.ops_done,
                operations_total=len(self.ops),
                requests_sent=self.requests,
                throttled=self._throttling()[0],
                throttle_wait_s=self._throttling()[1],
                in_flight=len(self.in_flight),
                elapsed_s=now - self.t0,
                stopping=self._stopping(),
            )
        )

    # ------------------------------------------------------------------------------------ unknowns

    async def _check_unknown(self) -> None:
        """Read back the targets of UNKNOWN operations; settle those already in effect, re-queue the rest."""
        try:
            while self.to_check and not self._stopping():
                now = self.clock()
                due = [k for k in self.to_check if self.ops[k].not_before <= now]
                if not due:
                    wait = min(self.ops[k].not_before for k in self.to_check) - now
                    await asyncio.sleep(min(max(wait, 0.0), 0.25))
                    continue
                kind = self.ops[due[0]].rec.op.kind
                h = handler(kind)
                chunk = [k for k in due if self.ops[k].rec.op.kind is kind][:200]
                keys = set(chunk)
                self.to_check = [k for k in self.to_check if k not in keys]
                ids = sorted({self.ops[k].rec.op.target_id for k in chunk})
                try:
                    found = await asyncio.to_thread(h.read_back, self.tenant, ids)
                except RetryableTenantError as e:
                    for k in chunk:
                        o = self.ops[k]
                        o.checks += 1
                        o.not_before = self.clock() + self.pacer.backoff(o.checks, e.retry_after)
                    self.to_check.extend(chunk)
                    continue
                except TenantError as e:
                    self.to_check.extend(chunk)
                    if self.fatal is None:
                        self.fatal = e
                    return
                for k in chunk:
                    o = self.ops[k]
                    op = o.rec.op
                    state = found.get(op.target_id)
                    amend = getattr(h, "amend", None)
                    if state is not None and h.in_effect(op, state):
                        ok = o.rec.status if o.rec.status is not None and 200 <= o.rec.status < 300 else None
                        s = Settlement(key=k, attempt=0, state=OpState.SUCCEEDED, status=ok,
                                       request_id=o.rec.request_id, response="in effect when checked")
                    elif o.refusal is not None:
                        refusal, o.refusal = o.refusal, None
                        changed = amend(op, state) if amend is not None and state is not None else None
                        if changed is None:
                            s = refusal  # nothing to re-plan: Graph's 400 stands
                        else:
                            o.amended = True
                            o.rec.op = changed
                            self.journal.update_operation(k, changed.body, changed.rows)
                            s = Settlement(key=k, attempt=0, state=OpState.PLANNED, status=refusal.status,
                                           error_code=refusal.error_code, error_message=refusal.error_message,
                                           request_id=refusal.request_id, response="re-planned")
                    else:
                        # not in effect (or the target is gone: sending again gets the service's own 404)
                        s = self._maybe_give_up(o, Settlement(
                            key=k,
                            attempt=0,
                            state=OpState.PLANNED,
                            status=o.rec.status,
                            error_code=o.rec.error_code,
                            error_message=o.rec.error_message,
                            fix="",
                            request_id=o.rec.request_id,
                            batch_request_id="",
                            response="",
                        ))
                    self._apply_state(o, s, retry_after=0.0)
                self._commit()
        finally:
            self.checking = None
            self._wake.set()


async def _one(tenant: Any, method: str, url: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
    """Send one Power Platform request; its answer as a one-item "batch" (id "1") for ``_settle_reply``."""
    reply = await tenant.send_powerplatform(method, url, body)
    return {"1": reply}


def _never_left(e: TenantUnreachableError) -> bool:
    """True when the connection was never established (so the request cannot have reached Graph)."""
    return e.never_sent
