"""Delivery: the outbox worker. It sends due messages through each platform's Notifier, paced
per channel and per platform; waits out 429s, retries other failures with backoff and jitter up
to a bound (then the message is dead-lettered, shown in `status`), and pauses a channel whose
platform says it is gone, keeping its messages. Messages held by quiet hours go out as one
catch-up message.

Exactly once: a message is claimed before it is sent and marked sent after. If the process dies
in between, or the send times out, nobody knows whether the platform took it: such a message is
"in doubt", and before it is sent again it is looked for in the channel under its key."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from rankbot.bot.cards import Card, merge_cards
from rankbot.bot.channels import ChannelRef, Message
from rankbot.bot.charts import Series
from rankbot.bot.ports import DeliveryError, DeliveryWork, Notifier, Offload, inline

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 5
# How long a claimed message is left to its worker. A worker killed mid-send leaves its messages
# claimed this long (a restart on the same host takes them back at once: `release_claims`).
CLAIM = timedelta(minutes=2)
BACKOFF = 30.0  # seconds before the first retry; doubles each time, ±20% jitter
CLOCK_SKEW = timedelta(minutes=1)  # a send in doubt is looked for from this long before it began


@dataclass(frozen=True, slots=True)
class Pace:
    per_channel: float  # seconds between two messages to one channel
    per_second: float  # messages per second across the platform


PACES = {
    "slack": Pace(1.0, 20.0),  # Slack: about one message per second per channel
    "discord": Pace(1.0, 40.0),  # Discord: 5 per 5 s per channel, 50 requests/s per bot
}
UNPACED = Pace(0.0, 1000.0)


class Pacer:
    """Spaces sends: never two to one channel closer than its pace, never more per second on a
    platform than its rate. Gaps are measured from when a send was let go, so a busy moment
    cannot bank slots and release them as a burst."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock, self._sleep = clock, sleep
        self._channel: dict[ChannelRef, float] = {}
        self._platform: dict[str, float] = {}
        self._gates: dict[str, asyncio.Lock] = {}

    async def wait(self, ref: ChannelRef, pace: Pace) -> None:
        if (delay := self._channel.get(ref, 0.0) - self._clock()) > 0:
            await self._sleep(delay)
        async with self._gates.setdefault(ref.platform, asyncio.Lock()):  # first come, first go
            if (delay := self._platform.get(ref.platform, 0.0) - self._clock()) > 0:
                await self._sleep(delay)
            now = self._clock()
            self._platform[ref.platform] = now + 1 / pace.per_second
            self._channel[ref] = now + pace.per_channel


@dataclass
class Report:
    sent: int = 0
    deferred: int = 0
    dead: int = 0
    paused: list[str] = field(default_factory=list)


