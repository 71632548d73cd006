"""The composition root: the one place where real adapters are opened and wired to the core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from adapters.console import ConsoleNotifier
from adapters.openrouter import OpenRouterClient, open_http
from bot.config import Settings
from bot.polling import Outcome, deliver, poll_all, poll_catalog, poll_rankings
from bot.ports import Notifier
from bot.rules import DEFAULT_RULES, Rules
from storage import Repository

log = logging.getLogger(__name__)
MISFIRE_GRACE = 15 * 60  # a job late by less than this (a busy loop, a suspended laptop) still runs


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    store: Repository
    source: OpenRouterClient
    notifier: Notifier
    rules: Rules = DEFAULT_RULES
    clock: Callable[[], datetime] = field(default=utc_now)

    async def poll(self) -> list[Outcome]:
        """One fetch of every source, stored and diffed; nothing delivered."""
        return _logged(await poll_all(self.source, self.store, self.clock(), self.rules))

    async def deliver(self, outcomes: list[Outcome]) -> None:
        await deliver(self.notifier, self.store, outcomes, self.clock())

    async def catalog_job(self) -> None:
        outcome = await poll_catalog(self.source, self.store, self.clock(), self.rules)
        await self.deliver(_logged([outcome]))

    async def rankings_job(self) -> None:
        outcome = await poll_rankings(self.source, self.store, self.clock(), self.rules)
        await self.deliver(_logged([outcome]))


def _logged(outcomes: list[Outcome]) -> list[Outcome]:
    for outcome in outcomes:
        if outcome.fault is None:  # faults were logged where they were recorded
            log.info(outcome.summary)
    return outcomes


def open_store(settings: Settings) -> Repository:
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    return Repository.open(settings.db_path)


@asynccontextmanager
async def open_app(settings: Settings, notifier: Notifier | None = None) -> AsyncIterator[App]:
    store = open_store(settings)
    try:
        async with open_http(settings.openrouter_base_url) as http:
            source = OpenRouterClient(http, api_key=settings.openrouter_api_key)
            yield App(settings, store, source, notifier or ConsoleNotifier())
    finally:
        store.close()


def schedule(app: App) -> AsyncIOScheduler:
    """Catalog every N minutes, rankings daily after the export is published; both also at
    start. Coalescing turns missed runs into one; one instance of each job at a time."""
    settings = app.settings
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE})
    now = app.clock()
    scheduler.add_job(app.catalog_job, IntervalTrigger(minutes=settings.catalog_every_minutes),
                      id="catalog", name="catalog poll", next_run_time=now)
    at = settings.rankings_at
    scheduler.add_job(app.rankings_job, CronTrigger(hour=at.hour, minute=at.minute, timezone=UTC),
                      id="rankings", name="rankings poll", next_run_time=now)
    return scheduler


async def run_until_stopped(app: App, stop: asyncio.Event) -> None:
    scheduler = schedule(app)
    scheduler.start()
    log.info("rankbot is running: catalog every %d min, rankings daily at %s UTC; Ctrl-C stops",
             app.settings.catalog_every_minutes, app.settings.rankings_at.strftime("%H:%M"))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
