"""The providers behind the polled models: their state now, and their terms over time.

`providers` holds a row per model and provider as of its model's last payload (uptime, latency
and throughput included: they move at every fetch, so only the latest is kept); a provider
missing once is `vanished`, missing twice it is deleted. `provider_versions` gets a row only
when a provider's name, prices, quantization, context or status changes, like model_versions,
so that 50 models polled hourly add next to nothing when nothing changes. `provider_models`
is the bookkeeping: each model's last payload (its sha256, when, whether it needed the key).
Writes need a unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlite_utils import Database

from rankbot.bot.changes import plain
from rankbot.bot.ports import StoredProviders
from rankbot.bot.providers import ModelProviders, Provider
from rankbot.storage.documents import DamagedDocument, Documents
from rankbot.storage.times import stamp, to_time
from rankbot.storage.transactions import require_work

COLUMNS = ("provider", "name", "prompt", "completion", "cache_read", "quantization",
           "context_length", "status", "uptime_5m", "uptime_30m", "uptime_1d",
           "latency_p50", "latency_p75", "latency_p90", "latency_p99",
           "throughput_p50", "throughput_p75", "throughput_p90", "throughput_p99")
TERMS = ("name", "prompt", "completion", "cache_read", "quantization", "context_length",
         "status")


@dataclass(frozen=True, slots=True)
class ProvidersSummary:
    """For `rankbot status`: how many models and providers, the newest fetch, and whether
    OpenRouter asked for the key."""

    models: int
    providers: int
    last: datetime | None
    keyed: bool


class ProviderRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reads -------------------------------------------------------------------------------

    def stored_providers(self, model_id: str) -> StoredProviders | None:
        row = self.db.execute("SELECT fetched_at, sha256 FROM provider_models WHERE model_id = ?",
                              [model_id]).fetchone()
        if row is None:
            return None
        live: list[Provider] = []
        vanished: list[Provider] = []
        for state, provider in self._providers("model_id = ?", [model_id]):
            (live if state == "live" else vanished).append(provider)
        return StoredProviders(ModelProviders(tuple(live), tuple(vanished)), to_time(row[0]),
                               row[1])

    def listings(self, model_ids: Sequence[str]
                 ) -> dict[str, tuple[datetime, tuple[Provider, ...]]]:
        """Each model's providers in its last payload, and when that was fetched; models
        never fetched are left out."""
        found: dict[str, tuple[datetime, tuple[Provider, ...]]] = {}
        for model_id in model_ids:
            row = self.db.execute("SELECT fetched_at FROM provider_models WHERE model_id = ?",
                                  [model_id]).fetchone()
            if row is not None:
                found[model_id] = (to_time(row[0]), tuple(
                    p for state, p in self._providers("model_id = ? AND state = 'live'",
                                                      [model_id])))
        return found

    def summary(self) -> ProvidersSummary:
        models, last, keyed = self.db.execute(
            "SELECT COUNT(*), MAX(fetched_at), MAX(keyed) FROM provider_models").fetchone()
        count = self.db.execute("SELECT COUNT(*) FROM providers WHERE state = 'live'"
                                ).fetchone()[0]
        return ProvidersSummary(models, count, to_time(last) if last else None, bool(keyed))

    def endpoint_details(self, model_ids: Sequence[str]) -> Mapping[str, str | None]:
        fetch = self.db.execute("SELECT MAX(id) FROM catalog_fetches").fetchone()[0]
        documents = Documents(self.db)
        details: dict[str, str | None] = {}
        for model_id in model_ids:
            try:
                entry = documents.read([model_id], fetch)[model_id] if fetch else {}
            except DamagedDocument:
                entry = {}
            links = entry.get("links")
            found = links.get("details") if isinstance(links, dict) else None
            details[model_id] = found if isinstance(found, str) else None
        return details

    def _providers(self, where: str, params: list[Any]) -> list[tuple[str, Provider]]:
        rows = self.db.execute(f"SELECT state, {', '.join(COLUMNS)} FROM providers "
                               f"WHERE {where} ORDER BY place", params).fetchall()
        return [(row[0], _provider(row[1:])) for row in rows]

    # -- writes ------------------------------------------------------------------------------

    def save_providers(self, model_id: str, at: datetime, sha256: str, keyed: bool,
                       state: ModelProviders) -> None:
        require_work(self.db)
        when = stamp(at)
        self.db.execute(
            "INSERT INTO provider_models (model_id, first_fetched, fetched_at, sha256, keyed, "
            "provider_count) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET "
            "fetched_at = excluded.fetched_at, sha256 = excluded.sha256, "
            "keyed = excluded.keyed, provider_count = excluded.provider_count",
            [model_id, when, when, sha256, int(keyed), len(state.live)])
        kept = [p.key for p in (*state.live, *state.vanished)]
        gone = [key for (key,) in self.db.execute(
            "SELECT provider FROM providers WHERE model_id = ?", [model_id]).fetchall()
            if key not in kept]
        for key in gone:
            self.db.execute("DELETE FROM providers WHERE model_id = ? AND provider = ?",
                            [model_id, key])
            self._close_version(model_id, key, when)
        for place, provider in enumerate(state.live):
            self._upsert(model_id, provider, "live", place, when)
            self._version(model_id, provider, when)
        self.db.execute(
            f"UPDATE providers SET state = 'vanished' WHERE model_id = ? AND provider IN "
            f"({', '.join('?' * len(state.vanished))})",
            [model_id, *(p.key for p in state.vanished)])

    def confirm_providers(self, model_id: str, at: datetime, keyed: bool) -> None:
        require_work(self.db)
        self.db.execute("UPDATE provider_models SET fetched_at = ?, keyed = ? WHERE model_id = ?",
                        [stamp(at), int(keyed), model_id])

    def _upsert(self, model_id: str, provider: Provider, state: str, place: int,
                when: str) -> None:
        values = _row(provider)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        self.db.execute(
            f"INSERT INTO providers (model_id, state, place, since, fetched_at, "
            f"{', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(COLUMNS))}) "
            f"ON CONFLICT (model_id, provider) DO UPDATE SET state = excluded.state, "
            f"place = excluded.place, fetched_at = excluded.fetched_at, {updates}",
            [model_id, state, place, when, when, *values])

    def _version(self, model_id: str, provider: Provider, when: str) -> None:
        """A new version row when the provider's terms differ from its current one."""
        terms = dict(zip(COLUMNS, _row(provider), strict=True))
        current = self.db.execute(
            f"SELECT id, {', '.join(TERMS)} FROM provider_versions WHERE model_id = ? "
            "AND provider = ? AND until IS NULL", [model_id, provider.key]).fetchone()
        if current is not None and list(current[1:]) == [terms[t] for t in TERMS]:
            return
        if current is not None:
            self.db.execute("UPDATE provider_versions SET until = ? WHERE id = ?",
                            [when, current[0]])
        self.db.execute(
            f"INSERT INTO provider_versions (model_id, provider, since, {', '.join(TERMS)}) "
            f"VALUES (?, ?, ?, {', '.join('?' * len(TERMS))})",
            [model_id, provider.key, when, *(terms[t] for t in TERMS)])

    def _close_version(self, model_id: str, key: str, when: str) -> None:
        self.db.execute("UPDATE provider_versions SET until = ? WHERE model_id = ? AND "
                        "provider = ? AND until IS NULL", [when, model_id, key])


