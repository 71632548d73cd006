"""`datasette rankbot.db -m datasette.yaml`: rankbot's views, read through Datasette's own test
client, against what the real fixture catalogs and rankings export say; the metadata's source,
licence and hidden tables; and the views' life beside the migrations."""

from __future__ import annotations

import csv
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from datasette.app import Datasette
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from rankbot.storage import UnitOfWork
from rankbot.storage.migrations import migrations as schema
from rankbot.storage.views import VIEWS
from tests.conftest import RANKINGS_CSV, expected_price_moves, load, raw_models

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[1]
METADATA = yaml.safe_load((ROOT / "datasette.yaml").read_text())
# Three real catalogs six hours apart: 6 price moves, then 5, deepseek-v4-flash in both.
STAMPS = ("2026-08-22T064640Z", "2026-08-22T124646Z", "2026-08-22T183539Z")
# The tables a person browses; every other one is rankbot's bookkeeping and hidden.
BROWSED = {"catalog_fetches", "model_versions", "ranking_fetches", "rankings"}


def at(stamp: str) -> str:
    """A fixture's fetch time as the database keeps it."""
    when = datetime.strptime(stamp, "%Y-%m-%dT%H%M%SZ").replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def usd(per_token: str | None) -> float | None:
    """A raw catalog price (USD per token) as the views show it: USD per 1M, 6 decimals."""
    return None if per_token is None else float(round(Decimal(per_token) * 10**6, 6))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Named rankbot.db, as `databases: rankbot` in datasette.yaml expects.
    path = tmp_path_factory.mktemp("browse") / "rankbot.db"
    load(UnitOfWork.open(path), *STAMPS).close()
    return path


@pytest.fixture
def datasette(history: Path) -> Iterator[Datasette]:
    # Room for every row in one page (the default stops at 1,000).
    ds = Datasette([str(history)], metadata=METADATA, settings={"max_returned_rows": 5000})
    yield ds
    for db in ds.databases.values():
        db.close()


async def rows(ds: Datasette, path: str) -> list[dict[str, Any]]:
    response = await ds.client.get(path)
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def test_the_views_are_listed_and_the_bookkeeping_is_hidden(
        datasette: Datasette, history: Path) -> None:
    listing = (await datasette.client.get("/rankbot.json")).json()
    assert {view["name"] for view in listing["views"]} == set(VIEWS) == {
        "current_catalog", "price_history", "daily_rankings"}
    shown = {table["name"] for table in listing["tables"] if not table["hidden"]}
    hidden = {table["name"] for table in listing["tables"] if table["hidden"]}
    assert shown == BROWSED
    # Every table of the schema is in the listing, so one added by a migration must be named
    # in datasette.yaml: as hidden unless a person would browse it.
    with sqlite3.connect(history) as conn:
        tables = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert hidden == tables - BROWSED
    assert {"outbox", "memory", "audit", "subscriptions", "chat_connections", "feed_entries",
            "source_faults", "_sqlite_migrations"} <= hidden
    page = (await datasette.client.get("/rankbot")).text
    assert "current_catalog" in page and f"{len(hidden)} hidden tables" in page
    assert 'href="/rankbot/outbox"' not in page


async def test_the_metadata_gives_the_source_licence_and_units(datasette: Datasette) -> None:
    metadata = (await datasette.client.get("/-/metadata.json")).json()
    assert (metadata["source"], metadata["source_url"]) == (
        "OpenRouter", "https://openrouter.ai/rankings")
    assert (metadata["license"], metadata["license_url"]) == (
        "CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/")
    page = (await datasette.client.get("/rankbot/current_catalog")).text
    assert 'href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>' in page
    assert re.search(r'href="https://openrouter.ai/rankings">\s*OpenRouter</a>', page)
    assert "Input price, USD per 1M tokens" in page  # the column descriptions
    tables = METADATA["databases"]["rankbot"]["tables"]
    for view, columns in (("current_catalog", ("prompt", "completion", "cache_read")),
                          ("price_history", ("", "previous_"))):
        for column in columns:
            name = f"{column}_usd_per_1m" if view == "current_catalog" else f"{column}usd_per_1m"
            assert "USD per 1M tokens" in tables[view]["columns"][name]


