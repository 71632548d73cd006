"""Time the /rank handler (in process) on a database holding the real history.

    python bench/rank_answer.py [--db PATH] [--rounds 50]

The database is built first by bench/history_size.py: the shared real catalog history (290
catalogs over 76 days, through the poll path) and a year of daily rankings ending on its last
day (50 ranked models + `other`, a random walk from the real export). An existing --db is
reused. Prints p50/p99 per answer and the database size.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.history_size import add_rankings, build  # noqa: E402
from bench.replay_history import ARCHIVE  # noqa: E402
from rankbot.bot.commands import answer  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402

QUERIES = ["qwen", "deepseek", "", "claude", "gpt-4.1", "nemotron", "qwn", "glm",
           "openai/gpt-4.1", "kimi", "google/gemini", "mistral"]


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "history.db"
    if not path.exists():
        started = time.perf_counter()
        _, last = build(ARCHIVE, path)
        store = UnitOfWork.open(path)
        add_rankings(store, last.date(), random.Random(20261008))
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        print(f"built {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    store = UnitOfWork.open(path)
    fetch = store.snapshots.last_catalog_fetch()
    assert fetch is not None
    now = fetch.at  # as the history's last poll left it
    samples: list[float] = []
    for _ in range(args.rounds):
        for query in QUERIES:
            start = time.perf_counter()
            reply = answer("rank", query, store.snapshots, now)
            samples.append(time.perf_counter() - start)
            assert reply.card.title, query
    counts = store.snapshots.counts()
    size = path.stat().st_size
    store.close()
    print(f"database: {counts['catalog_fetches']:,} catalog fetches, "
          f"{counts['model_versions']:,} model versions, {counts['rankings']:,} ranking rows, "
          f"{size / 1e6:.1f} MB")
    print(f"/rank over {len(samples)} answers ({len(QUERIES)} queries): "
          f"p50 {statistics.median(samples) * 1000:.1f} ms, "
          f"p99 {percentile(samples, 99) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
