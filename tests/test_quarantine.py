"""One bad entry never blocks the rest: a malformed catalog entry or rankings row is set aside
for the poll, recorded as a fault, and every other model and row is used as usual."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from rankbot.adapters.openrouter import OpenRouterClient
from rankbot.bot.changes import ModelAdded, ModelRemoved, PriceChanged
from rankbot.bot.polling import poll_all, poll_catalog, poll_rankings
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import (
    catalog_bytes,
    expected_price_moves,
    rankings_csv,
    raw_models,
    serve_export,
)
from tests.fakes.openrouter import FakeOpenRouter

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 10, 8, 3, 0, tzinfo=UTC)
BEFORE, AFTER = "2026-07-14T025033Z", "2026-07-20T194813Z"
VICTIM = "z-ai/glm-5"  # in both catalogs, and its price moves in between


def corrupted(stamp: str, model_id: str, **fields: Any) -> bytes:
    """A real catalog with one entry's fields replaced (`pricing__prompt` reaches inside)."""
    payload = json.loads(catalog_bytes(stamp))
    entry = next(e for e in payload["data"] if e["id"] == model_id)
    for name, value in fields.items():
        outer, _, inner = name.partition("__")
        if inner:
            entry[outer][inner] = value
        else:
            entry[outer] = value
    return json.dumps(payload).encode()


def nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


BAD_ENTRIES = {
    "pricing as a list": ({"pricing": ["0.1"]}, "pricing"),
    "pricing as a string": ({"pricing": "cheap"}, "pricing"),
    "a price of 1e1000000": ({"pricing__prompt": "1e1000000"}, "pricing.prompt"),
    "a price that is not a number": ({"pricing__prompt": "0.000abc"}, "pricing.prompt"),
    "a negative price": ({"pricing__completion": "-0.5"}, "pricing.completion"),
    "a price of NaN": ({"pricing__prompt": "NaN"}, "pricing.prompt"),
    "a price above $10,000 per 1M": ({"pricing__prompt": "0.02"}, "pricing.prompt"),
    "a context length of 1e30": ({"context_length": 1e30}, "context_length"),
    "a context length of 10**30": ({"context_length": 10**30}, "context_length"),
    "a name that is an object": ({"name": {"en": "x"}}, "name"),
    "a context length of 400 digits": ({"context_length": 10**400}, "context_length"),
    "a field nested 500 deep": ({"extra": nested(500)}, "entry"),
    "an alias target that is not a slug": (
        {"alias_target": {"slug": "\ue000C0EVIL\ue001 https://evil.example"}}, "alias_target"),
    "a canonical slug with a space": ({"canonical_slug": "z-ai/glm 5"}, "canonical_slug"),
}


@pytest.fixture
async def baseline(fake_openrouter: FakeOpenRouter, client: OpenRouterClient,
                   store: UnitOfWork) -> UnitOfWork:
    fake_openrouter.serve("models", catalog_bytes(BEFORE))
    await poll_catalog(client, store, T0, DEFAULT_RULES)
    return store


