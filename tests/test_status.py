"""`rankbot status`, the delivery lines: channels and people's watches counted apart."""

from __future__ import annotations

from datetime import UTC, datetime

from rankbot.bot.channels import ChannelRef, Subscription, person_ref
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.bot.status import delivery_lines

AT = datetime(2026, 10, 8, 2, tzinfo=UTC)


def subscription(ref: ChannelRef, paused: str | None = None) -> Subscription:
    return Subscription(len(str(ref)), ref, "alerts", DEFAULT_RULES, True, paused, AT)


def test_a_paused_person_is_counted_as_a_person_not_a_paused_channel() -> None:
    alice = subscription(person_ref("slack", "T1", "UALICE"), paused="cannot_dm_bot")
    lines = delivery_lines([alice], {}, [])
    assert lines[0] == "Channels   0 subscribed, 0 paused; 1 people watching models, " \
                       "1 paused (their DMs)"
    assert not any("UALICE" in line for line in lines)  # nothing for the operator to fix


def test_paused_channels_are_counted_and_listed_next_to_people() -> None:
    gone = ChannelRef("slack", "T1", "C1")
    subs = [subscription(gone, paused="channel_not_found"),
            subscription(ChannelRef("slack", "T1", "C2")),
            subscription(person_ref("slack", "T1", "UBOB")),
            subscription(person_ref("discord", "G1", "carol"), paused="cannot_dm_bot")]
    lines = delivery_lines(subs, {"pending": 2}, [])
    assert lines == [
        "Channels   2 subscribed, 1 paused; 2 people watching models, 1 paused (their DMs)",
        "Outbox     2 pending",
        f"{'':<10} paused {gone}: channel_not_found"]


def test_no_people_no_people_figure() -> None:
    line = delivery_lines([subscription(ChannelRef("slack", "T1", "C1"))], {}, [])[0]
    assert line == "Channels   1 subscribed, 0 paused"
