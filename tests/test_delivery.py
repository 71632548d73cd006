"""Delivery through the outbox, with recording notifiers: exactly once, paced, patient."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rankbot.bot.admin import administer
from rankbot.bot.cards import Card
from rankbot.bot.channels import CONSOLE, ChannelRef, Message, Subscription
from rankbot.bot.delivery import CLAIM, CLOCK_SKEW, MAX_ATTEMPTS, Courier, Pace, Pacer, delivery_key
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.polling import observe, tell_channels
from rankbot.bot.ports import DeliveryError, RawRankings
from rankbot.bot.rules import DEFAULT_RULES, set_rule
from rankbot.storage import UnitOfWork
from tests.conftest import RecordingNotifier, catalog_bytes, rankings_csv
from tests.fakes.clock import Clock, NoWait

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 10, 7, 23, 0, tzinfo=UTC)  # a Wednesday
GENERAL = ChannelRef("slack", "T1", "C-general")
MODELS = ChannelRef("slack", "T1", "C-models")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "rankbot.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[UnitOfWork]:
    repo = UnitOfWork.open(db_path)
    yield repo
    repo.close()


def baseline(store: UnitOfWork) -> None:
    before = T0 - timedelta(days=1)
    observe(store, "catalog", catalog_bytes("2026-07-14T025033Z"), before, DEFAULT_RULES)
    observe(store, "rankings", RawRankings(rankings_csv("2026-09-30", "2026-10-01"), None,
                                           "export"), before, DEFAULT_RULES)


def poll(store: UnitOfWork, at: datetime = T0) -> int:
    """A poll of both sources that finds changes: the real 07-20 catalog and the 10-07 day."""
    with store:
        outcomes = [observe(store, "catalog", catalog_bytes("2026-07-20T194813Z"), at,
                            DEFAULT_RULES),
                    observe(store, "rankings", RawRankings(rankings_csv(), None, "export"), at,
                            DEFAULT_RULES)]
        return tell_channels(store, at, outcomes)


def courier(store: UnitOfWork, notifier: RecordingNotifier, clock: Clock,
            waits: NoWait | None = None) -> Courier:
    waits = waits or NoWait()
    return Courier(store, {"slack": notifier, "console": notifier}, clock,
                   Pacer(waits.clock, waits.sleep))


async def test_a_crash_between_queueing_and_sending_delivers_each_message_once(
        db_path: Path) -> None:
    store = UnitOfWork.open(db_path)
    for ref in (CONSOLE, GENERAL, MODELS):
        with store:
            store.channels.subscribe(ref, "alerts", T0 - timedelta(days=2))
    baseline(store)
    assert poll(store) == 3
    store.close()  # the process dies here: queued, nothing sent

    store = UnitOfWork.open(db_path)
    notifier, clock = RecordingNotifier(), Clock(T0)
    first = await courier(store, notifier, clock).deliver_due()
    again = await courier(store, notifier, clock).deliver_due()  # a second worker, or a restart
    assert (first.sent, again.sent) == (3, 0)
    assert sorted(str(ref) for ref, _, _ in notifier.sent) == sorted(
        str(r) for r in (CONSOLE, GENERAL, MODELS))
    assert all(card.title.startswith("OpenRouter: ") for card in notifier.cards)
    store.close()


async def test_the_same_poll_twice_sends_nothing_new(store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(GENERAL, "alerts", T0)
    baseline(store)
    assert poll(store) == 1
    assert poll(store, T0 + timedelta(hours=1)) == 0  # identical payloads: nothing to tell
    with store:  # even a snapshot told twice is queued once (the outbox key)
        again = observe(store, "catalog", catalog_bytes("2026-07-28T193833Z"), T0, DEFAULT_RULES)
        assert tell_channels(store, T0, [again]) == 1
        assert tell_channels(store, T0, [again]) == 0
    notifier = RecordingNotifier()
    await courier(store, notifier, Clock(T0 + timedelta(hours=2))).deliver_due()
    assert len(notifier.to(GENERAL)) == 2


async def test_429_waits_for_retry_after(store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(GENERAL, "alerts", T0)
    baseline(store)
    poll(store)
    notifier, clock = RecordingNotifier(), Clock(T0)
    notifier.errors.append(DeliveryError("rate_limited", "ratelimited", retry_after=30))
    work = courier(store, notifier, clock)
    assert (await work.deliver_due()).deferred == 1
    clock.advance(seconds=29)
    assert (await work.deliver_due()).sent == 0
    clock.advance(seconds=2)
    assert (await work.deliver_due()).sent == 1
    assert len(notifier.sent) == 1


async def test_a_permanent_error_pauses_only_that_channel_and_keeps_its_messages(
        store: UnitOfWork) -> None:
    for ref in (GENERAL, MODELS):
        with store:
            store.channels.subscribe(ref, "alerts", T0)
    baseline(store)
    poll(store)

    class GoneChannel(RecordingNotifier):
        async def send(self, ref: ChannelRef, card: Card, changes: Any, key: str,
                       chart: Any = None) -> None:
            if ref == MODELS:
                raise DeliveryError("permanent", "channel_not_found")
            await super().send(ref, card, changes, key)

    notifier, clock = GoneChannel(), Clock(T0)
    report = await courier(store, notifier, clock).deliver_due()
    assert report.paused == [str(MODELS)]
    assert [ref for ref, _, _ in notifier.sent] == [GENERAL]
    paused = store.channels.subscription(MODELS)
    assert paused is not None and paused.paused == "channel_not_found"
    assert store.outbox.queued(paused) == 1  # kept
    clock.advance(minutes=5)
    assert (await courier(store, notifier, clock).deliver_due()).sent == 0  # no retry loop
    with store:
        store.channels.subscribe(MODELS, "alerts", clock())  # the admin fixed it and resubscribed
    assert (await courier(store, RecordingNotifier(), clock).deliver_due()).sent == 1


async def test_failures_back_off_then_dead_letter(store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(GENERAL, "alerts", T0)
    baseline(store)
    poll(store)
    notifier, clock = RecordingNotifier(), Clock(T0)
    notifier.errors += [DeliveryError("transient", "HTTP 503")] * MAX_ATTEMPTS
    work = courier(store, notifier, clock)
    waits = []
    for _ in range(MAX_ATTEMPTS - 1):
        assert (await work.deliver_due()).deferred == 1
        (retry,) = store.db.execute("SELECT not_before FROM outbox").fetchone()
        waits.append((datetime.fromisoformat(retry) - clock()).total_seconds())
        clock.at = datetime.fromisoformat(retry)
    assert (await work.deliver_due()).dead == 1
    assert store.outbox.outbox_counts() == {"dead": 1}
    assert len(waits) == MAX_ATTEMPTS - 1
    assert all(later > earlier for earlier, later in itertools.pairwise(waits))
    assert notifier.sent == []
    assert store.outbox.dead_letters()[0][2] == "HTTP 503"


async def test_quiet_hours_hold_messages_and_release_one_catch_up(store: UnitOfWork) -> None:
    with store:
        subscription = store.channels.subscribe(GENERAL, "alerts", T0)
    with store:
        store.channels.set_rules(subscription,
                                 set_rule(DEFAULT_RULES, "quiet_hours", "22:00-07:00"), who="U1",
                                 at=T0, setting="quiet_hours", old="off", new="22:00-07:00")
    baseline(store)
    poll(store, T0)  # 23:00 UTC: quiet
    with store:
        later = observe(store, "catalog", catalog_bytes("2026-07-28T193833Z"),
                               T0 + timedelta(hours=3), DEFAULT_RULES)
        tell_channels(store, T0 + timedelta(hours=3), [later])
    notifier, clock = RecordingNotifier(), Clock(T0 + timedelta(hours=4))
    assert (await courier(store, notifier, clock).deliver_due()).sent == 0
    clock.at = datetime(2026, 10, 8, 7, 0, tzinfo=UTC)
    assert (await courier(store, notifier, clock).deliver_due()).sent == 2
    (card,) = notifier.cards
    assert card.title == "Catch-up: 2 message(s) held during quiet hours"
    assert len([f for f in card.fields if f.name.startswith("OpenRouter: ")]) == 2


async def test_a_digest_missed_while_down_is_sent_once(store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(GENERAL, "digest", datetime(2026, 9, 1, tzinfo=UTC))
    baseline(store)
    poll(store)
    wednesday = datetime(2026, 10, 7, 23, 0, tzinfo=UTC)  # Monday 09:00 passed while down
    assert queue_due_digests(store, wednesday) == 1
    assert queue_due_digests(store, wednesday + timedelta(hours=1)) == 0  # restarted again
    notifier = RecordingNotifier()
    await courier(store, notifier, Clock(wednesday)).deliver_due()
    assert [c.title for c in notifier.cards] == ["OpenRouter weekly: Sep 28 – Oct 4, 2026"]
    next_monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    assert queue_due_digests(store, next_monday - timedelta(minutes=1)) == 0
    assert queue_due_digests(store, next_monday) == 1


async def test_digests_follow_each_channels_day_time_and_zone(store: UnitOfWork) -> None:
    with store:
        subscription = store.channels.subscribe(GENERAL, "all", datetime(2026, 9, 1, tzinfo=UTC))
    rules = DEFAULT_RULES
    for key, value in (("digest_day", "fri"), ("digest_time", "17:30"),
                       ("timezone", "America/New_York")):
        rules = set_rule(rules, key, value)
    with store:
        store.channels.set_rules(subscription, rules, who="U1", at=T0, setting="digest", old="",
                                 new="")
    baseline(store)
    friday = datetime(2026, 10, 9, 21, 29, tzinfo=UTC)  # 17:29 in New York (EDT)
    assert queue_due_digests(store, friday - timedelta(days=1)) == 1  # last week's, missed
    assert queue_due_digests(store, friday) == 0
    # Friday's moment has come, but the rankings end where last week's digest did: the same
    # week is never sent twice. With a new week of data it goes out.
    assert queue_due_digests(store, friday + timedelta(minutes=1)) == 0
    poll(store)
    assert queue_due_digests(store, friday + timedelta(minutes=2)) == 1


async def test_pacing_per_channel_and_per_platform() -> None:
    waits = NoWait()
    pacer = Pacer(waits.clock, waits.sleep)
    pace = Pace(per_channel=1.0, per_second=4.0)
    for _ in range(3):
        await pacer.wait(GENERAL, pace)
    assert waits.waits == [1.0, 1.0]  # one message per second to one channel
    waits.waits.clear()
    for ref in (MODELS, ChannelRef("slack", "T1", "C3"), ChannelRef("slack", "T1", "C4")):
        await pacer.wait(ref, pace)
    assert waits.waits == [0.25, 0.25, 0.25]  # 4 per second across the platform


class Admins:
    async def is_admin(self, ref: ChannelRef, user: str) -> bool:
        return user == "admin"


async def test_an_unsubscribed_channel_gets_nothing_more(store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(GENERAL, "alerts", T0)
    baseline(store)
    poll(store)
    said = await administer("unsubscribe", ref=GENERAL, user="admin", authorizer=Admins(),
                            work=store, now=T0)
    assert said.card.title == "Unsubscribed"
    notifier = RecordingNotifier()
    assert (await courier(store, notifier, Clock(T0)).deliver_due()).sent == 0
    assert store.outbox.outbox_counts() == {"cancelled": 1}
    with store:
        assert store.channels.unsubscribe(GENERAL, T0) is None


CRASH_AFTER_QUEUEING = """
import os, signal, sys
from datetime import UTC, datetime
sys.path.insert(0, {root!r})
from rankbot.storage import UnitOfWork
from tests.test_delivery import GENERAL, MODELS, T0, baseline, poll
store = UnitOfWork.open({db!r})
with store:
    for ref in (GENERAL, MODELS):
        store.channels.subscribe(ref, "alerts", T0)
