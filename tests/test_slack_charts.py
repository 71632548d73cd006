"""Charts in Slack, end to end on loopback: `/rank QUERY [90d]` and `/price QUERY` answer with
the model's chart, drawn from the stored data, uploaded privately through slack_sdk's three
steps (files.getUploadURLExternal, the bytes to the upload URL, files.completeUploadExternal
with no channel), and shown by an `image` block; within Slack's 3 s, or after the answer when
it takes longer; and without it, logged, when the upload fails. The weekly digest's chart goes
in the message the same way."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import date
from typing import Any

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters import slack_chat
from rankbot.adapters.charts import draws, png
from rankbot.adapters.slack_blocks import blocks
from rankbot.adapters.slack_chat import CHART_FILE, SlackNotifier
from rankbot.bot.cards import Card
from rankbot.bot.channels import ChannelRef
from rankbot.bot.charts import week_series
from rankbot.bot.commands import answer_with_chart
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.loopback import Reply
from tests.fakes.slack_api import FakeSlackAPI, post_command
from tests.fakes.slack_bot import QWEN, SECRET, Bot, answered

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short waits between the tries of an image Slack has not processed yet."""
    monkeypatch.setattr(slack_chat, "IMAGE_WAITS", (0.05, 0.1, 0.1, 0.1))


async def command(bot: Bot, command: str, text: str, hook: str) -> httpx.Response:
    return await post_command(bot.url, SECRET, command, text, user="UMEMBER",
                              response_url=bot.fake.base_url + hook)


@pytest.mark.parametrize(("command_name", "text", "alt"), [
    ("/rank", "qwen 90d", "qwen/qwen3.8-flash-20260826: daily rank and share of tokens, last "
                          "90 days"),
    ("/price", QWEN, f"Qwen: Qwen3.8 27B ({QWEN}): input and output prices per 1M tokens")])
async def test_rank_and_price_answer_then_their_chart_uploaded_privately_follows(
        bot: Bot, fake_slack: FakeSlackAPI, command_name: str, text: str, alt: str) -> None:
    reply = await command(bot, command_name, text, "hooks/chart")
    expected = answer_with_chart(command_name, text, bot.store.snapshots, OCT_8)
    assert expected.chart is not None
    body = reply.json()  # the answer at once, in the channel; never an image in it
    assert body["response_type"] == "in_channel" and body["blocks"] == blocks(expected.card)
    follow = await answered(fake_slack, "hooks/chart", within=30)
    drawn = png(expected.chart)  # the series from the stored data (a cache hit: same bytes)
    (asked,) = fake_slack.calls_to("files.getUploadURLExternal")
    assert (asked["filename"], asked["length"], asked["alt_txt"]) == (
        CHART_FILE, str(len(drawn)), alt)
    (file_id, uploaded), = fake_slack.uploads.items()
    assert uploaded == drawn and uploaded.startswith(PNG)
    (completed,) = fake_slack.calls_to("files.completeUploadExternal")
    assert "channel_id" not in completed and "channels" not in completed  # shared nowhere
    assert fake_slack.shared == {file_id: None}
    assert follow == {"text": alt, "response_type": "in_channel", "replace_original": False,
                      "blocks": [{"type": "image", "slack_file": {"id": file_id},
                                  "alt_text": alt}]}


async def test_answers_without_a_chart_upload_nothing(bot: Bot, fake_slack: FakeSlackAPI
                                                      ) -> None:
    for name, text in (("/top", "5"), ("/rank", ""), ("/rank", "qwn")):
        body = (await command(bot, name, text, "hooks/none")).json()
        assert all(b["type"] != "image" for b in body["blocks"])
    await asyncio.sleep(0.2)
    assert fake_slack.calls_to("files.getUploadURLExternal") == []
    assert fake_slack.calls_to("hooks/none") == []


