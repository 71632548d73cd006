"""`rankbot status --check`: healthy, degraded or down in one line, exit 0, 1 or 2. The decision
(bot/health.py) on facts, then the command on real databases."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rankbot.bot.cards import Card
from rankbot.bot.channels import CONSOLE, ChannelRef, person_ref
from rankbot.bot.config import load_settings
from rankbot.bot.health import (
    RANKINGS_EVERY,
    Facts,
    Finding,
    Level,
    SourceFacts,
    assess,
    judge,
)
from rankbot.shell.bootstrap import health_facts
from rankbot.storage import UnitOfWork
from tests.conftest import FIXTURES, RANKINGS_CSV, catalog_bytes, rankings_csv, serve_export
from tests.fakes.openrouter import FakeOpenRouter
from tests.test_cli import invoke

NOW = datetime(2026, 10, 8, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CATALOG = FIXTURES / "models" / "2026-08-22T183539Z.json.gz"


def sources(catalog: timedelta | None, rankings: timedelta | None,
            every: timedelta = HOUR) -> tuple[SourceFacts, ...]:
    """Both sources, last fetched this long before NOW (None: never)."""
    return (SourceFacts("catalog", every, None if catalog is None else NOW - catalog),
            SourceFacts("rankings", RANKINGS_EVERY, None if rankings is None else NOW - rankings))


FRESH = sources(timedelta(minutes=12), 5 * HOUR)


# -- the decision ------------------------------------------------------------------------------

def test_fresh_sources_are_healthy_and_say_how_fresh() -> None:
    health = assess(Facts(NOW, FRESH))
    assert health.level == Level.HEALTHY == 0
    assert health.line() == "healthy: catalog fetched 12 min ago; rankings fetched 5 h ago"


def test_the_issues_example_line() -> None:
    health = assess(Facts(NOW, sources(3 * HOUR, 5 * HOUR), dead_letters=2))
    assert health.level == Level.DEGRADED == 1
    assert health.line() == ("degraded: catalog last fetched 3 h ago (every 60 min); "
                             "2 dead letters in 7 days")


@pytest.mark.parametrize(("catalog", "rankings", "every", "line"), [
    (2 * HOUR, HOUR, HOUR, "healthy: catalog fetched 2 h ago; rankings fetched 60 min ago"),
    (2 * HOUR + timedelta(minutes=1), HOUR, HOUR,
     "degraded: catalog last fetched 2 h ago (every 60 min)"),
    (HOUR, timedelta(days=2), HOUR,
     "healthy: catalog fetched 60 min ago; rankings fetched 2 d ago"),
    (HOUR, timedelta(days=2, minutes=1), HOUR,
     "degraded: rankings last fetched 2 d ago (daily)"),
    (5 * HOUR, HOUR, 3 * HOUR, "healthy: catalog fetched 5 h ago; rankings fetched 60 min ago"),
    (7 * HOUR, HOUR, 3 * HOUR, "degraded: catalog last fetched 7 h ago (every 180 min)"),
    (HOUR, None, HOUR, "degraded: rankings never fetched"),
    (None, None, HOUR, "down: never fetched, run `rankbot poll`"),
    (-HOUR, HOUR, HOUR, "healthy: catalog fetched 0 min ago; rankings fetched 60 min ago"),
])
def test_a_source_is_stale_after_two_of_its_intervals(
        catalog: timedelta | None, rankings: timedelta | None, every: timedelta,
        line: str) -> None:
    assert assess(Facts(NOW, sources(catalog, rankings, every))).line() == line


@pytest.mark.parametrize(("facts", "line"), [
    (Facts(NOW, FRESH, dead_letters=1), "degraded: 1 dead letter in 7 days"),
    (Facts(NOW, FRESH, paused=2), "degraded: 2 channels paused"),
    (Facts(NOW, FRESH, unreadable_settings=1),
     "degraded: 1 channel skipped: settings cannot be read"),
    (Facts(NOW, FRESH, damage=("On tree page 7 cell 0: ...", "row 3 missing")),
     "degraded: database damaged (quick_check found 2 problems)"),
    (Facts(NOW, FRESH, unread=("channels", "outbox")),
     "degraded: channels, outbox cannot be read"),
    (Facts(NOW, FRESH, read_only=True), "degraded: database read-only"),
    (Facts(NOW, sources(None, None), paused=1, read_only=True),
     "down: never fetched, run `rankbot poll`; 1 channel paused; database read-only"),
])
def test_what_degrades_and_the_worst_comes_first(facts: Facts, line: str) -> None:
    assert assess(facts).line() == line


def test_more_findings_join_by_level() -> None:
    # A shell with a fact of its own (a chat connection, say) adds its finding to the rest.
    extra = Finding(Level.DOWN, "slack disconnected for 12 min")
    health = judge([Finding(Level.HEALTHY, "catalog fetched 1 min ago"),
                    Finding(Level.DEGRADED, "1 channel paused"), extra])
    assert health.level == Level.DOWN
    assert health.line() == "down: slack disconnected for 12 min; 1 channel paused"
    assert judge([]).line() == "healthy: nothing to check"


# -- the command -------------------------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_", "SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    return tmp_path


def check(env: dict[str, str] | None = None) -> tuple[int, str]:
    result = invoke("status", "--check", env=env)
    assert result.stdout.count("\n") == 1 and result.stderr == "", result.output
    return result.exit_code, result.stdout.rstrip("\n")


def test_a_new_install_is_down_and_the_probe_creates_no_database(workdir: Path) -> None:
    assert check() == (2, "down: never fetched, run `rankbot poll`")
    assert not (workdir / "rankbot.db").exists()
    assert invoke("status").exit_code == 0  # the full report stays as it is


def test_healthy_after_a_poll(workdir: Path, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", catalog_bytes("2026-07-14T025033Z"))
    serve_export(fake_openrouter, rankings_csv("2026-09-30", "2026-10-01"))
    env = {"OPENROUTER_BASE_URL": fake_openrouter.base_url}
    assert invoke("poll", env=env).exit_code == 0
    assert check() == (0, "healthy: catalog fetched 0 min ago; rankings fetched 0 min ago")


def test_stale_by_the_catalog_interval_of_the_settings(workdir: Path) -> None:
    three_hours_ago = (datetime.now(UTC) - 3 * HOUR).strftime("%Y-%m-%dT%H:%M:%S")
    imported = invoke("import", "--at", three_hours_ago, str(CATALOG), str(RANKINGS_CSV))
    assert imported.exit_code == 0, imported.output
    assert check() == (1, "degraded: catalog last fetched 3 h ago (every 60 min)")
    assert check({"RANKBOT_CATALOG_EVERY": "91"})[0] == 0
    assert check({"RANKBOT_CATALOG_EVERY": "89"}) == (
        1, "degraded: catalog last fetched 3 h ago (every 89 min)")


def test_dead_letters_of_the_last_week_paused_and_unreadable_channels(workdir: Path) -> None:
    assert invoke("import", str(CATALOG), str(RANKINGS_CSV)).exit_code == 0
    now = datetime.now(UTC)
    store = UnitOfWork.open(workdir / "rankbot.db")
    try:
        console = store.channels.subscription(CONSOLE)
        assert console is not None
        for key, at in (("old", now - timedelta(days=8)), ("new", now - HOUR)):
            with store:
                store.outbox.enqueue(console, key, kind="alert", card=Card(key), changes=[], at=at)
        with store:
            store.outbox.dead_letter([m.id for m in store.outbox.due_messages(now)], "HTTP 503")
        with store:
            gone = store.channels.subscribe(ChannelRef("slack", "T1", "C1"), "alerts", now)
        with store:
            store.channels.pause(gone, "channel_not_found", now)
        with store:
            store.channels.subscribe(ChannelRef("slack", "T1", "C2"), "alerts", now)
        store.db.execute("UPDATE subscriptions SET rules = ? WHERE channel = 'C2'",
                         ['{"timezone": "right/UTC"}'])
    finally:
        store.close()
    level, line = check()
    assert level == 1
    assert line.split(": ", 1)[1].split("; ")[-3:] == [
        "1 dead letter in 7 days", "1 channel paused", "1 channel skipped: settings cannot be read"]


def test_a_persons_paused_dms_do_not_degrade_health(workdir: Path) -> None:
    """A person who closed their DMs stopped only their own watches: nothing for the operator
    to fix. `status` counts them apart; `status --check` (and /healthz) stay healthy."""
    now = datetime.now(UTC)
    at = now.strftime("%Y-%m-%dT%H:%M:%S")
    assert invoke("import", "--at", at, str(CATALOG), str(RANKINGS_CSV)).exit_code == 0
    store = UnitOfWork.open(workdir / "rankbot.db")
    try:
        with store:
            alice = store.channels.subscribe(person_ref("slack", "T1", "UALICE"), "alerts", now)
        with store:
            store.channels.pause(alice, "cannot_dm_bot", now)
        facts = health_facts(load_settings({}), store, now, lambda *_: None)
    finally:
        store.close()
    assert facts.paused == 0
    level, line = check()
    assert level == 0 and "paused" not in line, line
    status = invoke("status").stdout
    assert "0 paused; 1 people watching models, 1 paused (their DMs)" in status, status
    assert "UALICE" not in status  # not listed with the channels to fix


def test_a_database_that_cannot_be_opened_is_down_in_one_line(workdir: Path) -> None:
    (workdir / "rankbot.db").write_bytes(b"not a database " * 100)
    result = invoke("status", "--check")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"rankbot: {workdir / 'rankbot.db'} is not a SQLite database")
    assert result.stderr.count("\n") == 1