def create_provider_tables(db: Database) -> None:
    """The tables, for migration m011_providers."""
    figures = {c: float for c in COLUMNS if c.startswith(("uptime", "latency", "throughput"))}
    db.table("provider_models").create(
        {"model_id": str, "first_fetched": str, "fetched_at": str, "sha256": str, "keyed": int,
         "provider_count": int}, pk="model_id", not_null={"fetched_at", "sha256"})
    db.table("providers").create(
        {"model_id": str, "provider": str, "state": str, "place": int, "name": str,
         "prompt": str, "completion": str, "cache_read": str, "quantization": str,
         "context_length": int, "status": int, **figures, "since": str, "fetched_at": str},
        pk=("model_id", "provider"), not_null={"state", "name", "since", "fetched_at"})
    db.table("provider_versions").create(
        {"id": int, "model_id": str, "provider": str, "since": str, "until": str,
         "name": str, "prompt": str, "completion": str, "cache_read": str,
         "quantization": str, "context_length": int, "status": int},
        pk="id", not_null={"model_id", "provider", "since", "name"})
    db.table("provider_versions").create_index(["model_id", "provider", "until"])


def _row(provider: Provider) -> tuple[Any, ...]:
    return (provider.key, provider.name, _text(provider.prompt), _text(provider.completion),
            _text(provider.cache_read), provider.quantization, provider.context_length,
            provider.status, provider.uptime_5m, provider.uptime_30m, provider.uptime_1d,
            *provider.latency, *provider.throughput)


def _provider(row: Sequence[Any]) -> Provider:
    (key, name, prompt, completion, cache_read, quantization, context, status, up5, up30,
     up1d, l50, l75, l90, l99, t50, t75, t90, t99) = row
    return Provider(key, name, _decimal(prompt), _decimal(completion), _decimal(cache_read),
                    quantization, context, status, up5, up30, up1d, (l50, l75, l90, l99),
                    (t50, t75, t90, t99))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
