"""rankbot's App Home tab, end to end on loopback: Slack's signed `app_home_opened` event (and
the same over Socket Mode) publishes the person's watches with a button each, the data's
freshness, the week's top 10 and, for an admin, the workspace's channels; a click on a button
there changes the watch and publishes the tab again."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.slack_blocks import HOME_BLOCKS, SECTION_TEXT, home_view
from rankbot.adapters.slack_chat import connect_socket_mode
from rankbot.bot.buttons import Button
from rankbot.bot.channels import ChannelRef, Subscription, person_ref
from rankbot.bot.home import Line, Section, channel_sections
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.loopback import Reply
from tests.fakes.slack_api import FakeSlackAPI, SocketLink, post_event
from tests.fakes.slack_bot import ADMIN_AND_MEMBER, DEEPSEEK, QWEN, SECRET, Bot, pressed, slack_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def slack_users() -> dict[str, dict[str, Any]]:
    return ADMIN_AND_MEMBER


def opened(user: str, tab: str = "home") -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "DHOME", "tab": tab,
            "event_ts": "1.000001"}


async def open_home(bot: Bot, user: str) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.publish"))
    reply = await post_event(bot.url, SECRET, opened(user))
    assert reply.status_code == 200  # acknowledged; the tab is published after (lazily)
    deadline = asyncio.get_running_loop().time() + 10
    while len(bot.fake.calls_to("views.publish")) == before:
        assert asyncio.get_running_loop().time() < deadline, "the Home tab was not published"
        await asyncio.sleep(0.01)
    (published,) = [c for c in bot.fake.calls_to("views.publish") if c["user_id"] == user][-1:]
    view: dict[str, Any] = published["view"]
    return view


def headers(view: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]


async def test_the_home_tab_shows_a_members_watches_with_buttons_the_data_and_the_top_10(
        bot: Bot) -> None:
    await bot.command("/watch", "qwen")
    await bot.command("/watch", DEEPSEEK)
    view = await open_home(bot, "UMEMBER")
    assert view["type"] == "home"
    assert headers(view) == ["Your watches", "Data", "Top 10 for the 7 days 2026-10-01 – "
                             "2026-10-07"]  # no channels: not an admin
    watches = [b for b in view["blocks"] if "accessory" in b]
    assert watches == [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"`{model}` — {name}"},
         "accessory": {"type": "button", "text": {"type": "plain_text",
                                                  "text": "Stop watching", "emoji": False},
                       "action_id": f"rankbot:unwatch:{model}", "value": model}}
        for model, name in ((QWEN, "Qwen: Qwen3.8 27B"),
                            (DEEPSEEK, "DeepSeek: DeepSeek V4 Flash 0423"))]
    texts = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
    assert texts[2] == ("prices as of 2026-08-22 18:35 UTC (stale: 46 days old); rankings as "
                        "of 2026-10-07.")
    assert texts[3].startswith("1. ▲1 deepseek/deepseek-v4.1-flash-20260910 — 11.1T tokens")
    assert len(texts[3].splitlines()) == 10  # the top 10, one section
    assert view["blocks"][-1]["elements"][0]["text"].endswith(
        "prices as of 2026-08-22 18:35 UTC (stale: 46 days old)")


async def test_an_admin_also_sees_the_channels_of_the_workspace_with_their_rules(
        bot: Bot) -> None:
    await bot.command("/rankbot", "subscribe", user="UADMIN")
    await bot.command("/rankbot", "set top_n 5", user="UADMIN")
    with bot.store:  # another workspace's channel
        bot.store.channels.subscribe(ChannelRef("slack", "T2", "COTHER"), "all", OCT_8)
    view = await open_home(bot, "UADMIN")
    assert headers(view)[-1] == "Channels you manage"
    assert view["blocks"][-1] == {"type": "section", "text": {
        "type": "mrkdwn", "text": "<#C1>: all; `top_n` = 5"}}  # T1's only, linked
    assert "Channels you manage" not in headers(await open_home(bot, "UMEMBER"))


async def test_when_slack_cannot_say_who_is_an_admin_the_tab_is_a_members(
        bot: Bot, fake_slack: FakeSlackAPI) -> None:
    fake_slack.then("users.info", Reply.json({"ok": False, "error": "ratelimited"}, 429,
                                             **{"Retry-After": "30"}))
    view = await open_home(bot, "UADMIN")
    assert "Channels you manage" not in headers(view)


async def test_only_the_home_tab_is_published(bot: Bot, fake_slack: FakeSlackAPI) -> None:
    reply = await post_event(bot.url, SECRET, opened("UMEMBER", tab="messages"))
    assert reply.status_code == 200
    assert fake_slack.calls_to("views.publish") == []


async def test_stop_watching_in_the_home_tab_publishes_it_again_without_the_watch(
        bot: Bot) -> None:
    await bot.command("/watch", "qwen")
    await bot.command("/watch", DEEPSEEK)
    view = await bot.click_home(pressed("unwatch", QWEN, "Stop watching"))
    assert [b["accessory"]["value"] for b in view["blocks"] if "accessory" in b] == [DEEPSEEK]
    mine = bot.store.channels.subscription(person_ref("slack", "T1", "UMEMBER"))
    assert mine is not None and QWEN not in mine.rules.watch


async def test_socket_mode_publishes_the_home_tab(
        october: UnitOfWork, fake_slack: FakeSlackAPI, slack_client: AsyncWebClient) -> None:
    async with SocketLink().running(fake_slack) as link:
        handler = await connect_socket_mode(slack_app(october, slack_client), "xapp-test")
        try:
            await link.send("env-home", "events_api", {
                "token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                "event": opened("UMEMBER"), "event_id": "Ev2", "event_time": 1})
            assert await link.ack("env-home") == {"envelope_id": "env-home"}
            for _ in range(200):
                if "UMEMBER" in fake_slack.homes:
                    break
                await asyncio.sleep(0.01)
        finally:
            await handler.close_async()
    assert headers(fake_slack.homes["UMEMBER"])[0] == "Your watches"


def test_the_home_view_stays_within_slacks_100_blocks() -> None:
    many = tuple(Line(f"`m/{i}`", Button("Stop watching", "unwatch", f"m/{i}"))
                 for i in range(150))
    view = home_view((Section("Your watches", many, "150"), Section("Data", (Line("a"),))))
    assert len(view["blocks"]) == HOME_BLOCKS
    assert view["blocks"][1]["accessory"]["value"] == "m/0"


def section_texts(view: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]


def test_the_home_tab_keeps_to_slacks_limits_with_long_names_and_many_mutes() -> None:
    long_name = Line("`evil/model` — " + "N" * 4000, Button("Stop watching", "unwatch", "x/y"))
    assert max(map(len, section_texts(home_view([Section("Your watches", (long_name,))])))) \
        <= SECTION_TEXT
    ignore = tuple(p for n in range(60) for p in (f"vendor{n}/model-{n}-large",
                                                   f"vendor{n}/model-{n}-large-20260101"))
    channels = [Subscription(n, ChannelRef("slack", "T1", f"C{n}"), "all",
                             replace(DEFAULT_RULES, ignore=ignore), True, None, OCT_8)
                for n in range(25)]
    view = home_view(list(channel_sections(channels)))
    texts = section_texts(view)
    assert max(map(len, texts)) <= SECTION_TEXT and len(view["blocks"]) <= HOME_BLOCKS
    shown = "\n".join(texts)
    assert all(f"<#C{n}>" in shown for n in range(20))  # each channel its own section
    assert "…and 5 more" in shown
    assert view["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "Channels you manage", "emoji": False}}


@pytest.mark.parametrize("error", ["not_enabled", "invalid_arguments"])
async def test_a_home_tab_slack_refuses_is_logged_and_the_event_still_acknowledged(
        bot: Bot, fake_slack: FakeSlackAPI, caplog: pytest.LogCaptureFixture, error: str
        ) -> None:
    fake_slack.then("views.publish", Reply.json({"ok": False, "error": error}))
    reply = await post_event(bot.url, SECRET, opened("UMEMBER"))
    assert reply.status_code == 200  # never a 500, which Slack would retry
    deadline = asyncio.get_running_loop().time() + 10
    while "could not publish the Home tab" not in caplog.text:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    (logged,) = [r for r in caplog.records if "Home tab" in r.getMessage()]
    assert logged.exc_info is not None and error in str(logged.exc_info[1])
