"""`datasette rankbot.db -m datasette.yaml`: rankbot's views, read through Datasette's own test
client, against what the real fixture catalogs and rankings export say; the metadata's source,
licence and hidden tables; and the views' life beside the migrations."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from click.testing import CliRunner
from datasette.app import Datasette
from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from rankbot.bot.history import import_snapshot, time_from_name
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork
from rankbot.storage.migrations import migrations as schema
from rankbot.storage.views import VIEWS
from tests.conftest import FIXTURES, RANKINGS_CSV, expected_price_moves, load, raw_models

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[1]
METADATA = yaml.safe_load((ROOT / "datasette.yaml").read_text())
# Three real catalogs six hours apart: 6 price moves, then 5, deepseek-v4-flash in both.
STAMPS = ("2026-08-22T064640Z", "2026-08-22T124646Z", "2026-08-22T183539Z")
# The tables a person browses; every other one is rankbot's bookkeeping and hidden.
BROWSED = {"catalog_fetches", "model_versions", "ranking_fetches", "rankings", "providers",
           "provider_versions"}


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


async def test_the_views_are_listed_and_the_bookkeeping_cannot_be_read(
        datasette: Datasette, history: Path) -> None:
    listing = (await datasette.client.get("/rankbot.json")).json()
    assert {view["name"] for view in listing["views"]} == set(VIEWS) == {
        "current_catalog", "price_history", "daily_rankings"}
    assert {table["name"] for table in listing["tables"]} == BROWSED  # the others not even named
    with sqlite3.connect(history) as conn:
        tables = {name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    internal = tables - BROWSED
    assert {"outbox", "memory", "audit", "subscriptions", "chat_connections", "feed_entries",
            "source_faults", "model_documents", "model_keys", "catalog_orders",
            "_sqlite_migrations"} <= internal
    # Every table of the schema is named in datasette.yaml, so one a migration adds must be
    # either browsed (BROWSED) or denied to everyone there.
    configured = METADATA["databases"]["rankbot"]["tables"]
    assert {table for table in internal if configured.get(table, {}).get("allow") is False
            and configured[table].get("hidden") is True} == internal, "name it in datasette.yaml"
    for table in sorted(internal):
        for path in (f"/rankbot/{table}", f"/rankbot/{table}.json", f"/rankbot/{table}.csv",
                     f"/rankbot/{table}.json?_shape=array&_facet=rowid", f"/rankbot/{table}/1",
                     f"/rankbot/{table}/1.json"):
            response = await datasette.client.get(path)
            assert response.status_code == 403, (path, response.status_code)
    # No SQL of one's own, which could read any table (and needs no table's permission).
    for sql in ("select * from audit", "select * from outbox", "select 1",
                "select * from current_catalog"):
        for path in (f"/rankbot.json?sql={quote(sql)}", f"/rankbot?sql={quote(sql)}",
                     f"/rankbot/current_catalog.json?_where={quote('1 = 1')}"):
            assert (await datasette.client.get(path)).status_code == 403, path
    assert (await datasette.client.get("/rankbot.db")).status_code == 403  # no download
    # What a person browses: every view and table, with filters, sorting and facets.
    for name in (*VIEWS, *BROWSED):
        assert (await datasette.client.get(f"/rankbot/{name}.json")).status_code == 200, name
        assert (await datasette.client.get(f"/rankbot/{name}")).status_code == 200, name
    assert await rows(datasette, "/rankbot/price_history.json?_shape=array&_facet=side"
                                 "&side=prompt&_sort_desc=usd_per_1m&usd_per_1m__gt=1")
    page = (await datasette.client.get("/rankbot")).text
    assert "current_catalog" in page and "hidden tables" not in page
    assert 'href="/rankbot/outbox"' not in page and 'href="/rankbot/audit"' not in page


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
        moves, went_free, went_paid = expected_price_moves(
            old, new, pct=0, fields=lambda field: field in ("prompt", "completion"))
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


async def test_daily_rankings_name_every_ranked_model_that_is_listed_variants_too(
        datasette: Datasette) -> None:
    """The rankings name a model by its permaslug: the catalog's canonical slug, and its
    variant (`:free`) where the id has one; a `~` alias is another model's slug."""
    names: dict[str, str] = {}
    for model_id, entry in sorted(raw_models(STAMPS[-1]).items()):
        if not model_id.startswith("~"):
            slug = entry.get("canonical_slug") or model_id.split(":")[0]
            variant = model_id.partition(":")[2]
            permaslug = f"{slug}:{variant}" if variant else slug
            names[permaslug] = min(names.get(permaslug, entry["name"]), entry["name"])
    ranked = await rows(datasette, "/rankbot/daily_rankings.json?_shape=array&_size=max")
    assert {row["permaslug"]: row["name"] for row in ranked} == {
        row["permaslug"]: names.get(row["permaslug"]) for row in ranked}
    named = {row["permaslug"] for row in ranked if row["name"]}
    assert len({slug for slug in named if ":" in slug}) >= 5  # the :free ones among them
    assert len(named) == 32


