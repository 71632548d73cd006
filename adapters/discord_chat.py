"""Discord: slash commands with autocomplete, embeds, delivery and admin checks (discord.py 2).

The command tree maps each command onto the core handlers. The admin group is guild-only and
hidden from members without Manage Server (`default_permissions`), and checked again when run,
because a server can override who sees it. Alerts and digests reach Discord only through the
outbox and `DiscordNotifier`, on discord.py's own HTTP client and its rate-limit handling.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route, handle_message_parameters

from rankbot.adapters.supervisor import Connection, Refused
from rankbot.bot.admin import AdminWork, administer
from rankbot.bot.answers import suggest
from rankbot.bot.cards import CHANNEL_LINK, Card
from rankbot.bot.channels import ChannelRef
from rankbot.bot.commands import ACK_WITHIN, Reply, answer
from rankbot.bot.ports import Database, DeliveryError
from rankbot.bot.rules import RULES

Period = Literal["day", "week"]
EMPTY = "—"  # Discord refuses empty field values
COLOUR = discord.Colour(0x1D3557)
# What the bot needs in a channel: see it, post, post embeds, and read back what it posted.
PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                                  read_message_history=True)
SCOPES = ("bot", "applications.commands")


def use_api(base_url: str, gateway_url: str = "wss://gateway.discord.gg/") -> None:
    """Point discord.py's REST client (bot and interaction webhooks alike) at `base_url` and
    its first gateway connection at `gateway_url`; discord.py has no other way to set them."""
    Route.BASE = base_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def intents() -> discord.Intents:
    """Slash commands need no privileged intent; `guilds` keeps discord.py's state whole."""
    return discord.Intents(guilds=True)


# -- rendering -----------------------------------------------------------------------------------

def embeds(card: Card) -> list[discord.Embed]:
    """A card as one embed; the core has already cut it to Discord's limits (`bot.cards.fit`).
    Its text is shown as text: markdown, mentions and masked links from outside are escaped."""
    embed = discord.Embed(title=literal(card.title),
                          description=literal("\n".join(card.lines)) or None, colour=COLOUR)
    for field in card.fields:
        embed.add_field(name=literal(field.name) or EMPTY, value=literal(field.value) or EMPTY,
                        inline=False)
    if card.footer:
        embed.set_footer(text=card.footer)  # footers show no markdown, and hold only ours
    return [embed]


CODE_SPAN = re.compile(r"(`[^`\n]+`)")
NO_MENTIONS = discord.AllowedMentions.none()


def literal(text: str) -> str:
    """Card text as Discord shows it: rankbot's code spans kept (nothing renders inside them),
    everything else with markdown, masked links and mentions escaped, and its channel links
    (`bot.cards.channel_link`) as Discord's `<#id>`."""
    return "".join(part if CODE_SPAN.fullmatch(part) else _escaped(part)
                   for part in CODE_SPAN.split(text))


def _escaped(text: str) -> str:
    plain = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return CHANNEL_LINK.sub(r"<#\1>", plain.replace("<", "\\<"))


# -- delivery ------------------------------------------------------------------------------------

class DiscordNotifier:
    """Implements the `Notifier` port. discord.py waits out 429s itself (and retries 5xx); what
    it still raises becomes the core's delivery errors. Each message goes with its key as an
    enforced nonce, so Discord itself drops a repeat for a few minutes; for longer, `find`
    reads the channel (Read Message History) for our message with the same embed."""

    def __init__(self, http: HTTPClient, bot_id: int | None) -> None:
        self._http, self._bot_id = http, bot_id

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str) -> None:
        async with _delivery_errors():
            with handle_message_parameters(embeds=embeds(card), nonce=key,
                                           allowed_mentions=NO_MENTIONS) as params:
                await self._http.send_message(int(ref.channel), params=params)

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        wanted = _shown(embeds(card)[0].to_dict())
        after = discord.utils.time_snowflake(since)
        async with _delivery_errors():
            for _ in range(HISTORY_PAGES):
                page = await self._http.logs_from(int(ref.channel), 100, after=after)
                if any(self._ours(message) and _shown(embed) == wanted
                       for message in page for embed in message.get("embeds", [])[:1]):
                    return True
                if len(page) < 100:
                    break
                after = max(int(message["id"]) for message in page)
        return False

    def _ours(self, message: Any) -> bool:
        author = message.get("author") or {}
        return bool(author.get("bot")) and (self._bot_id is None
                                            or str(author.get("id")) == str(self._bot_id))


HISTORY_PAGES = 5  # of 100 messages: further back than that, a send in doubt is sent again


def _shown(embed: Any) -> tuple[str, ...]:
    """What a reader sees of an embed, as Discord echoes it back (it trims whitespace)."""
    texts = [embed.get("title"), embed.get("description"),
             *(part for f in embed.get("fields", []) for part in (f.get("name"), f.get("value"))),
             (embed.get("footer") or {}).get("text")]
    return tuple(str(text or "").strip() for text in texts)


