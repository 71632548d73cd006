"""The Slack Web API played on loopback: enough of auth.test, chat.postMessage, users.info and
apps.connections.open for the real slack_sdk client, with every call recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.fakes.loopback import LoopbackServer, Reply, Request


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    token: str


class FakeSlackAPI:
    def __init__(self, team: str = "T1") -> None:
        self.team = team
        self.users: dict[str, dict[str, Any]] = {}
        self.socket_url = ""
        self._queued: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._reply)

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}/api/"

    @property
    def calls(self) -> list[Call]:
        return [Call(r.path.removeprefix("/api/"), r.args(),
                     r.headers.get("Authorization", "").removeprefix("Bearer "))
                for r in self._server.requests]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def then(self, method: str, *replies: Reply) -> None:
        """The next calls to `method` get these replies, in order, then the default again."""
        with self._lock:
            self._queued.setdefault(method, []).extend(replies)

    def _reply(self, request: Request) -> Reply:
        method = request.path.removeprefix("/api/")
        with self._lock:
            queued = self._queued.get(method)
            if queued:
                return queued.pop(0)
        args = request.args()
        if method == "auth.test":
            return Reply.json({"ok": True, "team_id": self.team, "user_id": "UBOT",
                               "bot_id": "BBOT"})
        if method == "chat.postMessage":
            return Reply.json({"ok": True, "channel": args.get("channel"), "ts": "1.000001"})
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            return Reply.json({"ok": True, "user": user} if user else
                              {"ok": False, "error": "user_not_found"})
        if method == "apps.connections.open":
            return Reply.json({"ok": True, "url": self.socket_url})
        return Reply.json({"ok": False, "error": "unknown_method"}, 404)

    @contextmanager
    def running(self) -> Iterator[FakeSlackAPI]:
        with self._server.running():
            yield self
