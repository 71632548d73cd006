"""Time one poll cycle (parse, store, diff) against the bare parse floor, in one run.

    python bench/poll_cycle.py [--repeat 30]

The floor is json.loads of the 689 KB catalog plus csv parsing of the rankings excerpt: the
least any poll must do. Each case runs on a fresh SQLite file (WAL, as in production) holding
the previous snapshot; only the poll itself is timed. Prints medians and ratios to the floor.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from rankbot.bot.polling import observe  # noqa: E402
from rankbot.bot.ports import RawRankings  # noqa: E402
from rankbot.bot.rules import DEFAULT_RULES  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "openrouter"
# After the rankings excerpt's last day: a rankings day not yet come is refused as malformed.
T0 = datetime(2026, 10, 8, 12, 46, 46, tzinfo=UTC)


def catalog(stamp: str) -> bytes:
    return gzip.decompress((FIXTURES / "models" / f"{stamp}.json.gz").read_bytes())


PREVIOUS, CURRENT = catalog("2026-08-22T124646Z"), catalog("2026-08-22T183539Z")
CSV = (FIXTURES / "rankings" / "exports-sample-2026-10-08.csv").read_bytes()
CSV_BEFORE = b"".join(ln for ln in CSV.splitlines(keepends=True)
                     if not ln.startswith(b"2026-10-07"))
# Same models, different bytes: the full path runs but no model changes.
RESERIALIZED = json.dumps(json.loads(CURRENT), indent=1).encode()


def floor() -> None:
    json.loads(CURRENT)
    list(csv.reader(io.StringIO(CSV.decode())))


def poll_cycle(store: UnitOfWork, body: bytes, rankings: bytes,
               at: datetime = T0 + timedelta(hours=6)) -> None:
    """What a poll does once the bytes are in: one transaction, a savepoint per source."""
    with store:
        observe(store, "catalog", body, at, DEFAULT_RULES)
        observe(store, "rankings", RawRankings(rankings, None, "export"), at, DEFAULT_RULES)


def baseline(store: UnitOfWork, body: bytes, rankings: bytes) -> None:
    poll_cycle(store, body, rankings, T0)


# name: (stored before the poll, polled)
CASES = {
    "unchanged, identical bytes": ((CURRENT, CSV), (CURRENT, CSV)),
    "unchanged models, new bytes": ((CURRENT, CSV), (RESERIALIZED, CSV)),
    "changed (3 prices, new rankings day)": ((PREVIOUS, CSV_BEFORE), (CURRENT, CSV)),
}


def sample(case: str) -> float:
    """One poll on a fresh database file that holds the case's previous snapshot."""
    before, after = CASES[case]
    with tempfile.TemporaryDirectory() as folder:
        store = UnitOfWork.open(Path(folder) / "bench.db")
        baseline(store, *before)
        start = time.perf_counter()
        poll_cycle(store, *after)
        elapsed = time.perf_counter() - start
        store.close()
    return elapsed


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    repeat = parser.parse_args().repeat
    samples: dict[str, list[float]] = {"floor": [], **{case: [] for case in CASES}}
    for _ in range(repeat):  # interleaved, so a noisy neighbour hits every case alike
        samples["floor"].append(timed(floor))
        for case in CASES:
            samples[case].append(sample(case))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"catalog {len(CURRENT) / 1000:.0f} KB, rankings CSV {len(CSV) / 1000:.0f} KB, "
          f"median of {repeat} interleaved runs")
    print(f"{'floor (json.loads + csv parse)':<40} {medians.pop('floor') * 1000:7.2f} ms   1.00x")
    bare = statistics.median(samples["floor"])
    for name, seconds in medians.items():
        print(f"{name:<40} {seconds * 1000:7.2f} ms {seconds / bare:6.2f}x")


if __name__ == "__main__":
    main()
