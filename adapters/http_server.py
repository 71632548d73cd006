"""The HTTP endpoint's limits: whatever strangers send to the open port, it costs the process a
few open files and the log a line a minute, and Slack's requests are still answered.

- A request's headers must arrive within `DEADLINE` seconds of connecting (aiohttp's keep-alive
  timer, which in the aiohttp we require also runs before the first request), and its body
  within `DEADLINE` of its headers (our middleware): a slow client is cut off, not waited for.
- At most `cap` connections are kept: the next one closes the oldest, so slow clients can neither
  run the process out of open files nor keep Slack out. The soft limit on open files is raised
  toward the hard one at start, so that the cap is rarely reached.
- Refused requests (401, and 400: what aiohttp cannot parse), shed connections and failed accepts
  are each logged once, without the request's bytes, then counted in one line a minute.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

if sys.platform != "win32":  # Windows has no limit on open files to raise
    import resource

log = logging.getLogger(__name__)
DEADLINE = 10.0  # seconds for a request's headers, and again for its body
MAX_CONNECTIONS = 4096  # Slack needs a few; more only costs memory
FD_RESERVE = 256  # open files kept for the database, the logs and outgoing connections
# asyncio's text when accept() fails for want of files or memory; it then retries every second.
ACCEPT_FAILED = "socket.accept() out of system resource"


class Summarised:
    """A warning said at once the first time, then at most once a minute as a count of how many
    more there were: a flood costs a line a minute, not a line each."""

    def __init__(self, first: str, more: str, every: float = 60.0) -> None:
        self._first, self._more, self._every = first, more, every
        self._count = 0
        self._timer: asyncio.TimerHandle | None = None

    def note(self, *args: object) -> None:
        if self._timer is None:
            log.warning(self._first, *args)
            self._timer = asyncio.get_running_loop().call_later(self._every, self._summarise)
        else:
            self._count += 1

    def _summarise(self) -> None:
        if not self._count:
            self._timer = None  # quiet again: the next one is said at once
            return
        log.warning(self._more, self._count)
        self._count = 0
        self._timer = asyncio.get_running_loop().call_later(self._every, self._summarise)


async def serve(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve `web_app` within the limits above, in this event loop."""
    cap = connection_cap(raise_open_files(MAX_CONNECTIONS + FD_RESERVE))
    web_app.middlewares.append(guard(Summarised(
        "refused an unsigned or mis-signed request to %s from %s",
        "refused %d more unsigned or mis-signed requests in the last minute")))
    quiet_malformed_requests(web_app)
    # lingering_time=0: the unread rest of a body refused or cut off is not waited for either.
    runner = web.AppRunner(web_app, keepalive_timeout=DEADLINE, lingering_time=0)
    await runner.setup()
    try:
        await CappedSite(runner, host, port, cap).start()
    except BaseException:  # the port is taken, say: leave nothing behind (log filters too)
        await runner.cleanup()
        raise
    quiet_accept_errors(asyncio.get_running_loop())
    return runner


def guard(refusals: Summarised) -> Middleware:
    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            async with asyncio.timeout(DEADLINE):
                await request.read()  # kept by aiohttp for the handler's own read
        except TimeoutError:
            raise web.HTTPRequestTimeout(text="the request body came too slowly") from None
        response = await handler(request)
        if response.status == HTTPStatus.UNAUTHORIZED:
            refusals.note(request.path, request.remote)
        return response
    return guarded


class MalformedRequests(logging.Filter):
    """aiohttp logs each request it cannot parse (and answers 400) at ERROR, with a traceback
    quoting up to 8 KB of the offending bytes: instead, a line, then a count a minute."""

    def __init__(self) -> None:
        super().__init__()
        self._refused = Summarised("refused a malformed request from %s (%s)",
                                   "refused %d more malformed requests in the last minute")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.WARNING or not isinstance(error, HttpProcessingError):
            return True  # a bug of ours (500) keeps its traceback
        remote = record.args[0] if isinstance(record.args, tuple) and record.args else None
        self._refused.note(remote, type(error).__name__)
        return False


def quiet_malformed_requests(web_app: web.Application) -> None:
    server_log, malformed = logging.getLogger("aiohttp.server"), MalformedRequests()
    server_log.addFilter(malformed)

    async def forget(_: web.Application) -> None:
        server_log.removeFilter(malformed)

    web_app.on_cleanup.append(forget)


class CappedSite(web.BaseSite):
    """A TCP site keeping at most `cap` connections: at the cap, a new one closes the oldest."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, cap: int) -> None:
        super().__init__(runner)
        self._host, self._port, self._cap = host, port, cap
        self._shed = Summarised(
            f"{cap} connections open, the most kept: closing the oldest to let a new one in",
            f"closed %d more of the oldest connections in the last minute, to stay at {cap}")

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._connection, self._host, self._port, backlog=self._backlog)

    def _connection(self) -> web.RequestHandler:
        server = self._runner.server
        assert server is not None
        connections = server.connections  # oldest first
        # Closed ones linger in the list until their task ends: skip those.
        if len(connections) >= self._cap and (
                oldest := next((c for c in connections if c.connected), None)):
            oldest.force_close()
            self._shed.note()
        return server()


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft limit on open files toward `wanted`, never past the hard limit;
    the soft limit now in force."""
    if sys.platform == "win32":
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # macOS refuses more than its OPEN_MAX: keep what we have
            log.debug("could not raise the open-files limit to %d", target, exc_info=True)
    return MAX_CONNECTIONS + FD_RESERVE if soft == resource.RLIM_INFINITY else soft


def connection_cap(open_files: int) -> int:
    """Connections to keep under a limit of `open_files`, leaving room for everything else."""
    return min(MAX_CONNECTIONS, max(open_files // 2, open_files - FD_RESERVE))


ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """asyncio reports a failed accept() (out of open files) every time it retries, each time
    with a traceback, and Python 3.11 up to 128 times per retry: say it once, then a count a
    minute. Everything else goes where it went before."""
    failed = Summarised("cannot accept a connection: %s; retrying every second",
                        "accept failed %d more times in the last minute")
    before: ExceptionHandler | None = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == ACCEPT_FAILED:
            failed.note(context.get("exception"))
        elif before is not None:
            before(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
