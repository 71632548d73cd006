"""Time `/rank <model> 30d` with its chart through the Slack endpoint (HTTP mode) on loopback.

    python bench/slack_commands.py [--requests 100]

The real bolt app serves /slack/events from a database holding the tests' real fixtures (the
newest catalog and the rankings export); the Slack Web API is the tests' loopback fake, so the
real slack_sdk uploads each chart in its three steps. Signed requests, one at a time, name the
export's ranked models in turn by permaslug: the first request after start is timed apart
(cold: it pays matplotlib's import), then each model's first chart is drawn and uploaded, and
its later ones come from the chart and upload caches (the same file again). Prints the median
and p99 of the acknowledgement (the answer, which Slack wants within 3 s) and of the chart's
message at the response_url that follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from bench.rank_answer import percentile  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402
from tests.conftest import RANKINGS_CSV, load  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI, post_command  # noqa: E402
from tests.fakes.slack_bot import SECRET, serving  # noqa: E402

SLACK_LIMIT = 3.0


def ranked_models() -> list[str]:
    """The permaslugs of the export's last day, best first (`other` aside)."""
    with RANKINGS_CSV.open(newline="") as rows:
        table = list(csv.DictReader(rows))
    last = max(row["date"] for row in table)
    day = sorted((int(r["rank"]), r["model_permaslug"]) for r in table
                 if r["date"] == last and r["rank"])
    return [slug for _, slug in day if slug != "other"]


async def measure(requests: int) -> list[tuple[float, float]]:
    """(seconds to the answer, seconds to the chart at the response_url) per request."""
    store = load(UnitOfWork.open(Path(tempfile.mkdtemp()) / "bench.db"), "2026-08-22T183539Z")
    models = ranked_models()
    with FakeSlackAPI().running() as fake:
        client = AsyncWebClient(token="xoxb-bench", base_url=fake.base_url)
        samples = []
        async with serving(store, fake, client) as bot:
            for i in range(requests):
                hook = f"hooks/bench-{i}"
                start = time.monotonic()
                reply = await post_command(
                    bot.url, SECRET, "/rank", f"{models[i % len(models)]} 30d", user="UBENCH",
                    response_url=f"{fake.base_url}{hook}")
                answered = time.monotonic() - start
                assert reply.status_code == 200, reply.text
                samples.append((answered, await _chart_at(fake, hook) - start))
    store.close()
    return samples


async def _chart_at(fake: FakeSlackAPI, hook: str) -> float:
    """When the chart's message reached the response_url (time.monotonic)."""
    while not (arrived := fake.arrived(hook)):
        await asyncio.sleep(0.001)
    return arrived[0]


def summary(name: str, samples: list[tuple[float, float]]) -> str:
    def stats(seconds: list[float]) -> str:
        return (f"median {statistics.median(seconds) * 1000:.1f} ms, p99 "
                f"{percentile(seconds, 99) * 1000:.1f} ms")
    return (f"{name}, {len(samples)} requests: answer {stats([a for a, _ in samples])}; "
            f"chart {stats([c for _, c in samples])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    requests = parser.parse_args().requests
    samples = asyncio.run(measure(requests))
    distinct = len(ranked_models())
    cold, drawn, cached = samples[0], samples[1:distinct], samples[distinct:]
    print(f"/rank <model> 30d through the Slack endpoint on loopback (Slack waits "
          f"{SLACK_LIMIT:.0f} s for the answer; the chart follows it):")
    print(f"  cold (first request, matplotlib imported): answer {cold[0] * 1000:.1f} ms, "
          f"chart {cold[1] * 1000:.1f} ms")
    print("  " + summary("drawn (each model's first chart)", drawn))
    if cached:
        print("  " + summary("cached (the same chart again)", cached))
    print("  " + summary("all but the cold one", samples[1:]))


if __name__ == "__main__":
    main()