class Courier:
    def __init__(self, work: DeliveryWork, notifiers: Mapping[str, Notifier],
                 clock: Callable[[], datetime], pacer: Pacer | None = None,
                 paces: Mapping[str, Pace] = PACES, *, worker: str = "worker",
                 offload: Offload = inline) -> None:
        self._work, self._notifiers, self._clock = work, notifiers, clock
        self._pacer = pacer or Pacer()
        self._paces = paces
        self._worker = worker  # who holds the claims this courier makes
        self._offload = offload  # where the outbox's reads and writes run
        self.down: dict[str, str] = {}  # platform → why nothing more goes there (a bad token)

    async def deliver_due(self) -> Report:
        """Send every message that is due now; channels in parallel, each in order."""
        report = Report()
        channels: dict[int, list[Message]] = {}
        due = partial(self._work.outbox.due_messages, self._clock())
        for message in await self._offload(due):
            if message.subscription.ref.platform in self._notifiers:
                channels.setdefault(message.subscription.id, []).append(message)
        await asyncio.gather(*(self._deliver(queue, report) for queue in channels.values()))
        return report

    async def _deliver(self, queue: list[Message], report: Report) -> None:
        for batch in _batches(queue):
            ref = batch[0].subscription.ref
            if ref.platform in self.down:
                return
            card, chart = _card(batch), _chart(batch)
            changes = tuple(c for m in batch for c in m.changes)
            notifier, key = self._notifiers[ref.platform], delivery_key(batch)
            if chart is not None:  # drawn and uploaded once, before the pace is kept
                await notifier.prepare(chart)
            await self._pacer.wait(ref, self._paces.get(ref.platform, UNPACED))
            ids, now = [m.id for m in batch], self._clock()
            if not await self._written(
                    partial(self._work.outbox.claim, ids, now, now + CLAIM, self._worker)):
                return  # another worker (a cron `rankbot poll`, say) is sending this channel
            try:
                if not await self._already_there(notifier, batch, card, key):
                    await notifier.send(ref, card, changes, key, chart=chart)
            except DeliveryError as error:
                await self._written(partial(self._failed, batch, error, report))
                return  # the rest of this channel's queue keeps its order and waits
            except Exception as error:  # a fault in an adapter: keep the traceback, retry
                log.exception("sending to %s failed unexpectedly", ref)
                failure = DeliveryError("transient", type(error).__name__)
                await self._written(partial(self._failed, batch, failure, report))
                return
            await self._written(partial(self._work.outbox.mark_sent, ids, self._clock()))
            report.sent += len(batch)

    async def _written(self, write: Callable[[], T]) -> T:
        """A write to the outbox, as a unit of work of its own, where `offload` runs it."""
        def work() -> T:
            with self._work:
                return write()
        return await self._offload(work)

    async def _already_there(self, notifier: Notifier, batch: list[Message], card: Card,
                             key: str) -> bool:
        """Whether a send in doubt reached its channel. If the platform cannot say (no right
        to read the channel, say), it is sent again: a repeat is better than a loss."""
        since = min((m.in_doubt_since for m in batch if m.in_doubt_since), default=None)
        if since is None:
            return False
        ref = batch[0].subscription.ref
        try:
            found = await notifier.find(ref, card, key, since - CLOCK_SKEW)
        except DeliveryError as error:
            if error.kind in ("rate_limited", "transient"):
                raise  # try again later, still in doubt
            log.warning("cannot tell whether %s already has message %s (%s); sending it again",
                        ref, key, error.reason)
            return False
        if found:
            log.info("%s already has message %s, sent before a restart or timeout", ref, key)
        return found

    def _failed(self, batch: list[Message], error: DeliveryError, report: Report) -> None:
        """Records what became of a batch that was not sent (a write: see `_written`)."""
        ids, now = [m.id for m in batch], self._clock()
        subscription = batch[0].subscription
        # A timeout may have got through; a message in doubt stays so until it is sent.
        in_doubt = error.kind == "transient" or any(m.in_doubt_since for m in batch)
        if error.kind == "rate_limited":
            wait = error.retry_after or 1.0
            self._work.outbox.defer(ids, now + timedelta(seconds=wait), error.reason,
                                    attempt=False, in_doubt=in_doubt)
            report.deferred += len(ids)
        elif error.kind == "transient":
            attempts = max(m.attempts for m in batch) + 1
            if attempts >= MAX_ATTEMPTS:
                log.error("giving up on %d message(s) to %s after %d tries: %s", len(ids),
                          subscription.ref, attempts, error.reason)
                self._work.outbox.dead_letter(ids, error.reason)
                report.dead += len(ids)
            else:
                wait = BACKOFF * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
                self._work.outbox.defer(ids, now + timedelta(seconds=wait), error.reason,
                                        attempt=True, in_doubt=in_doubt)
                report.deferred += len(ids)
        elif error.kind == "permanent":
            log.warning("pausing %s: %s; its messages are kept until it is resubscribed",
                        subscription.ref, error.reason)
            self._work.channels.pause(subscription, error.reason, now)
            report.paused.append(str(subscription.ref))
        else:
            log.error("%s refused our credentials (%s): nothing more is sent there until "
                      "rankbot restarts with a valid token", subscription.ref.platform,
                      error.reason)
            self.down[subscription.ref.platform] = error.reason


def delivery_key(batch: list[Message]) -> str:
    """The name a message goes under on the platform: the same for every try of one batch,
    different for any other (25 characters at most, Discord's limit for a nonce)."""
    ref = batch[0].subscription.ref
    names = "\n".join([str(ref), *(m.key for m in batch)])
    return "rb" + hashlib.sha256(names.encode()).hexdigest()[:23]


def _batches(queue: list[Message]) -> list[list[Message]]:
    """Messages that waited out quiet hours go together; the rest one by one."""
    held = [m for m in queue if m.held]
    rest = [[m] for m in queue if not m.held]
    return ([held] if held else []) + rest


def _chart(batch: list[Message]) -> Series | None:
    """The chart a batch carries (a catch-up: its newest digest's)."""
    return next((m.chart for m in reversed(batch) if m.chart is not None), None)


def _card(batch: list[Message]) -> Card:
    if len(batch) == 1 and not batch[0].held:
        return batch[0].card
    return merge_cards([m.card for m in batch],
                       f"Catch-up: {len(batch)} message(s) held during quiet hours")
