"""A tiny scripted HTTP server on 127.0.0.1 for the HTTP boundary's edge cases (no sandbox needed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

DROP = "drop"


@dataclass
class Seen:
    method: str
    raw_path: str
    headers: dict[str, str]
    body: bytes


Answer = tuple[int, dict[str, str], bytes] | str
Handler = Callable[[Seen], Answer]


@dataclass
class Stub:
    routes: dict[tuple[str, str], list[Handler]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def on(self, method: str, path: str, *answers: Answer | Handler) -> None:
        """Answer ``method path`` with ``answers`` in turn (the last one repeats)."""
        fns: list[Handler] = []
        for a in answers:
            fns.append(a if callable(a) else (lambda _s, a=a: a))  # type: ignore[misc]
        self.routes[(method, path)] = fns

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/v1.0"

    def start(self) -> Stub:
        stub = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                s = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                stub.seen.append(s)
                path = self.path.split("?", 1)[0]
                fns = stub.routes.get((self.command, path))
                if not fns:
                    ans: Answer = (404, {}, orjson.dumps({"error": {"code": "NotFound", "message": path}}))
                else:
                    fn = fns.pop(0) if len(fns) > 1 else fns[0]
                    ans = fn(s)
                if ans == DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                status, headers, content = ans  # type: ignore[misc]
                self.send_response(status)
                headers = {"Content-Type": "application/json", "request-id": "rid-" + str(len(stub.seen)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                try:
                    self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def js(obj: Any, status: int = 200, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {k.replace("_", "-"): v for k, v in headers.items()}, orjson.dumps(obj)


def graph_error(status: int, code: str, message: str = "x", **headers: str) -> tuple[int, dict[str, str], bytes]:
    body = {"error": {"code": code, "message": message, "innerError": {"request-id": "inner-rid"}}}
    return js(body, status, **headers)
