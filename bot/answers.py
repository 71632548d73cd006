"""Answers to the slash commands, from local data only (pure: reads through `History`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property

from rankbot.bot.cards import (
    UNITS,
    Card,
    Field,
    attribution,
    per,
    percent,
    price_label,
    price_pair,
    sparkline,
    split_tier,
    tier_words,
    token_count,
    tokens,
    usd,
)
from rankbot.bot.catalog import Model, ModelIndex
from rankbot.bot.diff import pct_change
from rankbot.bot.leaderboard import Leaderboard, Standing, board, window_start
from rankbot.bot.matching import Found, NameIndex, catalog_index, search
from rankbot.bot.ports import History
from rankbot.bot.rankings import OTHER

SPARK_DAYS = 30
MAX_QUERY = 100
SHOWN = 3  # models shown in full when a query matches several
STALE_AFTER = timedelta(days=1)


class UsageError(Exception):
    """Input we cannot answer; the message is the short, helpful reply."""


class View:
    """What one answer sees of the local data, each part loaded at most once."""

    def __init__(self, history: History, now: datetime) -> None:
        self.history, self.now = history, now
        self._boards: dict[tuple[str, int], Leaderboard] = {}

    @cached_property
    def latest(self) -> date | None:
        return self.history.latest_ranking_date()

    @cached_property
    def ranked_lately(self) -> list[str]:
        """Every model ranked in the last 30 days, `other` aside."""
        assert self.latest is not None
        start = window_start(self.latest, SPARK_DAYS)
        return [s for s in self.history.token_totals(start, self.latest) if s != OTHER]

    @cached_property
    def models(self) -> Mapping[str, Model]:
        return self.history.live_models()

    @cached_property
    def index(self) -> ModelIndex:
        return ModelIndex(self.models.values())

    def board(self, period: str, back: int = 0) -> Leaderboard:
        """This `day` or `week` (7 days) ending at the latest data, or `back` periods earlier."""
        if (period, back) not in self._boards:
            assert self.latest is not None
            days = 1 if period == "day" else 7
            end = self.latest - timedelta(days=days * back)
            self._boards[period, back] = board(self.history.token_totals, end, days)
        return self._boards[period, back]

    def label(self, permaslug: str) -> str:
        model = self.index.lookup(permaslug)
        return f"{model.name} ({permaslug})" if model else permaslug

    def require_rankings(self) -> date:
        if self.latest is None:
            raise UsageError(NO_RANKINGS)
        return self.latest

    def require_catalog(self) -> None:
        if not self.models:
            raise UsageError(NO_CATALOG)

    @property
    def prices_as_of(self) -> str:
        fetch = self.history.last_catalog_fetch()
        if fetch is None:
            return "no prices yet"
        age = self.now - fetch.at
        stale = f" (stale: {age.days} days old)" if age > STALE_AFTER else ""
        return f"prices as of {fetch.at:%Y-%m-%d %H:%M} UTC{stale}"

    def rankings_footer(self) -> str:
        assert self.latest is not None
        return f"{attribution(self.latest)} · {self.prices_as_of}"


HOW_TO_FETCH = "run `rankbot poll` once (or keep `rankbot run` going), then ask again."
NO_CATALOG = f"No catalog yet: {HOW_TO_FETCH}"
NO_RANKINGS = f"No rankings yet: {HOW_TO_FETCH}"


# -- /rank and /top ------------------------------------------------------------------------------

def rank(view: View, query: str) -> Card:
    view.require_rankings()
    if not query:
        return top(view, 10, "week")
    week, before, today = view.board("week"), view.board("week", back=1), view.board("day")
    slugs = ranked_matches(view, query, week)
    fields = [Field(_rank_title(view, s, week), _rank_detail(view, s, week, before, today))
              for s in slugs[:SHOWN]]
    fields += more_matches(slugs[SHOWN:])
    return Card(f"Rank: {shown(query)}", (), tuple(fields), view.rankings_footer())


def suggest(history: History, text: str, now: datetime, limit: int) -> list[tuple[str, str]]:
    """Autocomplete: (label, permaslug) of the best matches for what is typed so far, most
    used first; nothing typed yet: this week's leaders. Never raises: no match, no choices."""
    view = View(history, now)
    if view.latest is None:
        return []
    week = view.board("week")
    if not text.strip():
        slugs = [s.permaslug for s in week.top(limit)]
    else:
        try:
            slugs = ranked_matches(view, text[:MAX_QUERY], week)
        except UsageError:
            return []
    return [(view.label(slug), slug) for slug in slugs[:limit]]


