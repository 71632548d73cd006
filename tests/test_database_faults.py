"""A database file that cannot serve: every command says so in one line and exits 2; one that can
only be read still answers `status` and `ask`; `status` names damaged pages and shows the rest."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlite_utils import Database

from rankbot.storage import UnitOfWork
from rankbot.storage.health import DatabaseUnusable
from tests.conftest import FIXTURES, RANKINGS_CSV
from tests.test_cli import invoke

NOWHERE = "http://127.0.0.1:9"  # nothing listens: a command that got past the database fails
EVERY_COMMAND = [["status"], ["ask", "rank", "qwen"], ["poll"], ["run"], ["digest"],
                 ["digest", "--dry-run"], ["import", str(RANKINGS_CSV)], ["backfill"],
                 ["discord", "commands"], ["discord", "sync"]]
WRITERS = [["poll"], ["run"], ["digest"], ["import", str(RANKINGS_CSV)], ["backfill"],
           ["ask", "rankbot", "set", "top_n", "10"]]
HISTORY = [FIXTURES / "models" / f"{s}.json.gz" for s in
           ("2026-07-13T144438Z", "2026-07-14T025033Z", "2026-07-20T194813Z",
            "2026-08-22T124646Z", "2026-08-22T183539Z")] + [RANKINGS_CSV]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # ./rankbot.db and ./rankbot.log live here, as in test_cli
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_", "DISCORD_", "SLACK_")):
            monkeypatch.delenv(name)
    return tmp_path


def env(db: str, command: list[str]) -> dict[str, str]:
    settings = {"RANKBOT_DB": db, "OPENROUTER_BASE_URL": NOWHERE, "OPENROUTER_API_KEY": "k"}
    if command[0] == "discord":
        settings |= {"DISCORD_BOT_TOKEN": "x.y.z", "DISCORD_API_URL": NOWHERE}
    return settings


def refused(result: Result, path: Path, problem: str) -> None:
    """Exit 2 and one line naming the file, what is wrong and what to do; no traceback."""
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"rankbot: {path.absolute()} {problem}")
    assert result.stderr.count("\n") == 1 and "; " in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real database: five real catalogs and the rankings export, imported."""
    folder = tmp_path_factory.mktemp("history")
    result = invoke("import", *map(str, HISTORY), env={
        "RANKBOT_DB": str(folder / "rankbot.db"), "RANKBOT_LOG_FILE": str(folder / "log")})
    assert result.exit_code == 0, result.output
    return folder / "rankbot.db"


def random_bytes(workdir: Path, history: Path) -> tuple[str, str]:
    (workdir / "rankbot.db").write_bytes(random.Random(12).randbytes(64 * 1024))
    return "rankbot.db", ("is not a SQLite database (file is not a database); move it aside or "
                          "point RANKBOT_DB at another file")


