"""Outside text in Slack's new surfaces stays text: a model whose id or name is a ping, a mention
or a link reaches buttons, menus, the Home tab, a chart's alt text, `/watch` replies and the
`text` fallback as text. Button labels and menu options are plain_text (never parsed), carrying
the id exactly as it is (it is also what comes back on a click); every mrkdwn text, alt text
and `text` fallback has `&`, `<` and `>` escaped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.slack_chat import SlackNotifier
from rankbot.bot.cards import Card
from rankbot.bot.channels import ChannelRef
from rankbot.bot.polling import poll
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import load
from tests.fakes.clock import OCT_8
from tests.fakes.hostile import HOSTILE, SLACK_SAFE, hostile_catalog
from tests.fakes.slack_api import FakeSlackAPI, post_command, post_event
from tests.fakes.slack_bot import SECRET, Bot, answered, pressed, serving

pytestmark = pytest.mark.anyio
EVIL_IDS = ("evil/<!channel>", "evil/<@U1>&")  # author/name, no spaces: ids a button carries
C1 = ChannelRef("slack", "T1", "C1")


@pytest.fixture
async def bot(fake_slack: FakeSlackAPI, slack_client: AsyncWebClient) -> AsyncIterator[Bot]:
    """The real export and a catalog where `evil/model` and a ranked model are named
    HOSTILE (tests/fakes/hostile.py)."""
    store = load(UnitOfWork.open(":memory:"), "2026-08-22T124646Z")

    async def fetch() -> bytes:
        return hostile_catalog()

    (outcome,) = await poll(store, OCT_8, DEFAULT_RULES, catalog=fetch)
    assert outcome.fault is None
    async with serving(store, fake_slack, slack_client) as served:
        yield served
    store.close()


def texts(payload: Any, kind: str) -> list[str]:
    """Every text object of a kind (`plain_text`, `mrkdwn`) in a payload, at any depth."""
    found: list[str] = []
    if isinstance(payload, dict):
        if payload.get("type") == kind and isinstance(payload.get("text"), str):
            found.append(payload["text"])
        for value in payload.values():
            found += texts(value, kind)
    elif isinstance(payload, list):
        for value in payload:
            found += texts(value, kind)
    return found


def markup_safe(payload: dict[str, Any]) -> None:
    """Where Slack reads markup (mrkdwn, the `text` fallback, alt text), nothing pings or
    links: raw outside text is left only in plain_text and in the ids carried back."""
    read = json.dumps(_unparsed_removed(payload), ensure_ascii=False)
    assert "<!" not in read and "<@" not in read, read


def _unparsed_removed(payload: Any) -> Any:
    if isinstance(payload, list):
        return [_unparsed_removed(v) for v in payload]
    if not isinstance(payload, dict):
        return payload
    if payload.get("type") == "plain_text":
        return {}
    return {k: _unparsed_removed(v) for k, v in payload.items()
            if k not in ("value", "action_id")}


async def test_buttons_and_menus_carry_hostile_ids_as_plain_text(
        slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    card = Card(f"Alert: {HOSTILE}", (HOSTILE,))
    notifier = SlackNotifier(slack_client)
    await notifier.send(C1, card, ({"kind": "price_changed", "model": EVIL_IDS[0]},), "rb-1")
    await notifier.send(C1, card, tuple({"kind": "price_changed", "model": m}
                                        for m in EVIL_IDS), "rb-2")
    one, several = fake_slack.calls_to("chat.postMessage")
    for posted in (one, several):
        markup_safe(posted)
        assert posted["text"] == f"Alert: {SLACK_SAFE}\n{SLACK_SAFE}"
    assert one["blocks"][-1]["elements"][0] == {
        "type": "button", "text": {"type": "plain_text", "text": "Details", "emoji": False},
        "action_id": "rankbot:details:evil/<!channel>", "value": "evil/<!channel>"}
    menu = several["blocks"][-1]["elements"][0]
    assert menu["options"] == [{"text": {"type": "plain_text", "text": m, "emoji": False},
                                "value": m} for m in EVIL_IDS]


async def test_the_home_tab_and_watch_replies_show_a_hostile_name_as_text(
        bot: Bot, fake_slack: FakeSlackAPI) -> None:
    watched = await bot.command("/watch", "evil/model")
    markup_safe(watched)
    assert f"Watching {SLACK_SAFE} (`evil/model`)" in watched["text"]
    listed = await bot.command("/watch", "")
    markup_safe(listed)
    assert f"`evil/model` — {SLACK_SAFE}" in listed["text"]

    assert (await post_event(bot.url, SECRET, {
        "type": "app_home_opened", "user": "UMEMBER", "channel": "D1", "tab": "home"})
            ).status_code == 200
    deadline = asyncio.get_running_loop().time() + 10
    while "UMEMBER" not in fake_slack.homes:  # published after the event is acknowledged
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    view = fake_slack.homes["UMEMBER"]
    markup_safe(view)
    (line,) = [b for b in view["blocks"] if "accessory" in b]
    assert line["text"] == {"type": "mrkdwn", "text": f"`evil/model` — {SLACK_SAFE}"}
    assert line["accessory"]["value"] == "evil/model"
    assert any(SLACK_SAFE in t for t in texts(view, "mrkdwn"))  # the top 10's ranked one


async def test_a_chart_and_a_details_card_about_a_hostile_model_are_text(bot: Bot) -> None:
    reply = await post_command(bot.url, SECRET, "/rank", "v4-flash-0731", user="UMEMBER",
                               response_url=bot.fake.base_url + "hooks/hostile-chart")
    markup_safe(reply.json())
    chart = await answered(bot.fake, "hooks/hostile-chart", within=30)
    markup_safe(chart)
    (image,) = chart["blocks"]
    assert image["alt_text"].startswith(SLACK_SAFE) and chart["text"].startswith(SLACK_SAFE)
    details = await bot.click(pressed("details", "evil/model"))
    markup_safe(details)
    assert SLACK_SAFE in json.dumps(details["blocks"], ensure_ascii=False)
