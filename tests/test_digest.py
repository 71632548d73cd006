"""The weekly digest on the real rankings export and real catalogs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rankbot.bot.cards import describe
from rankbot.bot.changes import PriceChanged
from rankbot.bot.channels import CONSOLE, ChannelRef
from rankbot.bot.charts import WeekSeries
from rankbot.bot.delivery import Courier, Pacer
from rankbot.bot.digest import digest_chart, price_lines, queue_due_digests, weekly_digest
from rankbot.bot.polling import poll
from rankbot.bot.ports import RawRankings
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import (
    RecordingNotifier,
    catalog_bytes,
    expected_price_moves,
    load,
    rankings_csv,
    raw_models,
)
from tests.test_commands import OCT_8, assert_fits, week_order
from tests.test_delivery import NoWait


def test_the_digest_of_the_2026_10_07_week_has_a_new_leader(store: UnitOfWork) -> None:
    load(store, "2026-08-22T183539Z")
    card = weekly_digest(store.snapshots, OCT_8)
    assert card is not None
    assert card.title == "OpenRouter weekly: Oct 1 – Oct 7, 2026"
    assert card.lines == ("👑 New #1: deepseek/deepseek-v4.1-flash-20260910, ahead of "
                          "stealth/space-bunny-alpha",)
    fields = {f.name: f.value for f in card.fields}
    top = fields["Top 10 by tokens"].splitlines()
    now = week_order(date(2026, 10, 1), date(2026, 10, 7))
    before = week_order(date(2026, 9, 30))
    assert [line.split(" — ")[0].split(" ")[-1].strip("()") for line in top] == now[:10]
    markers = [line.split(" ")[1] for line in top]
    for slug, marker in zip(now[:10], markers, strict=True):
        old, new = before.index(slug) + 1, now.index(slug) + 1
        assert marker == ("=" if old == new else f"▲{old - new}" if new < old
                          else f"▼{new - old}")
    assert card.footer == ("Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · "
                           "CC BY 4.0")
    assert_fits(card)


def test_the_digest_counts_open_weights_in_the_top_5_and_10(store: UnitOfWork) -> None:
    load(store, "2026-08-22T183539Z")
    card = weekly_digest(store.snapshots, OCT_8)
    assert card is not None
    catalog = raw_models("2026-08-22T183539Z")
    open_slugs = {m["canonical_slug"] + (":" + i.split(":")[1] if ":" in i else "")
                  for i, m in catalog.items() if m["hugging_face_id"]}

    def count(order: list[str], n: int) -> int:
        return sum(1 for slug in order[:n] if slug in open_slugs)

    now = week_order(date(2026, 10, 1), date(2026, 10, 7))
    before = week_order(date(2026, 9, 30))
    line = next(f.value for f in card.fields if f.name == "Open weights")
    assert line == (f"{count(now, 5)} of the top 5 and {count(now, 10)} of the top 10 are "
                    f"open-weight (the week before: {count(before, 5)} of the top 5 and "
                    f"{count(before, 10)} of the top 10)")
    assert count(now, 10) > 0  # the join from rankings to the catalog found some


def test_the_weeks_price_changes(store: UnitOfWork) -> None:
    load(store, "2026-07-14T025033Z", "2026-07-20T194813Z", rankings=False)
    text = price_lines(store.snapshots, date(2026, 7, 21), DEFAULT_RULES)
    moves, _, _ = expected_price_moves("2026-07-14T025033Z", "2026-07-20T194813Z")
    lines = text.splitlines()
    assert lines[-1] == f"and {len(moves) - 10} more"
    described = {describe(PriceChanged(m, side, a, b, ((b - a) / a * 100).quantize(
        Decimal("0.1")))) for m, side, a, b in moves}
    assert len(lines[:-1]) == 10 and set(lines[:-1]) <= described
    assert lines[:-1] == sorted(lines[:-1], key=lambda line: line.split(" ")[0])


def test_no_rankings_no_digest(store: UnitOfWork) -> None:
    assert weekly_digest(store.snapshots, datetime(2026, 10, 8, tzinfo=UTC)) is None


@pytest.mark.anyio
async def test_the_first_rankings_welcome_the_console_with_the_digest_and_no_chat_channel(
        store: UnitOfWork) -> None:
    slack = ChannelRef("slack", "T1", "C1")
    for ref in (CONSOLE, slack):
        with store:
            store.channels.subscribe(ref, "all", datetime(2026, 10, 1, tzinfo=UTC))

    async def catalog() -> bytes:
        return catalog_bytes("2026-08-22T183539Z")

    async def rankings() -> RawRankings:
        return RawRankings(rankings_csv(), None, "latest")

    # The first poll: baselines, and the export's days already make a week.
    await poll(store, OCT_8, DEFAULT_RULES, catalog=catalog, rankings=rankings)
    queued = store.outbox.due_messages(OCT_8)
    assert [(m.subscription.ref, m.key) for m in queued] == [(CONSOLE, "digest:2026-W41")]
    assert queued[0].card == weekly_digest(store.snapshots, OCT_8)
    # It was this week's digest: the console does not get it twice; the channel, subscribed
    # before Monday's digest time, gets its own as usual.
    later = datetime(2026, 10, 8, 9, 30, tzinfo=UTC)
    assert queue_due_digests(store, later) == 1
    assert [m.subscription.ref for m in store.outbox.due_messages(later)] == [CONSOLE, slack]
    # Monday's digest shows the week the welcome showed (no newer rankings): not to the
    # console again; the channel, which had the week before, gets it.
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    assert queue_due_digests(store, monday) == 1
    assert [m.subscription.ref for m in store.outbox.due_messages(monday)][-1] == slack


@pytest.mark.anyio
async def test_the_welcome_waits_for_the_catalog_whose_prices_it_shows(
        store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(CONSOLE, "all", datetime(2026, 10, 1, tzinfo=UTC))

    async def rankings() -> RawRankings:
        return RawRankings(rankings_csv(), None, "latest")

    async def catalog() -> bytes:
        return catalog_bytes("2026-08-22T183539Z")

    await poll(store, OCT_8, DEFAULT_RULES, rankings=rankings)  # the rankings job ran first
    assert store.outbox.due_messages(OCT_8) == []
    await poll(store, OCT_8, DEFAULT_RULES, catalog=catalog)
    (welcomed,) = store.outbox.due_messages(OCT_8)
    assert welcomed.card == weekly_digest(store.snapshots, OCT_8)
    weights = next(f.value for f in welcomed.card.fields if f.name == "Open weights")
    assert welcomed.key == "digest:2026-W41"
    assert "2 of the top 10 are open-weight" in weights  # read from the catalog (0 without)


@pytest.mark.anyio
async def test_the_digest_carries_its_weeks_chart_to_the_notifier(
        store: UnitOfWork, caplog: pytest.LogCaptureFixture) -> None:
    load(store, "2026-08-22T183539Z")
    channel = ChannelRef("slack", "T1", "CDIGEST")
    with store:
        store.channels.subscribe(channel, "digest", datetime(2026, 9, 1, tzinfo=UTC))
    assert queue_due_digests(store, OCT_8) == 1
    notifier, waits = RecordingNotifier(), NoWait()
    await Courier(store, {"slack": notifier}, lambda: OCT_8,
                  Pacer(waits.clock, waits.sleep)).deliver_due()
    (chart,) = notifier.charts
    assert notifier.prepared == [chart]  # readied before the send was paced
    moment = DEFAULT_RULES.last_digest_time(OCT_8)  # Monday 09:00: the week to Sunday
    assert isinstance(chart, WeekSeries) and chart == digest_chart(store.snapshots, moment)
    card = notifier.cards[0]
    top = {f.name: f.value for f in card.fields}["Top 10 by tokens"].splitlines()
    assert [line.permaslug for line in chart.lines] == [
        line.split(" — ")[0].split(" ")[-1].strip("()") for line in top]
    assert chart.days == tuple(date(2026, 9, 28 + n) for n in range(3)) + tuple(
        date(2026, 10, n) for n in range(1, 5))
    # A chart that cannot be read back is left out; the digest still goes.
    with store:
        store.db.execute("UPDATE outbox SET status = 'pending', payload = json_set(payload, "
                         "'$.chart.lines', 'nonsense')")
    (message,) = store.outbox.due_messages(OCT_8)
    assert message.chart is None and message.card == card
    assert "its chart cannot be read" in caplog.text
