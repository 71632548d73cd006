"""Every published price, on real data: the 40 consecutive catalogs of the shared history
(tests/fixtures/openrouter/history) polled in turn into SQLite, three channels told under their
own `price_fields`, against what an independent reading of the raw JSON says each should hear;
and `/price` showing every price a real model has."""

from __future__ import annotations

import gzip
import json
import re
import tarfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import anyio
import pytest

from rankbot.bot.alerts import CatalogNews, hear
from rankbot.bot.cards import describe
from rankbot.bot.catalog import parse_catalog
from rankbot.bot.changes import PriceChanged
from rankbot.bot.channels import ChannelRef
from rankbot.bot.diff import catalog_delta
from rankbot.bot.history import time_from_name
from rankbot.bot.polling import poll
from rankbot.bot.rules import (
    DEFAULT_RULES,
    RuleError,
    rules_from_record,
    rules_to_record,
    set_rule,
    show_rule,
)
from rankbot.storage import UnitOfWork
from tests.conftest import FIXTURES, PriceMove, default_price_field, published_prices
from tests.test_commands import OCT_8, answer
from tests.test_polling import alerts, subscribe

HISTORY = FIXTURES / "history" / "2026-08-13_2026-08-22.tar.xz"
Raw = dict[str, dict[str, Any]]
DEFAULT = ChannelRef("slack", "T1", "CDEFAULT")
BASIC = ChannelRef("slack", "T1", "CBASIC")  # price_fields prompt,completion
EVERY = ChannelRef("discord", "G1", "300")  # price_fields all


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[datetime, bytes, Raw]]:
    folder = tmp_path_factory.mktemp("history")
    with tarfile.open(HISTORY) as tar:
        tar.extractall(folder, filter="data")
    catalogs = []
    for path in sorted(folder.glob("*.json")):
        at = time_from_name(path.name)
        assert at is not None
        body = path.read_bytes()
        catalogs.append((at, body, {m["id"]: m for m in json.loads(body)["data"]}))
    return catalogs


def pct_ok(before: Decimal, now: Decimal, pct: int = 10) -> bool:
    return before == 0 or abs(((now - before) / before * 100).quantize(Decimal("0.1"))) >= pct


def expected_told(catalogs: list[Raw], hears: Callable[[str], bool]) -> list[set[PriceMove]]:
    """Independently of bot/: the price moves a channel hearing `hears` is told at each catalog
    after the first, as README says: each price both versions publish, judged on its own
    against what the channel was last told of it (a drift adds up); a model missing from one
    catalog is compared with how it was last listed when it returns, and forgotten when it is
    missing from two; going free or paid is one change, not one per price."""
    told: dict[tuple[str, str], Decimal] = {}
    steps: list[set[PriceMove]] = []
    gone_once: Raw = {}
    for old, new in pairwise(catalogs):
        moves: set[PriceMove] = set()
        for model_id in {i for i in gone_once if i not in new}:  # removed: forgotten
            told = {k: v for k, v in told.items() if k[0] != model_id}
        for model_id, entry in new.items():
            before_entry = old.get(model_id) or gone_once.get(model_id)
            if before_entry is None or model_id.startswith("~"):
                continue
            a, b = before_entry["pricing"], entry["pricing"]
            if "-1" in (a["prompt"], b["prompt"]):
                continue
            was_free = Decimal(a["prompt"]) == Decimal(a["completion"]) == 0
            is_free = Decimal(b["prompt"]) == Decimal(b["completion"]) == 0
            a_prices, b_prices = published_prices(a), published_prices(b)
            for field in a_prices.keys() | b_prices.keys():
                key = (model_id, field)
                before, now = told.pop(key, a_prices.get(field)), b_prices.get(field)
                if was_free != is_free or before is None or now is None or before == now \
                        or not hears(field):
                    continue
                if pct_ok(before, now):
                    moves.add((model_id, field, before, now))
                else:
                    told[key] = before
        steps.append(moves)
        gone_once = {i: entry for i, entry in old.items() if i not in new}
    return steps


@pytest.fixture(scope="module")
def polled(history: list[tuple[datetime, bytes, Raw]]
           ) -> dict[ChannelRef, list[tuple[str, list[dict[str, Any]]]]]:
    """The 40 catalogs polled in turn, as `rankbot run` would: the alerts queued per channel."""
    store = UnitOfWork.open(":memory:")
    every = replace(DEFAULT_RULES, price_fields=("*",))
    basic = replace(DEFAULT_RULES, price_fields=("prompt", "completion"))
    for ref, rules in ((DEFAULT, DEFAULT_RULES), (BASIC, basic), (EVERY, every)):
        subscribe(store, ref, rules=rules)

    async def run() -> None:
        for at, body, _ in history:
            async def fetch(body: bytes = body) -> bytes:
                return body
            await poll(store, at, DEFAULT_RULES, catalog=fetch)
    anyio.run(run)
    queued = {ref: alerts(store, ref) for ref in (DEFAULT, BASIC, EVERY)}
    store.close()
    return queued


