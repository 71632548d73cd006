"""Discord: charts. `/rank` and `/price` answer with the model's chart attached to the embed
(`attachment://chart.png`), drawn off the event loop from stored data; one not drawn within the
budget follows "thinking…", one that fails is logged and left out; the weekly digest carries
the top 10's week. The PNG is checked (a PNG, its size, the series it was drawn from), not its
pixels."""

from __future__ import annotations

import logging
import struct
import threading
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from rankbot.adapters import charts, discord_chat
from rankbot.adapters.discord_chat import embeds
from rankbot.bot.channels import ChannelRef
from rankbot.bot.charts import PriceSeries, RankSeries, Series, WeekSeries
from rankbot.bot.commands import answer_with_chart
from rankbot.bot.digest import queue_due_digests
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.discord_api import APP_ID, FakeDiscordAPI, interaction_payload
from tests.fakes.discord_bot import CALLBACK, MODEL, callback_to, discord_courier, option
from tests.fakes.discord_gateway import received
from tests.fakes.loopback import Reply

pytestmark = pytest.mark.anyio
IMAGE = {"url": "attachment://chart.png"}
FOLLOW_UP = rf"/webhooks/{APP_ID}/interaction-token"


def size(image: bytes) -> tuple[int, int]:
    """A PNG's width and height, from its header."""
    assert image[:8] == b"\x89PNG\r\n\x1a\n" and image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image[16:24])
    return width, height


def with_image(card_embeds: list[discord.Embed]) -> list[dict[str, Any]]:
    return [{**card_embeds[0].to_dict(), "image": IMAGE}]


def command(name: str, options: list[dict[str, Any]]) -> dict[str, Any]:
    """A slash command in a server's channel, as Discord sends it over the gateway."""
    return interaction_payload({"id": "7001", "name": name, "type": 1, "options": options})


