"""Settings: which tenant, its endpoints, how to sign in (never the secret), limits, column maps, the sandbox.

One loader for all of it. Each setting is read from ``license-batch.toml`` (the current directory, or
``--config``), then from its environment variable, then from the command line, each overriding the one
before; ``Settings.sources`` says where every effective value came from (default / file / env / cli) and
``license-batch config show`` prints it. Every key is typed and range-checked; an unknown key in the file
(or an unknown ``LICENSE_BATCH_*`` variable) is an error that names the file, the key and the nearest known
key. Secrets are never read from the file or the command line: a real tenant's credential comes from
azure-identity (``tenant/auth.py``); a loopback URL uses the sandbox's published development token unless
``LICENSE_BATCH_TOKEN`` is set.

    # license-batch.toml
    report_dir = "reports"
    on_shortfall = "stop"                 # stop | partial
    reserve = "0"                         # seats kept free per SKU: N or N%

    [tenant]
    name = "contoso.onmicrosoft.com"     # or "sandbox"
    cloud = "global"                      # global | usgov | usgov-dod | china
    auth = "env"                          # env | certificate | managed-identity | azure-cli | device-code | auto
    tenant_id = "..."                     # for azure-identity
    client_id = "..."
    graph_url = "..."                     # overrides the cloud's host
    powerplatform_url = "..."

    [limits]
    write_quota = 3000                    # Graph writes per app and tenant ...
    write_window_seconds = 150            # ... per this many seconds
    max_in_flight = 8                     # $batch requests on the wire at once

    [powerplatform]
    allocations_api = "2022-03-01-preview"  # or "2024-10-01" (allocationsByEnvironment)

    [columns]                             # like --map: role = "Header in the sheet"
    user = "Work Email"

    [sandbox]
    db = ".license-batch/sandbox.db"
    time_scale = 1.0                      # and every SandboxConfig field (latency, faults, quotas)
"""

from __future__ import annotations

import dataclasses
import difflib
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


@dataclass(frozen=True, slots=True)
class Cloud:
    """One Microsoft cloud: Graph, Power Platform and sign-in (authority) hosts."""

    name: str
    graph_url: str
    powerplatform_url: str
    authority: str  # azure.identity.AzureAuthorityHosts value


#: Hosts per national cloud (authority hosts as in azure.identity.AzureAuthorityHosts).
CLOUD_HOSTS: dict[str, Cloud] = {
    "global": Cloud("global", "https://graph.microsoft.com/v1.0", "https://api.powerplatform.com",
                    "login.microsoftonline.com"),
    "usgov": Cloud("usgov", "https://graph.microsoft.us/v1.0", "https://api.gov.powerplatform.microsoft.us",
                   "login.microsoftonline.us"),
    "usgov-dod": Cloud("usgov-dod", "https://dod-graph.microsoft.us/v1.0", "https://api.high.powerplatform.microsoft.us",
                       "login.microsoftonline.us"),
    "china": Cloud("china", "https://microsoftgraph.chinacloudapi.cn/v1.0",
                   "https://api.powerplatform.partner.microsoftonline.cn", "login.chinacloudapi.cn"),
}  # fmt: skip
#: Graph and Power Platform hosts per national cloud (kept for callers of the older name).
CLOUDS: dict[str, tuple[str, str]] = {k: (c.graph_url, c.powerplatform_url) for k, c in CLOUD_HOSTS.items()}

AUTH_METHODS = ("auto", "env", "certificate", "managed-identity", "azure-cli", "device-code")
PREFLIGHT_MODES = ("auto", "always", "never")