def told_moves(queued: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, set[PriceMove]]:
    return {key: {(r["model"], r["field"], Decimal(r["old"]), Decimal(r["new"]))
                  for r in records if r["kind"] == "price_changed"} for key, records in queued}


def per_fetch(steps: list[set[PriceMove]]) -> dict[str, set[PriceMove]]:
    """Expected moves by outbox key (`catalog:<fetch>`; the first fetch is the baseline)."""
    return {f"catalog:{n}": moves for n, moves in enumerate(steps, start=2) if moves}


def test_a_default_channel_hears_exactly_the_real_price_moves_of_its_fields(
        history: list[tuple[datetime, bytes, Raw]],
        polled: dict[ChannelRef, list[tuple[str, list[dict[str, Any]]]]]) -> None:
    expected = per_fetch(expected_told([raw for _, _, raw in history], default_price_field))
    told = {key: moves for key, moves in told_moves(polled[DEFAULT]).items() if moves}
    assert told == expected
    heard = [m for moves in told.values() for m in moves]
    cache = [m for m in heard if m[1].startswith("input_cache")]
    tiers = [m for m in heard if ">" in m[1]]
    # What the slice holds: besides input and output, cache prices and long-context tiers moved
    # (OpenAI's GPT-5.6 doubled or halved above 272K tokens on 2026-08-17).
    print("MEASURED", len(heard), len(cache), len(tiers), len(told))
    assert len(cache) >= 50 and len(tiers) >= 20
    assert ("openai/gpt-5.6-sol", "prompt>272k", Decimal(10), Decimal(5)) in heard
    assert not [m for m in heard if not default_price_field(m[1])]


def test_a_channel_hears_no_price_it_left_out_and_all_hears_every_one(
        history: list[tuple[datetime, bytes, Raw]],
        polled: dict[ChannelRef, list[tuple[str, list[dict[str, Any]]]]]) -> None:
    raws = [raw for _, _, raw in history]
    basic = {k: v for k, v in told_moves(polled[BASIC]).items() if v}
    assert basic == per_fetch(expected_told(raws, lambda f: f in ("prompt", "completion")))
    every = {k: v for k, v in told_moves(polled[EVERY]).items() if v}
    assert every == per_fetch(expected_told(raws, lambda f: True))
    heard = {m[1] for moves in every.values() for m in moves}
    # Per-unit and time-of-day prices are heard only where asked for.
    assert "web_search" in heard and {"audio", "internal_reasoning", "image"} <= heard
    default = {m[1] for moves in told_moves(polled[DEFAULT]).values() for m in moves}
    assert not default & {"web_search", "audio", "internal_reasoning", "image"}


def test_cards_say_the_unit_of_a_per_unit_price(
        polled: dict[ChannelRef, list[tuple[str, list[dict[str, Any]]]]]) -> None:
    records = [r for _, sent in polled[EVERY] for r in sent if r["kind"] == "price_changed"]
    search = next(r for r in records if r["model"] == "openai/gpt-5.6-luna"
                  and r["field"] == "web_search")
    change = PriceChanged(search["model"], search["field"], Decimal(search["old"]),
                          Decimal(search["new"]), Decimal(search["pct"]))
    assert describe(change) == "openai/gpt-5.6-luna web search $0.005 → $0.01 per search (+100%)"
    tier = next(r for r in records if r["model"] == "openai/gpt-5.6-sol"
                and r["field"] == "prompt>272k")
    assert describe(PriceChanged(tier["model"], tier["field"], Decimal(tier["old"]),
                                 Decimal(tier["new"]), Decimal(tier["pct"]))) == (
        "openai/gpt-5.6-sol input above 272K tokens $10.00 → $5.00 per 1M (−50%)")
    assert describe(PriceChanged("a/x", "image", Decimal("0.4"), Decimal("0.5"),
                                 Decimal(25))) == "a/x image input $0.40 → $0.50 per 1M (+25%)"
    assert describe(PriceChanged("a/x", "request", Decimal("0.005"), Decimal("0.006"),
                                 Decimal(20))) == "a/x request $0.005 → $0.006 per request (+20%)"
    assert describe(PriceChanged("deepseek/x", "prompt@10:00-01:00", Decimal("0.66"),
                                 Decimal("1.32"), Decimal(100))) == (
        "deepseek/x input at 10:00-01:00 UTC $0.66 → $1.32 per 1M (+100%)")


