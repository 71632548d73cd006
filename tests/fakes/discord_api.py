"""Discord's REST API played on loopback: enough for discord.py's own HTTP client to log in,
answer interactions, post messages and sync commands, with every request recorded."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.fakes.loopback import LoopbackServer, Reply, Request

APP_ID = "999"
BOT = {"id": APP_ID, "username": "rankbot", "discriminator": "0", "avatar": None,
       "global_name": None, "bot": True}


class FakeDiscordAPI:
    def __init__(self) -> None:
        self._queued: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._reply)

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}/api/v10"

    def then(self, route: str, *replies: Reply) -> None:
        """The next requests to `route` ("POST /channels/123/messages") get these replies."""
        with self._lock:
            self._queued.setdefault(route, []).extend(replies)

    def bodies(self, method: str, pattern: str) -> list[Any]:
        """JSON bodies of the requests whose path (after /api/v10) matches `pattern`."""
        return [json.loads(r.body) if r.body else None for r in self._server.requests
                if r.method == method and re.fullmatch(pattern, _route(r))]

    def _reply(self, request: Request) -> Reply:  # noqa: PLR0911 - a branch per route
        route = _route(request)
        with self._lock:
            queued = self._queued.get(f"{request.method} {route}")
            if queued:
                return queued.pop(0)
        if route in ("/gateway", "/gateway/bot"):  # a closed loopback port: never the internet
            return Reply.json({"url": "ws://127.0.0.1:9", "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
        if route == "/users/@me":
            return Reply.json(BOT)
        if route == "/oauth2/applications/@me":
            return Reply.json({"id": APP_ID, "name": "rankbot", "description": "", "icon": None,
                               "bot_public": True, "bot_require_code_grant": False,
                               "owner": BOT, "verify_key": "00", "flags": 0, "summary": ""})
        if match := re.fullmatch(r"/interactions/(\d+)/[^/]+/callback", route):
            return Reply.json({"interaction": {"id": match[1], "type": 2}})
        if match := re.fullmatch(r"/channels/(\d+)/messages", route):
            return Reply.json({"id": "5000", "channel_id": match[1]})
        if request.method == "PUT" and route.endswith("/commands"):
            return Reply.json([{**c, "id": str(1000 + i), "application_id": APP_ID,
                                "version": "1"} for i, c in enumerate(json.loads(request.body))])
        return Reply.json({"message": "404: Not Found", "code": 0}, 404)

    @contextmanager
    def running(self) -> Iterator[FakeDiscordAPI]:
        with self._server.running():
            yield self


def _route(request: Request) -> str:
    return request.path.removeprefix("/api/v10")


def rate_limited(retry_after: float) -> Reply:
    """A 429 as Discord sends it (the Via header tells discord.py it is not a Cloudflare ban)."""
    return Reply.json({"message": "You are being rate limited.", "retry_after": retry_after,
                       "global": False}, 429, **{"Retry-After": str(retry_after), "Via":
                                                 "1.1 google", "X-RateLimit-Scope": "user"})
