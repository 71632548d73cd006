"""`/rankbot preview`: what a channel would have been sent over the last days, replayed from
stored history under its current rules, before anyone commits to a noisy rule (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Protocol

from rankbot.bot.alerts import CatalogNews, RankingsNews, Telling, hear
from rankbot.bot.cards import Card, Field, describe
from rankbot.bot.catalog import Model, ModelIndex
from rankbot.bot.changes import Change
from rankbot.bot.diff import catalog_delta
from rankbot.bot.leaderboard import board
from rankbot.bot.ports import History
from rankbot.bot.rules import Rules


class PreviewHistory(History, Protocol):
    def catalog_change_times(self, start: datetime, end: datetime) -> list[datetime]: ...
    def ranking_dates(self) -> set[date]: ...


def preview(history: PreviewHistory, rules: Rules, now: datetime, days: int) -> Card:
    memory: dict[str, str] = {}
    start = now - timedelta(days=days)
    messages = [*_catalog_messages(history, rules, start, now, memory),
                *_ranking_messages(history, rules, start.date(), memory)]
    messages.sort(key=lambda m: m[0])
    total = sum(len(changes) for _, changes in messages)
    summary = (f"Over the last {days} days this channel would have got {len(messages)} "
               f"message(s) with {total} change(s).")
    fields = tuple(Field(when, "\n".join(describe(c) for c in changes))
                   for when, changes in messages)
    return Card(f"Preview: the last {days} days under these rules", (summary,), fields)


def _catalog_messages(history: PreviewHistory, rules: Rules, start: datetime, end: datetime,
                      memory: dict[str, str]) -> list[tuple[str, list[Change]]]:
    known: dict[str, Model] = dict(history.catalog_at(start))
    vanished: dict[str, Model] = {}
    messages = []
    for at in history.catalog_change_times(start, end):
        current = history.catalog_at(at)
        if not known:  # history starts inside the window: its first snapshot is the baseline
            known = dict(current)
            continue
        delta = catalog_delta(known, vanished, current)
        telling = hear(CatalogNews(delta), rules, memory)
        _remember(memory, telling)
        if telling.changes:
            messages.append((f"{at:%Y-%m-%d %H:%M} UTC", telling.changes))
        known, vanished = dict(current), {m.id: m for m in delta.vanished}
    return messages


def _ranking_messages(history: PreviewHistory, rules: Rules, start: date,
                      memory: dict[str, str]) -> list[tuple[str, list[Change]]]:
    is_open = ModelIndex(history.live_models().values()).is_open_weight
    days = sorted(history.ranking_dates())
    messages = []
    for before, day in pairwise(days):
        if day <= start:
            continue
        news = RankingsNews(board(history.token_totals, before),
                            board(history.token_totals, day), is_open)
        telling = hear(news, rules, memory)
        _remember(memory, telling)
        if telling.changes:
            messages.append((f"{day} rankings", telling.changes))
    return messages


def _remember(memory: dict[str, str], telling: Telling) -> None:
    for key in telling.forget:
        memory.pop(key, None)
    memory.update(telling.remember)
