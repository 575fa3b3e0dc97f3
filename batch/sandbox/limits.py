"""Throttling, latency and fault injection.

Quotas are leaky buckets: a bucket of ``quota`` units drains at ``quota / window`` units per second.
A request that would overflow it is answered 429 and STILL adds its cost (Graph counts requests sent
while throttled), up to ``THROTTLE_OVERDRAW_FACTOR`` x quota; Retry-After is the time until the
request would fit. Windows are divided by ``time_scale``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate

from . import behaviour as B
from .config import SandboxConfig


class Bucket:
    __slots__ = ("cap", "level", "quota", "rate", "stamp")

    def __init__(self, quota: float, window_seconds: float) -> None:
        self.quota = float(quota)
        self.rate = self.quota / window_seconds
        self.cap = self.quota * B.THROTTLE_OVERDRAW_FACTOR
        self.level = 0.0
        self.stamp = time.monotonic()

    def _drain(self, now: float) -> None:
        self.level = max(0.0, self.level - (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, cost: float, now: float) -> float:
        """Count the request (throttled or not). 0.0 if it fitted, else the seconds until another would."""
        self._drain(now)
        fits = self.level + cost <= self.quota
        self.level = min(self.cap, self.level + cost)
        return 0.0 if fits else max(0.0, self.level + cost - self.quota) / self.rate


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after: float  # seconds
    scope: str
    information: str  # x-ms-throttle-information


class GraphThrottle:
    """Per app: writes and resource units; per tenant: writes of all apps."""

    def __init__(self, config: SandboxConfig, tenant_id: str, tenant_users: int) -> None:
        self.config = config
        self.tenant_id = tenant_id
        self.ru_quota = config.resource_units_for(tenant_users)
        self._lock = threading.Lock()
        self._apps: dict[str, tuple[Bucket, Bucket]] = {}
        self._tenant = Bucket(config.tenant_write_quota, config.scaled(config.tenant_write_window_seconds))

    def _app(self, app_id: str) -> tuple[Bucket, Bucket]:
        b = self._apps.get(app_id)
        if b is None:
            c = self.config
            b = (Bucket(c.write_quota, c.scaled(c.write_window_seconds)),
                 Bucket(self.ru_quota, c.scaled(c.resource_unit_window_seconds)))  # fmt: skip
            self._apps[app_id] = b
        return b

    def check(self, app_id: str, *, write: bool, units: int) -> Throttled | None:
        if not self.config.throttling:
            return None
        with self._lock:
            now = time.monotonic()
            writes, ru = self._app(app_id)
            waits: list[tuple[float, str, str]] = []
            if write:
                w = writes.take(1, now)
                if w:
                    waits.append((w, "WriteLimitExceeded", "Tenant_Application"))
                w = self._tenant.take(1, now)
                if w:
                    waits.append((w, "WriteLimitExceeded", "Tenant"))
            w = ru.take(units, now)
            if w:
                waits.append((w, "ResourceUnitLimitExceeded", "Tenant_Application"))
            if not waits:
                return None
            wait, info, scope = max(waits)
            kind = "ReadWrite" if write else "Read"
            return Throttled(wait, f"{scope}/{kind}/{app_id}/{self.tenant_id}", info)


class PowerPlatformThrottle:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._apps: dict[str, Bucket] = {}

    def check(self, app_id: str) -> float | None:
        if not self.config.throttling:
            return None
        with self._lock:
            b = self._apps.get(app_id)
            if b is None:
                c = self.config
                b = self._apps[app_id] = Bucket(c.powerplatform_request_quota, c.scaled(c.powerplatform_window_seconds))
            return b.take(1, time.monotonic()) or None


class Chaos:
    """Seeded draws for faults, latency jitter, Retry-After forms and batch order (replayable)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._rng = random.Random(config.fault_seed)
        self._lock = threading.Lock()

    def random(self) -> float:
        with self._lock:
            return self._rng.random()

    def shuffle(self, items: list[object]) -> None:
        with self._lock:
            self._rng.shuffle(items)

    def fault(self, *, connection_level: bool) -> str | None:
        """None, '503', '503-retry', '504', 'drop-before', 'drop-after' or 'slow'."""
        c = self.config
        if not (c.fault_503_rate or c.fault_504_rate or c.fault_drop_rate or c.fault_slow_rate):
            return None
        with self._lock:
            r = self._rng.random()
            edge = c.fault_503_rate
            if r < edge:
                return "503-retry" if self._rng.random() < c.fault_503_retry_after_share else "503"
            edge += c.fault_504_rate
            if r < edge:
                return "504"
            if not connection_level:
                return None
            edge += c.fault_drop_rate
            if r < edge:
                return "drop-after" if self._rng.random() < B.DROP_AFTER_EFFECT_SHARE else "drop-before"
            edge += c.fault_slow_rate
            if r < edge:
                return "slow"
            return None

    def latency(self, ms: float) -> float:
        """Seconds to sleep for a request whose model figure is ``ms``."""
        c = self.config
        if c.latency <= 0 or ms <= 0:
            return 0.0
        base = ms * c.latency / 1000.0
        if c.latency_jitter:
            base *= 1.0 + (self.random() * 2.0 - 1.0) * c.latency_jitter
        return max(0.0, base)

    def retry_after(self, seconds: float) -> str:
        """Retry-After in one of its three real forms: integer, fractional, HTTP date."""
        c = self.config
        r = self.random()
        if seconds < B.MIN_INTEGER_RETRY_AFTER:
            return f"{max(seconds, 0.001):.3f}"
        if r < c.retry_after_fractional_rate:
            return f"{seconds:.3f}"
        if r < c.retry_after_fractional_rate + c.retry_after_http_date_rate and seconds >= B.MIN_HTTP_DATE_RETRY_AFTER:
            return formatdate(time.time() + math.ceil(seconds) + 1, usegmt=True)
        return str(math.ceil(seconds))
