"""Replay the shared real catalog history through the poll path, as `rankbot run` would meet it.

    python bench/replay_history.py [--archive PATH] [--limit N] [--flips]

Each of the 290 snapshots of ../shared/data/openrouter/history/ (2026-06-07 → 2026-08-22, fetched
every 6 hours, changed bytes only) is polled in order into a fresh SQLite file (WAL) with the
console subscribed under the default rules, then delivered. Prints what was told, whether any
poll's changes failed to reach the channel (a key collision, say), the database size and that
size extrapolated to a year, the feeds' entries and how many distinct ids they have (one per
change, however the catalog flips), and the time per poll. `--flips` follows every snapshot with its
predecessor and itself again (A, B, A, B, C, B, C, …), as OpenRouter's catalog does when it flips
between two states for hours: every one of those polls has news, and each must be told.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from rankbot.bot.cards import Card  # noqa: E402
from rankbot.bot.channels import CONSOLE, ChannelRef  # noqa: E402
from rankbot.bot.charts import Series  # noqa: E402
from rankbot.bot.delivery import Courier  # noqa: E402
from rankbot.bot.feed import entry_id  # noqa: E402
from rankbot.bot.history import time_from_name  # noqa: E402
from rankbot.bot.polling import poll  # noqa: E402
from rankbot.bot.rules import DEFAULT_RULES  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402

ARCHIVE = ROOT.parent / "shared" / "data" / "openrouter" / "history" / "modelgraveyard.tar.xz"
YEAR = 365.25 * 86_400


class Counting:
    """A Notifier that counts what reaches the channel."""

    def __init__(self) -> None:
        self.messages = 0
        self.changes = 0
        self.sunsets: dict[str, int] = {}

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str, chart: Series | None = None) -> None:
        self.messages += 1
        self.changes += len(changes)
        for change in changes:
            if change["kind"].startswith("sunset_"):
                self.sunsets[change["kind"]] = self.sunsets.get(change["kind"], 0) + 1

    async def prepare(self, chart: Series) -> None:
        pass

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        return False


class Collisions(logging.Handler):
    """Counts the errors the poll logs when a message's key is taken already."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "already has a message keyed" in record.getMessage()


def snapshots(archive: Path) -> Iterator[tuple[datetime, bytes]]:
    with tarfile.open(archive) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".json")),
                         key=lambda m: m.name)
        for member in members:
            at = time_from_name(Path(member.name).name)
            handle = tar.extractfile(member)
            assert at is not None and handle is not None
            yield at, handle.read()


def flipped(series: list[tuple[datetime, bytes]]) -> Iterator[tuple[datetime, bytes]]:
    """A, B, C → A, B, A, B, C, B, C: each step is undone and redone, a minute apart."""
    for (at, body), (_, earlier) in zip(series, [series[0], *series], strict=False):
        yield at, body
        if earlier is not body:
            yield at + timedelta(minutes=1), earlier
            yield at + timedelta(minutes=2), body


async def replay(archive: Path, limit: int | None, flips: bool, db: Path) -> None:
    collisions = Collisions()
    logging.getLogger("rankbot.bot.polling").addHandler(collisions)
    store = UnitOfWork.open(db)
    with store:
        store.channels.subscribe(CONSOLE, "alerts", datetime(2026, 1, 1, tzinfo=UTC))
    notifier = Counting()
    first = last = None
    polls = lost = told = faults = 0
    timings: list[float] = []
    series = list(snapshots(archive))[:limit]
    for at, body in flipped(series) if flips else series:
        first, last = first or at, at
        courier = Courier(store, {"console": notifier}, lambda at=at: at)

        async def fetch(body: bytes = body) -> bytes:
            return body

        queued = sum(store.outbox.outbox_counts().values())
        start = time.perf_counter()
        outcome, = await poll(store, at, DEFAULT_RULES, catalog=fetch)
        timings.append(time.perf_counter() - start)
        await courier.deliver_due()
        polls += 1
        faults += outcome.fault is not None
        told += len(outcome.changes)
        # A poll with news for this channel must queue its own message, whatever came before.
        lost += bool(outcome.changes) and sum(store.outbox.outbox_counts().values()) == queued
    entries = store.feed.feed_entries(frozenset(), 10**9)
    store.close()
    assert first is not None and last is not None
    size = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
    span = (last - first).total_seconds()
    print(f"{polls} polls of {len(series)} snapshots{' with flips' if flips else ''}, "
          f"{first:%Y-%m-%d} → {last:%Y-%m-%d} ({span / 86_400:.0f} days)")
    print(f"changes found {told}; {notifier.changes} told in {notifier.messages} messages "
          f"(the channel's memory adds up slow drifts); faults: {faults}")
    print(f"retirements told: {notifier.sunsets.get('sunset_announced', 0)} dates announced, "
          f"{notifier.sunsets.get('sunset_soon', 0)} reminders")
    print(f"polls with changes but no message: {lost} (a key collision, or news the channel's "
          f"memory says it already has); key collisions logged: {collisions.count}")
    print(f"database {size / 1e6:.1f} MB, {size / 1e6 * YEAR / span:.0f} MB a year at this rate")
    print(f"feed entries kept {len(entries)}, distinct ids "
          f"{len({entry_id(e) for e in entries})}")
    print(f"poll (store, diff, queue) median {statistics.median(timings) * 1000:.1f} ms, "
          f"p99 {statistics.quantiles(timings, n=100)[98] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N")
    parser.add_argument("--flips", action="store_true", help="undo and redo every step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(replay(args.archive, args.limit, args.flips, Path(folder) / "replay.db"))


if __name__ == "__main__":
    main()
