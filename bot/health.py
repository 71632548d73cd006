"""Healthy, degraded or down, and why in one line: `rankbot status --check`, a container's
HEALTHCHECK, a monitor. A pure decision over facts the shell gathers.

To weigh a new fact: add a field to `Facts` (with a default, so that every caller still builds
one) and a check to `CHECKS` that turns it into findings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from rankbot.bot.connections import ConnectionState, down_too_long

RANKINGS_EVERY = timedelta(days=1)  # the daily rankings poll (RANKBOT_RANKINGS_AT)
STALE_AFTER = 2  # intervals without a good fetch: one missed poll is a blip, two are not
DEAD_LETTER_WINDOW = timedelta(days=7)  # dead letters stay; only recent ones say "degraded"


class Level(IntEnum):
    """Also the exit code of `rankbot status --check`."""

    HEALTHY = 0
    DEGRADED = 1
    DOWN = 2


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    reason: str


@dataclass(frozen=True, slots=True)
class SourceFacts:
    name: str
    every: timedelta  # how often it is polled
    last_good: datetime | None  # None: never fetched


@dataclass(frozen=True, slots=True)
class Facts:
    now: datetime
    sources: tuple[SourceFacts, ...] = ()
    dead_letters: int = 0  # within DEAD_LETTER_WINDOW
    paused: int = 0  # channels whose delivery stopped (gone, bot removed); never people's DMs
    unreadable_settings: int = 0  # channels skipped until an admin repairs their rules
    damage: tuple[str, ...] = ()  # what SQLite's quick_check found
    read_only: bool = False
    unread: tuple[str, ...] = ()  # parts of the database that could not be read (damaged)
    connections: tuple[ConnectionState, ...] = ()  # the chat connections `rankbot run` keeps


@dataclass(frozen=True, slots=True)
class Health:
    level: Level
    reasons: tuple[str, ...]

    def line(self) -> str:
        return f"{self.level.name.lower()}: {'; '.join(self.reasons)}"


Check = Callable[[Facts], Iterable[Finding]]


def assess(facts: Facts) -> Health:
    return judge(finding for check in CHECKS for finding in check(facts))


def judge(findings: Iterable[Finding]) -> Health:
    """The worst level found; its reasons and the lesser problems', worst first. Healthy, the
    reasons are what was checked (how fresh each source is)."""
    found = list(findings)
    level = max((f.level for f in found), default=Level.HEALTHY)
    shown = [f for f in found if f.level > Level.HEALTHY or level == Level.HEALTHY]
    reasons = tuple(f.reason for f in sorted(shown, key=lambda f: -f.level))  # stable
    return Health(level, reasons or ("nothing to check",))


def freshness(facts: Facts) -> Iterator[Finding]:
    if facts.sources and all(s.last_good is None for s in facts.sources):
        yield Finding(Level.DOWN, "never fetched, run `rankbot poll`")
        return
    for source in facts.sources:
        if source.last_good is None:
            yield Finding(Level.DEGRADED, f"{source.name} never fetched")
            continue
        age = facts.now - source.last_good
        if age > STALE_AFTER * source.every:
            yield Finding(Level.DEGRADED, f"{source.name} last fetched {_span(age)} ago "
                                          f"({_every(source.every)})")
        else:
            yield Finding(Level.HEALTHY, f"{source.name} fetched {_span(age)} ago")


def delivery(facts: Facts) -> Iterator[Finding]:
    if facts.dead_letters:
        yield Finding(Level.DEGRADED, f"{_count(facts.dead_letters, 'dead letter')} in "
                                      f"{DEAD_LETTER_WINDOW.days} days")
    if facts.paused:
        yield Finding(Level.DEGRADED, f"{_count(facts.paused, 'channel')} paused")
    if facts.unreadable_settings:
        yield Finding(Level.DEGRADED, f"{_count(facts.unreadable_settings, 'channel')} skipped: "
                                      "settings cannot be read")


def database(facts: Facts) -> Iterator[Finding]:
    if facts.damage:
        yield Finding(Level.DEGRADED, f"database damaged (quick_check found "
                                      f"{_count(len(facts.damage), 'problem')})")
    if facts.unread:
        yield Finding(Level.DEGRADED, f"{', '.join(facts.unread)} cannot be read")
    if facts.read_only:
        yield Finding(Level.DEGRADED, "database read-only")


def chat(facts: Facts) -> Iterator[Finding]:
    """A connection refused, or down for more than ten minutes: commands are not arriving."""
    for link in facts.connections:
        if down_too_long(link, facts.now):
            state = "token refused" if link.state == "refused" else (
                f"{link.state} for {_span(facts.now - link.since)}")
            yield Finding(Level.DEGRADED, f"{link.platform} connection: {state}")


CHECKS: tuple[Check, ...] = (freshness, delivery, database, chat)


def _span(age: timedelta) -> str:
    minutes = max(0, int(age.total_seconds() // 60))  # a clock behind the database's: now
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _every(every: timedelta) -> str:
    minutes = int(every.total_seconds() // 60)
    return "daily" if minutes == 24 * 60 else f"every {minutes} min"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
