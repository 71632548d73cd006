"""One poll, as one straight line: observe → decide per channel → queue.

Observe: fetch each source, check it, store it and diff it against the last snapshot, giving
news (`bot.alerts.CatalogNews`, `RankingsNews`). Decide: each channel hears the news through its
rules and memory (`bot.alerts.hear`). Queue: one message per channel in the outbox, with its
memory. It all is one unit of work (`bot.ports.PollWork`), so a crash can lose or repeat
nothing. A fault is recorded and logged (with its traceback) and never diffed; the last good
data stays.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from rankbot.bot.alerts import CatalogNews, News, RankingsNews, SunsetNews, Telling, hear
from rankbot.bot.cards import changes_card
from rankbot.bot.catalog import Model, ModelIndex, parse_catalog
from rankbot.bot.changes import Change, change_record
from rankbot.bot.channels import Subscription
from rankbot.bot.diff import catalog_delta, check_shrink
from rankbot.bot.digest import welcome
from rankbot.bot.faults import SourceFault, rejected_fault
from rankbot.bot.feed import keep_changes
from rankbot.bot.leaderboard import board
from rankbot.bot.ports import (
    FaultLog,
    Offload,
    OpenRouterSource,
    PollSnapshots,
    PollWork,
    RawRankings,
    Source,
    inline,
)
from rankbot.bot.rankings import parse_rankings_csv
from rankbot.bot.rules import Rules
from rankbot.bot.sunsets import dates, sunsets, usage_over_week

log = logging.getLogger(__name__)
T = TypeVar("T")
SOURCES: tuple[Source, Source] = ("catalog", "rankings")
CATALOG_ENTRIES = ("catalog entry", "catalog entries")
RANKINGS_ROWS = ("rankings row", "rankings rows")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one poll of one source did. `news` is what it observed, for each channel to hear
    (`bot.alerts.hear`); `changes` what a channel with the given rules and no memory hears;
    `key` names the stored fetch for the outbox (unset, like `news`, when there is no news).
    Every good catalog but the first has news: its retirement dates (`SunsetNews`), whose
    reminders come with time, even when the catalog is unchanged."""

    source: Source
    summary: str
    changes: tuple[Change, ...] = ()
    fault: SourceFault | None = None
    news: tuple[News, ...] = ()
    key: str = ""
    baseline: bool = False  # the first data of this source: stored, nothing to compare


async def poll_catalog(source: OpenRouterSource, work: PollWork, at: datetime, rules: Rules,
                       offload: Offload = inline) -> list[Outcome]:
    return await poll(work, at, rules, catalog=source.fetch_catalog, offload=offload)


async def poll_rankings(source: OpenRouterSource, work: PollWork, at: datetime, rules: Rules,
                        offload: Offload = inline) -> list[Outcome]:
    return await poll(work, at, rules, rankings=source.fetch_rankings, offload=offload)


async def poll_all(source: OpenRouterSource, work: PollWork, at: datetime, rules: Rules,
                   offload: Offload = inline) -> list[Outcome]:
    return await poll(work, at, rules, catalog=source.fetch_catalog,
                      rankings=source.fetch_rankings, offload=offload)


async def poll(work: PollWork, at: datetime, rules: Rules, *,
               catalog: Callable[[], Awaitable[bytes]] | None = None,
               rankings: Callable[[], Awaitable[RawRankings]] | None = None,
               offload: Offload = inline) -> list[Outcome]:
    """Fetch the given sources side by side, then store them and queue one message per channel
    for all of it, in one unit of work (run by `offload`). Whatever goes wrong with one source
    is recorded as its fault and keeps neither it from the log nor the other source from being
    stored."""
    fetched = await asyncio.gather(_fetch("catalog", catalog), _fetch("rankings", rankings))
    payloads = [(source, got) for source, got in zip(SOURCES, fetched, strict=True)
                if got is not None]
    outcomes = await offload(lambda: store_and_tell(work, at, rules, payloads))
    return sorted(outcomes, key=lambda o: o.source)


def store_and_tell(work: PollWork, at: datetime, rules: Rules,
                   payloads: Sequence[tuple[Source, bytes | RawRankings | SourceFault]]
                   ) -> list[Outcome]:
    try:
        with work:
            outcomes = [observe(work, source, got, at, rules) for source, got in payloads]
            tell_channels(work, at, outcomes)
            keep_changes(work, at, outcomes)  # the feeds', with the snapshot that found them
            if any(o.baseline for o in outcomes) and work.snapshots.last_catalog_fetch() \
                    and work.snapshots.latest_ranking_date():  # the second source's first data
                welcome(work, at)
    except Exception as error:  # nothing of this poll is kept; the next one diffs it again
        outcomes = [record_fault(work, source, at, internal_fault(source, error))
                    for source, _ in payloads]
    return outcomes


