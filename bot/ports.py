"""Ports: what the core needs from the outside world, as small Protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from rankbot.bot.cards import Card
from rankbot.bot.catalog import Catalog, Model
from rankbot.bot.channels import ChannelRef, Message, Subscription
from rankbot.bot.diff import CatalogDelta
from rankbot.bot.faults import SourceFault
from rankbot.bot.providers import ModelProviders, Provider
from rankbot.bot.rankings import DailyRank

if TYPE_CHECKING:  # charts read History: a cycle at run time
    from rankbot.bot.charts import Series, WeekSeries

T = TypeVar("T")
S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)
Source = Literal["catalog", "rankings", "providers"]
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


class Work(Protocol):
    """A unit of work: `with work:` is one transaction, committed when the block ends and
    undone if it raises; nested, a savepoint undone alone. Only it begins and commits."""

    def __enter__(self) -> object: ...
    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


# -- snapshots --------------------------------------------------------------------------------

class CatalogVersions(Protocol):
    def last_catalog_fetch(self) -> FetchRecord | None: ...
    def catalog_state(self) -> tuple[dict[str, Model], dict[str, Model]]:
        """(live models, models that vanished from the last snapshot only), by id."""
        ...
    def live_models(self) -> Mapping[str, Model]: ...
    def confirm_catalog(self, at: datetime, sha256: str, count: int) -> int:
        """Store a fetch of the same bytes as the last; returns its id."""
        ...
    def save_catalog(self, at: datetime, sha256: str, catalog: Catalog,
                     delta: CatalogDelta) -> int:
        """Store the fetch and the versions it changed; returns the fetch's id."""
        ...


class DailyRankings(Protocol):
    def last_rankings_fetch(self) -> FetchRecord | None: ...
    def latest_ranking_date(self) -> date | None: ...
    def ranking_dates(self) -> set[date]: ...
    def token_totals(self, start: date, end: date) -> Mapping[str, int]: ...
    def confirm_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                         count: int) -> None: ...
    def save_rankings(self, at: datetime, sha256: str, origin: RankingsOrigin,
                      rows: list[DailyRank]) -> int:
        """Store the fetch and its rows (the newest fetch of a day wins); returns its id."""
        ...


class FaultLog(Protocol):
    def record_fault(self, source: Source, at: datetime, fault: SourceFault) -> None: ...


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
    def provider_listings(self, model_ids: Sequence[str]
                          ) -> Mapping[str, tuple[datetime, tuple[Provider, ...]]]:
        """Each model's providers in its last endpoints payload, and when it was fetched;
        models never fetched are left out (`/providers`)."""
        ...


class PollSnapshots(CatalogVersions, DailyRankings, FaultLog, History, Protocol):
    """What a poll stores and reads back (its first one's welcome digest included)."""


# -- channels, outbox, feed -------------------------------------------------------------------

class Subscriptions(Protocol):
    def subscription(self, ref: ChannelRef) -> Subscription | None: ...
    def subscriptions(self) -> list[Subscription]: ...


class ChannelMemory(Subscriptions, Protocol):
    """What each channel was told that differs from the last snapshot (bot/alerts.py)."""

    def memory(self, subscription: Subscription, prefix: str) -> dict[str, str]: ...
    def update_memory(self, subscription: Subscription, remember: Mapping[str, str],
                      forget: Iterable[str]) -> None: ...


class Queue(Protocol):
    """Where messages wait for the delivery worker, each queued once."""

    def enqueue(self, subscription: Subscription, key: str, *, kind: str, card: Card,
                changes: Iterable[dict[str, Any]], at: datetime,
                not_before: datetime | None = None, chart: WeekSeries | None = None) -> bool:
        """False if this subscription already has a message with this key. `chart` is drawn
        when the message is sent (the digest's week)."""
        ...
    def has_message(self, subscription: Subscription, key: str) -> bool: ...
    def last_digest_title(self, subscription: Subscription) -> str | None:
        """The newest digest's title (it names its week): the same week is never sent twice."""
        ...


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of the feeds (`bot.feed`): a change a poll found, or a week's digest."""

    fetch: str  # what it came from: a fetch ("catalog:12") or a week ("digest:2026-W41")
    at: datetime
    kind: str  # a change kind, or "weekly_digest"
    model: str  # "" where none
    detail: str  # tells apart one model's changes of one kind in one fetch (a price's field)
    title: str
    text: str = ""  # more than the title says ("" for a change: its title says it all)
    page: str | None = None  # the model whose openrouter.ai page it links to
    credit: str | None = None  # the CC BY 4.0 line, where it shows rankings data
    data: Mapping[str, Any] = field(default_factory=dict)  # the change as `--json` prints it


class FeedLog(Protocol):
    def save_feed_entries(self, entries: Sequence[FeedEntry]) -> int: ...
    def has_feed_entry(self, fetch: str) -> bool: ...
    def feed_entries(self, kinds: frozenset[str], limit: int) -> list[FeedEntry]:
        """The newest first; of the given kinds only, unless `kinds` is empty."""
        ...


class FeedWork(Work, Protocol):
    """Keeping the feeds' entries, read from the history."""

    @property
    def snapshots(self) -> History: ...
    @property
    def feed(self) -> FeedLog: ...


class DigestWork(FeedWork, Protocol):
    """Queueing the weekly digests."""

    @property
    def channels(self) -> Subscriptions: ...
    @property
    def outbox(self) -> Queue: ...


