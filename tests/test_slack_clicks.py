"""Slack's buttons, end to end on loopback: alerts carry them; a click arrives as Slack sends it
(a signed form whose one field is the JSON payload in HTTP mode, the same payload in a Socket
Mode envelope), is acknowledged at once, and is answered to the clicker alone through its
response_url, by the real bolt app and slack_sdk against the fake Web API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.slack_blocks import blocks, fallback
from rankbot.adapters.slack_chat import SlackNotifier, connect_socket_mode
from rankbot.bot.admin import NOT_ADMIN
from rankbot.bot.cards import Card
from rankbot.bot.channels import ChannelRef, person_ref
from rankbot.bot.clicks import UNKNOWN
from rankbot.bot.commands import answer
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.slack_api import FakeSlackAPI, SocketLink, block_action, post_interaction
from tests.fakes.slack_bot import (
    ADMIN_AND_MEMBER,
    DEEPSEEK,
    QWEN,
    Bot,
    answered,
    pressed,
    slack_app,
)

pytestmark = pytest.mark.anyio
C1 = ChannelRef("slack", "T1", "C1")
CARD = Card("OpenRouter: 1 change", ("Seen 2026-10-08 09:00 UTC",), (), "Source: OpenRouter")


@pytest.fixture
def slack_users() -> dict[str, dict[str, Any]]:
    return ADMIN_AND_MEMBER


def chose(action: str, model: str) -> dict[str, Any]:
    """A menu's part of a block_actions payload: the option chosen."""
    return {"type": "static_select", "action_id": f"rankbot:{action}",
            "selected_option": {"text": {"type": "plain_text", "text": model, "emoji": False},
                                "value": model},
            "placeholder": {"type": "plain_text", "text": "Watch…", "emoji": False}}


# -- buttons on alerts -------------------------------------------------------------------------

async def test_an_alert_about_one_model_carries_details_mute_and_watch_buttons(
        slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    await SlackNotifier(slack_client).send(
        C1, CARD, ({"kind": "price_changed", "model": QWEN},), "rb-1")
    (posted,) = fake_slack.calls_to("chat.postMessage")
    assert posted["blocks"] == [*blocks(CARD), {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Details", "emoji": False},
         "action_id": f"rankbot:details:{QWEN}", "value": QWEN},
        {"type": "button", "text": {"type": "plain_text", "text": "Mute here", "emoji": False},
         "action_id": f"rankbot:mute:{QWEN}", "value": QWEN, "style": "danger"},
        {"type": "button", "text": {"type": "plain_text", "text": "Watch", "emoji": False},
         "action_id": f"rankbot:watch:{QWEN}", "value": QWEN, "style": "primary"}]}]
    assert posted["text"] == fallback(CARD)


async def test_an_alert_about_several_models_carries_a_menu_of_them_for_each_action(
        slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    changes = ({"kind": "price_changed", "model": QWEN}, {"kind": "rank_moved",
                                                          "model": DEEPSEEK},
               {"kind": "price_changed", "model": QWEN}, {"kind": "open_weight_share_changed"})
    await SlackNotifier(slack_client).send(C1, CARD, changes, "rb-2")
    (posted,) = fake_slack.calls_to("chat.postMessage")
    options = [{"text": {"type": "plain_text", "text": m, "emoji": False}, "value": m}
               for m in (QWEN, DEEPSEEK)]
    assert posted["blocks"][-1] == {"type": "actions", "elements": [
        {"type": "static_select", "action_id": f"rankbot:{action}", "options": options,
         "placeholder": {"type": "plain_text", "text": label, "emoji": False}}
        for action, label in (("details", "Details…"), ("mute", "Mute here…"),
                              ("watch", "Watch…"))]}


async def test_an_alert_about_no_model_has_no_buttons(
        slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    await SlackNotifier(slack_client).send(
        C1, CARD, ({"kind": "open_weight_share_changed"},), "rb-3")
    assert fake_slack.calls_to("chat.postMessage")[0]["blocks"] == blocks(CARD)


# -- clicks ------------------------------------------------------------------------------------

async def test_details_shows_the_models_rank_card_to_the_clicker_alone(bot: Bot) -> None:
    reply = await bot.click(pressed("details", QWEN))
    expected = answer("rank", QWEN, bot.store.snapshots, OCT_8).card
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert reply["blocks"] == blocks(expected) and reply["text"] == fallback(expected)


async def test_mute_here_is_refused_to_a_member_and_done_for_an_admin_with_an_undo(
        bot: Bot) -> None:
    with bot.store:
        bot.store.channels.subscribe(C1, "alerts", OCT_8)
    refused = await bot.click(pressed("mute", QWEN), user="UMEMBER")
    assert refused["response_type"] == "ephemeral" and NOT_ADMIN in refused["text"]
    subscription = bot.store.channels.subscription(C1)
    assert subscription is not None and subscription.rules.ignore == ()

    muted = await bot.click(pressed("mute", QWEN), user="UADMIN")
    subscription = bot.store.channels.subscription(C1)
    # its id and its permaslug (the rankings' name for it)
    assert subscription is not None and subscription.rules.ignore == (QWEN, f"{QWEN}-20260814")
    assert muted["response_type"] == "ephemeral" and "no longer told in this channel" in \
        muted["text"]
    assert muted["blocks"][-1] == {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Undo", "emoji": False},
         "action_id": f"rankbot:unmute:{QWEN}", "value": QWEN}]}
    audited = bot.store.db.execute(
        "SELECT who, setting FROM audit WHERE setting = 'ignore'").fetchall()
    assert audited == [("UADMIN", "ignore")]

    undone = await bot.click(pressed("unmute", QWEN), user="UADMIN")
    assert "heard here again" in undone["text"]
    subscription = bot.store.channels.subscription(C1)
    assert subscription is not None and subscription.rules.ignore == ()


