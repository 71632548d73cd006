"""Chat connections heal themselves: the supervisor restarts a failed connection with a growing,
jittered, capped wait, logs each failure once with its traceback, stops for good on a refused
token, and keeps the state `rankbot status` shows."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from rankbot.adapters.supervisor import Connection, Refused, supervise
from rankbot.bot.connections import (
    Backoff,
    ConnectionState,
    connected,
    describe,
    down_too_long,
    failed,
    starting,
)
from rankbot.storage import UnitOfWork

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


class Recorded:
    def __init__(self) -> None:
        self.states: list[ConnectionState] = []
        self.waits: list[float] = []

    async def record(self, state: ConnectionState) -> None:
        self.states.append(state)

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)  # yield, as a real wait does


class Flaky:
    """A connection that breaks `failures` times (as a malformed event would), then is refused
    or runs until cancelled."""

    def __init__(self, link: Connection, failures: int, then: BaseException) -> None:
        self.link, self.failures, self.then, self.runs = link, failures, then, 0

    async def __call__(self) -> None:
        self.runs += 1
        await self.link.up()
        if self.runs <= self.failures:
            raise KeyError("type")  # what discord.py raises on an event missing a field
        raise self.then


async def test_a_failing_connection_is_restarted_with_growing_waits_and_logged_once_each(
        caplog: pytest.LogCaptureFixture) -> None:
    seen = Recorded()
    link = Connection("discord", seen.record, lambda: T0)
    flaky = Flaky(link, failures=4, then=Refused("the token was refused"))
    with caplog.at_level(logging.WARNING):
        await supervise(link, flaky, sleep=seen.sleep)
    assert flaky.runs == 5
    assert [0.5 <= wait / 2 ** n <= 1.0 for n, wait in enumerate(seen.waits)] == [True] * 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4 and all(isinstance(r.exc_info[1], KeyError)  # type: ignore[index]
                                      for r in warnings)
    assert warnings[0].getMessage() == (
        f"Discord connection failed (KeyError: 'type'); reconnecting in {seen.waits[0]:.0f} s")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["Discord: the token was refused"]  # once, and no retry after it
    assert [s.state for s in seen.states] == ["connected", "down"] * 4 + [
        "connected", "refused"]
    assert len(seen.states[-1].reconnects) == 4


def test_the_wait_is_capped_at_five_minutes() -> None:
    backoff = Backoff()
    assert [backoff.delay(n, draw=1.0) for n in (0, 1, 2, 8, 9, 50)] == [
        1.0, 2.0, 4.0, 256.0, 300.0, 300.0]
    assert backoff.delay(50, draw=0.0) == 150.0


def test_state_for_status_and_the_ten_minute_rule() -> None:
    up = connected(starting("discord", T0), T0)
    assert up.reconnects == ()  # the first connection is not a reconnect
    down = failed(up, T0 + timedelta(hours=1), "KeyError: 'type'")
    again = failed(down, T0 + timedelta(hours=1, minutes=1), "ConnectionError: refused")
    assert again.since == down.since  # down since it first went down
    assert not down_too_long(again, T0 + timedelta(hours=1, minutes=9))
    assert down_too_long(again, T0 + timedelta(hours=1, minutes=11))
    back = connected(again, T0 + timedelta(hours=2))
    assert describe(back, T0 + timedelta(hours=3)) == (
        "connected since 2026-11-29 06:00 UTC · 1 reconnect in the last day · last error "
        "2026-11-29 05:01 UTC: ConnectionError: refused")
    assert describe(back, T0 + timedelta(days=2)).count("0 reconnects") == 1
    refused = failed(back, T0, "token refused", refused=True)
    assert down_too_long(refused, T0)


def test_the_state_is_kept_where_another_process_reads_it(store: UnitOfWork) -> None:
    state = connected(failed(connected(starting("slack", T0), T0), T0, "boom"),
                      T0 + timedelta(minutes=1))
    with store:
        store.channels.save_connection(state)
    with store:
        store.channels.save_connection(starting("discord", T0))
    assert store.channels.connections() == [starting("discord", T0), state]


async def test_a_run_that_lasted_starts_the_backoff_afresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = Recorded()
    link = Connection("slack", seen.record, lambda: T0)
    clock = [0.0]
    monkeypatch.setattr("rankbot.adapters.supervisor.time.monotonic", lambda: clock[0])
    runs = 0

    async def long_then_short() -> None:  # up an hour, then two quick failures, then refused
        nonlocal runs
        runs += 1
        await link.up()
        clock[0] += {1: 3600.0, 2: 1.0, 3: 1.0, 4: 3600.0, 5: 1.0}.get(runs, 0.0)
        if runs == 6:
            raise Refused("stop")
        raise ConnectionError("dropped")

    await supervise(link, long_then_short, sleep=seen.sleep,
                    backoff=Backoff(base=1.0, cap=300.0))
    # Attempt 0 waits 0.5–1 s, attempt n between 2ⁿ⁻¹ and 2ⁿ: each hour-long run starts over.
    attempts = [0, 1, 2, 0, 1]
    assert [2.0 ** n / 2 <= wait <= 2.0 ** n for n, wait in zip(attempts, seen.waits,
                                                                  strict=True)] == [True] * 5


async def test_fatal_gateway_closes_are_refusals_not_retries() -> None:
    import discord  # noqa: PLC0415

    from rankbot.adapters.discord_chat import gateway  # noqa: PLC0415

    class Client:
        """Stands in for discord.Client: registers event handlers, then fails to connect."""

        ws = None

        def __init__(self, error: BaseException) -> None:
            self.error = error

        def event(self, handler: object) -> object:
            return handler

        async def connect(self, reconnect: bool) -> None:
            raise self.error

    seen = Recorded()
    for error in (discord.PrivilegedIntentsRequired(None),
                  discord.LoginFailure("Improper token has been passed.")):
        link = Connection("discord", seen.record, lambda: T0)
        run = gateway(Client(error), link)  # type: ignore[arg-type]
        await asyncio.wait_for(supervise(link, run, sleep=seen.sleep), 5)  # a loop: timeout
        assert link.state.state == "refused" and seen.waits == []
