"""SandboxConfig: quotas, windows, latency and faults of the sandbox tenant.

Defaults are Graph's documented figures (write quota 3,000 per 150 s per app and tenant, 18,000 per
5 min per tenant, resource units by tenant size per 10 s). Faults default to off and latency to zero
(``latency=1.0`` turns on the realistic latency model). ``time_scale`` k divides every window, every
Retry-After and the group-licensing delay by k, so a benchmark keeps the shape of the limits on a
faster clock.

Loadable from keyword arguments, a mapping (the ``[sandbox]`` table of ``license-batch.toml``) or
environment variables ``LICENSE_BATCH_SANDBOX_<FIELD>`` (upper case), e.g.
``LICENSE_BATCH_SANDBOX_TIME_SCALE=10``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ENV_PREFIX = "LICENSE_BATCH_SANDBOX_"
#: Keys of the [sandbox] table that belong to seeding/location, not to the server's behaviour.
_NON_CONFIG_KEYS = frozenset({"db", "users", "seed", "host", "port"})


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    time_scale: float = 1.0
    # -- Graph throttling (documented figures)
    throttling: bool = True
    write_quota: int = 3000  # writes per app per tenant ...
    write_window_seconds: float = 150.0  # ... per window
    tenant_write_quota: int = 18000  # writes per tenant, all apps ...
    tenant_write_window_seconds: float = 300.0
    resource_unit_quota: int | None = None  # None: by tenant size (3,500 / 5,000 / 8,000)
    resource_unit_window_seconds: float = 10.0
    #: share of 429/503 Retry-After values sent fractional ("2.128") and as an HTTP date
    retry_after_fractional_rate: float = 0.1
    retry_after_http_date_rate: float = 0.1
    # -- Power Platform throttling (UNCONFIRMED figures: the admin connector's 100 per 60 s)
    powerplatform_request_quota: int = 100
    powerplatform_window_seconds: float = 60.0
    powerplatform_page_size: int = 50
    # -- latency model: multiplier (0 = none, 1 = realistic) of the per-kind figures below, in ms
    latency: float = 0.0
    latency_read_ms: float = 60.0
    latency_write_ms: float = 120.0
    latency_batch_ms: float = 80.0
    latency_batch_item_ms: float = 25.0
    latency_powerplatform_ms: float = 150.0
    latency_jitter: float = 0.3  # +- share of the figure, drawn from the fault seed
    # -- fault injection, per HTTP request (503/504 also per $batch item), replayable with fault_seed
    fault_seed: int = 0
    fault_503_rate: float = 0.0
    fault_503_retry_after_share: float = 0.5  # of the 503s, how many carry Retry-After
    fault_504_rate: float = 0.0
    fault_drop_rate: float = 0.0  # connection closed without an answer (before or after the effect)
    fault_slow_rate: float = 0.0
    slow_seconds: float = 5.0
    # -- other
    group_processing_seconds: float = 2.0  # delay before group licensing reaches the members
    group_processing_members_per_second: float = 0.0  # then at most this many members per second (0: no limit)
    shuffle_batch: bool = True  # answer $batch items out of order, as Graph may

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ConfigError(f"time_scale must be positive, not {self.time_scale}.")
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= float(v) <= 1.0:
                raise ConfigError(f"Sandbox setting {f.name} must be between 0 and 1, not {v}.")

    # ---------------------------------------------------------------- derived (scaled) figures
    def scaled(self, seconds: float) -> float:
        return seconds / self.time_scale

    def resource_units_for(self, tenant_users: int) -> int:
        if self.resource_unit_quota is not None:
            return self.resource_unit_quota
        if tenant_users < 50:
            return 3500
        if tenant_users <= 500:
            return 5000
        return 8000

    # ---------------------------------------------------------------- loading
    # One loader for every setting (batch.config): the same keys, types, ranges and messages as
    # license-batch.toml's [sandbox] table and LICENSE_BATCH_SANDBOX_* everywhere else.
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, base: SandboxConfig | None = None) -> SandboxConfig:
        """From keyword-style values (keys may use - or _); seeding keys (db, users, seed) are skipped."""
        from ..config import coerce_sandbox_field

        values: dict[str, Any] = {}
        for raw_key, raw in data.items():
            key = str(raw_key).replace("-", "_").lower()
            if key in _NON_CONFIG_KEYS:
                continue
            values[key] = coerce_sandbox_field(key, raw)
        return dataclasses.replace(base or cls(), **values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, base: SandboxConfig | None = None) -> SandboxConfig:
        from ..config import sandbox_table

        return dataclasses.replace(base or cls(), **sandbox_table(env=os.environ if env is None else env))

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], table: str = "sandbox") -> SandboxConfig:
        from ..config import sandbox_table

        if not Path(path).exists():
            raise ConfigError("The config file does not exist.", path=str(path))
        return cls(**sandbox_table(toml_path=path, env={}))

    @classmethod
    def load(
        cls, *, toml_path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, **kw: Any
    ) -> SandboxConfig:
        """TOML table, then environment variables, then keyword arguments, each overriding the one before."""
        from ..config import sandbox_table

        cfg = cls(**sandbox_table(toml_path=toml_path, env=os.environ if env is None else env))
        return cls.from_mapping(kw, base=cfg) if kw else cfg
