"""The feeds of changes rendered: Atom with feedgen, JSON Feed 1.1 with the json module (feedgen
writes Atom and RSS only). Every piece of outside text (model names above all) goes in as text,
escaped by the library that writes it, never as markup."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from rankbot.bot.feed import TAG, content, entry_id, link
from rankbot.bot.ports import FeedEntry

TITLE = "rankbot: what changed on OpenRouter"
ABOUT = ("Each change rankbot found in OpenRouter's catalog and usage rankings (under the "
         "default rules), and the weekly digest, newest first.")
CREDIT = "Rankings data: OpenRouter (openrouter.ai/rankings), CC BY 4.0"
HOME = "https://openrouter.ai/models"
JSON_FEED = "https://jsonfeed.org/version/1.1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # an empty feed's `updated`: stable, so is its ETag
# What XML 1.0 cannot hold at all (control characters, lone surrogates): lxml refuses the whole
# document over one, so a name carrying an escape sequence would take the feed down.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def text(value: str) -> str:
    return NOT_XML.sub("", value)


def atom(entries: Sequence[FeedEntry], url: str, kinds: frozenset[str]) -> bytes:
    """An Atom feed of `entries` (newest first), served at `url`."""
    feed = FeedGenerator()
    feed.id(feed_id(kinds))
    feed.title(title(kinds))
    feed.subtitle(ABOUT)
    feed.author(name="rankbot")
    feed.link(href=url, rel="self", type="application/atom+xml")
    feed.link(href=HOME, rel="alternate")
    feed.rights(CREDIT)
    feed.updated(entries[0].at if entries else EPOCH)
    for entry in entries:
        item = feed.add_entry(order="append")
        item.id(entry_id(entry))
        item.title(text(entry.title))
        item.updated(entry.at)
        item.published(entry.at)
        item.link(href=link(entry), rel="alternate")
        item.content(text(content(entry)), type="text")
        item.category(term=entry.kind)
        if entry.credit:
            item.rights(text(entry.credit))
    xml: bytes = feed.atom_str(pretty=False)
    return xml


def json_feed(entries: Sequence[FeedEntry], url: str, kinds: frozenset[str]) -> bytes:
    """A JSON Feed 1.1 of `entries` (newest first), served at `url`. Each item also carries
    the change as `rankbot poll --json` prints it, under `_rankbot` (the spec's extensions)."""
    document = {
        "version": JSON_FEED, "title": title(kinds), "home_page_url": HOME, "feed_url": url,
        "description": f"{ABOUT} {CREDIT}.", "authors": [{"name": "rankbot"}],
        "language": "en", "items": [_item(e) for e in entries],
    }
    return _json(document)


def _item(entry: FeedEntry) -> dict[str, Any]:
    return {
        "id": entry_id(entry), "url": link(entry), "title": text(entry.title),
        "content_text": text(content(entry)), "date_published": entry.at.isoformat(),
        "tags": [entry.kind],
        "_rankbot": {"kind": entry.kind, "model": text(entry.model) or None,
                     "credit": entry.credit, "change": entry.data or None},
    }


def _json(document: dict[str, Any]) -> bytes:
    """JSON whose strings cannot be read as markup even by a client that sniffs it for HTML:
    `<`, `>` and `&` occur only inside strings, where their \\u escapes mean the same."""
    raw = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    escaped = raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text(escaped).encode()


def feed_id(kinds: frozenset[str]) -> str:
    return TAG + "feed" + (f"?kinds={','.join(sorted(kinds))}" if kinds else "")


def title(kinds: frozenset[str]) -> str:
    return f"{TITLE} ({', '.join(sorted(kinds))})" if kinds else TITLE