def truncated(workdir: Path, history: Path) -> tuple[str, str]:
    whole = history.read_bytes()
    (workdir / "rankbot.db").write_bytes(whole[:len(whole) // 2])  # a copy cut short
    return "rankbot.db", "is damaged (database disk image is malformed); restore it"


def a_folder(workdir: Path, history: Path) -> tuple[str, str]:
    (workdir / "rankbot.db").mkdir()
    return "rankbot.db", "is a folder, not a database file; point RANKBOT_DB at a file"


def under_a_file(workdir: Path, history: Path) -> tuple[str, str]:
    (workdir / "data").write_text("a file where a folder should be")
    return "data/rankbot.db", "cannot be created (its folder data: File exists); check the"


@pytest.mark.parametrize("command", EVERY_COMMAND,
                         ids=lambda c: " ".join(a for a in c if "/" not in a))
@pytest.mark.parametrize("broken", [random_bytes, truncated, a_folder, under_a_file],
                         ids=lambda f: f.__name__)
def test_a_database_that_cannot_serve_is_one_line_and_exit_2_for_every_command(
        workdir: Path, history_db: Path, broken: Callable[[Path, Path], tuple[str, str]],
        command: list[str]) -> None:
    db, problem = broken(workdir, history_db)
    result = invoke(*command, env=env(db, command))
    refused(result, workdir / db, problem)
    assert "Traceback" in (workdir / "rankbot.log").read_text()  # kept for whoever digs


# -- damaged pages -----------------------------------------------------------------------------

def overwrite_pages(path: Path, table: str, count: int) -> None:
    """Copy other, valid pages of `table` over `count` of its leaf pages: each is a sound page
    in the wrong place, the kind of damage a torn write or a bad copy leaves, and SQLite's
    quick_check reports it. The schema's pages stay sound, so the file still opens."""
    with sqlite3.connect(path) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [page for (page,) in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
            [table])]
    assert len(leaves) >= 2 * count, leaves
    data = bytearray(path.read_bytes())
    for page, source in zip(leaves[:count], leaves[-count:], strict=True):
        data[(page - 1) * size:page * size] = data[(source - 1) * size:source * size]
    path.write_bytes(bytes(data))


def quick_check(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row for (row,) in conn.execute("PRAGMA quick_check").fetchall()]


def test_damaged_pages_status_names_them_and_writers_refuse(workdir: Path,
                                                            history_db: Path) -> None:
    path = shutil.copy(history_db, workdir / "rankbot.db")
    overwrite_pages(path, "model_versions", 8)
    assert quick_check(path) != ["ok"]  # what was done really is damage, as SQLite sees it

    status = invoke("status")
    assert status.exit_code == 0
    damaged = [line for line in status.stdout.splitlines() if "damaged:" in line]
    assert len(damaged) == 1
    assert "damaged: quick_check found" in damaged[0] and "restore it from a backup" in damaged[0]
    # What can still be read is shown (here the counts cross the damaged pages).
    shown = status.stdout.splitlines()
    assert [line.split()[0] for line in shown if not line.startswith(" ")] == [
        "Database", "Catalog", "Rankings", "Providers", "Channels", "Outbox"]
    assert "Catalog    last good fetch 2026-08-22 18:35 UTC · " in status.stdout
    assert "Channels   1 subscribed, 0 paused" in shown
    check = invoke("status", "--check")
    assert check.exit_code == 1 and check.stdout.startswith("degraded: ")
    assert "database damaged (quick_check found " in check.stdout
    for command in WRITERS:  # writing into damage spreads it
        refused(invoke(*command, env=env("rankbot.db", command)), path,
                "is damaged: quick_check found")


def test_status_shows_what_it_can_when_one_part_is_unreadable(workdir: Path,
                                                             history_db: Path) -> None:
    path = shutil.copy(history_db, workdir / "rankbot.db")
    db = Database(path)
    roots = [root for (root,) in db.execute(
        "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'outbox' AND rootpage > 0")]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    for root in roots:  # the empty outbox and its indexes: one page each, zeroed
        data[(root - 1) * size:root * size] = bytes(size)
    path.write_bytes(bytes(data))

    status = invoke("status")
    assert status.exit_code == 0
    assert "Catalog    last good fetch" in status.stdout
    assert "Rankings   last good fetch" in status.stdout
    assert "Channels   cannot be read: its pages are damaged" in status.stdout
    assert "damaged: quick_check found" in status.stdout
    check = invoke("status", "--check")
    assert check.exit_code == 1 and "outbox cannot be read" in check.stdout


def test_status_on_a_sound_database_says_nothing_of_damage(workdir: Path,
                                                         history_db: Path) -> None:
    shutil.copy(history_db, workdir / "rankbot.db")
    status = invoke("status")
    assert status.exit_code == 0
    assert "damaged" not in status.stdout and "read-only" not in status.stdout


# -- read-only ---------------------------------------------------------------------------------

@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Makes a file or folder immutable (chattr +i): the kernel refuses every write to it, even
    root's, so this is a truly read-only database where the tests run as root (as CI does) and
    chmod would stop nothing. Skipped where chattr is not allowed (not root, another file
    system); the write-protected simulation below still runs there."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], check=False, capture_output=True).returncode:
            pytest.skip("chattr +i is not available here")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_file_still_answers_status_and_ask(
        workdir: Path, history_db: Path, immutable: Callable[[Path], None]) -> None:
    path = workdir / "rankbot.db"
    # Imported with a chat platform set, so the console was never subscribed: a read-only open
    # must not try to subscribe it.
    imported = invoke("import", *map(str, HISTORY), env={"DISCORD_BOT_TOKEN": "x.y.z"})
    assert imported.exit_code == 0, imported.output
    before = path.read_bytes()
    immutable(path)

    status = invoke("status")
    assert status.exit_code == 0, status.output
    assert "read-only: shown as it is" in status.stdout
    assert "Catalog    last good fetch 2026-08-22 18:35 UTC" in status.stdout
    assert "Channels   0 subscribed" in status.stdout
    check = invoke("status", "--check")
    assert check.exit_code == 1 and check.stdout.rstrip().endswith("database read-only")
    rank = invoke("ask", "rank", "qwen")
    assert rank.exit_code == 0 and rank.stdout.startswith("━━ Rank: qwen ━━")
    assert "CC BY 4.0" in rank.stdout
    for command in WRITERS:
        refused(invoke(*command, env=env("rankbot.db", command)), path,
                "is read-only (attempt to write a readonly database); let this user write it")
    assert path.read_bytes() == before


def test_a_database_in_a_read_only_folder_is_read_as_it_is(
        workdir: Path, history_db: Path, immutable: Callable[[Path], None]) -> None:
    # WAL mode reads through a -shm file; where it cannot be created, immutable=1 is the way in.
    (workdir / "data").mkdir()
    path = shutil.copy(history_db, workdir / "data" / "rankbot.db")
    immutable(workdir / "data")
    settings = {"RANKBOT_DB": "data/rankbot.db"}

    status = invoke("status", env=settings)
    assert status.exit_code == 0, status.output
    assert "read-only: shown as it is" in status.stdout
    assert "Rankings   last good fetch 2026-10-08" in status.stdout
    assert invoke("status", "--check", env=settings).stdout.rstrip().endswith(
        "database read-only")
    assert invoke("ask", "rank", "qwen", env=settings).stdout.startswith("━━ Rank: qwen ━━")
    refused(invoke("poll", env=env("data/rankbot.db", ["poll"])), path,
            "cannot be opened (unable to open database file)")
    assert sorted(p.name for p in (workdir / "data").iterdir()) == ["rankbot.db"]


def test_a_missing_database_in_a_read_only_folder_cannot_be_created(
        workdir: Path, immutable: Callable[[Path], None]) -> None:
    (workdir / "data").mkdir()
    immutable(workdir / "data")
    for command in (["status"], ["ask", "rank", "qwen"], ["poll"]):
        refused(invoke(*command, env=env("data/rankbot.db", command)),
                workdir / "data" / "rankbot.db",
                "does not exist and cannot be created (unable to open database file)")


@pytest.fixture
def write_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    """What SQLite does with a file this user may not write (chmod 0444, as anyone but root):
    it opens it read-only without a word, and every write fails with "attempt to write a
    readonly database". Forced here with `mode=ro`, which SQLite honours even for root, so the
    path that follows runs wherever the tests do."""
    def open_write_protected(path: str | Path) -> Database:
        return Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))

    monkeypatch.setattr("rankbot.storage.unit_of_work.Database", open_write_protected)


