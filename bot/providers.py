"""The providers behind a model: parsing an `…/endpoints` payload, and what changed (pure).

OpenRouter's `GET /models/{author}/{slug}/endpoints` lists every provider serving a model with
its own price, quantization, context, status, uptime and speed. One endpoint is a `Provider`,
named by its `tag` (`amazon-bedrock/eu-west-1`; the provider's name in older payloads, which
had no tag). `provider_delta` compares a model's stored providers with a new payload: providers
added, removed (after two payloads without them, as models are), the cheapest for input and for
output, quantization, and each provider's 30-minute uptime for `bot.alerts` to judge against a
channel's `min_uptime`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from rankbot.bot.catalog import MAX_CONTEXT, per_million
from rankbot.bot.changes import (
    CheapestProviderChanged,
    ProviderAdded,
    ProviderRemoved,
    QuantizationChanged,
)
from rankbot.bot.faults import BadEntry, Rejected, SourceFault, check_rejected

MAX_ENDPOINTS = 500  # more providers than any model has: a payload past it is broken
MAX_NAME = 200  # a provider's name or tag longer than this is not a name
MAX_MS = 10_000_000.0  # latency and throughput bounds: past them a figure is broken
PERCENTILES = ("p50", "p75", "p90", "p99")
PriceField = Literal["input", "output"]
FIELDS: tuple[tuple[PriceField, str], ...] = (("input", "prompt"), ("output", "completion"))
Percentiles = tuple[float | None, float | None, float | None, float | None]
NO_PERCENTILES: Percentiles = (None, None, None, None)


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider serving one model. Prices are exact USD per 1M tokens (None where it has
    none); uptimes are percent (None: OpenRouter does not say, as older payloads never did);
    latency in ms and throughput in tokens/s, as p50, p75, p90, p99 of the last 30 minutes."""

    key: str  # the endpoint's tag, else its provider's name: what identifies it over time
    name: str  # the provider's name, e.g. "Amazon Bedrock"
    prompt: Decimal | None
    completion: Decimal | None
    cache_read: Decimal | None = None
    quantization: str | None = None
    context_length: int | None = None
    status: int | None = None  # 0 ok, negative: OpenRouter sees it degraded
    uptime_5m: float | None = None
    uptime_30m: float | None = None
    uptime_1d: float | None = None
    latency: Percentiles = NO_PERCENTILES
    throughput: Percentiles = NO_PERCENTILES

    @property
    def label(self) -> str:
        """How people name it: `Google (google-vertex/global)`, or `Anthropic`."""
        return self.name if self.key.lower() == self.name.lower() else f"{self.name} ({self.key})"

    @property
    def terms(self) -> tuple[Any, ...]:
        """What is stored as a new version when it changes; uptime and speed, which move at
        every fetch, are kept for the latest fetch only."""
        return (self.name, self.prompt, self.completion, self.cache_read, self.quantization,
                self.context_length, self.status)


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A parsed payload: its providers in the order served, and those set aside."""

    providers: tuple[Provider, ...]
    rejected: tuple[Rejected, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelProviders:
    """A model's providers as stored: those in its last payload, and those missing from it
    (once: a second absence removes them)."""

    live: tuple[Provider, ...] = ()
    vanished: tuple[Provider, ...] = ()

    def get(self, key: str) -> Provider | None:
        return next((p for p in (*self.live, *self.vanished) if p.key == key), None)


@dataclass(frozen=True, slots=True)
class Uptime:
    """A provider's 30-minute uptime in the new payload, and in the one before (`old` None
    where there was none: a first look, or an unknown figure)."""

    provider: str
    name: str
    old: float | None
    new: float | None
    seen_before: bool


@dataclass(frozen=True, slots=True)
class ProviderDelta:
    """How one model's providers changed between two payloads (channel-independent facts)."""

    model: str
    baseline: bool  # no providers stored before: nothing to compare, nothing told
    state: ModelProviders  # what to store
    added: tuple[Provider, ...] = ()
    removed: tuple[Provider, ...] = ()
    vanished: tuple[Provider, ...] = ()
    changes: tuple[CheapestProviderChanged | ProviderAdded | ProviderRemoved
                   | QuantizationChanged, ...] = ()
    uptimes: tuple[Uptime, ...] = ()
    changed: tuple[Provider, ...] = field(default=())  # live providers whose terms changed