async def asked(client: discord.Client, fake: FakeDiscordAPI, name: str,
                options: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A command over the client's connection; the callback and the files it carried."""
    callback = await callback_to(client, fake, command(name, options))
    (files,) = fake.files("POST", CALLBACK)
    return callback, files


@pytest.mark.parametrize(("name", "options", "text", "kind"), [
    ("rank", [option("query", MODEL), option("days", 90, kind=4)], f"{MODEL} 90d", RankSeries),
    ("price", [option("query", MODEL)], MODEL, PriceSeries)])
async def test_rank_and_price_answer_with_the_models_chart_on_the_embed(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI,
        october: UnitOfWork, name: str, options: list[dict[str, Any]], text: str,
        kind: type) -> None:
    callback, files = await asked(discord_client, fake_discord, name, options)
    expected = answer_with_chart(name, text, october.snapshots, OCT_8)
    assert isinstance(expected.chart, kind) and expected.public
    assert callback == {"type": 4, "data": {
        "embeds": with_image(embeds(expected.card)), "tts": False, "content": None,
        "allowed_mentions": {"parse": []},
        "attachments": [{"id": 0, "filename": "chart.png"}]}}  # in the channel
    assert list(files) == ["chart.png"]
    assert size(files["chart.png"]) == (960, 480)
    assert files["chart.png"] == charts.png(expected.chart)  # drawn from the stored data
    if isinstance(expected.chart, RankSeries):
        assert len(expected.chart.days) == 90


async def test_rank_without_a_model_has_no_chart(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI) -> None:
    callback, files = await asked(discord_client, fake_discord, "rank",
                                  [option("days", 90, kind=4)])
    assert files == {} and "attachments" not in callback["data"]
    assert callback["data"]["embeds"][0]["title"].startswith("Top 10 for the 7 days")
    assert "image" not in callback["data"]["embeds"][0]


async def test_a_chart_not_drawn_in_time_follows_thinking_with_its_answer(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI,
        october: UnitOfWork, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    on_loop: list[bool] = []

    def slow(series: Series) -> bytes:
        on_loop.append(threading.current_thread() is threading.main_thread())
        release.wait(5)  # drawn once the answer has been acknowledged
        return charts.png(series)

    monkeypatch.setattr(discord_chat, "png", slow)
    monkeypatch.setattr(discord_chat, "CHART_WITHIN", 0.05)
    real_defer = discord.InteractionResponse.defer

    async def defer(self: discord.InteractionResponse, **kwargs: Any) -> Any:
        done = await real_defer(self, **kwargs)
        release.set()
        return done

    monkeypatch.setattr(discord.InteractionResponse, "defer", defer)
    fake_discord._server.requests.clear()
    await received(discord_client, "INTERACTION_CREATE",
                   command("rank", [option("query", MODEL)]))
    assert on_loop == [False]  # drawn on a worker thread
    assert fake_discord.bodies("POST", CALLBACK) == [{"type": 5}]  # in the channel
    (follow_up,) = fake_discord.bodies("POST", FOLLOW_UP)
    (files,) = fake_discord.files("POST", FOLLOW_UP)
    expected = answer_with_chart("rank", f"{MODEL} 30d", october.snapshots, OCT_8)
    assert expected.chart is not None
    assert follow_up["embeds"] == with_image(embeds(expected.card))
    assert follow_up["allowed_mentions"] == {"parse": []} and "flags" not in follow_up
    assert files == {"chart.png": charts.png(expected.chart)}


async def test_a_chart_that_fails_is_logged_and_the_answer_goes_without_it(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI,
        october: UnitOfWork, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(series: Series) -> bytes:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(discord_chat, "png", broken)
    with caplog.at_level(logging.ERROR, "rankbot.adapters.discord_chat"):
        callback, files = await asked(discord_client, fake_discord, "price",
                                      [option("query", MODEL)])
    expected = answer_with_chart("price", MODEL, october.snapshots, OCT_8)
    assert files == {} and callback["data"]["embeds"] == [
        e.to_dict() for e in embeds(expected.card)]
    (record,) = caplog.records
    assert record.message == "a PriceSeries chart could not be drawn; the message goes " \
                             "without it"
    assert record.exc_info is not None and "no fonts" in str(record.exc_info[1])


async def test_the_weekly_digest_carries_the_chart_of_the_top_10s_week(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI,
        october: UnitOfWork) -> None:
    ref = ChannelRef("discord", "111", "503")
    with october:
        october.channels.subscribe(ref, "digest", OCT_8)
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    assert queue_due_digests(october, monday) == 1
    (queued,) = october.outbox.due_messages(monday)
    assert isinstance(queued.chart, WeekSeries)
    courier = discord_courier(discord_client, october, monday)
    assert (await courier.deliver_due()).sent == 1
    (body,) = fake_discord.bodies("POST", r"/channels/503/messages")
    (files,) = fake_discord.files("POST", r"/channels/503/messages")
    (embed,) = body["embeds"]
    assert embed["title"] == "OpenRouter weekly: Oct 1 – Oct 7, 2026"
    assert embed["image"] == IMAGE
    assert body["attachments"] == [{"id": 0, "filename": "chart.png"}]
    assert files == {"chart.png": charts.png(queued.chart)}
    assert size(files["chart.png"])[0] > 0
    assert "components" not in body  # a digest names no one model to act on


async def test_a_channel_without_attach_files_gets_the_digest_without_its_chart(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI, october: UnitOfWork,
        caplog: pytest.LogCaptureFixture) -> None:
    ref = ChannelRef("discord", "111", "504")  # invited before charts: no Attach Files there
    with october:
        october.channels.subscribe(ref, "digest", OCT_8)
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    assert queue_due_digests(october, monday) == 1
    fake_discord.then("POST /channels/504/messages", Reply.json(
        {"message": "Missing Permissions", "code": 50013}, 403))
    courier = discord_courier(discord_client, october, monday)
    with caplog.at_level(logging.WARNING, "rankbot.adapters.discord_chat"):
        assert (await courier.deliver_due()).sent == 1
    refused, sent = fake_discord.bodies("POST", r"/channels/504/messages")
    assert refused["attachments"] == [{"id": 0, "filename": "chart.png"}]
    assert "attachments" not in sent and "image" not in sent["embeds"][0]
    assert sent["embeds"][0]["title"] == "OpenRouter weekly: Oct 1 – Oct 7, 2026"
    assert [r.message for r in caplog.records] == [
        f"{ref}: no Attach Files permission; the chart is left out"]
    subscription = october.channels.subscription(ref)
    assert subscription is not None and not subscription.paused


async def test_rank_takes_its_days_from_the_option_or_as_typed_in_the_query(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI) -> None:
    def rank(*options: dict[str, Any]) -> dict[str, Any]:
        return interaction_payload({"id": "7001", "name": "rank", "type": 1,
                                    "options": list(options)})

    plain = await callback_to(discord_client, fake_discord, rank(option("query", MODEL)))
    typed = await callback_to(discord_client, fake_discord,
                              rank(option("query", f"{MODEL} 90d")))
    chosen = await callback_to(discord_client, fake_discord,
                               rank(option("query", MODEL), option("days", 90, kind=4)))
    titles = [c["data"]["embeds"][0]["title"] for c in (plain, typed, chosen)]
    assert titles[0] == titles[1] == titles[2] and MODEL in titles[0]  # the same model
