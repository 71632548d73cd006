"""What `rankbot run` serves over HTTP to anyone: `/healthz` and the feeds of changes. Slack's
`/slack/events` joins them in HTTP mode (adapters/slack_chat.py); adapters/http_server.py keeps
all of them within the endpoint's limits.

- `GET /healthz`: the verdict of `rankbot status --check` as JSON, `{"status": "degraded",
  "exit_code": 1, "reasons": [...]}`; HTTP 200 when healthy or degraded (it still serves: a
  probe that restarts on non-2xx must not restart it for a slow OpenRouter), 503 when down.
- `GET /feed.atom`, `GET /feed.json`: the newest changes; `?kinds=a,b` keeps those kinds only,
  and an unknown kind is a 400 naming the known ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Generic, TypeVar

from aiohttp import web

from rankbot.adapters import feeds
from rankbot.bot.feed import parse_kinds
from rankbot.bot.health import Health, Level
from rankbot.bot.ports import FeedEntry

T = TypeVar("T")
HEALTH_PATH, ATOM_PATH, JSON_PATH = "/healthz", "/feed.atom", "/feed.json"
PATHS = (HEALTH_PATH, ATOM_PATH, JSON_PATH)
FRESH = 5.0  # seconds a verdict is reused: a flood of probes costs one database check each
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"
Entries = Callable[[frozenset[str]], Awaitable[Sequence[FeedEntry]]]
Render = Callable[[Sequence[FeedEntry], str, frozenset[str]], bytes]


def routes(health: Callable[[], Awaitable[Health]], entries: Entries) -> list[web.RouteDef]:
    """`health` judges now; `entries` reads a feed's entries (of the given kinds; all when
    empty), newest first. GET routes answer HEAD too."""
    verdict = Reused(health, FRESH)
    return [web.get(HEALTH_PATH, health_handler(verdict)),
            web.get(ATOM_PATH, feed_handler(entries, feeds.atom, ATOM_TYPE)),
            web.get(JSON_PATH, feed_handler(entries, feeds.json_feed, JSON_FEED_TYPE))]


def health_body(health: Health) -> dict[str, object]:
    return {"status": health.level.name.lower(), "exit_code": int(health.level),
            "reasons": list(health.reasons)}


def health_handler(verdict: Reused[Health]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def healthz(request: web.Request) -> web.Response:
        health = await verdict()
        status = HTTPStatus.SERVICE_UNAVAILABLE if health.level == Level.DOWN else HTTPStatus.OK
        return web.json_response(health_body(health), status=status,
                                 headers={"Cache-Control": "no-store"})
    return healthz


def feed_handler(entries: Entries, render: Render, content_type: str
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def feed(request: web.Request) -> web.StreamResponse:
        try:
            kinds = parse_kinds(request.query.getall("kinds", []))
        except ValueError as error:
            return web.Response(status=HTTPStatus.BAD_REQUEST, text=f"{error}\n")
        body = render(await entries(kinds), str(request.url), kinds)
        tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {"ETag": tag, "Cache-Control": "max-age=60",
                   "X-Content-Type-Options": "nosniff"}
        if tag in request.headers.get("If-None-Match", ""):  # a reader that has it already
            return web.Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
        return web.Response(body=body, headers=headers,
                            content_type=content_type, charset="utf-8")
    return feed


@dataclass
class Reused(Generic[T]):
    """`work`'s result, shared by the requests that arrive while it runs and reused for `fresh`
    seconds after: however many probes come, the database sees one check at a time."""

    work: Callable[[], Awaitable[T]]
    fresh: float
    clock: Callable[[], float] = time.monotonic
    _running: asyncio.Future[T] | None = None
    _last: tuple[float, T] | None = None

    async def __call__(self) -> T:
        if self._last and self.clock() - self._last[0] < self.fresh:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._take())
            # Its error is each waiter's; seen here too, for when every waiter has gone.
            self._running.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(self._running)

    async def _take(self) -> T:
        try:
            result = await self.work()
            self._last = (self.clock(), result)
            return result
        finally:
            self._running = None