def ranked_matches(view: View, query: str, week: Leaderboard) -> list[str]:
    """Permaslugs matching the query, best 7-day rank first, unranked last."""
    catalog = catalog_index(view.models)
    unlisted = NameIndex({slug: [slug, slug.split("/", 1)[0]] for slug in view.ranked_lately
                          if view.index.lookup(slug) is None})
    found = _found(search(query, catalog, unlisted), query)
    slugs = {view.models[key].permaslug if key in view.models else key for key in found}
    return sorted(slugs, key=lambda s: (week.rank_of(s) or 10**6, s))


def _rank_title(view: View, slug: str, week: Leaderboard) -> str:
    position = week.rank_of(slug)
    return f"{'#' + str(position) if position else 'Unranked'} · {view.label(slug)}"


def _rank_detail(view: View, slug: str, week: Leaderboard, before: Leaderboard,
                 today: Leaderboard) -> str:
    standing = next((s for s in week.standings if s.permaslug == slug), None)
    lines = []
    if standing is None:
        lines.append("Not in the top 50 on any day of the last 7")
    else:
        day = today.rank_of(slug)
        lines.append(f"7 days #{standing.rank} {move(before.rank_of(slug), standing.rank)} · "
                     f"today {'#' + str(day) if day else 'unranked'}")
        lines.append(f"{token_count(standing.tokens)} tokens this week · "
                     f"{standing.share:.1%} of all")
    lines.append(f"{SPARK_DAYS} days `{sparkline(daily_ranks(view, slug))}`")
    model = view.index.lookup(slug)
    if model is None:
        lines.append("Not in the catalog (stealth, or no longer listed)")
    else:
        kind = "Open weights" if model.open_weight else "Proprietary"
        lines.append(f"{kind} · {price_pair(model.prompt, model.completion)} · "
                     f"{tokens(model.context_length)}")
        if model.benchmarks:
            lines.append(quality(model))
    return "\n".join(lines)


def quality(model: Model) -> str:
    """The Artificial Analysis indices a catalog entry carries, in one line."""
    scores = " · ".join(f"{name.removesuffix('_index')} {value}"
                        for name, value in model.benchmarks)
    return f"Quality (Artificial Analysis): {scores}"


def daily_ranks(view: View, slug: str) -> list[int | None]:
    assert view.latest is not None
    start = window_start(view.latest, SPARK_DAYS)
    ranks = view.history.daily_ranks(slug, start, view.latest)
    return [ranks.get(start + timedelta(days=n)) for n in range(SPARK_DAYS)]


def more_matches(keys: list[str], listed: int = 10) -> list[Field]:
    if not keys:
        return []
    names = ", ".join(keys[:listed]) + ("…" if len(keys) > listed else "")
    return [Field(f"and {len(keys)} more", names)]


def move(before: int | None, now: int) -> str:
    """▲3, ▼1, = or NEW against the previous period's rank."""
    if before is None:
        return "NEW"
    if before == now:
        return "="
    return f"▲{before - now}" if now < before else f"▼{now - before}"


def top(view: View, n: int, period: str) -> Card:
    view.require_rankings()
    board, before = view.board(period), view.board(period, back=1)
    lines = tuple(_standing_line(view, s, before) for s in board.top(n))
    return Card(f"Top {n} {_period_name(period, board)}", lines, (), view.rankings_footer())


def _standing_line(view: View, standing: Standing, before: Leaderboard) -> str:
    marker = (f"{move(before.rank_of(standing.permaslug), standing.rank)} "
              if before.standings else "")  # no data for the period before: nothing to compare
    return (f"{standing.rank}. {marker}{view.label(standing.permaslug)} — "
            f"{token_count(standing.tokens)} tokens ({standing.share:.1%})")