@asynccontextmanager
async def _delivery_errors() -> AsyncIterator[None]:
    """discord.py's errors, and not reaching Discord at all, as the core's `DeliveryError`."""
    try:
        yield
    except discord.RateLimited as error:
        raise DeliveryError("rate_limited", "rate limited", error.retry_after) from error
    except (discord.Forbidden, discord.NotFound) as error:
        raise DeliveryError("permanent", error.text or type(error).__name__) from error
    except discord.HTTPException as error:
        reason = error.text or f"HTTP {error.status}"
        if error.status == 401:
            raise DeliveryError("auth", reason) from error
        raise DeliveryError("transient", reason) from error
    except (aiohttp.ClientError, TimeoutError) as error:
        raise DeliveryError("transient", f"Discord unreachable ({type(error).__name__})"
                            ) from error


# -- the gateway ---------------------------------------------------------------------------------

# Close codes after which discord.py closes the client and gives up: a refused token, and
# sharding or intents that only a change of settings can mend.
REFUSED = {4004: "authentication failed", 4010: "invalid shard", 4011: "sharding required",
           4012: "invalid API version", 4013: "invalid intents", 4014: "disallowed intents"}


def gateway(client: discord.Client, connection: Connection) -> Callable[[], Awaitable[None]]:
    """One run of the gateway connection, for `supervise`: discord.py resumes a dropped session
    by itself; what escapes it (an event it cannot parse, a connection it gave up on) ends the
    run, and the supervisor starts a fresh one. The state follows discord.py's own events."""

    @client.event
    async def on_ready() -> None:
        await connection.up()

    @client.event
    async def on_resumed() -> None:
        await connection.up()

    @client.event
    async def on_disconnect() -> None:
        await connection.down("the gateway connection closed; resuming")

    async def run() -> None:
        if client.ws is not None and client.ws.open:  # left open by an event that broke a run
            await client.ws.close(code=4000)
        try:
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired as refused:  # 4014, raised as its own error
            raise Refused(f"the gateway closed with 4014 ({REFUSED[4014]}): rankbot asks for "
                          "no privileged intent, so check the bot's settings; commands are "
                          "off until rankbot restarts") from refused
        except discord.LoginFailure as refused:
            raise Refused(f"DISCORD_BOT_TOKEN was refused ({refused}): check the token on the "
                          "Bot page of your application; commands are off until rankbot "
                          "restarts") from refused
        except discord.ConnectionClosed as closed:
            if closed.code in REFUSED:
                raise Refused(f"the gateway closed with {closed.code} "
                              f"({REFUSED[closed.code]}): check DISCORD_BOT_TOKEN and the "
                              "bot's intents; commands are off until rankbot restarts"
                              ) from closed
            raise

    return run


# -- admins --------------------------------------------------------------------------------------