# -- parsing ----------------------------------------------------------------------------------

def parse_endpoints(body: bytes, model: str) -> Endpoints:
    """The providers in an `…/endpoints` payload. A broken endpoint is set aside (more than
    10% of them fault the payload); a payload that is not the endpoints' shape, or lists none,
    is a fault."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise SourceFault("unparsable", f"{model}'s endpoints are not JSON") from None
    data = document.get("data") if isinstance(document, dict) else None
    listed = data.get("endpoints") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        raise SourceFault("unparsable", f"{model}'s endpoints payload has no data.endpoints list")
    if not listed:
        raise SourceFault("empty", f"{model}'s endpoints payload lists no provider")
    if len(listed) > MAX_ENDPOINTS:
        raise SourceFault("unparsable", f"{model}'s endpoints payload lists {len(listed):,} "
                                        f"providers, over {MAX_ENDPOINTS}")
    providers: dict[str, Provider] = {}
    rejected: list[Rejected] = []
    for number, entry in enumerate(listed, 1):
        try:
            provider = parse_provider(entry)
        except BadEntry as bad:
            rejected.append(Rejected(f"{model} provider {number}", bad.field, bad.reason))
            continue
        if provider.key in providers:
            rejected.append(Rejected(f"{model} provider {number}", "tag",
                                     f"{provider.key[:60]!r} is listed twice"))
            continue
        providers[provider.key] = provider
    check_rejected(rejected, len(listed), f"of {model}'s providers")
    return Endpoints(tuple(providers.values()), tuple(rejected))


def parse_provider(entry: object) -> Provider:
    if not isinstance(entry, dict):
        raise BadEntry("endpoint", f"is a {type(entry).__name__}, not an object")
    name = _name(entry, "provider_name")
    if name is None:
        raise BadEntry("provider_name", "is missing")
    tag = _name(entry, "tag")
    pricing = entry.get("pricing")
    if not isinstance(pricing, dict):
        raise BadEntry("pricing", "is missing" if pricing is None else "is not an object")
    return Provider(
        key=tag or name, name=name,
        prompt=per_million(pricing.get("prompt")),
        completion=per_million(pricing.get("completion")),
        cache_read=per_million(pricing.get("input_cache_read")),
        quantization=_name(entry, "quantization"),
        context_length=_whole(entry, "context_length", MAX_CONTEXT),
        status=_whole(entry, "status", 1000, low=-1000),
        uptime_5m=_figure(entry, "uptime_last_5m", 100.0),
        uptime_30m=_figure(entry, "uptime_last_30m", 100.0),
        uptime_1d=_figure(entry, "uptime_last_1d", 100.0),
        latency=_percentiles(entry, "latency_last_30m"),
        throughput=_percentiles(entry, "throughput_last_30m"))


NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]+")


def _name(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadEntry(key, f"is a {type(value).__name__}, not text")
    if len(value) > MAX_NAME or not NAME.fullmatch(value):
        raise BadEntry(key, "is not a name (too long, or control characters)")
    return value


def _whole(entry: dict[str, Any], key: str, high: int, low: int = 0) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadEntry(key, f"is not a whole number from {low} to {high:,}")
    return value


def _number(value: object, key: str, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= high:  # NaN fails this too
        raise BadEntry(key, f"is not a number from 0 to {high:g}")
    return float(value)


def _figure(entry: dict[str, Any], key: str, high: float) -> float | None:
    return _number(entry.get(key), key, high)


def _percentiles(entry: dict[str, Any], key: str) -> Percentiles:
    value = entry.get(key)
    if value is None:
        return NO_PERCENTILES
    if not isinstance(value, dict):
        raise BadEntry(key, "is not an object")
    p50, p75, p90, p99 = (_number(value.get(p), f"{key}.{p}", MAX_MS) for p in PERCENTILES)
    return p50, p75, p90, p99


# -- what changed -----------------------------------------------------------------------------

def provider_delta(model: str, stored: ModelProviders | None, new: Endpoints) -> ProviderDelta:
    """How `model`'s providers changed from `stored` (None: never fetched) to `new`. A
    provider missing once is kept aside (`vanished`) and counted as still there; missing twice,
    it is removed. The cheapest provider is judged among those still there, so a provider
    skipping one payload moves nothing."""
    now = {p.key: p for p in new.providers}
    if stored is None:
        return ProviderDelta(model, True, ModelProviders(new.providers),
                             uptimes=_uptimes(new.providers, {}))
    before = {p.key: p for p in stored.live}
    gone = {p.key: p for p in stored.vanished}
    added = tuple(p for key, p in now.items() if key not in before and key not in gone)
    removed = tuple(p for key, p in gone.items() if key not in now)
    vanished = tuple(p for key, p in before.items() if key not in now)
    changed = tuple(p for key, p in now.items()
                    if (old := before.get(key) or gone.get(key)) is not None
                    and old.terms != p.terms)
    changes: list[CheapestProviderChanged | ProviderAdded | ProviderRemoved
                  | QuantizationChanged] = []
    changes += [ProviderAdded(model, p.key, p.name, p.prompt, p.completion, p.quantization,
                              p.context_length) for p in added]
    changes += [ProviderRemoved(model, p.key, p.name) for p in removed]
    for p in new.providers:
        old = before.get(p.key) or gone.get(p.key)
        if old is not None and old.quantization != p.quantization:
            changes.append(QuantizationChanged(model, p.key, p.name, old.quantization,
                                               p.quantization))
    present_before = (*stored.live, *stored.vanished)
    present_now = (*new.providers, *vanished)
    for label, side in FIELDS:
        old_pick = cheapest(present_before, side)
        new_pick = cheapest(present_now, side, prefer=old_pick.key if old_pick else None)
        if old_pick and new_pick and (old_pick.key, _side(old_pick, side)) != (
                new_pick.key, _side(new_pick, side)):
            changes.append(CheapestProviderChanged(
                model, label, old_pick.key, new_pick.key, old_pick.name, new_pick.name,
                _side(old_pick, side), _side(new_pick, side)))
    state = ModelProviders(new.providers, vanished)
    seen = {**gone, **before}
    return ProviderDelta(model, False, state, added, removed, vanished, tuple(changes),
                         _uptimes(new.providers, seen), changed)


def cheapest(providers: Iterable[Provider], side: str, prefer: str | None = None
             ) -> Provider | None:
    """The provider with the lowest price on `side` (`prompt`, `completion`); among equals
    the one `prefer` names if it is one of them, else the first served."""
    priced = [p for p in providers if _side(p, side) is not None]
    if not priced:
        return None
    low = min(_side(p, side) for p in priced)  # type: ignore[type-var]
    tied = [p for p in priced if _side(p, side) == low]
    return next((p for p in tied if p.key == prefer), tied[0])


def _side(provider: Provider, side: str) -> Decimal | None:
    price: Decimal | None = getattr(provider, side)
    return price


def _uptimes(providers: Sequence[Provider], before: Mapping[str, Provider]) -> tuple[Uptime, ...]:
    return tuple(Uptime(p.key, p.name, old.uptime_30m if (old := before.get(p.key)) else None,
                        p.uptime_30m, p.key in before) for p in providers)


def by_price(providers: Iterable[Provider]) -> list[Provider]:
    """Cheapest first: by input price, then output price (unpriced last), then as served."""
    listed = list(providers)
    huge = Decimal("Infinity")
    return sorted(listed, key=lambda p: (p.prompt if p.prompt is not None else huge,
                                         p.completion if p.completion is not None else huge))
