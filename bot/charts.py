"""What the charts show, as plain data (pure): a model's daily rank and share of tokens, the
steps of its input and output prices, and the weekly digest's top 10 day by day. adapters/charts.py
draws them; a series is frozen and hashable, so it is also the key of the drawn image (the same
data is never drawn twice)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from rankbot.bot.answers import UsageError, View, price_groups, ranked_matches
from rankbot.bot.exports import Listed, PriceStep, price_steps
from rankbot.bot.leaderboard import board
from rankbot.bot.ports import History
from rankbot.bot.rankings import MAX_RANK, DailyRank

DEFAULT_DAYS = 30
MAX_DAYS = 365
DAYS = re.compile(r"(\d{1,3})d", re.IGNORECASE)
CREDIT = "Source: OpenRouter (openrouter.ai/rankings) · CC BY 4.0"
WEEK = 7
TOP = 10  # the digest's top 10 (bot/digest.py, which may come to import this module)
RANKED = 50  # the export ranks the top 50; below that a day has no rank
MAX_TEXT = 500  # a label or footer read back longer than this is a broken record
T = TypeVar("T")


@runtime_checkable
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


@dataclass(frozen=True, slots=True)
class WeekLine:
    """One model of the week's top 10. `before`: its rank the week before, None if unranked."""

    permaslug: str
    label: str  # as the digest names it
    ranks: tuple[int | None, ...]  # one a day; None: outside the top 50, or no data that day
    rank: int
    before: int | None

    def __post_init__(self) -> None:
        if not 0 < len(self.permaslug) <= MAX_TEXT or len(self.label) > MAX_TEXT:
            raise ValueError("a week line's slug or label has a broken length")
        if len(self.ranks) != WEEK or not all(r is None or 0 < r <= RANKED for r in self.ranks):
            raise ValueError(f"a week line has {WEEK} daily ranks, each 1–{RANKED} or none")
        if not 0 < self.rank <= TOP or not (self.before is None or 0 < self.before <= MAX_RANK):
            raise ValueError(f"a week line is ranked 1–{TOP}, and was 1–{MAX_RANK} or unranked")


@dataclass(frozen=True, slots=True)
class WeekSeries:
    """The weekly digest's top 10, best first, ranked on each day of the week ending `as_of`.
    Checked on construction: it is stored with the queued digest and read back."""

    as_of: date
    days: tuple[date, ...]
    lines: tuple[WeekLine, ...]
    footer: str

    def __post_init__(self) -> None:
        if self.days != week_days(self.as_of):
            raise ValueError(f"a week is the {WEEK} days ending as_of")
        if [line.rank for line in self.lines] != list(range(1, len(self.lines) + 1)):
            raise ValueError(f"a week chart's lines are its top {TOP}, best first")
        if not 0 < len(self.lines) <= TOP or len(self.footer) > MAX_TEXT:
            raise ValueError(f"a week chart has 1–{TOP} lines and a short footer")


Series = RankSeries | PriceSeries | WeekSeries


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


# -- the weekly digest's chart ----------------------------------------------------------------

def week_series(history: History, as_of: date) -> WeekSeries | None:
    """The top 10 of the week ending `as_of` (or the latest rankings, if earlier), as the digest
    ranks them: its board and the one of the week before. Pass the digest's last day, the one
    before its UTC day. None without rankings for that week."""
    latest = history.latest_ranking_date()
    if latest is None:
        return None
    end = min(as_of, latest)
    week = board(history.token_totals, end)
    before = board(history.token_totals, end - timedelta(days=WEEK))
    if not week.standings:
        return None
    view = View(history, datetime.combine(end, time(), UTC))  # only its labels are read
    days = week_days(end)
    lines = []
    for standing in week.top(TOP):
        stored = history.daily_ranks(standing.permaslug, days[0], end)
        ranks = tuple(_ranked(stored.get(day)) for day in days)
        label = view.label(standing.permaslug)
        if len(label) > MAX_TEXT:  # a catalog name may be long; the chart shows 28 characters
            label = label[:MAX_TEXT - 1] + "…"
        lines.append(WeekLine(standing.permaslug, label, ranks, standing.rank,
                              before.rank_of(standing.permaslug)))
    return WeekSeries(end, days, tuple(lines), f"rankings as of {latest.isoformat()}")


def week_days(as_of: date) -> tuple[date, ...]:
    return tuple(as_of - timedelta(days=WEEK - 1 - n) for n in range(WEEK))


def _ranked(rank: int | None) -> int | None:
    return rank if rank is not None and rank <= RANKED else None


def series_to_record(series: WeekSeries) -> dict[str, object]:
    """The series as JSON types, stored with the queued digest (`days` follow from `as_of`)."""
    return {"chart": "week", "as_of": series.as_of.isoformat(), "footer": series.footer,
            "lines": [{"permaslug": line.permaslug, "label": line.label, "ranks": list(line.ranks),
                       "rank": line.rank, "before": line.before} for line in series.lines]}


def series_from_record(record: object) -> WeekSeries:
    """The series back from a stored record; ValueError for anything malformed (a bad row must
    fail its chart, not the sender)."""
    fields = _record(record, {"chart", "as_of", "footer", "lines"})
    if fields["chart"] != "week":
        raise ValueError("not a week chart record")
    as_of = _typed(fields["as_of"], str)
    day = date.fromisoformat(as_of)
    if day.isoformat() != as_of or day < date.min + timedelta(days=WEEK):  # or 20261007
        raise ValueError(f"as_of is not a YYYY-MM-DD date of a week: {as_of[:20]!r}")
    lines = _typed(fields["lines"], list)
    if len(lines) > TOP:
        raise ValueError(f"a week chart has at most {TOP} lines, not {len(lines)}")
    return WeekSeries(day, week_days(day), tuple(_line(line) for line in lines),
                      _typed(fields["footer"], str))


def _line(record: object) -> WeekLine:
    fields = _record(record, {"permaslug", "label", "ranks", "rank", "before"})
    ranks = _typed(fields["ranks"], list)
    if len(ranks) != WEEK:
        raise ValueError(f"a week line has {WEEK} daily ranks, not {len(ranks)}")
    return WeekLine(_typed(fields["permaslug"], str), _typed(fields["label"], str),
                    tuple(_optional_int(r) for r in ranks), _typed(fields["rank"], int),
                    _optional_int(fields["before"]))


def _record(record: object, keys: set[str]) -> dict[str, object]:
    if not isinstance(record, dict) or set(record) != keys:
        raise ValueError(f"a chart record is an object of exactly {sorted(keys)}")
    return record


def _typed(value: object, kind: type[T]) -> T:
    # Strict: JSON's true is no rank, and a number no text.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _typed(value, int)
