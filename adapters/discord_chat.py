"""Discord: slash commands with autocomplete, embeds, charts, buttons, direct messages,
delivery and admin checks (discord.py 2).

The command tree maps each command onto the core handlers. The admin group is guild-only and
hidden from members without Manage Server (`default_permissions`), and checked again when run,
because a server can override who sees it. Alerts and digests reach Discord only through the
outbox and `DiscordNotifier`, on discord.py's own HTTP client and its rate-limit handling.
Buttons and menus are components whose ids say all a click needs (`bot.buttons`): no view is
kept, and `handle_clicks` answers a click by its id, before a restart or after it.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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

from rankbot.adapters.charts import png
from rankbot.adapters.supervisor import Connection, Refused
from rankbot.bot.admin import AdminWork, administer
from rankbot.bot.answers import suggest
from rankbot.bot.buttons import MAX_OPTIONS, PREFIX, Button, Control, alert_controls, control_id
from rankbot.bot.cards import CHANNEL_LINK, Card
from rankbot.bot.channels import ChannelRef, person_ref
from rankbot.bot.charts import Series
from rankbot.bot.clicks import Click, click
from rankbot.bot.commands import ACK_WITHIN, Reply, answer_with_chart
from rankbot.bot.ports import Database, DeliveryError
from rankbot.bot.rules import RULES
from rankbot.bot.watches import watch_command, watched

log = logging.getLogger(__name__)
Period = Literal["day", "week"]
EMPTY = "—"  # Discord refuses empty field values
COLOUR = discord.Colour(0x1D3557)
# What the bot needs in a channel: see it, post, post embeds, attach the digest's chart, and read
# back what it posted. Buttons need no permission, nor do direct messages, nor charts in answers
# (an interaction's reply is the application's, not the bot member's).
PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                                  attach_files=True, read_message_history=True)
MISSING_PERMISSIONS = 50013
SCOPES = ("bot", "applications.commands")


def use_api(base_url: str, gateway_url: str = "wss://gateway.discord.gg/") -> None:
    """Point discord.py's REST client (bot and interaction webhooks alike) at `base_url` and
    its first gateway connection at `gateway_url`; discord.py has no other way to set them."""
    Route.BASE = base_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def intents() -> discord.Intents:
    """Slash commands, clicks and direct messages need no privileged intent (interactions come
    whatever the intents; the bot opens DMs itself, reading none); `guilds` keeps discord.py's
    state whole."""
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


CHART = "chart.png"  # the attachment an embed shows as its image
STYLES = {"primary": discord.ButtonStyle.primary, "danger": discord.ButtonStyle.danger,
          "": discord.ButtonStyle.secondary}
LABEL, OPTION_LABEL, PLACEHOLDER = 80, 100, 150  # Discord's limits on a button and a menu


def content(card: Card, image: bytes | None = None, controls: Sequence[Control] = ()
            ) -> dict[str, Any]:
    """One message, as the keyword arguments every discord.py sender takes: the card's embed,
    the chart attached and shown as its image, the buttons under it, and no mention allowed."""
    shown = embeds(card)
    parts: dict[str, Any] = {"embeds": shown, "allowed_mentions": NO_MENTIONS}
    if image is not None:
        shown[0].set_image(url=f"attachment://{CHART}")
        parts["file"] = discord.File(io.BytesIO(image), CHART)
    if controls:
        parts["view"] = components(controls)
    return parts


def components(controls: Sequence[Control]) -> discord.ui.View:
    """Buttons and menus, their labels plain text (Discord renders no markdown or mention in
    them). The view is stopped before it is sent, so discord.py never stores it: a click is
    answered by its id alone (`handle_clicks`), the same after a restart."""
    view = discord.ui.View(timeout=None)
    for control in controls:
        view.add_item(_component(control))
    view.stop()
    return view


def _component(control: Control) -> discord.ui.Item[discord.ui.View]:
    if isinstance(control, Button):
        return discord.ui.Button(label=control.label[:LABEL], style=STYLES[control.style],
                                 custom_id=control_id(control.action, control.value))
    return discord.ui.Select(
        custom_id=control_id(control.action), placeholder=control.label[:PLACEHOLDER],
        options=[discord.SelectOption(label=model[:OPTION_LABEL], value=model)
                 for model in control.options[:MAX_OPTIONS]])


async def drawn(series: Series) -> bytes | None:
    """A chart as PNG, drawn on a worker thread, off the event loop (drawing is CPU-bound); one
    that fails is logged with its traceback and left out, never the message it goes with."""
    try:
        return await asyncio.to_thread(png, series)
    except Exception:
        log.exception("a %s chart could not be drawn; the message goes without it",
                      type(series).__name__)
        return None


CODE_SPAN = re.compile(r"(`[^`\n]+`)")
NO_MENTIONS = discord.AllowedMentions.none()


def literal(text: str) -> str:
    """Card text as Discord shows it: rankbot's code spans kept (nothing renders inside them),
    everything else with markdown, masked links and mentions escaped, and its channel links
    (`bot.cards.channel_link`) as Discord's `<#id>`."""
    return "".join(part if CODE_SPAN.fullmatch(part) else _escaped(part)
                   for part in CODE_SPAN.split(text))


