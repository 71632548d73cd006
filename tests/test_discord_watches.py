"""Discord: personal watches. `/watch` and `/unwatch` in a server and in the person's direct
messages with the bot (interactions as Discord sends them there: `user`, not `member`, and a DM
channel), the same person in both; their alerts in their direct messages, with their own
buttons; and a person who cannot be messaged is paused, and told so by `/watch`."""

from __future__ import annotations

import json
from typing import Any

import discord
import pytest
from click.testing import CliRunner

from rankbot.adapters.discord_chat import DiscordContext, DiscordNotifier, embeds, handle_clicks
from rankbot.bot.cards import Card
from rankbot.bot.channels import ChannelRef, person_ref
from rankbot.bot.commands import answer
from rankbot.bot.ports import DeliveryError, InPlace
from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.discord_api import (
    APP_ID,
    TOKEN,
    FakeDiscordAPI,
    component_payload,
    interaction_payload,
)
from tests.fakes.discord_bot import (
    EPHEMERAL,
    MODEL,
    OTHER,
    button,
    callback_to,
    discord_courier,
    option,
    said,
)
from tests.fakes.loopback import Reply

pytestmark = pytest.mark.anyio
USER = "333"
PERSON = person_ref("discord", "", USER)
DM = "7333"  # the fake's DM channel with user 333


async def command(client: discord.Client, fake: FakeDiscordAPI, name: str,
                  options: list[dict[str, Any]], *, guild: str | None) -> dict[str, Any]:
    """A slash command typed in a server's channel, or (guild None) in the DMs with the bot,
    taken in by the client's connection; the callback Discord got."""
    data = {"id": "7002", "name": name, "type": 1, "options": options}
    return await callback_to(client, fake, interaction_payload(
        data, guild=guild, channel="222" if guild else DM, user=USER))


async def test_watch_and_unwatch_in_a_server_and_in_direct_messages_are_one_person(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI,
        october: UnitOfWork) -> None:
    watched = await command(discord_client, fake_discord, "watch", [option("query", MODEL)],
                            guild="111")
    assert said(watched).startswith("Watching Qwen: Qwen3.8 27B (`qwen/qwen3.8-27b`)")
    assert watched["data"]["components"] == [{"type": 1, "components": [
        button("Stop watching", f"rankbot:unwatch:{MODEL}", 2)]}]
    subscription = october.channels.subscription(PERSON)
    assert subscription is not None and subscription.ref == ChannelRef("discord", "@", "@333")

    await command(discord_client, fake_discord, "watch", [option("query", OTHER)], guild=None)
    listing = await command(discord_client, fake_discord, "watch", [], guild=None)
    assert said(listing).startswith(f"`{MODEL}` — Qwen: Qwen3.8 27B\n`{OTHER}` — ")
    assert listing["data"]["embeds"][0]["title"] == "You watch 2 of 20 models"
    assert [c["custom_id"] for row in listing["data"]["components"]
            for c in row["components"]] == [f"rankbot:unwatch:{MODEL}", f"rankbot:unwatch:{OTHER}"]

    stopped = await command(discord_client, fake_discord, "unwatch", [option("query", "all")],
                            guild="111")
    assert said(stopped) == f"Stopped watching `{MODEL}`, `{OTHER}`."
    gone = october.channels.subscription(PERSON)
    assert gone is not None and not gone.active


async def test_unwatch_offers_the_askers_own_watches_as_they_type(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI) -> None:
    for model in (MODEL, OTHER):
        await command(discord_client, fake_discord, "watch", [option("query", model)],
                      guild="111")
    data = {"id": "7002", "name": "unwatch", "type": 1,
            "options": [option("query", "", focused=True)]}
    offered = await callback_to(discord_client, fake_discord, interaction_payload(
        data, kind=4, guild="111", channel="222", user=USER))
    assert offered["data"]["choices"] == [{"name": m, "value": m} for m in (MODEL, OTHER)]
    data["options"] = [option("query", OTHER[-6:].upper(), focused=True)]
    narrowed = await callback_to(discord_client, fake_discord, interaction_payload(
        data, kind=4, guild="111", channel="222", user=USER))
    assert narrowed["data"]["choices"] == [{"name": OTHER, "value": OTHER}]
    data["options"] = [option("query", "", focused=True)]
    theirs = await callback_to(discord_client, fake_discord, interaction_payload(
        data, kind=4, guild="111", channel="222", user="444"))  # someone else: none of theirs
    assert theirs["data"]["choices"] == []


