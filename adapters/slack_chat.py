"""Slack: slash commands, buttons, the Home tab, charts, delivery and admin checks, on
slack-bolt's async app (Block Kit itself: adapters/slack_blocks.py).

Commands are answered through the core handlers inside the acknowledgement itself (they take
milliseconds), so Slack's 3-second limit is never at risk. A chart follows its answer as a
message of its own: Slack processes an upload after answering it, and an image block naming a
file it has not finished is refused, which in an acknowledgement would lose the answer. Clicks
are acknowledged at once and answered through their response_url (bolt's lazy listeners).
Alerts and digests reach Slack only through the outbox and `SlackNotifier`; its errors become
the core's `DeliveryError` kinds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
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
from rankbot.adapters.charts import png
from rankbot.adapters.slack_blocks import escape, fallback, home_view, message_blocks, response
from rankbot.adapters.supervisor import Connection, Refused
from rankbot.bot.admin import AdminWork, administer
from rankbot.bot.buttons import PREFIX, Control, alert_controls
from rankbot.bot.cards import Card
from rankbot.bot.channels import APP_SETUP, ChannelRef, person_ref
from rankbot.bot.charts import PriceSeries, RankSeries, Series
from rankbot.bot.clicks import Click, click
from rankbot.bot.commands import ACK_WITHIN, BUSY, COMMANDS, Reply, answer_with_chart, private
from rankbot.bot.home import Section, home
from rankbot.bot.ports import AskAgain, Authorizer, Database, DeliveryError
from rankbot.bot.watches import watch_command, watched

log = logging.getLogger(__name__)
# Every slash command but /help, in COMMANDS' order (the manifest's); the personal ones
# (/watch, /unwatch) are answered for whoever typed them.
QUERY_COMMANDS = tuple(f"/{name}" for name in COMMANDS if name != "help")
PERSONAL = frozenset(f"/{name}" for name, spec in COMMANDS.items() if spec.personal)
ADMIN_COMMAND = "/rankbot"
PATH = "/slack/events"
# Permanent for that channel or person: a person who cannot be messaged pauses their watches.
GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "channel_is_archived",
                  "restricted_action", "team_access_not_granted", "missing_scope",
                  "user_not_found", "user_not_visible", "user_disabled", "cannot_dm_bot",
                  "messages_tab_disabled"})
# Of those, what rankbot's app lacks (a scope the install did not grant): the operator's to
# mend, never the person's, for whom it pauses their watches (`bot.channels.APP_SETUP`).
SETUP = frozenset({"restricted_action", "team_access_not_granted", "missing_scope"})
LOCKED_OUT = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed",
                        "token_expired"})
ADMIN_FOR = 300.0  # seconds a users.info answer is trusted
RATE_LIMIT_WAIT = 1.5  # seconds of Retry-After worth waiting inside Slack's 3 s for a command
# The bot scopes rankbot asks for (slack-manifest.yml): commands; post, also in public channels
# it has not joined; read back its own posts in public and private channels and in direct
# messages (a send in doubt is looked for before it is sent again); open a direct message for a
# person's watches; see who is an admin; upload charts (privately: shared with no channel).
SCOPES = ("commands", "chat:write", "chat:write.public", "channels:history", "groups:history",
          "im:history", "im:write", "users:read", "files:write")
CONTROL = re.compile(f"^{PREFIX}:")  # the action ids of rankbot's buttons and menus
# Seconds between tries of a message whose image Slack has not finished processing; then
# the message goes without it. A response_url takes five messages: the chart's tries.
IMAGE_WAITS = (0.5, 1.0, 2.0, 4.0)
CHART_FILE = "rankbot-chart.png"


# -- charts --------------------------------------------------------------------------------------

class ChartUploads:
    """Charts drawn (off the event loop) and uploaded privately (shared with no channel), each
    series once: a digest's chart in a thousand channels, or the same `/rank` asked again, is
    one file, referenced by an image block in each message."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._files: OrderedDict[Series, str] = OrderedDict()  # series → file id
        self._uploading: dict[Series, asyncio.Future[str | None]] = {}

    async def image(self, series: Series) -> dict[str, Any] | None:
        """The chart as an image block; None, logged with its traceback, when drawing or
        uploading fails: the message goes without it."""
        if (file_id := self._files.get(series)) is None:
            pending = self._uploading.get(series)
            if pending is None:  # one upload, however many sends wait for it
                pending = self._uploading[series] = asyncio.ensure_future(self._upload(series))
                pending.add_done_callback(lambda _: self._uploading.pop(series, None))
            if (file_id := await asyncio.shield(pending)) is None:
                return None
        self._files.move_to_end(series)
        # Escaped as the blocks' text is: a name in it stays text wherever Slack shows it.
        return {"type": "image", "slack_file": {"id": file_id}, "alt_text": escape(_alt(series))}

    async def _upload(self, series: Series) -> str | None:
        alt = _alt(series)
        try:
            drawn = await asyncio.to_thread(png, series)
            uploaded = await self._client.files_upload_v2(
                file=drawn, filename=CHART_FILE, title=alt, alt_txt=alt)
            file_id = str(uploaded["file"]["id"])
        except Exception:
            log.exception("the chart (%s) could not be drawn or uploaded; sent without it", alt)
            return None
        self._files[series] = file_id
        if len(self._files) > UPLOADS_KEPT:
            self._files.popitem(last=False)
        return file_id

    def forget(self, series: Series) -> None:
        """A file Slack refused in a message (deleted, say): uploaded afresh next time."""
        self._files.pop(series, None)