async def test_watch_from_a_menu_follows_the_chosen_model_for_the_clicker(bot: Bot) -> None:
    reply = await bot.click(chose("watch", DEEPSEEK), user="UMEMBER")
    assert reply["response_type"] == "ephemeral" and f"(`{DEEPSEEK}`)" in reply["text"]
    assert reply["blocks"][-1]["elements"][0]["action_id"] == f"rankbot:unwatch:{DEEPSEEK}"
    mine = bot.store.channels.subscription(person_ref("slack", "T1", "UMEMBER"))
    assert mine is not None and mine.active and DEEPSEEK in mine.rules.watch
    # and the reply's own "Stop watching" button undoes it
    stopped = await bot.click(pressed("unwatch", DEEPSEEK), user="UMEMBER")
    assert f"Stopped watching `{DEEPSEEK}`" in stopped["text"]


async def test_a_control_rankbot_did_not_make_gets_a_private_no(bot: Bot) -> None:
    reply = await bot.click(pressed("launch", QWEN))
    assert reply["response_type"] == "ephemeral" and UNKNOWN in reply["text"]


async def test_a_click_with_a_bad_signature_is_refused(bot: Bot) -> None:
    reply = await post_interaction(bot.url, "wrong-secret", block_action(
        pressed("details", QWEN), user="UMEMBER", response_url=f"{bot.fake.base_url}hooks/x"))
    assert reply.status_code == 401
    await asyncio.sleep(0.1)
    assert bot.fake.calls_to("hooks/x") == []


async def test_socket_mode_acknowledges_a_click_and_answers_it_privately(
        october: UnitOfWork, fake_slack: FakeSlackAPI, slack_client: AsyncWebClient) -> None:
    async with SocketLink().running(fake_slack) as link:
        handler = await connect_socket_mode(slack_app(october, slack_client), "xapp-test")
        try:
            hook = "hooks/socket-click"
            await link.send("env-click", "interactive", block_action(
                pressed("details", QWEN), user="UMEMBER",
                response_url=fake_slack.base_url + hook))
            ack = await link.ack("env-click")
            reply = await answered(fake_slack, hook)
        finally:
            await handler.close_async()
    assert ack == {"envelope_id": "env-click"}  # acknowledged, with nothing to show
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert reply["blocks"] == blocks(answer("rank", QWEN, october.snapshots, OCT_8).card)


async def test_mute_in_a_channel_shared_with_another_organisation_mutes_its_one_subscription(
        bot: Bot) -> None:
    shared = ChannelRef("slack", "T2", "CSHARED")  # subscribed by the other organisation
    with bot.store:
        bot.store.channels.subscribe(shared, "alerts", OCT_8)
    muted = await bot.click(pressed("mute", QWEN), user="UADMIN", channel="CSHARED")
    assert "no longer told in this channel" in muted["text"]
    subscription = bot.store.channels.subscription(shared)
    assert subscription is not None and QWEN in subscription.rules.ignore
    assert bot.store.channels.subscription(ChannelRef("slack", "T1", "CSHARED")) is None