@pytest.mark.usefixtures("quick")
async def test_a_chart_slack_is_still_processing_is_tried_again_until_it_shows(
        bot: Bot, fake_slack: FakeSlackAPI) -> None:
    fake_slack.processing = 0.12  # refused twice (at once, after 0.05 s), then shown
    reply = await command(bot, "/rank", "qwen", "hooks/processing")
    assert all(b["type"] != "image" for b in reply.json()["blocks"])
    deadline = time.monotonic() + 30
    while len(fake_slack.calls_to("hooks/processing")) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    tries = fake_slack.calls_to("hooks/processing")
    (file_id,) = fake_slack.uploads
    assert [t["blocks"][0]["slack_file"]["id"] for t in tries] == [file_id] * 3
    await asyncio.sleep(0.3)
    assert len(fake_slack.calls_to("hooks/processing")) == 3  # shown: no more tries


@pytest.mark.usefixtures("quick")
async def test_a_chart_slack_never_shows_is_given_up_and_logged(
        bot: Bot, fake_slack: FakeSlackAPI, caplog: pytest.LogCaptureFixture) -> None:
    fake_slack.processing = 3600.0
    await command(bot, "/rank", "qwen", "hooks/never")
    deadline = time.monotonic() + 30
    while "the answer stands without it" not in caplog.text and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert len(fake_slack.calls_to("hooks/never")) == len(slack_chat.IMAGE_WAITS) + 1 == 5
    assert "Slack refused a chart 5 times (404" in caplog.text


@pytest.mark.parametrize(("step", "refusal"), [
    ("files.getUploadURLExternal", Reply.json({"ok": False, "error": "missing_scope"})),
    ("upload", Reply(500, b"upstream error")),
    ("files.completeUploadExternal", Reply.json({"ok": False, "error": "file_not_found"}))])
async def test_a_failed_upload_leaves_the_answer_without_its_chart_and_is_logged(
        bot: Bot, fake_slack: FakeSlackAPI, caplog: pytest.LogCaptureFixture, step: str,
        refusal: Reply) -> None:
    fake_slack.then(step, refusal)
    body = (await command(bot, "/rank", "qwen", "hooks/failed")).json()
    expected = answer_with_chart("/rank", "qwen", bot.store.snapshots, OCT_8)
    assert body["blocks"] == blocks(expected.card)
    deadline = time.monotonic() + 30
    while not [r for r in caplog.records if r.name == slack_chat.__name__] \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert fake_slack.calls_to("hooks/failed") == []
    (logged,) = [r for r in caplog.records if r.name == slack_chat.__name__]
    assert logged.levelno == logging.ERROR and logged.exc_info is not None  # the traceback
    assert logged.getMessage() == (
        "the chart (qwen/qwen3.8-flash-20260826: daily rank and share of tokens, last 30 "
        "days) could not be drawn or uploaded; sent without it")