UPLOADS_KEPT = 64
ALT = 2000  # Slack's limit for an image's alt_text


def _alt(series: Series) -> str:
    if isinstance(series, RankSeries):
        text = f"{series.label}: daily rank and share of tokens, last {len(series.days)} days"
    elif isinstance(series, PriceSeries):
        text = f"{series.label}: input and output prices per 1M tokens"
    else:
        text = f"The week's top {len(series.lines)}, day by day, to {series.as_of}"
    return text[:ALT]


# -- delivery ------------------------------------------------------------------------------------

class SlackNotifier:
    """Implements the `Notifier` port with chat.postMessage (`chat:write.public` lets the bot
    post in public channels it has not joined). Each message carries its key as metadata, so
    that conversations.history can tell whether a send in doubt arrived. A person's messages
    go to their direct message with rankbot, opened once (`im:write`)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._direct: dict[str, str] = {}  # user → their direct message's channel id
        self._charts = ChartUploads(client)

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str, chart: Series | None = None) -> None:
        image = await self._charts.image(chart) if chart is not None else None
        controls = alert_controls(changes, person=ref.person)
        async with self._errors(ref):
            channel = await self._channel(ref)
            if chart is not None and image is not None:
                if await self._post_with_image(channel, card, key, controls, image):
                    return
                self._charts.forget(chart)  # refused every time: uploaded afresh next time
                log.warning("Slack refused the chart in a message to %s; sent without it", ref)
            await self._post(channel, card, key, message_blocks(card, controls))

    async def _post_with_image(self, channel: str, card: Card, key: str,
                               controls: Sequence[Control], image: dict[str, Any]) -> bool:
        """Post with the image, waiting while Slack still processes its file: a refused
        message (invalid_blocks) was not posted, so trying again cannot repeat it."""
        for wait in (*IMAGE_WAITS, None):
            try:
                await self._post(channel, card, key, message_blocks(card, controls, image))
                return True
            except SlackApiError as error:
                if error.response.get("error") != "invalid_blocks":
                    raise
                if wait is None:
                    return False
                await asyncio.sleep(wait)
        return False

    async def prepare(self, chart: Series) -> None:
        await self._charts.image(chart)

    async def _post(self, channel: str, card: Card, key: str, rendered: list[dict[str, Any]]
                    ) -> None:
        await self._client.chat_postMessage(
            channel=channel, text=fallback(card), blocks=rendered,
            unfurl_links=False, unfurl_media=False,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}})

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        """Read the channel since `since` (`channels:history`, `groups:history`,
        `im:history`) for our key."""
        oldest, cursor = f"{since.timestamp():.6f}", None
        async with self._errors(ref):
            channel = await self._channel(ref)
            for _ in range(HISTORY_PAGES):
                page = await self._client.conversations_history(
                    channel=channel, oldest=oldest, limit=200, cursor=cursor,
                    include_all_metadata=True)
                messages: list[dict[str, Any]] = page.get("messages", [])
                if any(_key(message) == key for message in messages):
                    return True
                if not (cursor := (page.get("response_metadata") or {}).get("next_cursor")):
                    break
        return False

    @asynccontextmanager
    async def _errors(self, ref: ChannelRef) -> AsyncIterator[None]:
        """Slack's errors as the core's; for a person, a DM channel that is gone is opened
        afresh next time, and a scope the app lacks is said to be the operator's to mend."""
        try:
            async with _delivery_errors():
                yield
        except DeliveryError as error:
            if not ref.person or error.kind != "permanent":
                raise
            self._direct.pop(ref.user, None)
            if error.reason in SETUP:
                raise DeliveryError("permanent", f"{APP_SETUP}Slack says {error.reason}: "
                                    "reinstall the app from slack-manifest.yml (im:write, "
                                    "im:history)") from error
            raise

    async def _channel(self, ref: ChannelRef) -> str:
        """The channel id; for a person, their direct message with rankbot, opened once."""
        if not ref.person:
            return ref.channel
        if ref.user not in self._direct:
            opened = await self._client.conversations_open(users=ref.user)
            self._direct[ref.user] = str(opened["channel"]["id"])
        return self._direct[ref.user]


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
    _commands(app, ChartUploads(client), context)
    _interactivity(app, client, context)
    return app


