"""Chat connections that heal themselves: a connection (Discord's gateway, Slack's Socket Mode)
runs under a supervisor that restarts it after any failure, with a growing, jittered wait, and
keeps its state where `rankbot status` can read it. A refused token is the exception: one clear
error, and no retry loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from rankbot.bot.connections import Backoff, ConnectionState, connected, failed, starting

log = logging.getLogger(__name__)
STEADY = 60.0  # a run that lasted this long was fine: its failure starts the backoff afresh
BACKOFF = Backoff(base=1.0, cap=300.0)  # 1 s, 2 s, 4 s … at most 5 minutes

Record = Callable[[ConnectionState], Awaitable[None]]


class Refused(Exception):
    """The platform turned the token away: retrying cannot help. The message says what to do."""


class Connection:
    """One supervised connection's state, changed by the supervisor and by the platform's own
    events (up, down), and handed to `record` (the database) at every change."""

    def __init__(self, platform: str, record: Record, clock: Callable[[], datetime]) -> None:
        self._record, self._clock = record, clock
        self.state = starting(platform, clock())

    async def up(self) -> None:
        await self._set(connected(self.state, self._clock()))

    async def down(self, error: str, *, refused: bool = False) -> None:
        await self._set(failed(self.state, self._clock(), error, refused=refused))

    async def _set(self, state: ConnectionState) -> None:
        if state != self.state:
            self.state = state
            try:
                await self._record(state)
            except Exception:  # the state is for `status`: never a reason to drop the link
                log.warning("could not record the %s connection's state", state.platform,
                            exc_info=True)


async def supervise(connection: Connection, run: Callable[[], Awaitable[None]], *,
                    backoff: Backoff = BACKOFF,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run `run` (which returns or raises when the connection ends) again and again: after a
    failure, wait backoff.delay(n) first, n counting the failures since it was last steady.
    Each failure is logged once, with its traceback (kept by the log file). `Refused` ends it."""
    platform = connection.state.platform
    attempt = 0
    while True:
        started = time.monotonic()
        try:
            await run()
            error: BaseException = ConnectionError("the connection ended")
        except asyncio.CancelledError:
            raise
        except Refused as refused:
            log.error("%s: %s", platform.capitalize(), refused)
            await connection.down(str(refused), refused=True)
            return
        except Exception as exc:
            error = exc
        attempt = 0 if time.monotonic() - started > STEADY else attempt  # it had been fine
        wait = backoff.delay(attempt)
        attempt += 1
        log.warning("%s connection failed (%s: %s); reconnecting in %.0f s",
                    platform.capitalize(), type(error).__name__, error, wait, exc_info=error)
        await connection.down(f"{type(error).__name__}: {error}")
        await sleep(wait)
