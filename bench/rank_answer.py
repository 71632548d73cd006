"""Time the /rank handler (in process) on a database holding a year of history.

    python bench/rank_answer.py [--db PATH] [--rounds 50]

The database is built first, through the same ingest path as `rankbot poll`: 8,760 hourly
catalog polls starting from the real 421-model catalog, where OpenRouter publishes a new
catalog every 6 hours with a few price changes and now and then a model added or removed (the
rate seen in the real snapshots), and 365 days of 50 ranked models + `other`, a random walk from
the real export. An existing --db is reused. Prints p50/p99 per answer and the database size.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from rankbot.bot.commands import answer  # noqa: E402
from rankbot.bot.polling import observe  # noqa: E402
from rankbot.bot.rankings import OTHER, parse_rankings_csv, rank_days  # noqa: E402
from rankbot.bot.rules import DEFAULT_RULES  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "openrouter"
START = datetime(2025, 10, 8, tzinfo=UTC)
HOURS = 8_760
NOW = START + timedelta(hours=HOURS)
QUERIES = ["qwen", "deepseek", "", "claude", "gpt-4.1", "nemotron", "qwn", "glm",
           "openai/gpt-4.1", "kimi", "google/gemini", "mistral"]


def build_catalog(store: UnitOfWork, rng: random.Random) -> None:
    payload = json.loads(gzip.decompress(
        (FIXTURES / "models" / "2026-08-22T183539Z.json.gz").read_bytes()))
    body = json.dumps(payload).encode()
    for hour in range(HOURS):
        if hour % 6 == 0 and hour:  # OpenRouter's catalog changes about every 6 hours
            mutate(payload["data"], rng, hour)
            body = json.dumps(payload).encode()
        observe(store, "catalog", body, START + timedelta(hours=hour), DEFAULT_RULES)
        if hour % 876 == 0:
            print(f"  catalog polls: {hour:,}/{HOURS:,}", file=sys.stderr)


def mutate(models: list[dict[str, Any]], rng: random.Random, hour: int) -> None:
    for model in rng.sample(models, rng.randint(1, 5)):  # a few price moves
        pricing = model["pricing"]
        if pricing.get("prompt") not in (None, "-1", "0"):
            factor = Decimal(str(round(rng.uniform(0.7, 1.3), 2)))
            pricing["prompt"] = str(Decimal(pricing["prompt"]) * factor)
            pricing["completion"] = str(Decimal(pricing["completion"]) * factor)
    if rng.random() < 0.2:  # about five new models a week
        added = copy.deepcopy(rng.choice(models))
        added["id"] = added["canonical_slug"] = f"bench/model-{hour}"
        models.append(added)
    if rng.random() < 0.1:
        models.pop(rng.randrange(len(models)))


def build_rankings(store: UnitOfWork, rng: random.Random) -> None:
    real = [r for r in parse_rankings_csv((FIXTURES / "rankings" /
                                           "exports-sample-2026-10-08.csv").read_bytes()).rows
            if r.date == date(2026, 10, 7)]
    tokens = {r.permaslug: float(r.tokens) for r in real}
    newcomers = 0
    for day in range(365):
        tokens = {slug: count * rng.lognormvariate(0, 0.08) for slug, count in tokens.items()}
        if rng.random() < 0.15:  # a newcomer takes the place of the weakest model
            weakest = min((s for s in tokens if s != OTHER), key=tokens.__getitem__)
            tokens[f"bench/newcomer-{newcomers}"] = tokens.pop(weakest) * 1.5
            newcomers += 1
        when = START.date() + timedelta(days=day)
        rows = rank_days((when, slug, int(count)) for slug, count in tokens.items())
        with store:
            midnight = datetime.combine(when + timedelta(days=1), datetime.min.time(), UTC)
            fetched = midnight + timedelta(hours=2)
            store.snapshots.save_rankings(fetched, f"day-{day}", "export", rows)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "year.db"
    fresh = not path.exists()
    store = UnitOfWork.open(path)
    if fresh:
        rng = random.Random(20261008)
        started = time.perf_counter()
        build_catalog(store, rng)
        build_rankings(store, rng)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"built {path} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    samples: list[float] = []
    for _ in range(args.rounds):
        for query in QUERIES:
            start = time.perf_counter()
            reply = answer("rank", query, store, NOW)
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