@pytest.mark.parametrize(("fields", "field"), BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
async def test_one_bad_entry_is_set_aside_and_every_other_model_is_diffed(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, baseline: UnitOfWork,
        fields: dict[str, Any], field: str) -> None:
    store = baseline
    kept = store.snapshots.live_models()[VICTIM]
    fake_openrouter.serve("models", corrupted(AFTER, VICTIM, **fields))
    outcome, = await poll_catalog(client, store, T0 + timedelta(hours=1), DEFAULT_RULES)

    assert outcome.fault is None
    moves, _, _ = expected_price_moves(BEFORE, AFTER)
    assert any(move[0] == VICTIM for move in moves)
    assert {(c.model, c.field, c.old, c.new) for c in outcome.changes
            if isinstance(c, PriceChanged)} == {m for m in moves if m[0] != VICTIM}
    assert not any(c.model == VICTIM for c in outcome.changes)
    assert store.snapshots.live_models()[VICTIM] == kept  # its last good version stays
    fault = store.snapshots.last_fault("catalog")
    assert fault is not None and fault.kind == "bad_entries"
    assert fault.message.startswith(f"1 catalog entry set aside, the rest used: model {VICTIM}: "
                                    f"{field} ")

    # Fixed upstream: the model's own changes are told then, against its last good version.
    fake_openrouter.serve("models", catalog_bytes(AFTER))
    fixed, = await poll_catalog(client, store, T0 + timedelta(hours=2), DEFAULT_RULES)
    assert {(c.model, c.field, c.old, c.new) for c in fixed.changes
            if isinstance(c, PriceChanged)} == {m for m in moves if m[0] == VICTIM}


async def test_a_bad_entry_that_was_live_is_neither_removed_nor_readded(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, baseline: UnitOfWork) -> None:
    store = baseline
    bad = corrupted(BEFORE, VICTIM, pricing="broken")
    outcomes = []
    for hour, body in enumerate((bad, bad, catalog_bytes(BEFORE)), start=1):
        fake_openrouter.serve("models", body)
        outcome, = await poll_catalog(client, store, T0 + timedelta(hours=hour), DEFAULT_RULES)
        outcomes.append(outcome)
    assert VICTIM in store.snapshots.live_models()
    assert not [c for o in outcomes for c in o.changes
                if isinstance(c, ModelAdded | ModelRemoved)]


async def test_an_entry_without_an_id_is_set_aside_too(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, baseline: UnitOfWork) -> None:
    payload = json.loads(catalog_bytes(BEFORE))
    payload["data"].append({"name": "no id", "pricing": {"prompt": "1"}})
    payload["data"].append({"id": "bad\nid\x1b[31m", "name": "control characters"})
    fake_openrouter.serve("models", json.dumps(payload).encode())
    outcome, = await poll_catalog(client, baseline, T0 + timedelta(hours=1), DEFAULT_RULES)
    assert outcome.fault is None and outcome.changes == ()
    fault = baseline.snapshots.last_fault("catalog")
    assert fault is not None
    assert fault.message == ("2 catalog entries set aside, the rest used: entry #343: id is "
                             "missing or not a short printable string; entry #344: id is "
                             "missing or not a short printable string")


async def test_more_than_a_tenth_of_bad_entries_faults_the_whole_catalog(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, baseline: UnitOfWork) -> None:
    payload = json.loads(catalog_bytes(AFTER))
    bad = len(payload["data"]) // 10 + 1
    for entry in payload["data"][:bad]:
        entry["pricing"] = None if entry is payload["data"][0] else "broken"
        entry["context_length"] = -1
    fake_openrouter.serve("models", json.dumps(payload).encode())
    outcome, = await poll_catalog(client, baseline, T0 + timedelta(hours=1), DEFAULT_RULES)
    assert outcome.fault is not None and outcome.fault.kind == "unparsable"
    assert str(outcome.fault).startswith(f"{bad} of {len(payload['data'])} catalog entries are "
                                         "malformed (more than 10%)")
    assert baseline.snapshots.counts()["catalog_fetches"] == 1  # nothing of it stored


BAD_ROWS = {
    "a 128 KB field": "2026-10-07,{},1,100,0.1".format("x" * 131_073),
    "a 100 KB slug": "2026-10-07,{},1,100,0.1".format("a/" + "x" * 100_000),
    "tokens of 1e30": "2026-10-07,evil/model,1,1e30,0.1",
    "tokens of 10**30": f"2026-10-07,evil/model,1,{10**30},0.1",
    "a share of 7": "2026-10-07,evil/model,1,100,7",
    "a rank of -3": "2026-10-07,evil/model,-3,100,0.1",
    "a date that is none": "2026-13-45,evil/model,1,100,0.1",
    "a date that has not come": "2099-01-01,evil/model,1,100,0.1",
}


@pytest.mark.parametrize("row", BAD_ROWS.values(), ids=BAD_ROWS.keys())
async def test_one_bad_rankings_row_is_set_aside_and_the_rest_stored(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, store: UnitOfWork,
        row: str) -> None:
    serve_export(fake_openrouter, rankings_csv("2026-09-30", "2026-10-01"))
    await poll_rankings(client, store, T0, DEFAULT_RULES)
    lines = rankings_csv().decode().splitlines()
    body = "\n".join([*lines[:-1], row, lines[-1]]).encode()
    serve_export(fake_openrouter, body)
    outcome, = await poll_rankings(client, store, T0 + timedelta(hours=1), DEFAULT_RULES)
    assert outcome.fault is None and outcome.changes  # the week's news is told
    assert store.snapshots.counts()["rankings"] == len(lines) - 1
    totals = store.snapshots.token_totals(T0.date() - timedelta(days=9), T0.date())
    assert "evil/model" not in totals
    fault = store.snapshots.last_fault("rankings")
    assert fault is not None and fault.kind == "bad_entries"
    assert fault.message.startswith("1 rankings row set aside, the rest used: line "
                                    f"{len(lines)}: ")
    assert len(fault.message) < 300


async def test_a_failure_storing_one_source_keeps_the_other_and_is_a_recorded_fault(
        fake_openrouter: FakeOpenRouter, client: OpenRouterClient, store: UnitOfWork,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    fake_openrouter.serve("models", catalog_bytes(BEFORE))
    serve_export(fake_openrouter, rankings_csv())

    def broken(*args: object) -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(store.snapshots, "save_catalog", broken)
    with caplog.at_level(logging.WARNING):
        outcomes = await poll_all(client, store, T0, DEFAULT_RULES)
    catalog, rankings = outcomes
    assert catalog.fault is not None and catalog.fault.kind == "internal"
    assert str(catalog.fault) == ("catalog could not be processed (OverflowError); the log file "
                                  "has the details")
    assert rankings.fault is None and store.snapshots.latest_ranking_date() is not None
    assert store.snapshots.counts()["catalog_fetches"] == 0
    fault = store.snapshots.last_fault("catalog")
    assert fault is not None and fault.kind == "internal"
    logged, = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert logged.exc_info is not None  # the traceback goes to the log file
    assert isinstance(logged.exc_info[1].__cause__, OverflowError)


async def test_a_fetch_that_fails_unexpectedly_is_a_fault_not_a_crash(
        store: UnitOfWork, fake_openrouter: FakeOpenRouter, client: OpenRouterClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    serve_export(fake_openrouter, rankings_csv())

    async def broken() -> bytes:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "a bug in an adapter")

    monkeypatch.setattr(client, "fetch_catalog", broken)
    catalog, rankings = await poll_all(client, store, T0, DEFAULT_RULES)
    assert catalog.fault is not None and catalog.fault.kind == "internal"
    assert rankings.fault is None


def test_every_entry_of_the_real_fixtures_is_accepted() -> None:
    from rankbot.bot.catalog import parse_catalog  # noqa: PLC0415 - the one test that needs it
    for stamp in (BEFORE, AFTER, "2026-08-22T183539Z"):
        catalog = parse_catalog(catalog_bytes(stamp))
        assert catalog.rejected == () and len(catalog.models) == len(raw_models(stamp))
    assert Decimal(1)  # prices stay exact decimals: see test_catalog
