"""What changed between two snapshots: small frozen records, one class per kind (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

PriceSide = Literal["prompt", "completion"]


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
    """A prompt or completion price moved; prices are USD per 1M tokens."""

    kind: ClassVar[str] = "price_changed"
    model: str
    side: PriceSide
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


RankingChange = RankMoved | EnteredTop | LeftTop | NewLeader | OpenWeightShareChanged
CatalogChange = (ModelAdded | ModelRemoved | PriceChanged | WentFree | WentPaid | ContextChanged
                 | AliasMoved)
Change = RankingChange | CatalogChange

RANKING_KINDS = frozenset(c.kind for c in (RankMoved, EnteredTop, LeftTop, NewLeader,
                                           OpenWeightShareChanged))


def change_record(change: Change) -> dict[str, Any]:
    """A JSON-ready dict: `kind`, `model` and the kind's figures (decimals as plain decimal
    strings: "10", "0.06006", never "1E+1")."""
    fields = {k: plain(v) if isinstance(v, Decimal) else v for k, v in asdict(change).items()}
    return {"kind": change.kind, "model": fields.pop("model"), **fields}


def plain(value: Decimal) -> str:
    """A decimal in positional notation, without trailing zeros."""
    text = f"{value.normalize():f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
