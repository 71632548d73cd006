"""Snapshots: the catalog's versions, the daily rankings and the sources' faults."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from sqlite_utils import Database

from rankbot.bot.catalog import Catalog, Model, content_hash, parse_model
from rankbot.bot.diff import CatalogDelta
from rankbot.bot.exports import Listed
from rankbot.bot.faults import BadEntry, SourceFault
from rankbot.bot.ports import FaultRecord, FetchRecord, RankingsOrigin, Source
from rankbot.bot.providers import Provider
from rankbot.bot.rankings import DailyRank
from rankbot.storage.documents import READ_COLUMNS, Documents, every_document, serialize
from rankbot.storage.providers import ProviderRecords
from rankbot.storage.times import stamp, to_time
from rankbot.storage.transactions import require_work

MODEL_COLUMNS = ("model_id", "name", "canonical_slug", "context_length", "prompt", "completion",
                 "cache_read", "dynamic_price", "hugging_face_id", "alias_target", "content_hash",
                 "expiration_date", "prices", "benchmarks")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A model as it was between two catalog fetches (`until` None: still current)."""

    model: Model
    status: str
    since: datetime
    until: datetime | None



class Snapshots:
    """What OpenRouter said, fetch by fetch. Writes need a unit of work."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._live: Mapping[str, Model] | None = None
        self._live_version = 0
        self._documents = Documents(db)

    def forget(self) -> None:
        """Drop what is cached: a unit of work undone took its writes back."""
        self._live = None
        self._documents.forget()

    # -- catalog -----------------------------------------------------------------------------

    def last_catalog_fetch(self) -> FetchRecord | None:
        row = self._one("SELECT fetched_at, sha256, model_count FROM catalog_fetches "
                        "ORDER BY id DESC LIMIT 1")
        return FetchRecord(to_time(row[0]), row[1], row[2]) if row else None

    def catalog_state(self) -> tuple[dict[str, Model], dict[str, Model]]:
        known: dict[str, Model] = {}
        vanished: dict[str, Model] = {}
        for status, model in self._models("status IN ('live', 'vanished')"):
            (known if status == "live" else vanished)[model.id] = model
        return known, vanished

    def live_models(self) -> Mapping[str, Model]:
        """The current catalog; cached, since every answer reads it and only a poll changes it
        (this connection's, or another's: SQLite's data_version says so)."""
        version = self._one("PRAGMA data_version")[0]
        if self._live is None or version != self._live_version:
            self._live = MappingProxyType(
                {model.id: model for _, model in self._models("status = 'live'")})
            self._live_version = version
        return self._live

    def catalog_at(self, at: datetime) -> dict[str, Model]:
        """The models as they were after the last good fetch at or before `at`."""
        fetch = self._one("SELECT MAX(id) FROM catalog_fetches WHERE fetched_at <= ?",
                          [stamp(at)])[0]
        if fetch is None:
            return {}
        where = "from_fetch <= ? AND (until_fetch IS NULL OR until_fetch > ?)"
        return {model.id: model for _, model in self._models(where, [fetch, fetch])}

    def catalog_documents_at(self, at: datetime) -> list[dict[str, Any]] | None:
        """The catalog's entries exactly as served at the last fetch at or before `at`, in the
        order served (newest `created` first where that was not recorded); None if there is no
        such fetch. DamagedDocument names a model whose stored entry cannot be read."""
        fetch = self._one("SELECT MAX(id) FROM catalog_fetches WHERE fetched_at <= ?",
                          [stamp(at)])[0]
        if fetch is None:
            return None
        # The order served names every entry kept (a set-aside one too); the versions live
        # at the fetch are the same models, or more where that order was not recorded.
        order = self._documents.order_at(fetch)
        ids = list(dict.fromkeys([*order, *(i for (i,) in self.db.execute(
            "SELECT model_id FROM model_versions WHERE from_fetch <= ? "
            "AND (until_fetch IS NULL OR until_fetch > ?)", [fetch, fetch]).fetchall())]))
        entries = self._documents.read(ids, fetch)
        served = {model_id: place for place, model_id in enumerate(order)}
        return [entries[i] for i in sorted(ids, key=lambda i: (
            served.get(i, len(served)), -_created(entries[i]), i))]

    def catalog_change_times(self, start: datetime, end: datetime) -> list[datetime]:
        """Times of the fetches in start..end where any model changed, appeared or vanished."""
        rows = self.db.execute(
            "SELECT fetched_at FROM catalog_fetches f WHERE fetched_at > ? AND fetched_at <= ? "
            "AND EXISTS (SELECT 1 FROM model_versions v WHERE v.from_fetch = f.id "
            "OR v.until_fetch = f.id) ORDER BY id", [stamp(start), stamp(end)]).fetchall()
        return [to_time(at) for (at,) in rows]

    def models_first_seen(self) -> dict[str, datetime]:
        """When each model first appeared, for models added after the first (baseline) fetch."""
        rows = self.db.execute(
            "SELECT v.model_id, MIN(f.fetched_at) FROM model_versions v "
            "JOIN catalog_fetches f ON f.id = v.from_fetch GROUP BY v.model_id "
            "HAVING MIN(v.from_fetch) > (SELECT MIN(id) FROM catalog_fetches)").fetchall()
        return {model_id: to_time(stamp) for model_id, stamp in rows}

    def confirm_catalog(self, at: datetime, sha256: str, count: int) -> int:
        require_work(self.db)
        return self._insert_fetch("catalog_fetches", at, sha256, model_count=count)

    def save_catalog(self, at: datetime, sha256: str, catalog: Catalog,
                     delta: CatalogDelta) -> int:
        require_work(self.db)
        self._live = None
        fetch = self._insert_fetch("catalog_fetches", at, sha256,
                                   model_count=len(catalog.models))
        # A version row only when something rankbot reads changed; otherwise the live row
        # takes the new content hash (parse_catalog reuses a model by it).
        moved = [new for old, new in delta.changed if _read(old) != _read(new)]
        moved_ids = {m.id for m in moved}
        self.db.conn.executemany(
            "UPDATE model_versions SET content_hash = ? WHERE model_id = ? AND status = 'live'",
            [(new.content_hash, new.id) for _, new in delta.changed if new.id not in moved_ids])
        self._set_status((m.id for m in moved), "live", "replaced", fetch)
        self._set_status((new.id for _, new in delta.returned), "vanished", "replaced")
        self._set_status((m.id for m in delta.vanished), "live", "vanished", fetch)
        self._set_status((m.id for m in delta.removed), "vanished", "removed")
        fresh = (*delta.added, *moved, *(new for _, new in delta.returned))
        self.db.table("model_versions").insert_all(_version_row(m, fetch) for m in fresh)
        # A model whose entry the last catalog stored set aside, good again: its document is
        # stored even when it is the same as its version's (no change in the delta).
        served = {m.id: m for m in (*delta.added,
                                    *(new for _, new in (*delta.changed, *delta.returned)))}
        fixed = self._documents.set_aside_last() & catalog.models.keys()
        self._documents.write(fetch, ((i, serialize(catalog.entries[i]))
                                      for i in (*served, *sorted(fixed - served.keys()))))
        set_aside = self._keep_set_aside(fetch, catalog)
        self._documents.write_order(fetch, [i for i in catalog.raw if i in catalog.models
                                            or i in set_aside], set_aside)
        return fetch

    def _keep_set_aside(self, fetch: int, catalog: Catalog) -> set[str]:
        """The entries set aside as malformed whose id is valid, as served, so that a catalog
        comes back exactly (the model's last good version stays in use). Returns their ids,
        but for one nested past what json can write, which is not kept."""
        documents: list[tuple[str, bytes]] = []
        for model_id in sorted(catalog.held & catalog.raw.keys()):
            try:
                documents.append((model_id, serialize(catalog.raw[model_id])))
            except (ValueError, RecursionError):
                continue
        self._documents.write(fetch, documents, unless_same=True)
        return {model_id for model_id, _ in documents}

    def model_history(self, model_id: str) -> list[ModelVersion]:
        """Every stored version of one model, oldest first."""
        sql = (f"SELECT v.status, {', '.join('v.' + c for c in MODEL_COLUMNS)}, "
               "f.fetched_at, u.fetched_at FROM model_versions v "
               "JOIN catalog_fetches f ON f.id = v.from_fetch "
               "LEFT JOIN catalog_fetches u ON u.id = v.until_fetch "
               "WHERE v.model_id = ? ORDER BY v.from_fetch")
        return [ModelVersion(model_from_row(row[1:-2]), row[0], to_time(row[-2]),
                             to_time(row[-1]) if row[-1] else None)
                for row in self.db.execute(sql, [model_id]).fetchall()]

    def listed_history(self, model_id: str) -> list[Listed]:
        """Every stored version of one model, oldest first, as the price steps take them."""
        return [Listed(v.model, v.since, v.until) for v in self.model_history(model_id)]

    def _models(self, where: str, params: list[int] | None = None
                ) -> Iterator[tuple[str, Model]]:
        sql = f"SELECT status, {', '.join(MODEL_COLUMNS)} FROM model_versions WHERE {where}"
        for row in self.db.execute(sql, params or []).fetchall():
            yield row[0], model_from_row(row[1:])

    def _set_status(self, ids: Iterable[str], current: str, status: str,
                    until: int | None = None) -> None:
        self.db.conn.executemany(
            "UPDATE model_versions SET status = ?, until_fetch = COALESCE(?, until_fetch) "
            "WHERE model_id = ? AND status = ?", [(status, until, i, current) for i in ids])

    # -- rankings ----------------------------------------------------------------------------

    def last_rankings_fetch(self) -> FetchRecord | None:
        row = self._one("SELECT fetched_at, sha256, row_count FROM ranking_fetches "
                        "ORDER BY id DESC LIMIT 1")
        return FetchRecord(to_time(row[0]), row[1], row[2]) if row else None

    def ranking_dates(self) -> set[date]:
        return {date.fromisoformat(d) for (d,) in
                self.db.execute("SELECT DISTINCT date FROM rankings").fetchall()}

    def latest_ranking_date(self) -> date | None:
        row = self._one("SELECT MAX(date) FROM rankings")
        return date.fromisoformat(row[0]) if row and row[0] else None

    def provider_listings(self, model_ids: Sequence[str]
                          ) -> dict[str, tuple[datetime, tuple[Provider, ...]]]:
        """For `/providers`: storage/providers.py reads them."""
        return ProviderRecords(self.db).listings(model_ids)

    def first_ranked(self, top: int = 50) -> dict[str, date]:
        """The first day each model was ranked in the top `top`, for models first ranked after
        the first stored day (those of the first day were there before we looked)."""
        rows = self.db.execute(
            "SELECT permaslug, MIN(date) FROM rankings WHERE rank <= ? GROUP BY permaslug "
            "HAVING MIN(date) > (SELECT MIN(date) FROM rankings)", [top]).fetchall()
        return {slug: date.fromisoformat(day) for slug, day in rows}

    def ranking_history(self, permaslug: str) -> list[DailyRank]:
        """One model's daily usage, oldest first."""
        rows = self.db.execute("SELECT date, permaslug, rank, tokens, share FROM rankings "
                               "WHERE permaslug = ? ORDER BY date", [permaslug]).fetchall()
        return [DailyRank(date.fromisoformat(d), slug, rank, tokens, share)
                for d, slug, rank, tokens, share in rows]

    def token_totals(self, start: date, end: date) -> dict[str, int]:
        """Each model's tokens summed over the days `start`..`end`: a window's leaderboard."""
        return dict(self.db.execute(
            "SELECT permaslug, SUM(tokens) FROM rankings WHERE date BETWEEN ? AND ? "
            "GROUP BY permaslug", [start.isoformat(), end.isoformat()]).fetchall())

    def daily_ranks(self, permaslug: str, start: date, end: date) -> dict[date, int | None]:
        rows = self.db.execute(
            "SELECT date, rank FROM rankings WHERE permaslug = ? AND date BETWEEN ? AND ?",
            [permaslug, start.isoformat(), end.isoformat()]).fetchall()
        return {date.fromisoformat(day): rank for day, rank in rows}

    def confirm_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                         count: int) -> None:
        require_work(self.db)
        self._insert_fetch("ranking_fetches", at, sha256, origin=origin, row_count=count)

    def save_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                      rows: list[DailyRank]) -> int:
        require_work(self.db)
        fetch = self._insert_fetch("ranking_fetches", at, sha256, origin=origin,
                                   row_count=len(rows))
        # sqlite-utils' upsert cannot say "only if newer", which a replayed or imported older
        # export needs so that it never overwrites a later revision of the same day.
        self.db.conn.executemany(
            "INSERT INTO rankings (date, permaslug, rank, tokens, share, fetched_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (date, permaslug) DO UPDATE SET "
            "rank = excluded.rank, tokens = excluded.tokens, share = excluded.share, "
            "fetched_at = excluded.fetched_at WHERE excluded.fetched_at >= fetched_at",
            [(r.date.isoformat(), r.permaslug, r.rank, r.tokens, r.share, stamp(at))
             for r in rows])
        return fetch

    # -- faults -------------------------------------------------------------------

    def record_fault(self, source: Source, at: datetime, fault: SourceFault) -> None:
        require_work(self.db)
        self.db.table("source_faults").insert(
            {"source": source, "at": stamp(at), "kind": fault.kind, "message": fault.message})

    def last_fault(self, source: Source) -> FaultRecord | None:
        row = self._one("SELECT at, kind, message FROM source_faults WHERE source = ? "
                        "ORDER BY id DESC LIMIT 1", [source])
        return FaultRecord(to_time(row[0]), row[1], row[2]) if row else None

    def counts(self) -> dict[str, int]:
        """Row counts of the tables an operator asks about."""
        tables = ("catalog_fetches", "model_versions", "ranking_fetches", "rankings",
                  "source_faults")
        return {t: self.db.table(t).count for t in tables} | {
            "live_models": self._one("SELECT COUNT(*) FROM model_versions "
                                     "WHERE status = 'live'")[0],
            "ranking_days": self._one("SELECT COUNT(DISTINCT date) FROM rankings")[0],
        }

    # -- plumbing ----------------------------------------------------------------------------

    def _insert_fetch(self, table: str, at: datetime, sha256: str, **extra: Any) -> int:
        row = {"fetched_at": stamp(at), "sha256": sha256, **extra}
        last_pk = self.db.table(table).insert(row).last_pk
        assert isinstance(last_pk, int)
        return last_pk

    def _one(self, sql: str, params: list[str] | None = None) -> Any:
        return self.db.execute(sql, params or []).fetchone()


