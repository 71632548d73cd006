"""A channel is told about movement against what it was last told: drifts add up, nothing twice."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from rankbot.bot.alerts import Telling, catalog_alerts, ranking_alerts
from rankbot.bot.changes import PriceChanged, RankMoved
from rankbot.bot.diff import catalog_delta
from rankbot.bot.leaderboard import Leaderboard, Standing
from rankbot.bot.rules import DEFAULT_RULES, set_rule
from tests.test_diff import model

RULES = DEFAULT_RULES  # top 20, a move of 3 ranks, 10% on a price


def board(order: list[str]) -> Leaderboard:
    return Leaderboard(date(2026, 10, 1), date(2026, 10, 7), tuple(
        Standing(s, i, 1000 - i, 0.0) for i, s in enumerate(order, start=1)))


def remember(memory: dict[str, str], telling: Telling) -> None:
    for key in telling.forget:
        memory.pop(key, None)
    memory.update(telling.remember)


def test_a_slow_rank_drift_is_reported_once_it_adds_up() -> None:
    slugs = [f"m/{i}" for i in range(1, 21)]
    memory: dict[str, str] = {}
    told = []
    days = [slugs]
    for _ in range(4):  # m/10 slips one place a day
        order = list(days[-1])
        i = order.index("m/10")
        order[i], order[i + 1] = order[i + 1], order[i]
        days.append(order)
    for old, new in itertools.pairwise(days):
        telling = ranking_alerts(board(old), board(new), RULES, lambda s: False, memory)
        remember(memory, telling)
        told.append([c for c in telling.changes if c.model == "m/10"])
    assert told == [[], [], [RankMoved("m/10", 10, 13)], []]
    assert "rank:m/10" in memory  # 13 → 14 on the fourth day: one of three so far


def test_a_creeping_price_is_reported_once_it_adds_up_and_never_twice() -> None:
    memory: dict[str, str] = {}
    prices = ["1.00", "1.04", "1.08", "1.12", "1.12"]
    told = []
    for before, after in itertools.pairwise(prices):
        delta = catalog_delta({"a/x": model("a/x", before, "2", version=before)}, {},
                              {"a/x": model("a/x", after, "2", version=after)})
        telling = catalog_alerts(delta, RULES, memory)
        remember(memory, telling)
        told.append(telling.changes)
    assert told == [[], [], [PriceChanged("a/x", "prompt", Decimal("1.00"), Decimal("1.12"),
                                          Decimal("12.0"))], []]
    assert memory == {}


def test_a_channels_rules_filter_what_it_is_told() -> None:
    delta = catalog_delta({"qwen/a": model("qwen/a"), "openai/b": model("openai/b")}, {},
                          {"qwen/a": model("qwen/a", "2", version="2"),
                           "openai/b": model("openai/b", "2", version="2"),
                           "qwen/a:free": model("qwen/a:free", "0", "0")})
    everything = catalog_alerts(delta, RULES).changes
    assert {c.model for c in everything} == {"qwen/a", "openai/b", "qwen/a:free"}
    watch = set_rule(RULES, "watch", "qwen")
    assert {c.model for c in catalog_alerts(delta, watch).changes} == {"qwen/a", "qwen/a:free"}
    no_variants = set_rule(watch, "variants", "off")
    assert {c.model for c in catalog_alerts(delta, no_variants).changes} == {"qwen/a"}
    ignore = set_rule(RULES, "ignore", "openai/*")
    assert {c.model for c in catalog_alerts(delta, ignore).changes} == {"qwen/a", "qwen/a:free"}
    kinds = set_rule(RULES, "kinds", "model_added")
    assert [c.kind for c in catalog_alerts(delta, kinds).changes] == ["model_added"]
