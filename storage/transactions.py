"""Transactions, begun and ended by the unit of work alone (storage/unit_of_work.py).

Repositories never begin or commit one: a write checks that one is open, so that a write made
outside a unit of work fails at once instead of committing on its own, or worse, leaving an
implicit transaction open that holds the write lock until the connection closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database

# How long a write waits for another process's write (a cron `rankbot poll` beside `rankbot
# run`) before it fails. Readers never wait: WAL lets them read while another writes.
BUSY_TIMEOUT_MS = 30_000


class OutsideUnitOfWork(RuntimeError):
    """A repository was asked to write with no unit of work open: a bug, said plainly."""


def require_work(db: Database) -> None:
    if not db.conn.in_transaction:
        raise OutsideUnitOfWork("writes run inside `with unit_of_work:`")


@contextmanager
def transaction(db: Database) -> Iterator[None]:
    """The outermost takes the write lock up front (BEGIN IMMEDIATE, waiting up to the busy
    timeout for another writer): a deferred transaction that reads first cannot wait for the
    lock when it comes to write, it fails. Nested, a savepoint: undone alone."""
    if db.conn.in_transaction:
        with db.atomic():  # sqlite-utils: SAVEPOINT … RELEASE, or ROLLBACK TO on an error
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
