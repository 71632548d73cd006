"""Subscriptions, their memory, the outbox and the audit log: the delivery side of the database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from rankbot.bot.cards import Card, card_from_dict, card_to_dict
from rankbot.bot.channels import ChannelRef, Message, Mode, Subscription
from rankbot.bot.rules import DEFAULT_RULES, Rules, rules_from_record, rules_to_record
from rankbot.storage.times import stamp, to_time

SUBSCRIPTION_COLUMNS = "id, platform, workspace, channel, mode, active, paused, rules, created_at"


class Channels:
    """Mixed into `Repository`; every lookup takes the full channel reference."""

    db: Database
    atomic: Callable[[], AbstractContextManager[object]]  # Repository's: BEGIN IMMEDIATE

    # -- subscriptions -----------------------------------------------------------------------

    def subscription(self, ref: ChannelRef) -> Subscription | None:
        row = self.db.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions "
            "WHERE platform = ? AND workspace = ? AND channel = ?",
            [ref.platform, ref.workspace, ref.channel]).fetchone()
        return _subscription(row) if row else None

    def channel_subscription(self, platform: str, channel: str) -> Subscription | None:
        """The subscription of a channel whose id is unique across its platform (Slack's):
        a channel shared by two organisations has one, whichever of them made it."""
        row = self.db.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE platform = ? AND "
            "channel = ? ORDER BY id LIMIT 1", [platform, channel]).fetchone()
        return _subscription(row) if row else None

    def subscriptions(self) -> list[Subscription]:
        """Every active subscription, oldest first."""
        rows = self.db.execute(f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions "
                               "WHERE active = 1 ORDER BY id").fetchall()
        return [_subscription(row) for row in rows]

    def subscribe(self, ref: ChannelRef, mode: Mode, at: datetime) -> Subscription:
        """Subscribe, or change the mode of, a channel; resubscribing lifts a pause."""
        self.db.execute(
            "INSERT INTO subscriptions (platform, workspace, channel, mode, active, rules, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?) "
            "ON CONFLICT (platform, workspace, channel) DO UPDATE SET mode = excluded.mode, "
            "active = 1, paused = NULL, updated_at = excluded.updated_at",
            [ref.platform, ref.workspace, ref.channel, mode,
             json.dumps(rules_to_record(DEFAULT_RULES)), stamp(at), stamp(at)])
        subscription = self.subscription(ref)
        assert subscription is not None
        return subscription

    def unsubscribe(self, ref: ChannelRef, at: datetime) -> bool:
        """Stop a channel's messages (its rules are kept); its queue is cancelled."""
        subscription = self.subscription(ref)
        if subscription is None or not subscription.active:
            return False
        with self.atomic():
            self.db.execute("UPDATE subscriptions SET active = 0, updated_at = ? WHERE id = ?",
                            [stamp(at), subscription.id])
            self.db.execute("UPDATE outbox SET status = 'cancelled' WHERE subscription = ? "
                            "AND status = 'pending'", [subscription.id])
        return True

    def set_rules(self, subscription: Subscription, rules: Rules, *, who: str, at: datetime,
                  setting: str, old: str, new: str) -> None:
        """Change a channel's rules and record who changed what, in one transaction."""
        with self.atomic():
            self.db.execute("UPDATE subscriptions SET rules = ?, updated_at = ? WHERE id = ?",
                            [json.dumps(rules_to_record(rules)), stamp(at), subscription.id])
            self.audit(subscription.ref, who, at, "set", setting=setting, old=old, new=new)

    def audit(self, ref: ChannelRef, who: str, at: datetime, action: str, *, setting: str = "",
              old: str = "", new: str = "") -> None:
        self.db.table("audit").insert({
            "at": stamp(at), "platform": ref.platform, "workspace": ref.workspace,
            "channel": ref.channel, "who": who, "action": action, "setting": setting,
            "old": old, "new": new})

    def audit_log(self, ref: ChannelRef) -> list[dict[str, Any]]:
        return list(self.db.query(
            "SELECT at, who, action, setting, old, new FROM audit WHERE platform = ? AND "
            "workspace = ? AND channel = ? ORDER BY id", [ref.platform, ref.workspace,
                                                          ref.channel]))

    def pause(self, subscription: Subscription, reason: str, at: datetime) -> None:
        self.db.execute("UPDATE subscriptions SET paused = ?, updated_at = ? WHERE id = ?",
                        [reason, stamp(at), subscription.id])

    def subscriptions_in(self, platform: str, workspace: str) -> list[Subscription]:
        """The active subscriptions of one workspace (Slack team, Discord guild)."""
        rows = self.db.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE platform = ? AND "
            "workspace = ? AND active = 1 ORDER BY id", [platform, workspace])
        return [_subscription(row) for row in rows.fetchall()]

    # -- memory ------------------------------------------------------------------------------

    def memory(self, subscription: Subscription, prefix: str) -> dict[str, str]:
        rows = self.db.execute("SELECT key, value FROM memory WHERE subscription = ? AND "
                               "key LIKE ? ESCAPE '\\'", [subscription.id, f"{prefix}%"])
        return dict(rows.fetchall())

    def update_memory(self, subscription: Subscription, remember: Mapping[str, str],
                      forget: Iterable[str]) -> None:
        with self.atomic():
            self.db.conn.executemany("DELETE FROM memory WHERE subscription = ? AND key = ?",
                                     [(subscription.id, key) for key in forget])
            self.db.conn.executemany(
                "INSERT INTO memory (subscription, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (subscription, key) DO UPDATE SET value = excluded.value",
                [(subscription.id, key, value) for key, value in remember.items()])

    # -- outbox ------------------------------------------------------------------------------

    def enqueue(self, subscription: Subscription, key: str, *, kind: str, card: Card,
                changes: Iterable[dict[str, Any]], at: datetime,
                not_before: datetime | None = None) -> bool:
        """Queue a message once: False if this subscription already has one with this key."""
        payload = json.dumps({"card": card_to_dict(card), "changes": list(changes)})
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
        try:
            with self.atomic():
                claimed = self.db.execute(
                    "UPDATE outbox SET claimed_until = ?, claimed_by = ?, "
                    "claimed_at = COALESCE(claimed_at, ?) WHERE id IN "
                    f"({', '.join('?' * len(ids))}) AND status = 'pending' AND "
                    "(claimed_until IS NULL OR claimed_until <= ?) RETURNING id",
                    [stamp(until), worker, stamp(now), *ids, stamp(now)]).fetchall()
                if len(claimed) != len(ids):
                    raise _Taken
        except _Taken:
            return False
        return True

    def release_claims(self, gone: Callable[[str], bool]) -> int:
        """Free the claims of workers that `gone` says are dead (killed mid-send): their
        messages are due again at once, in doubt, instead of when the claims run out."""
        holders = [row[0] for row in self.db.execute(
            "SELECT DISTINCT claimed_by FROM outbox WHERE status = 'pending' AND "
            "claimed_until IS NOT NULL AND claimed_by IS NOT NULL").fetchall()]
        dead = [(holder,) for holder in holders if gone(holder)]
        with self.atomic():
            released = sum(self.db.execute(
                "UPDATE outbox SET claimed_until = NULL WHERE claimed_by = ? AND "
                "status = 'pending' AND claimed_until IS NOT NULL", holder).rowcount
                for holder in dead)
        return released

    def mark_sent(self, ids: Iterable[int], at: datetime) -> None:
        with self.atomic():
            self.db.conn.executemany(
                f"UPDATE outbox SET status = 'sent', sent_at = ?, {_UNCLAIMED} WHERE id = ? "
                "AND status = 'pending'",
                [(stamp(at), i) for i in ids])

    def defer(self, ids: Iterable[int], until: datetime, error: str, attempt: bool,
              in_doubt: bool = False) -> None:
        """Try again at `until`; `in_doubt` when the platform may have taken it (a timeout)."""
        unclaimed = "claimed_until = NULL, claimed_by = NULL" if in_doubt else _UNCLAIMED
        with self.atomic():
            self.db.conn.executemany(
                "UPDATE outbox SET not_before = ?, last_error = ?, attempts = attempts + ?, "
                f"{unclaimed} WHERE id = ?",
                [(stamp(until), error, int(attempt), i) for i in ids])

    def dead_letter(self, ids: Iterable[int], error: str) -> None:
        with self.atomic():
            self.db.conn.executemany(
                f"UPDATE outbox SET status = 'dead', last_error = ?, {_UNCLAIMED} WHERE id = ?",
                [(error, i) for i in ids])

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


_UNCLAIMED = "claimed_until = NULL, claimed_by = NULL, claimed_at = NULL"


class _Taken(Exception):
    """Some of the messages were already claimed: undo the claim of the rest."""


def _subscription(row: tuple[Any, ...]) -> Subscription:
    sub_id, platform, workspace, channel, mode, active, paused, stored, created = row
    try:
        rules, unreadable = rules_from_record(json.loads(stored))
    except ValueError:  # not JSON at all
        rules, unreadable = rules_from_record(stored)
    return Subscription(sub_id, ChannelRef(platform, workspace, channel), mode, rules,
                        bool(active), paused, to_time(created), unreadable)


def _message(row: tuple[Any, ...]) -> Message:
    message_id, key, payload, held, attempts, claimed_at, *subscription = row
    data = json.loads(payload)
    return Message(message_id, _subscription(tuple(subscription)), key,
                   card_from_dict(data["card"]), tuple(data["changes"]), bool(held), attempts,
                   to_time(claimed_at) if claimed_at else None)
