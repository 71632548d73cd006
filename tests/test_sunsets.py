"""Retirements on the real history: every real retirement date of the shared history told once
per channel, a moved date told as moved, a flapping one not re-told, placeholders never,
reminders 30, 7 and 1 days before, each once, also across unchanged catalogs; successors,
`/sunsets` and the digest's "Leaving soon".

The replay is the real poll path (`bot.polling.poll` on SQLite) over every catalog of the shared
history where a retirement date changed, with the one before it (tests/fixtures/openrouter/
history/sunsets_*.tar.xz), then 40 consecutive catalogs (2026-08-13 → 08-22); between two of
them the earlier one is polled again, unchanged, once a day, as an hourly poll would meet it.
"""

from __future__ import annotations

import asyncio
import json
import tarfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from rankbot.bot.alerts import SunsetNews, hear
from rankbot.bot.cards import describe
from rankbot.bot.catalog import parse_catalog
from rankbot.bot.changes import SunsetAnnounced, SunsetSoon
from rankbot.bot.channels import CONSOLE, ChannelRef
from rankbot.bot.commands import ask
from rankbot.bot.digest import leaving_soon, weekly_digest
from rankbot.bot.history import time_from_name
from rankbot.bot.polling import poll
from rankbot.bot.rules import ALERT_KINDS, DEFAULT_RULES, Rules
from rankbot.bot.sunsets import Sunset, is_placeholder, reminder, successor, version
from rankbot.storage import UnitOfWork
from tests.conftest import FIXTURES, catalog_bytes, load

HISTORY = FIXTURES / "history"
ARCHIVES = ("sunsets_2026-06-07_2026-08-12.tar.xz", "2026-08-13_2026-08-22.tar.xz")
QUIET = ChannelRef("slack", "T1", "C-no-reminders")
Record = dict[str, Any]


def catalogs() -> list[tuple[datetime, bytes]]:
    series = []
    for name in ARCHIVES:
        with tarfile.open(HISTORY / name) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                at, handle = time_from_name(member.name), tar.extractfile(member)
                assert at is not None and handle is not None
                series.append((at, handle.read()))
    return series


def polls(series: list[tuple[datetime, bytes]]) -> Iterator[tuple[datetime, bytes]]:
    """Each catalog, then the same bytes once a day until the next one."""
    for (at, body), (after, _) in zip(series, [*series[1:], (series[-1][0], b"")],
                                       strict=True):
        yield at, body
        again = at + timedelta(days=1)
        while again < after:
            yield again, body
            again += timedelta(days=1)


def told(store: UnitOfWork, ref: ChannelRef) -> list[Record]:
    rows = store.db.execute(
        "SELECT o.payload FROM outbox o JOIN subscriptions s ON s.id = o.subscription "
        "WHERE s.channel = ? ORDER BY o.id", [ref.channel]).fetchall()
    return [r for (payload,) in rows for r in json.loads(payload)["changes"]
            if r["kind"].startswith("sunset_")]


@pytest.fixture(scope="module")
def replay() -> Iterator[tuple[UnitOfWork, list[tuple[datetime, bytes]], int]]:
    series = catalogs()
    store = UnitOfWork.open(":memory:")
    with store:
        store.channels.subscribe(CONSOLE, "alerts", datetime(2026, 1, 1, tzinfo=UTC))
        quiet = store.channels.subscribe(QUIET, "alerts", datetime(2026, 1, 1, tzinfo=UTC))
        store.channels.set_rules(quiet, Rules(kinds=frozenset(ALERT_KINDS) - {"sunset_soon"}),
                                 who="U1", at=datetime(2026, 1, 1, tzinfo=UTC), setting="kinds",
                                 old="all", new="…")
    count = 0
    for at, body in polls(series):
        async def fetch(body: bytes = body) -> bytes:
            return body
        outcome, = asyncio.run(poll(store, at, DEFAULT_RULES, catalog=fetch))
        assert outcome.fault is None
        count += 1
    yield store, series, count
    store.close()