def test_a_write_protected_file_answers_readers_and_refuses_writers(
        workdir: Path, history_db: Path, write_protected: None) -> None:
    path = shutil.copy(history_db, workdir / "rankbot.db")
    assert invoke("status").exit_code == 0
    assert invoke("ask", "rank", "qwen").stdout.startswith("━━ Rank: qwen ━━")
    for command in WRITERS:
        refused(invoke(*command, env=env("rankbot.db", command)), path,
                "is read-only (attempt to write a readonly database)")


def test_a_read_only_database_that_needs_migrating_says_so(
        workdir: Path, history_db: Path, write_protected: None) -> None:
    path = shutil.copy(history_db, workdir / "rankbot.db")
    with sqlite3.connect(path) as conn:  # as a database from before the last migration
        conn.execute("ALTER TABLE outbox DROP COLUMN claimed_by")
        conn.execute("ALTER TABLE outbox DROP COLUMN claimed_at")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm005_outbox_claim_owner'")
    conn.close()
    refused(invoke("status"), path, "needs upgrading to this rankbot's schema (pending: "
                                     "m005_outbox_claim_owner) but cannot be written; run")


def test_a_read_only_store_never_writes(history_db: Path) -> None:
    store = UnitOfWork.open(history_db, read_only=True)
    assert store.read_only and store.quick_check() == []
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.check_writable()
    store.close()
    with pytest.raises(DatabaseUnusable, match="does not exist and cannot be created"):
        UnitOfWork.open(history_db.parent / "missing.db", read_only=True)
