"""How big the real history makes the database, and what a poll costs on top of it.

    python bench/history_size.py [--archive PATH] [--db PATH] [--repeat 10]

Replays the shared real history (290 catalogs, 2026-06-07 → 2026-08-22, through the poll path
with the console subscribed, as bench/replay_history.py does) into a fresh file, adds a year of
daily rankings ending on its last day (50 models + `other`, a random walk from the real export:
no real year of rankings is stored), and prints the size of each table, the catalog history's
size extrapolated to a year, and the total. Then it times the last catalog's poll (observe:
parse, check, store, diff, in a transaction) on copies of the file holding everything before
it, each opened afresh as a cron `rankbot poll` would, against its floor (`json.loads` of the
same bytes). `--db` keeps the file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.poll_cycle import CSV  # noqa: E402
from bench.replay_history import ARCHIVE, YEAR, replay, snapshots  # noqa: E402
from rankbot.bot.polling import observe  # noqa: E402
from rankbot.bot.rankings import OTHER, parse_rankings_csv, rank_days  # noqa: E402
from rankbot.bot.rules import DEFAULT_RULES  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402


def build(archive: Path, db: Path, upto: int | None = None) -> tuple[datetime, datetime]:
    """The history's catalogs (the first `upto`) into `db`; their first and last times."""
    series = list(snapshots(archive))[:upto]
    asyncio.run(replay(archive, upto, False, db))
    return series[0][0], series[-1][0]


def add_rankings(store: UnitOfWork, last: date, rng: random.Random) -> None:
    """365 days of 50 ranked models + `other`, ending on `last`, each day fetched the next."""
    real = [r for r in parse_rankings_csv(CSV).rows if r.date == date(2026, 10, 7)]
    tokens = {r.permaslug: float(r.tokens) for r in real}
    for day in range(365):
        tokens = {slug: count * rng.lognormvariate(0, 0.08) for slug, count in tokens.items()}
        if rng.random() < 0.15:  # a newcomer takes the place of the weakest model
            weakest = min((s for s in tokens if s != OTHER), key=tokens.__getitem__)
            tokens[f"bench/newcomer-{day}"] = tokens.pop(weakest) * 1.5
        when = last - timedelta(days=364 - day)
        rows = rank_days((when, slug, int(count)) for slug, count in tokens.items())
        fetched = datetime.combine(when + timedelta(days=1), datetime.min.time(), UTC)
        with store:
            store.snapshots.save_rankings(fetched + timedelta(hours=2), f"day-{day}", "export",
                                          rows)


def table_sizes(store: UnitOfWork) -> dict[str, int]:
    """Bytes of each table with its indexes (SQLite's dbstat)."""
    rows = store.db.execute(
        "SELECT COALESCE(m.tbl_name, s.name), SUM(s.pgsize) FROM dbstat s "
        "LEFT JOIN sqlite_master m ON m.name = s.name GROUP BY 1 ORDER BY 2 DESC").fetchall()
    return dict(rows)


def file_size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def sizes(db: Path, archive: Path) -> None:
    first, last = build(archive, db)
    store = UnitOfWork.open(db)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    catalog_bytes = file_size(db)
    per_year = YEAR / (last - first).total_seconds()
    print(f"\nafter the history ({(last - first).days} days): {catalog_bytes / 1e6:.2f} MB, "
          f"{catalog_bytes / 1e6 * per_year:.1f} MB a year at this rate")
    for table, size in table_sizes(store).items():
        print(f"  {table:<20} {size / 1e6:6.2f} MB")
    print(f"  model_versions rows {store.snapshots.counts()['model_versions']:,}, documents "
          f"{store.db.table('model_documents').count:,}")
    add_rankings(store, last.date(), random.Random(20261008))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rankings = file_size(db) - catalog_bytes
    store.close()
    print(f"a year of rankings adds {rankings / 1e6:.2f} MB: a year of history "
          f"{(catalog_bytes * per_year + rankings) / 1e6:.1f} MB (target < 30 MB)")


def poll_on_history(archive: Path, repeat: int) -> None:
    """The last catalog's poll on the history before it, against the floor."""
    series = list(snapshots(archive))
    at, body = series[-1]
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base.db"
        build(archive, base, len(series) - 1)
        floors, polls = [], []
        for run in range(repeat):
            copy = Path(folder) / f"copy{run}.db"
            shutil.copy(base, copy)
            start = time.perf_counter()
            json.loads(body)
            floors.append(time.perf_counter() - start)
            store = UnitOfWork.open(copy)
            start = time.perf_counter()
            with store:
                outcome = observe(store, "catalog", body, at, DEFAULT_RULES)
            polls.append(time.perf_counter() - start)
            assert outcome.fault is None, outcome.fault
            store.close()
    bare, poll = statistics.median(floors), statistics.median(polls)
    print(f"\npoll of the last catalog ({len(body) / 1000:.0f} KB, {len(outcome.changes)} "
          f"changes) on the history before it, each on a fresh copy opened afresh, median of "
          f"{repeat}: {poll * 1000:.1f} ms; floor (json.loads) {bare * 1000:.2f} ms: "
          f"{poll / bare:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--db", type=Path, help="keep the database here (must not exist)")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sizes(args.db or Path(folder) / "history.db", args.archive)
    poll_on_history(args.archive, args.repeat)


if __name__ == "__main__":
    main()
