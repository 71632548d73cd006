"""Time drawing the /rank and /price charts (PNG, matplotlib Agg) on the fixtures' history.

    python bench/charts.py [--rounds 30]

The database is built in memory from tests/fixtures (two real catalogs and the rankings
export), as the tests build it. The first draw is timed apart: it pays matplotlib's import.
Each later draw misses the cache on purpose (a new series each time, 30 or 90 days); a cache
hit is timed too. Prints the median and p99 per chart and the PNG sizes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.rank_answer import percentile  # noqa: E402
from rankbot.adapters import charts as drawn  # noqa: E402
from rankbot.bot import charts  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402
from tests.conftest import EXPORT_AT, load  # noqa: E402


def timed(draw: Callable[[], object]) -> float:
    start = time.perf_counter()
    draw()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    store = load(UnitOfWork.open(":memory:"), "2026-07-14T025033Z", "2026-08-22T183539Z")
    rank = charts.rank_series(store.snapshots, "deepseek", EXPORT_AT, 90)
    price = charts.price_series(store.snapshots, "deepseek", EXPORT_AT)
    first = timed(lambda: drawn.png(rank))
    print(f"first draw (imports matplotlib): {first * 1000:.0f} ms")
    for name, series in (("rank, 90 days", rank), ("price", price)):
        fresh = [replace(series, footer=f"run {n}") for n in range(args.rounds)]
        samples = [timed(lambda s=s: drawn.png(s)) for s in fresh]
        size = len(drawn.png(series))
        print(f"{name}: {len(samples)} draws, median {statistics.median(samples) * 1000:.0f} ms,"
              f" p99 {percentile(samples, 99) * 1000:.0f} ms, PNG {size / 1000:.0f} KB")
    hit = timed(lambda: drawn.png(rank))
    print(f"cache hit: {hit * 1e6:.0f} µs")
    store.close()


if __name__ == "__main__":
    main()
