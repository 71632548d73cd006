"""What changed between two snapshots: small frozen records, one class per kind (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class RankMoved:
    kind: ClassVar[str] = "rank_moved"
    model: str
    old_rank: int
    new_rank: int


@dataclass(frozen=True, slots=True)
class EnteredTop:
    kind: ClassVar[str] = "entered_top"
    model: str
    rank: int
    old_rank: int | None
    top_n: int


@dataclass(frozen=True, slots=True)
class LeftTop:
    kind: ClassVar[str] = "left_top"
    model: str
    old_rank: int
    rank: int | None
    top_n: int


@dataclass(frozen=True, slots=True)
class NewLeader:
    kind: ClassVar[str] = "new_leader"
    model: str
    previous: str


@dataclass(frozen=True, slots=True)
class OpenWeightShareChanged:
    kind: ClassVar[str] = "open_weight_share_changed"
    old_count: int
    new_count: int
    top_n: int
    model: None = None


@dataclass(frozen=True, slots=True)
class ModelAdded:
    kind: ClassVar[str] = "model_added"
    model: str
    name: str
    prompt: Decimal | None
    completion: Decimal | None
    context_length: int | None


@dataclass(frozen=True, slots=True)
class ModelRemoved:
    kind: ClassVar[str] = "model_removed"
    model: str
    name: str


@dataclass(frozen=True, slots=True)
class PriceChanged:
    """One published price moved: `field` names it as `Model.prices` does (`prompt`,
    `input_cache_read`, `prompt>200k`, …); USD per 1M tokens, or per unit for `request`,
    `image` and `web_search`."""

    kind: ClassVar[str] = "price_changed"
    model: str
    field: str
    old: Decimal
    new: Decimal
    pct: Decimal | None  # None when the old price was zero


@dataclass(frozen=True, slots=True)
class WentFree:
    kind: ClassVar[str] = "went_free"
    model: str


@dataclass(frozen=True, slots=True)
class WentPaid:
    kind: ClassVar[str] = "went_paid"
    model: str
    prompt: Decimal
    completion: Decimal


@dataclass(frozen=True, slots=True)
class ContextChanged:
    kind: ClassVar[str] = "context_changed"
    model: str
    old: int | None
    new: int | None


@dataclass(frozen=True, slots=True)
class AliasMoved:
    """An alias (`~author/…-latest`, a name people put in their code) now resolves to another
    model. Targets are None where OpenRouter does not say; prices are USD per 1M tokens."""

    kind: ClassVar[str] = "alias_moved"
    model: str
    old_target: str | None
    new_target: str | None
    old_prompt: Decimal | None
    new_prompt: Decimal | None
    old_completion: Decimal | None
    new_completion: Decimal | None
    old_context: int | None
    new_context: int | None


@dataclass(frozen=True, slots=True)
class SunsetAnnounced:
    """A model got a retirement date (`previous` None), or its date moved from `previous`
    (postponed or brought forward). `days_left` counts from the day it was seen; `successor`
    is the model suggested instead (`bot.sunsets.successor`), None if none."""

    kind: ClassVar[str] = "sunset_announced"
    model: str
    name: str
    retires: date
    previous: date | None
    days_left: int
    successor: str | None


@dataclass(frozen=True, slots=True)
class SunsetSoon:
    """A reminder 30, 7 or 1 days before a retirement (`days_left`, from the day it was sent)."""

    kind: ClassVar[str] = "sunset_soon"
    model: str
    name: str
    retires: date
    days_left: int
    successor: str | None



@dataclass(frozen=True, slots=True)
class CheapestProviderChanged:
    """Another provider (or the same at another price) is now the cheapest for a model's
    `input` or `output`; providers by tag, prices USD per 1M tokens (bot/providers.py)."""

    kind: ClassVar[str] = "cheapest_provider_changed"
    model: str
    field: str  # "input" or "output"
    old_provider: str
    new_provider: str
    old_name: str
    new_name: str
    old_price: Decimal | None
    new_price: Decimal | None


@dataclass(frozen=True, slots=True)
class ProviderAdded:
    kind: ClassVar[str] = "provider_added"
    model: str
    provider: str  # the endpoint's tag (its provider's name where it has none)
    name: str
    prompt: Decimal | None
    completion: Decimal | None
    quantization: str | None
    context_length: int | None


@dataclass(frozen=True, slots=True)
class ProviderRemoved:
    """A provider missing from two endpoint payloads in a row."""

    kind: ClassVar[str] = "provider_removed"
    model: str
    provider: str
    name: str


@dataclass(frozen=True, slots=True)
class ProviderDegraded:
    """A provider's 30-minute uptime fell below the channel's `min_uptime` (once per episode)."""

    kind: ClassVar[str] = "provider_degraded"
    model: str
    provider: str
    name: str
    uptime: Decimal  # percent, one decimal
    min_uptime: Decimal


@dataclass(frozen=True, slots=True)
class ProviderRecovered:
    kind: ClassVar[str] = "provider_recovered"
    model: str
    provider: str
    name: str
    uptime: Decimal
    min_uptime: Decimal


@dataclass(frozen=True, slots=True)
class QuantizationChanged:
    kind: ClassVar[str] = "quantization_changed"
    model: str
    provider: str
    name: str
    old: str | None
    new: str | None

RankingChange = RankMoved | EnteredTop | LeftTop | NewLeader | OpenWeightShareChanged
CatalogChange = (ModelAdded | ModelRemoved | PriceChanged | WentFree | WentPaid | ContextChanged
                 | AliasMoved)
SunsetChange = SunsetAnnounced | SunsetSoon
ProviderChange = (CheapestProviderChanged | ProviderAdded | ProviderRemoved | ProviderDegraded
                  | ProviderRecovered | QuantizationChanged)
Change = RankingChange | CatalogChange | SunsetChange | ProviderChange

RANKING_KINDS = frozenset(c.kind for c in (RankMoved, EnteredTop, LeftTop, NewLeader,
                                           OpenWeightShareChanged))


def change_record(change: Change) -> dict[str, Any]:
    """A JSON-ready dict: `kind`, `model` and the kind's figures (decimals as plain decimal
    strings: "10", "0.06006", never "1E+1")."""
    fields = {k: plain(v) if isinstance(v, Decimal)
              else v.isoformat() if isinstance(v, date) else v
              for k, v in asdict(change).items()}
    return {"kind": change.kind, "model": fields.pop("model"), **fields}


def plain(value: Decimal) -> str:
    """A decimal in positional notation, without trailing zeros."""
    text = f"{value.normalize():f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
