"""The feeds of changes (`/feed.atom`, `/feed.json`): what goes in, what identifies each entry,
where it links, and which kinds a reader may ask for (pure; adapters/feeds.py renders them).

An entry is each change a poll found under the default rules (its `Outcome.changes`), kept in
the poll's own transaction, and each week's digest, once a week. Its id is built from what
identifies it (the fetch it came from, when, its kind, model and detail), never from its text,
so a feed reader shows it once however often the feed is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Protocol, get_args
from urllib.parse import quote

from rankbot.bot.cards import Card, attribution, describe
from rankbot.bot.catalog import ModelIndex
from rankbot.bot.changes import (
    RANKING_KINDS,
    Change,
    CheapestProviderChanged,
    PriceChanged,
    change_record,
)
from rankbot.bot.digest import weekly_digest
from rankbot.bot.ports import FeedEntry, FeedWork
from rankbot.bot.rules import DEFAULT_RULES

SIZE = 100  # entries in a feed
DIGEST = "weekly_digest"
KINDS = frozenset(c.kind for c in get_args(Change)) | {DIGEST}
SITE = "https://openrouter.ai/"
RANKINGS_PAGE = SITE + "rankings"
TAG = "tag:rankbot,2026:"  # RFC 4151: ids that are URIs, as Atom wants, and unique to rankbot


class Told(Protocol):
    """What `keep_changes` reads of a poll's outcome (`bot.polling.Outcome`)."""

    @property
    def changes(self) -> tuple[Change, ...]: ...
    @property
    def key(self) -> str: ...


def keep_changes(work: FeedWork, at: datetime, outcomes: Iterable[Told]) -> int:
    """Keep every change these outcomes found, with the snapshots that found them; how many."""
    told = [o for o in outcomes if o.changes and o.key]
    if not told:
        return 0
    ranked = any(c.kind in RANKING_KINDS for o in told for c in o.changes)
    as_of = work.snapshots.latest_ranking_date() if ranked else None
    index = ModelIndex(work.snapshots.live_models().values()) if ranked else None
    with work:
        return work.feed.save_feed_entries([change_entry(o.key, at, c, as_of, index)
                                            for o in told for c in o.changes])


def change_entry(fetch: str, at: datetime, change: Change, as_of: date | None,
                 index: ModelIndex | None) -> FeedEntry:
    ranked = change.kind in RANKING_KINDS
    return FeedEntry(
        fetch, at, change.kind, change.model or "",
        change.field if isinstance(change, PriceChanged) else _provider_detail(change),
        describe(change),
        page=_page(change.model, index if ranked else None),
        credit=attribution(as_of) if ranked and as_of else None, data=change_record(change))


def _page(model: str | None, index: ModelIndex | None) -> str | None:
    """The catalog id whose page shows `model`: rankings name permaslugs, which the catalog
    maps to ids (`stealth/…` and unknown ones keep their own name)."""
    if model is None or index is None:
        return model
    found = index.lookup(model)
    return found.id if found else model


def keep_digest(work: FeedWork, now: datetime) -> bool:
    """This week's digest as the feed's one entry for the week, at the default digest moment
    (Monday 09:00 UTC), composed under the default rules; True if it was new."""
    moment = DEFAULT_RULES.last_digest_time(now)
    week = f"digest:{moment:%G-W%V}"
    if work.feed.has_feed_entry(week) or work.snapshots.last_catalog_fetch() is None:
        return False  # had it; or no catalog yet, whose prices and names it shows
    card = weekly_digest(work.snapshots, moment, DEFAULT_RULES)
    if card is None:  # no rankings yet
        return False
    with work:
        return bool(work.feed.save_feed_entries([digest_entry(week, moment, card)]))


def digest_entry(week: str, at: datetime, card: Card) -> FeedEntry:
    return FeedEntry(week, at, DIGEST, "", "", card.title, card_text(card), credit=card.footer)


def card_text(card: Card) -> str:
    """A card's lines and fields as plain text; the footer (the credit) is the entry's own."""
    parts = list(card.lines)
    for field in card.fields:
        parts += ["", field.name, *field.value.splitlines()]
    return "\n".join(parts).strip("\n")


def entry_id(entry: FeedEntry) -> str:
    """`tag:rankbot,2026:catalog:12/20261007T140000Z/price_changed/openai%2Fgpt-4o/prompt`:
    each part escaped, so that no two entries share an id however their models are named.
    The time keeps ids apart in a database started afresh, whose fetches count from 1 again."""
    parts = (entry.fetch, f"{entry.at:%Y%m%dT%H%M%SZ}", entry.kind, entry.model, entry.detail)
    return TAG + "/".join(quote(part, safe=":@") for part in parts)


def link(entry: FeedEntry) -> str:
    """The model's page on openrouter.ai; the rankings for what names no model."""
    return SITE + quote(entry.page, safe="/:~@") if entry.page else RANKINGS_PAGE


def content(entry: FeedEntry) -> str:
    """An entry's text: what the title does not say, then the credit where it shows rankings."""
    return "\n\n".join(part for part in (entry.text or entry.title, entry.credit) if part)


def parse_kinds(values: Sequence[str]) -> frozenset[str]:
    """`?kinds=price_changed,went_free` (repeatable) as a set; empty: every kind. An unknown
    kind raises ValueError, said in a line: a typo in a subscribed URL would otherwise be an
    empty feed that never says why."""
    kinds = frozenset(k.strip() for v in values for k in v.split(",") if k.strip())
    if unknown := sorted(kinds - KINDS):
        shown = ", ".join(unknown[:5]) + (", …" if len(unknown) > 5 else "")
        raise ValueError(f"unknown kind {shown[:200]}; known: {', '.join(sorted(KINDS))}")
    return kinds


def _provider_detail(change: Change) -> str:
    """Tells apart one model's provider changes of one kind in one fetch: the provider (and
    for the cheapest, which price)."""
    if isinstance(change, CheapestProviderChanged):
        return change.field
    provider = getattr(change, "provider", "")
    return provider if isinstance(provider, str) else ""
