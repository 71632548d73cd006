"""Providers (issue #15 item 3): the real endpoint captures served by the loopback fake, through
the real client and the poll path; what is told, computed independently from the raw JSON."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rankbot.adapters.openrouter import OpenRouterClient, endpoints_path, open_http
from rankbot.bot.alerts import ProvidersNews, hear
from rankbot.bot.cards import changes_card, describe
from rankbot.bot.changes import ProviderAdded, ProviderDegraded
from rankbot.bot.channels import CONSOLE, person_ref
from rankbot.bot.commands import answer
from rankbot.bot.history import import_snapshot
from rankbot.bot.provider_polling import choose_targets, pick, poll_providers
from rankbot.bot.providers import ModelProviders, parse_endpoints, provider_delta
from rankbot.bot.rules import DEFAULT_RULES, Rules, rules_from_record, rules_to_record, set_rule
from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork
from tests.conftest import FIXTURES, Sleeps, catalog_bytes, rankings_csv, serve_export
from tests.fakes.openrouter import FakeOpenRouter, Reply, endless

pytestmark = pytest.mark.anyio

CAPTURES = FIXTURES / "endpoints"
SONNET = "anthropic/claude-sonnet-4.5"
SONNET_SLUG = "anthropic/claude-4.5-sonnet-20250929"
GPT4O = "openai/gpt-4o"
STAMP = "2026-08-22T183539Z"
T0 = datetime(2026, 8, 25, 12, tzinfo=UTC)


def capture(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def raw(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(capture(name))
    return document


def edited(name: str, **uptimes: float | None) -> bytes:
    """A capture with some providers' 30-minute uptimes set (by tag), or removed (None)."""
    document = copy.deepcopy(raw(name))
    kept = []
    for endpoint in document["data"]["endpoints"]:
        tag = endpoint["tag"]
        if tag in uptimes and uptimes[tag] is None:
            continue
        if tag in uptimes:
            endpoint["uptime_last_30m"] = uptimes[tag]
        kept.append(endpoint)
    document["data"]["endpoints"] = kept
    return json.dumps(document).encode()


@pytest.fixture
def db() -> Iterator[UnitOfWork]:
    """The real catalog, and the console watching the two models the captures are of."""
    store = UnitOfWork.open(":memory:")
    import_snapshot(store, f"{STAMP}.json", catalog_bytes(STAMP),
                    datetime(2026, 8, 22, 18, 35, 39, tzinfo=UTC), DEFAULT_RULES)
    watch(store, f"{SONNET},{GPT4O}")
    yield store
    store.close()


def watch(store: UnitOfWork, patterns: str, **rules: str) -> None:
    with store:
        subscription = store.channels.subscribe(CONSOLE, "all", T0)
        new = set_rule(subscription.rules, "watch", patterns)
        for key, value in rules.items():
            new = set_rule(new, key, value)
        store.channels.set_rules(subscription, new, who="test", at=T0, setting="watch",
                                 old="", new=patterns)