def real_dates(series: list[tuple[datetime, bytes]]) -> tuple[set[tuple[str, str]],
                                                                set[tuple[str, str]]]:
    """Straight from the JSON: (model, date) of every real retirement date the catalogs after
    the first gave while it was still to come, and of the first catalog's."""
    def dated(at: datetime, body: bytes) -> set[tuple[str, str]]:
        return {(m["id"], m["expiration_date"][:10]) for m in json.loads(body)["data"]
                if m.get("expiration_date") and not m["id"].startswith("~")
                and at.date() <= date.fromisoformat(m["expiration_date"][:10])
                <= at.date().replace(year=at.year + 5)}
    first = dated(*series[0])
    later = set().union(*(dated(at, body) for at, body in series[1:]))
    return later - first, first


def test_the_fixture_holds_the_cases(replay: tuple[UnitOfWork, list[Any], int]) -> None:
    _, series, count = replay
    assert len(series) == 110 and count > len(series)  # and unchanged polls between them
    shown = Counter(m["id"] for _, body in series for m in json.loads(body)["data"]
                    if m.get("expiration_date") == "2026-12-31" and m["id"] == "z-ai/glm-4.5v")
    placeholders = {m.get("expiration_date") for _, body in series
                    for m in json.loads(body)["data"]}
    assert {"2098-12-31", "9999-01-01"} <= placeholders
    assert shown["z-ai/glm-4.5v"] >= 4


def test_each_real_date_is_announced_once_and_no_placeholder(
        replay: tuple[UnitOfWork, list[Any], int]) -> None:
    store, series, _ = replay
    new, at_baseline = real_dates(series)
    records = told(store, CONSOLE)
    announced = Counter((r["model"], r["retires"]) for r in records
                        if r["kind"] == "sunset_announced")
    assert set(announced) == new and set(announced.values()) == {1}
    assert len(announced) >= 30 and ("openai/gpt-5.3-chat", "2026-08-10") in announced
    assert {("qwen/qwen3-coder:free", "2026-07-19"), ("poolside/laguna-m.1", "2026-07-28"),
            ("z-ai/glm-4.5", "2026-06-19"), ("z-ai/glm-4.5", "2026-12-31")} <= set(announced)
    # the first catalog's dates were there before we looked: told by their reminders
    assert ("openai/gpt-5.2-chat", "2026-08-10") in at_baseline
    assert all(r["retires"] < "2031" for r in records)  # 2098-12-31, 9999-01-01: never
    assert not {r["model"] for r in records} & {"z-ai/glm-5-turbo", "stealth/ox-alpha",
                                                 "z-ai/glm-5.3", "~z-ai/glm-latest"}


def test_a_moved_date_says_postponed_and_a_flapping_one_is_not_told_again(
        replay: tuple[UnitOfWork, list[Any], int]) -> None:
    store, _, _ = replay
    records = told(store, CONSOLE)
    glm = [r for r in records if r["model"] == "z-ai/glm-4.5" and r["kind"] == "sunset_announced"]
    assert [(r["retires"], r["previous"]) for r in glm] == [("2026-06-19", None),
                                                            ("2026-12-31", "2026-06-19")]
    moved = SunsetAnnounced("z-ai/glm-4.5", "Z.ai: GLM 4.5", date(2026, 12, 31),
                            date(2026, 6, 19), 195, "z-ai/glm-5.2")
    assert describe(moved) == ("🌅 z-ai/glm-4.5 (Z.ai: GLM 4.5) retirement postponed to "
                               "2026-12-31 (was 2026-06-19) (in 195 days); successor: "
                               "z-ai/glm-5.2")
    assert "brought forward to 2026-06-19" in describe(SunsetAnnounced(
        "z-ai/glm-4.5", "GLM", date(2026, 6, 19), date(2026, 12, 31), 3, None))
    # gpt-5.2-chat's date vanished and came back twice, glm-4.5v's four times: no second word
    for model in ("openai/gpt-5.2-chat", "openai/gpt-5.3-chat", "z-ai/glm-4.5v"):
        assert sum(r["kind"] == "sunset_announced" for r in records if r["model"] == model) <= 1


