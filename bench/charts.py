"""Time drawing the /rank, /price and weekly digest charts (PNG, matplotlib Agg) on the
fixtures' history.

    python bench/charts.py [--rounds 30]

The database is built in memory from tests/fixtures (two real catalogs and the rankings
export), as the tests build it. Each chart's first draw is timed apart, in a fresh interpreter
of its own: it pays matplotlib's import, as the first chart after a restart does. Each later
draw misses the cache on purpose (a new series each time: 90 days of rank, the price steps, the
top 10's week); a cache hit is timed too. Prints the median and p99 per chart and PNG sizes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
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

NAMES = ("rank, 90 days", "price", "week, top 10")


def timed(draw: Callable[[], object]) -> float:
    start = time.perf_counter()
    draw()
    return time.perf_counter() - start


def series(store: UnitOfWork) -> dict[str, charts.Series]:
    week = charts.week_series(store.snapshots, EXPORT_AT.date())
    assert week is not None, "the fixtures have rankings"
    return {"rank, 90 days": charts.rank_series(store.snapshots, "deepseek", EXPORT_AT, 90),
            "price": charts.price_series(store.snapshots, "deepseek", EXPORT_AT),
            "week, top 10": week}


def cold(name: str, warmed: bool = False) -> float:
    """The first draw of one chart in a fresh interpreter, in seconds."""
    said = subprocess.run([sys.executable, __file__, "--cold", name,
                           *(["--warmed"] if warmed else [])], capture_output=True,
                          text=True, check=True)
    return float(said.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cold", choices=NAMES, help=argparse.SUPPRESS)  # one first draw
    parser.add_argument("--warmed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    store = load(UnitOfWork.open(":memory:"), "2026-07-14T025033Z", "2026-08-22T183539Z")
    drawing = series(store)
    if args.cold:
        if args.warmed:  # as `rankbot run` does at start with a chat platform on
            drawn.warm()
        print(timed(lambda: drawn.png(drawing[args.cold])))
        return
    for name in NAMES:
        print(f"{name}: first draw {cold(name) * 1000:.0f} ms with matplotlib's import, "
              f"{cold(name, warmed=True) * 1000:.0f} ms after `warm()`")
    for name, shown in drawing.items():
        drawn.png(replace(shown, footer="warm-up"))  # the import, timed above, left out here
        fresh = [replace(shown, footer=f"run {n}") for n in range(args.rounds)]
        samples = [timed(lambda s=s: drawn.png(s)) for s in fresh]
        size = len(drawn.png(shown))
        print(f"{name}: {len(samples)} draws, median {statistics.median(samples) * 1000:.0f} ms,"
              f" p99 {percentile(samples, 99) * 1000:.0f} ms, PNG {size / 1000:.0f} KB")
    built = [timed(lambda: charts.week_series(store.snapshots, EXPORT_AT.date()))
             for _ in range(args.rounds)]
    print(f"week series from SQLite: median {statistics.median(built) * 1000:.1f} ms")
    hit = timed(lambda: drawn.png(drawing["week, top 10"]))
    print(f"cache hit: {hit * 1e6:.0f} µs")
    store.close()


if __name__ == "__main__":
    main()
