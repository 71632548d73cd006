"""The composition root: the one place where real adapters are opened and wired to the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import discord
import httpx
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters import http_server
from rankbot.adapters.charts import warm as warm_charts
from rankbot.adapters.console import ConsoleNotifier
from rankbot.adapters.discord_chat import (
    DiscordContext,
    DiscordNotifier,
    build_tree,
    gateway,
    handle_clicks,
    intents,
    use_api,
)
from rankbot.adapters.openrouter import MB, OpenRouterClient, open_http
from rankbot.adapters.processes import this_worker, worker_gone
from rankbot.adapters.slack_chat import PATH as SLACK_PATH
from rankbot.adapters.slack_chat import (
    SlackAdmins,
    SlackContext,
    SlackNotifier,
    build_app,
    events_route,
    socket_mode,
)
from rankbot.adapters.supervisor import Connection, supervise
from rankbot.adapters.web import PATHS as WEB_PATHS
from rankbot.adapters.web import routes as web_routes
from rankbot.bot.channels import CONSOLE
from rankbot.bot.config import ConfigError, Settings
from rankbot.bot.connections import ConnectionState
from rankbot.bot.delivery import Courier, Report
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.feed import SIZE as FEED_SIZE
from rankbot.bot.feed import keep_digest
from rankbot.bot.health import (
    DEAD_LETTER_WINDOW,
    RANKINGS_EVERY,
    Facts,
    Health,
    Level,
    SourceFacts,
    assess,
)
from rankbot.bot.polling import Outcome, poll_all, poll_catalog, poll_rankings
from rankbot.bot.ports import Database, FeedEntry, FetchRecord, InPlace, Notifier
from rankbot.bot.provider_polling import BATCH as PROVIDER_BATCH
from rankbot.bot.provider_polling import choose_targets, poll_providers
from rankbot.bot.rules import DEFAULT_RULES, Rules
from rankbot.storage import UnitOfWork
from rankbot.storage.health import DatabaseUnusable, damaged, diagnose, guarded, is_damage
from rankbot.storage.threads import Threads

log = logging.getLogger(__name__)
T = TypeVar("T")
HTTP_HOST = "0.0.0.0"  # every interface: Slack, monitors and feed readers come from elsewhere
MISFIRE_GRACE = 15 * 60  # a job late by less than this (a busy loop, a suspended laptop) still runs
DELIVERY_EVERY = 5  # seconds between outbox checks, for retries and the end of quiet hours
SPREAD = 0.9  # of the catalog interval a round of provider requests is spread over
PROVIDERS_AFTER = timedelta(minutes=1)  # the first round waits for the first catalog


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    store: UnitOfWork
    source: OpenRouterClient
    notifiers: dict[str, Notifier]
    rules: Rules = DEFAULT_RULES
    slack: AsyncWebClient | None = None
    discord: discord.Client | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    # Where database work runs: in place for one-shot commands; on threads of its own in
    # `rankbot run`, where the event loop serves commands and must never wait on SQLite.
    db: Database[UnitOfWork] | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # between provider requests
    courier: Courier = field(init=False)

    def __post_init__(self) -> None:
        self.db = self.db or InPlace(self.store)
        self.courier = Courier(self.db.store, self.notifiers, self.clock, worker=this_worker(),
                               offload=self.db.write)

    @property
    def database(self) -> Database[UnitOfWork]:
        assert self.db is not None  # set in __post_init__
        return self.db

    async def poll(self) -> list[Outcome]:
        """One fetch of every source, stored, diffed and queued for each channel; then the
        providers of the models that matter, all once, a second apart."""
        outcomes = _logged(await poll_all(self.source, self.database.store, self.clock(),
                                          self.rules, self.database.write))
        return outcomes + _logged(await poll_providers(
            self.source, self.database.store, self.clock, self.rules,
            limit=self.settings.providers_max, offload=self.database.write, sleep=self.sleep))

    async def providers_job(self) -> None:
        """The providers, spread over the catalog interval (never more than one request a
        second), stored and told every BATCH models, each batch delivered at once."""
        store, every = self.database.store, self.settings.catalog_every_minutes * 60
        targets = await self.database.read(lambda work: len(choose_targets(
            work, self.settings.providers_max)))
        if targets:
            _logged(await poll_providers(
                self.source, store, self.clock, self.rules, limit=self.settings.providers_max,
                offload=self.database.write, sleep=self.sleep,
                spacing=SPREAD * every / targets, batch=PROVIDER_BATCH,
                after_batch=self.deliver))

    async def deliver(self) -> Report:
        report = await self.courier.deliver_due()
        if report.sent or report.deferred or report.dead or report.paused:
            log.info("delivery: %d sent, %d deferred, %d dead-lettered, %d channel(s) paused",
                     report.sent, report.deferred, report.dead, len(report.paused))
        return report

    async def catalog_job(self) -> None:
        _logged(await poll_catalog(self.source, self.database.store, self.clock(), self.rules,
                                   self.database.write))
        await self.deliver()

    async def rankings_job(self) -> None:
        _logged(await poll_rankings(self.source, self.database.store, self.clock(), self.rules,
                                    self.database.write))
        await self.keep_digest()  # a new install's first rankings make this week's at once
        await self.deliver()

    async def digest_job(self) -> None:
        store, now = self.database.store, self.clock()
        if queued := await self.database.write(lambda: queue_due_digests(store, now)):
            log.info("weekly digest queued for %d channel(s)", queued)
        await self.keep_digest()
        await self.deliver()

    async def keep_digest(self) -> None:
        """The feeds' entry for this week's digest, once."""
        store, now = self.database.store, self.clock()
        await self.database.write(lambda: keep_digest(store, now))

    async def health(self) -> Health:
        """`rankbot status --check`'s verdict, read on a reader thread. A database that can no
        longer serve is `down`, as `status --check` says with exit 2."""
        now = self.clock()
        try:
            return assess(await self.database.read(
                lambda store: health_facts(self.settings, store, now, _debug)))
        except (sqlite3.Error, DatabaseUnusable) as error:
            if (unusable := diagnose(self.settings.db_path, error)) is None:
                raise  # not about the file (a bug): a 500 with its traceback
            log.warning("/healthz: %s", unusable)
            return Health(Level.DOWN, ("the database cannot serve: `rankbot status` says why",))

    async def feed(self, kinds: frozenset[str]) -> list[FeedEntry]:
        """The feeds' newest entries (of `kinds` only, unless empty), read on a reader thread."""
        return await self.database.read(lambda work: work.feed.feed_entries(kinds, FEED_SIZE))


