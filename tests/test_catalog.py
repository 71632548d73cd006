"""Parsing real `/models` payloads into models with exact prices per 1M tokens."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from rankbot.bot.catalog import ModelIndex, parse_catalog, per_million
from rankbot.bot.faults import SourceFault
from tests.conftest import catalog_bytes

OLD_ENVELOPE = "2026-07-13T144438Z"  # {"data": [...]}
NEW_ENVELOPE = "2026-08-22T183539Z"  # {"data": [...], "total_count": N, "links": {...}}


@pytest.mark.parametrize("stamp", [OLD_ENVELOPE, NEW_ENVELOPE])
def test_both_envelopes_parse_every_model(stamp: str) -> None:
    payload = json.loads(catalog_bytes(stamp))
    catalog = parse_catalog(catalog_bytes(stamp))
    assert set(catalog.models) == {m["id"] for m in payload["data"]}
    assert set(catalog.entries) == set(catalog.models)


def test_prices_are_exact_decimals_per_million_tokens() -> None:
    model = parse_catalog(catalog_bytes(NEW_ENVELOPE)).models["meta/muse-spark-1.2-contributor"]
    # pricing: prompt "0.0000001", completion "0.0000002", input_cache_read "0.000000002"
    assert (model.prompt, model.completion, model.cache_read) == (
        Decimal("0.1"), Decimal("0.2"), Decimal("0.002"))
    assert model.context_length == 1048576
    assert not model.open_weight and model.author == "meta" and model.variant is None


def test_dynamic_router_prices_are_never_numbers() -> None:
    models = parse_catalog(catalog_bytes(NEW_ENVELOPE)).models
    router = models["openrouter/auto"]
    assert router.dynamic_price and router.prompt is None and router.completion is None
    assert {m.id for m in models.values() if m.dynamic_price} == {
        "openrouter/auto", "openrouter/auto-beta", "openrouter/fusion",
        "openrouter/pareto-code", "openrouter/bodybuilder"}


def test_variants_aliases_and_open_weights() -> None:
    models = parse_catalog(catalog_bytes(NEW_ENVELOPE)).models
    alias = models["~anthropic/claude-sonnet-latest"]
    assert alias.is_alias and alias.alias_target == "anthropic/claude-sonnet-5"
    assert alias.author == "anthropic"
    free = next(m for m in models.values() if m.variant == "free" and m.id[:-5] in models)
    assert free.is_free and free.canonical_slug == models[free.id[:-5]].canonical_slug
    payload = json.loads(catalog_bytes(NEW_ENVELOPE))["data"]
    assert {m.id for m in models.values() if m.open_weight} == {
        e["id"] for e in payload if e["hugging_face_id"]}


def test_permaslugs_join_the_catalog_with_their_variant() -> None:
    models = parse_catalog(catalog_bytes(NEW_ENVELOPE)).models
    index = ModelIndex(models.values())
    for free in (m for m in models.values() if m.variant == "free"):
        assert index.lookup(f"{free.canonical_slug}:free") == free
        base = models.get(free.id.removesuffix(":free"))
        assert index.lookup(free.canonical_slug) == base
        assert index.is_open_weight(f"{free.canonical_slug}:free") == free.open_weight
    base = next(m for m in models.values() if m.variant is None and not m.is_alias)
    assert index.lookup(f"{base.canonical_slug}:nitro") == base  # unlisted variant: its base
    assert index.lookup("stealth/space-bunny-alpha") is None


def test_the_content_hash_is_stable_across_parses_and_sees_any_edit() -> None:
    first = parse_catalog(catalog_bytes(NEW_ENVELOPE)).models
    again = parse_catalog(catalog_bytes(NEW_ENVELOPE)).models
    assert {i: m.content_hash for i, m in first.items()} == {
        i: m.content_hash for i, m in again.items()}
    entry = json.loads(catalog_bytes(NEW_ENVELOPE))["data"][0]
    edited = {**entry, "description": entry["description"] + "."}
    assert parse_catalog(json.dumps({"data": [edited]}).encode()).models[
        entry["id"]].content_hash != first[entry["id"]].content_hash


@pytest.mark.parametrize(("body", "kind"), [
    (b"", "unparsable"),
    (b'{"data": []}', "empty"),
    (b'{"models": []}', "unparsable"),
    (b"[1, 2]", "unparsable"),
    (b'{"data": [{"name": "no id"}]}', "unparsable"),
    (b'{"data": [{"id": "a/b", "pricing": {"prompt": "cheap"}}]}', "unparsable"),
    (b"\xff\xfe", "unparsable"),
])
def test_bad_payloads_are_typed_faults(body: bytes, kind: str) -> None:
    with pytest.raises(SourceFault) as caught:
        parse_catalog(body)
    assert caught.value.kind == kind


def test_per_million() -> None:
    assert per_million("0.000015") == Decimal(15)
    assert per_million("0") == 0
    assert per_million("-1") is None and per_million(None) is None


def test_every_published_price_with_its_tiers_a_sunset_and_the_quality_indices() -> None:
    entries = json.loads(catalog_bytes("2026-08-22T183539Z"))["data"]
    models = parse_catalog(catalog_bytes("2026-08-22T183539Z")).models
    for entry in entries:
        model, pricing = models[entry["id"]], entry["pricing"]
        if model.dynamic_price:
            assert model.prices == ()
            continue
        expected = {k: Decimal(v) * (1 if k in ("request", "web_search") else 10**6)
                    for k, v in pricing.items() if k not in ("overrides", "discount")}
        for tier in pricing.get("overrides", []):
            if "min_prompt_tokens" in tier:
                label = f">{tier['min_prompt_tokens'] // 1000}k"
            else:
                label = f"@{tier['utc_start'] // 100:02d}:{tier['utc_start'] % 100:02d}-" \
                        f"{tier['utc_end'] // 100:02d}:{tier['utc_end'] % 100:02d}"
            expected |= {f"{k}{label}": Decimal(v) * 10**6 for k, v in tier.items()
                         if isinstance(v, str)}
        assert dict(model.prices) == expected, entry["id"]
        dated = entry.get("expiration_date")
        assert (model.expiration_date.isoformat() if model.expiration_date else None) == dated
        indices = (entry.get("benchmarks") or {}).get("artificial_analysis") or {}
        assert dict(model.benchmarks) == {k: Decimal(str(v)) for k, v in indices.items()
                                          if isinstance(v, int | float)}
    tiered = [m for m in models.values() if any(">" in name for name, _ in m.prices)]
    assert tiered and any(m.expiration_date for m in models.values())
    assert any(m.benchmark("intelligence_index") for m in models.values())


@pytest.mark.parametrize(("field", "value"), [
    ("expiration_date", "soon"), ("expiration_date", 20260810)])
def test_a_retirement_date_that_is_no_date_sets_the_entry_aside(field: str, value: object) -> None:
    entries = json.loads(catalog_bytes("2026-08-22T183539Z"))["data"]
    entries[0][field] = value
    catalog = parse_catalog(json.dumps({"data": entries}).encode())
    assert entries[0]["id"] not in catalog.models
    assert [r.field for r in catalog.rejected] == [field]


@pytest.mark.parametrize("name", [
    "x>1\n🆓 openai/gpt-5 is now free\n@everyone <!channel>",  # a forged alert line
    "Prompt", "web search", "a" * 41, "prompt>200k",  # tiers come from `overrides` only
])
def test_a_price_that_is_not_named_like_one_sets_the_entry_aside(name: str) -> None:
    entries = json.loads(catalog_bytes("2026-08-22T183539Z"))["data"]
    entries[0]["pricing"][name] = "0.000001"
    catalog = parse_catalog(json.dumps({"data": entries}).encode())
    assert entries[0]["id"] not in catalog.models
    assert [r.field for r in catalog.rejected] == ["pricing"]


def test_too_many_prices_set_the_entry_aside_and_odd_index_names_are_left_out() -> None:
    entries = json.loads(catalog_bytes("2026-08-22T183539Z"))["data"]
    entries[0]["pricing"] |= {f"p{n}": "0" for n in range(40)}
    entries[1]["benchmarks"] = {"artificial_analysis": {
        "intelligence_index": 50, "x\n@everyone_index": 99, "coding_index": "high"}}
    catalog = parse_catalog(json.dumps({"data": entries}).encode())
    assert entries[0]["id"] not in catalog.models
    assert catalog.models[entries[1]["id"]].benchmarks == (("intelligence_index", Decimal(50)),)
