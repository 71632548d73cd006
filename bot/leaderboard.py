"""Leaderboards: models ranked by tokens over a window of days (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from bot.rankings import OTHER, DailyRank


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


def leaderboard(rows: Iterable[DailyRank], end: date, days: int = 7) -> Leaderboard:
    """Sum each model's tokens over the `days` calendar days ending `end`; days with no data
    add nothing. Shares are of all tokens in the window, `other` included."""
    start = end - timedelta(days=days - 1)
    tokens: Counter[str] = Counter()
    for row in rows:
        if start <= row.date <= end:
            tokens[row.permaslug] += row.tokens
    total = sum(tokens.values()) or 1
    ranked = sorted((slug for slug in tokens if slug != OTHER), key=lambda s: (-tokens[s], s))
    standings = tuple(Standing(slug, i, tokens[slug], tokens[slug] / total)
                      for i, slug in enumerate(ranked, start=1))
    return Leaderboard(start, end, standings)


def daily_leaderboard(rows: Iterable[DailyRank], day: date) -> Leaderboard:
    return leaderboard(rows, day, days=1)


def open_weight_count(board: Leaderboard, top_n: int, is_open: Callable[[str], bool]) -> int:
    return sum(1 for s in board.top(top_n) if is_open(s.permaslug))