class PollWork(DigestWork, Protocol):
    """A poll's unit of work: snapshots in, one message per channel out, the feeds' entries."""

    @property
    def snapshots(self) -> PollSnapshots: ...
    @property
    def channels(self) -> ChannelMemory: ...


# -- providers (bot/providers.py, bot/provider_polling.py) ------------------------------------

@dataclass(frozen=True, slots=True)
class RawEndpoints:
    """A model's `…/endpoints` payload as fetched; `keyed`: OpenRouter asked for the API key."""

    body: bytes
    keyed: bool = False


class EndpointsSource(Protocol):
    async def fetch_endpoints(self, details: str | None, slug: str) -> RawEndpoints:
        """The endpoints at the catalog entry's `links.details` if that is a path under the
        base URL, else at the one built from the model's permaslug `slug`."""
        ...


@dataclass(frozen=True, slots=True)
class StoredProviders:
    """A model's providers as stored, and the payload they came from."""

    state: ModelProviders
    at: datetime
    sha256: str


class ProviderStore(Protocol):
    def stored_providers(self, model_id: str) -> StoredProviders | None: ...
    def save_providers(self, model_id: str, at: datetime, sha256: str, keyed: bool,
                       state: ModelProviders) -> None:
        """The model's providers now (live, and missing once); those not in `state` are
        removed. Uptime and speed are kept as of this fetch; prices, quantization, context
        and status as a new version when they change."""
        ...
    def confirm_providers(self, model_id: str, at: datetime, keyed: bool) -> None: ...
    def endpoint_details(self, model_ids: Sequence[str]) -> Mapping[str, str | None]:
        """Each live model's `links.details` as its catalog entry gives it (None: none)."""
        ...


class ProvidersWork(PollWork, Protocol):
    """A providers poll: a poll's unit of work, and the providers' store."""

    @property
    def providers(self) -> ProviderStore: ...


class DeliveryQueue(Protocol):
    """What the delivery worker reads and marks."""

    def due_messages(self, now: datetime) -> list[Message]: ...
    def claim(self, ids: list[int], now: datetime, until: datetime, worker: str) -> bool: ...
    def mark_sent(self, ids: Iterable[int], at: datetime) -> None: ...
    def defer(self, ids: Iterable[int], until: datetime, error: str, attempt: bool,
              in_doubt: bool = False) -> None: ...
    def dead_letter(self, ids: Iterable[int], error: str) -> None: ...


class Pauses(Protocol):
    def pause(self, subscription: Subscription, reason: str, at: datetime) -> None: ...


class DeliveryWork(Work, Protocol):
    @property
    def outbox(self) -> DeliveryQueue: ...
    @property
    def channels(self) -> Pauses: ...


class DeliveryError(Exception):
    """A platform refused a message. `kind` says what to do: wait (`rate_limited`, for
    `retry_after` seconds), try again later (`transient`), stop sending to that channel
    (`permanent`: channel gone, bot removed) or to the whole platform (`auth`)."""

    def __init__(self, kind: DeliveryFailure, reason: str,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind: DeliveryFailure = kind
        self.reason = reason
        self.retry_after = retry_after


DeliveryFailure = Literal["rate_limited", "transient", "permanent", "auth"]


class Notifier(Protocol):
    """Sends one message to one channel of its platform, or raises DeliveryError.

    `key` names the message on the platform (at most 25 characters), so that a send whose
    outcome was lost (a killed process, a timeout) can be looked for before it is sent again."""

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str, chart: Series | None = None) -> None:
        """`ref` may be a person (`ref.person`): their direct messages. `chart`, drawn by the
        adapter, goes in the message (the digest's week)."""
        ...

    async def prepare(self, chart: Series) -> None:
        """Make a chart ready to send (drawn, uploaded) before the sends that show it are
        paced: a digest to many channels then goes at the platform's pace, not in a burst
        once its chart is ready. Never raises: a chart that fails is left out of its sends."""
        ...

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        """Whether the message `key` (showing `card`) reached the channel at or after `since`;
        raises DeliveryError when the platform cannot say."""
        ...


class Offload(Protocol):
    """Runs blocking work (SQLite, which may wait for another process's write lock) where it
    cannot hold up the event loop: `rankbot run` hands in its database thread; one-shot
    commands and tests run it in place (`inline`)."""

    def __call__(self, work: Callable[[], T]) -> Awaitable[T]: ...


async def inline(work: Callable[[], T]) -> T:
    return work()


class Database(Protocol[S_co]):
    """Where commands do their database work: `read` hands `work` a store to answer from;
    `write` runs `work`, which uses `store`, one write at a time. `rankbot run` runs both on
    threads of their own (`storage.threads`), so that neither holds up the event loop."""

    @property
    def store(self) -> S_co: ...
    def read(self, work: Callable[[S_co], T]) -> Awaitable[T]: ...
    def write(self, work: Callable[[], T]) -> Awaitable[T]: ...


@dataclass(frozen=True)
class InPlace(Generic[S]):
    """A Database that does the work where it is asked, on one store: for one-shot commands
    and tests, where nothing else is waiting."""

    store: S

    async def read(self, work: Callable[[S], T]) -> T:
        return work(self.store)

    async def write(self, work: Callable[[], T]) -> T:
        return work()


class AskAgain(Exception):
    """The platform could not say just now (rate-limited, unreachable): neither yes nor no.
    The message says why, for the user."""


class Authorizer(Protocol):
    """The platform says whether a user may change a channel's rules, or raises AskAgain."""

    async def is_admin(self, ref: ChannelRef, user: str) -> bool: ...
