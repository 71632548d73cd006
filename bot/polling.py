"""One poll of a source: fetch → check → store → diff, and the delivery of what changed.

This is the service layer: it talks to the world only through the ports in `bot.ports`.
A fault is recorded and logged (with its traceback) and never diffed; the last good data stays.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.cards import changes_card
from bot.catalog import ModelIndex, parse_catalog
from bot.changes import Change
from bot.diff import catalog_changes, catalog_delta, check_shrink, ranking_changes
from bot.faults import SourceFault
from bot.leaderboard import board
from bot.ports import Notifier, OpenRouterSource, RawRankings, Source, Store
from bot.rankings import parse_rankings_csv
from bot.rules import Rules

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one poll of one source did. `summary` is a short line for the operator's log."""

    source: Source
    summary: str
    changes: tuple[Change, ...] = ()
    fault: SourceFault | None = None


async def poll_catalog(source: OpenRouterSource, store: Store, at: datetime,
                       rules: Rules) -> Outcome:
    try:
        body = await source.fetch_catalog()
    except SourceFault as fault:
        return record_fault(store, "catalog", at, fault)
    return ingest_catalog(store, body, at, rules)


async def poll_rankings(source: OpenRouterSource, store: Store, at: datetime,
                        rules: Rules) -> Outcome:
    try:
        raw = await source.fetch_rankings()
    except SourceFault as fault:
        return record_fault(store, "rankings", at, fault)
    return ingest_rankings(store, raw, at, rules)


async def poll_all(source: OpenRouterSource, store: Store, at: datetime,
                   rules: Rules) -> list[Outcome]:
    return [await poll_catalog(source, store, at, rules),
            await poll_rankings(source, store, at, rules)]


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
    changes = tuple(catalog_changes(delta, rules))
    return Outcome("catalog", f"catalog: {count} models, {len(changes)} changes", changes)


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
    old_board = board(store.token_totals, before) if before else None
    store.save_rankings(at, sha, raw.origin, rows)
    after = store.latest_ranking_date()
    assert after is not None  # rows is never empty
    if old_board is None:
        return Outcome("rankings", f"rankings baseline stored (as of {after}); no alerts")
    if before is not None and after <= before:
        return Outcome("rankings", f"rankings revised (still as of {after})")
    index = ModelIndex(store.live_models().values())
    changes = ranking_changes(old_board, board(store.token_totals, after), rules,
                              index.is_open_weight)
    return Outcome("rankings", f"rankings as of {after}: {len(changes)} changes", tuple(changes))


def record_fault(store: Store, source: Source, at: datetime, fault: SourceFault) -> Outcome:
    store.record_fault(source, at, fault)
    # The traceback goes to the log file; the terminal shows this one line.
    log.warning("%s fault (%s): %s; the last good data stays in use",
                source, fault.kind, fault.message, exc_info=fault)
    return Outcome(source, f"{source} fault: {fault.message}", fault=fault)


async def deliver(notifier: Notifier, store: Store, outcomes: Sequence[Outcome],
                  at: datetime) -> None:
    """All changes of one poll go out as one message; a poll with none sends nothing."""
    changes = [c for outcome in outcomes for c in outcome.changes]
    if changes:
        await notifier.send(changes_card(changes, at, store.latest_ranking_date()))