DEFAULT_CONFIG_FILE = "license-batch.toml"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: LICENSE_BATCH_* variables that are not settings but are read elsewhere (never shown: may hold a token).
OTHER_ENV = frozenset({"LICENSE_BATCH_DEBUG", "LICENSE_BATCH_TOKEN", "LICENSE_BATCH_CREDENTIAL"})


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
    auth: str = "auto"  # how a real tenant is signed in to (AUTH_METHODS)

    @property
    def is_loopback(self) -> bool:
        return (urlsplit(self.graph_url).hostname or "") in LOOPBACK_HOSTS

    @property
    def is_sandbox(self) -> bool:
        return self.embedded_sandbox or self.name == "sandbox" or self.is_loopback

    @property
    def authority(self) -> str:
        return CLOUD_HOSTS.get(self.cloud, CLOUD_HOSTS["global"]).authority

    def describe(self) -> str:
        """One line naming the target, printed before anything is changed."""
        if self.embedded_sandbox and not self.graph_url:
            return "Target: the built-in sandbox tenant (local, nothing leaves this machine)."
        kind = "sandbox tenant" if self.is_sandbox else f"tenant {self.name}"
        sign_in = "sandbox token" if self.is_sandbox else f"sign-in {self.auth}"
        return (
            f"Target: {kind} (cloud {self.cloud}; Graph {self.graph_url}; "
            f"Power Platform {self.powerplatform_url}; {sign_in})."
        )


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
    on_shortfall: str = "stop"
    reserve: str = "0"
    preflight: str = "auto"
    allocations_api: str = "2022-03-01-preview"  # [powerplatform] allocations_api (see ALLOCATIONS_APIS)
    #: SandboxConfig fields set in [sandbox] or LICENSE_BATCH_SANDBOX_* (typed), for the embedded sandbox.
    sandbox_overrides: Mapping[str, Any] = field(default_factory=dict)
    #: "section.key" -> (effective value, "default" | "file" | "env" | "cli"), for ``config show``.
    sources: Mapping[str, tuple[Any, str]] = field(default_factory=dict)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "license-batch"


# ------------------------------------------------------------------------------------------- schema


@dataclass(frozen=True, slots=True)
class Key:
    """One setting: where it lives in the file, its type and range, its environment variable(s)."""

    section: str  # "" (top level), "tenant", "limits", "sandbox"
    name: str
    typ: type  # str, int, float, bool, Path
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    optional: bool = False  # None allowed ("auto" in the environment)

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name

    @property
    def where(self) -> str:
        return f"[{self.section}] {self.name}" if self.section else self.name


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


def _schema() -> dict[str, Key]:
    keys = [
        Key("", "report_dir", Path, Path("reports"), env=("LICENSE_BATCH_REPORT_DIR",)),
        Key("", "product_list", Path, None, env=("LICENSE_BATCH_PRODUCT_LIST",), optional=True),
        Key("", "cache_dir", Path, None, env=("LICENSE_BATCH_CACHE_DIR",), optional=True),
        Key("", "on_shortfall", str, "stop", choices=("stop", "partial"), env=("LICENSE_BATCH_ON_SHORTFALL",)),
        Key("", "reserve", str, "0", env=("LICENSE_BATCH_RESERVE",)),
        Key("tenant", "name", str, None, env=("LICENSE_BATCH_TENANT",), optional=True),
        Key("tenant", "cloud", str, "global", choices=tuple(CLOUD_HOSTS), env=("LICENSE_BATCH_CLOUD",)),
        Key("tenant", "auth", str, "auto", choices=AUTH_METHODS, env=("LICENSE_BATCH_AUTH",)),
        Key("tenant", "tenant_id", str, None, env=("LICENSE_BATCH_TENANT_ID", "AZURE_TENANT_ID"), optional=True),
        Key("tenant", "client_id", str, None, env=("LICENSE_BATCH_CLIENT_ID", "AZURE_CLIENT_ID"), optional=True),
        Key("tenant", "graph_url", str, None, env=("LICENSE_BATCH_GRAPH_URL",), optional=True),
        Key("tenant", "powerplatform_url", str, None, env=("LICENSE_BATCH_POWERPLATFORM_URL",), optional=True),
        Key("tenant", "preflight", str, "auto", choices=PREFLIGHT_MODES, env=("LICENSE_BATCH_PREFLIGHT",)),
    ]
    keys.append(Key("powerplatform", "allocations_api", str, ALLOCATIONS_APIS[0], choices=ALLOCATIONS_APIS,
                    env=("LICENSE_BATCH_ALLOCATIONS_API",)))  # fmt: skip
    for name, (typ, lo, hi) in _LIMIT_RANGES.items():
        keys.append(Key("limits", name, typ, getattr(Limits(), name), lo, hi,
                        env=(f"LICENSE_BATCH_LIMITS_{name.upper()}",)))  # fmt: skip
    sb = SandboxSettings()
    keys += [
        Key("sandbox", "db", Path, sb.db, env=("LICENSE_BATCH_SANDBOX_DB",)),
        Key("sandbox", "users", int, sb.users, 0, 10_000_000, env=("LICENSE_BATCH_SANDBOX_USERS",)),
        Key("sandbox", "seed", int, sb.seed, env=("LICENSE_BATCH_SANDBOX_SEED",)),
    ]
    keys += _sandbox_config_keys()
    return {k.dotted: k for k in keys}


