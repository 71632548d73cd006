"""Time for tests: the moment they ask at, and clocks that are set or advanced by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

OCT_8 = datetime(2026, 10, 8, 9, 0, tzinfo=UTC)  # a Thursday, after the real export came out


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class NoWait:
    """A Pacer clock and sleep that record waits instead of taking them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.now += seconds
