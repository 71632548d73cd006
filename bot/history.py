"""Loading history: saved files (`rankbot import`) and the keyed API (`rankbot backfill`)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from rankbot.bot.polling import Outcome, observe
from rankbot.bot.ports import DailyRankings, KeyedRankingsSource, PollWork, RawRankings, Work
from rankbot.bot.rankings import parse_keyed_rankings
from rankbot.bot.rules import Rules

STAMP = re.compile(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}):?(\d{2}):?(\d{2})Z?)?")
MAX_DAYS_PER_CALL = 366  # the keyed endpoint's limit


class RankingsWork(Work, Protocol):
    @property
    def snapshots(self) -> DailyRankings: ...


class ImportRejected(Exception):
    """A file that cannot be imported as given; the message says why and what to do."""


def time_from_name(name: str) -> datetime | None:
    """`2026-07-20T194813Z.json` → 2026-07-20 19:48:13 UTC; a bare date means midnight UTC."""
    match = STAMP.search(name)
    if not match:
        return None
    day, hh, mm, ss = match.groups()
    return datetime.fromisoformat(f"{day}T{hh or '00'}:{mm or '00'}:{ss or '00'}").replace(
        tzinfo=UTC)


def import_snapshot(work: PollWork, name: str, body: bytes, at: datetime, rules: Rules
                    ) -> Outcome:
    """Store one saved payload as the snapshot fetched at `at`: a catalog (`.json`) or a
    rankings export (`.csv`). Catalogs must come in time order; rankings may come in any."""
    if name.endswith(".csv"):
        return observe(work, "rankings", RawRankings(body, None, "import"), at, rules)
    last = work.snapshots.last_catalog_fetch()
    if last is not None and at < last.at:
        raise ImportRejected(f"{name} ({at:%Y-%m-%d %H:%M} UTC) is older than the newest stored "
                             f"catalog ({last.at:%Y-%m-%d %H:%M} UTC); import older catalogs "
                             "into a new database, oldest first")
    return observe(work, "catalog", body, at, rules)


async def backfill(source: KeyedRankingsSource, work: RankingsWork, days: int, today: date,
                   at: datetime) -> int:
    """Fill days missing from the last `days` complete UTC days; returns how many were added.
    Days the export already gave us are kept: they carry OpenRouter's own ranks and shares."""
    have = work.snapshots.ranking_dates()
    end = today - timedelta(days=1)  # today is live and incomplete
    added = 0
    for start, stop in _chunks(end - timedelta(days=days - 1), end):
        body = await source.fetch_keyed_rankings(start, stop)
        rows = [r for r in parse_keyed_rankings(body) if r.date not in have]
        if rows:
            with work:
                work.snapshots.save_rankings(at, hashlib.sha256(body).hexdigest(), "keyed", rows)
            added += len({r.date for r in rows})
    return added


def _chunks(first: date, last: date) -> list[tuple[date, date]]:
    spans = []
    while first <= last:
        stop = min(last, first + timedelta(days=MAX_DAYS_PER_CALL - 1))
        spans.append((first, stop))
        first = stop + timedelta(days=1)
    return spans
