"""An in-memory unit of work: the core's ports served by dicts and lists, for core tests.

It keeps only what the core reads back. `with work:` keeps a copy of everything and puts it
back if the block raises, so a rolled-back poll leaves nothing behind, as SQLite's would.
tests/test_polling.py runs the same scenarios on it and on SQLite: the fake cannot drift.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from types import TracebackType
from typing import Any

from rankbot.bot.admin import AdminWork
from rankbot.bot.cards import Card
from rankbot.bot.catalog import Catalog, Model
from rankbot.bot.channels import ChannelRef, Message, Mode, Subscription, Watch
from rankbot.bot.charts import WeekSeries
from rankbot.bot.diff import CatalogDelta
from rankbot.bot.faults import SourceFault
from rankbot.bot.ports import (
    FaultRecord,
    FeedEntry,
    FetchRecord,
    PollWork,
    RankingsOrigin,
    Source,
)
from rankbot.bot.providers import Provider
from rankbot.bot.rankings import DailyRank
from rankbot.bot.rules import DEFAULT_RULES, Rules
from rankbot.bot.watches import WatchWork


@dataclass
class MemorySnapshots:
    catalogs: list[tuple[FetchRecord, dict[str, Model]]] = field(default_factory=list)
    vanished: dict[str, Model] = field(default_factory=dict)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    rankings: dict[tuple[date, str], tuple[DailyRank, datetime]] = field(default_factory=dict)
    ranking_fetches: list[FetchRecord] = field(default_factory=list)
    faults: list[tuple[Source, FaultRecord]] = field(default_factory=list)

    # -- catalog -----------------------------------------------------------------------------

    def last_catalog_fetch(self) -> FetchRecord | None:
        return self.catalogs[-1][0] if self.catalogs else None

    def live_models(self) -> Mapping[str, Model]:
        return self.catalogs[-1][1] if self.catalogs else {}

    def catalog_state(self) -> tuple[dict[str, Model], dict[str, Model]]:
        return dict(self.live_models()), dict(self.vanished)

    def confirm_catalog(self, at: datetime, sha256: str, count: int) -> int:
        self.catalogs.append((FetchRecord(at, sha256, count), dict(self.live_models())))
        return len(self.catalogs)

    def save_catalog(self, at: datetime, sha256: str, catalog: Catalog,
                     delta: CatalogDelta) -> int:
        live = dict(self.live_models())
        for model in delta.vanished:
            self.vanished[live.pop(model.id).id] = model
        for model in delta.removed:
            self.vanished.pop(model.id)
        for _, model in delta.returned:
            self.vanished.pop(model.id)
        for model in (*delta.added, *(new for _, new in (*delta.changed, *delta.returned))):
            live[model.id] = model
            if self.catalogs:
                self.first_seen.setdefault(model.id, at)
        self.catalogs.append((FetchRecord(at, sha256, len(catalog.models)), live))
        return len(self.catalogs)

    def catalog_at(self, at: datetime) -> Mapping[str, Model]:
        models: Mapping[str, Model] = {}
        for fetch, live in self.catalogs:
            if fetch.at <= at:
                models = live
        return models

    def models_first_seen(self) -> Mapping[str, datetime]:
        return self.first_seen

    def catalog_change_times(self, start: datetime, end: datetime) -> list[datetime]:
        befores = [{}, *(live for _, live in self.catalogs)]
        return [fetch.at for before, (fetch, live) in zip(befores, self.catalogs, strict=False)
                if start < fetch.at <= end and live != before]

    # -- rankings ----------------------------------------------------------------------------

    def last_rankings_fetch(self) -> FetchRecord | None:
        return self.ranking_fetches[-1] if self.ranking_fetches else None

    def latest_ranking_date(self) -> date | None:
        return max((day for day, _ in self.rankings), default=None)

    def ranking_dates(self) -> set[date]:
        return {day for day, _ in self.rankings}

    def token_totals(self, start: date, end: date) -> Mapping[str, int]:
        totals: dict[str, int] = {}
        for (day, slug), (row, _) in self.rankings.items():
            if start <= day <= end:
                totals[slug] = totals.get(slug, 0) + row.tokens
        return totals

    def daily_ranks(self, permaslug: str, start: date, end: date) -> Mapping[date, int | None]:
        return {day: row.rank for (day, slug), (row, _) in self.rankings.items()
                if slug == permaslug and start <= day <= end}

    def provider_listings(self, model_ids: Sequence[str]
                          ) -> Mapping[str, tuple[datetime, tuple[Provider, ...]]]:
        return {}  # providers are polled through SQLite's unit of work only

    def first_ranked(self, top: int = 50) -> Mapping[str, date]:
        first_day = min(self.ranking_dates(), default=None)
        first: dict[str, date] = {}
        for (day, slug), (row, _) in sorted(self.rankings.items()):
            if row.rank is not None and row.rank <= top:
                first.setdefault(slug, day)
        return {slug: day for slug, day in first.items() if day != first_day}

    def confirm_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                         count: int) -> None:
        self.ranking_fetches.append(FetchRecord(at, sha256, count))

    def save_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                      rows: list[DailyRank]) -> int:
        self.ranking_fetches.append(FetchRecord(at, sha256, len(rows)))
        for row in rows:
            kept = self.rankings.get((row.date, row.permaslug))
            if kept is None or kept[1] <= at:  # the newest fetch of a day wins
                self.rankings[(row.date, row.permaslug)] = (row, at)
        return len(self.ranking_fetches)

    def record_fault(self, source: Source, at: datetime, fault: SourceFault) -> None:
        self.faults.append((source, FaultRecord(at, fault.kind, fault.message)))


@dataclass
class MemoryChannels:
    subscriptions_by_id: dict[int, Subscription] = field(default_factory=dict)
    remembered: dict[int, dict[str, str]] = field(default_factory=dict)
    audited: list[tuple[ChannelRef, dict[str, str]]] = field(default_factory=list)
    watched: dict[int, list[Watch]] = field(default_factory=dict)

    def subscription(self, ref: ChannelRef) -> Subscription | None:
        return next((s for s in self.subscriptions_by_id.values() if s.ref == ref), None)

    def subscriptions(self) -> list[Subscription]:
        return [s for s in self.subscriptions_by_id.values() if s.active]

    def channel_subscription(self, platform: str, channel: str) -> Subscription | None:
        return next((s for s in self.subscriptions_by_id.values()
                     if (s.ref.platform, s.ref.channel) == (platform, channel)), None)

    def subscriptions_in(self, platform: str, workspace: str) -> list[Subscription]:
        return [s for s in self.subscriptions()
                if (s.ref.platform, s.ref.workspace) == (platform, workspace)]

    def unsubscribe(self, ref: ChannelRef, at: datetime) -> Subscription | None:
        found = self.subscription(ref)
        if found is None or not found.active:
            return None
        self.subscriptions_by_id[found.id] = replace(found, active=False)
        return found

    def audit(self, ref: ChannelRef, who: str, at: datetime, action: str, *, setting: str = "",
              old: str = "", new: str = "") -> None:
        self.audited.append((ref, {"at": f"{at:%Y-%m-%dT%H:%M:%SZ}", "who": who,
                                   "action": action, "setting": setting, "old": old,
                                   "new": new}))

    def audit_log(self, ref: ChannelRef) -> list[dict[str, str]]:
        return [entry for where, entry in self.audited if where == ref]

    def subscribe(self, ref: ChannelRef, mode: Mode, at: datetime) -> Subscription:
        found = self.subscription(ref)
        subscription = replace(found, mode=mode, active=True, paused=None) if found else (
            Subscription(len(self.subscriptions_by_id) + 1, ref, mode, DEFAULT_RULES, True,
                         None, at))
        self.subscriptions_by_id[subscription.id] = subscription
        return subscription

    def set_rules(self, subscription: Subscription, rules: Rules, *, who: str, at: datetime,
                  setting: str, old: str, new: str) -> None:
        self.subscriptions_by_id[subscription.id] = replace(subscription, rules=rules)
        self.audit(subscription.ref, who, at, "set", setting=setting, old=old, new=new)

    def memory(self, subscription: Subscription, prefix: str) -> dict[str, str]:
        return {key: value for key, value in self.remembered.get(subscription.id, {}).items()
                if key.startswith(prefix)}

    def update_memory(self, subscription: Subscription, remember: Mapping[str, str],
                      forget: Iterable[str]) -> None:
        memory = self.remembered.setdefault(subscription.id, {})
        for key in forget:
            memory.pop(key, None)
        memory.update(remember)

    def pause(self, subscription: Subscription, reason: str, at: datetime) -> None:
        self.subscriptions_by_id[subscription.id] = replace(subscription, paused=reason)

    def watches(self, subscription: Subscription) -> list[Watch]:
        return list(self.watched.get(subscription.id, []))

    def set_watches(self, subscription: Subscription, watches: Sequence[Watch],
                    at: datetime) -> None:
        self.watched[subscription.id] = list(watches)


@dataclass
class MemoryOutbox:
    messages: list[tuple[Message, dict[str, Any]]] = field(default_factory=list)

    def enqueue(self, subscription: Subscription, key: str, *, kind: str, card: Card,
                changes: Iterable[dict[str, Any]], at: datetime,
                not_before: datetime | None = None, chart: WeekSeries | None = None) -> bool:
        if self.has_message(subscription, key):
            return False
        message = Message(len(self.messages) + 1, subscription, key, card, tuple(changes),
                          held=bool(not_before and not_before > at), attempts=0, chart=chart)
        self.messages.append((message, {"kind": kind, "not_before": not_before or at,
                                        "status": "pending"}))
        return True

    def has_message(self, subscription: Subscription, key: str) -> bool:
        return any(m.subscription.id == subscription.id and m.key == key
                   for m, _ in self.messages)

    def last_digest_title(self, subscription: Subscription) -> str | None:
        titles = [m.card.title for m, state in self.messages
                  if m.subscription.id == subscription.id and state["kind"] == "digest"]
        return titles[-1] if titles else None

    def queued(self, subscription: Subscription) -> int:
        return sum(1 for m, state in self.messages
                   if m.subscription.id == subscription.id and state["status"] == "pending")

    def last_delivery(self, subscription: Subscription) -> datetime | None:
        return None  # the fake sends nothing

    def cancel(self, subscription: Subscription, ids: Collection[int] | None = None) -> None:
        for message, state in self.messages:
            if message.subscription.id == subscription.id and state["status"] == "pending" \
                    and (ids is None or message.id in ids):
                state["status"] = "cancelled"

    def pending_changes(self, subscription: Subscription
                        ) -> dict[int, list[dict[str, Any]]]:
        return {m.id: list(m.changes) for m, state in self.messages
                if m.subscription.id == subscription.id and state["status"] == "pending"}

    def to(self, ref: ChannelRef) -> list[Message]:
        return [m for m, _ in self.messages if m.subscription.ref == ref]


@dataclass
class MemoryFeed:
    entries: list[FeedEntry] = field(default_factory=list)

    def save_feed_entries(self, entries: Iterable[FeedEntry]) -> int:
        kept = {(e.fetch, e.kind, e.model, e.detail) for e in self.entries}
        new = [e for e in entries if (e.fetch, e.kind, e.model, e.detail) not in kept]
        self.entries += new
        return len(new)

    def has_feed_entry(self, fetch: str) -> bool:
        return any(e.fetch == fetch for e in self.entries)

    def feed_entries(self, kinds: frozenset[str], limit: int) -> list[FeedEntry]:
        chosen = [e for e in self.entries if not kinds or e.kind in kinds]
        return sorted(chosen, key=lambda e: e.at, reverse=True)[:limit]


class MemoryWork:
    """Implements `PollWork`, `DigestWork` and `AdminWork`; `commits` counts the outermost
    units of work."""

    def __init__(self) -> None:
        self.snapshots = MemorySnapshots()
        self.channels = MemoryChannels()
        self.outbox = MemoryOutbox()
        self.feed = MemoryFeed()
        self.commits = 0
        self._saved: list[list[tuple[Any, str, Any]]] = []

    def __enter__(self) -> MemoryWork:
        repos = (self.snapshots, self.channels, self.outbox, self.feed)
        self._saved.append([(repo, f.name, copy.deepcopy(getattr(repo, f.name)))
                            for repo in repos for f in fields(repo)])
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        saved = self._saved.pop()
        if error is not None:  # put the data back, in the same objects
            for repo, name, value in saved:
                setattr(repo, name, value)
        elif not self._saved:
            self.commits += 1


def conforms(work: MemoryWork) -> tuple[PollWork, AdminWork, WatchWork]:
    """mypy checks the fake against the ports it stands in for (tests/test_lint.py)."""
    return work, work, work
