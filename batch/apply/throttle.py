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

Reads are paced by the tenant's transport (:mod:`batch.tenant.reads`), which also counts writes in its budget.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..config import Limits
from ..tenant.http import backoff_delay  # the one backoff formula

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
        return backoff_delay(attempt, base=self.backoff_base, maximum=self.backoff_max, rng=self.rng)


def minimum_seconds(writes: int, quota: int, window_s: float) -> float:
    """The least time a sliding-window quota of ``quota`` per ``window_s`` allows for ``writes`` writes:
    bursts of a full quota, one window apart, the last burst sent at ``floor((writes - 1) / quota) * window``."""
    if writes <= 0:
        return 0.0
    return ((writes - 1) // quota) * window_s


# ------------------------------------------------------------------------------------------- reads



__all__ = ["Pacer", "ThrottleStats", "minimum_seconds"]
