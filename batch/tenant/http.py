"""The one HTTP boundary to the tenant.

One ``httpx.Client`` (reads; thread-safe, shared by the snapshot's parallel readers) and one
``httpx.AsyncClient`` (``$batch`` writes) per target, HTTP/1.1 keep-alive. Every request gets the bearer token
and a fresh ``client-request-id``; the answer's ``request-id`` is captured. Everything that can go wrong is
translated here, and only here, into ``batch.errors``:

    401 -> AuthenticationError          403 -> PermissionDeniedError
    429 -> ThrottledError(retry_after)  500/502/503/504 -> ServiceUnavailableError(retry_after)
    other 4xx (and unusable answers)    -> ServiceError
    connect/read/write/protocol errors, timeouts, dropped connections -> TenantUnreachableError

Reads (``retry=True``) retry the retryable errors themselves, honouring Retry-After (integer, fractional or
HTTP-date) or else exponential backoff with jitter, up to ``Limits.max_attempts`` attempts. With a
``ReadBudget`` (Graph), every read first takes its resource units from it, and a throttled read (429) WAITS:
it pauses every reader until Retry-After has passed and does not use up an attempt (it fails only after
``Limits.max_throttled_read_wait_seconds`` of waiting in all). Writes are never
retried here: the apply engine owns that decision (a dropped write has an unknown outcome).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from ..config import Limits
from ..errors import (
    AuthenticationError,
    PermissionDeniedError,
    RetryableTenantError,
    ServiceError,
    ServiceUnavailableError,
    TenantError,
    TenantUnreachableError,
    ThrottledError,
)
from .auth import TokenProvider
from .reads import ReadBudget, read_cost

log = logging.getLogger("batch.tenant")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Connect timeout: a loopback or cloud endpoint that does not accept within this is not there.
CONNECT_TIMEOUT_SECONDS = 5.0


# ------------------------------------------------------------------------------------- Retry-After


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, or None when absent or unusable.

    Accepts integer seconds ("5"), fractional seconds ("2.128", as Graph's docs show) and an RFC 7231
    HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT"), counted from ``now`` and never below 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT
        when = when.replace(tzinfo=UTC)
    ref = now or datetime.now(UTC)
    return max(0.0, (when - ref).total_seconds())


def backoff_delay(attempt: int, *, base: float, maximum: float, rng: random.Random | None = None) -> float:
    """The one backoff formula (this client's retries and the write pacer's, ``batch.apply.throttle``):
    exponential from ``base`` seconds, capped at ``maximum``, with "equal jitter" (half the step fixed, half
    random, so retries of many items spread out). ``attempt`` 1 is the first retry."""
    step = min(maximum, base * (2.0 ** max(0, attempt - 1)))
    return step / 2 + (rng or random).uniform(0.0, step / 2)


def backoff_seconds(attempt: int, limits: Limits, rng: random.Random | None = None) -> float:
    """:func:`backoff_delay` with the base and the cap of ``limits``."""
    return backoff_delay(attempt, base=limits.backoff_base_seconds, maximum=limits.backoff_max_seconds, rng=rng)


# ------------------------------------------------------------------------------------------ paths


def quote_segment(value: str) -> str:
    """One URL path segment, percent-encoded (``#`` -> %23, ``/`` -> %2F); ``@`` stays readable."""
    return quote(value, safe="@")


def user_path(key: str) -> str:
    """``/users/{id | userPrincipalName}`` with the key encoded for a path.

    Guest UPNs carry ``#EXT#``: an unencoded ``#`` would start a URL fragment and the request 404s.
    A UPN that begins with ``$`` must be addressed as ``/users('$...')`` (Graph's documented form).
    """
    key = key.strip()
    if key.startswith("$"):
        return "/users('" + quote(key.replace("'", "''"), safe="@'") + "')"
    return "/users/" + quote_segment(key)


def odata_literal(value: str) -> str:
    """A string literal for ``$filter`` (quotes doubled), percent-encoded for a query string."""
    return quote("'" + value.replace("'", "''") + "'", safe="@'")


# ------------------------------------------------------------------------------------- responses


@dataclass(slots=True)
class Response:
    """A successful (2xx/3xx) answer, or any answer when the request was sent with ``check=False``."""

    status: int
    headers: httpx.Headers
    content: bytes
    request_id: str | None
    client_request_id: str
    elapsed: float = 0.0

    def json(self) -> Any:
        if not self.content:
            return None
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError as e:
            raise ServiceError(
                "The tenant answered with something that is not JSON.",
                status=self.status,
                request_id=self.request_id,
            ) from e


def error_details(content: bytes) -> tuple[str | None, str | None, str | None]:
    """(code, message, innerError request-id) from a Graph or Power Platform error body, if it has them."""
    if not content:
        return None, None, None
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(body, dict):
        return None, None, None
    err = body.get("error", body)  # Power Platform gateway errors are {"code","message"} at the top
    if not isinstance(err, dict):
        return None, str(err), None
    inner = err.get("innerError") or err.get("innererror") or {}
    rid = inner.get("request-id") if isinstance(inner, dict) else None
    code, msg = err.get("code"), err.get("message")
    return (str(code) if code else None), (str(msg) if msg else None), (str(rid) if rid else None)


def error_for_status(
    status: int, headers: Mapping[str, str], content: bytes, *, what: str = "The request"
) -> TenantError:
    """The ``batch.errors`` exception for an HTTP error answer (status >= 400)."""
    code, message, inner_rid = error_details(content)
    request_id = headers.get("request-id") or inner_rid
    detail = f": {code}" if code else ""
    if message:
        detail += f" - {message}"
    kw: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    if status == 401:
        return AuthenticationError(f"{what} was refused as unauthenticated (401){detail}.", **kw)
    if status == 403:
        return PermissionDeniedError(f"{what} was refused for lack of permission (403){detail}.", **kw)
    if status == 429:
        ra = parse_retry_after(headers.get("retry-after"))
        return ThrottledError(f"{what} was throttled (429){detail}.", retry_after=ra, **kw)
    if status in (500, 502, 503, 504):
        ra = parse_retry_after(headers.get("retry-after"))
        return ServiceUnavailableError(f"{what} failed on the service side ({status}){detail}.", retry_after=ra, **kw)
    return ServiceError(f"{what} was refused ({status}){detail}.", **kw)


def error_for_transport(e: Exception, *, what: str = "The request") -> TenantError:
    if isinstance(e, httpx.UnsupportedProtocol):
        return ServiceError(f"{what} has an unusable URL: {e}.")
    host = _host_of(e)
    # A connection that was never made (refused, or its connect timed out) carried no request.
    never_sent = isinstance(e, httpx.ConnectError | httpx.ConnectTimeout)
    if isinstance(e, httpx.ConnectTimeout):
        return TenantUnreachableError(f"{what}: {host} did not accept a connection within "
                                      f"{CONNECT_TIMEOUT_SECONDS:g} s (ConnectTimeout).", never_sent=True)  # fmt: skip
    if isinstance(e, httpx.TimeoutException):
        return TenantUnreachableError(f"{what} timed out ({type(e).__name__}).")
    if isinstance(e, httpx.ConnectError):
        return TenantUnreachableError(f"{what}: cannot reach {host} (ConnectError: {e}).", never_sent=True)
    return TenantUnreachableError(f"{what} could not reach the tenant ({type(e).__name__}: {e}).",
                                  never_sent=never_sent)


def _host_of(e: Exception) -> str:
    try:
        url = e.request.url  # type: ignore[attr-defined]
        return f"{url.host}:{url.port}" if url.port else str(url.host)
    except (AttributeError, RuntimeError):
        return "the host"


# ----------------------------------------------------------------------------------------- client


@dataclass
class HttpStats:
    requests: int = 0  # HTTP requests put on the wire (every attempt counts)
    retries: int = 0
    throttled: int = 0  # envelope-level 429s
    waited_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, requests: int = 0, retries: int = 0, throttled: int = 0, waited: float = 0.0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.throttled += throttled
            self.waited_seconds += waited


class HttpClient:
    """Authenticated HTTP to one service root (``base_url``, e.g. ``https://graph.microsoft.com/v1.0``).

    ``url`` arguments are either paths relative to ``base_url`` (``/users``) or absolute URLs on the same
    host (an ``@odata.nextLink``); an absolute URL on another host is refused so the token never leaves.
    """

    def __init__(
        self,
        base_url: str,
        tokens: TokenProvider,
        scope: str,
        limits: Limits | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "license-batch",
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        read_budget: ReadBudget | None = None,
    ) -> None:
        """``transport`` replaces the network (e.g. ``httpx.MockTransport(handler)``, which serves both the
        sync reads and the async writes), so retries and pacing can be tested without a socket."""
        self._transport = transport
        self.base_url = base_url.rstrip("/")
        self.read_budget = read_budget
        self.tokens = tokens
        self.scope = scope
        self.limits = limits or Limits()
        self.stats = HttpStats()
        self._sleep = sleep
        self._rng = random.Random()
        self._user_agent = user_agent
        parts = urlsplit(self.base_url)
        self._origin = (parts.scheme, parts.netloc.lower())
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        #: No answer has come back yet: a host that cannot be reached on the first contact is reported at once
        #: instead of being retried (a wrong URL or a blocked network does not heal in a minute).
        self._contacted = False

    # -- clients

    def _timeout(self) -> httpx.Timeout:
        t = self.limits.request_timeout_seconds
        return httpx.Timeout(t, connect=min(t, CONNECT_TIMEOUT_SECONDS))

    def _pool(self) -> httpx.Limits:
        n = max(1, self.limits.max_in_flight)
        return httpx.Limits(max_connections=n + 2, max_keepalive_connections=n + 2, keepalive_expiry=30.0)

    def _client_options(self) -> dict[str, Any]:
        """The same settings for the sync (reads) and async (writes) clients."""
        return {
            "timeout": self._timeout(),
            "limits": self._pool(),
            "http1": True,
            "http2": False,
            "headers": {"User-Agent": self._user_agent},
            "follow_redirects": False,
        }

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    sync = self._transport if isinstance(self._transport, httpx.BaseTransport) else None
                    self._client = httpx.Client(**self._client_options(), transport=sync)
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aloop is not loop:
            # An AsyncClient's pooled connections belong to the loop that opened them: a new loop
            # (a second asyncio.run) gets a new client. Call ``aclose()`` inside the loop when done.
            a = self._transport if isinstance(self._transport, httpx.AsyncBaseTransport) else None
            self._aclient = httpx.AsyncClient(**self._client_options(), transport=a)
            self._aloop = loop
        return self._aclient

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None and self._aloop is asyncio.get_running_loop():
            await self._aclient.aclose()
        self._aclient = None
        self._aloop = None

    # -- building requests

    def url(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            parts = urlsplit(url)
            if (parts.scheme, parts.netloc.lower()) != self._origin:
                raise ServiceError(f"The tenant pointed us to another host ({parts.netloc}); not following it.")
            return url
        if not url.startswith("/"):
            url = "/" + url
        return self.base_url + url

    def _headers(self, headers: Mapping[str, str] | None, content: bytes | None) -> tuple[dict[str, str], str]:
        crid = str(uuid.uuid4())
        h = {
            "Authorization": "Bearer " + self.tokens.token(self.scope),
            "client-request-id": crid,
            "Accept": "application/json",
        }
        if content is not None:
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        return h, crid

    def _settle(
        self, method: str, url: str, r: httpx.Response, crid: str, what: str, *, check: bool = True
    ) -> Response:
        self._contacted = True
        rid = r.headers.get("request-id")
        try:
            elapsed = r.elapsed.total_seconds()
        except RuntimeError:  # pragma: no cover - body not read
            elapsed = 0.0
        log.debug("%s %s -> %s request-id=%s client-request-id=%s", method, _loggable(url), r.status_code, rid, crid)
        if r.status_code >= 400:
            if r.status_code == 401:
                self.tokens.invalidate(self.scope)
            if r.status_code == 429:
                self.stats.add(throttled=1)
            if check:
                raise error_for_status(r.status_code, r.headers, r.content, what=what)
        return Response(r.status_code, r.headers, r.content, rid, crid, elapsed)

    # -- sync

    def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
        units: int | None = None,
    ) -> Response:
        """Send one request; ``retry`` defaults to True for GET (and for POST /$batch of reads, if asked).

        ``units``: the resource units the read costs (a GET's are worked out from its URL; give them for a
        ``$batch`` of reads); with a read budget they are taken from it before every attempt."""
        is_get = method.upper() == "GET"
        retry = is_get if retry is None else retry
        full = self.url(url)
        what = f"{method.upper()} {_short(full)}"
        budget = self.read_budget
        cost = units if units is not None else (read_cost(url) if is_get else 0)
        attempt = 0
        refreshed = False
        throttle_waited = 0.0
        while True:
            attempt += 1
            sent_at = time.monotonic()
            try:
                if budget is not None and cost:
                    waited = budget.acquire(cost)
                    if waited:
                        self.stats.add(waited=waited)
                    sent_at = budget.now()
                h, crid = self._headers(headers, content)
                try:
                    r = self.client.request(method, full, content=content, headers=h)
                finally:
                    self.stats.add(requests=1)
                return self._settle(method, full, r, crid, what)
            except httpx.HTTPError as e:
                err: TenantError = error_for_transport(e, what=what)
                err_from: Exception = e
            except AuthenticationError:
                # one fresh token, then give up: a revoked or expired token is the common cause
                if retry and not refreshed:
                    refreshed = True
                    continue
                raise
            except TenantError as e:
                err, err_from = e, e
            if retry and isinstance(err, ThrottledError) and budget is not None and cost:
                # throttled: every reader waits for Retry-After; the read is sent again, no attempt used up
                wait = budget.on_throttled(err.retry_after, sent_at=sent_at,
                                           fallback=backoff_seconds(attempt, self.limits, self._rng))
                if throttle_waited + wait <= self.limits.max_throttled_read_wait_seconds:
                    throttle_waited += wait
                    attempt -= 1
                    log.info("%s: throttled; waiting %.2f s (Retry-After)", what, wait)
                    self.stats.add(retries=1)
                    continue  # the budget's pause holds this read (and every other) back
            unreachable = isinstance(err_from, httpx.ConnectError | httpx.ConnectTimeout)
            first_contact_failed = unreachable and not self._contacted
            if (not retry or not isinstance(err, RetryableTenantError) or attempt >= self.limits.max_attempts
                    or first_contact_failed):  # fmt: skip
                if err is err_from:
                    raise err
                raise err from err_from
            wait = self._wait_for(err, attempt)
            log.info("%s: %s; retrying in %.2f s (attempt %d)", what, type(err).__name__, wait, attempt + 1)
            self.stats.add(retries=1, waited=wait)
            self._sleep(wait)

    def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", url, headers=headers).json()

    def _wait_for(self, err: RetryableTenantError, attempt: int) -> float:
        if err.retry_after is not None:
            return err.retry_after + 0.1 * self._rng.random() * min(1.0, err.retry_after)
        return backoff_seconds(attempt, self.limits, self._rng)

    # -- async (writes)

    async def arequest(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> Response:
        """Send one request once (no retries: the caller decides).

        ``check=False`` returns every HTTP answer (4xx and 5xx too) as a ``Response`` instead of raising;
        transport failures still raise ``TenantUnreachableError`` (or ``ServiceError`` for an unusable URL)."""
        full = self.url(url)
        what = f"{method.upper()} {_short(full)}"
        h, crid = self._headers(headers, content)
        client = self._async_client()
        try:
            try:
                r = await client.request(method, full, content=content, headers=h)
            finally:
                self.stats.add(requests=1)
        except httpx.HTTPError as e:
            raise error_for_transport(e, what=what) from e
        return self._settle(method, full, r, crid, what, check=check)


def _short(url: str) -> str:
    """A URL for messages: path only, no query (queries can carry user names in filters)."""
    p = urlsplit(url)
    return p.path


def _loggable(url: str) -> str:
    p = urlsplit(url)
    return p.path + ("?" + p.query[:200] if p.query else "")


__all__ = [
    "RETRYABLE_STATUSES",
    "HttpClient",
    "HttpStats",
    "Response",
    "backoff_delay",
    "backoff_seconds",
    "error_details",
    "error_for_status",
    "error_for_transport",
    "odata_literal",
    "parse_retry_after",
    "quote_segment",
    "user_path",
]