async def test_the_current_catalog_is_the_newest_fetch_priced_per_1m(
        datasette: Datasette) -> None:
    raw = raw_models(STAMPS[-1])
    catalog = {row["model_id"]: row for row in await rows(
        datasette, "/rankbot/current_catalog.json?_shape=array&_size=max")}
    assert catalog.keys() == raw.keys()
    for model_id, entry in raw.items():
        row, pricing = catalog[model_id], entry["pricing"]
        dynamic = pricing["prompt"] == "-1"  # a router: priced by the model it picks
        assert row["prompt_usd_per_1m"] == (None if dynamic else usd(pricing["prompt"]))
        assert row["completion_usd_per_1m"] == (None if dynamic else usd(pricing["completion"]))
        assert row["cache_read_usd_per_1m"] == usd(pricing.get("input_cache_read"))
        assert (row["name"], row["canonical_slug"], row["context_length"]) == (
            entry["name"], entry["canonical_slug"], entry["context_length"])
        assert row["last_fetched"] == at(STAMPS[-1])
    first = {at(stamp): raw_models(stamp).keys() for stamp in STAMPS}
    for model_id, row in catalog.items():
        assert row["first_seen"] == min(when for when, ids in first.items() if model_id in ids)
    # Numbers, not text: a person sorts and filters them as such.
    flash = catalog["deepseek/deepseek-v4-flash"]
    assert (flash["prompt_usd_per_1m"], flash["completion_usd_per_1m"]) == (0.06006, 0.12012)
    cheap = await rows(datasette, "/rankbot/current_catalog.json?_shape=array&_size=max"
                                  "&prompt_usd_per_1m__lt=0.1&prompt_usd_per_1m__gt=0")
    assert {row["model_id"] for row in cheap} == {
        model_id for model_id, entry in raw.items()
        if entry["pricing"]["prompt"] != "-1" and 0 < Decimal(entry["pricing"]["prompt"]) * 10**6
        < Decimal("0.1")}


async def test_price_history_has_a_row_for_each_price_step(datasette: Datasette) -> None:
    history = await rows(datasette, "/rankbot/price_history.json?_shape=array&_size=max"
                                    "&previous_usd_per_1m__notblank=1")
    for old, new in pairwise(STAMPS):
        moves, went_free, went_paid = expected_price_moves(old, new, pct=0)
        assert moves and not went_free and not went_paid
        found = {(row["model_id"], row["side"], row["previous_usd_per_1m"], row["usd_per_1m"])
                 for row in history if row["since"] == at(new) and row["side"] != "cache_read"
                 and not row["model_id"].startswith("~")}
        assert found == {(model_id, side, float(a), float(b)) for model_id, side, a, b in moves}
    steps = await rows(datasette, "/rankbot/price_history.json?_shape=array"
                                  "&model_id=deepseek/deepseek-v4-flash&side=prompt")
    assert [(s["since"], s["until"], s["previous_usd_per_1m"], s["usd_per_1m"])
            for s in steps] == [
        (at(STAMPS[0]), at(STAMPS[1]), None, 0.07266),
        (at(STAMPS[1]), at(STAMPS[2]), 0.07266, 0.06426),
        (at(STAMPS[2]), None, 0.06426, 0.06006),
    ]
    # A model's first price is a step too: one per priced side of every model in the first fetch.
    firsts = await rows(datasette, f"/rankbot/price_history.json?_shape=array&_size=max"
                                   f"&since={at(STAMPS[0])}")
    assert len({(r["model_id"], r["side"]) for r in firsts}) == sum(
        (p["prompt"] != "-1") + (p["completion"] != "-1") + ("input_cache_read" in p)
        for p in (m["pricing"] for m in raw_models(STAMPS[0]).values()))


