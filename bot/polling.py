"""One poll: fetch → check → store → diff → one message per channel in the outbox.

This is the service layer: it talks to the world only through the ports in `bot.ports`. The
snapshots of a poll, each channel's one message about them and each channel's memory are written
in one transaction, so a crash can lose or repeat nothing. A fault is recorded and logged (with
its traceback) and never diffed; the last good data stays.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.alerts import Memory, Telling, catalog_alerts, ranking_alerts
from bot.cards import changes_card
from bot.catalog import ModelIndex, parse_catalog
from bot.changes import Change, change_record
from bot.diff import catalog_delta, check_shrink
from bot.faults import SourceFault
from bot.leaderboard import board
from bot.ports import OpenRouterSource, RawRankings, Source, Store
from bot.rankings import parse_rankings_csv
from bot.rules import Rules

log = logging.getLogger(__name__)
Alerts = Callable[[Rules, Memory], Telling]  # a channel's rules and memory → what to tell it


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one poll of one source did. `changes` are what a channel with the given rules and
    no memory would be told; `alerts` computes what each channel is told, and `key` names the
    snapshot for the outbox (both None when there is nothing to tell)."""

    source: Source
    summary: str
    changes: tuple[Change, ...] = ()
    fault: SourceFault | None = None
    alerts: Alerts | None = None
    memory: str = ""  # the prefix of the memory keys `alerts` reads
    key: str = ""


async def poll_catalog(source: OpenRouterSource, store: Store, at: datetime,
                       rules: Rules) -> list[Outcome]:
    return await poll(store, at, rules, catalog=source.fetch_catalog)


async def poll_rankings(source: OpenRouterSource, store: Store, at: datetime,
                        rules: Rules) -> list[Outcome]:
    return await poll(store, at, rules, rankings=source.fetch_rankings)


async def poll_all(source: OpenRouterSource, store: Store, at: datetime,
                   rules: Rules) -> list[Outcome]:
    return await poll(store, at, rules, catalog=source.fetch_catalog,
                      rankings=source.fetch_rankings)


async def poll(store: Store, at: datetime, rules: Rules, *,
               catalog: Callable[[], Awaitable[bytes]] | None = None,
               rankings: Callable[[], Awaitable[RawRankings]] | None = None) -> list[Outcome]:
    """Fetch the given sources, then store them and queue one message per channel for all of
    it, in one transaction."""
    body = raw = None
    faults: list[Outcome] = []
    try:
        body = await catalog() if catalog else None
    except SourceFault as fault:
        faults.append(record_fault(store, "catalog", at, fault))
    try:
        raw = await rankings() if rankings else None
    except SourceFault as fault:
        faults.append(record_fault(store, "rankings", at, fault))
    with store.atomic():
        outcomes = ([ingest_catalog(store, body, at, rules)] if body is not None else [])
        outcomes += [ingest_rankings(store, raw, at, rules)] if raw is not None else []
        tell_channels(store, at, outcomes)
    return sorted(faults + outcomes, key=lambda o: o.source)


def ingest_catalog(store: Store, body: bytes, at: datetime, rules: Rules) -> Outcome:
    sha = hashlib.sha256(body).hexdigest()
    last = store.last_catalog_fetch()
    if last is not None and last.sha256 == sha:  # byte-identical: nothing to parse or diff
        store.confirm_catalog(at, sha, last.count)
        return Outcome("catalog", f"catalog unchanged ({last.count} models)")
    try:
        catalog = parse_catalog(body)
        known, vanished = store.catalog_state()
        check_shrink(len(known), len(catalog.models))
    except SourceFault as fault:
        return record_fault(store, "catalog", at, fault)
    delta = catalog_delta(known, vanished, catalog.models)
    store.save_catalog(at, sha, catalog, delta)
    count = len(catalog.models)
    if last is None:
        return Outcome("catalog", f"catalog baseline stored ({count} models); no alerts")
    changes = tuple(catalog_alerts(delta, rules).changes)
    return Outcome("catalog", f"catalog: {count} models, {len(changes)} changes", changes,
                   alerts=lambda rules, memory: catalog_alerts(delta, rules, memory),
                   memory="price:", key=f"catalog:{sha[:16]}")


def ingest_rankings(store: Store, raw: RawRankings, at: datetime, rules: Rules) -> Outcome:
    sha = hashlib.sha256(raw.body).hexdigest()
    try:
        if raw.expected_sha256 is not None and raw.expected_sha256 != sha:
            raise SourceFault("hash_mismatch", "rankings CSV does not match its manifest's "
                              f"sha256 ({sha[:12]}… instead of {raw.expected_sha256[:12]}…)")
        rows = parse_rankings_csv(raw.body)
    except SourceFault as fault:
        return record_fault(store, "rankings", at, fault)
    last = store.last_rankings_fetch()
    if last is not None and last.sha256 == sha:
        store.confirm_rankings(at, sha, raw.origin, last.count)
        return Outcome("rankings", "rankings unchanged")
    before = store.latest_ranking_date()
    old = board(store.token_totals, before) if before else None
    store.save_rankings(at, sha, raw.origin, rows)
    after = store.latest_ranking_date()
    assert after is not None  # rows is never empty
    if old is None:
        return Outcome("rankings", f"rankings baseline stored (as of {after}); no alerts")
    if before is not None and after <= before:
        return Outcome("rankings", f"rankings revised (still as of {after})")
    new = board(store.token_totals, after)
    is_open = ModelIndex(store.live_models().values()).is_open_weight
    changes = tuple(ranking_alerts(old, new, rules, is_open).changes)
    return Outcome("rankings", f"rankings as of {after}: {len(changes)} changes", changes,
                   alerts=lambda rules, memory: ranking_alerts(old, new, rules, is_open, memory),
                   memory="rank:", key=f"rankings:{after}")


def tell_channels(store: Store, at: datetime, outcomes: Sequence[Outcome]) -> int:
    """Queue one message per subscribed channel with all that its rules and memory say to tell
    about these snapshots; during its quiet hours the message waits. Returns how many."""
    told = [o for o in outcomes if o.alerts is not None]
    if not told:
        return 0
    key = "+".join(o.key for o in told)
    queued, as_of = 0, store.latest_ranking_date()
    for subscription in store.subscriptions():
        if not subscription.alerts:
            continue
        changes: list[Change] = []
        for outcome in told:
            assert outcome.alerts is not None
            telling = outcome.alerts(subscription.rules, store.memory(subscription,
                                                                      outcome.memory))
            store.update_memory(subscription, telling.remember, telling.forget)
            changes += telling.changes
        if changes:
            queued += store.enqueue(
                subscription, key, kind="alert", at=at,
                card=changes_card(changes, at, as_of),
                changes=[change_record(c) for c in changes],
                not_before=subscription.rules.quiet_until(at))
    return queued


def record_fault(store: Store, source: Source, at: datetime, fault: SourceFault) -> Outcome:
    store.record_fault(source, at, fault)
    # The traceback goes to the log file; the terminal shows this one line.
    log.warning("%s fault (%s): %s; the last good data stays in use",
                source, fault.kind, fault.message, exc_info=fault)
    return Outcome(source, f"{source} fault: {fault.message}", fault=fault)
