"""Cards: one neutral message that every adapter renders natively (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from bot.changes import (
    RANKING_KINDS,
    Change,
    ContextChanged,
    EnteredTop,
    LeftTop,
    ModelAdded,
    ModelRemoved,
    NewLeader,
    OpenWeightShareChanged,
    PriceChanged,
    RankMoved,
    WentFree,
    WentPaid,
)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    lines: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    footer: str | None = None


def attribution(as_of: date) -> str:
    """OpenRouter's rankings are CC BY 4.0: every message that shows them carries this line."""
    return f"Source: OpenRouter (openrouter.ai/rankings), as of {as_of.isoformat()} · CC BY 4.0"


SECTIONS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("Usage rankings (7 days)", (NewLeader, EnteredTop, LeftTop, RankMoved,
                                 OpenWeightShareChanged)),
    ("Prices", (PriceChanged, WentFree, WentPaid)),
    ("Catalog", (ModelAdded, ModelRemoved, ContextChanged)),
)


def changes_card(changes: Sequence[Change], at: datetime, rankings_as_of: date | None) -> Card:
    """All changes of one poll as one card, grouped by section."""
    fields = tuple(
        Field(name, "\n".join(describe(c) for c in changes if isinstance(c, kinds)))
        for name, kinds in SECTIONS
        if any(isinstance(c, kinds) for c in changes)
    )
    shows_rankings = any(c.kind in RANKING_KINDS for c in changes)
    noun = "change" if len(changes) == 1 else "changes"
    return Card(
        title=f"OpenRouter: {len(changes)} {noun}",
        lines=(f"Seen {at:%Y-%m-%d %H:%M} UTC",),
        fields=fields,
        footer=attribution(rankings_as_of) if shows_rankings and rankings_as_of else None,
    )


def describe(change: Change) -> str:  # noqa: PLR0911 - one line per kind reads best flat
    match change:
        case NewLeader(model, previous):
            return f"👑 {model} is the new #1, ahead of {previous}"
        case EnteredTop(model, rank, _, top_n):
            return f"⬆ {model} entered the top {top_n} at #{rank}"
        case LeftTop(model, old_rank, rank, top_n):
            where = f"now #{rank}" if rank else "no longer ranked"
            return f"⬇ {model} left the top {top_n} (was #{old_rank}, {where})"
        case RankMoved(model, old_rank, new_rank):
            arrow = "▲" if new_rank < old_rank else "▼"
            return f"{arrow}{abs(old_rank - new_rank)} {model}: #{old_rank} → #{new_rank}"
        case OpenWeightShareChanged(old_count, new_count, top_n):
            return f"Open-weight models in the top {top_n}: {old_count} → {new_count}"
        case PriceChanged(model, side, old, new, pct):
            label = "input" if side == "prompt" else "output"
            return f"{model} {label} {usd(old)} → {usd(new)} per 1M ({percent(pct)})"
        case WentFree(model):
            return f"{model} is now free"
        case WentPaid(model, prompt, completion):
            return f"{model} is no longer free: {usd(prompt)} in / {usd(completion)} out per 1M"
        case ModelAdded(model, name, prompt, completion, context):
            return f"＋ {model} ({name}): {price_pair(prompt, completion)}, {tokens(context)}"
        case ModelRemoved(model, name):
            return f"－ {model} ({name}) was removed"
        case ContextChanged(model, old, new):
            return f"{model} context {tokens(old)} → {tokens(new)}"
    raise TypeError(f"no description for {change!r}")


def usd(amount: Decimal) -> str:
    """Exact dollars, at least cents: $0.075, $0.30, $1,234.50."""
    places = max(2, -amount.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"${amount:,.{places}f}"


def price_pair(prompt: Decimal | None, completion: Decimal | None) -> str:
    if prompt is None or completion is None:
        return "price set per request"
    if prompt == completion == 0:
        return "free"
    return f"{usd(prompt)} in / {usd(completion)} out per 1M"


def percent(pct: Decimal | None) -> str:
    if pct is None:
        return "was free"
    return f"{pct:+}%".replace("-", "−")


def tokens(count: int | None) -> str:
    if count is None:
        return "unknown context"
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M context"
    return f"{count / 1000:,.0f}K context" if count >= 1000 else f"{count} context"