async def test_daily_rankings_have_each_days_shares_in_percent(datasette: Datasette) -> None:
    with RANKINGS_CSV.open(newline="") as file:
        export = list(csv.DictReader(file))
    ranked = await rows(datasette, "/rankbot/daily_rankings.json?_shape=array&_size=max")
    assert len(ranked) == len(export)
    days = {row["date"] for row in export}
    assert len(days) == 3
    for day in days:
        shares = [row["share_pct"] for row in ranked if row["date"] == day]
        assert sum(shares) == pytest.approx(100, abs=0.01)
    top = next(row for row in export if row["date"] == "2026-10-07" and row["rank"] == "1")
    assert ranked[0] == {
        "date": "2026-10-07", "rank": 1, "permaslug": top["model_permaslug"], "name": None,
        "tokens": int(top["total_tokens"]),
        "share_pct": round(float(top["share_of_daily_tokens"]) * 100, 4)}
    other = await rows(datasette, "/rankbot/daily_rankings.json?_shape=array&permaslug=other")
    assert [row["rank"] for row in other] == [None] * 3


# -- the views beside the migrations ----------------------------------------------------------

def views_in(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='view'")}
    conn.close()
    return names


def test_an_open_that_finds_the_views_current_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "rankbot.db"
    UnitOfWork.open(path).close()
    assert views_in(path) == set(VIEWS)
    # As a file this user may not write: every write would fail.
    UnitOfWork(Database(sqlite3.connect(f"file:{path}?mode=ro", uri=True))).close()


def test_a_read_only_open_never_makes_the_views(tmp_path: Path) -> None:
    path = tmp_path / "rankbot.db"
    UnitOfWork.open(path).close()
    with sqlite3.connect(path) as conn:  # as a database from before the views
        for name in VIEWS:
            conn.execute(f"DROP VIEW {name}")
    conn.close()
    UnitOfWork.open(path, read_only=True).close()
    assert views_in(path) == set()
    UnitOfWork.open(path).close()
    assert views_in(path) == set(VIEWS)


def test_a_changed_view_is_replaced_at_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "rankbot.db"
    UnitOfWork.open(path).close()
    with sqlite3.connect(path) as conn:  # as one an older rankbot made
        conn.execute("DROP VIEW current_catalog")
        conn.execute("CREATE VIEW current_catalog AS SELECT 1 AS old")
    conn.close()
    store = UnitOfWork.open(path)
    assert "prompt_usd_per_1m" in store.db["current_catalog"].columns_dict
    store.close()


def test_a_migration_runs_without_the_views_and_they_come_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration that rebuilds a table the views read (sqlite-utils' transform: a new table,
    the old one dropped, the new one renamed) finds no view in its way; SQLite refuses some
    ALTER TABLEs while a view names a column that is gone."""
    path = tmp_path / "rankbot.db"
    load(UnitOfWork.open(path), STAMPS[-1], rankings=False).close()
    seen: list[set[str]] = []

    def rebuild(db: Database) -> None:
        seen.append(set(db.view_names()))
        db["model_versions"].transform(rename={"name": "title"})
        db.execute("ALTER TABLE model_versions RENAME COLUMN title TO name")

    later = Migrations("rankbot")  # this rankbot's migrations, and one more
    for migration in schema._migrations:
        later(name=migration.name)(migration.fn)
    later(name="m999_rebuild")(rebuild)
    monkeypatch.setattr("rankbot.storage.migrations.migrations", later)
    store = UnitOfWork.open(path)
    assert seen == [set()]
    assert views_in(path) == set(VIEWS)
    assert store.db.execute("SELECT COUNT(*) FROM current_catalog").fetchone()[0] == 421
    store.close()
