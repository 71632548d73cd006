"""A channel's or person's memory ("what it was told", `bot.alerts`) grows only with models its
rules can tell it about, and what it holds of a model shut out is left as it is: a person
watching one model keeps that model's keys, not the other ninety; what they are told after a
later `/watch` starts from what they last saw; and a channel that mutes a model and takes the
mute back still hears a drift that was under way."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rankbot.bot.alerts import (
    ProvidersNews,
    SunsetNews,
    Telling,
    catalog_alerts,
    hear,
    ranking_alerts,
)
from rankbot.bot.changes import PriceChanged, RankMoved
from rankbot.bot.channels import ChannelRef, person_ref
from rankbot.bot.diff import catalog_delta
from rankbot.bot.leaderboard import Leaderboard, Standing
from rankbot.bot.polling import poll
from rankbot.bot.ports import RawRankings
from rankbot.bot.providers import ModelProviders, ProviderDelta, Uptime
from rankbot.bot.rules import DEFAULT_RULES, set_rule
from rankbot.bot.sunsets import Sunset
from rankbot.bot.watches import watch_command
from tests.conftest import FIXTURES, catalog_bytes, expected_price_moves, rankings_csv
from tests.test_diff import model
from tests.test_polling import NEW, OLD, T0, alerts, poll_catalog, subscribe

pytestmark = pytest.mark.anyio
ALICE = person_ref("slack", "T1", "UALICE")
WATCHES_X = set_rule(DEFAULT_RULES, "watch", "a/x")
# Every way a model's news can be kept out: not watched, ignored, a variant with variants off,
# and none of the kinds of that family heard.
SHUT_OUT = {
    "a/y": WATCHES_X,
    "a/x": set_rule(DEFAULT_RULES, "ignore", "a/x"),
    "a/x:free": set_rule(DEFAULT_RULES, "variants", "off"),
    "a/z": set_rule(DEFAULT_RULES, "kinds", "model_added,context_changed"),
}


def remember(memory: dict[str, str], telling: Telling) -> None:
    for key in telling.forget:
        memory.pop(key, None)
    memory.update(telling.remember)


def about(key: str, model_id: str) -> bool:
    """Whether a memory key is one of this model's (by id, or by the permaslug of a rank)."""
    return any(key.startswith(f"{family}:{model_id}{end}") for family, end in (
        ("price", ":"), ("rank", ""), ("sunset", ""), ("uptime", "|")))


def memory_of(work: Any, ref: ChannelRef) -> dict[str, str]:
    subscription = work.channels.subscription(ref)
    return dict(work.channels.memory(subscription, ""))


def moved_models() -> list[str]:
    """Models whose default-heard prices moved between OLD and NEW, from the raw JSON."""
    return sorted({model_id for model_id, *_ in expected_price_moves(OLD, NEW)[0]})


# -- the core, one family at a time -------------------------------------------------------------

@pytest.mark.parametrize("model_id", sorted(SHUT_OUT))
def test_a_creeping_price_the_rules_shut_out_is_neither_remembered_nor_forgotten(
        model_id: str) -> None:
    for start in ({}, {f"price:{model_id}:prompt": "0.5"}):  # none; told before the rules
        memory = dict(start)
        for before, after in itertools.pairwise(["1.00", "1.04", "1.08"]):
            delta = catalog_delta({model_id: model(model_id, before, version=before)}, {},
                                  {model_id: model(model_id, after, version=after)})
            telling = catalog_alerts(delta, SHUT_OUT[model_id], memory)
            assert not any(isinstance(c, PriceChanged) for c in telling.changes)
            remember(memory, telling)
        assert memory == start