def _version_row(model: Model, fetch: int) -> dict[str, Any]:
    return {
        "model_id": model.id, "status": "live", "from_fetch": fetch, "until_fetch": None,
        "content_hash": model.content_hash, "name": model.name,
        "canonical_slug": model.canonical_slug, "context_length": model.context_length,
        "prompt": _text(model.prompt), "completion": _text(model.completion),
        "cache_read": _text(model.cache_read), "dynamic_price": int(model.dynamic_price),
        "hugging_face_id": model.hugging_face_id, "alias_target": model.alias_target,
        **_more_columns(model),
    }


def _more_columns(model: Model) -> dict[str, str | None]:
    """The retirement date, every price and the quality indices: as text, JSON objects of
    exact decimals in the catalog's order."""
    return {"expiration_date": model.expiration_date.isoformat() if model.expiration_date
            else None,
            "prices": json.dumps({name: str(value) for name, value in model.prices}),
            "benchmarks": json.dumps({name: str(value) for name, value in model.benchmarks})}


def _read(model: Model) -> tuple[Any, ...]:
    """What rankbot reads of a version, as stored."""
    row = _version_row(model, 0)
    return tuple(row[column] for column in READ_COLUMNS)


def _created(entry: dict[str, Any]) -> float:
    created = entry.get("created")
    return created if isinstance(created, int | float) and not isinstance(created, bool) else 0


