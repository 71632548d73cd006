"""The weekly digest: the last 7 complete UTC days against the 7 before (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from rankbot.bot.alerts import notable_changes
from rankbot.bot.answers import View, move
from rankbot.bot.cards import Card, Field, attribution, describe, fit, token_count, usd
from rankbot.bot.changes import PriceChanged, WentFree, WentPaid
from rankbot.bot.channels import CONSOLE
from rankbot.bot.charts import WeekSeries, week_series
from rankbot.bot.leaderboard import Leaderboard, board, open_weight_count
from rankbot.bot.ports import DigestWork, History
from rankbot.bot.rules import DEFAULT_RULES, Rules
from rankbot.bot.sunsets import NONE_LEAVING, leaving, leaving_lines, usage_over_week

TOP = 10
MOVERS = 3
NOTABLE_PRICES = 10
LEAVING_DAYS = 30


def weekly_digest(history: History, now: datetime, rules: Rules = DEFAULT_RULES) -> Card | None:
    """The digest for the week that ended before `now`'s UTC day; None without rankings."""
    latest = history.latest_ranking_date()
    if latest is None:
        return None
    end = min(now.date() - timedelta(days=1), latest)
    week = board(history.token_totals, end)
    before = board(history.token_totals, end - timedelta(days=7))
    view = View(history, now)
    is_open = view.index.is_open_weight
    fields = (
        Field(f"Top {TOP} by tokens", "\n".join(
            f"{s.rank}. {move(before.rank_of(s.permaslug), s.rank)} {view.label(s.permaslug)}"
            f" — {token_count(s.tokens)} ({s.share:.1%})" for s in week.top(TOP))),
        Field("Open weights", open_weight_line(week, before, is_open)),
        Field("Biggest movers", movers_lines(week, before, view.label)),
        Field("New in the top 50", new_in_top(week, before, view.label)),
        Field("Price changes this week", price_lines(history, end, rules)),
        Field("Cost of the top 5 (USD per 1M tokens, in / out)", cost_table(week, view)),
        Field("Leaving soon", leaving_soon(history, end)),
    )
    lines = headline(week, before, view.label)
    title = (f"OpenRouter weekly: {week.start:%b} {week.start.day} – "
             f"{week.end:%b} {week.end.day}, {week.end.year}")
    return fit(Card(title, lines, fields, attribution(end)))


def welcome(work: DigestWork, now: datetime) -> bool:
    """The first rankings fetched already span 30 days: the console, and only the console
    (chat channels start silent), gets this week's digest at once, so that whoever just ran
    rankbot sees what it does. It counts as that week's digest; True if it was queued."""
    subscription = work.channels.subscription(CONSOLE)
    if subscription is None or not subscription.digests:
        return False
    card = weekly_digest(work.snapshots, now, subscription.rules)
    if card is None:
        return False
    with work:
        return work.outbox.enqueue(
            subscription, digest_key(subscription.rules, subscription.rules.last_digest_time(now)),
            kind="digest", card=card, changes=[], at=now, chart=digest_chart(work.snapshots, now))


def digest_chart(history: History, now: datetime) -> WeekSeries | None:
    """The chart of the digest's week: the top 10's daily ranks (drawn when it is sent)."""
    return week_series(history, now.date() - timedelta(days=1))


def digest_key(rules: Rules, moment: datetime) -> str:
    """One digest per channel and week: the week of its digest moment, in its own zone."""
    return f"digest:{moment.astimezone(rules.zone):%G-W%V}"


def queue_due_digests(work: DigestWork, now: datetime) -> int:
    """Queue this week's digest for every channel whose digest time has passed and who has not
    had it: on time when running, on restart when the process was down at that moment; once per
    channel and week either way (the week is the outbox key)."""
    queued = 0
    composed: dict[tuple[date, Decimal], tuple[Card | None, WeekSeries | None]] = {}
    with work:
        for subscription in work.channels.subscriptions():
            rules = subscription.rules
            moment = rules.last_digest_time(now)
            key = digest_key(rules, moment)
            if (not subscription.digests or moment < subscription.created_at
                    or work.outbox.has_message(subscription, key)):
                continue
            which = (moment.date(), rules.min_price_change_pct)
            if which not in composed:
                composed[which] = (weekly_digest(work.snapshots, moment, rules),
                                   digest_chart(work.snapshots, moment))
            card, chart = composed[which]
            if card is not None and card.title != work.outbox.last_digest_title(subscription):
                queued += work.outbox.enqueue(subscription, key, kind="digest", card=card,
                                              changes=[], at=now,
                                              not_before=rules.quiet_until(now), chart=chart)
    return queued


