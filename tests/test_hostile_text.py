"""Only rankbot's own markup is markup: a model whose name is a ping, a mention and a masked link
goes through an alert, the weekly digest and the slash commands on Slack and on Discord, and
every payload the fakes receive shows it as text (Slack: `&<>` escaped, in the `text` fallback
too; Discord: markdown, links and mentions escaped, and no mention allowed to ping)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import discord
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.discord_chat import DiscordContext, DiscordNotifier, build_tree, embeds
from rankbot.adapters.slack_chat import (
    PATH,
    SlackAdmins,
    SlackContext,
    SlackNotifier,
    blocks,
    build_app,
    fallback,
    serve_http,
)
from rankbot.bot.cards import changes_card
from rankbot.bot.changes import ProviderAdded, ProviderDegraded
from rankbot.bot.channels import ChannelRef
from rankbot.bot.delivery import Courier, Pacer
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.polling import poll
from rankbot.bot.ports import InPlace
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import catalog_bytes, load
from tests.fakes.discord_api import APP_ID, FakeDiscordAPI
from tests.fakes.slack_api import FakeSlackAPI, post_command
from tests.test_commands import OCT_8
from tests.test_delivery import Clock, NoWait
from tests.test_discord import interaction, option

pytestmark = pytest.mark.anyio
HOSTILE = "<!channel> <@U1> @everyone [click](https://evil.example) `x` *b*"
SLACK_SAFE = "&lt;!channel&gt; &lt;@U1&gt; @everyone [click](https://evil.example) `x` *b*"
# Discord: mentions and `<` escaped, @everyone broken by a zero-width space, the masked link's
# bracket escaped; a code span stays a code span (nothing renders inside one).
DISCORD_SAFE = "\\<!channel> \\<@U1> @\u200beveryone \\[click](https://evil.example) `x` \\*b"
RANKED = "deepseek/deepseek-v4-flash-0731"  # #8 of the real export's week to 2026-10-07
SECRET = "hostile-test-signing-secret"
SLACK, DISCORD = ChannelRef("slack", "T1", "C1"), ChannelRef("discord", "111", "501")
MONDAY = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)


def hostile_catalog() -> bytes:
    """The newest real catalog, with a ranked model renamed and a new model added, both named
    HOSTILE; both retire on 2026-10-20 (a sunset in the alert and in `/sunsets`) and carry the
    real model's quality indices (so `/best` lists them)."""
    payload = json.loads(catalog_bytes("2026-08-22T183539Z"))
    ranked = next(e for e in payload["data"] if e["id"] == RANKED)
    ranked["name"] = HOSTILE
    ranked["expiration_date"] = "2026-10-20"
    payload["data"].append({**ranked, "id": "evil/model", "canonical_slug": "evil/model",
                            "name": HOSTILE})
    return json.dumps(payload).encode()


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


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI().running() as fake:
        yield fake


def slack_safe(payload: Any) -> str:
    """The payload as sent, after checking that nothing in it can ping or link."""
    text = json.dumps(payload, ensure_ascii=False)
    assert "<!channel>" not in text and "<@U1>" not in text
    return text


def discord_safe(payload: dict[str, Any]) -> str:
    """The text of the payload's embeds, after checking that none of it can ping or link."""
    assert payload["allowed_mentions"] == {"parse": []}
    text = "\n".join(str(value) for embed in payload["embeds"] for value in _texts(embed))
    assert not re.search(r"(?<!\\)<[!@#]", text)  # every `<` of a mention is escaped
    assert "@everyone" not in text and not re.search(r"(?<!\\)\[click\]", text)
    return text


def _texts(embed: dict[str, Any]) -> list[object]:
    return [embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text"),
            *(part for field in embed.get("fields", []) for part in field.values())]


async def test_alerts_and_the_digest_reach_both_platforms_as_text(
        store: UnitOfWork, fake_slack: FakeSlackAPI, fake_discord: FakeDiscordAPI,
        discord_client: discord.Client) -> None:
    notifiers = {"slack": SlackNotifier(AsyncWebClient(token="xoxb-t",
                                                       base_url=fake_slack.base_url)),
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
        store: UnitOfWork, fake_slack: FakeSlackAPI, command: str, text: str) -> None:
    client = AsyncWebClient(token="xoxb-t", base_url=fake_slack.base_url)
    context = SlackContext(InPlace(store), SlackAdmins(client, frozenset()), lambda: OCT_8)
    runner = await serve_http(build_app(client, SECRET, context), 0, "127.0.0.1")
    host, port = runner.addresses[0][:2]
    try:
        reply = await post_command(f"http://{host}:{port}{PATH}", SECRET, command, text,
                                   user="UMEMBER")
    finally:
        await runner.cleanup()
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
