"""The event loop never waits on SQLite: while another process holds the database's write lock
for 5 s, `rankbot run` keeps answering, and the writes that wait for the lock (an admin's
`/rankbot set`, a cron `rankbot poll`) go through once it is released, without a traceback."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import SIGNING_SECRET, World, world
from tests.fakes.slack_api import post_command

HOLD = 5.0  # seconds the lock is held
SLACK_BUDGET = 3.0  # Slack shows an error if a command is not acknowledged in time


@pytest.fixture
def running(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as fakes:
        fakes.openrouter.serve("models", catalog_bytes("2026-08-22T124646Z"))
        serve_export(fakes.openrouter, rankings_csv())
        fakes.bot.start()
        fakes.bot.wait_for("rankings baseline stored")
        fakes.bot.wait_for("Slack HTTP mode: listening")
        yield fakes


def hold_write_lock(db: Path, started: threading.Event) -> None:
    """Another process's long write: BEGIN IMMEDIATE, then nothing for HOLD seconds."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(HOLD)
    conn.execute("COMMIT")
    conn.close()


async def command(fakes: World, text: str, name: str = "/rank", user: str = "UADMIN"
                  ) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    reply = await post_command(fakes.bot.slack_url, SIGNING_SECRET, name, text, user=user,
                               response_url=f"{fakes.slack.base_url}hooks/lock-test")
    return time.monotonic() - started, reply


def test_answers_go_on_and_waiting_writes_land_while_the_lock_is_held(
        running: World) -> None:
    fakes = running
    bot = fakes.bot
    subscribed = asyncio.run(command(fakes, "subscribe", "/rankbot"))[1]
    assert "This channel now gets" in subscribed.json()["text"]
    fakes.openrouter.serve("models", catalog_bytes("2026-08-22T183539Z"))

    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(bot.workdir / "rankbot.db", locked))
    holder.start()
    assert locked.wait(10)
    released_at = time.monotonic() + HOLD
    cron = bot.cli_async("poll")  # a cron poll meets the lock and waits for it

    async def during() -> tuple[list[tuple[float, httpx.Response]], tuple[float, httpx.Response]]:
        setting = asyncio.create_task(command(fakes, "set top_n 7", "/rankbot"))
        answers = await asyncio.gather(*(command(fakes, "qwen") for _ in range(10)))
        return answers, await setting

    answers, (set_took, set_reply) = asyncio.run(during())
    holder.join()
    _, cron_err = cron.communicate(timeout=60)

    assert all(took < SLACK_BUDGET and reply.status_code == 200 for took, reply in answers), [
        round(took, 2) for took, _ in answers]
    assert all(reply.json()["response_type"] == "in_channel" for _, reply in answers)
    # The admin is answered within Slack's budget, and told the change follows: it does.
    assert set_took < SLACK_BUDGET and set_reply.status_code == 200
    assert "the database is busy" in set_reply.json()["text"]
    hooks = wait_for_hook(fakes, released_at + 10)
    assert "`top_n`: 20 → 7" in hooks[-1]["text"]
    assert cron.returncode == 0, cron_err
    assert "Traceback" not in cron_err and "database is locked" not in bot.log
    assert "catalog:" in cron_err  # the cron poll stored the new catalog after the wait
    stderr = bot.stop()
    assert "Traceback" not in stderr


def wait_for_hook(fakes: World, deadline: float) -> list[dict[str, object]]:
    while not (hooks := fakes.slack.calls_to("hooks/lock-test")):
        assert time.monotonic() < deadline, "the deferred answer never reached response_url"
        time.sleep(0.1)
    return hooks