def _sandbox_config_keys() -> list[Key]:
    """Every SandboxConfig field as a [sandbox] key, typed from the dataclass, ranges by naming convention."""
    from .sandbox.config import SandboxConfig

    out = []
    for f in dataclasses.fields(SandboxConfig):
        t = str(f.type)
        typ: type = bool if "bool" in t else int if ("int" in t and "float" not in t) else float
        lo: float | None = None
        hi: float | None = None
        if f.name == "time_scale":
            lo = 1e-6
        elif f.name.endswith(("_rate", "_share")) or f.name == "latency_jitter":
            lo, hi = 0.0, 1.0
        elif typ is not bool and f.name != "fault_seed":
            lo = 1 if f.name.endswith("_quota") or f.name.endswith("page_size") else 0.0
        out.append(Key("sandbox", f.name, typ, f.default, lo, hi, env=(f"LICENSE_BATCH_SANDBOX_{f.name.upper()}",),
                       optional="None" in t))  # fmt: skip
    return out


SECTIONS = ("", "tenant", "limits", "powerplatform", "columns", "sandbox")


# ----------------------------------------------------------------------------------------- coercion


def _coerce(key: Key, raw: Any, origin: str) -> Any:
    """``raw`` (TOML value, environment string or CLI value) as ``key``'s type, range-checked."""
    what = f"The environment variable {origin}" if origin.startswith(("LICENSE_BATCH_", "AZURE_")) else (
        f"The setting {key.where}")  # fmt: skip
    if raw is None or (key.optional and isinstance(raw, str) and raw.strip().lower() in ("", "none", "auto")
                       and key.typ is not str):  # fmt: skip
        return None
    typ = key.typ
    try:
        if typ is bool:
            if isinstance(raw, bool):
                value: Any = raw
            elif isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off"):
                value = False
            else:
                raise ValueError(raw)
        elif typ in (int, float):
            if isinstance(raw, bool) or (typ is int and isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            value = typ(raw.strip() if isinstance(raw, str) else raw)
        elif typ is Path:
            if not isinstance(raw, str | os.PathLike) or not str(raw).strip():
                raise ValueError(raw)
            value = Path(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError(raw)
            value = raw.strip()
    except (TypeError, ValueError) as e:
        kind = {bool: "true or false", int: "a whole number", float: "a number", Path: "a path"}.get(typ, "a text")
        raise ConfigError(f"{what} must be {kind}, not {raw!r}.") from e
    if key.choices and value not in key.choices:
        near = difflib.get_close_matches(str(value), key.choices, n=1)
        hint = f" Did you mean '{near[0]}'?" if near else ""
        raise ConfigError(f"{what} must be one of {', '.join(key.choices)}, not {raw!r}.{hint}")
    if typ in (int, float) and (
        (key.minimum is not None and value < key.minimum) or (key.maximum is not None and value > key.maximum)
    ):
        bounds = f"at least {key.minimum}" + (f" and at most {key.maximum}" if key.maximum is not None else "")
        if key.minimum is None:
            bounds = f"at most {key.maximum}"
        raise ConfigError(f"{what} must be {bounds}, not {raw!r}.")
    return value


def _unknown(name: str, known: list[str], *, section: str, path: Path | None) -> ConfigError:
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not near:
        near = difflib.get_close_matches(name.replace("-", "_").lower(), known, n=1, cutoff=0.6)
    where = f"[{section}]" if section else "the top level"
    hint = f"Did you mean '{near[0]}'?" if near else f"Known keys there: {', '.join(known)}."
    return ConfigError(f"Unknown key '{name}' in {where}.", path=str(path) if path else None, fix=hint)


# ------------------------------------------------------------------------------------------- loading


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
    cloud: str | None = None,
    auth: str | None = None,
    cli: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from the config file, then the environment, then the given (command-line) values.

    ``cli`` takes any other setting by its dotted name (``{"limits.max_in_flight": 4}``). With no real
    tenant configured anywhere, the target is the embedded sandbox.
    """
    env = os.environ if env is None else env
    schema = _schema()
    path, data = _read_toml(config_file)
    values: dict[str, tuple[Any, str]] = {k: (key.default, "default") for k, key in schema.items()}

    # -- the file: every key known, typed and range-checked
    columns: dict[str, str] = {}
    for sect_or_key, content in data.items():
        if isinstance(content, dict) and sect_or_key in SECTIONS:
            if sect_or_key == "columns":
                for role, header in content.items():
                    if not isinstance(header, str):
                        raise ConfigError(f"The column map entry {role} must be a header text, not {header!r}.",
                                          path=str(path))  # fmt: skip
                    columns[str(role).lower()] = header
                continue
            known = [k.name for k in schema.values() if k.section == sect_or_key]
            for name, raw in content.items():
                key = schema.get(f"{sect_or_key}.{name}")
                if key is None:
                    raise _unknown(str(name), known, section=sect_or_key, path=path)
                try:
                    values[key.dotted] = (_coerce(key, raw, "file"), "file")
                except ConfigError as e:
                    raise ConfigError(e.message, path=str(path)) from e
        else:
            key = schema.get(sect_or_key)
            if key is None or isinstance(content, dict):
                known = [k.name for k in schema.values() if not k.section] + [f"[{s}]" for s in SECTIONS if s]
                raise _unknown(str(sect_or_key), known, section="", path=path)
            try:
                values[key.dotted] = (_coerce(key, content, "file"), "file")
            except ConfigError as e:
                raise ConfigError(e.message, path=str(path)) from e

    # -- the environment
    by_env = {name: key for key in schema.values() for name in key.env}
    for name in env:
        if name.startswith("LICENSE_BATCH_") and name not in by_env and name not in OTHER_ENV:
            near = difflib.get_close_matches(name, list(by_env), n=1, cutoff=0.8)
            raise ConfigError(
                f"The environment variable {name} is not a license-batch setting.",
                fix=f"Did you mean {near[0]}?" if near else "Unset it; 'license-batch config show' lists the settings.",
            )
    for key in schema.values():
        for name in key.env:
            raw = env.get(name)
            if raw is not None and raw != "":
                values[key.dotted] = (_coerce(key, raw, name), "env")
                break
    legacy = env.get("LICENSE_BATCH_CREDENTIAL")  # the older name of LICENSE_BATCH_AUTH
    if legacy and values["tenant.auth"][1] != "env":
        kind = {"default": "auto", "environment": "env"}.get(legacy.strip().lower(), legacy.strip().lower())
        values["tenant.auth"] = (_coerce(schema["tenant.auth"], kind, "LICENSE_BATCH_CREDENTIAL"), "env")

    # -- the command line
    given: dict[str, Any] = {
        "tenant.name": tenant, "tenant.graph_url": graph_url, "tenant.powerplatform_url": powerplatform_url,
        "report_dir": report_dir, "product_list": product_list, "tenant.cloud": cloud, "tenant.auth": auth,
        **(cli or {}),
    }  # fmt: skip
    for dotted, raw in given.items():
        if raw is None:
            continue
        key = schema.get(dotted)
        if key is None:
            raise ConfigError(f"Unknown setting '{dotted}'.")
        values[dotted] = (_coerce(key, str(raw) if isinstance(raw, os.PathLike) else raw, "cli"), "cli")
    columns.update({k.lower(): v for k, v in (column_map or {}).items()})
    return _build(values, columns, path)


def _build(values: dict[str, tuple[Any, str]], columns: dict[str, str], path: Path | None) -> Settings:
    v = {k: x[0] for k, x in values.items()}
    sandbox = SandboxSettings(db=v["sandbox.db"], users=v["sandbox.users"], seed=v["sandbox.seed"],
                              time_scale=v["sandbox.time_scale"])  # fmt: skip
    overrides = {k.split(".", 1)[1]: x[0] for k, x in values.items()
                 if k.startswith("sandbox.") and x[1] != "default" and k not in
                 ("sandbox.db", "sandbox.users", "sandbox.seed")}  # fmt: skip
    limits = Limits(**{k.split(".", 1)[1]: x for k, x in v.items() if k.startswith("limits.")})
    name, g_url = v["tenant.name"], v["tenant.graph_url"]
    cloud = CLOUD_HOSTS[v["tenant.cloud"]]
    if name in (None, "", "sandbox") and not g_url:
        target = Target(name="sandbox", graph_url="", powerplatform_url="", embedded_sandbox=True)
    else:
        target = Target(
            name=str(name or urlsplit(str(g_url)).netloc),
            graph_url=str(g_url or cloud.graph_url).rstrip("/"),
            powerplatform_url=str(v["tenant.powerplatform_url"] or cloud.powerplatform_url).rstrip("/"),
            cloud=cloud.name,
            tenant_id=v["tenant.tenant_id"],
            client_id=v["tenant.client_id"],
            auth=v["tenant.auth"],
        )
    if target.is_sandbox and sandbox.time_scale != 1.0:
        limits = limits.scaled(sandbox.time_scale)
    sources = dict(values)
    if v["cache_dir"] is None:
        sources["cache_dir"] = (_default_cache_dir(), "default")
    for role, header in columns.items():
        sources[f"columns.{role}"] = (header, "file/cli")
    return Settings(
        target=target,
        limits=limits,
        report_dir=v["report_dir"],
        column_map=columns,
        product_list=v["product_list"],
        cache_dir=v["cache_dir"] or _default_cache_dir(),
        sandbox=sandbox,
        config_file=path,
        on_shortfall=v["on_shortfall"],
        reserve=v["reserve"],
        preflight=v["tenant.preflight"],
        allocations_api=v["powerplatform.allocations_api"],
        sandbox_overrides=overrides,
        sources=sources,
    )


def sandbox_table(
    *, toml_path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The SandboxConfig fields set in ``[sandbox]`` of ``toml_path`` and ``LICENSE_BATCH_SANDBOX_*``, typed.

    The same loader as ``load_settings`` (so the same checks and messages); used by ``SandboxConfig.load``.
    """
    env = os.environ if env is None else env
    only_sandbox = {k: x for k, x in env.items() if k.startswith("LICENSE_BATCH_SANDBOX_")}
    cfg = toml_path if toml_path and Path(toml_path).exists() else os.devnull
    return dict(load_settings(config_file=cfg, env=only_sandbox).sandbox_overrides)


def coerce_sandbox_field(name: str, raw: Any) -> Any:
    """One SandboxConfig field from a keyword/mapping value (``"0.1"`` -> 0.1), with the loader's checks."""
    key = _schema().get(f"sandbox.{name}")
    if key is None:
        raise ConfigError(f"Unknown sandbox setting '{name}'.")
    return _coerce(key, raw, "cli")


def known_sandbox_fields() -> list[str]:
    return [k.name for k in _sandbox_config_keys()]


def show_settings(settings: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    """``license-batch config show``: every effective setting, where it came from; secrets never shown."""
    env = os.environ if env is None else env
    lines = [f"config file: {settings.config_file or '(none: ' + DEFAULT_CONFIG_FILE + ' not found)'}",
             settings.target.describe()]  # fmt: skip
    width = max(len(k) for k in settings.sources)
    for dotted in sorted(settings.sources, key=lambda k: (k.count("."), k)):
        value, origin = settings.sources[dotted]
        shown = "(not set)" if value is None else str(value)
        lines.append(f"  {dotted.ljust(width)} = {shown}  [{origin}]")
    secrets_seen = [n for n in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
                                "AZURE_CLIENT_CERTIFICATE_PASSWORD", "LICENSE_BATCH_TOKEN") if env.get(n)]  # fmt: skip
    lines.append("credentials in the environment: " + (", ".join(f"{n} (set, value hidden)" for n in secrets_seen)
                                                         if secrets_seen else "none"))  # fmt: skip
    return lines


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


def _read_toml(config_file: str | os.PathLike[str] | None) -> tuple[Path | None, dict[str, Any]]:
    if config_file is not None and str(config_file) == os.devnull:
        return None, {}
    path = Path(config_file) if config_file else Path(DEFAULT_CONFIG_FILE)
    if not path.exists():
        if config_file:
            raise ConfigError("The config file does not exist.", path=str(path))
        return None, {}
    try:
        with path.open("rb") as f:
            return path, tomllib.load(f)
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
