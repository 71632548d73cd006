"""A weekly digest to 1,000 channels across Slack and Discord from a running `rankbot run`:
none lost, none repeated, Slack's pace kept, a 429 storm absorbed."""

from __future__ import annotations

import time
from collections import Counter

from tests.e2e.harness import World, digest_due_in

SLACK_CHANNELS, DISCORD_CHANNELS = 500, 500
SLACK_PER_SECOND = 20  # bot.delivery.PACES["slack"]


def test_a_digest_to_1000_channels_arrives_once_each_at_slacks_pace(running: World) -> None:
    bot, slack, discord = running.bot, running.slack, running.discord
    digest_due_in(bot, SLACK_CHANNELS, DISCORD_CHANNELS)
    slack.rate_limit_every = 25  # a storm: one post in 25 is refused with Retry-After: 1

    started = time.monotonic()
    bot.start()
    deadline = started + 240
    while time.monotonic() < deadline and (
            len(slack.posted()) < SLACK_CHANNELS
            or len(discord.bodies("POST", r"/channels/\d+/messages")) < DISCORD_CHANNELS):
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    time.sleep(6)  # one more delivery pass: nothing further may arrive
    bot.stop()

    slack_counts = Counter(channel for _, channel in slack.posted())
    assert len(slack_counts) == SLACK_CHANNELS and set(slack_counts.values()) == {1}
    discord_posts = [r.path for r in discord._server.requests if r.method == "POST"
                     and r.path.endswith("/messages")]
    assert len(discord_posts) == DISCORD_CHANNELS == len(set(discord_posts))
    times = sorted(at for at, _ in slack.posted())
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    # The pace, measured where Slack would see it: sends are let go 50 ms apart, and a busy
    # event loop can delay one by a few tens of ms, so a window may catch one or two more.
    assert busiest <= SLACK_PER_SECOND + 3
    assert elapsed >= SLACK_CHANNELS / SLACK_PER_SECOND - 1  # paced, not bursting
    status = bot.cli("status").stdout
    assert "1000 sent" in status and "dead" not in status
