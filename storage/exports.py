"""Reads for `rankbot export`: the whole stored catalog history, in one pass each."""

from __future__ import annotations

from collections.abc import Iterator

from sqlite_utils import Database

from rankbot.bot.catalog import Model
from rankbot.bot.exports import Listed, StoredFetch
from rankbot.storage.snapshots import MODEL_COLUMNS, model_from_row
from rankbot.storage.times import to_time

COLUMNS = ", ".join(f"v.{column}" for column in MODEL_COLUMNS)


def has_catalog(db: Database) -> bool:
    return db.execute("SELECT 1 FROM catalog_fetches LIMIT 1").fetchone() is not None


def model_versions(db: Database) -> list[Listed]:
    """Every stored version of every model, with the times of the fetches it spans."""
    rows = db.execute(
        f"SELECT {COLUMNS}, f.fetched_at, u.fetched_at FROM model_versions v "
        "JOIN catalog_fetches f ON f.id = v.from_fetch "
        "LEFT JOIN catalog_fetches u ON u.id = v.until_fetch ORDER BY v.model_id, v.from_fetch")
    return [Listed(model_from_row(row[:-2]), to_time(row[-2]),
                   to_time(row[-1]) if row[-1] else None) for row in rows.fetchall()]


def stored_fetches(db: Database) -> Iterator[StoredFetch]:
    """Every stored catalog fetch in the order it was stored, with the versions it began and
    the ids of those it ended."""
    begun: dict[int, list[Model]] = {}
    for row in db.execute(f"SELECT v.from_fetch, {COLUMNS} FROM model_versions v "
                          "ORDER BY v.from_fetch, v.id").fetchall():
        begun.setdefault(row[0], []).append(model_from_row(row[1:]))
    ended: dict[int, list[str]] = {}
    for fetch, model_id in db.execute("SELECT until_fetch, model_id FROM model_versions "
                                      "WHERE until_fetch IS NOT NULL").fetchall():
        ended.setdefault(fetch, []).append(model_id)
    for fetch, at, sha256 in db.execute(
            "SELECT id, fetched_at, sha256 FROM catalog_fetches ORDER BY id").fetchall():
        yield StoredFetch(to_time(at), sha256, begun.get(fetch, ()), ended.get(fetch, ()))
