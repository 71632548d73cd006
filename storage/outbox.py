"""The outbox: every message to every channel, queued with what caused it, claimed, sent once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from rankbot.bot.cards import Card, card_from_dict, card_to_dict
from rankbot.bot.channels import Message, Subscription
from rankbot.bot.charts import WeekSeries, series_from_record, series_to_record
from rankbot.storage.channels import SUBSCRIPTION_COLUMNS, subscription_from_row
from rankbot.storage.times import stamp, to_time
from rankbot.storage.transactions import require_work

log = logging.getLogger(__name__)
_UNCLAIMED = "claimed_until = NULL, claimed_by = NULL, claimed_at = NULL"


class Outbox:
    """Writes need a unit of work; a claim is all or none within it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- outbox ------------------------------------------------------------------------------

    def enqueue(self, subscription: Subscription, key: str, *, kind: str, card: Card,
                changes: Iterable[dict[str, Any]], at: datetime,
                not_before: datetime | None = None, chart: WeekSeries | None = None) -> bool:
        """Queue a message once: False if this subscription already has one with this key."""
        require_work(self.db)
        payload = json.dumps({"card": card_to_dict(card), "changes": list(changes),
                              **({"chart": series_to_record(chart)} if chart else {})})
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox (subscription, key, kind, payload, created_at, "
            "not_before, held, status, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0)",
            [subscription.id, key, kind, payload, stamp(at), stamp(not_before or at),
             int(not_before is not None and not_before > at)])
        return cursor.rowcount == 1

    def last_digest_title(self, subscription: Subscription) -> str | None:
        """The title of the newest digest queued for this channel (it names the week)."""
        row = self.db.execute(
            "SELECT json_extract(payload, '$.card.title') FROM outbox WHERE subscription = ? "
            "AND kind = 'digest' ORDER BY id DESC LIMIT 1", [subscription.id]).fetchone()
        return row[0] if row else None

    def has_message(self, subscription: Subscription, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM outbox WHERE subscription = ? AND key = ?",
                               [subscription.id, key]).fetchone() is not None

    def due_messages(self, now: datetime) -> list[Message]:
        """Pending messages whose time has come, for active, unpaused channels, oldest first.
        A message waiting out a retry holds back the newer ones of its channel: order holds."""
        rows = self.db.execute(
            f"SELECT o.id, o.key, o.payload, o.held, o.attempts, o.claimed_at, "
            f"{', '.join('s.' + c.strip() for c in SUBSCRIPTION_COLUMNS.split(','))} "
            "FROM outbox o JOIN subscriptions s ON s.id = o.subscription "
            "WHERE o.status = 'pending' AND o.not_before <= :now AND s.active = 1 "
            "AND s.paused IS NULL AND (o.claimed_until IS NULL OR o.claimed_until <= :now) "
            "AND NOT EXISTS (SELECT 1 FROM outbox w WHERE "
            "w.subscription = o.subscription AND w.status = 'pending' AND w.id < o.id "
            "AND w.not_before > :now AND w.held = 0) ORDER BY o.id",
            {"now": stamp(now)}).fetchall()
        return [_message(row) for row in rows]

    def claim(self, ids: list[int], now: datetime, until: datetime, worker: str) -> bool:
        """Take these messages for sending until `until`, all or none: False if another
        worker holds or has sent any of them. `claimed_at` keeps the first claim whose outcome
        is unknown, so that a send in doubt is looked for from then on."""
        require_work(self.db)  # which holds the write lock: no one claims in between
        free = self.db.execute(
            f"SELECT COUNT(*) FROM outbox WHERE id IN ({', '.join('?' * len(ids))}) AND "
            "status = 'pending' AND (claimed_until IS NULL OR claimed_until <= ?)",
            [*ids, stamp(now)]).fetchone()[0]
        if free != len(ids):
            return False
        self.db.execute(
            "UPDATE outbox SET claimed_until = ?, claimed_by = ?, claimed_at = COALESCE("
            f"claimed_at, ?) WHERE id IN ({', '.join('?' * len(ids))})",
            [stamp(until), worker, stamp(now), *ids])
        return True

    def release_claims(self, gone: Callable[[str], bool]) -> int:
        """Free the claims of workers that `gone` says are dead (killed mid-send): their
        messages are due again at once, in doubt, instead of when the claims run out."""
        holders = [row[0] for row in self.db.execute(
            "SELECT DISTINCT claimed_by FROM outbox WHERE status = 'pending' AND "
            "claimed_until IS NOT NULL AND claimed_by IS NOT NULL").fetchall()]
        dead = [(holder,) for holder in holders if gone(holder)]
        require_work(self.db)
        return sum(self.db.execute(
            "UPDATE outbox SET claimed_until = NULL WHERE claimed_by = ? AND "
            "status = 'pending' AND claimed_until IS NOT NULL", holder).rowcount
            for holder in dead)

    def mark_sent(self, ids: Iterable[int], at: datetime) -> None:
        require_work(self.db)
        self.db.conn.executemany(
            f"UPDATE outbox SET status = 'sent', sent_at = ?, {_UNCLAIMED} WHERE id = ? "
            "AND status = 'pending'", [(stamp(at), i) for i in ids])

    def defer(self, ids: Iterable[int], until: datetime, error: str, attempt: bool,
              in_doubt: bool = False) -> None:
        """Try again at `until`; `in_doubt` when the platform may have taken it (a timeout)."""
        unclaimed = "claimed_until = NULL, claimed_by = NULL" if in_doubt else _UNCLAIMED
        require_work(self.db)
        self.db.conn.executemany(
            "UPDATE outbox SET not_before = ?, last_error = ?, attempts = attempts + ?, "
            f"{unclaimed} WHERE id = ?", [(stamp(until), error, int(attempt), i) for i in ids])

    def dead_letter(self, ids: Iterable[int], error: str) -> None:
        require_work(self.db)
        self.db.conn.executemany(
            f"UPDATE outbox SET status = 'dead', last_error = ?, {_UNCLAIMED} WHERE id = ?",
            [(error, i) for i in ids])

    def cancel(self, subscription: Subscription, ids: Collection[int] | None = None) -> None:
        """A channel that unsubscribed gets nothing more of what was queued for it (`ids`:
        only those messages)."""
        require_work(self.db)
        if ids is None:
            self.db.execute("UPDATE outbox SET status = 'cancelled' WHERE subscription = ? AND "
                            "status = 'pending'", [subscription.id])
            return
        self.db.conn.executemany(
            "UPDATE outbox SET status = 'cancelled' WHERE subscription = ? AND id = ? AND "
            "status = 'pending'", [(subscription.id, i) for i in ids])

    def pending_changes(self, subscription: Subscription) -> dict[int, list[dict[str, Any]]]:
        """Each message still to send to this channel: its id → its change records."""
        rows = self.db.execute("SELECT id, json_extract(payload, '$.changes') FROM outbox "
                               "WHERE subscription = ? AND status = 'pending' ORDER BY id",
                               [subscription.id]).fetchall()
        return {i: json.loads(changes or "[]") for i, changes in rows}

    def outbox_counts(self) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())

    def dead_letters(self, limit: int = 5) -> list[tuple[str, str, str]]:
        """(channel, key, last error) of the newest messages that gave up."""
        rows = self.db.execute(
            "SELECT s.platform || ':' || s.workspace || '/' || s.channel, o.key, o.last_error "
            "FROM outbox o JOIN subscriptions s ON s.id = o.subscription "
            "WHERE o.status = 'dead' ORDER BY o.id DESC LIMIT ?", [limit]).fetchall()
        return [tuple(row) for row in rows]

    def dead_letter_count(self, since: datetime) -> int:
        """Messages that gave up since then. A dead letter's `not_before` is when it was
        last tried: giving up leaves it as the last retry set it."""
        row = self.db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'dead' AND "
                              "not_before >= ?", [stamp(since)]).fetchone()
        return int(row[0])

    def last_delivery(self, subscription: Subscription) -> datetime | None:
        row = self.db.execute("SELECT MAX(sent_at) FROM outbox WHERE subscription = ?",
                              [subscription.id]).fetchone()
        return to_time(row[0]) if row and row[0] else None

    def queued(self, subscription: Subscription) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE subscription = ? AND "
                                   "status = 'pending'", [subscription.id]).fetchone()[0])




def _message(row: tuple[Any, ...]) -> Message:
    message_id, key, payload, held, attempts, claimed_at, *subscription = row
    data = json.loads(payload)
    return Message(message_id, subscription_from_row(tuple(subscription)), key,
                   card_from_dict(data["card"]), tuple(data["changes"]), bool(held), attempts,
                   to_time(claimed_at) if claimed_at else None, _chart(message_id, data))


def _chart(message_id: int, data: dict[str, Any]) -> WeekSeries | None:
    """A message's chart; one that cannot be read is left out, and the message still goes."""
    if "chart" not in data:
        return None
    try:
        return series_from_record(data["chart"])
    except ValueError:
        log.warning("outbox message %d: its chart cannot be read; it goes without one",
                    message_id, exc_info=True)
        return None