def _escaped(text: str) -> str:
    # discord.py escapes only the first `[` of a line's masked links (its pattern is greedy),
    # so every other `[` not yet escaped (after an even run of backslashes) is escaped here.
    plain = BRACKET.sub(r"\1\\[", discord.utils.escape_markdown(text))
    plain = discord.utils.escape_mentions(plain)
    return CHANNEL_LINK.sub(r"<#\1>", plain.replace("<", "\\<"))


BRACKET = re.compile(r"(?<!\\)((?:\\\\)*)\[")


# -- delivery ------------------------------------------------------------------------------------

class DiscordNotifier:
    """Implements the `Notifier` port. discord.py waits out 429s itself (and retries 5xx); what
    it still raises becomes the core's delivery errors. Each message goes with its key as an
    enforced nonce, so Discord itself drops a repeat for a few minutes; for longer, `find`
    reads the channel (Read Message History) for our message with the same embed. A person's
    messages (`ref.person`) go to their direct messages; one who cannot be messaged (DMs
    closed, no server shared: 403) is a permanent error, which pauses their watches."""

    def __init__(self, http: HTTPClient, bot_id: int | None) -> None:
        self._http, self._bot_id = http, bot_id
        self._dms: dict[str, int] = {}  # user id → their DM channel with the bot

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str, chart: Series | None = None) -> None:
        image = await drawn(chart) if chart is not None else None
        controls = alert_controls(changes, person=ref.person)
        async with self._errors(ref):
            channel = await self._channel(ref)
            try:
                await self._post(channel, content(card, image, controls), key)
            except discord.Forbidden as refused:
                # Invited before charts (no Attach Files): the message goes without its chart.
                if image is None or refused.code != MISSING_PERMISSIONS:
                    raise
                log.warning("%s: no Attach Files permission; the chart is left out", ref)
                await self._post(channel, content(card, None, controls), key)

    async def prepare(self, chart: Series) -> None:
        await drawn(chart)  # then a cache hit in each send

    async def _post(self, channel: int, parts: dict[str, Any], key: str) -> None:
        with handle_message_parameters(**parts, nonce=key) as params:
            await self._http.send_message(channel, params=params)

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        wanted = _shown(embeds(card)[0].to_dict())
        after = discord.utils.time_snowflake(since)
        async with self._errors(ref):
            channel = await self._channel(ref)
            for _ in range(HISTORY_PAGES):
                page = await self._http.logs_from(channel, 100, after=after)
                if any(self._ours(message) and _shown(embed) == wanted
                       for message in page for embed in message.get("embeds", [])[:1]):
                    return True
                if len(page) < 100:
                    break
                after = max(int(message["id"]) for message in page)
        return False

    @asynccontextmanager
    async def _errors(self, ref: ChannelRef) -> AsyncIterator[None]:
        """discord.py's errors as the core's; a person's DM channel that is gone (404) is
        opened afresh next time."""
        try:
            async with _delivery_errors():
                yield
        except DeliveryError:
            if ref.person:
                self._dms.pop(ref.user, None)
            raise

    async def _channel(self, ref: ChannelRef) -> int:
        """The channel's id, or the person's DM channel: opened once (Discord gives the same
        channel every time), then remembered."""
        if not ref.person:
            return int(ref.channel)
        if ref.user not in self._dms:
            opened = await self._http.start_private_message(int(ref.user))
            self._dms[ref.user] = int(opened["id"])
        return self._dms[ref.user]

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CHART_WITHIN
        reply = await context.db.read(
            lambda work: answer_with_chart(command, text, work.snapshots, now=context.clock()))
        await with_chart(interaction, reply, deadline - loop.time())

    async def personal(interaction: discord.Interaction, command: str, text: str) -> None:
        # One person everywhere: their watches are theirs in every server and in DMs.
        person = person_ref("discord", "", str(interaction.user.id))
        await privately(interaction, watch_command(
            command, text, person=person, work=context.db.store, now=context.clock(),
            offload=context.db.write))

    async def models(interaction: discord.Interaction, current: str
                     ) -> list[app_commands.Choice[str]]:
        found = await context.db.read(
            lambda work: suggest(work.snapshots, current, context.clock(), 25))
        return [app_commands.Choice(name=label[:100], value=value[:100])
                for label, value in found]

    async def mine(interaction: discord.Interaction, current: str
                   ) -> list[app_commands.Choice[str]]:
        """The asker's own watches, for `/unwatch`."""
        person = person_ref("discord", "", str(interaction.user.id))

        def theirs(work: AdminWork) -> list[str]:
            return [w.model for w in watched(work.channels, work.channels.subscription(person))]
        return [app_commands.Choice(name=model[:100], value=model[:100])
                for model in await context.db.read(theirs) if current.lower() in model.lower()]

    @tree.command(name="rank", description="A model's usage rank, trend, share and price")
    @app_commands.describe(query="A model: id, name, author or part of one (empty: top 10)",
                           days="Days of the model's chart (default 30)")
    @app_commands.autocomplete(query=models)
    async def rank(interaction: discord.Interaction, query: str = "",
                   days: app_commands.Range[int, 7, 365] | None = None) -> None:
        # Given, the option wins; else `qwen 90d` typed in the query says it, as in Slack.
        await ask(interaction, "rank", f"{query} {days}d" if query and days else query)

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

    @tree.command(name="watch", description="Follow a model in your direct messages; "
                  "empty: what you watch")
    @app_commands.describe(query="A model, or `quiet 22:00-07:00 [zone]`, `moves N`")
    @app_commands.autocomplete(query=models)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def watch(interaction: discord.Interaction, query: str = "") -> None:
        await personal(interaction, "watch", query)

    @tree.command(name="unwatch", description="Stop following a model (or all)")
    @app_commands.describe(query="A model you watch, or `all`")
    @app_commands.autocomplete(query=mine)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    async def unwatch(interaction: discord.Interaction, query: str) -> None:
        await personal(interaction, "unwatch", query)

    tree.add_command(admin_group(context))
    return tree


