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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from rankbot.adapters.slack_chat import PATH, SlackAdmins, SlackContext, build_app, serve_http  # noqa: E402
from rankbot.bot.ports import InPlace  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402
from tests.conftest import load  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI, post_command  # noqa: E402

SECRET = "bench-signing-secret"
NOW = datetime(2026, 10, 8, 9, 0, tzinfo=UTC)
QUERIES = ["qwen", "deepseek", "", "claude", "gpt-4.1", "qwn"]


async def measure(requests: int) -> list[float]:
    store = load(UnitOfWork.open(Path(tempfile.mkdtemp()) / "bench.db"), "2026-08-22T183539Z")
    with FakeSlackAPI().running() as fake:
        client = AsyncWebClient(token="xoxb-bench", base_url=fake.base_url)
        context = SlackContext(InPlace(store), SlackAdmins(client, frozenset()), lambda: NOW)
        runner = await serve_http(build_app(client, SECRET, context), 0, "127.0.0.1")
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}{PATH}"
        samples = []
        for i in range(requests):
            start = time.perf_counter()
            reply = await post_command(url, SECRET, "/rank", QUERIES[i % len(QUERIES)],
                                       user="UBENCH")
            samples.append(time.perf_counter() - start)
            assert reply.status_code == 200
        await runner.cleanup()
    store.close()
    return samples[len(QUERIES):]  # the first round warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    samples = sorted(asyncio.run(measure(parser.parse_args().requests)))
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    print(f"/rank through the Slack endpoint on loopback, {len(samples)} signed requests: "
          f"p50 {statistics.median(samples) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          "(Slack allows 3,000 ms)")


if __name__ == "__main__":
    main()
