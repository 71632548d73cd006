"""Real OpenRouter snapshots replayed through a loopback server, the real httpx client, the
poll service and an SQLite store: what a channel would have been told."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rankbot.adapters.openrouter import OpenRouterClient
from rankbot.bot.cards import Card, describe
from rankbot.bot.changes import (
    AliasMoved,
    ModelAdded,
    ModelRemoved,
    NewLeader,
    PriceChanged,
    WentFree,
    WentPaid,
    change_record,
)
from rankbot.bot.channels import CONSOLE
from rankbot.bot.delivery import Courier
from rankbot.bot.polling import Outcome, poll_all, poll_catalog, poll_rankings
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import (
    RecordingNotifier,
    catalog_bytes,
    expected_price_moves,
    rankings_csv,
    raw_models,
    serve_export,
)
from tests.fakes.openrouter import FakeOpenRouter, Reply

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 10, 8, 2, 15, tzinfo=UTC)


class Replay:
    """Polls one source at a time, as the scheduler does, and delivers like `rankbot run` to
    one channel subscribed with the default rules."""

    def __init__(self, fake: FakeOpenRouter, client: OpenRouterClient, store: UnitOfWork) -> None:
        self.fake, self.client, self.store = fake, client, store
        self.notifier = RecordingNotifier()
        self.at = T0
        with store:
            store.channels.subscribe(CONSOLE, "alerts", T0)
        self.courier = Courier(store, {"console": self.notifier}, lambda: self.at)

    async def catalog(self, reply: Reply | bytes) -> Outcome:
        self.fake.serve("models", reply)
        (outcome,) = await poll_catalog(self.client, self.store, self._tick(), DEFAULT_RULES)
        return await self._deliver(outcome)

    async def rankings(self, body: bytes, sha256: str | None = None) -> Outcome:
        serve_export(self.fake, body, sha256)
        (outcome,) = await poll_rankings(self.client, self.store, self._tick(), DEFAULT_RULES)
        return await self._deliver(outcome)

    async def _deliver(self, outcome: Outcome) -> Outcome:
        await self.courier.deliver_due()
        return outcome

    def _tick(self) -> datetime:
        self.at += timedelta(hours=1)
        return self.at


@pytest.fixture
def replay(fake_openrouter: FakeOpenRouter, client: OpenRouterClient,
           store: UnitOfWork) -> Replay:
    return Replay(fake_openrouter, client, store)


async def test_the_first_poll_of_each_source_is_a_silent_baseline(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, store: UnitOfWork) -> None:
    fake_openrouter.serve("models", catalog_bytes("2026-07-14T025033Z"))
    serve_export(fake_openrouter, rankings_csv())
    with store:
        store.channels.subscribe(CONSOLE, "alerts", T0)
    outcomes = await poll_all(client, store, T0, DEFAULT_RULES)
    assert [(o.source, o.changes, o.fault) for o in outcomes] == [
        ("catalog", (), None), ("rankings", (), None)]
    assert store.outbox.outbox_counts() == {}
    assert len(store.snapshots.live_models()) == len(raw_models("2026-07-14T025033Z")) == 342
    assert store.snapshots.counts()["rankings"] == 153


async def test_price_changes_from_07_14_to_07_20_match_an_independent_computation(
        replay: Replay) -> None:
    await replay.catalog(catalog_bytes("2026-07-14T025033Z"))
    outcome = await replay.catalog(catalog_bytes("2026-07-20T194813Z"))

    expected_prices, expected_free, expected_paid = expected_price_moves(
        "2026-07-14T025033Z", "2026-07-20T194813Z")
    found = {(c.model, c.field, c.old, c.new) for c in outcome.changes
             if isinstance(c, PriceChanged)}
    assert found == expected_prices
    assert len(found) == 64  # each price judged on its own: 52 input or output, 12 cache
    assert sum(field in ("prompt", "completion") for _, field, _, _ in found) == 52
    assert {c.model for c in outcome.changes if isinstance(c, WentFree)} == expected_free
    assert {c.model for c in outcome.changes if isinstance(c, WentPaid)} == expected_paid
    assert len(replay.notifier.cards) == 1  # every change of the poll in one message


async def test_the_overrides_step_of_07_13_tells_only_its_cache_price_cut(
        replay: Replay, store: UnitOfWork) -> None:
    await replay.catalog(catalog_bytes("2026-07-13T144438Z"))
    outcome = await replay.catalog(catalog_bytes("2026-07-13T193436Z"))
    assert outcome.fault is None
    # 43 models gained long-context tiers at once (162 prices): first published, not changed,
    # so nothing to tell. Of the other 2 pricing changes, both cache reads, one halved.
    cut = PriceChanged("openai/gpt-5-nano", "input_cache_read", Decimal("0.01"),
                       Decimal("0.005"), Decimal("-50.0"))
    assert [c for c in outcome.changes if isinstance(c, PriceChanged)] == [cut]
    assert {(cut.model, cut.field, cut.old, cut.new)} == expected_price_moves(
        "2026-07-13T144438Z", "2026-07-13T193436Z")[0]
    card, = replay.notifier.cards
    assert [f.value for f in card.fields if f.name == "Prices"] == [
        "openai/gpt-5-nano cache read $0.01 → $0.005 per 1M (−50.0%)"]
    # The pricing objects did change: each model gained a long-context tier, a price of its
    # own (a new version), while prompt and completion stayed; history kept each entry.
    gained = [i for i, m in raw_models("2026-07-13T193436Z").items()
              if "overrides" in m["pricing"]  # type: ignore[operator]
              and "overrides" not in raw_models("2026-07-13T144438Z")[i]["pricing"]]  # type: ignore[operator]
    assert len(gained) == 43  # the other 2 of the 45 pricing changes are cache reads
    assert [raw_models(s)["openai/gpt-5.1"]["pricing"]["input_cache_read"]  # −3.8%: under 10%
            for s in ("2026-07-13T144438Z", "2026-07-13T193436Z")] == ["0.00000013", "0.000000125"]
    old, new = store.snapshots.model_history(gained[0])
    assert (old.model.prompt, old.model.completion) == (new.model.prompt, new.model.completion)
    tiers = [name for name, _ in new.model.prices if ">" in name]
    assert tiers and not [name for name, _ in old.model.prices if ">" in name]
    last = store.snapshots.last_catalog_fetch()
    assert last is not None and new.since == last.at
    for stamp, at in (("2026-07-13T144438Z", old.since), ("2026-07-13T193436Z", last.at)):
        served = {m["id"]: m for m in store.snapshots.catalog_documents_at(at) or []}
        assert served[gained[0]] == raw_models(stamp)[gained[0]]


async def test_batch_variants_that_vanish_and_return_are_never_removed_or_readded(
        replay: Replay) -> None:
    stamps = ("2026-07-28T193833Z", "2026-07-31T194018Z", "2026-08-06T142213Z")
    outcomes = [await replay.catalog(catalog_bytes(s)) for s in stamps]
    first, gone, back = (set(raw_models(s)) for s in stamps)
    batch = {i for i in first if i.endswith(":batch")}
    assert len(batch) == 29 and not batch & gone and batch <= back

    reported = [c for o in outcomes for c in o.changes]
    added = {c.model for c in reported if isinstance(c, ModelAdded)}
    removed = {c.model for c in reported if isinstance(c, ModelRemoved)}
    assert not batch & (added | removed)
    # What is reported instead: genuinely new ids, and removals confirmed by a second snapshot.
    assert added == (gone - first) | (back - gone - first)
    assert removed == first - gone - back
    assert "~deepseek/deepseek-v4-flash-latest" in added  # a new alias is news too
    assert outcomes[1].changes and not any(
        isinstance(c, ModelRemoved) for c in outcomes[1].changes)  # missing once: not yet


@pytest.mark.parametrize(("reply", "kind"), [
    (Reply(body=b'{"data":[],"total_count":0,"links":{"next":null}}'), "empty"),
    (Reply(500), "http"),
    (Reply(body=catalog_bytes("2026-07-20T194813Z"), delay=1.0), "timeout"),
    (Reply(body=catalog_bytes("2026-07-20T194813Z")[:300_000]), "unparsable"),
    (Reply(body=b"<html><body>502 Bad Gateway</body></html>"), "unparsable"),
])
async def test_a_catalog_fault_is_recorded_sends_nothing_and_keeps_the_last_good_data(
        replay: Replay, store: UnitOfWork, reply: Reply, kind: str) -> None:
    await replay.catalog(catalog_bytes("2026-07-14T025033Z"))
    good = store.snapshots.live_models()
    outcome = await replay.catalog(reply)
    assert outcome.fault is not None and outcome.fault.kind == kind
    assert outcome.changes == ()
    assert replay.notifier.cards == []
    fault = store.snapshots.last_fault("catalog")
    assert fault is not None and fault.kind == kind
    assert store.snapshots.live_models() == good
    # The next good poll is diffed against the last good data: the normal weekly step.
    recovered = await replay.catalog(catalog_bytes("2026-07-20T194813Z"))
    assert sum(isinstance(c, PriceChanged) for c in recovered.changes) == 64


async def test_a_catalog_that_loses_more_than_30_percent_is_a_fault(
        replay: Replay, store: UnitOfWork) -> None:
    await replay.catalog(catalog_bytes("2026-07-14T025033Z"))
    payload = json.loads(catalog_bytes("2026-07-14T025033Z"))
    payload["data"] = payload["data"][: len(payload["data"]) // 2]
    outcome = await replay.catalog(json.dumps(payload).encode())
    assert outcome.fault is not None and outcome.fault.kind == "shrunk"
    assert str(outcome.fault) == "catalog shrank from 342 to 171 models (more than 30% at once)"
    assert replay.notifier.cards == [] and len(store.snapshots.live_models()) == 342


async def test_a_rankings_csv_with_the_wrong_sha256_is_a_fault(
        replay: Replay, store: UnitOfWork) -> None:
    await replay.rankings(rankings_csv("2026-09-30", "2026-10-01"))
    outcome = await replay.rankings(rankings_csv(), sha256="0" * 64)
    assert outcome.fault is not None and outcome.fault.kind == "hash_mismatch"
    assert replay.notifier.cards == []
    assert str(store.snapshots.latest_ranking_date()) == "2026-10-01"  # the bad file stored nothing


async def test_the_new_leader_on_2026_10_07_in_the_real_export(
        replay: Replay, store: UnitOfWork) -> None:
    baseline = await replay.rankings(rankings_csv("2026-09-30", "2026-10-01"))
    assert baseline.changes == ()
    outcome = await replay.rankings(rankings_csv())
    leaders = [c for c in outcome.changes if isinstance(c, NewLeader)]
    assert leaders == [NewLeader("deepseek/deepseek-v4.1-flash-20260910",
                                 previous="stealth/space-bunny-alpha")]
    card, = replay.notifier.cards
    assert card.footer == ("Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 "
                           "· CC BY 4.0")


async def test_an_unchanged_payload_is_confirmed_without_a_diff(
        replay: Replay, store: UnitOfWork) -> None:
    await replay.catalog(catalog_bytes("2026-07-14T025033Z"))
    await replay.rankings(rankings_csv())
    versions = store.snapshots.counts()["model_versions"]
    catalog = await replay.catalog(catalog_bytes("2026-07-14T025033Z"))
    rankings = await replay.rankings(rankings_csv())
    assert (catalog.summary, rankings.summary) == (
        "catalog unchanged (342 models)", "rankings unchanged")
    assert store.snapshots.counts()["model_versions"] == versions
    counts = store.snapshots.counts()
    assert counts["catalog_fetches"] == 2 and counts["ranking_fetches"] == 2
    assert replay.notifier.cards == []


FLIPS = {
    # The shared history's last three catalogs, replayed as a catalog that returns to an
    # earlier state (as OpenRouter's does for hours at a time): no poll may share another's key.
    "A,B,A,B": ("2026-08-22T124646Z", "2026-08-22T183539Z", "2026-08-22T124646Z",
                "2026-08-22T183539Z"),
    "A,B,C,B,C": ("2026-08-22T064640Z", "2026-08-22T124646Z", "2026-08-22T183539Z",
                  "2026-08-22T124646Z", "2026-08-22T183539Z"),
}


@pytest.mark.parametrize("stamps", FLIPS.values(), ids=FLIPS.keys())
async def test_a_catalog_that_flips_back_has_every_poll_told_once(
        replay: Replay, store: UnitOfWork, stamps: tuple[str, ...]) -> None:
    await replay.catalog(catalog_bytes(stamps[0]))
    for before, now in itertools.pairwise(stamps):
        sent = len(replay.notifier.sent)
        outcome = await replay.catalog(catalog_bytes(now))
        expected, _, _ = expected_price_moves(before, now)
        assert expected, "every step of these real flips moves a price"
        (_, _, records), = replay.notifier.sent[sent:]  # this poll's one message
        assert {(r["model"], r["field"], Decimal(r["old"]), Decimal(r["new"]))
                for r in records if r["kind"] == "price_changed"} == expected
        assert list(records) == [change_record(c) for c in outcome.changes]
    assert store.outbox.outbox_counts() == {"sent": len(stamps) - 1}


async def test_a_message_whose_key_is_taken_is_logged_and_leaves_memory_alone(
        replay: Replay, store: UnitOfWork, caplog: pytest.LogCaptureFixture) -> None:
    await replay.catalog(catalog_bytes("2026-08-22T124646Z"))
    subscription = store.channels.subscription(CONSOLE)
    assert subscription is not None
    # A message already holds the key the next fetch will get (as a payload-hash key did when
    # a catalog flipped back): the poll must not drop its changes silently.
    next_fetch = store.snapshots.counts()["catalog_fetches"] + 1
    with store:
        store.outbox.enqueue(subscription, f"catalog:{next_fetch}", kind="alert", at=replay.at,
                      card=Card("earlier"), changes=[])
    outcome = await replay.catalog(catalog_bytes("2026-08-22T183539Z"))
    assert outcome.changes
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        f"console:local/console already has a message keyed catalog:{next_fetch}: its "
        f"{len(outcome.changes)} change(s) are not queued again and its memory is left as it "
        "was"]
    assert store.channels.memory(subscription, "") == {}


async def test_aliases_are_told_when_added_and_when_they_move(replay: Replay) -> None:
    await replay.catalog(catalog_bytes("2026-07-14T025033Z"))
    week = await replay.catalog(catalog_bytes("2026-07-20T194813Z"))
    kimi = [c for c in week.changes if c.model == "~moonshotai/kimi-latest"]
    # No target named yet (OpenRouter added alias_target on 2026-07-29): a 4.5x jump that no
    # listed model made is the alias moving.
    assert kimi == [AliasMoved("~moonshotai/kimi-latest", None, None, Decimal("0.66"),
                               Decimal(3), Decimal("3.41"), Decimal(15), 262_144, 1_048_576)]
    assert describe(kimi[0]) == ("↪ ~moonshotai/kimi-latest now points to another model: now "
                                 "$3.00/$15.00 per 1M, was $0.66/$3.41; 262K context → 1,049K "
                                 "context")
    await replay.catalog(catalog_bytes("2026-08-06T142213Z"))
    later = await replay.catalog(catalog_bytes("2026-08-12T190603Z"))
    grok = [c for c in later.changes if c.model == "~x-ai/grok-latest"]
    context = raw_models("2026-08-12T190603Z")["~x-ai/grok-latest"]["context_length"]
    assert grok == [AliasMoved("~x-ai/grok-latest", "x-ai/grok-4.5", "x-ai/grok-4.6",
                               Decimal(2), Decimal(2), Decimal(6), Decimal(6), context, context)]
    assert describe(grok[0]) == ("↪ ~x-ai/grok-latest now points to x-ai/grok-4.6 (was "
                                 "x-ai/grok-4.5)")
    records = [r for _, _, sent in replay.notifier.sent for r in sent
               if r["model"].startswith("~")]
    assert {r["kind"] for r in records} == {"alias_moved", "model_added"}
    assert {"kind": "model_added", "model": "~deepseek/deepseek-v4-flash-latest",
            "name": "DeepSeek V4 Flash Latest", "prompt": "0.09", "completion": "0.18",
            "context_length": 1_048_576} in records
