"""Settings: which tenant, its endpoints, credentials (never stored here), limits, column maps.

Read from ``license-batch.toml`` (the current directory, or ``--config``), then environment variables,
then command-line options, each overriding the one before. Secrets are never read from the file or the
command line: a real tenant's credential comes from azure-identity (``tenant/auth.py``); a loopback URL
uses the sandbox's published development token unless ``LICENSE_BATCH_TOKEN`` is set.

    # license-batch.toml
    [tenant]
    name = "contoso.onmicrosoft.com"     # or "sandbox"
    cloud = "global"                      # global | usgov | usgov-dod | china
    tenant_id = "..."                     # for azure-identity
    client_id = "..."
    graph_url = "..."                     # overrides the cloud's host
    powerplatform_url = "..."

    [limits]
    write_quota = 3000                    # Graph writes per app and tenant ...
    write_window_seconds = 150            # ... per this many seconds
    max_in_flight = 8                     # $batch requests on the wire at once

    [columns]                             # like --map: role = "Header in the sheet"
    user = "Work Email"

    [sandbox]
    db = ".license-batch/sandbox.db"
    time_scale = 1.0
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

#: The sandbox's development token. Not a secret: it is published in the README and only the local
#: sandbox accepts it. It carries every permission the tool uses.
SANDBOX_DEV_TOKEN = "sandbox-dev-token"

#: Graph and Power Platform hosts per national cloud.
CLOUDS: dict[str, tuple[str, str]] = {
    "global": ("https://graph.microsoft.com/v1.0", "https://api.powerplatform.com"),
    "usgov": ("https://graph.microsoft.us/v1.0", "https://api.gov.powerplatform.microsoft.us"),
    "usgov-dod": ("https://dod-graph.microsoft.us/v1.0", "https://api.high.powerplatform.microsoft.us"),
    "china": ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://api.powerplatform.partner.microsoftonline.cn"),
}

DEFAULT_CONFIG_FILE = "license-batch.toml"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Graph's documented limits, and how hard the engine leans on them.

    Defaults are Microsoft's published figures; a sandbox started with ``time_scale`` k gets
    ``write_window_seconds / k`` so the shape of the limits stays and only the clock shrinks.
    """

    write_quota: int = 3000  # writes per app per tenant ...
    write_window_seconds: float = 150.0  # ... per window
    quota_headroom: float = 0.95  # use at most this share of the write quota
    batch_size: int = 20  # items per $batch (Graph's maximum)
    max_in_flight: int = 8  # $batch requests on the wire at once
    max_attempts: int = 8  # per operation, for retryable failures
    backoff_base_seconds: float = 1.0  # exponential backoff without Retry-After ...
    backoff_max_seconds: float = 60.0
    request_timeout_seconds: float = 100.0
    page_size: int = 999  # GET /users $top
    powerplatform_requests_per_minute: int = 100  # Power Platform requests per app ... (UNCONFIRMED figure)
    powerplatform_window_seconds: float = 60.0  # ... per this many seconds
    #: Power Platform requests per window left to reads (the snapshot's three, read-backs of unknown outcomes):
    #: writes are paced to the quota less these (no percentage headroom: one run is the only user of it).
    powerplatform_reserved_requests: int = 3
    resource_unit_quota: int = 0  # Graph read budget per app per window; 0 = by tenant size (3,500/5,000/8,000)
    resource_unit_window_seconds: float = 10.0
    max_throttled_read_wait_seconds: float = 900.0  # a throttled read waits this long in all before it fails

    def scaled(self, time_scale: float) -> Limits:
        """The same limits on a clock ``time_scale`` times faster (for the shrunk sandbox)."""
        if time_scale <= 0:
            raise ConfigError(f"time_scale must be positive, not {time_scale}.")
        return replace(
            self,
            write_window_seconds=self.write_window_seconds / time_scale,
            powerplatform_window_seconds=self.powerplatform_window_seconds / time_scale,
            resource_unit_window_seconds=self.resource_unit_window_seconds / time_scale,
            max_throttled_read_wait_seconds=self.max_throttled_read_wait_seconds / time_scale,
            backoff_base_seconds=self.backoff_base_seconds / time_scale,
            backoff_max_seconds=self.backoff_max_seconds / time_scale,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where the run goes. Holds no secret."""

    name: str  # "sandbox", or the tenant's domain (what a confirmation prompt asks to type)
    graph_url: str  # ends in /v1.0, no trailing slash
    powerplatform_url: str
    cloud: str = "global"
    tenant_id: str | None = None
    client_id: str | None = None
    embedded_sandbox: bool = False  # the CLI starts the sandbox in-process

    @property
    def is_loopback(self) -> bool:
        return (urlsplit(self.graph_url).hostname or "") in LOOPBACK_HOSTS

    @property
    def is_sandbox(self) -> bool:
        return self.embedded_sandbox or self.name == "sandbox" or self.is_loopback


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    db: Path = Path(".license-batch/sandbox.db")
    users: int = 500
    seed: int = 1
    time_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class Settings:
    target: Target
    limits: Limits = field(default_factory=Limits)
    report_dir: Path = Path("reports")
    column_map: Mapping[str, str] = field(default_factory=dict)
    product_list: Path | None = None  # Microsoft's product CSV; else the cache
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir())
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    config_file: Path | None = None  # the license-batch.toml that was read, if any (its [sandbox] table too)
    allocations_api: str = "2022-03-01-preview"  # [powerplatform] allocations_api (see ALLOCATIONS_APIS)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "license-batch"


def _strip(url: str) -> str:
    return url.rstrip("/")


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    tenant: str | None = None,
    graph_url: str | None = None,
    powerplatform_url: str | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    column_map: Mapping[str, str] | None = None,
    product_list: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from the config file, then the environment, then the given overrides.

    With no real tenant configured anywhere, the target is the embedded sandbox.
    """
    env = os.environ if env is None else env
    data = _read_toml(config_file)
    used_file = Path(config_file) if config_file else (Path(DEFAULT_CONFIG_FILE) if data else None)
    t = data.get("tenant", {})
    lim = data.get("limits", {})
    sb = data.get("sandbox", {})

    name = tenant or env.get("LICENSE_BATCH_TENANT") or t.get("name")
    g_url = graph_url or env.get("LICENSE_BATCH_GRAPH_URL") or t.get("graph_url")
    p_url = powerplatform_url or env.get("LICENSE_BATCH_POWERPLATFORM_URL") or t.get("powerplatform_url")
    cloud = str(t.get("cloud", "global"))
    if cloud not in CLOUDS:
        raise ConfigError(f"Unknown cloud '{cloud}'.", fix=f"Use one of: {', '.join(CLOUDS)}.")

    dflt = SandboxSettings()
    sandbox = SandboxSettings(
        db=Path(env.get("LICENSE_BATCH_SANDBOX_DB") or sb.get("db", dflt.db)),
        users=_number("[sandbox] users", sb.get("users", dflt.users), int, minimum=0),
        seed=_number("[sandbox] seed", sb.get("seed", dflt.seed), int),
        time_scale=_number(
            "sandbox time_scale", env.get("LICENSE_BATCH_SANDBOX_TIME_SCALE") or sb.get("time_scale", 1.0), float,
            minimum=1e-6,
        ),
    )
    limits = _limits(lim)

    if name in (None, "", "sandbox") and not g_url:
        target = Target(name="sandbox", graph_url="", powerplatform_url="", embedded_sandbox=True)
    else:
        default_graph, default_pp = CLOUDS[cloud]
        target = Target(
            name=str(name or urlsplit(str(g_url)).netloc),
            graph_url=_strip(str(g_url or default_graph)),
            powerplatform_url=_strip(str(p_url or default_pp)),
            cloud=cloud,
            tenant_id=env.get("AZURE_TENANT_ID") or t.get("tenant_id"),
            client_id=env.get("AZURE_CLIENT_ID") or t.get("client_id"),
        )
    if target.is_sandbox and sandbox.time_scale != 1.0:
        limits = limits.scaled(sandbox.time_scale)
    pp = data.get("powerplatform", {})
    allocations_api = str(env.get("LICENSE_BATCH_ALLOCATIONS_API") or pp.get("allocations_api", ALLOCATIONS_APIS[0]))
    if allocations_api not in ALLOCATIONS_APIS:
        raise ConfigError(f"[powerplatform] allocations_api must be one of {', '.join(ALLOCATIONS_APIS)}, "
                          f"not '{allocations_api}'.")
    cmap = dict(data.get("columns", {}))
    cmap.update(column_map or {})
    return Settings(
        target=target,
        limits=limits,
        report_dir=Path(report_dir or env.get("LICENSE_BATCH_REPORT_DIR") or data.get("report_dir", "reports")),
        column_map=cmap,
        product_list=Path(p) if (p := product_list or env.get("LICENSE_BATCH_PRODUCT_LIST")) else None,
        sandbox=sandbox,
        config_file=used_file,
        allocations_api=allocations_api,
    )


#: Range of each [limits] setting: (type, minimum, maximum or None).
_LIMIT_RANGES: dict[str, tuple[type, float, float | None]] = {
    "write_quota": (int, 1, None),
    "write_window_seconds": (float, 1e-3, None),
    "quota_headroom": (float, 0.05, 1.0),
    "batch_size": (int, 1, 20),  # Graph's $batch maximum
    "max_in_flight": (int, 1, 64),
    "max_attempts": (int, 1, 100),
    "backoff_base_seconds": (float, 0.0, None),
    "backoff_max_seconds": (float, 0.0, None),
    "request_timeout_seconds": (float, 1.0, None),
    "page_size": (int, 1, 999),  # Graph's $top maximum for users
    "powerplatform_requests_per_minute": (int, 1, None),
    "powerplatform_window_seconds": (float, 1e-3, None),
    "powerplatform_reserved_requests": (int, 0, None),
    "resource_unit_quota": (int, 0, None),
    "resource_unit_window_seconds": (float, 1e-3, None),
    "max_throttled_read_wait_seconds": (float, 0.0, None),
}
#: Values of [powerplatform] allocations_api: the per-environment PATCH the tutorials use, or
#: allocationsByEnvironment.
ALLOCATIONS_APIS = ("2022-03-01-preview", "2024-10-01")


def _number(name: str, raw: Any, typ: type, *, minimum: float | None = None, maximum: float | None = None) -> Any:
    try:
        if isinstance(raw, bool) or (typ is int and isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(raw)
        value = typ(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"The setting {name} must be a {'whole ' if typ is int else ''}number, not {raw!r}.") from e
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")
        raise ConfigError(f"The setting {name} must be {bounds}, not {raw!r}.")
    return value


def _limits(table: Mapping[str, Any]) -> Limits:
    values: dict[str, Any] = {}
    for raw_key, raw in table.items():
        key = str(raw_key).replace("-", "_")
        if key not in _LIMIT_RANGES:
            raise ConfigError(f"Unknown setting in [limits]: '{raw_key}'.", fix=f"Known: {', '.join(_LIMIT_RANGES)}.")
        typ, lo, hi = _LIMIT_RANGES[key]
        values[key] = _number(f"[limits] {key}", raw, typ, minimum=lo, maximum=hi)
    return Limits(**values)


def parse_column_map(text: str) -> dict[str, str]:
    """``"user=Work Email,sku=License"`` -> ``{"user": "Work Email", "sku": "License"}``."""
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        role, sep, header = part.partition("=")
        if not sep or not role.strip() or not header.strip():
            raise ConfigError(
                f"--map entry '{part.strip()}' is not of the form role=Header.",
                fix='Write it like --map "user=Work Email,sku=License".',
            )
        out[role.strip().lower()] = header.strip()
    return out


def _read_toml(config_file: str | os.PathLike[str] | None) -> dict[str, Any]:
    path = Path(config_file) if config_file else Path(DEFAULT_CONFIG_FILE)
    if not path.exists():
        if config_file:
            raise ConfigError("The config file does not exist.", path=str(path))
        return {}
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"Cannot read the config file: {e}.", path=str(path)) from e


def read_map_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """A column map file: ``role = Header`` lines (``#`` comments), or a TOML file with a [columns] table."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"Cannot read the map file: {e.strerror}.", path=str(p)) from e
    if "[columns]" in text:
        import tomllib

        try:
            cols = tomllib.loads(text).get("columns", {})
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"The map file is not valid TOML: {e}.", path=str(p)) from e
        return {str(k).lower(): str(v) for k, v in cols.items()}
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        role, sep, header = line.partition("=")
        if not sep:
            role, sep, header = line.partition(":")
        if not sep or not role.strip() or not header.strip():
            raise ConfigError(f"'{line}' is not of the form role = Header.", path=str(p), row=n,
                              fix="Write one mapping per line, e.g. user = Work Email.")
        out[role.strip().lower()] = header.strip().strip('"')
    return out
