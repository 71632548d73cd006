"""`rankbot run`'s schedule: what runs when, and how missed runs are handled."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rankbot.bot.config import load_settings
from rankbot.shell.bootstrap import MISFIRE_GRACE, App, schedule
from rankbot.storage import UnitOfWork
from tests.conftest import RecordingNotifier

NOW = datetime(2026, 10, 8, 9, 30, tzinfo=UTC)


@pytest.mark.anyio
async def test_catalog_every_n_minutes_rankings_daily_both_at_start_coalesced(
        store: UnitOfWork) -> None:
    settings = load_settings({"RANKBOT_CATALOG_EVERY": "30", "RANKBOT_RANKINGS_AT": "02:20"})
    app = App(settings, store, source=None,  # type: ignore[arg-type]
              notifiers={"console": RecordingNotifier()}, clock=lambda: NOW)
    scheduler = schedule(app)
    scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
    jobs = {job.id: job for job in scheduler.get_jobs()}
    scheduler.shutdown(wait=False)
    assert set(jobs) == {"catalog", "rankings", "digests", "delivery"}
    for job in jobs.values():
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (
            True, 1, MISFIRE_GRACE)
        assert job.next_run_time == NOW  # a fresh start polls at once
    catalog, rankings = jobs["catalog"].trigger, jobs["rankings"].trigger
    assert isinstance(catalog, IntervalTrigger) and catalog.interval.total_seconds() == 1800
    assert isinstance(rankings, CronTrigger)
    assert rankings.get_next_fire_time(None, NOW) == datetime(2026, 10, 9, 2, 20, tzinfo=UTC)
    assert settings.rankings_at == time(2, 20)
