"""Ports: what the core needs from the outside world, as small Protocols."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from bot.cards import Card
from bot.catalog import Catalog, Model
from bot.diff import CatalogDelta
from bot.faults import SourceFault
from bot.rankings import DailyRank

Source = Literal["catalog", "rankings"]
RankingsOrigin = Literal["export", "latest", "keyed", "import"]


@dataclass(frozen=True, slots=True)
class RawRankings:
    """A rankings CSV as fetched, with the sha256 its manifest promised (None for `latest.csv`)."""

    body: bytes
    expected_sha256: str | None
    origin: RankingsOrigin


@dataclass(frozen=True, slots=True)
class FetchRecord:
    at: datetime
    sha256: str
    count: int


@dataclass(frozen=True, slots=True)
class FaultRecord:
    at: datetime
    kind: str
    message: str


class OpenRouterSource(Protocol):
    async def fetch_catalog(self) -> bytes: ...
    async def fetch_rankings(self) -> RawRankings: ...


class KeyedRankingsSource(Protocol):
    async def fetch_keyed_rankings(self, start: date, end: date) -> bytes: ...


class CatalogStore(Protocol):
    def last_catalog_fetch(self) -> FetchRecord | None: ...
    def catalog_state(self) -> tuple[dict[str, Model], dict[str, Model]]:
        """(live models, models that vanished from the last snapshot only), by id."""
        ...
    def confirm_catalog(self, at: datetime, sha256: str, count: int) -> None: ...
    def save_catalog(self, at: datetime, sha256: str, catalog: Catalog,
                     delta: CatalogDelta) -> None: ...


class RankingsStore(Protocol):
    def last_rankings_fetch(self) -> FetchRecord | None: ...
    def latest_ranking_date(self) -> date | None: ...
    def ranking_dates(self) -> set[date]: ...
    def token_totals(self, start: date, end: date) -> Mapping[str, int]: ...
    def confirm_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                         count: int) -> None: ...
    def save_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                      rows: list[DailyRank]) -> None: ...


class FaultLog(Protocol):
    def record_fault(self, source: Source, at: datetime, fault: SourceFault) -> None: ...


class Store(CatalogStore, RankingsStore, FaultLog, Protocol):
    """Everything a poll reads and writes; storage.Repository is the real one."""

    def live_models(self) -> Mapping[str, Model]: ...


class History(Protocol):
    """What answers and digests read: local data only, never a live OpenRouter call."""

    def last_catalog_fetch(self) -> FetchRecord | None: ...
    def latest_ranking_date(self) -> date | None: ...
    def token_totals(self, start: date, end: date) -> Mapping[str, int]: ...
    def daily_ranks(self, permaslug: str, start: date, end: date) -> Mapping[date, int | None]:
        ...
    def live_models(self) -> Mapping[str, Model]: ...
    def catalog_at(self, at: datetime) -> Mapping[str, Model]: ...
    def models_first_seen(self) -> Mapping[str, datetime]: ...
    def first_ranked(self, top: int = 50) -> Mapping[str, date]: ...


class Notifier(Protocol):
    async def send(self, card: Card) -> None: ...
