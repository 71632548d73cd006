"""The diff as a pure function: literal snapshots in, typed changes out."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from rankbot.bot.alerts import catalog_alerts, notable_changes, ranking_alerts
from rankbot.bot.catalog import Model
from rankbot.bot.changes import (
    AliasMoved,
    ContextChanged,
    EnteredTop,
    LeftTop,
    ModelAdded,
    ModelRemoved,
    NewLeader,
    OpenWeightShareChanged,
    PriceChanged,
    RankMoved,
    WentFree,
    WentPaid,
    change_record,
)
from rankbot.bot.diff import catalog_delta, check_shrink, model_changes
from rankbot.bot.faults import SourceFault
from rankbot.bot.leaderboard import Leaderboard, Standing
from rankbot.bot.rules import Rules

RULES = Rules(top_n=3, min_rank_move=2, min_price_change_pct=Decimal(10))


def model(model_id: str, prompt: str | None = "1", completion: str | None = "2",
          context: int = 1000, version: str = "v1", target: str | None = None) -> Model:
    return Model(model_id, model_id.title(), model_id, context,
                 None if prompt is None else Decimal(prompt),
                 None if completion is None else Decimal(completion),
                 None, prompt is None, None, target,
                 f"{model_id}-{version}-{prompt}-{completion}-{target}")


def by_id(*models: Model) -> dict[str, Model]:
    return {m.id: m for m in models}


def changes(old: list[Model], new: list[Model], vanished: list[Model] = ()) -> list[object]:
    delta = catalog_delta(by_id(*old), by_id(*vanished), by_id(*new))
    return list(catalog_alerts(delta, RULES).changes)


def test_added_and_vanished_once() -> None:
    a, b = model("a/x"), model("b/y")
    assert changes([a], [b]) == [ModelAdded("b/y", "B/Y", Decimal(1), Decimal(2), 1000)]


def test_removed_only_when_missing_twice() -> None:
    a = model("a/x")
    assert changes([], [model("b/y")], vanished=[a]) == [
        ModelAdded("b/y", "B/Y", Decimal(1), Decimal(2), 1000), ModelRemoved("a/x", "A/X")]


def test_a_model_that_comes_back_is_neither_added_nor_removed_but_is_compared() -> None:
    gone = model("a/x")
    assert changes([], [gone], vanished=[gone]) == []
    cheaper = model("a/x", prompt="0.5", version="v2")
    assert changes([], [cheaper], vanished=[gone]) == [
        PriceChanged("a/x", "prompt", Decimal(1), Decimal("0.5"), Decimal("-50.0"))]


@pytest.mark.parametrize(("prompt", "completion", "expected"), [
    ("1.09", "2", []),  # +9% is under the 10% threshold
    ("1.1", "2", [PriceChanged("a/x", "prompt", Decimal(1), Decimal("1.1"), Decimal("10.0"))]),
    ("1", "1.5", [PriceChanged("a/x", "completion", Decimal(2), Decimal("1.5"),
                               Decimal("-25.0"))]),
    ("0", "0", [WentFree("a/x")]),
    (None, None, []),  # became a dynamic router: never compared
])
def test_prices_are_judged_per_side(prompt: str | None, completion: str | None,
                                    expected: list[object]) -> None:
    assert changes([model("a/x")], [model("a/x", prompt, completion, version="v2")]) == expected


def test_the_diff_states_every_move_and_the_channel_threshold_decides() -> None:
    old, new = model("a/x"), model("a/x", "1.09", version="v2")
    move = PriceChanged("a/x", "prompt", Decimal(1), Decimal("1.09"), Decimal("9.0"))
    assert list(model_changes(old, new)) == [move]  # a fact, however small
    assert list(notable_changes(old, new, RULES)) == []
    assert list(notable_changes(old, new, replace(RULES, min_price_change_pct=Decimal(5)))) == [
        move]


def test_went_paid_and_a_side_that_was_free() -> None:
    free, paid = model("a/x", "0", "0"), model("a/x", "1", "3", version="v2")
    assert changes([free], [paid]) == [WentPaid("a/x", Decimal(1), Decimal(3))]
    half = model("a/x", "0", "2")
    assert changes([half], [paid]) == [
        PriceChanged("a/x", "prompt", Decimal(0), Decimal(1), None),
        PriceChanged("a/x", "completion", Decimal(2), Decimal(3), Decimal("50.0"))]


def priced(base: Model, version: str, **prices: str) -> Model:
    """`base` with these other prices (`input_cache_read="0.1"`; a tier as `prompt_200k`)."""
    named = tuple((name.replace("_200k", ">200k"), Decimal(value))
                  for name, value in prices.items())
    return replace(base, prices=named, content_hash=f"{base.content_hash}-{version}")


def test_every_price_both_versions_publish_is_judged_on_its_own() -> None:
    old = priced(model("a/x"), "v1", input_cache_read="0.1", web_search="0.01",
                 prompt_200k="2", internal_reasoning="2")
    new = priced(model("a/x"), "v2", input_cache_read="0.05", web_search="0.02",
                 prompt_200k="2.1", input_cache_write="1.25")
    assert list(model_changes(old, new)) == [  # a price new or gone is no change
        PriceChanged("a/x", "input_cache_read", Decimal("0.1"), Decimal("0.05"),
                     Decimal("-50.0")),
        PriceChanged("a/x", "web_search", Decimal("0.01"), Decimal("0.02"), Decimal("100.0")),
        PriceChanged("a/x", "prompt>200k", Decimal(2), Decimal("2.1"), Decimal("5.0"))]
    # The default channel hears cache and tiers (5% is under its threshold), not web search.
    assert changes([old], [new]) == [PriceChanged("a/x", "input_cache_read", Decimal("0.1"),
                                                  Decimal("0.05"), Decimal("-50.0"))]
    everything = catalog_alerts(catalog_delta(by_id(old), {}, by_id(new)),
                                replace(RULES, price_fields=("*",)))
    assert [c.field for c in everything.changes if isinstance(c, PriceChanged)] == [
        "input_cache_read", "web_search"]
    assert everything.remember == {"price:a/x:prompt>200k": "2"}  # a drift, by its field
    # Going free is one change, whatever the other prices did.
    free = priced(model("a/x", "0", "0"), "v3", input_cache_read="0")
    assert list(model_changes(old, free)) == [WentFree("a/x")]


def test_context_changes() -> None:
    assert changes([model("a/x")], [model("a/x", context=2000, version="v2")]) == [
        ContextChanged("a/x", 1000, 2000)]


def test_an_alias_is_added_and_removed_like_any_model() -> None:
    alias = model("~a/x-latest", target="a/x-2")
    assert changes([model("a/x-2")], [model("a/x-2"), alias]) == [
        ModelAdded("~a/x-latest", "~A/X-Latest", Decimal(1), Decimal(2), 1000)]
    gone_once = catalog_delta(by_id(alias), {}, {})
    assert catalog_alerts(gone_once, RULES).changes == []
    gone_twice = catalog_delta({}, by_id(alias), {})
    assert catalog_alerts(gone_twice, RULES).changes == [
        ModelRemoved("~a/x-latest", "~A/X-Latest")]


def test_an_alias_that_resolves_to_another_model_is_one_alias_moved() -> None:
    old = model("~m/kimi-latest", "0.66", "3.41", 262_144, target="m/kimi-k2")
    new = model("~m/kimi-latest", "3", "15", 1_048_576, target="m/kimi-k3")
    assert changes([old], [new]) == [AliasMoved(
        "~m/kimi-latest", "m/kimi-k2", "m/kimi-k3", Decimal("0.66"), Decimal(3),
        Decimal("3.41"), Decimal(15), 262_144, 1_048_576)]
    same_price = model("~m/kimi-latest", "0.66", "3.41", 262_144, target="m/kimi-k2.5")
    moved, = changes([old], [same_price])
    assert isinstance(moved, AliasMoved) and moved.new_target == "m/kimi-k2.5"


def test_a_price_change_of_the_target_is_told_on_the_target_only() -> None:
    before = [model("m/k2", "1", "2"), model("~m/k-latest", "1", "2", target="m/k2")]
    after = [model("m/k2", "2", "4"), model("~m/k-latest", "2", "4", target="m/k2")]
    assert {(c.kind, c.model) for c in changes(before, after)} == {
        ("price_changed", "m/k2")}
    # Where OpenRouter does not name targets, the same move made by a real model says it all.
    before = [model("m/k2", "1", "2"), model("~m/k-latest", "1", "2")]
    after = [model("m/k2", "2", "4"), model("~m/k-latest", "2", "4")]
    assert {(c.kind, c.model) for c in changes(before, after)} == {
        ("price_changed", "m/k2")}


def test_with_no_target_named_a_jump_no_real_model_made_is_a_move() -> None:
    before = [model("m/k2", "0.66", "3.41"), model("~m/k-latest", "0.66", "3.41")]
    after = [model("m/k2", "0.66", "3.41"), model("m/k3", "3", "15"),
             model("~m/k-latest", "3", "15", version="v2")]
    moved = [c for c in changes(before, after) if isinstance(c, AliasMoved)]
    assert moved == [AliasMoved("~m/k-latest", None, None, Decimal("0.66"), Decimal(3),
                                Decimal("3.41"), Decimal(15), 1000, 1000)]
    drift = [model("m/k2", "0.66", "3.41"), model("~m/k-latest", "0.67", "3.41", version="v2")]
    assert changes(before, drift) == []  # 1.5%: under the channel's threshold


def test_alias_moves_follow_the_channel_rules() -> None:
    old = model("~m/kimi-latest", target="m/kimi-k2")
    new = model("~m/kimi-latest", "3", "15", target="m/kimi-k3")
    delta = catalog_delta(by_id(old), {}, by_id(new))
    told = {rules: catalog_alerts(delta, rules).changes != [] for rules in (
        RULES, replace(RULES, kinds=frozenset({"price_changed"})),
        replace(RULES, ignore=("m",)), replace(RULES, watch=("m/*",)),
        replace(RULES, watch=("other/*",)))}
    assert list(told.values()) == [True, False, False, True, False]


def test_unchanged_content_is_no_delta() -> None:
    a = model("a/x")
    assert catalog_delta(by_id(a), {}, by_id(a)).is_empty


def test_shrinking_by_more_than_30_percent_is_a_fault() -> None:
    check_shrink(100, 70)
    with pytest.raises(SourceFault, match="shrank from 100 to 69"):
        check_shrink(100, 69)
    check_shrink(0, 1)  # no baseline yet


def board(*slugs: str) -> Leaderboard:
    return Leaderboard(date(2026, 10, 1), date(2026, 10, 7), tuple(
        Standing(s, i, 100 - i, 0.0) for i, s in enumerate(slugs, start=1)))


def test_ranking_changes_within_the_top_n() -> None:
    old = board("a", "b", "c", "d", "e")
    new = board("b", "e", "a", "d", "c")
    assert ranking_alerts(old, new, RULES, is_open=lambda s: s in {"a", "e"}).changes == [
        NewLeader("b", previous="a"),
        OpenWeightShareChanged(1, 2, 3),
        EnteredTop("e", 2, 5, 3),
        RankMoved("a", 1, 3),
        LeftTop("c", 3, 5, 3),
    ]


def test_the_edge_of_the_top_n_does_not_flap() -> None:
    old, new = board("a", "b", "c", "d"), board("a", "b", "d", "c")  # c: 3 → 4, d: 4 → 3
    assert ranking_alerts(old, new, RULES, lambda s: False).changes == []
    first = board("a", "b", "c")
    assert ranking_alerts(Leaderboard(first.start, first.end, ()), first, RULES,
                          lambda s: False).changes == [
        EnteredTop("a", 1, None, 3), EnteredTop("b", 2, None, 3), EnteredTop("c", 3, None, 3)]


def test_small_moves_and_identical_boards_say_nothing() -> None:
    old = board("a", "b", "c")
    assert ranking_alerts(old, board("b", "a", "c"), RULES, lambda s: False).changes == [
        NewLeader("b", "a")]
    assert ranking_alerts(old, old, RULES, lambda s: True).changes == []


def test_change_records_carry_kind_model_and_exact_figures() -> None:
    record = change_record(PriceChanged("a/x", "prompt", Decimal("0.3"), Decimal("0.25"),
                                        Decimal("-16.7")))
    assert record == {"kind": "price_changed", "model": "a/x", "field": "prompt",
                      "old": "0.3", "new": "0.25", "pct": "-16.7"}
    assert change_record(OpenWeightShareChanged(3, 4, 5)) == {
        "kind": "open_weight_share_changed", "model": None, "old_count": 3, "new_count": 4,
        "top_n": 5}
    assert change_record(RankMoved("a", 5, 1)) == {
        "kind": "rank_moved", "model": "a", "old_rank": 5, "new_rank": 1}