baseline(store)
assert poll(store) == 2
os.kill(os.getpid(), signal.SIGKILL)  # dies with the messages queued, none sent
"""


async def test_a_process_killed_after_queueing_delivers_once_after_restart(
        db_path: Path) -> None:
    script = CRASH_AFTER_QUEUEING.format(root=str(Path(__file__).parents[1]), db=str(db_path))
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                            check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    store = UnitOfWork.open(db_path)
    notifier = RecordingNotifier()
    for _ in range(2):  # the restarted worker, then another pass
        await courier(store, notifier, Clock(T0)).deliver_due()
    assert sorted(str(ref) for ref, _, _ in notifier.sent) == [str(GENERAL), str(MODELS)]
    store.close()


async def test_two_workers_on_one_database_send_each_message_once(db_path: Path) -> None:
    first, second = UnitOfWork.open(db_path), UnitOfWork.open(db_path)  # `run` and a cron poll
    refs = [ChannelRef("slack", "T1", f"C{i}") for i in range(40)]
    for ref in refs:
        with first:
            subscription = first.channels.subscribe(ref, "alerts", T0)
        with first:
            first.outbox.enqueue(subscription, "test:1", kind="alert", card=Card(ref.channel),
                                 changes=[], at=T0)

    class SlowNotifier(RecordingNotifier):  # a real send takes a while: workers interleave
        async def send(self, ref: ChannelRef, card: Card, changes: Any, key: str,
                       chart: Any = None) -> None:
            await asyncio.sleep(0.001)
            await super().send(ref, card, changes, key)

    notifier, clock = SlowNotifier(), Clock(T0)
    both = first.outbox.due_messages(T0), second.outbox.due_messages(T0)
    assert [len(due) for due in both] == [40, 40]  # both see all
    reports = await asyncio.gather(courier(first, notifier, clock).deliver_due(),
                                   courier(second, notifier, clock).deliver_due())
    assert sum(r.sent for r in reports) == 40
    assert sorted(card.title for card in notifier.cards) == sorted(r.channel for r in refs)
    first.close()
    second.close()


# -- sends in doubt: a worker killed mid-send, or a send that timed out --------------------------

KILLED = "host:4242:killed"


def queue_one_each(store: UnitOfWork, *refs: ChannelRef) -> list[Message]:
    for ref in refs:
        with store:
            subscription = store.channels.subscribe(ref, "alerts", T0)
        with store:
            store.outbox.enqueue(subscription, "test:1", kind="alert", card=Card(ref.channel),
                                 changes=[], at=T0)
    return store.outbox.due_messages(T0)


async def test_a_message_in_flight_when_its_worker_died_is_looked_for_not_repeated(
        store: UnitOfWork) -> None:
    arrived, lost = queue_one_each(store, GENERAL, MODELS)
    for message in (arrived, lost):  # a worker claimed both, then was killed mid-send
        with store:
            assert store.outbox.claim([message.id], T0, T0 + CLAIM, KILLED)
    assert store.outbox.due_messages(T0) == []  # claimed: no other worker takes them meanwhile
    with store:
        assert store.outbox.release_claims(lambda worker: False) == 0  # a live worker keeps them
    with store:
        assert store.outbox.release_claims(lambda worker: worker == KILLED) == 2

    notifier = RecordingNotifier(keys=[delivery_key([arrived])])  # it reached the platform
    report = await courier(store, notifier, Clock(T0 + timedelta(seconds=5))).deliver_due()
    assert report.sent == 2 and [ref for ref, _, _ in notifier.sent] == [MODELS]
    assert sorted(notifier.looked_for) == sorted(
        [(delivery_key([arrived]), T0 - CLOCK_SKEW), (delivery_key([lost]), T0 - CLOCK_SKEW)])
    assert store.outbox.outbox_counts() == {"sent": 2}


async def test_a_send_that_timed_out_is_looked_for_before_the_retry(store: UnitOfWork) -> None:
    (message,) = queue_one_each(store, GENERAL)

    class LostAnswer(RecordingNotifier):  # Slack took it, but its answer never came back
        async def send(self, ref: ChannelRef, card: Card, changes: Any, key: str,
                       chart: Any = None) -> None:
            self.keys.append(key)
            raise DeliveryError("transient", "Slack unreachable (TimeoutError)")

    notifier, clock = LostAnswer(), Clock(T0)
    assert (await courier(store, notifier, clock).deliver_due()).deferred == 1
    clock.advance(hours=1)
    assert (await courier(store, notifier, clock).deliver_due()).sent == 1
    assert notifier.keys == [delivery_key([message])]  # sent once, found on the retry
    assert notifier.looked_for == [(delivery_key([message]), T0 - CLOCK_SKEW)]


async def test_a_send_in_doubt_stays_in_doubt_while_the_look_is_rate_limited(
        store: UnitOfWork) -> None:
    (message,) = queue_one_each(store, GENERAL)
    with store:
        assert store.outbox.claim([message.id], T0, T0 + CLAIM, KILLED)
    with store:
        store.outbox.release_claims(lambda worker: True)

    class BusyHistory(RecordingNotifier):  # the first look is refused with a 429
        async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
            found = await super().find(ref, card, key, since)
            if len(self.looked_for) == 1:
                raise DeliveryError("rate_limited", "ratelimited", retry_after=1)
            return found

    notifier, clock = BusyHistory(keys=[delivery_key([message])]), Clock(T0)
    assert (await courier(store, notifier, clock).deliver_due()).deferred == 1
    clock.advance(seconds=1)
    assert (await courier(store, notifier, clock).deliver_due()).sent == 1
    assert len(notifier.looked_for) == 2 and notifier.sent == []  # looked again; found


async def test_only_a_send_in_doubt_is_looked_for(store: UnitOfWork) -> None:
    queue_one_each(store, GENERAL)
    notifier, clock = RecordingNotifier(), Clock(T0)
    notifier.errors.append(DeliveryError("rate_limited", "ratelimited", retry_after=1))
    await courier(store, notifier, clock).deliver_due()  # refused outright: not in doubt
    clock.advance(seconds=1)
    assert (await courier(store, notifier, clock).deliver_due()).sent == 1
    assert notifier.looked_for == []  # no history read for a message that surely never left


async def test_when_the_platform_cannot_say_a_send_in_doubt_goes_again(
        store: UnitOfWork, caplog: pytest.LogCaptureFixture) -> None:
    (message,) = queue_one_each(store, GENERAL)
    with store:
        assert store.outbox.claim([message.id], T0, T0 + CLAIM, KILLED)
    with store:
        store.outbox.release_claims(lambda worker: True)

    class NoHistoryScope(RecordingNotifier):
        async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
            raise DeliveryError("permanent", "missing_scope")

    notifier = NoHistoryScope()
    assert (await courier(store, notifier, Clock(T0)).deliver_due()).sent == 1
    assert [ref for ref, _, _ in notifier.sent] == [GENERAL]  # a repeat beats a loss
    assert "cannot tell whether slack:T1/C-general already has" in caplog.text
    assert store.channels.subscription(GENERAL).paused is None  # type: ignore[union-attr]


def test_a_batch_has_one_key_for_every_try_and_a_nonce_sized_one() -> None:
    subscription = Subscription(1, GENERAL, "alerts", DEFAULT_RULES, True, None, T0)
    first, second = (Message(i, subscription, f"test:{i}", Card("x"), (), True, 0)
                     for i in (1, 2))
    assert delivery_key([first, second]) == delivery_key([first, second])
    assert len({delivery_key([first]), delivery_key([second]),
                delivery_key([first, second])}) == 3
    assert len(delivery_key([first])) <= 25  # Discord's limit for a nonce
