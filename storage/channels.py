"""Channels: subscriptions and their rules, what each was told (memory), the audit log, and
the chat connections' state."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from rankbot.bot.channels import ChannelRef, Mode, Subscription, Watch
from rankbot.bot.connections import ConnectionState
from rankbot.bot.rules import DEFAULT_RULES, Rules, rules_from_record, rules_to_record
from rankbot.storage.times import stamp, to_time
from rankbot.storage.transactions import require_work

SUBSCRIPTION_COLUMNS = "id, platform, workspace, channel, mode, active, paused, rules, created_at"


class Channels:
    """Every lookup takes the full channel reference. Writes need a unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- subscriptions -----------------------------------------------------------------------

    def subscription(self, ref: ChannelRef) -> Subscription | None:
        row = self.db.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions "
            "WHERE platform = ? AND workspace = ? AND channel = ?",
            [ref.platform, ref.workspace, ref.channel]).fetchone()
        return subscription_from_row(row) if row else None

    def channel_subscription(self, platform: str, channel: str) -> Subscription | None:
        """The subscription of a channel whose id is unique across its platform (Slack's):
        a channel shared by two organisations has one, whichever of them made it."""
        row = self.db.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE platform = ? AND "
            "channel = ? ORDER BY id LIMIT 1", [platform, channel]).fetchone()
        return subscription_from_row(row) if row else None

    def subscriptions(self) -> list[Subscription]:
        """Every active subscription, oldest first."""
        rows = self.db.execute(f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions "
                               "WHERE active = 1 ORDER BY id").fetchall()
        return [subscription_from_row(row) for row in rows]

    def subscribe(self, ref: ChannelRef, mode: Mode, at: datetime) -> Subscription:
        """Subscribe, or change the mode of, a channel; resubscribing lifts a pause."""
        require_work(self.db)
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

    def unsubscribe(self, ref: ChannelRef, at: datetime) -> Subscription | None:
        """Stop a channel's messages (its rules are kept): the subscription stopped, if any
        was active."""
        require_work(self.db)
        subscription = self.subscription(ref)
        if subscription is None or not subscription.active:
            return None
        self.db.execute("UPDATE subscriptions SET active = 0, updated_at = ? WHERE id = ?",
                        [stamp(at), subscription.id])
        return subscription

    def set_rules(self, subscription: Subscription, rules: Rules, *, who: str, at: datetime,
                  setting: str, old: str, new: str) -> None:
        """Change a channel's rules and record who changed what."""
        require_work(self.db)
        self.db.execute("UPDATE subscriptions SET rules = ?, updated_at = ? WHERE id = ?",
                        [json.dumps(rules_to_record(rules)), stamp(at), subscription.id])
        self.audit(subscription.ref, who, at, "set", setting=setting, old=old, new=new)

    def audit(self, ref: ChannelRef, who: str, at: datetime, action: str, *, setting: str = "",
              old: str = "", new: str = "") -> None:
        require_work(self.db)
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
        require_work(self.db)
        self.db.execute("UPDATE subscriptions SET paused = ?, updated_at = ? WHERE id = ?",
                        [reason, stamp(at), subscription.id])

    def subscriptions_in(self, platform: str, workspace: str) -> list[Subscription]:
        """The active subscriptions of one workspace (Slack team, Discord guild)."""
        rows = self.db.execute(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE platform = ? AND "
            "workspace = ? AND active = 1 ORDER BY id", [platform, workspace])
        return [subscription_from_row(row) for row in rows.fetchall()]

    # -- a person's watches -------------------------------------------------------------------

    def watches(self, subscription: Subscription) -> list[Watch]:
        """What a person watches, oldest first."""
        rows = self.db.execute("SELECT model, slug FROM watches WHERE subscription = ? "
                               "ORDER BY added_at, rowid", [subscription.id]).fetchall()
        return [Watch(model, slug) for model, slug in rows]

    def set_watches(self, subscription: Subscription, watches: Sequence[Watch],
                    at: datetime) -> None:
        """Replace a person's watches; those kept keep when they were added."""
        require_work(self.db)
        kept = {w.model for w in watches}
        self.db.conn.executemany("DELETE FROM watches WHERE subscription = ? AND model = ?",
                                 [(subscription.id, w.model) for w in
                                  self.watches(subscription) if w.model not in kept])
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO watches (subscription, model, slug, added_at) "
            "VALUES (?, ?, ?, ?)", [(subscription.id, w.model, w.slug, stamp(at))
                                    for w in watches])

    # -- memory ------------------------------------------------------------------------------

    def memory(self, subscription: Subscription, prefix: str) -> dict[str, str]:
        rows = self.db.execute("SELECT key, value FROM memory WHERE subscription = ? AND "
                               "key LIKE ? ESCAPE '\\'", [subscription.id, f"{prefix}%"])
        return dict(rows.fetchall())

    def update_memory(self, subscription: Subscription, remember: Mapping[str, str],
                      forget: Iterable[str]) -> None:
        require_work(self.db)
        self.db.conn.executemany("DELETE FROM memory WHERE subscription = ? AND key = ?",
                                 [(subscription.id, key) for key in forget])
        self.db.conn.executemany(
            "INSERT INTO memory (subscription, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (subscription, key) DO UPDATE SET value = excluded.value",
            [(subscription.id, key, value) for key, value in remember.items()])

    # -- chat connections --------------------------------------------------------------------

    def save_connection(self, state: ConnectionState) -> None:
        require_work(self.db)
        self.db.table("chat_connections").upsert({
            "platform": state.platform, "state": state.state, "since": stamp(state.since),
            "reconnects": json.dumps([stamp(t) for t in state.reconnects]),
            "last_error": state.last_error,
            "last_error_at": stamp(state.last_error_at) if state.last_error_at else None,
        }, pk="platform")

    def connections(self) -> list[ConnectionState]:
        rows = self.db.execute("SELECT platform, state, since, reconnects, last_error, "
                               "last_error_at FROM chat_connections ORDER BY platform")
        return [ConnectionState(platform, state, to_time(since),
                                tuple(to_time(t) for t in json.loads(reconnects)), error,
                                to_time(error_at) if error_at else None)
                for platform, state, since, reconnects, error, error_at in rows.fetchall()]


def subscription_from_row(row: tuple[Any, ...]) -> Subscription:
    sub_id, platform, workspace, channel, mode, active, paused, stored, created = row
    try:
        rules, unreadable = rules_from_record(json.loads(stored))
    except ValueError:  # not JSON at all
        rules, unreadable = rules_from_record(stored)
    return Subscription(sub_id, ChannelRef(platform, workspace, channel), mode, rules,
                        bool(active), paused, to_time(created), unreadable)
