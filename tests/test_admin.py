"""`/rankbot` admin commands: scoped to their workspace, for admins only, audited. They run on
the in-memory unit of work and on SQLite alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rankbot.bot.admin import NOT_ADMIN, administer
from rankbot.bot.cards import channel_link
from rankbot.bot.channels import ChannelRef
from rankbot.bot.commands import Reply
from rankbot.bot.rules import RULES
from rankbot.storage import UnitOfWork
from tests.conftest import load

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 8, 7, 12, 0, tzinfo=UTC)
GUILD_A = ChannelRef("discord", "G-A", "100")
GUILD_A2 = ChannelRef("discord", "G-A", "101")
GUILD_B = ChannelRef("discord", "G-B", "200")


@dataclass
class Admins:
    """An Authorizer: admins per workspace, and who was asked about."""

    by_workspace: dict[str, set[str]] = field(default_factory=dict)
    asked: list[tuple[ChannelRef, str]] = field(default_factory=list)

    async def is_admin(self, ref: ChannelRef, user: str) -> bool:
        self.asked.append((ref, user))
        return user in self.by_workspace.get(ref.workspace, set())


ADMINS = Admins({"G-A": {"alice"}, "G-B": {"bob"}})


async def run(work: Any, ref: ChannelRef, user: str, text: str,
              now: datetime = NOW) -> Reply:
    return await administer(text, ref=ref, user=user, authorizer=ADMINS, work=work, now=now)


def text(reply: Reply) -> str:
    card = reply.card
    return "\n".join([card.title, *card.lines, *(f"{f.name}\n{f.value}" for f in card.fields)])


async def test_an_admin_subscribes_and_sets_rules_and_it_is_audited(work: UnitOfWork) -> None:
    reply = await run(work, GUILD_A, "alice", "subscribe alerts")
    assert not reply.public and "This channel now gets alerts." in text(reply)
    reply = await run(work, GUILD_A, "alice", "set top_n 10")
    assert reply.card.lines[0] == "`top_n`: 20 → 10"
    subscription = work.channels.subscription(GUILD_A)
    assert subscription is not None and subscription.rules.top_n == 10
    assert work.channels.audit_log(GUILD_A) == [
        {"at": "2026-08-07T12:00:00Z", "who": "alice", "action": "subscribe", "setting": "mode",
         "old": "", "new": "alerts"},
        {"at": "2026-08-07T12:00:00Z", "who": "alice", "action": "set", "setting": "top_n",
         "old": "20", "new": "10"}]
    config = text(await run(work, GUILD_A, "alice", "config"))
    assert "`top_n` = 10\n" in config and "`min_rank_move` = 3 (default)" in config


async def test_a_non_admin_can_neither_read_nor_change(work: UnitOfWork) -> None:
    await run(work, GUILD_A, "alice", "subscribe")
    for command in ("set top_n 5", "config", "status", "subscribe digest", "unsubscribe",
                    "preview 7"):
        reply = await run(work, GUILD_A, "mallory", command)
        assert (reply.public, reply.card.lines) == (False, (NOT_ADMIN,)), command
    subscription = work.channels.subscription(GUILD_A)
    assert subscription is not None and subscription.rules.top_n == 20
    assert subscription.mode == "all"
    assert [e["who"] for e in work.channels.audit_log(GUILD_A)] == ["alice"]  # her subscribe only


async def test_one_guild_cannot_see_or_change_anothers_rules(work: UnitOfWork) -> None:
    await run(work, GUILD_A, "alice", "subscribe")
    await run(work, GUILD_A, "alice", "set watch qwen")
    # Bob is an admin, but of guild B: in guild A he is nobody.
    assert (await run(work, GUILD_A, "bob", "config")).card.lines == (NOT_ADMIN,)
    # In his own guild he sees his own channel only, with default rules.
    assert "`watch` = none (default)" in text(await run(work, GUILD_B, "bob", "config"))
    status = text(await run(work, GUILD_B, "bob", "status"))
    assert "0 channel(s) subscribed in this workspace." in status and "100" not in status
    # Alice's second channel in guild A is a different channel, with its own rules.
    await run(work, GUILD_A2, "alice", "subscribe")
    assert "`watch` = none (default)" in text(await run(work, GUILD_A2, "alice", "config"))
    assert "`watch` = qwen" in text(await run(work, GUILD_A, "alice", "config"))


@pytest.mark.parametrize(("command", "message"), [
    ("set", "Usage: `/rankbot set KEY VALUE`. Keys: " + ", ".join(RULES) + "."),
    ("set colour blue", "Unknown setting `colour`. Settings: " + ", ".join(RULES) + "."),
    ("set top_n 500", "top_n must be a whole number from 1 to 50."),
    ("set timezone Mars/Olympus", "timezone must be an IANA time zone like Europe/Berlin or UTC."),
    ("set quiet_hours 22-7", "quiet_hours must be off, or local HH:MM-HH:MM like 22:00-07:00."),
    ("set watch <!everyone>", "watch must be none, or comma-separated id or author patterns"),
    ("subscribe sometimes", "Usage: `/rankbot subscribe [alerts|digest|all]`"),
    ("preview 500", "Usage: `/rankbot preview [days]`, days from 1 to 90."),
    ("frobnicate", "Unknown `/rankbot frobnicate`."),
])
async def test_bad_settings_get_one_line_and_change_nothing(
        work: UnitOfWork, command: str, message: str) -> None:
    await run(work, GUILD_A, "alice", "subscribe")
    before = work.channels.subscription(GUILD_A)
    reply = await run(work, GUILD_A, "alice", command)
    assert not reply.public and reply.card.lines[0].startswith(message)
    assert "\n" not in reply.card.lines[0]
    assert work.channels.subscription(GUILD_A) == before
    assert [e["action"] for e in work.channels.audit_log(GUILD_A)] == ["subscribe"]


async def test_set_needs_a_subscription(work: UnitOfWork) -> None:
    reply = await run(work, GUILD_A, "alice", "set top_n 5")
    assert reply.card.lines == ("Subscribe this channel first: `/rankbot subscribe`.",)


async def test_admins_hear_about_paused_channels_in_their_workspace(work: UnitOfWork) -> None:
    await run(work, GUILD_A, "alice", "subscribe")
    subscription = work.channels.subscription(GUILD_A)
    assert subscription is not None
    with work:
        work.channels.pause(subscription, "Missing Access", NOW)
    reply = await run(work, GUILD_A2, "alice", "status")
    assert f"⚠ {channel_link('100')} is paused (Missing Access)" in text(reply)
    assert "paused: Missing Access" in text(reply)
    assert "paused" not in text(await run(work, GUILD_B, "bob", "status"))


async def test_preview_shows_what_a_rule_would_have_sent_and_stricter_sends_less(
        work: UnitOfWork) -> None:
    load(work, "2026-07-14T025033Z", "2026-07-20T194813Z", "2026-07-28T193833Z",
         "2026-07-31T194018Z", "2026-08-06T142213Z")
    await run(work, GUILD_A, "alice", "subscribe")
    loose = await run(work, GUILD_A, "alice", "preview 30")
    await run(work, GUILD_A, "alice", "set min_price_change_pct 50")
    await run(work, GUILD_A, "alice", "set kinds price_changed,went_free,went_paid")
    strict = await run(work, GUILD_A, "alice", "preview 30")

    def count(reply: Reply) -> int:
        summary = reply.card.lines[0]
        assert summary.startswith("Over the last 30 days this channel would have got ")
        return int(summary.split(" with ")[1].split(" ")[0])

    assert count(loose) > count(strict) > 0
    strict_lines = [line for f in strict.card.fields for line in f.value.splitlines()
                    if not line.startswith("…")]
    assert strict_lines and all(" per 1M (" in line or "free" in line for line in strict_lines)
    assert [f.name for f in loose.card.fields][:1] == ["2026-07-20 19:48 UTC"]


async def test_preview_replays_the_real_rankings(work: UnitOfWork) -> None:
    load(work, "2026-08-22T183539Z")
    await run(work, GUILD_A, "alice", "subscribe")
    reply = await run(work, GUILD_A, "alice", "preview 14",
                      now=datetime(2026, 10, 8, 9, 0, tzinfo=UTC))
    ranking_fields = [f for f in reply.card.fields if f.name.endswith("rankings")]
    assert [f.name for f in ranking_fields] == ["2026-10-01 rankings", "2026-10-07 rankings"]
    assert "👑 deepseek/deepseek-v4.1-flash-20260910 is the new #1" in ranking_fields[1].value


async def test_help_is_for_everyone_and_unexpected_errors_are_contained(
        work: UnitOfWork, caplog: pytest.LogCaptureFixture) -> None:
    assert "/rankbot subscribe" in text(await run(work, GUILD_A, "mallory", "help"))

    class Broken:
        async def is_admin(self, ref: ChannelRef, user: str) -> bool:
            raise RuntimeError("directory offline")

    reply = await administer("config", ref=GUILD_A, user="alice", authorizer=Broken(),
                             work=work, now=NOW + timedelta(seconds=1))
    assert reply.card.lines == ("Sorry, that failed on our side; the error is logged.",)
    assert "directory offline" in caplog.text


async def test_time_zones_are_the_ones_every_host_has(work: UnitOfWork) -> None:
    await run(work, GUILD_A, "alice", "subscribe")
    for zone in ("right/UTC", "posix/Europe/Berlin", "../../etc/passwd", "Mars/Olympus"):
        reply = await run(work, GUILD_A, "alice", f"set timezone {zone}")
        assert "timezone must be an IANA time zone" in text(reply)
    await run(work, GUILD_A, "alice", "set timezone europe/berlin")
    subscription = work.channels.subscription(GUILD_A)
    assert subscription is not None and subscription.rules.timezone == "Europe/Berlin"


async def test_a_stored_setting_that_cannot_be_read_costs_only_its_channel() -> None:
    work = UnitOfWork.open(":memory:")  # a row written by hand: SQLite's own
    from rankbot.bot.polling import poll  # noqa: PLC0415 - the one test here that polls
    from rankbot.bot.rules import DEFAULT_RULES  # noqa: PLC0415
    from rankbot.bot.status import delivery_lines  # noqa: PLC0415
    from tests.conftest import catalog_bytes  # noqa: PLC0415

    load(work, "2026-08-22T124646Z", rankings=False)
    for ref in (GUILD_A, GUILD_A2):
        await run(work, ref, "alice", "subscribe")
    # Written by an older rankbot, or on a host whose zone files know `right/UTC`.
    work.db.execute("UPDATE subscriptions SET rules = ? WHERE channel = ?",
                     ['{"timezone": "right/UTC", "top_n": "10"}', GUILD_A.channel])
    broken = work.channels.subscription(GUILD_A)
    assert broken is not None and broken.unreadable == ("timezone 'right/UTC'",)
    assert broken.rules.top_n == 10 and not broken.alerts

    async def fetch() -> bytes:
        return catalog_bytes("2026-08-22T183539Z")

    outcome, = await poll(work, NOW + timedelta(days=20), DEFAULT_RULES, catalog=fetch)
    assert outcome.changes and outcome.fault is None
    queued = {m.subscription.ref for m in work.outbox.due_messages(NOW + timedelta(days=20))}
    assert queued == {GUILD_A2}  # the other channel is told as usual
    status = delivery_lines(work.channels.subscriptions(), work.outbox.outbox_counts(), [])
    assert (f"{'':<10} skipped {GUILD_A}: its settings cannot be read "
            "(timezone 'right/UTC'); `/rankbot set` there repairs them") in status
    reply = await run(work, GUILD_A2, "alice", "config")
    assert (f"⚠ {channel_link('100')} gets nothing: its settings cannot be read (timezone "
            "'right/UTC'). Any `/rankbot set` there repairs them, e.g. `/rankbot set timezone "
            "UTC`.") in text(reply)

    await run(work, GUILD_A, "alice", "set min_rank_move 5")  # any set repairs them
    repaired = work.channels.subscription(GUILD_A)
    assert repaired is not None and repaired.unreadable == () and repaired.alerts
    assert (repaired.rules.timezone, repaired.rules.top_n, repaired.rules.min_rank_move) == (
        "UTC", 10, 5)