def _period_name(period: str, board: Leaderboard) -> str:
    if period == "day":
        return f"on {board.end}"
    return f"for the 7 days {board.start} – {board.end}"


# -- /movers -------------------------------------------------------------------------------------

MOVERS = 5


def movers(view: View, period: str) -> Card:
    view.require_rankings()
    board, before = view.board(period), view.board(period, back=1)
    moved = [(before.rank_of(s.permaslug), s) for s in board.top(50)]
    climbs = sorted(((b - s.rank, s) for b, s in moved if b and b > s.rank),
                    key=lambda m: (-m[0], m[1].rank))
    falls = sorted(((s.rank - b, s) for b, s in moved if b and b < s.rank),
                   key=lambda m: (-m[0], m[1].rank))
    old_share = {s.permaslug: s.share for s in before.standings}
    gains = sorted(((s.share - old_share.get(s.permaslug, 0.0), s) for s in board.top(50)),
                   key=lambda g: -g[0])
    fields = (
        Field("Climbing", _lines(f"▲{d} {view.label(s.permaslug)} → #{s.rank}"
                                 for d, s in climbs[:MOVERS])),
        Field("Falling", _lines(f"▼{d} {view.label(s.permaslug)} → #{s.rank}"
                                for d, s in falls[:MOVERS])),
        Field("Gaining share", _lines(f"+{g * 100:.1f} pts {view.label(s.permaslug)} "
                                      f"({s.share:.1%})" for g, s in gains[:MOVERS] if g > 0)),
    )
    title = f"Movers {_period_name(period, board)} vs the {period} before"
    return Card(title, (), fields, view.rankings_footer())


def _lines(lines: Iterable[str]) -> str:
    return "\n".join(lines) or "none"


# -- /new ----------------------------------------------------------------------------------------

def new(view: View, days: int) -> Card:
    since = view.now - timedelta(days=days)
    added = sorted(((at, model_id) for model_id, at in view.history.models_first_seen().items()
                    if at >= since and model_id in view.models
                    and not view.models[model_id].is_alias), reverse=True)
    catalog = [f"{at:%Y-%m-%d} {view.models[i].name} ({i}): "
               f"{price_pair(view.models[i].prompt, view.models[i].completion)}"
               for at, i in added]
    ranked: list[str] = []
    if view.latest is not None:
        start = view.latest - timedelta(days=days - 1)
        ranked = [f"{day} {view.label(slug)}"
                  for slug, day in sorted(view.history.first_ranked().items(),
                                          key=lambda item: (item[1], item[0]), reverse=True)
                  if day >= start]
    fields = (Field("Added to the catalog", _lines(catalog)),
              Field("New in the top 50", _lines(ranked)))
    footer = view.rankings_footer() if view.latest else view.prices_as_of
    return Card(f"New in the last {days} days", (), fields, footer)


# -- /price --------------------------------------------------------------------------------------

GROUPS = 5


def price(view: View, query: str, versus: str | None) -> Card:
    view.require_catalog()
    groups = price_groups(view, query)
    lines = (compare(groups[0][0], price_groups(view, versus)[0][0]),) if versus else ()
    then = {n: view.history.catalog_at(view.now - timedelta(days=n)) for n in (7, 30)}
    fields = [Field(f"{group[0].name} ({group[0].id})",
                    "\n".join(_price_lines(model, then) for model in group))
              for group in groups[:GROUPS]]
    fields += more_matches([g[0].id for g in groups[GROUPS:]])
    title = f"Price: {shown(query)}" + (f" vs {shown(versus)}" if versus else "")
    return Card(title, lines, tuple(fields), f"USD per 1M tokens, or per search, image or "
                f"request where said · {view.prices_as_of}")


