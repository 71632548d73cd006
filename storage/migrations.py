"""The schema, as sqlite-utils migrations: applied in order, each once, each in a transaction."""

from __future__ import annotations

import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from rankbot.bot.rules import rules_from_record, rules_to_record
from rankbot.storage.documents import compact_history, reclaim_space
from rankbot.storage.providers import create_provider_tables
from rankbot.storage.snapshots import reread_versions
from rankbot.storage.views import create_views, drop_views

migrations = Migrations("rankbot")


@migrations()
def m001_snapshots(db: Database) -> None:
    # Every good catalog fetch; an identical payload only adds this small row.
    db.table("catalog_fetches").create(
        {"id": int, "fetched_at": str, "sha256": str, "model_count": int}, pk="id"
    )
    # One row per version of a model: a new row only when its content hash changes.
    # status: live (in the last snapshot), vanished (missing once), removed (missing twice),
    # replaced (a newer version exists). from/until are catalog_fetches ids.
    db.table("model_versions").create(
        {
            "id": int, "model_id": str, "status": str, "from_fetch": int, "until_fetch": int,
            "content_hash": str, "name": str, "canonical_slug": str, "context_length": int,
            "prompt": str, "completion": str, "cache_read": str, "dynamic_price": int,
            "hugging_face_id": str, "alias_target": str, "document": str,
        },
        pk="id",
        not_null={"model_id", "status", "from_fetch", "content_hash", "document"},
        foreign_keys=[("from_fetch", "catalog_fetches", "id"),
                      ("until_fetch", "catalog_fetches", "id")],
    )
    db.table("model_versions").create_index(["model_id", "from_fetch"])
    db.table("model_versions").create_index(["status"])
    db.table("ranking_fetches").create(
        {"id": int, "fetched_at": str, "sha256": str, "origin": str, "row_count": int}, pk="id"
    )
    # Daily usage, one row per (date, permaslug); the newest fetch of a day wins.
    db.table("rankings").create(
        {"date": str, "permaslug": str, "rank": int, "tokens": int, "share": float,
         "fetched_at": str},
        pk=("date", "permaslug"),
        not_null={"tokens", "fetched_at"},
    )
    db.table("rankings").create_index(["permaslug", "date"])
    db.table("source_faults").create(
        {"id": int, "source": str, "at": str, "kind": str, "message": str}, pk="id"
    )
    db.table("source_faults").create_index(["source", "id"])


@migrations()
def m002_history_indexes(db: Database) -> None:
    # "The catalog as of a time" (answers, digests) finds the fetch, then the versions live in it.
    db.table("catalog_fetches").create_index(["fetched_at"])
    db.table("model_versions").create_index(["until_fetch"])


@migrations()
def m003_channels(db: Database) -> None:
    # A channel that gets alerts and/or digests, with its own rules (JSON of `set` values).
    db.table("subscriptions").create(
        {"id": int, "platform": str, "workspace": str, "channel": str, "mode": str,
         "active": int, "paused": str, "rules": str, "created_at": str, "updated_at": str},
        pk="id", not_null={"platform", "workspace", "channel", "mode", "active", "rules"},
    )
    db.table("subscriptions").create_index(["platform", "workspace", "channel"], unique=True)
    # What a channel was told that differs from the last snapshot (see bot/alerts.py).
    db.table("memory").create({"subscription": int, "key": str, "value": str},
                              pk=("subscription", "key"),
                              foreign_keys=[("subscription", "subscriptions", "id")])
    # Every message to every channel, written with the snapshot or digest run that caused it.
    db.table("outbox").create(
        {"id": int, "subscription": int, "key": str, "kind": str, "payload": str,
         "created_at": str, "not_before": str, "held": int, "status": str, "attempts": int,
         "last_error": str, "sent_at": str},
        pk="id", not_null={"subscription", "key", "payload", "status", "attempts"},
        foreign_keys=[("subscription", "subscriptions", "id")],
    )
    db.table("outbox").create_index(["subscription", "key"], unique=True)
    db.table("outbox").create_index(["status", "not_before"])
    db.table("model_versions").create_index(["from_fetch"])  # preview replays fetches
    db.table("audit").create(
        {"id": int, "at": str, "platform": str, "workspace": str, "channel": str, "who": str,
         "action": str, "setting": str, "old": str, "new": str}, pk="id")