def test_reminders_at_30_7_and_1_days_each_once(
        replay: tuple[UnitOfWork, list[Any], int]) -> None:
    store, _, _ = replay
    reminders = [r for r in told(store, CONSOLE) if r["kind"] == "sunset_soon"]
    steps = Counter((r["model"], r["retires"], reminder(r["days_left"])) for r in reminders)
    assert set(steps.values()) == {1}
    # polled every day: on the day; gpt-5.3-chat's date was away from 06-20 to 07-15, and its
    # 30-day reminder came when it was back, with 26 days left
    late = {(r["model"], r["days_left"]) for r in reminders if r["days_left"] not in (30, 7, 1)}
    assert late == {("openai/gpt-5.3-chat", 26)}
    gpt = [r["days_left"] for r in reminders if r["model"] == "openai/gpt-5.2-chat"]
    assert gpt == [30, 7, 1]  # the 7 and the 1 from unchanged catalogs, polled again
    line = describe(SunsetSoon("openai/gpt-5.2-chat", "OpenAI: GPT-5.2 Chat", date(2026, 8, 10),
                               7, None))
    assert line == "⏳ openai/gpt-5.2-chat (OpenAI: GPT-5.2 Chat) retires on 2026-08-10 (in 7 days)"


def test_a_channel_without_sunset_soon_gets_the_dates_but_no_reminders(
        replay: tuple[UnitOfWork, list[Any], int]) -> None:
    store, _, _ = replay
    quiet, console = told(store, QUIET), told(store, CONSOLE)
    assert quiet and all(r["kind"] == "sunset_announced" for r in quiet)
    assert quiet == [r for r in console if r["kind"] == "sunset_announced"]


def test_placeholders_and_passed_dates_are_not_sunsets() -> None:
    today = date(2026, 8, 21)
    assert is_placeholder(date(2098, 12, 31), today) and is_placeholder(date(9999, 1, 1), today)
    assert not is_placeholder(date(2026, 12, 31), today)
    assert not is_placeholder(date(2028, 2, 29), date(2024, 2, 29))
    assert [reminder(n) for n in (45, 31, 30, 8, 7, 2, 1, 0, -1)] == [
        None, None, 30, 30, 7, 7, 1, 1, None]


def test_a_flapping_date_is_remembered_until_it_comes_back() -> None:
    """The memory by itself: gpt-5.2-chat's 2026-08-10 vanishing on 06-19 and coming back."""
    sunset = Sunset("openai/gpt-5.2-chat", "OpenAI: GPT-5.2 Chat", date(2026, 8, 10), None)
    day = date(2026, 6, 19)
    gone = hear(SunsetNews((), day, {sunset.model: sunset.retires}, day), DEFAULT_RULES, {})
    assert gone.changes == [] and gone.remember == {"sunset:openai/gpt-5.2-chat": "2026-08-10/"}
    back = hear(SunsetNews((sunset,), day, {}, day), DEFAULT_RULES, gone.remember)
    assert back.changes == [] and back.forget == {"sunset:openai/gpt-5.2-chat"}
    fresh = hear(SunsetNews((sunset,), day, {}, day), DEFAULT_RULES, {})
    assert [c.kind for c in fresh.changes] == ["sunset_announced"]
    ignored = hear(SunsetNews((sunset,), day, {}, day), Rules(ignore=("openai",)), {})
    assert ignored.changes == []


