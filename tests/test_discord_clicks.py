"""Discord: the buttons and menus under alerts, clicked. Each click is a MESSAGE_COMPONENT
interaction exactly as Discord sends it (on the message the bot posted, as the fake stored it),
taken in by discord.py's own connection state, which dispatches `on_interaction`; the answer goes
through discord.py's HTTP client to the fake REST server. Nothing about a sent message is kept:
the clicks are answered by a client started after the alert was sent, with no view registered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import discord
import pytest
from discord.gateway import DiscordWebSocket

from rankbot.adapters import discord_chat
from rankbot.adapters.discord_chat import DiscordContext, embeds, handle_clicks, intents, use_api
from rankbot.bot.admin import NOT_ADMIN
from rankbot.bot.cards import Card
from rankbot.bot.channels import ChannelRef, person_ref
from rankbot.bot.clicks import UNKNOWN
from rankbot.bot.commands import answer
from rankbot.bot.ports import InPlace
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
    CALLBACK,
    EPHEMERAL,
    EVERYONE,
    MANAGE_GUILD,
    MODEL,
    OTHER,
    button,
    callback_to,
    discord_courier,
    said,
)
from tests.fakes.discord_gateway import FakeDiscordGateway, received

pytestmark = pytest.mark.anyio
T = TypeVar("T")
GUILD, CHANNEL = "111", "501"
REF = ChannelRef("discord", GUILD, CHANNEL)


def menu(placeholder: str, custom_id: str, models: list[str]) -> dict[str, Any]:
    return {"type": 1, "components": [{
        "type": 3, "custom_id": custom_id, "min_values": 1, "max_values": 1, "disabled": False,
        "required": True, "placeholder": placeholder,
        "options": [{"label": m, "value": m, "default": False} for m in models]}]}


def controls_of(model: str) -> list[dict[str, Any]]:
    """Details, Mute here (danger) and Watch (primary) for one model, as Discord gets them."""
    return [{"type": 1, "components": [
        button("Details", f"rankbot:details:{model}", 2),
        button("Mute here", f"rankbot:mute:{model}", 4),
        button("Watch", f"rankbot:watch:{model}", 1)]}]


@pytest.fixture
def subscribed(october: UnitOfWork) -> UnitOfWork:
    with october:
        october.channels.subscribe(REF, "alerts", OCT_8)
    return october


@pytest.fixture
async def restarted(subscribed: UnitOfWork, discord_client: discord.Client
                    ) -> AsyncIterator[discord.Client]:
    """The client of a rankbot started after the alerts went out: logged in, clicks handled,
    no view ever sent or registered by it."""
    client = discord.Client(intents=intents())
    await client.login(TOKEN)
    handle_clicks(client, DiscordContext(InPlace(subscribed), lambda: OCT_8))
    yield client
    await client.close()


async def alerted(client: discord.Client, fake: FakeDiscordAPI, store: UnitOfWork,
                  *models: str) -> dict[str, Any]:
    """One alert about `models`, queued and delivered to the channel; the message Discord
    keeps (and sends back with every click on it)."""
    subscription = store.channels.subscription(REF)
    assert subscription is not None
    with store:
        store.outbox.enqueue(subscription, f"test:{len(fake.messages(CHANNEL))}", kind="alert",
                             card=Card("OpenRouter: a change"), at=OCT_8,
                             changes=[{"kind": "price_changed", "model": m} for m in models])
    assert (await discord_courier(client, store).deliver_due()).sent == 1
    return fake.messages(CHANNEL)[-1]


async def clicked(client: discord.Client, fake: FakeDiscordAPI, message: dict[str, Any],
                  custom_id: str, *, values: list[str] | None = None,
                  permissions: int = EVERYONE) -> dict[str, Any]:
    """Click a control of `message` (choose `values` in a menu); the callback Discord got."""
    return await callback_to(client, fake, component_payload(
        message, custom_id, values=values, guild=GUILD, permissions=permissions))


async def test_an_alert_carries_buttons_for_its_model_and_menus_for_several(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI,
        subscribed: UnitOfWork) -> None:
    await alerted(discord_client, fake_discord, subscribed, MODEL)
    await alerted(discord_client, fake_discord, subscribed, MODEL, OTHER, MODEL)
    one, several = fake_discord.bodies("POST", rf"/channels/{CHANNEL}/messages")
    assert one["components"] == controls_of(MODEL)
    assert several["components"] == [
        menu("Details…", "rankbot:details", [MODEL, OTHER]),
        menu("Mute here…", "rankbot:mute", [MODEL, OTHER]),
        menu("Watch…", "rankbot:watch", [MODEL, OTHER])]
    for body in (one, several):
        assert body["allowed_mentions"] == {"parse": []}
        assert body["embeds"] == [e.to_dict() for e in embeds(Card("OpenRouter: a change"))]
    assert not discord_client.persistent_views  # sent, never stored


async def test_a_click_works_on_a_client_started_after_the_alert(
        discord_client: discord.Client, restarted: discord.Client,
        fake_discord: FakeDiscordAPI, subscribed: UnitOfWork) -> None:
    message = await alerted(discord_client, fake_discord, subscribed, MODEL)
    assert not restarted.persistent_views and not restarted._connection._view_store._views
    reply = await clicked(restarted, fake_discord, message, f"rankbot:watch:{MODEL}")
    assert said(reply).startswith("Watching Qwen: Qwen3.8 27B (`qwen/qwen3.8-27b`)")
    assert reply["data"]["components"] == [{"type": 1, "components": [
        button("Stop watching", f"rankbot:unwatch:{MODEL}", 2)]}]
    person = subscribed.channels.subscription(person_ref("discord", "", "333"))
    assert person is not None and person.ref == ChannelRef("discord", "@", "@333")
    assert person.active and "qwen/qwen3.8-27b" in person.rules.watch

    details = await clicked(restarted, fake_discord, message, f"rankbot:details:{MODEL}")
    said(details)
    assert details["data"]["embeds"] == [
        e.to_dict() for e in embeds(answer("rank", MODEL, subscribed.snapshots, OCT_8).card)]


async def test_a_menu_acts_on_the_model_chosen(
        discord_client: discord.Client, restarted: discord.Client,
        fake_discord: FakeDiscordAPI, subscribed: UnitOfWork) -> None:
    message = await alerted(discord_client, fake_discord, subscribed, MODEL, OTHER)
    details = await clicked(restarted, fake_discord, message, "rankbot:details",
                            values=[OTHER])
    said(details)
    assert details["data"]["embeds"] == [
        e.to_dict() for e in embeds(answer("rank", OTHER, subscribed.snapshots, OCT_8).card)]
    watched = await clicked(restarted, fake_discord, message, "rankbot:watch", values=[OTHER])
    assert f"(`{OTHER}`)" in said(watched)


async def test_mute_here_is_for_admins_audited_and_undone(
        discord_client: discord.Client, restarted: discord.Client,
        fake_discord: FakeDiscordAPI, subscribed: UnitOfWork) -> None:
    message = await alerted(discord_client, fake_discord, subscribed, MODEL)
    refused = await clicked(restarted, fake_discord, message, f"rankbot:mute:{MODEL}")
    assert said(refused) == NOT_ADMIN
    assert "components" not in refused["data"]
    assert _rules(subscribed).ignore == ()

    muted = await clicked(restarted, fake_discord, message, f"rankbot:mute:{MODEL}",
                          permissions=MANAGE_GUILD)
    assert said(muted).startswith(
        "`qwen/qwen3.8-27b`: its changes are no longer told in this channel")
    undo = button("Undo", f"rankbot:unmute:{MODEL}", 2)
    assert muted["data"]["components"] == [{"type": 1, "components": [undo]}]
    assert "qwen/qwen3.8-27b" in _rules(subscribed).ignore
    (audit,) = [a for a in subscribed.channels.audit_log(REF) if a["setting"] == "ignore"]
    assert audit["who"] == "333"

    # Undo is a button of the private reply: Discord sends that message with the click.
    reply_message = {**message, "id": str(int(message["id"]) + 1), "flags": EPHEMERAL,
                     "embeds": muted["data"]["embeds"], "components": [{
                         "type": 1, "id": 1, "components": [{**undo, "id": 2}]}]}
    undone = await clicked(restarted, fake_discord, reply_message, f"rankbot:unmute:{MODEL}",
                           permissions=MANAGE_GUILD)
    assert said(undone) == "`qwen/qwen3.8-27b` is heard here again."
    assert _rules(subscribed).ignore == ()


def _rules(store: UnitOfWork) -> Any:
    subscription = store.channels.subscription(REF)
    assert subscription is not None
    return subscription.rules


async def test_interactions_that_are_not_rankbots_are_left_alone(
        discord_client: discord.Client, restarted: discord.Client,
        fake_discord: FakeDiscordAPI, subscribed: UnitOfWork) -> None:
    message = await alerted(discord_client, fake_discord, subscribed, MODEL)
    fake_discord._server.requests.clear()
    for custom_id in ("other-bot:watch:x", "rankbotx:watch:x", "watch"):
        await received(restarted, "INTERACTION_CREATE",
                       component_payload(message, custom_id, guild=GUILD))
    command = interaction_payload({"id": "7001", "name": "rank", "type": 1, "options": []})
    await received(restarted, "INTERACTION_CREATE", command)  # the tree's, not a click
    assert fake_discord.bodies("POST", CALLBACK) == []
    # rankbot's prefix with something it never made: a private "not one of rankbot's"
    forged = await clicked(restarted, fake_discord, message, "rankbot:delete:everything")
    assert said(forged) == UNKNOWN


class SlowWrites(InPlace[UnitOfWork]):
    """A database whose writes wait on a busy lock for a while."""

    async def write(self, work: Callable[[], T]) -> T:
        await asyncio.sleep(0.2)
        return work()


async def test_a_click_waiting_on_the_database_is_acknowledged_then_answered(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI, subscribed: UnitOfWork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord_chat, "ACK_WITHIN", 0.05)
    handle_clicks(discord_client, DiscordContext(SlowWrites(subscribed), lambda: OCT_8))
    message = await alerted(discord_client, fake_discord, subscribed, MODEL)
    fake_discord._server.requests.clear()
    await received(discord_client, "INTERACTION_CREATE",
                   component_payload(message, f"rankbot:watch:{MODEL}", guild=GUILD))
    assert fake_discord.bodies("POST", CALLBACK) == [{"type": 5, "data": {"flags": EPHEMERAL}}]
    (follow_up,) = fake_discord.bodies("POST", rf"/webhooks/{APP_ID}/interaction-token")
    assert follow_up["flags"] == EPHEMERAL and follow_up["allowed_mentions"] == {"parse": []}
    assert follow_up["embeds"][0]["description"].startswith("Watching Qwen: Qwen3.8 27B")
    assert follow_up["components"][0]["components"][0]["custom_id"] == f"rankbot:unwatch:{MODEL}"


async def test_a_click_over_the_gateway_is_answered(
        discord_client: discord.Client, fake_discord: FakeDiscordAPI, subscribed: UnitOfWork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    message = await alerted(discord_client, fake_discord, subscribed, MODEL)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    with FakeDiscordGateway(APP_ID).running() as gateway:
        use_api(fake_discord.base_url, gateway.url)
        # No guild to wait for after READY (discord.py waits 2 s for them by default)
        client = discord.Client(intents=intents(), guild_ready_timeout=0.01)
        await client.login(TOKEN)
        handle_clicks(client, DiscordContext(InPlace(subscribed), lambda: OCT_8))
        connected = asyncio.create_task(client.connect(reconnect=False))
        try:
            await asyncio.wait_for(client.wait_until_ready(), 10)
            fake_discord._server.requests.clear()
            await asyncio.to_thread(gateway.dispatch, "INTERACTION_CREATE", component_payload(
                message, f"rankbot:details:{MODEL}", guild=GUILD))
            deadline = asyncio.get_running_loop().time() + 5
            while not fake_discord.bodies("POST", CALLBACK):
                assert asyncio.get_running_loop().time() < deadline, "no answer to the click"
                await asyncio.sleep(0.02)
        finally:
            await client.close()
            connected.cancel()
    (callback,) = fake_discord.bodies("POST", CALLBACK)
    said(callback)
    assert callback["data"]["embeds"] == [
        e.to_dict() for e in embeds(answer("rank", MODEL, subscribed.snapshots, OCT_8).card)]
