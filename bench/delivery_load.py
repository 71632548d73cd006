"""Time the weekly digest to 1,000 channels (500 Slack, 500 Discord) against pacing's bound.

    python bench/delivery_load.py [--storm 25]

The real courier, SlackNotifier (slack_sdk) and DiscordNotifier (discord.py) send to loopback
fakes of both APIs; one Slack post in `--storm` is refused with a 429 and Retry-After: 1. The
bound is what the pace allows: 500 Slack posts at 20 per second take at least 25 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

import discord  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from rankbot.adapters.discord_chat import DiscordNotifier, intents, use_api  # noqa: E402
from rankbot.adapters.slack_chat import SlackNotifier  # noqa: E402
from rankbot.bot.channels import ChannelRef  # noqa: E402
from rankbot.bot.delivery import PACES, Courier  # noqa: E402
from rankbot.bot.digest import queue_due_digests  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402
from tests.conftest import load  # noqa: E402
from tests.fakes.discord_api import FakeDiscordAPI  # noqa: E402
from tests.fakes.slack_api import FakeSlackAPI  # noqa: E402

CHANNELS = 500  # per platform
MONDAY = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)


async def deliver(storm: int) -> tuple[float, Counter[str], int]:
    store = load(UnitOfWork.open(Path(tempfile.mkdtemp()) / "bench.db"), "2026-08-22T183539Z")
    for i in range(CHANNELS):
        with store:
            store.channels.subscribe(ChannelRef("slack", "T1", f"C{i:04}"), "digest",
                                     MONDAY.replace(day=1))
        with store:
            store.channels.subscribe(ChannelRef("discord", "G1", str(10_000 + i)), "digest",
                            MONDAY.replace(day=1))
    assert queue_due_digests(store, MONDAY) == 2 * CHANNELS
    with FakeSlackAPI().running() as slack, FakeDiscordAPI().running() as fake_discord:
        slack.rate_limit_every = storm
        use_api(fake_discord.base_url)
        bot = discord.Client(intents=intents())
        await bot.login("OTk5.bench.token")
        courier = Courier(store, {
            "slack": SlackNotifier(AsyncWebClient(token="xoxb-bench", base_url=slack.base_url)),
            "discord": DiscordNotifier(bot.http, None)}, lambda: datetime.now(UTC))
        started = time.perf_counter()
        while store.outbox.outbox_counts().get("pending"):
            await courier.deliver_due()
            if store.outbox.outbox_counts().get("pending"):
                await asyncio.sleep(0.2)  # a 429 asked for a second
        elapsed = time.perf_counter() - started
        await bot.close()
        posts = Counter(channel for _, channel in slack.posted())
        discord_posts = len(fake_discord.bodies("POST", r"/channels/\d+/messages"))
    store.close()
    return elapsed, posts, discord_posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storm", type=int, default=25)
    elapsed, slack_posts, discord_posts = asyncio.run(deliver(parser.parse_args().storm))
    bound = CHANNELS / PACES["slack"].per_second
    print(f"digest to {2 * CHANNELS} channels: {sum(slack_posts.values())} Slack + "
          f"{discord_posts} Discord messages delivered, "
          f"{sum(n - 1 for n in slack_posts.values())} duplicates; "
          f"{elapsed:.1f} s against a pacing bound of {bound:.0f} s ({elapsed / bound:.2f}x)")


if __name__ == "__main__":
    main()
