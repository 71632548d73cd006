"""Leaderboards: models ranked by tokens over a window of days (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from rankbot.bot.rankings import OTHER


@dataclass(frozen=True, slots=True)
class Standing:
    permaslug: str
    rank: int
    tokens: int
    share: float


@dataclass(frozen=True, slots=True)
class Leaderboard:
    """Models ranked by total tokens over the UTC days `start`..`end` (inclusive)."""

    start: date
    end: date
    standings: tuple[Standing, ...]

    def rank_of(self, permaslug: str) -> int | None:
        return next((s.rank for s in self.standings if s.permaslug == permaslug), None)

    def top(self, n: int) -> tuple[Standing, ...]:
        return self.standings[:n]

    @property
    def leader(self) -> Standing | None:
        return self.standings[0] if self.standings else None


Totals = Callable[[date, date], Mapping[str, int]]  # tokens per model over start..end


def board(totals: Totals, end: date, days: int = 7) -> Leaderboard:
    """The leaderboard of the `days` calendar days ending `end` (days without data add
    nothing): 1 for a day, 7 for the rolling week."""
    start = window_start(end, days)
    return ranked(totals(start, end), start, end)


def window_start(end: date, days: int) -> date:
    return end - timedelta(days=days - 1)


def ranked(tokens: Mapping[str, int], start: date, end: date) -> Leaderboard:
    """Models ranked by their total tokens in a window (ties by name). Shares are of all tokens,
    `other` included."""
    total = sum(tokens.values()) or 1
    order = sorted((slug for slug in tokens if slug != OTHER), key=lambda s: (-tokens[s], s))
    standings = tuple(Standing(slug, i, tokens[slug], tokens[slug] / total)
                      for i, slug in enumerate(order, start=1))
    return Leaderboard(start, end, standings)


def open_weight_count(board: Leaderboard, top_n: int, is_open: Callable[[str], bool]) -> int:
    return sum(1 for s in board.top(top_n) if is_open(s.permaslug))
