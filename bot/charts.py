"""What the charts show, as plain data (pure): a model's daily rank and share of tokens, and the
steps of its input and output prices. adapters/charts.py draws them; a series is frozen and
hashable, so it is also the key of the drawn image (the same data is never drawn twice)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from rankbot.bot.answers import UsageError, View, price_groups, ranked_matches
from rankbot.bot.exports import Listed, PriceStep, price_steps
from rankbot.bot.ports import History
from rankbot.bot.rankings import DailyRank

DEFAULT_DAYS = 30
MAX_DAYS = 365
DAYS = re.compile(r"(\d{1,3})d", re.IGNORECASE)
CREDIT = "Source: OpenRouter (openrouter.ai/rankings) · CC BY 4.0"


class ChartHistory(History, Protocol):
    """What the charts read beside the answers' history: one model's whole record (SQLite's
    `Snapshots`)."""

    def ranking_history(self, permaslug: str) -> Sequence[DailyRank]:
        """One model's daily usage, oldest first."""
        ...
    def listed_history(self, model_id: str) -> Sequence[Listed]:
        """Every stored version of one model, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class RankDay:
    day: date
    rank: int | None  # None: outside the top 50 that day, or no data
    share: float | None  # of all tokens that day; None: no row that day


@dataclass(frozen=True, slots=True)
class RankSeries:
    permaslug: str
    label: str
    days: tuple[RankDay, ...]  # every day from the first to the latest ranking date
    footer: str  # how fresh the data is; the image carries CREDIT as well


@dataclass(frozen=True, slots=True)
class PriceSeries:
    model_id: str
    label: str
    prompt: tuple[tuple[datetime, Decimal | None], ...]  # (since, USD per 1M input tokens)
    completion: tuple[tuple[datetime, Decimal | None], ...]  # a None price: unlisted then
    end: datetime  # the steps are drawn up to here: now, or when the model was last listed
    footer: str


def split_days(args: list[str]) -> tuple[list[str], int]:
    """`/rank qwen 90d`: the query's words and the chart's days (30 unless a last `Nd`)."""
    if args and (match := DAYS.fullmatch(args[-1])):
        days = int(match.group(1))
        if not 7 <= days <= MAX_DAYS:
            raise UsageError(f"days must be between 7 and {MAX_DAYS}, e.g. `90d`.")
        return args[:-1], days
    return args, DEFAULT_DAYS


def rank_series(history: ChartHistory, query: str, now: datetime,
                days: int = DEFAULT_DAYS) -> RankSeries:
    """The best match's rank and share on each of the last `days` days of rankings."""
    view = View(history, now)
    latest = view.require_rankings()
    if not query:
        raise UsageError("Which model? Try `rank qwen --chart qwen.png`.")
    slug = ranked_matches(view, query, view.board("week"))[0]
    start = latest - timedelta(days=days - 1)
    rows = {row.date: row for row in history.ranking_history(slug) if start <= row.date}
    if not rows:
        raise UsageError(f"{view.label(slug)} has no rankings in the last {days} days.")
    points = []
    for n in range(days):
        day = start + timedelta(days=n)
        row = rows.get(day)
        points.append(RankDay(day, row.rank if row else None, row.share if row else None))
    return RankSeries(slug, view.label(slug), tuple(points),
                      f"rankings as of {latest.isoformat()}")


def price_series(history: ChartHistory, query: str, now: datetime) -> PriceSeries:
    """The input and output price steps of the best match, from its stored versions."""
    view = View(history, now)
    view.require_catalog()
    model = price_groups(view, query)[0][0]
    steps = price_steps(history.listed_history(model.id))
    prompt = _steps([s for s in steps if s.field == "prompt"])
    completion = _steps([s for s in steps if s.field == "completion"])
    if not prompt and not completion:
        raise UsageError(f"{model.id} has no stored per-token prices (priced per request).")
    ends = [s.until or now for s in steps]
    return PriceSeries(model.id, f"{model.name} ({model.id})", prompt, completion, max(ends),
                       f"USD per 1M tokens · {view.prices_as_of}")


def _steps(steps: list[PriceStep]) -> tuple[tuple[datetime, Decimal | None], ...]:
    """(since, price) points for a step chart; a gap while the model was unlisted: None."""
    points: list[tuple[datetime, Decimal | None]] = []
    for n, step in enumerate(steps):
        points.append((step.since, step.price))
        following = steps[n + 1].since if n + 1 < len(steps) else None
        if step.until is not None and following is not None and following > step.until:
            points.append((step.until, None))
    return tuple(points)