async def _fetch(source: Source, fetch: Callable[[], Awaitable[T]] | None
                 ) -> T | SourceFault | None:
    if fetch is None:
        return None
    try:
        return await fetch()
    except SourceFault as fault:
        return fault
    except Exception as error:  # a fault in the adapter: a recorded fault, not a crash
        return internal_fault(source, error)


# -- observe ----------------------------------------------------------------------------------

def observe(work: PollWork, source: Source, payload: bytes | RawRankings | SourceFault,
            at: datetime, rules: Rules) -> Outcome:
    """Store one source's payload and diff it, or record why not. Its writes are a savepoint
    of their own, so a failure here undoes only them."""
    try:
        if isinstance(payload, SourceFault):
            raise payload
        with work:
            if isinstance(payload, RawRankings):
                return observe_rankings(work.snapshots, payload, at, rules)
            return observe_catalog(work.snapshots, payload, at, rules)
    except SourceFault as fault:
        return record_fault(work, source, at, fault)
    except Exception as error:
        return record_fault(work, source, at, internal_fault(source, error))


def observe_catalog(snapshots: PollSnapshots, body: bytes, at: datetime, rules: Rules
                    ) -> Outcome:
    sha = hashlib.sha256(body).hexdigest()
    last = snapshots.last_catalog_fetch()
    if last is not None and last.sha256 == sha:  # byte-identical: nothing to parse or diff
        fetch = snapshots.confirm_catalog(at, sha, last.count)
        live = snapshots.live_models()
        sunset = sunset_news(snapshots, live, live, at, last.at)
        changes = tuple(hear(sunset, rules).changes)
        said = f", {len(changes)} changes" if changes else ""
        return Outcome("catalog", f"catalog unchanged ({last.count} models){said}", changes,
                       news=(sunset,), key=f"catalog:{fetch}")
    known, vanished = snapshots.catalog_state()
    catalog = parse_catalog(body, {**vanished, **known})
    check_shrink(len(known), len(catalog.models) + len(catalog.held & known.keys()))
    delta = catalog_delta(known, vanished, catalog.models, catalog.held)
    fetch = snapshots.save_catalog(at, sha, catalog, delta)
    if catalog.rejected:
        record_rejected(snapshots, "catalog", at,
                        rejected_fault(catalog.rejected, CATALOG_ENTRIES))
    count = len(catalog.models)
    if last is None:
        return Outcome("catalog", f"catalog baseline stored ({count} models); no alerts",
                       baseline=True)
    news = CatalogNews(delta)
    live = {**{i: known[i] for i in catalog.held & known.keys()}, **catalog.models}
    sunset = sunset_news(snapshots, known, live, at, last.at)
    changes = tuple(c for told in (news, sunset) for c in hear(told, rules).changes)
    return Outcome("catalog", f"catalog: {count} models, {len(changes)} changes", changes,
                   news=(news, sunset), key=f"catalog:{fetch}")


def sunset_news(snapshots: PollSnapshots, before: Mapping[str, Model],
                live: Mapping[str, Model], at: datetime, since: datetime) -> SunsetNews:
    """The retirement dates of `live` on the day of `at`, with their successors, beside those
    of the previous catalog (`before`, polled at `since`)."""
    usage = usage_over_week(snapshots.token_totals, snapshots.latest_ranking_date)
    return SunsetNews(sunsets(live, at.date(), usage), at.date(),
                      dates(before, since.date()), since.date())


