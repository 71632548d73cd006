"""Crash safety: `rankbot run` killed with SIGKILL in the middle of delivering a digest to many
channels, then restarted: every channel has the digest exactly once, counted at the fakes.

Each post is held a second before it is answered, so the kill lands while posts the platforms
already took are waiting for their answers: the case where the outbox alone cannot know."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from rankbot.storage import UnitOfWork
from tests.e2e.harness import World, digest_due_in, discord_channel, slack_channel

CHANNELS = 120  # on each platform
IN_FLIGHT = 1.0  # seconds each post waits for its answer


def test_sigkill_mid_digest_then_restart_delivers_each_channel_exactly_once(
        running: World) -> None:
    bot, slack, discord = running.bot, running.slack, running.discord
    digest_due_in(bot, CHANNELS, CHANNELS)
    slack.answer_after = discord.answer_after = IN_FLIGHT
    discord.nonce_window = 0.0  # as if Discord had forgotten the nonces: our own look-back holds

    def counts() -> tuple[Counter[str], Counter[str]]:
        return (Counter({slack_channel(i): len(slack.messages(slack_channel(i)))
                         for i in range(CHANNELS)}),
                Counter({discord_channel(i): len(discord.messages(discord_channel(i)))
                         for i in range(CHANNELS)}))

    def sent() -> int:  # as rankbot's outbox records it
        store = UnitOfWork.open(bot.workdir / "rankbot.db")
        try:
            return store.outbox.outbox_counts().get("sent", 0)
        finally:
            store.close()

    bot.start()
    wait_until(lambda: all(c.total() >= CHANNELS // 4 for c in counts()), 90)
    bot.kill()
    time.sleep(0.5)  # the fakes finish reading what reached them before the kill
    taken = sum(c.total() for c in counts())  # what the platforms had when rankbot died
    in_doubt = taken - sent()  # taken, but their answers never came back
    assert 0 < taken < 2 * CHANNELS and in_doubt > 0

    bot.start()  # long before the dead worker's 2-minute claims run out
    wait_until(lambda: sent() == 2 * CHANNELS, 60)
    time.sleep(7)  # one more delivery pass: nothing further may arrive
    bot.stop()

    slack_counts, discord_counts = counts()
    assert set(slack_counts.values()) == {1} and set(discord_counts.values()) == {1}
    assert "were being sent when rankbot last stopped without warning" in bot.log
    assert bot.log.count("sent before a restart or timeout") == in_doubt
    status = bot.cli("status").stdout
    assert f"{2 * CHANNELS} sent" in status and "dead" not in status


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not done after {timeout} s"
        time.sleep(0.2)