def _logged(outcomes: list[Outcome]) -> list[Outcome]:
    for outcome in outcomes:
        if outcome.fault is None:  # faults were logged where they were recorded
            log.info(outcome.summary)
    return outcomes


Noticed = Callable[[str, sqlite3.DatabaseError], None]  # a part that could not be read, and why


def probe_health(settings: Settings, now: datetime, noticed: Noticed) -> Facts:
    """What `status --check` weighs, from a process of its own. A probe creates nothing: no
    file yet is never fetched."""
    if not settings.db_path.exists():
        return Facts(now, sources=source_facts(settings, None, None))
    store = open_store(settings, writes=False)
    try:
        return health_facts(settings, store, now, noticed)
    finally:
        store.close()


def health_facts(settings: Settings, store: UnitOfWork, now: datetime,
                 noticed: Noticed) -> Facts:
    """What `status --check` and `/healthz` weigh, read from `store`. A part with damaged
    pages is a fact too, and the others are still read."""
    last = unless_damaged("fetches", lambda: (store.snapshots.last_catalog_fetch(),
                                              store.snapshots.last_rankings_fetch()), noticed)
    channels = unless_damaged("channels", store.channels.subscriptions, noticed)
    dead = unless_damaged("outbox", lambda: store.outbox.dead_letter_count(
        now - DEAD_LETTER_WINDOW),
                          noticed)
    links = unless_damaged("chat connections", store.channels.connections, noticed)
    # A person who closed their DMs paused only their own watches: nothing for the operator to
    # fix, so it never degrades health (`rankbot status` counts them apart); a missing scope does.
    paused = sum(1 for s in channels or () if s.paused_for_operator)
    return Facts(
        now, sources=() if last is None else source_facts(settings, *last),
        connections=tuple(links or ()),
        dead_letters=dead or 0, paused=paused,
        unreadable_settings=sum(1 for s in channels or () if s.unreadable),
        damage=tuple(store.quick_check()), read_only=store.read_only,
        unread=tuple(part for part, got in (("fetches", last), ("channels", channels),
                                            ("outbox", dead), ("chat connections", links))
                     if got is None))


