"""Whether the database file can serve: a typed error, in one line, for one that cannot (not a
database, damaged, unreadable, read-only, impossible to create), and SQLite's own page check."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from rankbot.storage.migrations import migrations

CHECK_LIMIT = 100  # problems quick_check lists before it stops; the first one is what is shown
RESTORE = "restore it from a backup, or move it aside and let rankbot start a new one"
ELSEWHERE = "or point RANKBOT_DB at another file"


class DatabaseUnusable(Exception):
    """The database file cannot serve. `str()` is one line: the file, what is wrong, what to do.
    `readable`: it may still be read as it is, so a command that only reads can open it
    read-only."""

    def __init__(self, path: Path, problem: str, advice: str, *, readable: bool = False) -> None:
        super().__init__(f"{path.absolute()} {problem}; {advice}")  # cron has its own cwd
        self.path = path
        self.readable = readable


def diagnose(path: Path, error: BaseException) -> DatabaseUnusable | None:
    """What `error` says about the file at `path`, or None where it is not about the file (a
    bug, a lock held by another process): those keep their traceback."""
    if isinstance(error, DatabaseUnusable):
        return error
    if isinstance(error, OSError):  # creating its folder
        return DatabaseUnusable(path, f"cannot be created (its folder {error.filename}: "
                                      f"{error.strerror})",
                                f"check the folders on its path, {ELSEWHERE}")
    if not isinstance(error, sqlite3.Error):
        return None
    explain = EXPLAIN.get(_primary_code(error))
    return explain(path, str(error)) if explain else None


def is_damage(error: BaseException) -> bool:
    """A read that hit a damaged page (or no database at all)."""
    return (isinstance(error, sqlite3.DatabaseError)
            and _primary_code(error) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB))


@contextmanager
def guarded(path: Path) -> Iterator[None]:
    """Errors that say the file cannot serve become DatabaseUnusable; others go on as they are."""
    try:
        yield
    except (OSError, sqlite3.Error) as error:
        if (unusable := diagnose(path, error)) is None:
            raise
        raise unusable from error


def damaged(path: Path, problems: list[str]) -> DatabaseUnusable:
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return DatabaseUnusable(path, f"is damaged: quick_check found {count}, the first: "
                                  f"{problems[0]}", RESTORE)


def quick_check(db: Database) -> list[str]:
    """SQLite's check of every page (`PRAGMA quick_check`): the problems it found, none when the
    file is sound. Damage that stops the check itself is the one problem."""
    try:
        rows = db.execute(f"PRAGMA quick_check({CHECK_LIMIT})").fetchall()
    except sqlite3.DatabaseError as error:
        if not is_damage(error):
            raise
        return [str(error)]
    # SQLite 3.40 puts several problems in one row, one a line, under "*** in database main ***".
    found = [line for (row,) in rows for line in str(row).splitlines()
             if line and not line.startswith("*** ")]
    return [] if found == ["ok"] else found


def open_read_only(path: Path) -> Database:
    """The file as it is, never written, not even migrated (one that needs migrating is
    refused). `mode=ro` still creates the -wal and -shm a WAL database is read through; where
    it cannot (a folder this user may not write), `immutable=1` reads the main file alone, so
    what a `rankbot run` has not yet checkpointed from its -wal is not seen."""
    uri = "file:" + quote(str(path.resolve()))
    try:
        conn = _connect(f"{uri}?mode=ro")
    except sqlite3.OperationalError as error:
        if _primary_code(error) not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
            raise
        conn = _connect(f"{uri}?mode=ro&immutable=1")
    conn.execute("PRAGMA query_only = ON")  # a write attempted by mistake fails, whatever the URI
    db = Database(conn)
    if pending := migrations.pending(db):
        db.close()
        raise DatabaseUnusable(
            path, "needs upgrading to this rankbot's schema (pending: "
                  f"{', '.join(m.name for m in pending)}) but cannot be written",
            "run `rankbot poll` once as a user who may write it and its folder")
    return db


def _connect(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opening is lazy
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _primary_code(error: sqlite3.Error) -> int:
    # Extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_CORRUPT_INDEX) name the detail in the
    # high bits; the low byte is the kind.
    return (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF


def _cannot_open(path: Path, reason: str) -> DatabaseUnusable:
    if path.is_dir():
        return DatabaseUnusable(path, "is a folder, not a database file",
                                "point RANKBOT_DB at a file")
    if not path.exists():
        return DatabaseUnusable(path, f"does not exist and cannot be created ({reason})",
                                f"check that its folder exists and may be written, {ELSEWHERE}")
    # It may be readable where only its -shm could not be created: worth a read-only try.
    return DatabaseUnusable(path, f"cannot be opened ({reason})",
                            f"check that this user may read and write it and its folder, "
                            f"{ELSEWHERE}", readable=True)


EXPLAIN: dict[int, Callable[[Path, str], DatabaseUnusable]] = {
    sqlite3.SQLITE_NOTADB: lambda path, reason: DatabaseUnusable(
        path, f"is not a SQLite database ({reason})", f"move it aside {ELSEWHERE}"),
    sqlite3.SQLITE_CORRUPT: lambda path, reason: DatabaseUnusable(
        path, f"is damaged ({reason})", RESTORE),
    sqlite3.SQLITE_READONLY: lambda path, reason: DatabaseUnusable(
        path, f"is read-only ({reason})",
        f"let this user write it and its folder, {ELSEWHERE} (`rankbot status` and "
        "`rankbot ask` still read it)", readable=True),
    sqlite3.SQLITE_CANTOPEN: _cannot_open,
    sqlite3.SQLITE_PERM: _cannot_open,
    sqlite3.SQLITE_IOERR: lambda path, reason: DatabaseUnusable(
        path, f"could not be read or written ({reason})",
        "check the disk it is on and the file's permissions"),
    sqlite3.SQLITE_FULL: lambda path, reason: DatabaseUnusable(
        path, f"cannot grow ({reason})", "free some disk space"),
}
