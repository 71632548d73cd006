"""SQLite never stalls the event loop or fails on a busy lock: writes take the lock up front
and wait for it, readers never wait for a writer, and `rankbot run`'s database threads keep
answering while a write waits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from rankbot.bot.channels import CONSOLE
from rankbot.bot.commands import answer
from rankbot.bot.history import import_snapshot
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import Repository
from rankbot.storage.threads import Threads
from tests.conftest import catalog_bytes, load
from tests.test_commands import OCT_8

pytestmark = pytest.mark.anyio
HOLD = 1.0  # seconds another process keeps the write lock
AT = datetime(2026, 8, 22, 18, 35, 39, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "rankbot.db"
    load(Repository.open(db), "2026-08-22T124646Z").close()
    return db


@contextmanager
def write_lock_held(db: Path) -> Iterator[None]:
    """Another process's long write, for HOLD seconds from entering the block."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(HOLD)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(5)
    try:
        yield
    finally:
        holder.join()


def test_a_write_that_reads_first_waits_for_the_lock_instead_of_failing(path: Path) -> None:
    store = Repository.open(path)
    store.live_models()  # this connection has read: a deferred transaction could not upgrade
    started = time.monotonic()
    with write_lock_held(path):
        outcome = import_snapshot(store, "2026-08-22T183539Z.json",
                                  catalog_bytes("2026-08-22T183539Z"), AT, DEFAULT_RULES)
    assert outcome.fault is None, outcome.summary
    assert time.monotonic() - started >= HOLD * 0.9  # it waited for the lock, then wrote
    assert store.counts()["catalog_fetches"] == 2
    store.close()


def test_a_reader_sees_what_another_connection_wrote(path: Path) -> None:
    reader, writer = Repository.open(path), Repository.open(path)
    before = dict(reader.live_models())
    import_snapshot(writer, "2026-08-22T183539Z.json", catalog_bytes("2026-08-22T183539Z"),
                    AT, DEFAULT_RULES)
    after = dict(writer.live_models())  # three prices moved
    assert before != after and dict(reader.live_models()) == after  # its cache was dropped
    reader.close()
    writer.close()


async def test_answers_go_on_while_a_write_waits_for_the_lock(path: Path) -> None:
    threads = Threads(partial(Repository.open, path, threaded=True))
    try:
        with write_lock_held(path):
            started = time.monotonic()
            write = asyncio.ensure_future(threads.write(
                lambda: threads.store.subscribe(CONSOLE, "alerts", OCT_8)))
            answers = await asyncio.gather(*(threads.read(
                partial(answer, "/rank", "qwen", now=OCT_8)) for _ in range(10)))
            answered = time.monotonic() - started
            assert not write.done()  # still waiting for the lock
            subscription = await write
        assert answered < HOLD / 2 and all(a.public for a in answers)
        assert subscription.ref == CONSOLE
        assert (await threads.read(lambda store: store.subscription(CONSOLE))) == subscription
    finally:
        threads.close()
