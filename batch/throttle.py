"""Pacing Graph writes under the write quota, and adapting when Graph throttles anyway.

Graph's write quota is a count per sliding window (3,000 writes per app and tenant per 150 s), and throttled
requests still count against it. Running into the quota and retrying is therefore slower than staying under
it, so the engine asks the :class:`Pacer` before every ``$batch`` request:

* **Window.** The pacer remembers when each write was sent. ``n`` more writes may go when at most
  ``quota - n`` writes were sent during the last window. That allows a burst of a full quota, then the next
  burst one window later: N writes need ``floor((N - 1) / L) * W`` seconds at least, and this pacer reaches it.
  ``quota = write_quota * quota_headroom``; a sent write is forgotten ``window + margin`` after it was sent
  (the margin absorbs the difference between when we send and when the server counts).
* **Pause.** A 429 (envelope or item) pauses *all* sending until the longest Retry-After has passed.
* **AIMD.** A 429 to a request sent after we had already seen a 429 means throttling persists (another app
  shares the tenant's quota, or the quota is smaller than configured): the effective quota is multiplied by
  ``decrease`` (down to ``min_factor``), and it grows back by ``increase`` for every window without a 429.
* **Backoff.** 503/504 or a dropped connection without Retry-After: exponential backoff with jitter, per
  operation (:meth:`Pacer.backoff`).

Everything here is pure logic over an injectable clock; :meth:`Pacer.acquire` is the only coroutine and
takes its ``sleep`` as a parameter, so tests run without sleeping.

Reads have their own budget, :class:`ReadBudget`: Graph counts them in **resource units** per app and tenant
per 10 s (3,500 / 5,000 / 8,000 by tenant size; costs per request in :func:`read_cost`). Every Graph read (a
GET, or a ``$batch`` of GETs at the sum of its items' costs) takes its units from the budget first, from
whichever thread it is sent; a 429 pauses every reader until its Retry-After has passed, and a 429 that
persists lowers the budget (as the write pacer does).
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .config import Limits

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class ThrottleStats:
    """What throttling cost, for the report and progress."""

    writes: int = 0  # writes let through (every item of every $batch, re-sends included)
    throttled: int = 0  # responses answered 429 (envelope or item)
    throttle_wait_s: float = 0.0  # time sending was paused by 429s (union of the pauses)
    pacing_wait_s: float = 0.0  # time spent waiting for room in the quota window (planned, not a failure)
    decreases: int = 0  # how often the effective quota was lowered


class Pacer:
    """A sliding-window pacer for Graph writes with a global 429 pause and AIMD adaptation."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        margin_s: float | None = None,
        decrease: float = 0.7,
        increase: float = 0.1,
        min_factor: float = 0.1,
    ) -> None:
        self.window = float(limits.write_window_seconds)
        self.base_quota = max(1, math.floor(limits.write_quota * limits.quota_headroom))
        self.margin = max(0.01 * self.window, 0.05) if margin_s is None else margin_s
        self.backoff_base = limits.backoff_base_seconds
        self.backoff_max = limits.backoff_max_seconds
        self.clock = clock
        self.rng = rng or random.Random()
        self.decrease = decrease
        self.increase = increase
        self.min_factor = min_factor
        self.factor = 1.0
        self.pause_until = 0.0
        self.stats = ThrottleStats()
        self._sends: deque[list[float]] = deque()  # [time, count], oldest first
        self._in_window = 0
        self._last_throttle_seen: float | None = None  # when we last learned of a 429
        self._recover_at = math.inf

    # ------------------------------------------------------------------------------------ state

    @property
    def quota(self) -> int:
        """Writes allowed per window right now (after headroom and AIMD)."""
        return max(1, math.floor(self.base_quota * self.factor))

    @property
    def paused(self) -> bool:
        return self.clock() < self.pause_until

    def in_window(self, now: float | None = None) -> int:
        """Writes sent during the last window (as the pacer counts them)."""
        self._expire(self.clock() if now is None else now)
        return self._in_window

    def _expire(self, now: float) -> None:
        life = self.window + self.margin
        sends = self._sends
        while sends and sends[0][0] + life <= now:
            self._in_window -= int(sends.popleft()[1])

    def _recover(self, now: float) -> None:
        while self.factor < 1.0 and now >= self._recover_at:
            self.factor = min(1.0, self.factor + self.increase)
            self._recover_at += self.window
        if self.factor >= 1.0:
            self._recover_at = math.inf

    # ------------------------------------------------------------------------------------ pacing

    def delay(self, n: int = 1, now: float | None = None) -> float:
        """Seconds to wait before ``n`` writes may be sent (0 = now). Does not record anything."""
        now = self.clock() if now is None else now
        self._expire(now)
        self._recover(now)
        wait = max(0.0, self.pause_until - now)
        n = min(n, self.quota)  # a request larger than the quota goes when the window is empty
        excess = self._in_window + n - self.quota
        if excess > 0:
            life = self.window + self.margin
            freed = 0
            for t, c in self._sends:
                freed += int(c)
                if freed >= excess:
                    wait = max(wait, t + life - now)
                    break
        return wait

    def record(self, n: int, now: float | None = None) -> None:
        """Count ``n`` writes as sent at ``now``."""
        now = self.clock() if now is None else now
        if self._sends and self._sends[-1][0] == now:
            self._sends[-1][1] += n
        else:
            self._sends.append([now, float(n)])
        self._in_window += n
        self.stats.writes += n

    def try_acquire(self, n: int = 1) -> float:
        """Record ``n`` writes and return 0 if they may go now; otherwise record nothing and return the wait."""
        now = self.clock()
        d = self.delay(n, now)
        if d <= 0:
            self.record(n, now)
        return d

    async def acquire(
        self,
        n: int = 1,
        *,
        sleep: Sleep = asyncio.sleep,
        should_stop: Callable[[], bool] | None = None,
        max_nap: float = 0.25,
    ) -> bool:
        """Wait until ``n`` writes may go, then record them. Returns False (recording nothing) if
        ``should_stop()`` turned true while waiting."""
        while True:
            if should_stop is not None and should_stop():
                return False
            now = self.clock()
            d = self.delay(n, now)
            if d <= 0:
                self.record(n, now)
                return True
            nap = min(d, max_nap) if should_stop is not None else d
            if now >= self.pause_until:
                self.stats.pacing_wait_s += nap
            await sleep(nap)

    # ------------------------------------------------------------------------------------ feedback

    def on_throttled(self, retry_after: float | None, *, sent_at: float | None = None, count: int = 1) -> float:
        """A response (``count`` of them) came back 429. Pause all sending until ``retry_after`` has passed
        (a backoff when Graph gave none) and lower the rate if throttling persists. Returns the pause end."""
        now = self.clock()
        self.stats.throttled += count
        if retry_after is None or retry_after < 0:
            retry_after = self.backoff(1 + self.stats.decreases)
        until = now + retry_after
        if until > self.pause_until:
            self.stats.throttle_wait_s += until - max(self.pause_until, now)
            self.pause_until = until
        persists = (
            self._last_throttle_seen is not None and sent_at is not None and sent_at > self._last_throttle_seen
        )
        if persists:
            self.factor = max(self.min_factor, self.factor * self.decrease)
            self.stats.decreases += 1
        if persists or self.factor < 1.0:
            self._recover_at = self.pause_until + self.window
        self._last_throttle_seen = now
        return self.pause_until

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` after a 5xx or a dropped connection.

        Retry-After wins when the server gave one; otherwise exponential with "equal jitter":
        half the step fixed, half random, so retries of many items spread out.
        """
        if retry_after is not None and retry_after >= 0:
            return retry_after
        return backoff_seconds(attempt, base=self.backoff_base, maximum=self.backoff_max, rng=self.rng)


def backoff_seconds(
    attempt: int, *, base: float, maximum: float, rng: random.Random | None = None
) -> float:
    """The one backoff formula (the pacer's and the HTTP client's): exponential from ``base`` seconds, capped
    at ``maximum``, with "equal jitter" (half the step fixed, half random, so retries of many items spread
    out). ``attempt`` 1 is the first retry."""
    step = min(maximum, base * (2.0 ** max(0, attempt - 1)))
    return step / 2 + (rng or random).uniform(0.0, step / 2)


def minimum_seconds(writes: int, quota: int, window_s: float) -> float:
    """The least time a sliding-window quota of ``quota`` per ``window_s`` allows for ``writes`` writes:
    bursts of a full quota, one window apart, the last burst sent at ``floor((writes - 1) / quota) * window``."""
    if writes <= 0:
        return 0.0
    return ((writes - 1) // quota) * window_s


# ------------------------------------------------------------------------------------------- reads

#: Resource units of a Graph read before query options (cloud-facts "Graph: throttling"): GET users 2,
#: subscribedSkus 3, licenseDetails 2. Reads the facts do not price cost 2 (the common figure); $count 1.
READ_BASE_COST = 2
_READ_COSTS = {"subscribedskus": 3, "users": 2, "licensedetails": 2, "$count": 1}


def resource_units_for(tenant_users: int | None) -> int:
    """Graph's resource-unit quota per app per 10 s for a tenant of this many users (None: the smallest)."""
    if tenant_users is None or tenant_users < 50:
        return 3500
    if tenant_users <= 500:
        return 5000
    return 8000


def read_cost(url: str) -> int:
    """Resource units Graph charges for ``GET url`` (a path relative to /v1.0, or an absolute URL):
    the base cost of the resource, ``$select`` -1, ``$expand`` +1, ``$top`` below 20 -1, at least 1."""
    path, _, query = url.partition("?")
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    segs = [x for x in path.lower().split("/") if x]
    if segs and segs[0] in ("v1.0", "beta"):
        segs = segs[1:]
    last = segs[-1] if segs else ""
    cost = _READ_COSTS.get(last, _READ_COSTS.get(segs[0], READ_BASE_COST) if segs else READ_BASE_COST)
    options = {k.lower(): v for k, _, v in (p.partition("=") for p in query.split("&") if p)}
    if "$select" in options or "%24select" in options:
        cost -= 1
    if "$expand" in options or "%24expand" in options:
        cost += 1
    top = options.get("$top", options.get("%24top", ""))
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


@dataclass(slots=True)
class ReadStats:
    units: int = 0  # resource units let through (re-sends included)
    throttled: int = 0  # reads (or batched read items) answered 429
    pacing_wait_s: float = 0.0  # time readers waited for room in the budget
    throttle_wait_s: float = 0.0  # time reading was paused by 429s (union of the pauses)


class ReadBudget:
    """Resource units per window for Graph reads, shared by every reading thread of one client.

    A sliding window like :class:`Pacer`'s: ``units`` may go when at most ``quota - units`` were taken during
    the last ``window`` (+ a margin). ``quota`` is ``Limits.resource_unit_quota`` (0: by tenant size, the
    smallest until :meth:`set_tenant_size` says more) times ``quota_headroom``, lowered while 429s persist.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        tenant_users: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        rng: random.Random | None = None,
        decrease: float = 0.7,
        min_factor: float = 0.1,
    ) -> None:
        self.window = float(limits.resource_unit_window_seconds)
        self.rng = rng or random.Random()
        self.configured = int(limits.resource_unit_quota)
        self.headroom = float(limits.quota_headroom)
        self.margin = max(0.01 * self.window, 0.05)
        self.tenant_users = tenant_users
        self._clock = clock
        self._ahead = 0.0  # sleeps the clock did not see pass (an injected sleep in tests): time still moved on
        self.sleep = sleep
        self.decrease = decrease
        self.min_factor = min_factor
        self.factor = 1.0
        self.pause_until = 0.0
        self.stats = ReadStats()
        self._sends: deque[tuple[float, int]] = deque()
        self._in_window = 0
        self._last_throttle_seen: float | None = None
        self._recover_at = math.inf
        self._lock = threading.Lock()

    @property
    def quota(self) -> int:
        base = self.configured or resource_units_for(self.tenant_users)
        return max(1, math.floor(base * self.headroom * self.factor))

    def now(self) -> float:
        """The budget's clock: the injected clock, plus any sleep it did not see pass."""
        return self._clock() + self._ahead

    def set_tenant_size(self, users: int) -> None:
        """The directory's size, once known (it decides Graph's quota when none is configured)."""
        with self._lock:
            self.tenant_users = users

    def _expire(self, now: float) -> None:
        life = self.window + self.margin
        while self._sends and self._sends[0][0] + life <= now:
            self._in_window -= self._sends.popleft()[1]

    def delay(self, units: int, now: float | None = None) -> float:
        """Seconds until ``units`` may be spent (0 = now). Records nothing."""
        now = self.now() if now is None else now
        self._expire(now)
        while self.factor < 1.0 and now >= self._recover_at:  # a window without 429: grow back
            self.factor = min(1.0, self.factor + 0.1)
            self._recover_at = now + self.window if self.factor < 1.0 else math.inf
        wait = max(0.0, self.pause_until - now)
        units = min(units, self.quota)
        excess = self._in_window + units - self.quota
        if excess > 0:
            freed = 0
            for t, c in self._sends:
                freed += c
                if freed >= excess:
                    wait = max(wait, t + self.window + self.margin - now)
                    break
        return wait

    def acquire(self, units: int) -> float:
        """Block until ``units`` may be spent, then record them. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.now()
                d = self.delay(units, now)
                if d <= 0:
                    self._sends.append((now, units))
                    self._in_window += units
                    self.stats.units += units
                    return waited
                if now >= self.pause_until:
                    self.stats.pacing_wait_s += d
            before = self._clock()
            self.sleep(d)
            waited += d
            lag = d - (self._clock() - before)
            if lag > 0:
                with self._lock:
                    self._ahead += lag

    def spend(self, units: int) -> None:
        """Count ``units`` spent by something that does not wait here (writes: 1 unit each)."""
        with self._lock:
            now = self.now()
            self._expire(now)
            self._sends.append((now, units))
            self._in_window += units
            self.stats.units += units

    def on_throttled(self, retry_after: float | None, *, sent_at: float | None = None, count: int = 1,
                     fallback: float = 1.0) -> float:
        """``count`` reads came back 429: pause every reader until ``retry_after`` (``fallback`` when Graph
        gave none) has passed; lower the budget when a read sent after an earlier 429 is throttled too.
        Returns the seconds until reading resumes."""
        with self._lock:
            now = self.now()
            self.stats.throttled += count
            wait = retry_after if retry_after is not None and retry_after >= 0 else fallback
            # a little past Retry-After (never before it), spread so paused readers do not return at once
            until = now + wait + 0.01 + 0.05 * self.rng.random() * min(1.0, wait)
            if until > self.pause_until:
                self.stats.throttle_wait_s += until - max(self.pause_until, now)
                self.pause_until = until
            if self._last_throttle_seen is not None and sent_at is not None and sent_at > self._last_throttle_seen:
                self.factor = max(self.min_factor, self.factor * self.decrease)
            if self.factor < 1.0:
                self._recover_at = self.pause_until + self.window
            self._last_throttle_seen = now
            return max(0.0, self.pause_until - now)


__all__ = [
    "Pacer",
    "ReadBudget",
    "ReadStats",
    "ThrottleStats",
    "backoff_seconds",
    "minimum_seconds",
    "read_cost",
    "resource_units_for",
]
