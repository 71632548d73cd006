"""The feeds' entries (bot/feed.py): written with the poll or digest that found them."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlite_utils import Database

from rankbot.bot.ports import FeedEntry
from rankbot.storage.times import stamp, to_time
from rankbot.storage.transactions import require_work

log = logging.getLogger(__name__)
COLUMNS = "fetch, at, kind, model, detail, title, text, page, credit, data"


class Feed:
    """Writes need a unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def save_feed_entries(self, entries: Sequence[FeedEntry]) -> int:
        """Keep entries not kept yet; how many were new. One identity is one entry: a second
        is left out with a warning, never allowed to undo the poll that found it."""
        require_work(self.db)
        before = self.db.conn.total_changes
        self.db.conn.executemany(
            f"INSERT OR IGNORE INTO feed_entries ({COLUMNS}) VALUES ({', '.join('?' * 10)})",
            [_row(e) for e in entries])
        added = self.db.conn.total_changes - before
        if added < len(entries):
            log.warning("%d of %d feed entries were kept already (%s): left out",
                        len(entries) - added, len(entries), entries[0].fetch)
        return added

    def has_feed_entry(self, fetch: str) -> bool:
        return self.db.execute("SELECT 1 FROM feed_entries WHERE fetch = ? LIMIT 1",
                               [fetch]).fetchone() is not None

    def feed_entries(self, kinds: frozenset[str], limit: int) -> list[FeedEntry]:
        """The newest `limit`, of `kinds` only unless it is empty; one poll's in the order
        they were found."""
        where = f"WHERE kind IN ({', '.join('?' * len(kinds))})" if kinds else ""
        rows = self.db.execute(f"SELECT {COLUMNS} FROM feed_entries {where} "
                               "ORDER BY at DESC, id LIMIT ?", [*sorted(kinds), limit])
        return [_entry(row) for row in rows.fetchall()]


def _row(entry: FeedEntry) -> tuple[Any, ...]:
    return (entry.fetch, stamp(entry.at), entry.kind, entry.model, entry.detail, entry.title,
            entry.text, entry.page, entry.credit,
            json.dumps(entry.data, ensure_ascii=False, separators=(",", ":")))


def _entry(row: tuple[Any, ...]) -> FeedEntry:
    fetch, at, kind, model, detail, title, text, page, credit, data = row
    return FeedEntry(fetch, to_time(at), kind, model, detail, title, text, page, credit,
                     json.loads(data))
