"""rankbot's Discord side driven as Discord drives it, for end-to-end tests: interactions as the
gateway sends them, the callbacks the fake REST API got for them, and delivery to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import discord

from rankbot.adapters.discord_chat import DiscordNotifier
from rankbot.bot.delivery import Courier, Pacer
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8, Clock, NoWait
from tests.fakes.discord_api import APP_ID, FakeDiscordAPI, interaction_payload
from tests.fakes.discord_gateway import received

GUILD, CHANNEL = "111", "222"  # where a slash command is typed
MODEL, OTHER = "qwen/qwen3.8-27b", "openai/gpt-4.1"
CALLBACK = r"/interactions/9001/interaction-token/callback"
EPHEMERAL = discord.MessageFlags(ephemeral=True).value
MANAGE_GUILD = discord.Permissions(manage_guild=True).value
EVERYONE = discord.Permissions(send_messages=True, view_channel=True).value


def option(name: str, value: Any, kind: int = 3, focused: bool = False) -> dict[str, Any]:
    return {"type": kind, "name": name, "value": value, **({"focused": True} if focused else {})}


def interaction(client: discord.Client, name: str, options: list[dict[str, Any]],
                *, permissions: int = EVERYONE, kind: int = 2, group: str | None = None
                ) -> discord.Interaction:
    """An application-command interaction exactly as Discord sends it over the gateway."""
    data: dict[str, Any] = {"id": "7001", "name": name, "type": 1, "options": options}
    if group:
        data = {"id": "7001", "name": group, "type": 1,
                "options": [{"type": 1, "name": name, "options": options}]}
    payload = interaction_payload(data, kind=kind, guild=GUILD, channel=CHANNEL,
                                  permissions=permissions)
    return discord.Interaction(data=payload, state=client._connection)  # type: ignore[arg-type]


def button(label: str, custom_id: str, style: int) -> dict[str, Any]:
    return {"type": 2, "style": style, "disabled": False, "label": label, "custom_id": custom_id}


def said(callback: dict[str, Any]) -> str:
    """What a private answer says, after checking that it is private and pings no one."""
    assert callback["type"] == 4
    assert callback["data"]["flags"] == EPHEMERAL  # the clicker's alone
    assert callback["data"]["allowed_mentions"] == {"parse": []}
    return str(callback["data"]["embeds"][0].get("description"))


async def callback_to(client: discord.Client, fake: FakeDiscordAPI, payload: dict[str, Any]
                      ) -> dict[str, Any]:
    """The interaction `payload`, taken in by the client's connection; the one callback Discord
    got for it."""
    fake._server.requests.clear()
    await received(client, "INTERACTION_CREATE", payload)
    (callback,) = fake.bodies("POST", CALLBACK)
    return dict(callback)


def discord_courier(client: discord.Client, store: UnitOfWork, at: datetime = OCT_8) -> Courier:
    """Delivery of `store`'s outbox to the fake through the client, at `at`, never waiting."""
    waits = NoWait()
    return Courier(store, {"discord": DiscordNotifier(client.http, int(APP_ID))}, Clock(at),
                   Pacer(waits.clock, waits.sleep))