def source_facts(settings: Settings, catalog: FetchRecord | None,
                 rankings: FetchRecord | None) -> tuple[SourceFacts, ...]:
    return (SourceFacts("catalog", timedelta(minutes=settings.catalog_every_minutes),
                        catalog.at if catalog else None),
            SourceFacts("rankings", RANKINGS_EVERY, rankings.at if rankings else None))


def unless_damaged(what: str, read: Callable[[], T], noticed: Noticed) -> T | None:
    """One part of what is read; None where its pages are damaged, so that the rest still
    shows (`noticed` is told which part, and the error)."""
    try:
        return read()
    except sqlite3.DatabaseError as error:
        if not is_damage(error):
            raise
        noticed(what, error)
        return None


def _debug(what: str, error: sqlite3.DatabaseError) -> None:
    """/healthz says which part cannot be read; a monitor asking every few seconds must not
    fill the log with it (`rankbot status` writes the traceback to the log file)."""
    log.debug("the %s cannot be read", what, exc_info=error)


def open_store(settings: Settings, *, writes: bool = True) -> UnitOfWork:
    """The database. With no chat platform configured, the console is subscribed the first
    time (an operator who unsubscribes it stays unsubscribed). A file that cannot serve raises
    DatabaseUnusable; so does one that cannot be written, or has damaged pages, for a command
    that `writes` (writing into damage spreads it). A command that only reads gets a file it
    can only read opened read-only: never written, not even to subscribe the console."""
    path = settings.db_path
    # SQLite would open a write-protected file read-only without a word; say so from the start.
    if not writes and os.access(path, os.F_OK) and not os.access(path, os.W_OK):
        return UnitOfWork.open(path, read_only=True)
    try:
        return _open_writable(settings, writes)
    except DatabaseUnusable as unusable:
        if writes or not unusable.readable:
            raise
        log.debug("%s: reading it as it is", unusable)
        return UnitOfWork.open(path, read_only=True)