def _commands(app: AsyncApp, charts: ChartUploads, context: SlackContext) -> None:
    async def on_query(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        reply = await context.db.read(lambda work: answer_with_chart(
            command["command"], typed(command), work.snapshots, now=context.clock()))
        await ack(**response(reply))
        if reply.chart is not None:
            _later(_chart_follows(charts, reply.chart, respond))

    async def on_personal(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]
                          ) -> None:
        person = person_ref("slack", command["team_id"], command["user_id"])
        await _answer_within(ack, respond, asyncio.ensure_future(watch_command(
            command["command"], typed(command), person=person, work=context.db.store,
            now=context.clock(), offload=context.db.write)))

    async def on_admin(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        team, channel = command["team_id"], command["channel_id"]
        await _answer_within(ack, respond, asyncio.ensure_future(administer(
            typed(command), ref=await _shared(context, team, channel),
            user=command["user_id"], authorizer=context.admins.of_team(team),
            work=context.db.store, now=context.clock(), workspace=team,
            offload=context.db.write)))

    for name in QUERY_COMMANDS:
        app.command(name)(on_personal if name in PERSONAL else on_query)
    app.command(ADMIN_COMMAND)(on_admin)


async def _shared(context: SlackContext, team: str, channel: str) -> ChannelRef:
    """Where a command or click in `channel` acts. A Slack channel id is unique across
    workspaces: a channel shared by two organisations has one subscription, which the admins
    of either see and change."""
    owned = await context.db.read(
        lambda work: work.channels.channel_subscription("slack", channel))
    return owned.ref if owned else ChannelRef("slack", team, channel)


def _interactivity(app: AsyncApp, client: AsyncWebClient, context: SlackContext) -> None:
    """Clicks on rankbot's buttons and menus (acknowledged at once, then answered through
    their response_url: bolt's lazy listeners), and the Home tab."""

    async def acknowledge(ack: AsyncAck) -> None:
        await ack()

    async def on_click(body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
                       ) -> None:
        """Answered to the clicker alone; a click in the Home tab shows the tab again."""
        team, user, channel = _clicker(body)
        ref = await _shared(context, team, channel) if channel \
            else ChannelRef("slack", team, "")
        clicked = Click(action.get("action_id", ""),
                        (action.get("selected_option") or {}).get("value"), ref, user, team)
        reply = await click(clicked, authorizer=context.admins.of_team(team),
                            work=context.db.store, now=context.clock(),
                            offload=context.db.write)
        try:
            if respond.response_url is None:  # the Home tab: no message to answer under
                await publish_home(team, user)
            else:
                await respond(**{**response(reply), "response_type": "ephemeral"},
                              replace_original=False)
        except Exception:  # bolt would log a lazy listener's failure without its traceback
            log.exception("could not answer a click on %s", clicked.control[:100])

    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        """After the event is acknowledged (a lazy listener): a publish Slack refuses, or a
        slow admin check, must not turn into a 500 and Slack's retries."""
        if event.get("tab") != "home":
            return
        try:
            await publish_home(body.get("team_id") or "", event["user"])
        except Exception:
            log.exception("could not publish the Home tab for %s", str(event.get("user"))[:20])

    async def publish_home(team: str, user: str) -> None:
        person = person_ref("slack", team, user)
        try:
            admin = await context.admins.is_admin(ChannelRef("slack", team, ""), user)
        except AskAgain:  # Slack cannot say just now: this page without the admin's part
            admin = False

        def page(work: AdminWork) -> tuple[Section, ...]:
            mine = work.channels.subscription(person)
            return home(work.snapshots, mine, watched(work.channels, mine),
                        work.channels.subscriptions_in("slack", team) if admin else None,
                        context.clock())

        sections = await context.db.read(page)
        await client.views_publish(user_id=user, view=home_view(sections))

    app.action(CONTROL)(ack=acknowledge, lazy=[on_click])
    app.event("app_home_opened")(ack=acknowledge, lazy=[on_home_opened])


def _clicker(body: dict[str, Any]) -> tuple[str, str, str]:
    """(team, user, channel) of a block action; no channel for a click in the App Home."""
    user = body["user"]
    team = (body.get("team") or {}).get("id") or user.get("team_id", "")
    channel = (body.get("channel") or {}).get("id") \
        or (body.get("container") or {}).get("channel_id") or ""
    return str(team), str(user["id"]), str(channel)


_PENDING: set[asyncio.Task[None]] = set()  # answers that follow a BUSY acknowledgement


def _later(coroutine: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(coroutine)
    _PENDING.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_PENDING.discard)


async def _answer_within(ack: AsyncAck, respond: AsyncRespond, work: asyncio.Future[Reply]
                         ) -> None:
    """Acknowledge with the reply, or, while it waits for the database past ACK_WITHIN, with
    BUSY; the reply then follows through the response_url."""
    try:
        reply = await asyncio.wait_for(asyncio.shield(work), ACK_WITHIN)
    except TimeoutError:
        await ack(**response(private("rankbot", BUSY)))
        _later(_respond_when_done(work, respond))
        return
    await ack(**response(reply))


async def _respond_when_done(work: asyncio.Future[Reply], respond: AsyncRespond) -> None:
    reply = await work  # administer and watch_command never raise
    try:
        await respond(**response(reply))
    except Exception:  # Slack's response_url refused or unreachable: the change is made
        log.warning("could not post an answer to its response_url", exc_info=True)


async def _chart_follows(charts: ChartUploads, series: Series, respond: AsyncRespond) -> None:
    """An answer's chart, in a message of its own beneath it, once Slack has processed its
    file: a refusal (invalid_blocks) is tried again after a wait, then given up and logged,
    and the file is uploaded afresh for the next answer."""
    image = await charts.image(series)  # never raises: a failure is logged, and None
    if image is None:
        return
    for wait in (*IMAGE_WAITS, None):
        try:
            sent = await respond(text=image["alt_text"], blocks=[image],
                                 response_type="in_channel", replace_original=False)
        except Exception:
            log.warning("could not post a chart to its response_url", exc_info=True)
            return
        if sent.status_code == 200:
            return
        if wait is None:
            charts.forget(series)
            log.warning("Slack refused a chart %d times (%s: %s); the answer stands without it",
                        len(IMAGE_WAITS) + 1, sent.status_code, sent.body[:200])
            return
        await asyncio.sleep(wait)


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
