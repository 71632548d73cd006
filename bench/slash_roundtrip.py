"""Time a slash command's round trip through the Slack endpoint (HTTP mode) on loopback.

    python bench/slash_roundtrip.py [--requests 300]

The real bolt app serves /slack/events from a database holding the real catalog and rankings;
signed /rank requests (a few queries in turn) go over loopback, one at a time. Prints p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
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
from tests.conftest import load  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI, post_command  # noqa: E402
from tests.fakes.slack_bot import SECRET, serving  # noqa: E402

QUERIES = ["qwen", "deepseek", "", "claude", "gpt-4.1", "qwn"]


async def measure(requests: int) -> list[float]:
    store = load(UnitOfWork.open(Path(tempfile.mkdtemp()) / "bench.db"), "2026-08-22T183539Z")
    with FakeSlackAPI().running() as fake:
        client = AsyncWebClient(token="xoxb-bench", base_url=fake.base_url)
        samples = []
        async with serving(store, fake, client) as bot:
            for i in range(requests):
                start = time.perf_counter()
                reply = await post_command(bot.url, SECRET, "/rank", QUERIES[i % len(QUERIES)],
                                           user="UBENCH", response_url=f"{fake.base_url}hooks/b")
                samples.append(time.perf_counter() - start)
                assert reply.status_code == 200
    store.close()
    return samples[len(QUERIES):]  # the first round warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    samples = asyncio.run(measure(parser.parse_args().requests))
    print(f"/rank through the Slack endpoint on loopback, {len(samples)} signed requests: "
          f"p50 {statistics.median(samples) * 1000:.1f} ms, p99 "
          f"{percentile(samples, 99) * 1000:.1f} ms "
          "(Slack allows 3,000 ms)")


if __name__ == "__main__":
    main()
