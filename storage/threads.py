"""Database work off the event loop, for `rankbot run`.

SQLite calls block: a write may wait up to the busy timeout for another process's lock (a
cron `rankbot poll`). So answers run on a small pool of reader threads, each with its own
connection (in WAL mode readers never wait for a writer), and every write runs on one writer
thread with its own connection, one at a time. The event loop only awaits their results.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from rankbot.storage.unit_of_work import UnitOfWork

T = TypeVar("T")
READERS = 2  # answers take milliseconds; two keep one slow preview from queueing the rest


class Threads:
    """Implements the core's `Database` port on threads: `read` on any reader's connection,
    `write` on the writer's (`store`), which nothing else touches."""

    def __init__(self, open_store: Callable[[], UnitOfWork], readers: int = READERS) -> None:
        self._open = open_store
        self._local = threading.local()
        self._opened: list[UnitOfWork] = []
        self._guard = threading.Lock()
        self._reads = ThreadPoolExecutor(readers, thread_name_prefix="rankbot-read")
        self._writes = ThreadPoolExecutor(1, thread_name_prefix="rankbot-write")
        self.store = self._kept(open_store())  # the writer's, used only on its thread

    async def read(self, work: Callable[[UnitOfWork], T]) -> T:
        return await self._run(self._reads, lambda: work(self._reader()))

    async def write(self, work: Callable[[], T]) -> T:
        return await self._run(self._writes, work)

    def close(self) -> None:
        """Wait for the work under way, then close every connection."""
        self._reads.shutdown(wait=True)
        self._writes.shutdown(wait=True)
        for store in self._opened:
            store.close()

    def _reader(self) -> UnitOfWork:
        store: UnitOfWork | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self._kept(self._open())
        return store

    def _kept(self, store: UnitOfWork) -> UnitOfWork:
        with self._guard:
            self._opened.append(store)
        return store

    @staticmethod
    async def _run(pool: ThreadPoolExecutor, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, work)
