"""The read budget: Graph counts reads in **resource units** per app and tenant per 10 s (3,500 / 5,000 /
8,000 by tenant size; costs per request in :func:`read_cost`). Every Graph read (a GET, or a ``$batch`` of GETs
at the sum of its items' costs) takes its units from :class:`ReadBudget` first, from whichever thread it is
sent; a 429 pauses every reader until its Retry-After has passed, and a 429 that persists lowers the budget (as
the write pacer, :mod:`batch.apply.throttle`, does for writes).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Limits

Clock = Callable[[], float]

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



__all__ = ["READ_BASE_COST", "ReadBudget", "ReadStats", "read_cost", "resource_units_for"]