def test_memory_keeps_a_drift_per_field_and_the_old_keys_still_read(
        history: list[tuple[datetime, bytes, Raw]]) -> None:
    """`price:<id>:prompt` and `:completion` are what older rankbots stored; other fields are
    keyed the same way, by their names."""
    (_, a, _), (_, b, _) = next((x, y) for x, y in pairwise(history)
                                if y[0] == datetime(2026, 8, 17, 18, 44, 53, tzinfo=UTC))
    old, new = parse_catalog(a).models, parse_catalog(b).models
    delta = catalog_delta(old, {}, new)
    sol = "openai/gpt-5.6-sol"
    told = hear(CatalogNews(delta), DEFAULT_RULES, {f"price:{sol}:prompt>272k": "12"})
    assert (sol, "prompt>272k", Decimal(12), Decimal(5)) in {
        (c.model, c.field, c.old, c.new) for c in told.changes if isinstance(c, PriceChanged)}
    # A move under the threshold is remembered under its field's key, and told once it adds up.
    nudged = replace(new[sol], prices=tuple((f, p * Decimal("1.05") if f == "input_cache_write"
                                             else p) for f, p in new[sol].prices))
    drift = hear(CatalogNews(catalog_delta(new, {}, {**new, sol: replace(
        nudged, content_hash="x")})), DEFAULT_RULES)
    assert drift.changes == [] and drift.remember == {
        f"price:{sol}:input_cache_write": str(new[sol].price("input_cache_write"))}
    legacy = hear(CatalogNews(catalog_delta(new, {}, {**new, sol: replace(
        new[sol], content_hash="y")})), DEFAULT_RULES, {f"price:{sol}:prompt": "1"})
    assert [(c.field, c.old) for c in legacy.changes if isinstance(c, PriceChanged)] == [
        ("prompt", Decimal(1))]


def test_price_fields_is_a_rule_like_the_others() -> None:
    assert show_rule(DEFAULT_RULES, "price_fields") == (
        "prompt,completion,input_cache_read,input_cache_write*,*>*")
    rules = set_rule(DEFAULT_RULES, "price_fields", "prompt, input_cache_*, web_search, *@*")
    assert rules.price_fields == ("prompt", "input_cache_*", "web_search", "*@*")
    assert [rules.hears_price(f) for f in ("prompt", "completion", "input_cache_write_1h",
                                           "web_search", "prompt@10:00-01:00", "prompt>200k")
            ] == [True, False, True, True, True, False]
    assert set_rule(DEFAULT_RULES, "price_fields", "ALL").price_fields == ("*",)
    assert show_rule(set_rule(DEFAULT_RULES, "price_fields", "all"), "price_fields") == "all"
    for bad in ("", ",", "prompt;drop", "x" * 61):
        with pytest.raises(RuleError, match="price_fields must be all, or a comma list"):
            set_rule(DEFAULT_RULES, "price_fields", bad)
    assert rules_from_record(rules_to_record(rules)) == (rules, ())
    record = {**rules_to_record(DEFAULT_RULES), "price_fields": []}
    assert rules_from_record(record) == (DEFAULT_RULES, ("price_fields '[]'",))
    assert rules_from_record({k: v for k, v in rules_to_record(rules).items()
                              if k != "price_fields"})[0] == replace(
        rules, price_fields=DEFAULT_RULES.price_fields)  # rows stored before the rule


def test_price_shows_every_price_of_a_real_model_with_tiers(october: UnitOfWork) -> None:
    prices = published_prices(_raws()["anthropic/claude-sonnet-4.5"]["pricing"])
    assert len(prices) == 11 and "prompt>200k" in prices  # 6 prices, 5 again above 200K
    card = answer("price", "anthropic/claude-sonnet-4.5", october.snapshots, OCT_8).card
    (field,) = card.fields  # the model, then its :batch variant
    lines = field.value.splitlines()
    mine = [line for line in lines[: next(i for i, line in enumerate(lines) if "days:" in line)]
            if not line.startswith("  Quality")]  # the indices: tests/test_best.py

    def usd(field: str) -> str:
        value = prices[field].normalize()
        places = max(2, -value.as_tuple().exponent)  # type: ignore[operator]
        return f"${value:,.{places}f}"
    assert mine == [
        f"anthropic/claude-sonnet-4.5: {usd('prompt')} in / {usd('completion')} out per 1M",
        f"  cache read {usd('input_cache_read')} · cache write {usd('input_cache_write')} · "
        f"cache write 1h {usd('input_cache_write_1h')}",
        f"  above 200K tokens: input {usd('prompt>200k')} · output {usd('completion>200k')} · "
        f"cache read {usd('input_cache_read>200k')} · cache write "
        f"{usd('input_cache_write>200k')} · cache write 1h {usd('input_cache_write_1h>200k')}",
        f"  {usd('web_search')} per search"]
    assert card.footer is not None and card.footer.startswith(
        "USD per 1M tokens, or per search, image or request where said")


def test_price_shows_as_many_prices_as_each_real_model_with_tiers_publishes(
        october: UnitOfWork) -> None:
    raw = _raws()
    tiered = sorted(i for i, m in raw.items() if "overrides" in m["pricing"]
                    and not i.startswith("~") and ":" not in i)
    assert len(tiered) >= 30
    for model_id in tiered:
        prices = published_prices(raw[model_id]["pricing"])
        card = answer("price", model_id, october.snapshots, OCT_8).card
        text = next(f.value for f in card.fields if f.name.endswith(f"({model_id})"))
        block = text.split(f"{model_id}: ", 1)[1].split("days:", 1)[0]
        free = prices["prompt"] == prices["completion"] == 0
        assert len(re.findall(r"\$[\d,.]+", block)) == len(prices) - 2 * free, model_id


def _raws() -> Raw:
    body = gzip.decompress((FIXTURES / "models" / "2026-08-22T183539Z.json.gz").read_bytes())
    return {m["id"]: m for m in json.loads(body)["data"]}