def test_a_watched_price_still_adds_up_to_one_alert() -> None:
    """The drift of a model the rules let through is remembered as before, next to another
    one's that is not."""
    memory: dict[str, str] = {}
    told = []
    for before, after in itertools.pairwise(["1.00", "1.04", "1.08", "1.12", "1.12"]):
        delta = catalog_delta(
            {m: model(m, before, version=before) for m in ("a/x", "a/y")}, {},
            {m: model(m, after, version=after) for m in ("a/x", "a/y")})
        telling = catalog_alerts(delta, WATCHES_X, memory)
        remember(memory, telling)
        told.append(telling.changes)
        assert all(about(key, "a/x") for key in memory), memory
    assert told == [[], [], [PriceChanged("a/x", "prompt", Decimal("1.00"), Decimal("1.12"),
                                          Decimal("12.0"))], []]


def board(order: list[str]) -> Leaderboard:
    return Leaderboard(date(2026, 10, 1), date(2026, 10, 7), tuple(
        Standing(s, i, 1000 - i, 0.0) for i, s in enumerate(order, start=1)))


def test_a_muted_drift_is_kept_and_told_once_the_mute_is_taken_back() -> None:
    """a/x drifts 1.00 → 0.95 (under 10%: remembered as told at 1.00), is muted while it moves
    on, and after the Undo reaches 0.89: 11% from what the channel was told."""
    memory: dict[str, str] = {}
    muted = set_rule(DEFAULT_RULES, "ignore", "a/x")
    told = []
    for rules, (before, after) in zip(
            (DEFAULT_RULES, muted, DEFAULT_RULES),
            itertools.pairwise(["1.00", "0.95", "0.93", "0.89"]), strict=True):
        delta = catalog_delta({"a/x": model("a/x", before, version=before)}, {},
                              {"a/x": model("a/x", after, version=after)})
        telling = catalog_alerts(delta, rules, memory)
        remember(memory, telling)
        told.append(telling.changes)
    assert told == [[], [], [PriceChanged("a/x", "prompt", Decimal("1.00"), Decimal("0.89"),
                                          Decimal("-11.0"))]]


def test_a_slow_rank_drift_is_remembered_only_for_the_models_heard() -> None:
    """m/10 and m/5 slip a place a day; the rules watch m/10 only."""
    days = [[f"m/{i}" for i in range(1, 21)]]
    for _ in range(4):
        order = list(days[-1])
        for slug in ("m/10", "m/5"):
            i = order.index(slug)
            order[i], order[i + 1] = order[i + 1], order[i]
        days.append(order)
    rules = set_rule(DEFAULT_RULES, "watch", "m/10")
    memory = {"rank:m/5": "4"}  # told before the rules watched m/10 alone: left as it is
    told = []
    for old, new in itertools.pairwise(days):
        telling = ranking_alerts(board(old), board(new), rules, lambda s: False, memory)
        remember(memory, telling)
        told.append(telling.changes)
    assert told == [[], [], [RankMoved("m/10", 10, 13)], []]
    assert memory == {"rank:m/10": "13", "rank:m/5": "4"}  # m/10: 13 → 14, one of three


def test_a_retirement_date_shut_out_is_not_remembered_and_left_till_it_passes() -> None:
    sunset = Sunset("a/y", "A: Y", date(2026, 8, 10), None)
    day = date(2026, 6, 19)
    gone = hear(SunsetNews((), day, {sunset.model: sunset.retires}, day), WATCHES_X, {})
    assert gone.remember == {}
    told = {"sunset:a/y": "2026-08-10/30"}
    listed = hear(SunsetNews((sunset,), day + timedelta(days=40), {}, day), WATCHES_X, told)
    assert listed.changes == [] and listed.forget == set() and listed.remember == {}
    passed = hear(SunsetNews((), date(2026, 8, 11), {}, day), WATCHES_X, told)
    assert passed.forget == set(told)


def test_a_degraded_provider_shut_out_is_not_remembered() -> None:
    low = Uptime("p", "P", None, 80.0, seen_before=False)  # degraded when first seen: "quiet"
    news = ProvidersNews((ProviderDelta("a/y", False, ModelProviders(()), uptimes=(low,)),))
    assert hear(news, DEFAULT_RULES).remember == {"uptime:a/y|p": "quiet"}
    assert hear(news, WATCHES_X).remember == {}
    kept = hear(news, WATCHES_X, {"uptime:a/y|p": "degraded"})
    assert kept.remember == {} and kept.forget == set() and kept.changes == []