def _open_writable(settings: Settings, writes: bool) -> UnitOfWork:
    path = settings.db_path
    with guarded(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    store = UnitOfWork.open(path)
    try:
        with guarded(path):
            if writes:
                store.check_writable()
                if problems := store.quick_check():
                    raise damaged(path, problems)
            if not (settings.slack or settings.discord) \
                    and store.channels.subscription(CONSOLE) is None:
                with store:
                    store.channels.subscribe(CONSOLE, "all", utc_now())
    except BaseException:
        store.close()
        raise
    return store


@asynccontextmanager
async def open_app(settings: Settings, console: Notifier | None = None, *,
                   threaded: bool = False) -> AsyncIterator[App]:
    """Every adapter the settings name, opened and wired. `threaded` (for `rankbot run`):
    database work runs on threads of its own (`storage.threads`)."""
    store = open_store(settings)
    with store:
        released = store.outbox.release_claims(worker_gone)
    if released:
        log.warning("%d message(s) were being sent when rankbot last stopped without warning; "
                    "each is looked for in its channel before it is sent again", released)
    notifiers: dict[str, Notifier] = {"console": console or ConsoleNotifier()}
    slack = discord_client = None
    if settings.slack:
        slack = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
        # Delivery gets a client that never retries by itself: slack_sdk would repeat a post
        # whose connection dropped after Slack took it. The outbox retries, looking first.
        notifiers["slack"] = SlackNotifier(AsyncWebClient(
            token=settings.slack_bot_token, base_url=settings.slack_api_url, retry_handlers=[]))
    try:
        if settings.discord:
            discord_client = await open_discord(settings)
            bot_id = discord_client.user.id if discord_client.user else None
            notifiers["discord"] = DiscordNotifier(discord_client.http, bot_id)
        timeout = httpx.Timeout(settings.fetch_timeout, connect=min(10.0, settings.fetch_timeout))
        async with open_http(settings.openrouter_base_url, timeout) as http:
            source = OpenRouterClient(
                http, api_key=settings.openrouter_api_key, fetch_timeout=settings.fetch_timeout,
                max_bytes=int(settings.max_response_mb * MB))
            threads = Threads(partial(UnitOfWork.open, settings.db_path, threaded=True)
                              ) if threaded else None
            try:
                yield App(settings, store, source, notifiers, slack=slack,
                          discord=discord_client, db=threads)
            finally:
                if threads is not None:
                    threads.close()
    finally:
        if discord_client is not None:
            await discord_client.close()
        store.close()


async def open_discord(settings: Settings) -> discord.Client:
    """A logged-in discord.py client (REST only until `connect`); a refused token is one
    clear error."""
    use_api(settings.discord_api_url, settings.discord_gateway_url)
    client = discord.Client(intents=intents(), allowed_mentions=discord.AllowedMentions.none())
    try:
        await client.login(settings.discord_bot_token or "")
    except discord.LoginFailure:
        await client.close()
        raise ConfigError("DISCORD_BOT_TOKEN was refused by Discord (401): check the token "
                          "on the Bot page of your application") from None
    return client


def schedule(app: App) -> AsyncIOScheduler:
    """Catalog every N minutes, rankings daily after the export is published, both also at
    start; digests and the outbox as they fall due. Coalescing turns missed runs into one; one
    instance of each job at a time."""
    settings = app.settings
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE})
    now = app.clock()
    scheduler.add_job(app.catalog_job, IntervalTrigger(minutes=settings.catalog_every_minutes),
                      id="catalog", name="catalog poll", next_run_time=now)
    at = settings.rankings_at
    scheduler.add_job(app.rankings_job, CronTrigger(hour=at.hour, minute=at.minute, timezone=UTC),
                      id="rankings", name="rankings poll", next_run_time=now)
    # Each channel has its own digest time; a quarter-hourly check (and one at start, for a
    # digest missed while down) queues what is due. Retries and quiet hours wait in the outbox.
    if settings.providers_max:
        scheduler.add_job(app.providers_job,
                          IntervalTrigger(minutes=settings.catalog_every_minutes),
                          id="providers", name="providers poll",
                          next_run_time=now + PROVIDERS_AFTER)
    scheduler.add_job(app.digest_job, IntervalTrigger(minutes=15), id="digests",
                      name="weekly digests", next_run_time=now)
    scheduler.add_job(app.deliver, IntervalTrigger(seconds=DELIVERY_EVERY), id="delivery",
                      name="outbox delivery", next_run_time=now)
    return scheduler