def observe_rankings(snapshots: PollSnapshots, raw: RawRankings, at: datetime, rules: Rules
                     ) -> Outcome:
    sha = hashlib.sha256(raw.body).hexdigest()
    if raw.expected_sha256 is not None and raw.expected_sha256 != sha:
        raise SourceFault("hash_mismatch", "rankings CSV does not match its manifest's "
                          f"sha256 ({sha[:12]}… instead of {raw.expected_sha256[:12]}…)")
    parsed = parse_rankings_csv(raw.body, newest=at.date() + timedelta(days=1))
    last = snapshots.last_rankings_fetch()
    if last is not None and last.sha256 == sha:
        snapshots.confirm_rankings(at, sha, raw.origin, last.count)
        return Outcome("rankings", "rankings unchanged")
    before = snapshots.latest_ranking_date()
    old = board(snapshots.token_totals, before) if before else None
    fetch = snapshots.save_rankings(at, sha, raw.origin, parsed.rows)
    if parsed.rejected:
        record_rejected(snapshots, "rankings", at,
                        rejected_fault(parsed.rejected, RANKINGS_ROWS))
    after = snapshots.latest_ranking_date()
    assert after is not None  # rows is never empty
    if old is None:
        return Outcome("rankings", f"rankings baseline stored (as of {after}); no alerts",
                       baseline=True)
    if before is not None and after <= before:
        return Outcome("rankings", f"rankings revised (still as of {after})")
    new = board(snapshots.token_totals, after)
    news = RankingsNews(old, new, ModelIndex(snapshots.live_models().values()).is_open_weight)
    changes = tuple(hear(news, rules).changes)
    return Outcome("rankings", f"rankings as of {after}: {len(changes)} changes", changes,
                   news=(news,), key=f"rankings:{fetch}")


# -- decide and queue -------------------------------------------------------------------------

def tell_channels(work: PollWork, at: datetime, outcomes: Sequence[Outcome]) -> int:
    """Queue one message per subscribed channel with all that its rules and memory say to tell
    about these snapshots; during its quiet hours the message waits. A channel's memory moves
    only with the message that tells it. Returns how many were queued."""
    told = [o for o in outcomes if o.news]
    if not told:
        return 0
    key = "+".join(o.key for o in told)  # names these fetches: no two polls share it
    queued, as_of = 0, work.snapshots.latest_ranking_date()
    for subscription in work.channels.subscriptions():
        if subscription.unreadable:
            log.warning("%s is skipped: its stored settings cannot be read (%s); `/rankbot "
                        "set` there repairs them", subscription.ref,
                        ", ".join(subscription.unreadable))
        if not subscription.alerts:
            continue
        try:
            with work:  # one channel's failure costs only its own message
                queued += tell_channel(work, subscription, told, key=key, at=at, as_of=as_of)
        except Exception:
            log.exception("could not decide what to tell %s about %s; the other channels are "
                          "told as usual", subscription.ref, key)
    return queued


def tell_channel(work: PollWork, subscription: Subscription, told: Sequence[Outcome], *,
                 key: str, at: datetime, as_of: date | None) -> int:
    tellings = [decide(work, subscription, news) for outcome in told for news in outcome.news]
    changes = [change for telling in tellings for change in telling.changes]
    if changes and not work.outbox.enqueue(
            subscription, key, kind="alert", at=at, card=changes_card(changes, at, as_of),
            changes=[change_record(c) for c in changes],
            not_before=subscription.rules.quiet_until(at)):
        log.error("%s already has a message keyed %s: its %d change(s) are not queued again "
                  "and its memory is left as it was", subscription.ref, key, len(changes))
        return 0
    for telling in tellings:
        work.channels.update_memory(subscription, telling.remember, telling.forget)
    return 1 if changes else 0


def decide(work: PollWork, subscription: Subscription, news: News) -> Telling:
    """What this channel hears of `news`, given what it was told before."""
    return hear(news, subscription.rules, work.channels.memory(subscription, news.memory))


# -- faults -----------------------------------------------------------------------------------

def record_rejected(faults: FaultLog, source: Source, at: datetime, fault: SourceFault) -> None:
    """Entries set aside are a fault of their own (shown by `status`); the rest was used."""
    faults.record_fault(source, at, fault)
    log.warning("%s: %s", source, fault.message)


def internal_fault(source: Source, error: Exception) -> SourceFault:
    """An unexpected error (a bug, a broken database) as a fault: recorded and logged with its
    traceback, never a crash that stops the other source or the next poll."""
    fault = SourceFault("internal", f"{source} could not be processed "
                        f"({type(error).__name__}); the log file has the details")
    fault.__cause__ = error
    return fault


def record_fault(work: PollWork, source: Source, at: datetime, fault: SourceFault) -> Outcome:
    try:
        with work:
            work.snapshots.record_fault(source, at, fault)
    except Exception:  # the database itself failed: the log must still say what happened
        log.exception("could not record the %s fault", source)
    # The traceback goes to the log file; the terminal shows this one line.
    log.warning("%s fault (%s): %s; the last good data stays in use",
                source, fault.kind, fault.message, exc_info=fault)
    return Outcome(source, f"{source} fault: {fault.message}", fault=fault)