@migrations()
def m004_outbox_claims(db: Database) -> None:
    # A worker claims a message just before sending it, so that two processes on one database
    # (`rankbot run` and a cron `rankbot poll`) never both send it.
    db.table("outbox").add_column("claimed_until", str)


@migrations()
def m005_outbox_claim_owner(db: Database) -> None:
    # Who holds a claim (host:pid:token), so that a restarted process takes back at once what a
    # killed one held; and when sending began, so that a send in doubt is looked for first.
    db.table("outbox").add_column("claimed_by", str)
    db.table("outbox").add_column("claimed_at", str)


@migrations()
def m006_chat_connections(db: Database) -> None:
    # Each chat connection's state (bot/connections.py), for `rankbot status` in another
    # process: one row per platform, replaced at every change.
    db.table("chat_connections").create(
        {"platform": str, "state": str, "since": str, "reconnects": str, "last_error": str,
         "last_error_at": str}, pk="platform", not_null={"state", "since", "reconnects"})


@migrations()
def m007_feed_entries(db: Database) -> None:
    # What /feed.atom and /feed.json list: each poll's changes under the default rules, written
    # with its snapshot, and one weekly digest a week (bot/feed.py). `fetch` names the fetch or
    # week an entry came from; with kind, model and detail (a price's side) it identifies the
    # entry, so that a feed reader never sees one twice.
    db.table("feed_entries").create(
        {"id": int, "fetch": str, "at": str, "kind": str, "model": str, "detail": str,
         "title": str, "text": str, "page": str, "credit": str, "data": str},
        pk="id", not_null={"fetch", "at", "kind", "model", "detail", "title", "text", "data"},
        defaults={"model": "", "detail": "", "text": "", "data": "{}"})
    db.table("feed_entries").create_index(["fetch", "kind", "model", "detail"], unique=True)
    db.table("feed_entries").create_index(["at"])  # a feed lists the newest


@migrations()
def m008_compact_history(db: Database) -> None:
    # Documents move to a compact store (storage/documents.py says why), and model_versions
    # keeps a row per change of what rankbot reads; `migrate` then gives the space back.
    compact_history(db)


@migrations()
def m009_typed_rules(db: Database) -> None:
    # Rules were stored as their `set` values and re-read with the `set` parser; now as typed,
    # versioned JSON (bot/rules.py). A row the old format cannot fully read stays as it is:
    # its channel keeps being skipped, and told why, until a `set` rewrites it.
    for sub_id, stored in db.execute("SELECT id, rules FROM subscriptions").fetchall():
        try:
            rules, unreadable = rules_from_record(json.loads(stored))
        except ValueError:
            continue
        if not unreadable:
            db.execute("UPDATE subscriptions SET rules = ? WHERE id = ?",
                       [json.dumps(rules_to_record(rules)), sub_id])


@migrations()
def m010_every_price_sunsets_and_indices(db: Database) -> None:
    # A model's retirement date, every price it publishes (cache, search, tiers, ...) and its
    # quality indices become columns rankbot reads; filled from the stored documents.
    for column in ("expiration_date", "prices", "benchmarks"):
        db.table("model_versions").add_column(column, str)
    reread_versions(db)


@migrations()
def m011_providers(db: Database) -> None:
    # The providers behind the polled models (storage/providers.py): their state as of each
    # model's last endpoints payload, and a version row per change of their terms.
    create_provider_tables(db)


@migrations()
def m012_watches(db: Database) -> None:
    # A person's watches (bot/watches.py): each model by its id and the name the rankings give
    # it, kept together so that a model gone from the catalog is still one watch.
    db.table("watches").create(
        {"subscription": int, "model": str, "slug": str, "added_at": str},
        pk=("subscription", "model"), foreign_keys=[("subscription", "subscriptions", "id")])


def migrate(db: Database) -> None:
    # The views (storage/views.py) read the tables: dropped before a migration, which may
    # rebuild one (SQLite refuses an ALTER TABLE while a view names a column that is gone),
    # and made again after.
    if migrations.pending(db):
        drop_views(db)
    compacting = "m008_compact_history" in {m.name for m in migrations.pending(db)}
    migrations.apply(db)
    if compacting:  # VACUUM cannot run inside the migration's transaction
        reclaim_space(db)
    create_views(db)
