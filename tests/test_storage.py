"""The SQLite repository: migrations, model history by content hash, rankings upserts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from rankbot.bot.catalog import parse_catalog
from rankbot.bot.diff import catalog_delta
from rankbot.bot.faults import SourceFault
from rankbot.bot.rankings import DailyRank
from rankbot.storage import Repository
from rankbot.storage.migrations import migrations
from tests.conftest import catalog_bytes

T1 = datetime(2026, 7, 20, 19, 48, 13, tzinfo=UTC)
T2 = datetime(2026, 7, 21, 19, 48, 13, tzinfo=UTC)
DAY = date(2026, 10, 7)


def save(store: Repository, stamp: str, at: datetime) -> None:
    catalog = parse_catalog(catalog_bytes(stamp))
    known, vanished = store.catalog_state()
    store.save_catalog(at, stamp, catalog, catalog_delta(known, vanished, catalog.models))


def test_a_file_database_uses_wal_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "rankbot.db"
    Repository.open(path).close()
    store = Repository.open(path)  # a second open applies nothing new
    assert store.db.journal_mode == "wal"
    assert [m.name for m in migrations.applied(store.db)] == [
        "m001_snapshots", "m002_history_indexes", "m003_channels", "m004_outbox_claims",
        "m005_outbox_claim_owner", "m006_chat_connections", "m007_feed_entries",
        "m008_compact_history", "m009_typed_rules"]
    store.close()


def test_an_unchanged_model_adds_no_row(store: Repository) -> None:
    save(store, "2026-07-13T144438Z", T1)
    first = store.counts()["model_versions"]
    save(store, "2026-07-13T144438Z", T2)  # same models, new fetch
    assert store.counts()["model_versions"] == first == 343
    assert store.counts()["catalog_fetches"] == 2


def test_model_history_keeps_each_version_with_its_time_span(store: Repository) -> None:
    save(store, "2026-07-14T025033Z", T1)
    save(store, "2026-07-20T194813Z", T2)
    changed = next(i for i in store.live_models() if len(store.model_history(i)) == 2)
    old, new = store.model_history(changed)
    assert (old.status, old.since, old.until) == ("replaced", T1, T2)
    assert (new.status, new.since, new.until) == ("live", T2, None)


def test_vanished_then_removed_then_listed_in_history(store: Repository) -> None:
    save(store, "2026-07-28T193833Z", T1)
    save(store, "2026-07-31T194018Z", T2)
    known, vanished = store.catalog_state()
    assert "anthropic/claude-opus-5:batch" in vanished and len(known) == 336
    (version,) = store.model_history("anthropic/claude-opus-5:batch")
    assert (version.status, version.until) == ("vanished", T2)


def test_rankings_upsert_newest_fetch_wins(store: Repository) -> None:
    first = [DailyRank(DAY, "a/x", 1, 100, 0.5)]
    revised = [DailyRank(DAY, "a/x", 1, 120, 0.55)]
    store.save_rankings(T1, "sha1", "export", first)
    store.save_rankings(T2, "sha2", "export", revised)
    store.save_rankings(T1, "sha0", "import", first)  # an older file replayed later
    assert store.ranking_history("a/x") == revised
    assert store.token_totals(DAY, DAY) == {"a/x": 120}
    assert store.counts()["ranking_fetches"] == 3


def test_window_totals_sum_the_days_inside_only(store: Repository) -> None:
    day1, day2, day3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)
    store.save_rankings(T1, "sha", "export", [
        DailyRank(day1, "a/x", 1, 5, 0.5), DailyRank(day2, "a/x", 1, 7, 0.5),
        DailyRank(day3, "a/x", 2, 11, 0.3), DailyRank(day3, "b/y", 1, 13, 0.4),
        DailyRank(day3, "other", None, 1, 0.1)])
    assert store.token_totals(day2, day3) == {"a/x": 18, "b/y": 13, "other": 1}
    assert store.daily_ranks("a/x", day1, day2) == {day1: 1, day2: 1}


def test_faults_are_recorded_per_source(store: Repository) -> None:
    store.record_fault("catalog", T1, SourceFault("http", "first"))
    store.record_fault("catalog", T2, SourceFault("empty", "second"))
    fault = store.last_fault("catalog")
    assert fault is not None and (fault.at, fault.kind, fault.message) == (T2, "empty", "second")
    assert store.last_fault("rankings") is None