def test_successors_on_real_models() -> None:
    live = parse_catalog(catalog_bytes("2026-07-14T025033Z")).models
    today = date(2026, 7, 14)

    def suggested(model_id: str, usage: dict[str, int] | None = None) -> str | None:
        return successor(live[model_id], live, lambda: usage or {}, today)
    assert live["qwen/qwen3-coder:free"].expiration_date == date(2026, 7, 19)
    assert suggested("qwen/qwen3-coder:free") == "qwen/qwen3-coder"  # its own paid base
    assert suggested("z-ai/glm-4.5") == "z-ai/glm-5.2"  # the newest GLM that is not leaving
    assert suggested("z-ai/glm-4.5v") == "z-ai/glm-4.6v"  # the vision line stays its own
    assert suggested("openai/gpt-5.2-chat") == "openai/gpt-5.3-chat"
    # no newer Llama vision model: the author's most used other model, by the rankings
    vision = "meta-llama/llama-3.2-11b-vision-instruct"
    assert suggested(vision) is None
    usage = {"meta-llama/llama-3.1-8b-instruct": 5 * 10**11, vision: 10**13,
             "meta-llama/llama-3.3-70b-instruct:free": 10**12, "qwen/qwen3-coder": 10**13}
    # the 70B's :free variant is leaving too; its usage counts for the paid 70B, which stays
    assert suggested(vision, usage) == "meta-llama/llama-3.3-70b-instruct"
    del usage["meta-llama/llama-3.3-70b-instruct:free"]
    assert suggested(vision, usage) == "meta-llama/llama-3.1-8b-instruct"


def test_sunsets_lists_what_leaves_with_dates_and_successors() -> None:
    store = load(UnitOfWork.open(":memory:"), "2026-08-22T183539Z")
    try:
        now = datetime(2026, 8, 22, 19, tzinfo=UTC)
        reply = ask("sunsets", store.snapshots, now)
        assert reply.public and reply.card.title == "Leaving OpenRouter in the next 30 days"
        assert reply.card.lines[0].startswith("2026-08-24 (in 2 days) ")
        assert any(line.endswith("inclusionai/ling-2.6-flash (inclusionAI: Ling-2.6-flash) → "
                                 "inclusionai/ling-3.0-flash") for line in reply.card.lines)
        assert not any("2098" in line or "dots-3" in line for line in reply.card.lines)
        longer = ask("sunsets 60", store.snapshots, now).card.lines
        assert longer[-1].startswith("2026-09-30 (in 39 days) dots-studio/dots-3-note-preview")
        none = ask("sunsets 1", store.snapshots, now).card.lines
        assert none == ("Nothing announced to leave in the next 1 days.",)
        assert "CC BY 4.0" in (reply.card.footer or "")
        for bad in ("sunsets soon", "sunsets 0", "sunsets 400", "sunsets 7 30"):
            refused = ask(bad, store.snapshots, now)
            assert not refused.public and len(refused.card.lines) == 1, bad
    finally:
        store.close()


def test_the_digest_has_a_leaving_soon_section(october: UnitOfWork) -> None:
    card = weekly_digest(october.snapshots, datetime(2026, 10, 8, 9, tzinfo=UTC))
    assert card is not None
    assert {f.name: f.value for f in card.fields}["Leaving soon"] == "Nothing announced"
    week = leaving_soon(october.snapshots, date(2026, 8, 22)).splitlines()
    assert week[0].startswith("2026-08-24 ") and "2098" not in " ".join(week)
    assert not any("dots-3" in line for line in week)  # 2026-09-30: 39 days after


@pytest.mark.parametrize(("older", "newer"), [
    ("meta-llama/llama-3-70b-instruct", "meta-llama/llama-3.3-70b-instruct"),
    ("openai/gpt-5.2-chat", "openai/gpt-5.3-chat"),
    ("qwen/qwen3-coder-30b-a3b-instruct", "qwen/qwen3.5-coder-30b-a3b-instruct"),
])
def test_a_models_size_is_no_part_of_its_version(older: str, newer: str) -> None:
    assert version(newer) > version(older)