def test_watch_commands_are_offered_in_servers_and_in_direct_messages(
        fake_discord: FakeDiscordAPI, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DISCORD_BOT_TOKEN": TOKEN, "DISCORD_API_URL": fake_discord.base_url}
    listed = CliRunner().invoke(cli, ["discord", "commands"], env=env)
    commands = {c["name"]: c for c in json.loads(listed.stdout)}
    for name, required in (("watch", False), ("unwatch", True)):
        sent = commands[name]
        assert sent["contexts"] == [0, 1]  # GUILD and BOT_DM
        assert sent["default_member_permissions"] is None  # anyone may
        (query,) = sent["options"]
        assert (query["name"], query["autocomplete"], query.get("required", False)) == (
            "query", True, required)


async def alert_person(store: UnitOfWork, key: str, *models: str) -> None:
    with store:
        subscription = store.channels.subscribe(PERSON, "alerts", OCT_8)
        store.outbox.enqueue(subscription, key, kind="alert", card=Card(f"Alert {key}"),
                             changes=[{"kind": "price_changed", "model": m} for m in models],
                             at=OCT_8)


async def test_a_persons_alerts_go_to_their_direct_messages_with_their_buttons(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI,
        october: UnitOfWork) -> None:
    delivery = discord_courier(discord_client, october)
    await alert_person(october, "a", MODEL)
    assert (await delivery.deliver_due()).sent == 1
    await alert_person(october, "b", MODEL, OTHER)
    assert (await delivery.deliver_due()).sent == 1
    # The DM channel is opened once, then remembered.
    assert fake_discord.bodies("POST", "/users/@me/channels") == [{"recipient_id": int(USER)}]
    one, several = fake_discord.bodies("POST", rf"/channels/{DM}/messages")
    assert one["components"] == [{"type": 1, "components": [
        button("Details", f"rankbot:details:{MODEL}", 2),
        button("Stop watching", f"rankbot:unwatch:{MODEL}", 2)]}]  # no channel to mute
    assert [row["components"][0]["custom_id"] for row in several["components"]] == [
        "rankbot:details", "rankbot:unwatch"]
    assert one["embeds"] == [e.to_dict() for e in embeds(Card("Alert a"))]
    assert one["allowed_mentions"] == {"parse": []}

    # A send in doubt is looked for in the DM channel, where it went.
    notifier = DiscordNotifier(discord_client.http, int(APP_ID))
    assert await notifier.find(PERSON, Card("Alert a"), "k", OCT_8.replace(year=2020))
    assert fake_discord.bodies("GET", rf"/channels/{DM}/messages")


async def test_a_person_who_cannot_be_messaged_is_paused_and_told_by_watch(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI,
        october: UnitOfWork) -> None:
    await command(discord_client, fake_discord, "watch", [option("query", MODEL)], guild="111")
    await alert_person(october, "a", MODEL)
    fake_discord.then(f"POST /channels/{DM}/messages", Reply.json(
        {"message": "Cannot send messages to this user", "code": 50007}, 403))
    with pytest.raises(DeliveryError) as refused:
        await DiscordNotifier(discord_client.http, int(APP_ID)).send(
            PERSON, Card("x"), (), "k")
    assert (refused.value.kind, str(refused.value.reason)) == (
        "permanent", "Cannot send messages to this user")

    fake_discord.then(f"POST /channels/{DM}/messages", Reply.json(
        {"message": "Cannot send messages to this user", "code": 50007}, 403))
    report = await discord_courier(discord_client, october).deliver_due()
    assert report.paused == [str(PERSON)]
    paused = october.channels.subscription(PERSON)
    assert paused is not None and paused.paused == "Cannot send messages to this user"
    listing = await command(discord_client, fake_discord, "watch", [], guild=None)
    assert "⚠ Your direct messages could not be delivered (Cannot send messages to this " \
           "user)" in said(listing)
    assert listing["data"]["flags"] == EPHEMERAL


async def test_the_buttons_of_a_direct_message_act_for_that_person(
        discord_client: discord.Client, tree: Any, fake_discord: FakeDiscordAPI,
        october: UnitOfWork) -> None:
    handle_clicks(discord_client, DiscordContext(InPlace(october), lambda: OCT_8))
    await command(discord_client, fake_discord, "watch", [option("query", MODEL)], guild="111")
    await alert_person(october, "a", MODEL)
    assert (await discord_courier(discord_client, october).deliver_due()).sent == 1
    (message,) = fake_discord.messages(DM)

    async def click(custom_id: str) -> dict[str, Any]:
        callback = await callback_to(discord_client, fake_discord, component_payload(
            message, custom_id, guild=None, user=USER))  # in the DM: no guild, no member
        said(callback)
        return dict(callback["data"])

    details = await click(f"rankbot:details:{MODEL}")
    assert details["embeds"] == [
        e.to_dict() for e in embeds(answer("rank", MODEL, october.snapshots, OCT_8).card)]
    stopped = await click(f"rankbot:unwatch:{MODEL}")
    assert stopped["embeds"][0]["description"] == f"Stopped watching `{MODEL}`."
    gone = october.channels.subscription(PERSON)
    assert gone is not None and not gone.active


async def test_a_dm_channel_that_is_gone_is_opened_afresh(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI) -> None:
    notifier = DiscordNotifier(discord_client.http, int(APP_ID))
    await notifier.send(PERSON, Card("one"), (), "k1")
    fake_discord.then(f"POST /channels/{DM}/messages",
                      Reply.json({"message": "Unknown Channel", "code": 10003}, 404))
    with pytest.raises(DeliveryError) as gone:
        await notifier.send(PERSON, Card("two"), (), "k2")
    assert gone.value.kind == "permanent"
    fake_discord.then("POST /users/@me/channels", Reply.json(
        {"id": "8333", "type": 1, "last_message_id": None, "flags": 0, "recipients": []}))
    await notifier.send(PERSON, Card("three"), (), "k3")  # a new DM channel, asked for again
    assert len(fake_discord.bodies("POST", "/users/@me/channels")) == 2
    assert [m["embeds"][0]["title"] for m in fake_discord.messages("8333")] == ["three"]