# -- price steps around the times a model was not listed ------------------------------------

HISTORY = FIXTURES / "history" / "2026-08-13_2026-08-22.tar.xz"
RETURNING = ("z-ai/glm-5.2:free", "liquid/lfm-2.5-2.6b:free", "mancer/weaver")
REPRICED = "deepseek/deepseek-v4-flash"  # unlisted in catalogs 10 and 11, then dearer


@pytest.fixture(scope="module")
def gaps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The 40 real catalogs of the shared history, in which three models vanish and come back
    at the price they had; and one more that comes back at another price."""
    folder = tmp_path_factory.mktemp("gaps")
    with tarfile.open(HISTORY) as tar:
        tar.extractall(folder, filter="data")
    paths = sorted(folder.glob("*.json"))
    path = folder / "rankbot.db"
    store = UnitOfWork.open(path)
    for number, snapshot in enumerate(paths):
        catalog = json.loads(snapshot.read_bytes())
        if number in (10, 11):
            catalog["data"] = [m for m in catalog["data"] if m["id"] != REPRICED]
        for entry in catalog["data"]:
            if entry["id"] == REPRICED and number >= 12:
                entry["pricing"]["prompt"] = "0.000000123"
        when = time_from_name(snapshot.name)
        assert when is not None
        import_snapshot(store, snapshot.name, json.dumps(catalog).encode(), when, DEFAULT_RULES)
    store.close()
    return path, [at(p.name.removesuffix(".json")) for p in paths]


async def test_a_time_unlisted_ends_a_price_step_and_the_return_starts_one(
        gaps: tuple[Path, list[str]]) -> None:
    path, times = gaps
    ds = Datasette([str(path)], metadata=METADATA, settings={"max_returned_rows": 5000})
    try:
        history = await rows(ds, "/rankbot/price_history.json?_shape=array&_size=max")
    finally:
        for db in ds.databases.values():
            db.close()
    steps: dict[tuple[str, str], list[tuple[str, str | None, float | None]]] = {}
    for row in history:
        steps.setdefault((row["model_id"], row["side"]), []).append(
            (row["since"], row["until"], row["usd_per_1m"]))
    # Each of the three real ones: two steps at one price, the time unlisted between them.
    with sqlite3.connect(path) as conn:
        spans = conn.execute(
            "SELECT v.model_id, f.fetched_at, u.fetched_at FROM model_versions v "
            "JOIN catalog_fetches f ON f.id = v.from_fetch "
            "LEFT JOIN catalog_fetches u ON u.id = v.until_fetch ORDER BY v.from_fetch").fetchall()
    conn.close()
    for model in RETURNING:
        listed = [(since, until) for model_id, since, until in spans if model_id == model]
        gone = [(a[1], b[0]) for a, b in pairwise(listed) if a[1] != b[0]]
        assert len(gone) == 1, model  # vanished (first missing), came back
        prompt = steps[(model, "prompt")]
        assert [(since, until) for since, until, _ in prompt] == [
            (listed[0][0], gone[0][0]), (gone[0][1], None)], model
        assert prompt[0][2] == prompt[1][2]
    # The one that came back dearer: its price until it was first missing, then the new one.
    before, after = steps[(REPRICED, "prompt")][-2:]
    assert before[1] == times[10] and before[2] != 0.123
    assert after == (times[12], None, 0.123)

    # The same steps as `rankbot export prices`, for every model (to the view's 6 decimals).
    result = CliRunner().invoke(cli, ["export", "prices", "--format", "json"],
                                env={"RANKBOT_DB": str(path), "RANKBOT_LOG_FILE": ""})
    assert result.exit_code == 0, result.output
    sides = {"prompt": "prompt", "completion": "completion", "input_cache_read": "cache_read"}
    records = [json.loads(line, parse_float=Decimal) for line in result.stdout.splitlines()]
    exported = {(r["model"], sides[r["field"]], r["from"], r["until"], round(r["price"], 6))
                for r in records if r["field"] in sides}
    viewed = {(r["model_id"], r["side"], r["since"], r["until"],
               round(Decimal(str(r["usd_per_1m"])), 6))
              for r in history if r["usd_per_1m"] is not None}
    assert len(exported) > 1500
    assert viewed == exported


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