def headline(week: Leaderboard, before: Leaderboard, label: Callable[[str], str]
             ) -> tuple[str, ...]:
    leader, previous = week.leader, before.leader
    if leader is None:
        return ("No usage data for this week.",)
    if previous is not None and previous.permaslug != leader.permaslug:
        return (f"👑 New #1: {label(leader.permaslug)}, ahead of {label(previous.permaslug)}",)
    return (f"#1 again: {label(leader.permaslug)} with {leader.share:.1%} of all tokens",)


def open_weight_line(week: Leaderboard, before: Leaderboard,
                     is_open: Callable[[str], bool]) -> str:
    counts = [(n, open_weight_count(week, n, is_open), open_weight_count(before, n, is_open))
              for n in (5, 10)]
    now = " and ".join(f"{c} of the top {n}" for n, c, _ in counts)
    then = " and ".join(f"{b} of the top {n}" for n, _, b in counts)
    return f"{now} are open-weight (the week before: {then})"


def movers_lines(week: Leaderboard, before: Leaderboard, label: Callable[[str], str]) -> str:
    moved = [(b - s.rank, s) for s in week.top(50)
             if (b := before.rank_of(s.permaslug)) is not None and b != s.rank]
    climbs = sorted((m for m in moved if m[0] > 0), key=lambda m: -m[0])[:MOVERS]
    falls = sorted((m for m in moved if m[0] < 0), key=lambda m: m[0])[:MOVERS]
    lines = [f"{move(s.rank + d, s.rank)} {label(s.permaslug)} → #{s.rank}"
             for d, s in climbs + falls]
    return "\n".join(lines) or "No model moved"


def new_in_top(week: Leaderboard, before: Leaderboard, label: Callable[[str], str]) -> str:
    lines = [f"#{s.rank} {label(s.permaslug)}" for s in week.top(50)
             if (b := before.rank_of(s.permaslug)) is None or b > 50]
    return "\n".join(lines) or "None"


def price_lines(history: History, end: date, rules: Rules) -> str:
    """Headline price moves between the catalog at the start and at the end of the week."""
    close = datetime.combine(end + timedelta(days=1), time(), UTC)
    old, new = history.catalog_at(close - timedelta(days=7)), history.catalog_at(close)
    changes = [c for model_id, model in sorted(new.items())
               if model_id in old and not model.is_alias
               for c in notable_changes(old[model_id], model, rules)
               if isinstance(c, PriceChanged | WentFree | WentPaid)]
    lines = [describe(c) for c in changes[:NOTABLE_PRICES]]
    if len(changes) > NOTABLE_PRICES:
        lines.append(f"and {len(changes) - NOTABLE_PRICES} more")
    return "\n".join(lines) or "No price changes above the threshold"


def leaving_soon(history: History, end: date) -> str:
    """The models of the week's last catalog retiring within 30 days of its end."""
    close = datetime.combine(end + timedelta(days=1), time(), UTC)
    found = leaving(history.catalog_at(close), end, LEAVING_DAYS,
                    usage_over_week(history.token_totals, lambda: end))
    return "\n".join(leaving_lines(found)) or NONE_LEAVING


def cost_table(week: Leaderboard, view: View) -> str:
    lines = []
    for standing in week.top(5):
        model = view.index.lookup(standing.permaslug)
        if model is None or model.prompt is None or model.completion is None:
            cost = "not in the catalog"
        else:
            cost = f"{usd(model.prompt)} / {usd(model.completion)}"
        name = model.id if model else standing.permaslug
        lines.append(f"{standing.rank}. {name}: {cost}")
    return "\n".join(lines)
