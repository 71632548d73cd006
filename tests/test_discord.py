"""Discord: the real command tree driven by interactions built from raw payloads (as discord.py's
own tests build them), answering through discord.py's HTTP client to a fake REST server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest
from click.testing import CliRunner

from rankbot.adapters.discord_chat import DiscordNotifier, application_id, embeds, intents
from rankbot.bot.admin import NOT_ADMIN
from rankbot.bot.cards import LIMITS, Card, Field, fit
from rankbot.bot.channels import ChannelRef
from rankbot.bot.commands import COMMANDS, answer_with_chart
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.ports import DeliveryError
from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.discord_api import APP_ID, TOKEN, FakeDiscordAPI, rate_limited
from tests.fakes.discord_bot import (
    CHANNEL,
    GUILD,
    MANAGE_GUILD,
    discord_courier,
    interaction,
    option,
)
from tests.fakes.loopback import Reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def client(discord_client: discord.Client) -> discord.Client:
    return discord_client


async def call(tree: discord.app_commands.CommandTree[discord.Client],
               request: discord.Interaction, fake: FakeDiscordAPI) -> dict[str, Any]:
    """Run the tree on one interaction; return the callback Discord received."""
    await tree._call(request)
    (callback,) = fake.bodies("POST", r"/interactions/9001/interaction-token/callback")
    return dict(callback)


@pytest.mark.parametrize(("name", "options", "command", "text"), [
    ("rank", [option("query", "qwen")], "rank", "qwen 30d"),
    ("rank", [], "rank", ""),
    ("price", [option("query", "qwen/qwen3.8-27b"), option("versus", "openai/gpt-4.1")],
     "price", "qwen/qwen3.8-27b vs openai/gpt-4.1"),
    ("top", [option("n", 5, kind=4), option("period", "day")], "top", "5 day"),
    ("movers", [option("period", "week")], "movers", "week"),
    ("new", [option("days", 30, kind=4)], "new", "30"),
])
async def test_each_command_answers_in_the_channel_through_the_core(
        client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI, october: UnitOfWork,
        name: str, options: list[dict[str, Any]], command: str, text: str) -> None:
    callback = await call(tree, interaction(client, name, options), fake_discord)
    expected = answer_with_chart(command, text, october.snapshots, OCT_8)
    assert expected.public
    shown, attached = [e.to_dict() for e in embeds(expected.card)], {}
    if expected.chart is not None:  # drawn and attached: tests/test_discord_charts.py
        shown[0]["image"] = {"url": "attachment://chart.png"}
        attached = {"attachments": [{"id": 0, "filename": "chart.png"}]}
    assert callback == {"type": 4, "data": {
        "embeds": shown, "tts": False, "content": None, "allowed_mentions": {"parse": []},
        **attached}}  # not ephemeral: in the channel


async def test_errors_are_only_for_the_asker(client: discord.Client, tree: Any,
                                            fake_discord: FakeDiscordAPI) -> None:
    callback = await call(tree, interaction(client, "rank", [option("query", "qwn")]),
                          fake_discord)
    assert callback["data"]["flags"] == discord.MessageFlags(ephemeral=True).value
    assert callback["data"]["embeds"][0]["description"] == (
        "No model matches `qwn`. Did you mean `qwen`?")


async def test_autocomplete_offers_model_names_best_first(
        client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI) -> None:
    request = interaction(client, "rank", [option("query", "deepseek", focused=True)], kind=4)
    callback = await call(tree, request, fake_discord)
    assert callback["type"] == 8
    choices = callback["data"]["choices"]
    assert 1 <= len(choices) <= 25
    assert choices[0] == {"name": "deepseek/deepseek-v4.1-flash-20260910",
                          "value": "deepseek/deepseek-v4.1-flash-20260910"}
    assert all(len(c["name"]) <= 100 and "deepseek" in c["value"] for c in choices)
    empty = interaction(client, "rank", [option("query", "", focused=True)], kind=4)
    fake_discord._server.requests.clear()
    top = (await call(tree, empty, fake_discord))["data"]["choices"]
    assert len(top) == 25 and top[0]["value"] == "deepseek/deepseek-v4.1-flash-20260910"


async def test_the_admin_group_is_hidden_and_checked_again_at_run_time(
        client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI, october: UnitOfWork
        ) -> None:
    group = next(c for c in tree.get_commands() if c.name == "rankbot")
    assert group.default_permissions == discord.Permissions(manage_guild=True)
    assert group.guild_only
    # A server can override who sees the group; a member without Manage Server still can't.
    refused = await call(tree, interaction(client, "subscribe", [], group="rankbot"),
                         fake_discord)
    assert refused["data"]["embeds"][0]["description"] == NOT_ADMIN
    assert refused["data"]["flags"] == discord.MessageFlags(ephemeral=True).value
    ref = ChannelRef("discord", GUILD, CHANNEL)
    assert october.channels.subscription(ref) is None
    fake_discord._server.requests.clear()
    allowed = await call(tree, interaction(client, "set", [option("key", "top_n"),
                                                           option("value", "10")],
                                           group="rankbot", permissions=MANAGE_GUILD),
                         fake_discord)
    assert "Subscribe this channel first" in allowed["data"]["embeds"][0]["description"]
    fake_discord._server.requests.clear()
    await call(tree, interaction(client, "subscribe", [option("mode", "alerts")],
                                 group="rankbot", permissions=MANAGE_GUILD), fake_discord)
    subscription = october.channels.subscription(ref)
    assert subscription is not None and subscription.mode == "alerts"
    assert october.channels.audit_log(ref)[0]["who"] == "333"


def test_embeds_are_exact_and_within_discords_limits() -> None:
    card = Card("OpenRouter: 1 change", ("Seen 2026-10-08 09:00 UTC",),
                (Field("Prices", "qwen/qwen3-coder output $1.00 → $0.80 per 1M (−20.0%)"),),
                "Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0")
    assert [e.to_dict() for e in embeds(card)] == [{
        "title": "OpenRouter: 1 change", "description": "Seen 2026-10-08 09:00 UTC",
        "color": 0x1D3557, "type": "rich", "flags": 0,
        "fields": [{"name": "Prices", "value":
                    "qwen/qwen3-coder output $1.00 → $0.80 per 1M (−20.0%)", "inline": False}],
        "footer": {"text": ("Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · "
                            "CC BY 4.0")}}]
    huge = fit(Card("T" * 400, tuple(f"line {i}" * 20 for i in range(900)),
                    tuple(Field(f"field {i}", "\n".join(["v" * 90] * 40)) for i in range(60)),
                    "f" * 3000))
    (embed,) = embeds(huge)
    assert len(embed) <= LIMITS.total and len(embed.fields) <= 25
    assert len(embed.title or "") <= 256 and len(embed.description or "") <= 4096
    assert all(len(f.value or "") <= 1024 for f in embed.fields)


async def test_alerts_and_digests_reach_discord_and_429_and_403_are_handled(
        client: discord.Client, fake_discord: FakeDiscordAPI, october: UnitOfWork) -> None:
    one, gone = ChannelRef("discord", GUILD, "501"), ChannelRef("discord", GUILD, "502")
    for ref in (one, gone):
        with october:
            subscription = october.channels.subscribe(ref, "alerts", OCT_8)
        with october:
            october.outbox.enqueue(subscription, "test:1", kind="alert",
                                   card=Card(f"Hello {ref.channel}"), changes=[], at=OCT_8)
    fake_discord.then("POST /channels/501/messages", rate_limited(0.05))
    fake_discord.then("POST /channels/502/messages", Reply.json(
        {"message": "Missing Access", "code": 50001}, 403))
    courier = discord_courier(client, october)
    report = await courier.deliver_due()
    assert report.sent == 1 and report.paused == [str(gone)]
    posted = fake_discord.bodies("POST", r"/channels/501/messages")
    assert len(posted) == 2  # the 429, waited out by discord.py, then the message once
    assert posted[-1]["embeds"] == [e.to_dict() for e in embeds(Card("Hello 501"))]
    paused = october.channels.subscription(gone)
    assert paused is not None and paused.paused == "Missing Access"
    assert (await courier.deliver_due()).sent == 0


def test_the_cli_prints_commands_and_the_invite_and_syncs(
        fake_discord: FakeDiscordAPI, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DISCORD_BOT_TOKEN": TOKEN, "DISCORD_API_URL": fake_discord.base_url}
    runner = CliRunner()
    commands = json.loads(runner.invoke(cli, ["discord", "commands"], env=env).stdout)
    # Every query command but /help (Discord lists them itself), then the admin group.
    assert [c["name"] for c in commands] == [*(n for n in COMMANDS if n != "help"), "rankbot"]
    admin = commands[-1]
    assert int(admin["default_member_permissions"]) == MANAGE_GUILD
    assert [o["name"] for o in admin["options"]] == [
        "subscribe", "unsubscribe", "config", "set", "preview", "status"]
    assert any(o.get("autocomplete") for o in commands[0]["options"])
    invite = runner.invoke(cli, ["discord", "invite"], env=env).stdout.strip()
    assert invite.startswith(f"https://discord.com/oauth2/authorize?client_id={APP_ID}")
    assert "scope=bot+applications.commands" in invite
    # view channel, send messages, embed links, attach files (the digest's chart), history
    assert "permissions=117760" in invite
    assert discord.Permissions(117760) == discord.Permissions(
        view_channel=True, send_messages=True, embed_links=True, attach_files=True,
        read_message_history=True)
    synced = runner.invoke(cli, ["discord", "sync", "--guild", GUILD], env=env)
    assert synced.exit_code == 0, synced.output
    assert synced.stdout == f"Synced {len(commands)} commands to server {GUILD}.\n"
    (sent,) = fake_discord.bodies("PUT", rf"/applications/{APP_ID}/guilds/{GUILD}/commands")
    assert [c["name"] for c in sent] == [c["name"] for c in commands]
    assert TOKEN not in synced.output


def test_a_refused_token_is_one_clear_error(fake_discord: FakeDiscordAPI, tmp_path: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fake_discord.then("GET /users/@me", Reply.json({"message": "401: Unauthorized",
                                                    "code": 0}, 401))
    result = CliRunner().invoke(cli, ["discord", "sync"], env={
        "DISCORD_BOT_TOKEN": TOKEN, "DISCORD_API_URL": fake_discord.base_url})
    assert result.exit_code == 1
    assert result.stderr == ("Error: DISCORD_BOT_TOKEN was refused by Discord (401): check the "
                             "token on the Bot page of your application\n")


def test_the_application_id_is_read_from_the_token_and_no_intent_is_privileged() -> None:
    assert application_id(TOKEN) == int(APP_ID)
    privileged = discord.Intents(members=True, presences=True, message_content=True)
    assert intents().value & privileged.value == 0


async def test_a_repeated_nonce_is_dropped_and_a_send_in_doubt_is_found_by_its_embed(
        client: discord.Client, fake_discord: FakeDiscordAPI) -> None:
    ref, card = ChannelRef("discord", GUILD, "504"), Card("Hello", ("a line",))
    notifier = DiscordNotifier(client.http, int(APP_ID))
    began = datetime.now(UTC)
    await notifier.send(ref, card, (), "rb-one")
    await notifier.send(ref, card, (), "rb-one")  # a retry within minutes: Discord drops it
    assert len(fake_discord.messages("504")) == 1
    first, _ = fake_discord.bodies("POST", r"/channels/504/messages")
    assert (first["nonce"], first["enforce_nonce"]) == ("rb-one", True)

    assert await notifier.find(ref, card, "rb-one", began)
    assert not await notifier.find(ref, Card("Another"), "rb-two", began)
    assert not await notifier.find(ref, card, "rb-one", began + timedelta(minutes=5))
    assert not await DiscordNotifier(client.http, 12345).find(ref, card, "rb-one", began)
    fake_discord.then("GET /channels/504/messages", Reply.json(
        {"message": "Missing Access", "code": 50001}, 403))
    with pytest.raises(DeliveryError) as cannot_say:  # no Read Message History there
        await notifier.find(ref, card, "rb-one", began)
    assert cannot_say.value.kind == "permanent"


async def test_the_weekly_digest_reaches_discord(
        client: discord.Client, fake_discord: FakeDiscordAPI, october: UnitOfWork) -> None:
    ref = ChannelRef("discord", GUILD, "503")
    with october:
        october.channels.subscribe(ref, "digest", OCT_8)
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    assert queue_due_digests(october, monday) == 1
    courier = discord_courier(client, october, monday)
    assert (await courier.deliver_due()).sent == 1
    (body,) = fake_discord.bodies("POST", r"/channels/503/messages")
    (embed,) = body["embeds"]
    assert embed["title"] == "OpenRouter weekly: Oct 1 – Oct 7, 2026"
    assert embed["footer"]["text"].endswith("as of 2026-10-07 · CC BY 4.0")
