"""The unit of work: the one place a transaction begins and ends, over small repositories.

`with uow:` takes the write lock up front and commits when the block ends, or rolls back if it
raises; nested, it is a savepoint, undone alone. The repositories (snapshots, channels, outbox,
feed) read at any time and refuse to write outside one (storage/transactions.py).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from sqlite_utils import Database

from rankbot.storage.channels import Channels
from rankbot.storage.feed import Feed
from rankbot.storage.health import guarded, open_read_only, quick_check
from rankbot.storage.migrations import migrate
from rankbot.storage.outbox import Outbox
from rankbot.storage.providers import ProviderRecords
from rankbot.storage.snapshots import Snapshots
from rankbot.storage.transactions import BUSY_TIMEOUT_MS, transaction


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db)
        self.snapshots = Snapshots(db)
        self.channels = Channels(db)
        self.outbox = Outbox(db)
        self.feed = Feed(db)
        self.providers = ProviderRecords(db)
        self._open: list[AbstractContextManager[None]] = []

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False,
             threaded: bool = False) -> UnitOfWork:
        """The database at `path`, migrated; `read_only`: as it is, never written; `threaded`:
        for a thread of `storage.threads`, which opens and closes it from another. A file that
        cannot serve (not a database, damaged, unreadable) raises DatabaseUnusable."""
        with guarded(Path(path)):
            return cls(open_read_only(Path(path))) if read_only else cls._open_file(path,
                                                                                     threaded)

    @classmethod
    def _open_file(cls, path: str | Path, threaded: bool) -> UnitOfWork:
        db = Database(sqlite3.connect(path, check_same_thread=False) if threaded else path)
        if str(path) != ":memory:":
            db.enable_wal()
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return cls(db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> UnitOfWork:
        work = transaction(self.db)
        work.__enter__()
        self._open.append(work)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            self._open.pop().__exit__(kind, error, trace)
        except BaseException:
            self.snapshots.forget()  # the COMMIT itself failed: everything was undone
            raise
        if error is not None:
            self.snapshots.forget()  # its cached catalog may hold what was undone

    # -- the file as a whole -----------------------------------------------------------------

    def quick_check(self) -> list[str]:
        """Damaged pages, as SQLite's own check reports them; none when the file is sound."""
        return quick_check(self.db)

    def check_writable(self) -> None:
        """SQLite opens a write-protected file read-only without a word; a write that changes
        nothing raises its "attempt to write a readonly database" now, not mid-poll."""
        self.db.execute("DELETE FROM _sqlite_migrations WHERE 0")

    @property
    def read_only(self) -> bool:
        """Opened with `read_only` (see `open`)."""
        return bool(self.db.execute("PRAGMA query_only").fetchone()[0])
