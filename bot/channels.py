"""Channels: who gets what (subscriptions) and the messages waiting for them (pure types)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from rankbot.bot.cards import Card
from rankbot.bot.rules import Rules

if TYPE_CHECKING:  # charts read the ports, which name these types
    from rankbot.bot.charts import Series

Mode = Literal["alerts", "digest", "all"]
MODES: tuple[Mode, ...] = ("alerts", "digest", "all")


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel, always with its platform and workspace (Slack team, Discord guild): nothing
    is ever looked up by channel id alone, so one workspace cannot reach another's."""

    platform: str
    workspace: str
    channel: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}/{self.channel}"

    @property
    def person(self) -> bool:
        """A person's direct messages (their `/watch` alerts), not a channel: `@` + user id,
        which no Slack or Discord channel id starts with."""
        return self.channel.startswith("@")

    @property
    def user(self) -> str:
        return self.channel.removeprefix("@")


CONSOLE = ChannelRef("console", "local", "console")
GLOB = re.compile(r"([*?\[])")


@dataclass(frozen=True, slots=True)
class Watch:
    """One model a person watches (`bot.watches`): its catalog id, and the name the rankings
    give it (its permaslug, with its variant), kept together, so that a model gone from the
    catalog is still one watch, and unwatching it drops both."""

    model: str
    slug: str

    @property
    def patterns(self) -> tuple[str, ...]:
        """`watch` patterns that match this model alone, by either name (lower-case, as
        `bot.alerts.admits` compares them)."""
        return tuple(dict.fromkeys(GLOB.sub(r"[\1]", name.lower())
                                   for name in (self.model, self.slug)))


# A pause the operator must mend (rankbot's app lacks a scope or a permission), not the channel
# or the person: a person paused for it counts against health, and is told it is not theirs.
APP_SETUP = "rankbot's app is not set up for this: "


# Whose a person's watches are: a Slack user belongs to a workspace, a Discord user to no one
# server (a watch started in one server is the same person's in another).
PEOPLE = {"discord": "@"}


def person_ref(platform: str, workspace: str, user: str) -> ChannelRef:
    return ChannelRef(platform, PEOPLE.get(platform, workspace), f"@{user}")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    ref: ChannelRef
    mode: Mode
    rules: Rules
    active: bool
    paused: str | None  # why delivery stopped (channel gone, bot removed), until resubscribed
    created_at: datetime
    # Stored rule values that are no longer valid (`timezone 'right/UTC'`): until an admin's
    # `/rankbot set` replaces them, the channel is skipped, and says why.
    unreadable: tuple[str, ...] = ()

    @property
    def alerts(self) -> bool:
        # A person who watches nothing hears nothing (an empty `watch` means every model).
        return self.active and self.mode in ("alerts", "all") and not self.unreadable \
            and not (self.ref.person and not self.rules.watch)

    @property
    def paused_for_operator(self) -> bool:
        """Paused for something the operator must mend: any paused channel, and a person
        whose messages fail for rankbot's own setup (not their closed DMs)."""
        return self.paused is not None and (
            not self.ref.person or self.paused.startswith(APP_SETUP))

    @property
    def digests(self) -> bool:
        return self.active and self.mode in ("digest", "all") and not self.unreadable


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox entry: a card for one channel, with the change records behind it."""

    id: int
    subscription: Subscription
    key: str  # idempotency key, unique per subscription
    card: Card
    changes: tuple[dict[str, Any], ...]
    held: bool  # waited out quiet hours
    attempts: int
    # When a send whose outcome is unknown (its worker killed mid-send, a timeout) began: it may
    # already be in the channel, so it is looked for there before it is sent again.
    in_doubt_since: datetime | None = None
    chart: Series | None = None  # drawn and attached when sent (the digest's week)