def price_groups(view: View, query: str) -> list[list[Model]]:
    """Matching models grouped with their variants (`:free`, `:batch`), most used first."""
    found = _found(search(query, catalog_index(view.models)), query)
    bases = {model_id.split(":", 1)[0] for model_id in found}
    groups: dict[str, list[Model]] = {}
    for model_id in sorted(view.models):  # every variant of a match comes along
        if model_id.split(":", 1)[0] in bases:
            groups.setdefault(model_id.split(":", 1)[0], []).append(view.models[model_id])
    week = view.board("week") if view.latest else None

    def popularity(group: list[Model]) -> tuple[int, str]:
        ranks = [week.rank_of(m.permaslug) for m in group] if week else []
        return min((r for r in ranks if r), default=10**6), group[0].id

    return sorted(groups.values(), key=popularity)


def _price_lines(model: Model, then: Mapping[int, Mapping[str, Model]]) -> str:
    if model.dynamic_price:
        return f"{model.id}: price set per request (a router)"
    head = f"{model.id}: {price_pair(model.prompt, model.completion)}"
    since = " · ".join(f"{n} days: {_price_since(model, old.get(model.id))}"
                       for n, old in then.items())
    scores = [quality(model)] if model.benchmarks else []
    return "\n".join([head, *(f"  {line}" for line in [*price_details(model), *scores, since])])


def price_details(model: Model) -> list[str]:
    """Every price the model publishes beside input and output, a line for each kind: cache,
    other prices per 1M tokens, each long-context or time-of-day tier, prices per unit."""
    cache: list[str] = []
    other: list[str] = []
    tiers: dict[str, list[str]] = {}
    units: list[str] = []
    for field, price in model.prices:
        base, tier = split_tier(field)
        unit = f" {per(base)}" if base in UNITS else ""
        if tier:
            tiers.setdefault(f"{tier_words(tier)}: ", []).append(
                f"{price_label(base)} {usd(price)}{unit}")
        elif unit:
            units.append(f"{usd(price)}{unit}")
        elif base not in ("prompt", "completion"):
            (cache if base.startswith("input_cache") else other).append(
                f"{price_label(base)} {usd(price)}")
    rows = [("", cache), ("", other), *tiers.items(), ("", units)]
    return [name + " · ".join(items) for name, items in rows if items]


def _price_since(model: Model, old: Model | None) -> str:
    if old is None:
        return "not listed then"
    moves = [f"{label} {_pct(before, after)}" for label, before, after in (
        ("input", old.prompt, model.prompt), ("output", old.completion, model.completion))
        if before != after]
    moves += [f"{price_label(field)} {_pct(before, price)}" for field, price in model.prices
              if field not in ("prompt", "completion") and not split_tier(field)[1]
              and (before := old.price(field)) is not None and before != price]
    return ", ".join(moves) or "unchanged"


def _pct(before: Decimal | None, after: Decimal | None) -> str:
    if before is None or after is None:
        return "n/a"
    return percent(pct_change(before, after))


def compare(a: Model, b: Model) -> str:
    """The price ratio in plain words, input and output."""
    return (f"{a.id} vs {b.id}: input {_ratio(a.prompt, b.prompt)}, "
            f"output {_ratio(a.completion, b.completion)}")


def _ratio(a: Decimal | None, b: Decimal | None) -> str:
    if a is None or b is None:
        return "not comparable (price set per request)"
    if a == b:
        return "costs the same"
    if a == 0:
        return "is free"
    if b == 0:
        return "costs money where the other is free"
    return f"is {b / a:.1f}x cheaper" if a < b else f"is {a / b:.1f}x dearer"


# -- shared --------------------------------------------------------------------------------------

def _found(found: Found, query: str) -> tuple[str, ...]:
    if found.keys:
        return found.keys
    hint = (f" Did you mean {' or '.join(f'`{s}`' for s in found.suggestions)}?"
            if found.suggestions else "")
    echo = shown(query)
    raise UsageError(f"No model matches {f'`{echo}`' if echo else 'that'}.{hint}")


def shown(text: str, limit: int = 40) -> str:
    """User text safe to echo in any chat: no markup, mentions or links, and short."""
    safe = "".join(c for c in text if c.isalnum() or c in " -_./:~+")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"