# -- a person's watch, through polls ------------------------------------------------------------

async def test_a_persons_memory_holds_only_models_they_watch(work: Any) -> None:
    await poll_catalog(work, OLD, T0)
    moved = moved_models()
    unmoved = next(m for m in sorted(work.snapshots.live_models()) if m not in moved)
    await watch_command("watch", unmoved, person=ALICE, work=work, now=T0)
    await poll_catalog(work, NEW, T0 + timedelta(hours=1))
    assert memory_of(work, ALICE) == {}


async def test_the_first_alert_after_watching_moves_from_the_price_the_person_last_saw(
        work: Any) -> None:
    """Alice did not watch the model when its price moved; watching it later, a small move
    is measured from the price she could have seen then, not from one she was never told."""
    await poll_catalog(work, OLD, T0)
    moved = moved_models()
    unmoved = next(m for m in sorted(work.snapshots.live_models()) if m not in moved)
    await watch_command("watch", unmoved, person=ALICE, work=work, now=T0)
    await poll_catalog(work, NEW, T0 + timedelta(hours=1))  # moved[0] moves, unwatched
    target = moved[0]
    await watch_command("watch", target, person=ALICE, work=work, now=T0 + timedelta(days=1))
    data = json.loads(catalog_bytes(NEW))
    entry = next(m for m in data["data"] if m["id"] == target)
    price = Decimal(entry["pricing"]["prompt"])
    entry["pricing"]["prompt"] = str(price * Decimal("1.02"))

    async def fetch() -> bytes:
        return json.dumps(data).encode()
    await poll(work, T0 + timedelta(days=1, hours=1), DEFAULT_RULES, catalog=fetch)
    told = [r for _, records in alerts(work, ALICE) for r in records
            if r["kind"] == "price_changed" and r["field"] == "prompt"]
    assert told and {Decimal(r["old"]) for r in told} == {price * 1_000_000}, told  # per 1M


# -- a replay of the real fixture history -------------------------------------------------------

def stamps() -> list[str]:
    return sorted(p.name.removesuffix(".json.gz") for p in (FIXTURES / "models").glob("*.gz"))


def days() -> list[str]:
    lines = rankings_csv().decode().splitlines()[1:]
    return sorted({line[:10] for line in lines})


async def replay(work: Any) -> None:
    """Every fixture catalog in turn, and the rankings a day at a time, as polls would."""
    ranking_days = days()
    for n, stamp in enumerate(stamps()):
        cut = tuple(ranking_days[:n + 1])

        async def catalog(stamp: str = stamp) -> bytes:
            return catalog_bytes(stamp)

        async def rankings(cut: tuple[str, ...] = cut) -> RawRankings:
            return RawRankings(rankings_csv(*cut), None, "export")
        await poll(work, T0 + timedelta(hours=n), DEFAULT_RULES, catalog=catalog,
                   rankings=rankings)
        if n == 0:
            await watch_command("watch", FOLLOWED, person=ALICE, work=work, now=T0)


FOLLOWED = "openai/gpt-4o"


async def test_replayed_a_person_and_a_channel_watching_one_model_keep_only_its_keys(
        work: Any) -> None:
    general = ChannelRef("slack", "T1", "CGENERAL")
    one = ChannelRef("slack", "T1", "CONE")
    subscribe(work, general)
    subscribe(work, one, rules=set_rule(DEFAULT_RULES, "watch", FOLLOWED))
    await replay(work)
    slug = work.snapshots.live_models()[FOLLOWED].canonical_slug
    for ref in (ALICE, one):
        kept = memory_of(work, ref)
        assert all(about(key, FOLLOWED) or about(key, slug) for key in kept), (ref, kept)
    assert memory_of(work, general)  # a channel that hears every model keeps its drifts
