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

from rankbot.bot.channels import CONSOLE, Subscription
from rankbot.bot.commands import answer
from rankbot.bot.history import import_snapshot
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from rankbot.storage.threads import Threads
from tests.conftest import catalog_bytes, load
from tests.test_commands import OCT_8

pytestmark = pytest.mark.anyio
HOLD = 1.0  # seconds another process keeps the write lock
AT = datetime(2026, 8, 22, 18, 35, 39, tzinfo=UTC)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "rankbot.db"
    load(UnitOfWork.open(db), "2026-08-22T124646Z").close()
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
    store = UnitOfWork.open(path)
    store.snapshots.live_models()  # it has read: a deferred transaction could not upgrade
    started = time.monotonic()
    with write_lock_held(path):
        outcome = import_snapshot(store, "2026-08-22T183539Z.json",
                                  catalog_bytes("2026-08-22T183539Z"), AT, DEFAULT_RULES)
    assert outcome.fault is None, outcome.summary
    assert time.monotonic() - started >= HOLD * 0.9  # it waited for the lock, then wrote
    assert store.snapshots.counts()["catalog_fetches"] == 2
    store.close()


def test_a_reader_sees_what_another_connection_wrote(path: Path) -> None:
    reader, writer = UnitOfWork.open(path), UnitOfWork.open(path)
    before = dict(reader.snapshots.live_models())
    import_snapshot(writer, "2026-08-22T183539Z.json", catalog_bytes("2026-08-22T183539Z"),
                    AT, DEFAULT_RULES)
    after = dict(writer.snapshots.live_models())  # three prices moved
    assert before != after
    assert dict(reader.snapshots.live_models()) == after  # its cache was dropped
    reader.close()
    writer.close()


def subscribe(work: UnitOfWork) -> Subscription:
    with work:
        return work.channels.subscribe(CONSOLE, "alerts", OCT_8)


async def test_answers_go_on_while_a_write_waits_for_the_lock(path: Path) -> None:
    threads = Threads(partial(UnitOfWork.open, path, threaded=True))
    try:
        with write_lock_held(path):
            started = time.monotonic()
            write = asyncio.ensure_future(threads.write(lambda: subscribe(threads.store)))
            answers = await asyncio.gather(*(threads.read(
                lambda work: answer("/rank", "qwen", work.snapshots, OCT_8)) for _ in range(10)))
            answered = time.monotonic() - started
            assert not write.done()  # still waiting for the lock
            subscription = await write
        assert answered < HOLD / 2 and all(a.public for a in answers)
        assert subscription.ref == CONSOLE
        stored = await threads.read(lambda work: work.channels.subscription(CONSOLE))
        assert stored == subscription
    finally:
        threads.close()