class ManageServer:
    """Implements the `Authorizer` port for one interaction: Discord sends the member's
    permissions in the channel with every interaction, so the check is exact and local."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction

    async def is_admin(self, ref: ChannelRef, user: str) -> bool:
        interaction = self._interaction
        return (interaction.guild_id is not None and str(interaction.guild_id) == ref.workspace
                and str(interaction.user.id) == user
                and interaction.permissions.manage_guild)


# -- the command tree ----------------------------------------------------------------------------

@dataclass(frozen=True)
class DiscordContext:
    db: Database[AdminWork]
    clock: Callable[[], datetime]


def build_tree(client: discord.Client, context: DiscordContext
               ) -> app_commands.CommandTree[discord.Client]:
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)

    async def ask(interaction: discord.Interaction, command: str, text: str) -> None:
        await send(interaction, await context.db.read(
            lambda work: answer(command, text, work.snapshots, now=context.clock())))

    async def models(interaction: discord.Interaction, current: str
                     ) -> list[app_commands.Choice[str]]:
        found = await context.db.read(
            lambda work: suggest(work.snapshots, current, context.clock(), 25))
        return [app_commands.Choice(name=label[:100], value=value[:100])
                for label, value in found]

    @tree.command(name="rank", description="A model's usage rank, trend, share and price")
    @app_commands.describe(query="A model: id, name, author or part of one (empty: top 10)")
    @app_commands.autocomplete(query=models)
    async def rank(interaction: discord.Interaction, query: str = "") -> None:
        await ask(interaction, "rank", query)

    @tree.command(name="price", description="Prices per 1M tokens and how they moved")
    @app_commands.describe(query="A model", versus="Another model, to compare with")
    @app_commands.autocomplete(query=models, versus=models)
    async def price(interaction: discord.Interaction, query: str, versus: str = "") -> None:
        await ask(interaction, "price", f"{query} vs {versus}" if versus else query)

    @tree.command(name="top", description="The top models by tokens")
    async def top(interaction: discord.Interaction, n: app_commands.Range[int, 1, 50] = 10,
                  period: Period = "week") -> None:
        await ask(interaction, "top", f"{n} {period}")

    @tree.command(name="movers", description="The biggest climbs, falls and share gains")
    async def movers(interaction: discord.Interaction, period: Period = "week") -> None:
        await ask(interaction, "movers", period)

    @tree.command(name="new", description="Models new in the catalog or the top 50")
    async def new(interaction: discord.Interaction,
                  days: app_commands.Range[int, 1, 90] = 7) -> None:
        await ask(interaction, "new", str(days))

    @tree.command(name="best", description="The best quality per dollar, with usage beside it")
    @app_commands.describe(under="Blended USD per 1M tokens at most, e.g. 2")
    async def best(interaction: discord.Interaction,
                   index: Literal["intelligence", "coding", "agentic"] = "intelligence",
                   under: app_commands.Range[float, 0.0001, 10000.0] | None = None) -> None:
        await ask(interaction, "best", f"{index} under {under:g}" if under else index)

    @tree.command(name="sunsets", description="Models OpenRouter retires soon, with dates and "
                  "successors")
    async def sunsets(interaction: discord.Interaction,
                      days: app_commands.Range[int, 1, 365] = 30) -> None:
        await ask(interaction, "sunsets", str(days))

    @tree.command(name="providers", description="Who serves a model: price, quantization, "
                  "uptime, latency, speed")
    @app_commands.describe(query="A model: id, name or part of one")
    @app_commands.autocomplete(query=models)
    async def providers(interaction: discord.Interaction, query: str) -> None:
        await ask(interaction, "providers", query)

    tree.add_command(admin_group(context))
    return tree


def admin_group(context: DiscordContext) -> app_commands.Group:
    group = app_commands.Group(
        name="rankbot", description="Admins: this channel's alerts, digest and rules",
        guild_only=True, default_permissions=discord.Permissions(manage_guild=True))

    async def run(interaction: discord.Interaction, text: str) -> None:
        ref = ChannelRef("discord", str(interaction.guild_id), str(interaction.channel_id))
        work = asyncio.ensure_future(administer(
            text, ref=ref, user=str(interaction.user.id), authorizer=ManageServer(interaction),
            work=context.db.store, now=context.clock(), offload=context.db.write))
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), ACK_WITHIN)
        except TimeoutError:  # waiting for the database: "thinking…", then the answer
            await interaction.response.defer(ephemeral=True, thinking=True)
            reply = await work
            await interaction.followup.send(embeds=embeds(reply.card), ephemeral=True,
                                            allowed_mentions=NO_MENTIONS)
            return
        await send(interaction, reply)

    @group.command(name="subscribe", description="Get alerts, the weekly digest, or both")
    async def subscribe(interaction: discord.Interaction,
                        mode: Literal["alerts", "digest", "all"] = "all") -> None:
        await run(interaction, f"subscribe {mode}")

    @group.command(name="unsubscribe", description="Stop everything in this channel")
    async def unsubscribe(interaction: discord.Interaction) -> None:
        await run(interaction, "unsubscribe")

    @group.command(name="config", description="This channel's rules, defaults marked")
    async def config(interaction: discord.Interaction) -> None:
        await run(interaction, "config")

    @group.command(name="set", description="Change one rule")
    @app_commands.choices(key=[app_commands.Choice(name=k, value=k) for k in RULES])
    async def set_(interaction: discord.Interaction, key: str, value: str) -> None:
        await run(interaction, f"set {key} {value}")

    @group.command(name="preview", description="What these rules would have sent lately")
    async def preview(interaction: discord.Interaction,
                      days: app_commands.Range[int, 1, 90] = 7) -> None:
        await run(interaction, f"preview {days}")

    @group.command(name="status", description="Channels, queues and pauses in this server")
    async def status(interaction: discord.Interaction) -> None:
        await run(interaction, "status")

    return group


async def send(interaction: discord.Interaction, reply: Reply) -> None:
    """Answers go in the channel; help, errors and admin replies only to whoever asked."""
    await interaction.response.send_message(embeds=embeds(reply.card),
                                            ephemeral=not reply.public,
                                            allowed_mentions=NO_MENTIONS)


def commands_json(tree: app_commands.CommandTree[discord.Client]) -> list[dict[str, Any]]:
    """What `tree.sync()` would send to Discord."""
    return [command.to_dict(tree) for command in tree.get_commands()]


def application_id(token: str) -> int:
    """A bot token's first part is its application's id, base64-encoded."""
    head = token.split(".", 1)[0]
    return int(base64.b64decode(head + "=" * (-len(head) % 4)).decode())


def invite_url(app_id: int) -> str:
    return discord.utils.oauth_url(app_id, permissions=PERMISSIONS, scopes=SCOPES)