def admin_group(context: DiscordContext) -> app_commands.Group:
    group = app_commands.Group(
        name="rankbot", description="Admins: this channel's alerts, digest and rules",
        guild_only=True, default_permissions=discord.Permissions(manage_guild=True))

    async def run(interaction: discord.Interaction, text: str) -> None:
        ref = ChannelRef("discord", str(interaction.guild_id), str(interaction.channel_id))
        await privately(interaction, administer(
            text, ref=ref, user=str(interaction.user.id), authorizer=ManageServer(interaction),
            work=context.db.store, now=context.clock(), offload=context.db.write))

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


# -- clicks --------------------------------------------------------------------------------------

def handle_clicks(client: discord.Client, context: DiscordContext) -> None:
    """Clicks on rankbot's buttons and menus, told apart by their ids' prefix: nothing about a
    sent message is kept, so its buttons work after a restart. Any other interaction is left
    alone (commands are the tree's)."""

    @client.event
    async def on_interaction(interaction: discord.Interaction) -> None:
        if (clicked := as_click(interaction)) is not None:
            await privately(interaction, click(
                clicked, authorizer=ManageServer(interaction), work=context.db.store,
                now=context.clock(), offload=context.db.write))


SELECT = discord.ComponentType.select.value


def as_click(interaction: discord.Interaction) -> Click | None:
    """A component interaction on one of rankbot's controls, as the core's Click."""
    data: dict[str, Any] = dict(interaction.data or {})
    control = data.get("custom_id")
    if interaction.type is not discord.InteractionType.component or not isinstance(
            control, str) or not control.startswith(f"{PREFIX}:"):
        return None
    values = data.get("values") or []
    chosen = str(values[0]) if data.get("component_type") == SELECT and values else None
    guild = str(interaction.guild_id) if interaction.guild_id else None
    # In a DM there is no server: the channel is the DM's, and the clicker belongs to none.
    return Click(control, chosen, ref=ChannelRef("discord", guild or "@",
                                                 str(interaction.channel_id)),
                 user=str(interaction.user.id), workspace=guild or "")


