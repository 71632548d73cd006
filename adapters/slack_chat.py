"""Slack: slash commands, Block Kit, delivery and admin checks, on slack-bolt's async app.

Commands are answered through the core handlers inside the acknowledgement itself (they take
milliseconds), so Slack's 3-second limit is never at risk. Alerts and digests reach Slack only
through the outbox and `SlackNotifier`; its errors become the core's `DeliveryError` kinds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters import http_server
from rankbot.adapters.supervisor import Connection, Refused
from rankbot.bot.admin import AdminWork, administer
from rankbot.bot.cards import CHANNEL_LINK, Card
from rankbot.bot.channels import ChannelRef
from rankbot.bot.commands import ACK_WITHIN, BUSY, Reply, answer, private
from rankbot.bot.ports import AskAgain, Authorizer, Database, DeliveryError

log = logging.getLogger(__name__)
QUERY_COMMANDS = ("/rank", "/price", "/top", "/movers", "/new", "/best", "/sunsets",
                  "/providers")
ADMIN_COMMAND = "/rankbot"
PATH = "/slack/events"
GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
                  "restricted_action", "team_access_not_granted", "missing_scope"})
LOCKED_OUT = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed",
                        "token_expired"})
ADMIN_FOR = 300.0  # seconds a users.info answer is trusted
RATE_LIMIT_WAIT = 1.5  # seconds of Retry-After worth waiting inside Slack's 3 s for a command
# The bot scopes rankbot asks for (slack-manifest.yml): commands; post, also in public channels
# it has not joined; read back its own posts in public and private channels (a send in doubt is
# looked for before it is sent again); see who is an admin.
SCOPES = ("commands", "chat:write", "chat:write.public", "channels:history", "groups:history",
          "users:read")


# -- rendering -----------------------------------------------------------------------------------

def blocks(card: Card) -> list[dict[str, Any]]:
    """A card as Block Kit: a header, its lines, one section per field, the footer as context.
    Cards are already cut to Slack's limits by the core (`bot.cards.fit`)."""
    rendered: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": card.title, "emoji": True}}]
    if card.lines:
        rendered.append(_section("\n".join(card.lines)))
    rendered += [_section(f"*{_escape(f.name)}*\n{_escape(f.value)}", escaped=True)
                 for f in card.fields]
    if card.footer:
        rendered.append({"type": "context",
                         "elements": [{"type": "mrkdwn", "text": _escape(card.footer)}]})
    return rendered


def fallback(card: Card) -> str:
    """The text shown in notifications and where blocks cannot be: title and lines. Slack reads
    it as markup too (`<!channel>` would ping), so it is escaped like the blocks."""
    return _escape("\n".join([card.title, *card.lines])[:3000])


SECTION_TEXT = 3000  # Slack's limit; escaping `&<>` can lengthen what the core already fitted


def _section(text: str, escaped: bool = False) -> dict[str, Any]:
    text = text if escaped else _escape(text)
    if len(text) > SECTION_TEXT:
        text = text[: SECTION_TEXT - 1].rsplit("\n", 1)[0] + "\n…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _escape(text: str) -> str:
    """Slack's three control characters escaped, so only rankbot's own markup is markup: its
    channel links (`bot.cards.channel_link`) become Slack's `<#C123>`."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return CHANNEL_LINK.sub(r"<#\1>", escaped)


def response(reply: Reply) -> dict[str, Any]:
    """A slash command's reply: answers in the channel; help, errors and admin replies only to
    the person who asked."""
    return {"text": fallback(reply.card), "blocks": blocks(reply.card),
            "response_type": "in_channel" if reply.public else "ephemeral"}


# -- delivery ------------------------------------------------------------------------------------

class SlackNotifier:
    """Implements the `Notifier` port with chat.postMessage (`chat:write.public` lets the bot
    post in public channels it has not joined). Each message carries its key as metadata, so
    that conversations.history can tell whether a send in doubt arrived."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str) -> None:
        async with _delivery_errors():
            await self._client.chat_postMessage(
                channel=ref.channel, text=fallback(card), blocks=blocks(card),
                unfurl_links=False, unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}})

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        """Read the channel since `since` (`channels:history`, `groups:history`) for our key."""
        oldest, cursor = f"{since.timestamp():.6f}", None
        async with _delivery_errors():
            for _ in range(HISTORY_PAGES):
                page = await self._client.conversations_history(
                    channel=ref.channel, oldest=oldest, limit=200, cursor=cursor,
                    include_all_metadata=True)
                messages: list[dict[str, Any]] = page.get("messages", [])
                if any(_key(message) == key for message in messages):
                    return True
                if not (cursor := (page.get("response_metadata") or {}).get("next_cursor")):
                    break
        return False


METADATA_EVENT = "rankbot_message"
HISTORY_PAGES = 5  # of 200 messages: further back than that, a send in doubt is sent again


