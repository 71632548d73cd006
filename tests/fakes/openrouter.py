"""OpenRouter played on loopback, serving canned replies per path under /api/v1.

Tests point the real httpx client at `base_url`, so requests, retries and timeouts are real.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.fakes.loopback import LoopbackServer, Reply, Request

PREFIX = "/api/v1"
__all__ = ["FakeOpenRouter", "Reply"]


class FakeOpenRouter:
    """A queue of replies per path is used in order and its last reply repeats. Unknown paths
    get 404. Every request is recorded, with its path relative to the API base."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._reply)

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}{PREFIX}"

    @property
    def requests(self) -> list[Request]:
        return [Request(r.method, r.path.removeprefix(PREFIX).lstrip("/"), r.query, r.headers,
                        r.body) for r in self._server.requests]

    def serve(self, path: str, *replies: Reply | bytes) -> None:
        self._routes[path] = [r if isinstance(r, Reply) else Reply(body=r) for r in replies]

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def _reply(self, request: Request) -> Reply:
        path = request.path.removeprefix(PREFIX).lstrip("/")
        with self._lock:
            queue = self._routes.get(path)
            if not queue:
                return Reply(404, b'{"error":{"code":404,"message":"Not Found"}}')
            return queue.pop(0) if len(queue) > 1 else queue[0]

    @contextmanager
    def running(self) -> Iterator[FakeOpenRouter]:
        with self._server.running():
            yield self