@lru_cache(maxsize=8192)  # each poll reads every live row back; most are as they were
def model_from_row(row: tuple[Any, ...]) -> Model:
    """A stored version row (MODEL_COLUMNS, in order) as the Model it holds."""
    (model_id, name, slug, context, prompt, completion, cache_read, dynamic, hf_id, alias,
     digest, expiration, prices, benchmarks) = row
    return Model(model_id, name, slug, context, _decimal(prompt), _decimal(completion),
                 _decimal(cache_read), bool(dynamic), hf_id, alias, digest,
                 date.fromisoformat(expiration) if expiration else None,
                 _named(prices), _named(benchmarks))


def _named(stored: str | None) -> tuple[tuple[str, Decimal], ...]:
    return tuple((name, Decimal(value)) for name, value in json.loads(stored or "{}").items())


def reread_versions(db: Database) -> None:
    """Migration m010: fill the columns rankbot now also reads (`_more_columns`) from each
    version's documents, and split a version where they changed within it: before, a change
    of those alone made no new version. Each part keeps the content hash of its last entry."""
    seen: dict[str, list[tuple[int, dict[str, str | None], str]]] = {}
    for model_id, fetch, document in every_document(db):
        entry = json.loads(document)
        try:
            more = _more_columns(parse_model(entry))
        except BadEntry:
            continue  # an entry today's checks refuse: the version keeps what came before
        seen.setdefault(model_id, []).append((fetch, more, content_hash(entry)))
    for stored in list(db.query("SELECT * FROM model_versions ORDER BY model_id, from_fetch")):
        version, start, until = dict(stored), stored["from_fetch"], stored["until_fetch"]
        documents = seen.get(version["model_id"], [])
        spans = [d for d in documents if d[0] >= start and (until is None or d[0] < until)]
        before = [d for d in documents if d[0] < start]
        candidates = [spans[0]] if spans and spans[0][0] == start else before[-1:] or spans[:1]
        first = candidates[0] if candidates else None
        current = first[1] if first else {}
        db.table("model_versions").update(version["id"], current)
        last_hash = first[2] if first else version["content_hash"]
        for fetch, more, digest in spans:
            if more != current:  # a version of its own from here on
                db.table("model_versions").update(version["id"], {
                    "until_fetch": fetch, "status": "replaced", "content_hash": last_hash})
                version = {**version, **more, "from_fetch": fetch}
                version["id"] = db.table("model_versions").insert(
                    {k: v for k, v in version.items() if k != "id"}).last_pk
                current = more
            last_hash = digest


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
