"""SQLite storage: the unit of work, migrations, model history by content hash, rankings
upserts."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from rankbot.bot.cards import Card
from rankbot.bot.catalog import parse_catalog
from rankbot.bot.channels import ChannelRef
from rankbot.bot.diff import catalog_delta
from rankbot.bot.faults import SourceFault
from rankbot.bot.rankings import DailyRank
from rankbot.storage import UnitOfWork
from rankbot.storage.migrations import migrations
from rankbot.storage.transactions import OutsideUnitOfWork
from tests.conftest import catalog_bytes

T1 = datetime(2026, 7, 20, 19, 48, 13, tzinfo=UTC)
T2 = datetime(2026, 7, 21, 19, 48, 13, tzinfo=UTC)
DAY = date(2026, 10, 7)
REF = ChannelRef("slack", "T1", "C1")


def save(store: UnitOfWork, stamp: str, at: datetime) -> None:
    catalog = parse_catalog(catalog_bytes(stamp))
    known, vanished = store.snapshots.catalog_state()
    with store:
        delta = catalog_delta(known, vanished, catalog.models)
        store.snapshots.save_catalog(at, stamp, catalog, delta)


def test_a_file_database_uses_wal_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "rankbot.db"
    UnitOfWork.open(path).close()
    store = UnitOfWork.open(path)  # a second open applies nothing new
    assert store.db.journal_mode == "wal"
    assert [m.name for m in migrations.applied(store.db)] == [
        "m001_snapshots", "m002_history_indexes", "m003_channels", "m004_outbox_claims",
        "m005_outbox_claim_owner", "m006_chat_connections", "m007_feed_entries",
        "m008_compact_history", "m009_typed_rules", "m010_every_price_sunsets_and_indices",
        "m011_providers", "m012_watches"]
    store.close()


def test_an_unchanged_model_adds_no_row(store: UnitOfWork) -> None:
    save(store, "2026-07-13T144438Z", T1)
    first = store.snapshots.counts()["model_versions"]
    save(store, "2026-07-13T144438Z", T2)  # same models, new fetch
    assert store.snapshots.counts()["model_versions"] == first == 343
    assert store.snapshots.counts()["catalog_fetches"] == 2


def test_model_history_keeps_each_version_with_its_time_span(store: UnitOfWork) -> None:
    save(store, "2026-07-14T025033Z", T1)
    save(store, "2026-07-20T194813Z", T2)
    snapshots = store.snapshots
    changed = next(i for i in snapshots.live_models() if len(snapshots.model_history(i)) == 2)
    old, new = store.snapshots.model_history(changed)
    assert (old.status, old.since, old.until) == ("replaced", T1, T2)
    assert (new.status, new.since, new.until) == ("live", T2, None)


def test_vanished_then_removed_then_listed_in_history(store: UnitOfWork) -> None:
    save(store, "2026-07-28T193833Z", T1)
    save(store, "2026-07-31T194018Z", T2)
    known, vanished = store.snapshots.catalog_state()
    assert "anthropic/claude-opus-5:batch" in vanished and len(known) == 336
    (version,) = store.snapshots.model_history("anthropic/claude-opus-5:batch")
    assert (version.status, version.until) == ("vanished", T2)


def test_rankings_upsert_newest_fetch_wins(store: UnitOfWork) -> None:
    first = [DailyRank(DAY, "a/x", 1, 100, 0.5)]
    revised = [DailyRank(DAY, "a/x", 1, 120, 0.55)]
    with store:
        store.snapshots.save_rankings(T1, "sha1", "export", first)
    with store:
        store.snapshots.save_rankings(T2, "sha2", "export", revised)
    with store:
        store.snapshots.save_rankings(T1, "sha0", "import", first)  # an older file replayed later
    assert store.snapshots.ranking_history("a/x") == revised
    assert store.snapshots.token_totals(DAY, DAY) == {"a/x": 120}
    assert store.snapshots.counts()["ranking_fetches"] == 3


def test_window_totals_sum_the_days_inside_only(store: UnitOfWork) -> None:
    day1, day2, day3 = date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)
    with store:
        store.snapshots.save_rankings(T1, "sha", "export", [
            DailyRank(day1, "a/x", 1, 5, 0.5), DailyRank(day2, "a/x", 1, 7, 0.5),
            DailyRank(day3, "a/x", 2, 11, 0.3), DailyRank(day3, "b/y", 1, 13, 0.4),
            DailyRank(day3, "other", None, 1, 0.1)])
    assert store.snapshots.token_totals(day2, day3) == {"a/x": 18, "b/y": 13, "other": 1}
    assert store.snapshots.daily_ranks("a/x", day1, day2) == {day1: 1, day2: 1}


def test_faults_are_recorded_per_source(store: UnitOfWork) -> None:
    with store:
        store.snapshots.record_fault("catalog", T1, SourceFault("http", "first"))
    with store:
        store.snapshots.record_fault("catalog", T2, SourceFault("empty", "second"))
    fault = store.snapshots.last_fault("catalog")
    assert fault is not None and (fault.at, fault.kind, fault.message) == (T2, "empty", "second")
    assert store.snapshots.last_fault("rankings") is None


def test_a_write_outside_a_unit_of_work_fails_and_leaves_no_transaction(store: UnitOfWork
                                                                          ) -> None:
    with pytest.raises(OutsideUnitOfWork):
        store.channels.subscribe(REF, "alerts", T1)
    with pytest.raises(OutsideUnitOfWork):
        store.snapshots.record_fault("catalog", T1, SourceFault("http", "boom"))
    assert not store.db.conn.in_transaction  # nothing left open to hold the write lock
    assert store.channels.subscription(REF) is None


def test_a_unit_of_work_keeps_all_or_nothing_and_a_nested_one_is_undone_alone(
        store: UnitOfWork) -> None:
    with pytest.raises(RuntimeError), store:
        store.channels.subscribe(REF, "alerts", T1)
        raise RuntimeError
    assert store.channels.subscription(REF) is None
    with store:
        subscription = store.channels.subscribe(REF, "alerts", T1)
        with pytest.raises(RuntimeError), store:
            store.outbox.enqueue(subscription, "k", kind="alert", card=Card("x"), changes=[],
                                 at=T1)
            raise RuntimeError
        assert not store.outbox.has_message(subscription, "k")
    assert store.channels.subscription(REF) == subscription
    assert store.outbox.outbox_counts() == {}


def test_a_commit_that_fails_takes_the_cached_catalog_with_it(
        store: UnitOfWork, monkeypatch: pytest.MonkeyPatch) -> None:
    save(store, "2026-07-14T025033Z", T1)
    before = dict(store.snapshots.live_models())
    execute = store.db.execute

    def failing(sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        return execute(sql, *args)
    monkeypatch.setattr(store.db, "execute", failing)
    catalog = parse_catalog(catalog_bytes("2026-07-20T194813Z"))
    known, vanished = store.snapshots.catalog_state()
    with pytest.raises(sqlite3.OperationalError), store:
        store.snapshots.save_catalog(T2, "x", catalog,
                                     catalog_delta(known, vanished, catalog.models))
        assert dict(store.snapshots.live_models()) != before  # read back into the cache
    monkeypatch.undo()
    assert dict(store.snapshots.live_models()) == before
    assert store.snapshots.last_catalog_fetch().at == T1  # type: ignore[union-attr]