async def run_until_stopped(app: App, stop: asyncio.Event) -> None:
    scheduler = schedule(app)
    scheduler.start()
    async with contextlib.AsyncExitStack() as chats:
        events = start_slack(app, chats) if app.slack is not None else None
        if app.discord is not None:
            start_discord(app, chats)
        if app.slack is not None or app.discord is not None:
            _later(chats, asyncio.to_thread(warm_charts), "charts warm-up")
        await serve_web(app, chats, events)
        log.info("rankbot is running: catalog every %d min, rankings daily at %s UTC; Ctrl-C "
                 "stops", app.settings.catalog_every_minutes,
                 app.settings.rankings_at.strftime("%H:%M"))
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)


def _later(chats: contextlib.AsyncExitStack, work: Awaitable[None], name: str) -> None:
    """Work that runs beside the chats and stops with them; a failure is logged."""
    async def run() -> None:
        try:
            await work
        except Exception:
            log.exception("%s failed", name)

    task = asyncio.create_task(run(), name=name)
    chats.callback(task.cancel)


def start_discord(app: App, chats: contextlib.AsyncExitStack) -> None:
    """Discord's commands arrive over the gateway, kept up by a supervisor; commands are synced
    with `rankbot discord sync`, deliberately, not at every start (Discord limits writes)."""
    client = app.discord
    assert client is not None
    context = DiscordContext(app.database, app.clock)
    build_tree(client, context)
    handle_clicks(client, context)  # buttons, by their ids: no view is kept across restarts
    supervised(app, chats, "discord", lambda link: gateway(client, link))
    log.info("Discord: connecting to the gateway")


def supervised(app: App, chats: contextlib.AsyncExitStack, platform: str,
               runner: Callable[[Connection], Callable[[], Awaitable[None]]]) -> None:
    """Start a chat connection under its supervisor, its state kept in the database."""
    store = app.database.store

    async def record(state: ConnectionState) -> None:
        await app.database.write(lambda: _save_connection(store, state))

    link = Connection(platform, record, app.clock)
    task = asyncio.create_task(supervise(link, runner(link)), name=f"{platform} connection")
    chats.callback(task.cancel)


def start_slack(app: App, chats: contextlib.AsyncExitStack) -> AsyncApp | None:
    """Slack's commands, in HTTP mode, Socket Mode or both, in this event loop; the app for
    `serve_web` to serve at /slack/events in HTTP mode."""
    settings, client = app.settings, app.slack
    assert client is not None
    context = SlackContext(app.database, SlackAdmins(client, settings.admins), app.clock)
    slack_app = build_app(client, settings.slack_signing_secret, context)
    if settings.slack_app_token:
        token = settings.slack_app_token
        supervised(app, chats, "slack", lambda link: socket_mode(slack_app, token, link))
        log.info("Slack Socket Mode: connecting")
    return slack_app if settings.slack_signing_secret else None


async def serve_web(app: App, chats: contextlib.AsyncExitStack,
                    slack_events: AsyncApp | None) -> None:
    """/healthz and the feeds always, and Slack's /slack/events in HTTP mode, on
    RANKBOT_HTTP_PORT. A port that cannot be had (taken, say) is one warning: everything else
    runs without it, so that `rankbot run` starts on any machine."""
    port, served = app.settings.http_port, web.Application()
    served.add_routes(web_routes(app.health, app.feed))
    paths = list(WEB_PATHS)
    if slack_events is not None:
        served.add_routes([events_route(slack_events)])
        paths.append(SLACK_PATH)
    try:
        runner = await http_server.serve(served, HTTP_HOST, port)
    except OSError as error:
        log.warning("cannot serve HTTP on port %d (%s): %s are off; set RANKBOT_HTTP_PORT to a "
                    "free port", port, os.strerror(error.errno) if error.errno else error,
                    ", ".join(paths))
        return
    chats.push_async_callback(runner.cleanup)
    log.info("serving %s on port %d", ", ".join(paths), port)
    if slack_events is not None:
        log.info("Slack HTTP mode: listening on port %d at %s", port, SLACK_PATH)


def _save_connection(work: UnitOfWork, state: ConnectionState) -> None:
    with work:
        work.channels.save_connection(state)