@pytest.fixture
async def keyless(fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> AsyncIterator[
        OpenRouterClient]:
    async with open_http(fake_openrouter.base_url, httpx.Timeout(0.5, connect=1.0)) as http:
        yield OpenRouterClient(http, sleep=sleeps, fetch_timeout=2.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def hour(self) -> None:
        self.now += timedelta(hours=1)


async def poll(client: OpenRouterClient, store: UnitOfWork, clock: Clock, sleeps: Sleeps,
               rules: Rules = DEFAULT_RULES) -> list[dict[str, Any]]:
    """One round; the changes queued for the console, as `--json` prints them."""
    before = _queued(store)
    outcomes = await poll_providers(client, store, clock, rules, sleep=sleeps)
    clock.hour()
    assert all(o.source == "providers" for o in outcomes)
    return _queued(store)[len(before):]


def _queued(store: UnitOfWork) -> list[dict[str, Any]]:
    rows = store.db.execute("SELECT payload FROM outbox ORDER BY id").fetchall()
    return [change for (payload,) in rows for change in json.loads(payload)["changes"]]


def serve(fake: FakeOpenRouter, sonnet: bytes | Reply, gpt: bytes | Reply) -> None:
    fake.serve_endpoints(SONNET_SLUG, sonnet)
    fake.serve_endpoints(GPT4O, gpt)


# -- the captures, independently ----------------------------------------------------------------

def expected(old_name: str | bytes, new_name: str | bytes, min_uptime: float = 95.0
             ) -> set[tuple[str, str]]:
    """(kind, provider) from the raw JSON alone: added, quantization, cheapest moves, uptime
    crossing `min_uptime` (both known), for two payloads in a row (no removal: that takes two)."""
    def load(which: str | bytes) -> dict[str, dict[str, Any]]:
        body = json.loads(capture(which) if isinstance(which, str) else which)
        return {e["tag"] or e["provider_name"]: e for e in body["data"]["endpoints"]}
    old, new = load(old_name), load(new_name)
    found = {("provider_added", tag) for tag in new.keys() - old.keys()}
    for tag in old.keys() & new.keys():
        if old[tag]["quantization"] != new[tag]["quantization"]:
            found.add(("quantization_changed", tag))
        before, after = old[tag]["uptime_last_30m"], new[tag]["uptime_last_30m"]
        if before is not None and after is not None and (before < min_uptime) != (
                after < min_uptime):
            found.add(("provider_degraded" if after < min_uptime else "provider_recovered", tag))
    for side, label in (("prompt", "input"), ("completion", "output")):
        def low(endpoints: dict[str, dict[str, Any]], side: str = side) -> Decimal:
            return min(Decimal(e["pricing"][side]) for e in endpoints.values())
        if low(old) != low(new):
            found.add(("cheapest_provider_changed", label))
    return found


def test_the_two_anthropic_captures_differ_only_in_uptime_and_speed() -> None:
    old, new = raw("anthropic--claude-sonnet-4.5.2026-08-25.json"), raw(
        "anthropic--claude-sonnet-4.5.2026-08-30.json")
    moved = {e["tag"]: (e["uptime_last_30m"], f["uptime_last_30m"])
             for e, f in zip(old["data"]["endpoints"], new["data"]["endpoints"], strict=True)
             if e["uptime_last_30m"] != f["uptime_last_30m"]}
    assert moved == {"google-vertex/global": (99.81651376146789, 100),
                     "amazon-bedrock": (99.89805847736434, 99.98616299986163),
                     "anthropic": (99.42446043165467, 100)}
    assert expected("anthropic--claude-sonnet-4.5.2026-08-25.json",
                    "anthropic--claude-sonnet-4.5.2026-08-30.json") == set()


async def test_the_captures_through_the_poll_path(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    clock = Clock()
    serve(fake_openrouter, capture("anthropic--claude-sonnet-4.5.2026-08-25.json"),
          capture("openai--gpt-4o.undated.json"))
    assert await poll(keyless, db, clock, sleeps) == []  # a baseline: nothing told
    assert sleeps.waits == [1.0]  # two models, one second apart
    # The path is the catalog entry's links.details (the permaslug), not the id.
    assert fake_openrouter.hits(f"models/{SONNET_SLUG}/endpoints") == 1
    assert fake_openrouter.hits(f"models/{SONNET}/endpoints") == 0
    stored = db.providers.stored_providers(SONNET)
    assert stored is not None and len(stored.state.live) == 7
    bedrock = next(p for p in stored.state.live if p.key == "amazon-bedrock")
    assert (bedrock.prompt, bedrock.completion, bedrock.context_length) == (
        Decimal(3), Decimal(15), 1_000_000)
    assert bedrock.latency[0] == 2022 and bedrock.throughput[0] == 35
    assert bedrock.uptime_30m == 99.89805847736434

    # 08-30: uptimes moved, all above 95%: the diff says nothing, as the raw JSON does.
    serve(fake_openrouter, capture("anthropic--claude-sonnet-4.5.2026-08-30.json"),
          capture("openai--gpt-4o.undated.json"))
    assert await poll(keyless, db, clock, sleeps) == []
    # A channel asking for 99.5%: Anthropic was at 99.42 in the baseline, never told, so its
    # recovery to 100 is not news either.
    strict = await _heard("anthropic--claude-sonnet-4.5.2026-08-25.json",
                          "anthropic--claude-sonnet-4.5.2026-08-30.json", "99.5")
    assert strict == []
    versions = db.db.execute("SELECT COUNT(*) FROM provider_versions").fetchone()[0]
    assert versions == 9  # 7 + 2, and 08-30 added none: prices and terms did not move


async def _heard(old: str, new: str, min_uptime: str) -> list[str]:
    rules = set_rule(DEFAULT_RULES, "min_uptime", min_uptime)
    first = provider_delta(SONNET, None, parse_endpoints(capture(old), SONNET))
    second = provider_delta(SONNET, first.state, parse_endpoints(capture(new), SONNET))
    memory: dict[str, str] = {}
    for delta in (first, second):
        telling = hear(ProvidersNews((delta,)), rules, memory)
        memory = {k: v for k, v in {**memory, **telling.remember}.items()
                  if k not in telling.forget}
        said = [c.kind for c in telling.changes]
    return said


async def test_azure_under_95_is_degraded_once_then_recovers(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    clock, gpt = Clock(), "openai--gpt-4o.undated.json"
    sonnet = capture("anthropic--claude-sonnet-4.5.2026-08-30.json")
    assert raw(gpt)["data"]["endpoints"][1]["status"] == -2
    serve(fake_openrouter, sonnet, edited(gpt, azure=99.0))
    assert await poll(keyless, db, clock, sleeps) == []
    serve(fake_openrouter, sonnet, capture(gpt))  # the real one: Azure at 91.1
    assert expected(edited(gpt, azure=99.0), gpt) == {("provider_degraded", "azure")}
    told = await poll(keyless, db, clock, sleeps)
    assert told == [{"kind": "provider_degraded", "model": GPT4O, "provider": "azure",
                     "name": "Azure", "uptime": "91.1", "min_uptime": "95"}]
    serve(fake_openrouter, sonnet, edited(gpt, azure=92.5))  # still degraded: once an episode
    assert await poll(keyless, db, clock, sleeps) == []
    serve(fake_openrouter, sonnet, edited(gpt, azure=None, openai=99.9))  # Azure skips one
    assert await poll(keyless, db, clock, sleeps) == []
    serve(fake_openrouter, sonnet, edited(gpt, azure=97.25))
    told = await poll(keyless, db, clock, sleeps)
    assert told == [{"kind": "provider_recovered", "model": GPT4O, "provider": "azure",
                     "name": "Azure", "uptime": "97.2", "min_uptime": "95"}]


async def baseline(fake: FakeOpenRouter, client: OpenRouterClient, db: UnitOfWork,
                   sleeps: Sleeps) -> tuple[Clock, str, dict[str, Any]]:
    """The first poll of the 08-30 Sonnet and the gpt-4o captures: (clock, name, gpt-4o)."""
    clock, name = Clock(), "anthropic--claude-sonnet-4.5.2026-08-30.json"
    gpt = capture("openai--gpt-4o.undated.json")
    serve(fake, capture(name), gpt)
    await poll(client, db, clock, sleeps)
    return clock, name, gpt


async def test_an_uptime_hovering_at_the_line_is_one_episode(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    clock, gpt = Clock(), "openai--gpt-4o.undated.json"
    sonnet = capture("anthropic--claude-sonnet-4.5.2026-08-30.json")
    serve(fake_openrouter, sonnet, edited(gpt, azure=99.0))
    await poll(keyless, db, clock, sleeps)
    serve(fake_openrouter, sonnet, capture(gpt))  # Azure at 91.1
    assert [c["kind"] for c in await poll(keyless, db, clock, sleeps)] == ["provider_degraded"]
    for uptime in (95.4, 94.8, 95.9):  # around 95: no recovery until a point above it
        serve(fake_openrouter, sonnet, edited(gpt, azure=uptime))
        assert await poll(keyless, db, clock, sleeps) == [], uptime
    serve(fake_openrouter, sonnet, edited(gpt, azure=96.0))
    assert [c["kind"] for c in await poll(keyless, db, clock, sleeps)] == ["provider_recovered"]


async def test_a_provider_is_removed_after_two_absences(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    clock, name, gpt = await baseline(fake_openrouter, keyless, db, sleeps)
    serve(fake_openrouter, edited(name, **{"amazon-bedrock/eu-west-1": None}), gpt)
    assert await poll(keyless, db, clock, sleeps) == []  # missing once: nothing yet
    serve(fake_openrouter, edited(name, **{"amazon-bedrock/eu-west-1": None, "anthropic": 99.0}),
          gpt)
    told = await poll(keyless, db, clock, sleeps)
    assert told == [{"kind": "provider_removed", "model": SONNET,
                     "provider": "amazon-bedrock/eu-west-1", "name": "Amazon Bedrock"}]
    serve(fake_openrouter, capture(name), gpt)  # back: a new provider
    told = await poll(keyless, db, clock, sleeps)
    assert [(c["kind"], c["provider"], c["prompt"]) for c in told] == [
        ("provider_added", "amazon-bedrock/eu-west-1", "3.3")]


async def test_the_cheapest_provider_and_quantization(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    clock, name, gpt = await baseline(fake_openrouter, keyless, db, sleeps)
    cheaper = copy.deepcopy(raw(name))
    azure = next(e for e in cheaper["data"]["endpoints"] if e["tag"] == "azure/global")
    azure["pricing"]["completion"] = "0.000012"
    azure["quantization"] = "fp8"
    body = json.dumps(cheaper).encode()
    serve(fake_openrouter, body, gpt)
    assert expected(name, body) == {("cheapest_provider_changed", "output"),
                                    ("quantization_changed", "azure/global")}
    told = await poll(keyless, db, clock, sleeps)
    assert {(c["kind"], c.get("field") or c.get("provider")) for c in told} == {
        ("quantization_changed", "azure/global"), ("cheapest_provider_changed", "output")}
    cheapest = next(c for c in told if c["kind"] == "cheapest_provider_changed")
    assert cheapest == {"kind": "cheapest_provider_changed", "model": SONNET, "field": "output",
                        "old_provider": "google-vertex/global", "new_provider": "azure/global",
                        "old_name": "Google", "new_name": "Azure", "old_price": "15",
                        "new_price": "12"}


async def test_providers_answer_cheapest_first(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    before = answer("providers", "claude-sonnet-4.5", db.snapshots, T0)
    assert "no provider data yet" in before.card.fields[0].value
    serve(fake_openrouter, capture("anthropic--claude-sonnet-4.5.2026-08-25.json"),
          capture("openai--gpt-4o.undated.json"))
    await poll(keyless, db, Clock(), sleeps)
    reply = answer("providers", "anthropic/claude-sonnet-4.5", db.snapshots, T0)
    assert reply.public
    lines = reply.card.fields[0].value.splitlines()
    assert len(lines) == 7
    assert lines[0] == ("Google (google-vertex/global): $3.00 / $15.00 · 99.8% up · "
                        "p50 1,246 ms · 34 tok/s")
    assert all("$3.30" in line for line in lines[-2:])  # the dearer ones last
    gpt = answer("providers", "openai/gpt-4o", db.snapshots, T0).card.fields[0].value
    assert "Azure: $2.50 / $10.00 · 91.1% up · latency n/a · speed n/a · status -2" in gpt
    assert "USD per 1M tokens" in (reply.card.footer or "")


# -- faults -------------------------------------------------------------------------------------

async def test_faults_are_faults_one_model_at_a_time(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    clock = Clock()
    serve(fake_openrouter, Reply(404, b'{"error":{"code":404}}'),
          capture("openai--gpt-4o.undated.json"))
    outcomes = await poll_providers(keyless, db, clock, DEFAULT_RULES, sleep=sleeps)
    assert [o.fault for o in outcomes] == [None]  # one model's 404 costs only it
    assert db.providers.stored_providers(GPT4O) is not None
    fault = db.snapshots.last_fault("providers")
    assert fault is not None and SONNET in fault.message and "404" in fault.message

    for reply, kind in ((Reply(500), "http"), (Reply(200, b"<html>"), "unparsable"),
                        (Reply(delay=3.0, body=b"{}"), "timeout"),
                        (Reply(stream=endless()), "too_large"),
                        (Reply.json({"data": {"endpoints": []}}), "empty")):
        serve(fake_openrouter, reply, reply)
        clock.hour()
        outcomes = await poll_providers(keyless, db, clock, DEFAULT_RULES, sleep=sleeps)
        assert [o.fault.kind if o.fault else None for o in outcomes] == [kind], reply
    # Nothing was diffed from the faults: the last good data stays.
    assert len(db.providers.stored_providers(GPT4O).state.live) == 2  # type: ignore[union-attr]


async def test_three_struggling_answers_in_a_row_end_the_round(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, db: UnitOfWork,
        sleeps: Sleeps) -> None:
    watch(db, "anthropic,openai")
    targets = choose_targets(db)
    assert len(targets) > 10
    for target in targets:
        fake_openrouter.serve_endpoints(target.slug, Reply(503))
    outcomes = await poll_providers(keyless, db, Clock(), DEFAULT_RULES, sleep=sleeps)
    assert len(outcomes) == 1 and outcomes[0].fault is not None
    assert outcomes[0].fault.message.startswith("3 of 3 models' providers could not be")
    # Three models (each tried again while its deadline allows), then the round waits for the
    # next one; 404s are each model's own and would not have ended it.
    assert len({r.path for r in fake_openrouter.requests}) == 3
    assert db.snapshots.last_fault("providers") is not None


async def test_a_key_only_when_openrouter_asks(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, keyless: OpenRouterClient,
        db: UnitOfWork, sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    path = fake_openrouter.serve_endpoints(
        SONNET_SLUG, Reply(401), capture("anthropic--claude-sonnet-4.5.2026-08-25.json"))
    # Without a key: a fault saying so.
    fake_openrouter.serve_endpoints(GPT4O, Reply(403))
    outcomes = await poll_providers(keyless, db, Clock(), DEFAULT_RULES, sleep=sleeps)
    assert outcomes[0].fault is not None
    assert "asks for a key for provider endpoints" in outcomes[0].fault.message
    # With one: keyless first, then the key, said once, remembered for `status`.
    fake_openrouter.serve_endpoints(
        SONNET_SLUG, Reply(401), capture("anthropic--claude-sonnet-4.5.2026-08-25.json"))
    fake_openrouter.serve_endpoints(GPT4O, capture("openai--gpt-4o.undated.json"))
    first = len(fake_openrouter.requests)
    with caplog.at_level(logging.WARNING):
        outcomes = await poll_providers(client, db, Clock(), DEFAULT_RULES, sleep=sleeps)
    sent = fake_openrouter.requests[first:]
    assert [(r.path, "Authorization" in r.headers) for r in sent] == [
        (path, False), (path, True), (f"models/{GPT4O}/endpoints", True)]
    assert sent[1].headers["Authorization"] == "Bearer sk-or-test-key"
    said = [r.message for r in caplog.records if r.message.startswith("OpenRouter asks")]
    assert len(said) == 1
    assert db.providers.summary().keyed


async def test_a_hostile_links_details_is_never_fetched(
        fake_openrouter: FakeOpenRouter, keyless: OpenRouterClient, sleeps: Sleeps) -> None:
    with FakeOpenRouter("127.0.0.2").running() as other:
        document = json.loads(catalog_bytes(STAMP))
        entry = next(e for e in document["data"] if e["id"] == SONNET)
        port = other.base_url.rsplit(":", 1)[1].split("/")[0]
        entry["links"]["details"] = f"//127.0.0.2:{port}/api/v1/models/{SONNET_SLUG}/endpoints"
        store = UnitOfWork.open(":memory:")
        import_snapshot(store, "hostile.json", json.dumps(document).encode(),
                        datetime(2026, 8, 22, tzinfo=UTC), DEFAULT_RULES)
        watch(store, SONNET)
        other.serve_endpoints(SONNET_SLUG, capture("anthropic--claude-sonnet-4.5.2026-08-25.json"))
        fake_openrouter.serve_endpoints(
            SONNET_SLUG, capture("anthropic--claude-sonnet-4.5.2026-08-25.json"))
        await poll_providers(keyless, store, Clock(), DEFAULT_RULES, sleep=sleeps)
        assert other.requests == []
        assert fake_openrouter.hits(f"models/{SONNET_SLUG}/endpoints") == 1
        store.close()


@pytest.mark.parametrize("details", [
    "https://evil.example/api/v1/models/a/b/endpoints", "//127.0.0.2/x", "/../../",
    "/api/v1/models/../../admin/endpoints", "/api/v1/models/%2e%2e/x/endpoints",
    "/api/v1/models/a/b/endpoints?x=1", "http://127.0.0.1:1/api/v1/models/a/b/endpoints",
    "/api/v2/models/a/b/endpoints", "/" + "a" * 100_000, "", None])
def test_only_a_path_under_the_base_url_is_taken(details: str | None) -> None:
    base = httpx.URL("http://127.0.0.1:8080/api/v1")
    assert endpoints_path(base, details, SONNET_SLUG) == f"models/{SONNET_SLUG}/endpoints"
    assert endpoints_path(base, "/api/v1/models/x/y-1.2/endpoints", SONNET_SLUG) == \
        "models/x/y-1.2/endpoints"
    assert endpoints_path(base, details, "../etc") is None


# -- which models, the rule ---------------------------------------------------------------------

def test_which_models_top_20_then_watched_one_per_path_capped(db: UnitOfWork) -> None:
    live = db.snapshots.live_models()
    everything = pick(live, [], [((), ())], 50)
    assert everything == []  # watching everything is no reason to poll 400 models
    chosen = pick(live, [f"{SONNET_SLUG}:batch", "openai/gpt-4o"], [(("anthropic",), ())], 5)
    assert [m.id for m in chosen][:2] == [SONNET, GPT4O]  # the base model, not its variant
    assert len(chosen) == 5
    assert len({m.canonical_slug for m in chosen}) == 5


def test_channels_watches_come_before_peoples_within_the_limit(db: UnitOfWork) -> None:
    """Three people watching twenty models each would fill a budget of 50 before a model a
    channel watches, were they taken together by id."""
    live = db.snapshots.live_models()
    bases = sorted((m for m in live.values() if ":" not in m.id and not m.is_alias
                    and m.canonical_slug), key=lambda m: m.id)
    channel = ((bases[-1].id,), ())  # last by id
    people = [(tuple(m.id for m in bases[i:i + 20]), ()) for i in range(0, 60, 20)]
    chosen = [m.id for m in pick(live, [], [channel], 50, people=people)]
    assert chosen[0] == bases[-1].id and len(chosen) == 50
    assert chosen[1:] == [m.id for m in bases[:49]]  # then people's, as many as fit


def test_choose_targets_polls_a_channels_watch_before_peoples(db: UnitOfWork) -> None:
    live = db.snapshots.live_models()
    bases = sorted((m for m in live.values() if ":" not in m.id and not m.is_alias
                    and m.canonical_slug), key=lambda m: m.id)
    watch(db, bases[-1].id)  # the console, a channel
    for n in range(3):
        with db:
            person = db.channels.subscribe(person_ref("slack", "T1", f"U{n}"), "alerts", T0)
            rules = replace(person.rules, watch=tuple(m.id for m in bases[20 * n:20 * n + 20]))
            db.channels.set_rules(person, rules, who=f"U{n}", at=T0, setting="watch", old="",
                                  new="")
    targets = [t.model for t in choose_targets(db, limit=10)]
    assert targets[0] == bases[-1].id and targets[1:] == [m.id for m in bases[:9]]


def test_min_uptime_rule() -> None:
    rules = set_rule(DEFAULT_RULES, "min_uptime", "99.5%")
    assert rules.min_uptime == Decimal("99.5")
    assert rules_from_record(rules_to_record(rules)) == (rules, ())
    assert DEFAULT_RULES.min_uptime == 95
    for bad in ("0", "101", "nan", "x"):
        with pytest.raises(ValueError, match="min_uptime must be a percentage from 1 to 100"):
            set_rule(DEFAULT_RULES, "min_uptime", bad)
    record = rules_to_record(DEFAULT_RULES) | {"min_uptime": "200"}
    assert rules_from_record(record)[1] == ("min_uptime '200'",)


def test_unknown_uptimes_are_never_degraded() -> None:
    older = parse_endpoints(capture("google--gemini-2.5-pro-preview.2025-05-12.json"), "g")
    newer = parse_endpoints(capture("google--gemini-2.5-pro-preview.2025-05-23.json"), "g")
    assert [p.key for p in older.providers] == ["Google", "Google AI Studio"]
    delta = provider_delta("g", ModelProviders(older.providers), newer)
    # The newer payload gave them tags: new keys, so the old ones vanish (removed only after
    # a second payload without them) and the tagged ones arrive.
    said = hear(ProvidersNews((delta,)), DEFAULT_RULES).changes
    assert sorted(c.kind for c in said) == ["provider_added", "provider_added"]
    assert all(u.new is None for u in delta.uptimes)


def test_the_capture_files_are_the_shared_ones() -> None:
    shared = Path("/work/shared/data/openrouter/endpoints")
    if not shared.exists():
        pytest.skip("the shared data is not on this machine")
    for path in CAPTURES.glob("*.json"):
        assert path.read_bytes() == (shared / path.name).read_bytes()


def test_rankbot_poll_fetches_them_once_and_status_shows_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_openrouter: FakeOpenRouter
        ) -> None:
    monkeypatch.chdir(tmp_path)
    fake_openrouter.serve("models", catalog_bytes(STAMP))
    serve_export(fake_openrouter, rankings_csv())
    serve(fake_openrouter, capture("anthropic--claude-sonnet-4.5.2026-08-30.json"),
          capture("openai--gpt-4o.undated.json"))
    env = {"OPENROUTER_BASE_URL": fake_openrouter.base_url, "RANKBOT_PROVIDERS_MAX": "2",
           "RANKBOT_DB": str(tmp_path / "rankbot.db")}
    runner = CliRunner()
    runner.invoke(cli, ["ask", "rankbot", "set", "watch", f"{SONNET},{GPT4O}"], env=env)
    first, started = len(fake_openrouter.requests), time.monotonic()
    result = runner.invoke(cli, ["poll"], env=env)
    took = time.monotonic() - started
    asked = [r for r in fake_openrouter.requests[first:] if r.path.endswith("/endpoints")]
    assert len(asked) == 2  # at most 2: the top 2 by usage (whose endpoints are not served)
    assert result.exit_code == 1  # neither could be fetched: a fault, shown by status
    status = runner.invoke(cli, ["status"], env=env).stdout
    assert "Providers" in status and "could not be fetched" in status
    assert took >= 1.0  # the two a second apart, at least


def test_provider_changes_are_a_section_of_the_alert() -> None:
    changes = [ProviderAdded(GPT4O, "azure", "Azure", Decimal(2), Decimal(8), "fp8", 128_000),
               ProviderDegraded(GPT4O, "azure", "Azure", Decimal("90.0"), Decimal(95))]
    card = changes_card(changes, datetime(2026, 8, 30, tzinfo=UTC), None)
    (section,) = card.fields
    assert section.name == "Providers"
    assert section.value.splitlines() == [describe(c) for c in changes]