def _key(message: dict[str, Any]) -> object:
    """The key rankbot put in a message's metadata; None in anyone else's message."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_EVENT:
        return None
    return (metadata.get("event_payload") or {}).get("key")


@asynccontextmanager
async def _delivery_errors() -> AsyncIterator[None]:
    """Slack's errors, and not reaching Slack at all, as the core's `DeliveryError` kinds."""
    try:
        yield
    except SlackApiError as error:
        raise delivery_error(error) from error
    except (TimeoutError, aiohttp.ClientError) as error:
        reason = f"Slack unreachable ({type(error).__name__})"
        raise DeliveryError("transient", reason) from error


def delivery_error(error: SlackApiError) -> DeliveryError:
    code = str(error.response.get("error") or f"HTTP {error.response.status_code}")
    if error.response.status_code == 429 or code == "ratelimited":
        retry = error.response.headers.get("Retry-After", error.response.headers.get(
            "retry-after", "1"))
        return DeliveryError("rate_limited", code, float(retry) if str(retry).isdigit() else 1.0)
    if code in GONE:
        return DeliveryError("permanent", code)
    if code in LOCKED_OUT:
        return DeliveryError("auth", code)
    return DeliveryError("transient", code)


# -- admins --------------------------------------------------------------------------------------

class SlackAdmins:
    """Implements the `Authorizer` port: workspace admins and owners (users.info, cached for a
    few minutes) and anyone listed in RANKBOT_ADMINS. When Slack cannot say (rate-limited past
    what a command can wait, unreachable), AskAgain: never a false "not an admin"."""

    def __init__(self, client: AsyncWebClient, admins: frozenset[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client, self._admins, self._clock = client, admins, clock
        self._known: dict[tuple[str, str], tuple[bool, float]] = {}

    def of_team(self, team: str) -> Authorizer:
        """Whether a user is an admin of `team`, the workspace they asked from, whichever
        workspace the channel belongs to."""
        return _TeamAdmins(self, team)

    async def is_admin(self, ref: ChannelRef, user: str) -> bool:
        if user in self._admins:
            return True
        key = (ref.workspace, user)
        known = self._known.get(key)
        if known and known[1] > self._clock():
            return known[0]
        found = await self._user(user)
        if found is None:
            return False
        admin = bool(found.get("is_admin") or found.get("is_owner")
                     or found.get("is_primary_owner")) and found.get("team_id", ref.workspace) \
            == ref.workspace
        self._known[key] = (admin, self._clock() + ADMIN_FOR)
        return admin

    async def _user(self, user: str) -> dict[str, Any] | None:
        """users.info's answer; None for a user Slack does not know. A 429 is waited out if
        Slack asks for no longer than Slack's 3 s for a command allow; AskAgain otherwise."""
        for attempt in range(2):
            try:
                found: dict[str, Any] = (await self._client.users_info(user=user))["user"]
                return found
            except SlackApiError as error:
                if error.response.get("error") in ("user_not_found", "users_not_found"):
                    return None
                wait = delivery_error(error).retry_after
                if error.response.status_code != 429 or wait is None or attempt or \
                        wait > RATE_LIMIT_WAIT:
                    log.warning("users.info failed for %s", user, exc_info=True)
                    raise AskAgain(f"Slack answered {delivery_error(error).reason}") from error
                await asyncio.sleep(wait)
            except (TimeoutError, aiohttp.ClientError) as error:
                log.warning("users.info failed for %s", user, exc_info=True)
                raise AskAgain("Slack did not answer") from error
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class _TeamAdmins:
    admins: SlackAdmins
    team: str

    async def is_admin(self, ref: ChannelRef, user: str) -> bool:
        return await self.admins.is_admin(ChannelRef(ref.platform, self.team, ref.channel), user)


# -- the app -------------------------------------------------------------------------------------


def typed(command: dict[str, Any]) -> str:
    """What the person typed: Slack sends a command's text with `&`, `<` and `>` escaped as
    in its messages (`/rankbot set price_fields *>*` arrives as `*&gt;*`)."""
    text = str(command.get("text", ""))
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

@dataclass(frozen=True)
class SlackContext:
    db: Database[AdminWork]
    admins: SlackAdmins
    clock: Callable[[], datetime]


def build_app(client: AsyncWebClient, signing_secret: str | None, context: SlackContext
              ) -> AsyncApp:
    app = AsyncApp(client=client, signing_secret=signing_secret or None,
                   request_verification_enabled=bool(signing_secret),
                   process_before_response=True)

    async def on_query(ack: AsyncAck, command: dict[str, Any]) -> None:
        reply = await context.db.read(lambda work: answer(
            command["command"], typed(command), work.snapshots, now=context.clock()))
        await ack(**response(reply))

    async def on_admin(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        # A Slack channel id is unique across workspaces: a channel shared by two
        # organisations has one subscription, which the admins of either see and change.
        team, channel = command["team_id"], command["channel_id"]
        owned = await context.db.read(
            lambda work: work.channels.channel_subscription("slack", channel))
        work = asyncio.ensure_future(administer(
            typed(command), ref=owned.ref if owned else ChannelRef("slack", team, channel),
            user=command["user_id"], authorizer=context.admins.of_team(team),
            work=context.db.store, now=context.clock(), workspace=team,
            offload=context.db.write))
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), ACK_WITHIN)
        except TimeoutError:  # waiting for the database: say so now, answer when it is done
            await ack(**response(private("rankbot", BUSY)))
            _later(_respond_when_done(work, respond))
            return
        await ack(**response(reply))

    for name in QUERY_COMMANDS:
        app.command(name)(on_query)
    app.command(ADMIN_COMMAND)(on_admin)
    return app


