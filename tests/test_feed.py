"""The feeds of changes: what a poll keeps (in its own transaction), the weekly digest once a
week, and both feeds read back as a reader would (Atom with ElementTree and feedparser, JSON Feed
with json): ids, links, the CC BY 4.0 credit, the kinds filter, and hostile names as text."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest

from rankbot.adapters.feeds import atom, json_feed
from rankbot.bot.catalog import ModelIndex
from rankbot.bot.changes import RANKING_KINDS
from rankbot.bot.feed import DIGEST, KINDS, SIZE, keep_digest, parse_kinds
from rankbot.bot.polling import Outcome, poll
from rankbot.bot.ports import FeedEntry, RawRankings
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import catalog_bytes, load, rankings_csv

pytestmark = pytest.mark.anyio
HOSTILE = '<script>alert(1)</script> & "x"'
ATOM = "{http://www.w3.org/2005/Atom}"
FIRST, SECOND = datetime(2026, 10, 2, 3, tzinfo=UTC), datetime(2026, 10, 8, 3, tzinfo=UTC)
URL = "http://rankbot.test/feed"
CREDIT = "Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0"


def hostile_catalog() -> bytes:
    """The newest real catalog with one model added, named HOSTILE and an escape sequence."""
    payload = json.loads(catalog_bytes("2026-08-22T183539Z"))
    model = {**payload["data"][0], "id": "evil/model", "canonical_slug": "evil/model",
             "name": HOSTILE + "\x1b[2J\x00"}
    payload["data"].append(model)
    return json.dumps(payload).encode()


def repriced() -> bytes:
    """The hostile catalog with one more price change."""
    payload = json.loads(hostile_catalog())
    model = next(m for m in payload["data"] if m["id"] == "openai/gpt-oss-120b")
    model["pricing"]["prompt"] = "0.000001"
    return json.dumps(payload).encode()


async def served(body: bytes) -> bytes:
    return body


def rankings(body: bytes) -> Any:
    async def fetch() -> RawRankings:
        return RawRankings(body, None, "latest")
    return fetch


@pytest.fixture
async def polled() -> AsyncIterator[tuple[UnitOfWork, list[Outcome]]]:
    """A baseline catalog and two days of rankings, then one poll of both that finds catalog
    changes (a model named HOSTILE among them) and, with a new day, rankings changes."""
    store = load(UnitOfWork.open(":memory:"), "2026-08-22T124646Z", rankings=False)
    await poll(store, FIRST, DEFAULT_RULES, rankings=rankings(rankings_csv("2026-09-30",
                                                                           "2026-10-01")))
    outcomes = await poll(store, SECOND, DEFAULT_RULES,
                          catalog=lambda: served(hostile_catalog()),
                          rankings=rankings(rankings_csv()))
    yield store, outcomes
    store.close()


def atom_entries(body: bytes) -> list[ET.Element]:
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    return root.findall(f"{ATOM}entry")


def json_items(body: bytes) -> list[dict[str, Any]]:
    document = json.loads(body)
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    items: list[dict[str, Any]] = document["items"]
    return items


async def test_a_poll_keeps_each_change_it_found_with_its_fetch(
        polled: tuple[UnitOfWork, list[Outcome]]) -> None:
    store, outcomes = polled
    entries = store.feed.feed_entries(frozenset(), SIZE)
    found = [(o.key, c.kind, c.model or "") for o in outcomes for c in o.changes]
    assert sorted((e.fetch, e.kind, e.model) for e in entries) == sorted(found)
    assert len(found) == 14 and {o.key for o in outcomes} == {"catalog:2", "rankings:2"}
    assert all(e.at == SECOND for e in entries)
    # One poll's entries in the order they were found: the catalog's, then the rankings'.
    assert [e.fetch for e in entries] == ["catalog:2"] * 4 + ["rankings:2"] * 10
    assert entries[4].kind == "new_leader"


async def test_a_poll_that_fails_keeps_no_entry(
        polled: tuple[UnitOfWork, list[Outcome]], monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = polled
    before = store.feed.feed_entries(frozenset(), SIZE)

    def broken(*args: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("rankbot.bot.polling.tell_channels", broken)
    outcome, = await poll(store, SECOND + timedelta(hours=1), DEFAULT_RULES,
                          catalog=lambda: served(repriced()))
    assert outcome.fault is not None and outcome.fault.kind == "internal"
    assert store.feed.feed_entries(frozenset(), SIZE) == before  # undone with the snapshot


async def test_both_feeds_list_the_changes_newest_first_with_ids_links_and_credit(
        polled: tuple[UnitOfWork, list[Outcome]]) -> None:
    store, _ = polled
    entries = store.feed.feed_entries(frozenset(), SIZE)
    index = ModelIndex(store.snapshots.live_models().values())
    xml, items = atom_entries(atom(entries, URL, frozenset())), json_items(
        json_feed(entries, URL, frozenset()))
    assert len(xml) == len(items) == len(entries) == 14
    for entry, element, item in zip(entries, xml, items, strict=True):
        ident = element.findtext(f"{ATOM}id")
        assert ident == item["id"]
        assert ident is not None and ident.startswith("tag:rankbot,2026:")
        link = element.find(f"{ATOM}link")  # no rel: "alternate" (feedgen 1.0 leaves it out)
        assert link is not None and link.get("rel", "alternate") == "alternate"
        assert link.get("href") == item["url"]
        content = element.findtext(f"{ATOM}content")
        assert content == item["content_text"]
        assert element.find(f"{ATOM}category").get("term") == entry.kind  # type: ignore[union-attr]
        assert item["_rankbot"]["change"]["kind"] == entry.kind
        if entry.kind in RANKING_KINDS:  # rankings data: the CC BY 4.0 line, and its rights
            assert content is not None and content.endswith("\n\n" + CREDIT)
            assert element.findtext(f"{ATOM}rights") == CREDIT
        else:
            assert content is not None and "CC BY" not in content
            assert element.find(f"{ATOM}rights") is None
        if entry.kind == "open_weight_share_changed":
            assert item["url"] == "https://openrouter.ai/rankings"
        elif entry.kind in RANKING_KINDS:  # a permaslug links to its catalog model's page
            model = index.lookup(entry.model)
            assert item["url"] == f"https://openrouter.ai/{model.id if model else entry.model}"
        else:
            assert item["url"] == f"https://openrouter.ai/{entry.model}"
    assert "https://openrouter.ai/moonshotai/kimi-k3" in {i["url"] for i in items}
    assert len({i["id"] for i in items}) == 14  # a price's two sides are two entries
    assert {i["id"] for i in items if "muse-glimmer" in i["id"]} == {
        "tag:rankbot,2026:catalog:2/20261008T030000Z/price_changed/meta%2Fmuse-glimmer-30b/"
        + side for side in ("prompt", "completion")}


async def test_ids_stay_the_same_however_often_the_feed_is_read_or_grows(
        polled: tuple[UnitOfWork, list[Outcome]]) -> None:
    store, _ = polled
    before = {i["id"] for i in json_items(json_feed(store.feed.feed_entries(frozenset(), SIZE),
                                                    URL, frozenset()))}
    outcome, = await poll(store, SECOND + timedelta(hours=1), DEFAULT_RULES,
                          catalog=lambda: served(repriced()))
    assert len(outcome.changes) == 1
    after = [i["id"] for i in json_items(json_feed(store.feed.feed_entries(frozenset(), SIZE),
                                                   URL, frozenset()))]
    assert before < set(after) and after[0].startswith("tag:rankbot,2026:catalog:3/")
    atom_ids = [e.findtext(f"{ATOM}id") for e in atom_entries(
        atom(store.feed.feed_entries(frozenset(), SIZE), URL, frozenset()))]
    assert atom_ids == after


async def test_a_hostile_model_name_is_text_in_both_feeds(
        polled: tuple[UnitOfWork, list[Outcome]]) -> None:
    store, _ = polled
    entries = store.feed.feed_entries(frozenset({"model_added"}), SIZE)
    name = HOSTILE + "\x1b[2J\x00"
    assert [e.model for e in entries] == ["evil/model"] and name in entries[0].title
    shown = f"＋ evil/model ({HOSTILE}[2J): "  # control characters left out, the rest as is
    raw_atom, raw_json = atom(entries, URL, frozenset()), json_feed(entries, URL, frozenset())
    for raw in (raw_atom, raw_json):
        assert b"<script>" not in raw and b"\x1b" not in raw and b"\x00" not in raw
    title = atom_entries(raw_atom)[0].findtext(f"{ATOM}title")
    assert title is not None and title.startswith(shown)
    item = json_items(raw_json)[0]
    assert item["title"].startswith(shown) and item["content_text"].startswith(shown)
    assert item["_rankbot"]["change"]["name"] == name  # exact, as `poll --json` has it
    read = feedparser.parse(raw_atom)  # a feed reader: well-formed, and the title as text
    assert not read.bozo and read.entries[0].title.startswith(shown)
    assert read.entries[0].title_detail.type == "text/plain"


async def test_the_kinds_filter_and_the_last_hundred(
        polled: tuple[UnitOfWork, list[Outcome]]) -> None:
    store, _ = polled
    kinds = parse_kinds(["price_changed, model_added", "new_leader"])
    assert kinds == {"price_changed", "model_added", "new_leader"}
    chosen = store.feed.feed_entries(kinds, SIZE)
    assert [e.kind for e in chosen] == ["model_added", *["price_changed"] * 3, "new_leader"]
    document = json.loads(json_feed(chosen, URL, kinds))
    assert document["title"].endswith("(model_added, new_leader, price_changed)")
    assert ET.fromstring(atom(chosen, URL, kinds)).findtext(f"{ATOM}id") == (
        "tag:rankbot,2026:feed?kinds=model_added,new_leader,price_changed")
    assert parse_kinds([]) == parse_kinds(["", " , "]) == frozenset()
    with pytest.raises(ValueError, match=r"^unknown kind price_change, sunset; known: alias_"):
        parse_kinds(["price_change,sunset,went_free"])
    assert RANKING_KINDS | {DIGEST, "price_changed", "alias_moved"} <= KINDS

    many = [FeedEntry(f"catalog:{n}", SECOND + timedelta(minutes=n), "went_free",
                      f"m/{n}", "", f"m/{n} is now free") for n in range(150)]
    with store:
        assert store.feed.save_feed_entries(many) == 150
    with store:
        assert store.feed.save_feed_entries(many[:3]) == 0  # one identity, one entry
    newest = store.feed.feed_entries(frozenset(), SIZE)
    assert len(newest) == 100 and [e.model for e in newest[:2]] == ["m/149", "m/148"]
    assert len(atom_entries(atom(newest, URL, frozenset()))) == 100


async def test_the_weekly_digest_is_one_entry_a_week_with_its_credit(
        polled: tuple[UnitOfWork, list[Outcome]]) -> None:
    store, _ = polled
    thursday = datetime(2026, 10, 8, 12, tzinfo=UTC)
    assert keep_digest(store, thursday)
    assert not keep_digest(store, thursday + timedelta(days=2))  # the same week: kept already
    digest, = store.feed.feed_entries(frozenset({DIGEST}), SIZE)
    assert digest.fetch == "digest:2026-W41" and digest.at == datetime(2026, 10, 5, 9, tzinfo=UTC)
    assert digest.title.startswith("OpenRouter weekly: ")
    assert "Top 10 by tokens" in digest.text
    assert digest.credit is not None and digest.credit.endswith("· CC BY 4.0")
    item, = json_items(json_feed([digest], URL, frozenset()))
    assert item["url"] == "https://openrouter.ai/rankings"
    assert item["content_text"].endswith("\n\n" + digest.credit)
    assert item["id"] == "tag:rankbot,2026:digest:2026-W41/20261005T090000Z/weekly_digest//"
    assert keep_digest(store, thursday + timedelta(days=7))  # the next week's
    assert len(store.feed.feed_entries(frozenset({DIGEST}), SIZE)) == 2


async def test_no_rankings_no_digest_entry() -> None:
    store = UnitOfWork.open(":memory:")
    try:
        assert not keep_digest(store, SECOND)
        assert store.feed.feed_entries(frozenset(), SIZE) == []
        empty = ET.fromstring(atom([], URL, frozenset()))
        assert empty.findtext(f"{ATOM}updated") == "1970-01-01T00:00:00+00:00"
        assert json_items(json_feed([], URL, frozenset())) == []
    finally:
        store.close()
