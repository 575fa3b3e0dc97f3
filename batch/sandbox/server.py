"""The sandbox's HTTP server: stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive, one SQLite file.

``SandboxApp.handle`` turns one raw HTTP request into a ``Wire`` answer (or a dropped connection);
``SandboxServer`` runs it on a free loopback port in background threads; ``serve`` is the blocking
form for ``license-batch sandbox serve``.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import orjson

from ..config import SANDBOX_DEV_TOKEN
from ..errors import ConfigError
from . import behaviour as B
from .config import SandboxConfig
from .graph import GraphFace, process_due_group_jobs
from .http import Context, Reply, graph_error, parse_query, split_path
from .limits import Chaos, GraphThrottle, PowerPlatformThrottle
from .powerplatform import PowerPlatformFace, pp_error
from .store import SCHEMA_VERSION, Store, migrate


@dataclass(slots=True)
class Wire:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    delay: float = 0.0  # seconds to wait before answering (latency model, slow fault)
    drop: str = ""  # "", "before" (nothing happened) or "after" (the request took effect)
    note: str = ""


class SandboxApp:
    """Everything except the socket: auth, faults, latency, routing to the Graph / Power Platform faces."""

    def __init__(self, db: str | Path, config: SandboxConfig) -> None:
        self.store = Store(db)
        self.config = config
        meta = self.store.meta()
        if "tenant_id" in meta:
            with self.store.write() as c:  # a tenant seeded by an older version: add what is new (idempotent)
                migrate(c)
                if meta.get("schema_version") != SCHEMA_VERSION:
                    c.execute("INSERT OR REPLACE INTO meta VALUES('schema_version', ?)", (SCHEMA_VERSION,))
            meta = self.store.meta()
        if "tenant_id" not in meta:
            raise ConfigError("The sandbox database is not seeded.", path=str(db),
                              fix="Run 'license-batch sandbox init' first.")  # fmt: skip
        self.meta = meta
        users = self.store.conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        self.chaos = Chaos(config)
        self.graph = GraphFace(self.store, config, self.chaos, GraphThrottle(config, meta["tenant_id"], users), meta)
        self.pp = PowerPlatformFace(self.store, config, meta)
        self.pp_throttle = PowerPlatformThrottle(config)
        self._tokens: dict[str, tuple[str, frozenset[str]]] = {}
        self._tokens_lock = threading.Lock()

    def set_base(self, origin: str) -> None:
        self.graph.base_url = f"{origin}/v1.0"
        self.pp.base_url = origin

    def _token(self, header: str | None) -> tuple[str, frozenset[str]] | str | None:
        """(app id, scopes), None (no token) or "" (unknown token)."""
        if not header:
            return None
        scheme, _, tok = header.partition(" ")
        if scheme.lower() != "bearer" or not tok.strip():
            return None
        tok = tok.strip()
        with self._tokens_lock:
            hit = self._tokens.get(tok)
        if hit is None:
            r = self.store.conn.execute("SELECT app_id, scopes FROM tokens WHERE token=?", (tok,)).fetchone()
            if r is None:
                return ""
            hit = (r[0], frozenset(r[1].split()))
            with self._tokens_lock:
                self._tokens[tok] = hit
        return hit

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Wire:
        path, _, qs = raw_path.partition("?")
        crid = headers.get("client-request-id") or str(uuid.uuid4())
        ctx = Context(str(uuid.uuid4()), crid, tenant_id=self.meta["tenant_id"])
        ctx.eventual = (headers.get("ConsistencyLevel") or "").strip().lower() == "eventual"
        segs = split_path(path)
        is_graph = bool(segs) and segs[0] == "v1.0"
        c = self.config
        fault = self.chaos.fault(connection_level=True)
        if fault == "drop-before":
            return Wire(0, [], b"", drop="before", note=fault)
        delay = c.slow_seconds if fault == "slow" else 0.0
        if is_graph:
            reply, kind = self._graph(ctx, method, segs[1:], parse_query(qs), headers, body, fault)
        else:
            reply, kind = self._powerplatform(ctx, method, segs, parse_query(qs), headers, body, fault)
        delay += self._latency(kind, ctx.items)
        out = [("request-id", ctx.request_id), ("client-request-id", ctx.client_request_id)]
        if not is_graph:
            out.append(("x-ms-correlation-id", ctx.request_id))
        payload = b""
        if reply.text is not None:
            payload = reply.text.encode("utf-8")
            out.append(("Content-Type", "text/plain; charset=utf-8"))
        elif reply.body is not None:
            payload = orjson.dumps(reply.body)
            out.append(("Content-Type", "application/json; charset=utf-8" if is_graph else "application/json"))
        out.extend(reply.headers.items())
        drop = "after" if fault == "drop-after" else ""
        return Wire(reply.status, out, payload, delay=delay, drop=drop, note=ctx.note or (fault or ""))

    def _latency(self, kind: str, items: int) -> float:
        c = self.config
        if c.latency <= 0:
            return 0.0
        ms = {"read": c.latency_read_ms, "write": c.latency_write_ms, "pp": c.latency_powerplatform_ms,
              "batch": c.latency_batch_ms + items * c.latency_batch_item_ms}.get(kind, 0.0)  # fmt: skip
        return self.chaos.latency(ms)

    def _auth(self, ctx: Context, headers: Mapping[str, str]) -> str | None:
        tok = self._token(headers.get("Authorization"))
        if tok is None:
            return B.MSG_TOKEN_EMPTY
        if tok == "":
            return B.MSG_TOKEN_INVALID
        assert not isinstance(tok, str)
        ctx.app_id, ctx.scopes = tok
        return None

    def _graph(self, ctx: Context, method: str, segs: list[str], query: dict[str, str],
               headers: Mapping[str, str], body: bytes, fault: str | None) -> tuple[Reply, str]:  # fmt: skip
        www = {
            "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'
        }
        if fault in ("503", "503-retry", "504"):
            return self.graph.fault_reply(ctx, fault), "read"
        problem = self._auth(ctx, headers)
        if problem:
            return graph_error(401, "InvalidAuthenticationToken", problem, ctx, www), "read"
        parsed: Any = None
        if body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                msg = (
                    "Unable to read JSON request payload. Please ensure Content-Type header is set "
                    "and payload is of valid JSON format."
                )
                return graph_error(400, "BadRequest", msg, ctx), "read"
        if segs == ["$batch"] and method == "POST":
            return self.graph.batch(ctx, parsed), "batch"
        route = self.graph.route(method, segs)
        kind = route.kind if route is not None and not isinstance(route, Reply) else "read"
        return self.graph.call(ctx, method, segs, query, parsed, in_batch=False), kind

    def _powerplatform(self, ctx: Context, method: str, segs: list[str], query: dict[str, str],
                       headers: Mapping[str, str], body: bytes, fault: str | None) -> tuple[Reply, str]:  # fmt: skip
        if fault in ("503", "503-retry", "504"):
            ctx.note = fault
            r = pp_error(int(fault[:3]), "ServiceUnavailable" if fault.startswith("503") else "GatewayTimeout",
                         B.MSG_SERVICE_UNAVAILABLE)  # fmt: skip
            if fault == "503-retry":
                r.headers["Retry-After"] = self.chaos.retry_after(self.config.scaled(B.FAULT_503_RETRY_AFTER_SECONDS))
            return r, "pp"
        problem = self._auth(ctx, headers)
        if problem:
            return pp_error(401, B.PP_UNAUTHORIZED_CODE, problem), "pp"
        wait = self.pp_throttle.check(ctx.app_id)
        if wait is not None:
            ctx.note = "429"
            r = pp_error(429, B.PP_THROTTLED_CODE, B.MSG_THROTTLED)
            r.headers["Retry-After"] = self.chaos.retry_after(wait)
            return r, "pp"
        parsed: Any = None
        if body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                return pp_error(400, B.PP_BAD_REQUEST_CODE, "The request body is not valid JSON."), "pp"
        return self.pp.call(ctx, method, segs, query, parsed), "pp"

    def close(self) -> None:
        self.store.close()


# ------------------------------------------------------------------------------------ socket layer


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    app: SandboxApp
    log: IO[str] | None
    log_lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # our own log line is written in _serve

    def _serve(self) -> None:
        t0 = time.perf_counter()
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        body = self.rfile.read(n) if n > 0 else b""
        try:
            wire = self.server.app.handle(self.command, self.path, self.headers, body)  # type: ignore[arg-type]
        except Exception as e:  # a bug: answer 500 in Graph's shape rather than hang the client
            wire = Wire(500, [("Content-Type", "application/json")],
                        orjson.dumps({"error": {"code": "InternalServerError", "message": repr(e)}}))  # fmt: skip
        if wire.delay:
            time.sleep(wire.delay)
        if wire.drop:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._log(t0, "---", f"dropped {wire.drop}")
            return
        self.send_response(wire.status)
        for k, v in wire.headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(wire.body)))
        self.end_headers()
        if wire.body:
            self.wfile.write(wire.body)
        self._log(t0, str(wire.status), wire.note)

    def _log(self, t0: float, status: str, note: str) -> None:
        log = self.server.log
        if log is None:
            return
        ms = (time.perf_counter() - t0) * 1000
        line = (
            f"{time.strftime('%H:%M:%S')} {self.command} {self.path} {status} {ms:.1f}ms{' ' + note if note else ''}\n"
        )
        with self.server.log_lock:
            try:
                log.write(line)
                log.flush()
            except (OSError, ValueError):
                pass


class SandboxServer:
    """The sandbox on a loopback port, in background threads.

    ``with SandboxServer(db) as sb: httpx.get(sb.graph_url + "/users", headers=sb.auth_headers)``.
    With ``init_if_missing`` an unseeded ``db`` is seeded first (500 users, seed 1).
    """

    def __init__(self, db: str | Path, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0,
                 *, log: IO[str] | None = None, init_if_missing: bool = True) -> None:  # fmt: skip
        self.db = Path(db)
        self.config = config or SandboxConfig()
        self.host = host
        self.requested_port = port
        self.log = log
        self.init_if_missing = init_if_missing
        self.token = SANDBOX_DEV_TOKEN
        self.read_only_token = B.READ_ONLY_TOKEN
        self._httpd: _HTTPServer | None = None
        self._app: SandboxApp | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        if self.init_if_missing and not is_seeded(self.db):
            from .seed import init_tenant

            init_tenant(self.db)
        app = SandboxApp(self.db, self.config)
        httpd = _HTTPServer((self.host, self.requested_port), _Handler)
        httpd.app = app
        httpd.log = self.log
        httpd.log_lock = threading.Lock()
        self._app, self._httpd = app, httpd
        app.set_base(self.origin)
        self._stop.clear()
        t = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="sandbox-http", daemon=True
        )
        w = threading.Thread(target=self._group_worker, name="sandbox-groups", daemon=True)
        self._threads = [t, w]
        t.start()
        w.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        if self._app is not None:
            self._app.close()
        self._httpd = self._app = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _group_worker(self) -> None:
        assert self._app is not None
        app = self._app
        interval = min(0.05, max(0.005, self.config.scaled(self.config.group_processing_seconds) / 4))
        while not self._stop.wait(interval):
            try:
                while process_due_group_jobs(app.store, app.meta.get("country", "US")):
                    pass
            except Exception as e:  # keep serving; report on the log
                if self.log is not None:
                    self.log.write(f"group licensing worker: {e!r}\n")

    def process_group_jobs(self, *, wait: bool = False) -> int:
        """Run due group-licensing jobs now (``wait``: also the ones not yet due). For tests."""
        assert self._app is not None, "start() first"
        if wait:
            with self._app.store.write() as c:
                c.execute("UPDATE group_jobs SET due = 0")
        total = 0
        while n := process_due_group_jobs(self._app.store, self._app.meta.get("country", "US")):
            total += n
        return total

    # ------------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() first"
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.origin}/v1.0"

    @property
    def powerplatform_url(self) -> str:
        return self.origin

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def tenant_id(self) -> str:
        assert self._app is not None, "start() first"
        return self._app.meta["tenant_id"]


def is_seeded(db: Path) -> bool:
    """True when ``db`` holds a seeded tenant (a crashed seed leaves a file that is not)."""
    if not db.exists():
        return False
    import sqlite3

    try:
        conn = sqlite3.connect(str(db))
        try:
            return conn.execute("SELECT 1 FROM meta WHERE key='tenant_id'").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def serve(db: str | Path, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
          out: IO[str] | None = None, log: IO[str] | None = None, stop: threading.Event | None = None,
          init_if_missing: bool = True) -> None:  # fmt: skip
    """Serve until interrupted (Ctrl-C) or ``stop`` is set. Prints ``graph-url:``, ``powerplatform-url:``
    and ``token:`` lines to ``out`` (flushed at once), then one log line per request to ``log`` (default: out)."""
    out = out or sys.stdout
    server = SandboxServer(db, config, host, port, log=log or out, init_if_missing=init_if_missing).start()
    try:
        out.write(
            f"graph-url: {server.graph_url}\npowerplatform-url: {server.powerplatform_url}\ntoken: {server.token}\n"
        )
        out.flush()
        ev = stop or threading.Event()
        while not ev.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