_PENDING: set[asyncio.Task[None]] = set()  # answers that follow a BUSY acknowledgement


def _later(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(coroutine)
    _PENDING.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_PENDING.discard)


async def _respond_when_done(work: asyncio.Future[Reply], respond: AsyncRespond) -> None:
    reply = await work  # administer never raises
    try:
        await respond(**response(reply))
    except Exception:  # Slack's response_url refused or unreachable: the change is made
        log.warning("could not post a /rankbot answer to its response_url", exc_info=True)


async def serve_http(app: AsyncApp, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    """HTTP mode on its own: Slack posts signed requests to /slack/events; started in our
    event loop, within the endpoint's limits (deadlines, a connection cap:
    adapters/http_server.py). `rankbot run` serves `events_route` beside its other pages."""
    return await http_server.serve(web_app(app), host, port)


def _unlogged(record: logging.LogRecord) -> bool:
    return False


def web_app(app: AsyncApp) -> web.Application:
    served = web.Application()
    served.add_routes([events_route(app)])
    return served


def events_route(app: AsyncApp) -> web.RouteDef:
    """The endpoint as slack-bolt's own aiohttp adapter serves it, less two of its gaps: a
    timestamp that is not one gets the 401 of any unverifiable request (bolt's check would
    raise: a 500), and a form body that merely contains the word "payload" (`/rank payload`)
    is read as the form it is (bolt would take it for an interaction and answer 404)."""
    # slack_bolt logs every refused request with its whole body, at INFO, on this logger (its
    # RequestVerification middleware): never a body in the log; http_server counts refusals.
    logging.getLogger("slack_bolt.RequestVerification").addFilter(_unlogged)

    async def events(request: web.Request) -> web.Response:
        if not _plausible(request.headers.get("X-Slack-Request-Timestamp", "")):
            return web.Response(status=401)
        bolt = await to_bolt_request(request)
        _as_form(bolt)
        return await to_aiohttp_response(await app.async_dispatch(bolt))

    return web.post(PATH, events)


def _plausible(timestamp: str) -> bool:
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12


def _as_form(bolt: AsyncBoltRequest) -> None:
    if bolt.body or not bolt.raw_body or bolt.raw_body.startswith("{"):
        return
    form = dict(parse_qsl(bolt.raw_body, keep_blank_values=True))
    if form and "payload" not in form:
        bolt.body = form
        bolt.context = build_async_context(AsyncBoltContext({}), form)


async def connect_socket_mode(app: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """Socket Mode: no public URL; Slack sends the same requests over a websocket."""
    handler = AsyncSocketModeHandler(app, app_token)
    handler.client.logger.addFilter(_said_by_us)
    try:
        # slack_sdk would retry a refused token forever, every few seconds: ask for the
        # websocket's address first, so that a refusal is known and said once.
        handler.client.wss_uri = await handler.client.issue_new_wss_url()
    except SlackApiError as error:
        await handler.close_async()  # type: ignore[no-untyped-call]
        code = str(error.response.get("error"))
        if code in LOCKED_OUT:
            raise Refused(f"SLACK_APP_TOKEN was refused ({code}): give it a new app-level "
                          "token with connections:write; Socket Mode is off until rankbot "
                          "restarts") from error
        raise
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler


def _said_by_us(record: logging.LogRecord) -> bool:
    """slack_sdk logs a failure to open Socket Mode as an error of its own; the supervisor
    logs it once, with what to do."""
    return not str(record.msg).startswith("Failed to retrieve WSS URL")


SOCKET_CHECK = 5.0  # seconds between looks at whether slack_sdk's websocket is up


def socket_mode(app: AsyncApp, app_token: str, connection: Connection
                ) -> Callable[[], Awaitable[None]]:
    """One run of Socket Mode, for `supervise`. slack_sdk reconnects a dropped websocket by
    itself; this run follows whether it is up, and ends (to be started afresh) only if opening
    it fails or slack_sdk's client stops."""

    async def run() -> None:
        handler = await connect_socket_mode(app, app_token)
        try:
            while True:
                if await handler.client.is_connected():
                    await connection.up()
                else:
                    await connection.down("the Socket Mode websocket is down; reconnecting")
                await asyncio.sleep(SOCKET_CHECK)
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]

    return run