# -- replies -------------------------------------------------------------------------------------

# Discord wants a response within 3 s: a chart not drawn by then (from the command's start) is
# sent after "thinking…", with its answer.
CHART_WITHIN = 2.0


async def with_chart(interaction: discord.Interaction, reply: Reply, budget: float) -> None:
    """The answer with its chart attached, if it has one: at once if the chart is drawn within
    `budget` seconds, else after "thinking…"."""
    if reply.chart is None:
        await send(interaction, reply)
        return
    drawing = asyncio.ensure_future(drawn(reply.chart))
    try:
        image = await asyncio.wait_for(asyncio.shield(drawing), max(budget, 0))
    except TimeoutError:
        ephemeral = not reply.public
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)
        await interaction.followup.send(**content(reply.card, await drawing, reply.buttons),
                                        ephemeral=ephemeral)
        return
    await send(interaction, reply, image)


async def privately(interaction: discord.Interaction, work: Awaitable[Reply]) -> None:
    """A reply for whoever asked or clicked alone, when `work` (the database, a check) gives it;
    after "thinking…" if that takes longer than ACK_WITHIN."""
    task = asyncio.ensure_future(work)
    try:
        reply = await asyncio.wait_for(asyncio.shield(task), ACK_WITHIN)
    except TimeoutError:  # waiting for the database: "thinking…", then the reply
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await task
        await interaction.followup.send(**content(reply.card, controls=reply.buttons),
                                        ephemeral=True)
        return
    await send(interaction, reply, ephemeral=True)


async def send(interaction: discord.Interaction, reply: Reply, image: bytes | None = None,
               *, ephemeral: bool | None = None) -> None:
    """Answers go in the channel; help, errors, admin replies and clicks only to whoever asked."""
    await interaction.response.send_message(
        **content(reply.card, image, reply.buttons),
        ephemeral=not reply.public if ephemeral is None else ephemeral)


def commands_json(tree: app_commands.CommandTree[discord.Client]) -> list[dict[str, Any]]:
    """What `tree.sync()` would send to Discord."""
    return [command.to_dict(tree) for command in tree.get_commands()]


def application_id(token: str) -> int:
    """A bot token's first part is its application's id, base64-encoded."""
    head = token.split(".", 1)[0]
    return int(base64.b64decode(head + "=" * (-len(head) % 4)).decode())


def invite_url(app_id: int) -> str:
    return discord.utils.oauth_url(app_id, permissions=PERMISSIONS, scopes=SCOPES)