async def test_the_weekly_digests_chart_is_in_its_message_above_the_credit(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    week = week_series(october.snapshots, date(2026, 10, 7))
    assert week is not None
    card = Card("OpenRouter weekly", ("…",), (), "Source: OpenRouter · CC BY 4.0")
    await SlackNotifier(slack_client).send(ChannelRef("slack", "T1", "C1"), card, (), "rb-w",
                                           chart=week)
    (posted,) = fake_slack.calls_to("chat.postMessage")
    (file_id, uploaded), = fake_slack.uploads.items()
    assert uploaded == png(week) and fake_slack.shared == {file_id: None}
    *head, footer = blocks(card)
    assert posted["blocks"] == [*head, {
        "type": "image", "slack_file": {"id": file_id},
        "alt_text": "The week's top 10, day by day, to 2026-10-07"}, footer]


@pytest.mark.usefixtures("quick")
async def test_a_message_waits_for_slack_to_process_its_chart_or_goes_without_it(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI,
        caplog: pytest.LogCaptureFixture) -> None:
    week = week_series(october.snapshots, date(2026, 10, 7))
    assert week is not None
    card = Card("OpenRouter weekly", ("…",), (), "Source: OpenRouter · CC BY 4.0")
    fake_slack.processing = 0.12  # refused twice, then shown: one message, with its chart
    await SlackNotifier(slack_client).send(ChannelRef("slack", "T1", "C1"), card, (), "rb-w",
                                           chart=week)
    tries = fake_slack.calls_to("chat.postMessage")
    assert len(tries) == 3 and len(fake_slack.messages("C1")) == 1
    assert [b["type"] for b in tries[-1]["blocks"]] == ["header", "section", "image", "context"]

    fake_slack.processing = 3600.0  # never shown: the message goes without it, once
    other = replace(week, footer="another week")
    await SlackNotifier(slack_client).send(ChannelRef("slack", "T1", "C2"), card, (), "rb-x",
                                           chart=other)
    *refused, sent = fake_slack.calls_to("chat.postMessage")[3:]
    assert len(refused) == len(slack_chat.IMAGE_WAITS) + 1
    assert sent["blocks"] == blocks(card) and len(fake_slack.messages("C2")) == 1
    assert "Slack refused the chart in a message to slack:T1/C2" in caplog.text


async def test_one_chart_is_uploaded_once_for_every_channel_until_slack_refuses_it(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slack_chat, "IMAGE_WAITS", ())  # one refusal is final here
    week = week_series(october.snapshots, date(2026, 10, 7))
    assert week is not None
    notifier, card = SlackNotifier(slack_client), Card("OpenRouter weekly")
    for channel in ("C1", "C2"):
        await notifier.send(ChannelRef("slack", "T1", channel), card, (), "rb-w", chart=week)
    (first,) = fake_slack.uploads  # one file, in both messages
    images = [b for c in fake_slack.calls_to("chat.postMessage") for b in c["blocks"]
              if b["type"] == "image"]
    assert [i["slack_file"]["id"] for i in images] == [first, first]

    fake_slack.then("chat.postMessage", Reply.json({"ok": False, "error": "invalid_blocks"}))
    await notifier.send(ChannelRef("slack", "T1", "C3"), card, (), "rb-w", chart=week)
    await notifier.send(ChannelRef("slack", "T1", "C4"), card, (), "rb-w", chart=week)
    assert len(fake_slack.uploads) == 2  # the refused file is not offered again
    last = fake_slack.calls_to("chat.postMessage")[-1]
    assert last["channel"] == "C4" and last["blocks"][-1]["slack_file"]["id"] != first


async def test_a_chart_many_sends_wait_for_is_drawn_and_uploaded_once(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    week = week_series(october.snapshots, date(2026, 10, 7))
    assert week is not None
    fresh = replace(week, footer="drawn once, for everyone")
    drawn_before = draws()
    notifier = SlackNotifier(slack_client)
    await asyncio.gather(notifier.prepare(fresh), *(
        notifier.send(ChannelRef("slack", "T1", f"C{n}"), Card("OpenRouter weekly"), (),
                      f"rb-{n}", chart=fresh) for n in range(8)))
    assert len(fake_slack.uploads) == 1 and draws() == drawn_before + 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 8


@pytest.mark.usefixtures("quick")
async def test_a_chart_file_slack_refuses_for_good_is_uploaded_afresh_for_the_next_answer(
        bot: Bot, fake_slack: FakeSlackAPI) -> None:
    async def tries(hook: str, n: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while len(fake_slack.calls_to(hook)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return fake_slack.calls_to(hook)

    await command(bot, "/rank", "qwen", "hooks/first")
    assert len(await tries("hooks/first", 1)) == 1
    (deleted,) = fake_slack.uploads
    fake_slack.processing = 3600.0  # deleted in Slack: never shown again; nor a new one, yet
    fake_slack._ready[deleted] = float("inf")
    await command(bot, "/rank", "qwen", "hooks/second")
    assert len(await tries("hooks/second", 5)) == 5  # given up
    fake_slack.processing = 0.0
    await command(bot, "/rank", "qwen", "hooks/third")
    (third,) = await tries("hooks/third", 1)
    assert len(fake_slack.uploads) == 2 and third["blocks"][0]["slack_file"]["id"] != deleted
