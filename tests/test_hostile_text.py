"""Only rankbot's own markup is markup: a model whose name is a ping, a mention and a masked link
goes through an alert, the weekly digest and the slash commands on Slack and on Discord, and
every payload the fakes receive shows it as text (Slack: `&<>` escaped, in the `text` fallback
too; Discord: markdown, links and mentions escaped, and no mention allowed to ping)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import discord
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.discord_chat import DiscordContext, DiscordNotifier, build_tree, embeds
from rankbot.adapters.slack_blocks import blocks, fallback
from rankbot.adapters.slack_chat import SlackNotifier
from rankbot.bot.cards import changes_card
from rankbot.bot.changes import ProviderAdded, ProviderDegraded
from rankbot.bot.channels import ChannelRef
from rankbot.bot.delivery import Courier, Pacer
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.polling import poll
from rankbot.bot.ports import InPlace
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import load
from tests.fakes.clock import OCT_8, Clock, NoWait
from tests.fakes.discord_api import APP_ID, FakeDiscordAPI
from tests.fakes.discord_bot import interaction, option
from tests.fakes.hostile import (
    DISCORD_SAFE,
    HOSTILE,
    RANKED,
    SLACK_SAFE,
    discord_safe,
    hostile_catalog,
    slack_safe,
)
from tests.fakes.slack_api import FakeSlackAPI, post_command
from tests.fakes.slack_bot import SECRET, serving

pytestmark = pytest.mark.anyio
SLACK, DISCORD = ChannelRef("slack", "T1", "C1"), ChannelRef("discord", "111", "501")
MONDAY = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store() -> AsyncIterator[UnitOfWork]:
    """A baseline catalog and the real export; both channels subscribed; then the hostile
    catalog polled, which queues one alert for each channel."""
    repository = load(UnitOfWork.open(":memory:"), "2026-08-22T124646Z")
    for ref in (SLACK, DISCORD):
        with repository:
            repository.channels.subscribe(ref, "all", OCT_8)

    async def fetch() -> bytes:
        return hostile_catalog()

    outcome, = await poll(repository, OCT_8, DEFAULT_RULES, catalog=fetch)
    assert outcome.fault is None
    yield repository
    repository.close()


async def test_alerts_and_the_digest_reach_both_platforms_as_text(
        store: UnitOfWork, fake_slack: FakeSlackAPI, slack_client: AsyncWebClient,
        fake_discord: FakeDiscordAPI, discord_client: discord.Client) -> None:
    notifiers = {"slack": SlackNotifier(slack_client),
                 "discord": DiscordNotifier(discord_client.http, int(APP_ID))}
    waits = NoWait()
    clock = Clock(OCT_8)
    courier = Courier(store, notifiers, clock, Pacer(waits.clock, waits.sleep))
    assert (await courier.deliver_due()).sent == 2  # the alerts
    assert queue_due_digests(store, MONDAY) == 2
    clock.at = MONDAY
    assert (await courier.deliver_due()).sent == 2  # the digests

    alert, digest = fake_slack.calls_to("chat.postMessage")
    for post in (alert, digest):
        slack_safe(post)
    assert f"＋ evil/model ({SLACK_SAFE}):" in slack_safe(alert["blocks"])
    assert "retires on 2026-10-20" in slack_safe(alert["blocks"])  # the sunsets, safe too
    assert SLACK_SAFE in slack_safe(digest["blocks"])

    alert, digest = fake_discord.bodies("POST", r"/channels/501/messages")
    assert f"＋ evil/model ({DISCORD_SAFE}" in discord_safe(alert)
    assert DISCORD_SAFE in discord_safe(digest)


@pytest.mark.parametrize(("command", "text"), [
    ("/top", "50"), ("/rank", "v4-flash-0731"), ("/price", RANKED), ("/new", "90"),
    ("/sunsets", "30"), ("/best", "")])
async def test_slash_answers_show_the_name_as_text_on_slack(
        store: UnitOfWork, fake_slack: FakeSlackAPI, slack_client: AsyncWebClient,
        command: str, text: str) -> None:
    async with serving(store, fake_slack, slack_client) as bot:
        reply = await post_command(bot.url, SECRET, command, text, user="UMEMBER")
    body = reply.json()
    assert body["response_type"] == "in_channel"
    assert SLACK_SAFE in slack_safe(body["blocks"])
    # /top, /sunsets and /best list names in their lines, which the `text` fallback repeats
    assert command not in ("/top", "/sunsets", "/best") or SLACK_SAFE in body["text"]


@pytest.mark.parametrize(("name", "options"), [
    ("top", [option("n", 50, kind=4)]), ("rank", [option("query", "v4-flash-0731")]),
    ("price", [option("query", RANKED)]), ("new", [option("days", 90, kind=4)]),
    ("sunsets", [option("days", 30, kind=4)]), ("best", [])])
async def test_slash_answers_show_the_name_as_text_on_discord(
        store: UnitOfWork, fake_discord: FakeDiscordAPI, discord_client: discord.Client,
        name: str, options: list[dict[str, Any]]) -> None:
    tree = build_tree(discord_client, DiscordContext(InPlace(store), lambda: OCT_8))
    await tree._call(interaction(discord_client, name, options))
    (callback,) = fake_discord.bodies("POST", r"/interactions/9001/interaction-token/callback")
    assert DISCORD_SAFE in discord_safe(callback["data"])


def test_provider_names_reach_both_platforms_as_text() -> None:
    changes = [ProviderAdded(RANKED, "evil/tag", HOSTILE, Decimal(1), Decimal(2), HOSTILE, 1000),
               ProviderDegraded(RANKED, "evil/tag", HOSTILE, Decimal("90.0"), Decimal(95))]
    card = changes_card(changes, OCT_8, None)
    slack = slack_safe({"blocks": blocks(card), "text": fallback(card)})
    assert SLACK_SAFE in slack
    discord_text = discord_safe({"allowed_mentions": {"parse": []},
                                 "embeds": [e.to_dict() for e in embeds(card)]})
    assert DISCORD_SAFE in discord_text
