"""Discord: outside text stays text on buttons, menus and the replies to clicks. A model named
HOSTILE and one whose id is markup reach an alert's menus and the replies of Details, Watch and
`/watch`: the labels and values carry the id as typed (Discord renders no markdown or mention in
them), the embeds escape what `literal()` escapes, and no message allows a mention."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from rankbot.adapters.discord_chat import DiscordContext, build_tree, handle_clicks
from rankbot.bot.channels import ChannelRef
from rankbot.bot.polling import poll
from rankbot.bot.ports import InPlace
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import load
from tests.fakes.clock import OCT_8
from tests.fakes.discord_api import FakeDiscordAPI, component_payload, interaction_payload
from tests.fakes.discord_bot import callback_to, discord_courier, said
from tests.fakes.hostile import DISCORD_SAFE, RANKED, discord_safe, hostile_catalog

pytestmark = pytest.mark.anyio
MARKUP_ID = "evil/<@1>@everyone*b*[x](https://evil.example)"  # no space: a valid id
REF = ChannelRef("discord", "111", "501")


@pytest.fixture
async def store() -> AsyncIterator[UnitOfWork]:
    """The real catalog, then one where a ranked model is named HOSTILE and two models are new:
    `evil/model` named HOSTILE, and MARKUP_ID. One alert queued for the channel."""
    repository = load(UnitOfWork.open(":memory:"), "2026-08-22T124646Z")
    with repository:
        repository.channels.subscribe(REF, "all", OCT_8)

    async def fetch() -> bytes:
        payload = json.loads(hostile_catalog())
        evil = next(e for e in payload["data"] if e["id"] == "evil/model")
        payload["data"].append({**evil, "id": MARKUP_ID, "canonical_slug": MARKUP_ID})
        return json.dumps(payload).encode()

    outcome, = await poll(repository, OCT_8, DEFAULT_RULES, catalog=fetch)
    assert outcome.fault is None
    yield repository
    repository.close()


@pytest.fixture
async def alert(store: UnitOfWork, discord_client: discord.Client,
                fake_discord: FakeDiscordAPI) -> dict[str, Any]:
    """The alert, delivered; the message as Discord keeps it. Clicks are handled."""
    assert (await discord_courier(discord_client, store).deliver_due()).sent == 1
    context = DiscordContext(InPlace(store), lambda: OCT_8)
    build_tree(discord_client, context)
    handle_clicks(discord_client, context)
    (message,) = fake_discord.messages("501")
    return message


def option(model: str) -> dict[str, Any]:
    return {"label": model, "value": model, "default": False}


async def test_menus_carry_model_ids_as_typed_and_the_alert_as_text(
        alert: dict[str, Any], fake_discord: FakeDiscordAPI) -> None:
    (body,) = fake_discord.bodies("POST", r"/channels/501/messages")
    assert DISCORD_SAFE in discord_safe(body)  # allowed_mentions none, the embed escaped
    models = ["evil/model", MARKUP_ID, "meta/muse-glimmer-30b", "openai/gpt-oss-120b", RANKED]
    assert body["components"] == [{"type": 1, "components": [{
        "type": 3, "custom_id": f"rankbot:{action}", "min_values": 1, "max_values": 1,
        "disabled": False, "required": True, "placeholder": f"{label}…",
        "options": [option(m) for m in models]}]}
        for action, label in (("details", "Details"), ("mute", "Mute here"),
                              ("watch", "Watch"))]


async def clicked(client: discord.Client, fake: FakeDiscordAPI, message: dict[str, Any],
                  custom_id: str, chosen: str) -> dict[str, Any]:
    callback = await callback_to(client, fake, component_payload(
        message, custom_id, values=[chosen], guild="111"))
    said(callback)  # private, and no mention allowed
    return dict(callback["data"])


async def test_replies_to_clicks_show_names_as_text_and_ids_as_typed(
        alert: dict[str, Any], discord_client: discord.Client,
        fake_discord: FakeDiscordAPI) -> None:
    details = await clicked(discord_client, fake_discord, alert, "rankbot:details", RANKED)
    assert DISCORD_SAFE in discord_safe(details)
    watched = await clicked(discord_client, fake_discord, alert, "rankbot:watch", "evil/model")
    assert f"Watching {DISCORD_SAFE}\\* (`evil/model`)" in discord_safe(watched)

    # An id is shown in a code span (nothing renders there), and carried back as typed.
    marked = await clicked(discord_client, fake_discord, alert, "rankbot:watch", MARKUP_ID)
    assert marked["embeds"][0]["description"].startswith(
        f"Watching {DISCORD_SAFE}\\* (`{MARKUP_ID}`)")
    assert marked["components"] == [{"type": 1, "components": [{
        "type": 2, "style": 2, "disabled": False, "label": "Stop watching",
        "custom_id": f"rankbot:unwatch:{MARKUP_ID}"}]}]

    listing = await callback_to(discord_client, fake_discord, interaction_payload(
        {"id": "7003", "name": "watch", "type": 1, "options": []}))
    assert said(listing).startswith(f"`evil/model` — {DISCORD_SAFE}\\*\n"
                                    f"`{MARKUP_ID}` — {DISCORD_SAFE}\\*\n")
    assert [(c["label"], c["custom_id"]) for row in listing["data"]["components"]
            for c in row["components"]] == [
        ("Stop watching evil/model", "rankbot:unwatch:evil/model"),
        (f"Stop watching {MARKUP_ID[:40]}", f"rankbot:unwatch:{MARKUP_ID}")]
