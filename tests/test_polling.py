"""The poll as a straight line (observe → decide per channel → queue), on the in-memory unit of
work (tests/fakes/memory.py); each scenario runs on SQLite too, so the fake cannot drift."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rankbot.bot.cards import Card
from rankbot.bot.channels import CONSOLE, ChannelRef, Subscription
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.polling import Outcome, poll
from rankbot.bot.ports import PollWork, RawRankings
from rankbot.bot.rules import DEFAULT_RULES, Rules
from tests.conftest import catalog_bytes, expected_price_moves, rankings_csv
from tests.fakes.memory import MemoryWork

T0 = datetime(2026, 10, 8, 2, tzinfo=UTC)
OLD, NEW = "2026-07-20T194813Z", "2026-07-28T193833Z"
GENERAL = ChannelRef("slack", "T1", "CGENERAL")
pytestmark = pytest.mark.anyio
OPENAI = ChannelRef("discord", "G1", "200")


def subscribe(work: Any, ref: ChannelRef, mode: str = "alerts",
              rules: Rules = DEFAULT_RULES) -> Subscription:
    with work:
        subscription = work.channels.subscribe(ref, mode, T0 - timedelta(days=30))
        if rules != DEFAULT_RULES:
            work.channels.set_rules(subscription, rules, who="U1", at=T0, setting="test",
                                    old="", new="")
    found: Subscription = work.channels.subscription(ref)
    return found


async def poll_catalog(work: PollWork, stamp: str, at: datetime) -> Outcome:
    async def fetch() -> bytes:
        return catalog_bytes(stamp)
    (outcome,) = await poll(work, at, DEFAULT_RULES, catalog=fetch)
    return outcome


async def poll_both(work: PollWork, stamp: str, at: datetime, *days: str) -> list[Outcome]:
    async def catalog() -> bytes:
        return catalog_bytes(stamp)

    async def rankings() -> RawRankings:
        return RawRankings(rankings_csv(*days), None, "export")
    return await poll(work, at, DEFAULT_RULES, catalog=catalog, rankings=rankings)


def alerts(work: Any, ref: ChannelRef) -> list[tuple[str, list[dict[str, Any]]]]:
    """(key, change records) of the alerts queued for `ref`, oldest first."""
    subscription = work.channels.subscription(ref)
    if isinstance(work, MemoryWork):
        return [(m.key, list(m.changes)) for m in work.outbox.to(ref)]
    rows = work.db.execute("SELECT key, payload FROM outbox WHERE subscription = ? AND "
                           "kind = 'alert' ORDER BY id", [subscription.id]).fetchall()
    return [(key, json.loads(payload)["changes"]) for key, payload in rows]


def moves(records: list[dict[str, Any]]) -> set[tuple[str, str, Decimal, Decimal]]:
    return {(r["model"], r["field"], Decimal(str(r["old"])), Decimal(str(r["new"])))
            for r in records if r["kind"] == "price_changed"}


async def test_the_first_poll_is_a_silent_baseline_and_the_console_is_welcomed(
        work: Any) -> None:
    subscribe(work, GENERAL)
    subscribe(work, CONSOLE, "all")
    catalog, rankings = await poll_both(work, OLD, T0)
    assert catalog.baseline and rankings.baseline and not catalog.changes
    assert alerts(work, GENERAL) == []
    assert work.outbox.last_digest_title(work.channels.subscription(CONSOLE)).startswith(
        "OpenRouter weekly")
    assert queue_due_digests(work, T0) == 0  # the welcome counts as this week's digest


async def test_each_channel_hears_a_change_once_under_its_own_rules(work: Any) -> None:
    subscribe(work, GENERAL)
    subscribe(work, OPENAI, rules=Rules(watch=("openai",)))
    await poll_catalog(work, OLD, T0 - timedelta(hours=2))
    outcome = await poll_catalog(work, NEW, T0)
    expected, _, _ = expected_price_moves(OLD, NEW)
    (key, told), = alerts(work, GENERAL)
    assert key == outcome.key and key.startswith("catalog:")
    assert moves(told) == expected
    watched = alerts(work, OPENAI)
    assert [k for k, _ in watched] == [key]
    assert {r["model"].split("/")[0].lstrip("~") for _, records in watched for r in records
            if r.get("model")} == {"openai"}
    again = await poll_catalog(work, NEW, T0 + timedelta(hours=1))
    assert again.summary.startswith("catalog unchanged") and len(alerts(work, GENERAL)) == 1


async def test_a_failure_after_storing_undoes_the_whole_poll(
        work: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    subscribe(work, GENERAL)
    await poll_catalog(work, OLD, T0 - timedelta(hours=2))

    def broken(*args: object) -> int:
        raise RuntimeError("disk full")
    monkeypatch.setattr(work.feed, "save_feed_entries", broken)
    with caplog.at_level(logging.WARNING):
        failed = await poll_catalog(work, NEW, T0)
    assert failed.fault is not None and failed.fault.kind == "internal"
    assert alerts(work, GENERAL) == []
    assert work.snapshots.last_catalog_fetch().at == T0 - timedelta(hours=2)  # undone
    monkeypatch.undo()
    told = await poll_catalog(work, NEW, T0 + timedelta(hours=1))  # diffed again, and told
    assert told.fault is None and len(alerts(work, GENERAL)) == 1


async def test_one_channels_failure_costs_only_its_own_message(
        work: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broken = subscribe(work, OPENAI)
    subscribe(work, GENERAL)
    await poll_catalog(work, OLD, T0 - timedelta(hours=2))
    read = work.channels.memory

    def memory(subscription: Subscription, prefix: str) -> dict[str, str]:
        if subscription.id == broken.id:
            raise ValueError("unreadable memory")
        result: dict[str, str] = read(subscription, prefix)
        return result
    monkeypatch.setattr(work.channels, "memory", memory)
    with caplog.at_level(logging.ERROR):
        await poll_catalog(work, NEW, T0)
    assert alerts(work, OPENAI) == [] and len(alerts(work, GENERAL)) == 1
    assert any("could not decide what to tell" in r.getMessage() for r in caplog.records)


async def test_a_taken_key_is_logged_and_leaves_the_memory_alone(
        work: Any, caplog: pytest.LogCaptureFixture) -> None:
    subscription = subscribe(work, GENERAL)
    await poll_catalog(work, OLD, T0 - timedelta(hours=2))
    with work:  # a message under the key the next poll will use
        work.outbox.enqueue(subscription, "catalog:2", kind="alert", card=card(), changes=[],
                            at=T0)
        work.channels.update_memory(subscription, {"price:x/y:prompt": "1"}, ())
    with caplog.at_level(logging.ERROR):
        outcome = await poll_catalog(work, NEW, T0)
    assert outcome.key == "catalog:2"
    assert [k for k, _ in alerts(work, GENERAL)] == ["catalog:2"]  # only the one already there
    assert work.channels.memory(subscription, "price:") == {"price:x/y:prompt": "1"}
    assert any("already has a message keyed catalog:2" in r.getMessage()
               for r in caplog.records)


async def test_quiet_hours_hold_the_message_until_they_end(work: Any) -> None:
    quiet = Rules(quiet_hours=(T0.time().replace(hour=1), T0.time().replace(hour=7)))
    subscribe(work, GENERAL, rules=quiet)
    await poll_catalog(work, OLD, T0 - timedelta(hours=2))
    await poll_catalog(work, NEW, T0)
    if isinstance(work, MemoryWork):
        (message, state), = work.outbox.messages
        assert message.held and state["not_before"] == T0.replace(hour=7)
    else:
        (held, not_before), = work.db.execute("SELECT held, not_before FROM outbox").fetchall()
        assert held == 1 and datetime.fromisoformat(not_before) == T0.replace(hour=7)


def card() -> Card:
    return Card("placeholder")


async def test_a_poll_is_one_unit_of_work() -> None:
    work = MemoryWork()
    subscribe(work, GENERAL)
    for stamp, hours in ((OLD, -2), (NEW, 0)):  # the baseline, then one with news
        before = work.commits
        await poll_both(work, stamp, T0 + timedelta(hours=hours))
        assert work.commits == before + 1  # each a single commit, its parts savepoints within
    assert len(alerts(work, GENERAL)) == 1
