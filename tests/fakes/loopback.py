"""A stdlib HTTP server on a free loopback port that records every request and answers each
with a canned reply: the base of the fake OpenRouter and the fake Slack Web API. A reply can
also misbehave: drip its body, stream one without end, or declare a length it never sends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering, to provoke client timeouts
    drop: bool = False  # close the connection instead of answering: the answer is lost
    # The body written piece by piece as the iterable yields it (pausing where it sleeps),
    # with no Content-Length unless `headers` declare one: read until the connection closes.
    stream: Callable[[], Iterable[bytes]] | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Reply:
        return cls(status, json.dumps(payload).encode(),
                   {"Content-Type": "application/json", **headers})


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    at: float = 0.0  # time.monotonic() on arrival

    def args(self) -> dict[str, Any]:
        """Arguments as the client sent them: JSON body, form body or query string."""
        if self.body and self.headers.get("Content-Type", "").startswith("application/json"):
            return dict(json.loads(self.body))
        form = parse_qs(self.body.decode()) if self.body else self.query
        return {k: v[0] for k, v in form.items()}


class LoopbackServer:
    def __init__(self, respond: Callable[[Request], Reply], host: str = "127.0.0.1") -> None:
        self.requests: list[Request] = []
        self._respond = respond
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_PUT(self) -> None:
                self._answer()

            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, url.path, parse_qs(url.query),
                                  dict(self.headers), self.rfile.read(length), time.monotonic())
                server.requests.append(request)
                reply = server._respond(request)
                time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if reply.stream is None and "Content-Length" not in reply.headers:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    for piece in reply.stream() if reply.stream else [reply.body]:
                        self.wfile.write(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as a timeout test wants

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
