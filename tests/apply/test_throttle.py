"""The pacer: sliding-window quota, 429 pause, AIMD, backoff - on a fake clock, without sleeping."""

from __future__ import annotations

import asyncio
import random

from batch.apply.throttle import Pacer, minimum_seconds
from batch.config import Limits


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.t += s


def make(quota: int = 100, window: float = 10.0, headroom: float = 1.0, **kw: object) -> tuple[Pacer, FakeClock]:
    clock = FakeClock()
    limits = Limits(write_quota=quota, write_window_seconds=window, quota_headroom=headroom)
    return Pacer(limits, clock=clock, rng=random.Random(1), margin_s=0.0, **kw), clock  # type: ignore[arg-type]


def send_all(p: Pacer, clock: FakeClock, total: int, batch: int) -> list[float]:
    times: list[float] = []

    async def run() -> None:
        left = total
        while left:
            n = min(batch, left)
            await p.acquire(n, sleep=clock.sleep)
            times.append(clock.t)
            left -= n

    asyncio.run(run())
    return times


def test_burst_then_one_window_later_reaches_the_minimum() -> None:
    p, clock = make(quota=100, window=10.0)
    start = clock.t
    times = send_all(p, clock, 1000, 20)
    assert times[0] == start
    assert times[4] == start  # the first 100 writes go at once
    assert times[5] == start + 10.0
    assert times[-1] - start == minimum_seconds(1000, 100, 10.0) == 90.0


def test_never_more_than_the_quota_in_any_window() -> None:
    p, clock = make(quota=95, window=10.0)
    times = send_all(p, clock, 2000, 20)
    for i, t in enumerate(times):
        in_window = sum(20 for u in times[: i + 1] if u > t - 10.0)
        assert in_window <= 95


def test_headroom_and_margin() -> None:
    clock = FakeClock()
    p = Pacer(Limits(write_quota=3000, write_window_seconds=150.0), clock=clock)
    assert p.quota == 2850
    assert p.margin == 1.5
    p.record(2850)
    assert p.delay(1) == 151.5
    clock.t += 151.5
    assert p.delay(20) == 0.0


def test_429_pauses_everything_until_the_longest_retry_after() -> None:
    p, clock = make()
    p.record(10)
    p.on_throttled(2.5, sent_at=clock.t)
    p.on_throttled(1.0, sent_at=clock.t)  # shorter: does not shorten the pause
    assert p.delay(1) == 2.5
    assert p.stats.throttled == 2
    assert p.stats.throttle_wait_s == 2.5
    clock.t += 2.5
    assert p.delay(1) == 0.0


def test_throttle_wait_counts_overlapping_pauses_once() -> None:
    p, clock = make()
    p.on_throttled(2.0, sent_at=clock.t)
    clock.t += 1.0
    p.on_throttled(3.0, sent_at=clock.t - 1.5)  # sent before the first 429 was seen: same wave
    assert p.pause_until == clock.t + 3.0
    assert p.stats.throttle_wait_s == 4.0
    assert p.factor == 1.0


def test_persistent_429s_lower_the_rate_then_it_recovers() -> None:
    p, clock = make(quota=100, window=10.0)
    p.on_throttled(1.0, sent_at=clock.t)
    assert p.factor == 1.0  # one wave of 429s: pause only
    clock.t += 1.0
    sent = clock.t
    clock.t += 0.1
    p.on_throttled(1.0, sent_at=sent)  # sent after we had resumed: throttling persists
    assert p.factor == 0.7
    assert p.quota == 70
    clock.t += 0.1
    p.on_throttled(1.0, sent_at=sent)  # in flight when the last 429 came: no further decrease
    assert p.factor == 0.7
    clock.t = p.pause_until + 10.0
    p.delay(1)
    assert abs(p.factor - 0.8) < 1e-9
    clock.t += 30.0
    p.delay(1)
    assert p.factor == 1.0
    assert p.stats.decreases == 1


def test_lowered_quota_paces_slower() -> None:
    p, clock = make(quota=100, window=10.0)
    p.factor = 0.5
    times = send_all(p, clock, 200, 10)
    assert times[-1] - times[0] == 30.0  # 50 per window


def test_429_without_retry_after_uses_backoff() -> None:
    p, clock = make()
    until = p.on_throttled(None, sent_at=clock.t)
    assert clock.t < until <= clock.t + 1.0


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    clock = FakeClock()
    p = Pacer(
        Limits(backoff_base_seconds=1.0, backoff_max_seconds=8.0), clock=clock, rng=random.Random(7)
    )
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        values = {p.backoff(attempt) for _ in range(50)}
        assert all(step / 2 <= v <= step for v in values)
        assert len(values) > 1
    assert p.backoff(5, retry_after=0.25) == 0.25


def test_acquire_gives_up_when_asked_to_stop() -> None:
    p, clock = make(quota=10, window=10.0)
    p.record(10)
    stop = {"now": False}

    async def sleep(s: float) -> None:
        clock.t += s
        stop["now"] = True

    assert asyncio.run(p.acquire(5, sleep=sleep, should_stop=lambda: stop["now"])) is False
    assert p.in_window() == 10


def test_a_request_larger_than_the_quota_waits_for_an_empty_window() -> None:
    p, _clock = make(quota=10, window=10.0)
    p.record(3)
    assert p.delay(20) == 10.0


def test_minimum_seconds() -> None:
    assert minimum_seconds(0, 3000, 150) == 0
    assert minimum_seconds(3000, 3000, 150) == 0
    assert minimum_seconds(3001, 3000, 150) == 150
    assert minimum_seconds(10_000, 3000, 150) == 450
