"""Cards: one neutral message that every adapter renders natively (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rankbot.bot.changes import (
    RANKING_KINDS,
    AliasMoved,
    Change,
    CheapestProviderChanged,
    ContextChanged,
    EnteredTop,
    LeftTop,
    ModelAdded,
    ModelRemoved,
    NewLeader,
    OpenWeightShareChanged,
    PriceChanged,
    ProviderAdded,
    ProviderChange,
    ProviderDegraded,
    ProviderRecovered,
    ProviderRemoved,
    QuantizationChanged,
    RankMoved,
    SunsetAnnounced,
    SunsetSoon,
    WentFree,
    WentPaid,
)

# A card is plain text: whatever came from outside (model names, what users typed) is shown as
# it is, never as markup. rankbot's own markup is a code span (`x`) and a link to a channel,
# written as a token no outside text can hold (ids and slugs with private-use characters are
# rejected, names lose them), which each adapter renders in its platform's way.
CHANNEL_LINK = re.compile("\ue000([A-Za-z0-9]+)\ue001")
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def channel_link(channel: str) -> str:
    return f"\ue000{channel}\ue001"


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


def card_to_dict(card: Card) -> dict[str, Any]:
    return asdict(card)


def card_from_dict(data: dict[str, Any]) -> Card:
    return Card(data["title"], tuple(data["lines"]),
                tuple(Field(f["name"], f["value"]) for f in data["fields"]), data["footer"])


@dataclass(frozen=True, slots=True)
class Limits:
    """The strictest of what Slack and Discord accept in one message."""

    title: int = 150  # Slack header block
    lines: int = 3000  # Slack section text (a Discord description takes 4096)
    fields: int = 25  # Discord embed fields (each is one Slack section: 28 blocks of 50)
    field_name: int = 256  # Discord
    field_value: int = 1024  # Discord
    footer: int = 300  # a Slack context element allows 3000, a Discord footer 2048
    total: int = 6000  # Discord: all text across the embeds of a message


LIMITS = Limits()


NOTE = 20  # room kept for a closing "…and N more"
MIN_FIELD = 80  # a field with less room than this is dropped into the closing note


def fit(card: Card, limits: Limits = LIMITS) -> Card:
    """The card cut to fit every platform, whole lines at a time, saying "…and N more"."""
    title = _clip(card.title, limits.title)
    footer = _clip(card.footer, limits.footer) if card.footer else None
    lines = _cut(card.lines, limits.lines)
    budget = limits.total - size(Card(title, lines, (), footer))
    fields: list[Field] = []
    for i, field in enumerate(card.fields):
        name, more = _clip(field.name, limits.field_name), len(card.fields) - i
        room = min(limits.field_value, budget - len(name) - NOTE)
        if room < MIN_FIELD or (len(fields) == limits.fields - 1 and more > 1):
            fields.append(Field("…", f"and {more} more"))
            break
        value = "\n".join(_cut(tuple(field.value.splitlines()), room))
        fields.append(Field(name, value))
        budget -= len(name) + len(value)
    return Card(title, lines, tuple(fields), footer)


def merge_cards(cards: Sequence[Card], title: str) -> Card:
    """Several cards as one message: each card's title and lines become a field, then its
    fields; the last footer (the newest attribution) closes it."""
    fields: list[Field] = []
    for card in cards:
        fields.append(Field(card.title, "\n".join(card.lines) or "—"))
        fields += card.fields
    footer = next((c.footer for c in reversed(cards) if c.footer), None)
    return fit(Card(title, (), tuple(fields), footer))


def size(card: Card) -> int:
    """Characters as Discord counts them across a message's embeds."""
    return (len(card.title) + len("\n".join(card.lines)) + len(card.footer or "")
            + sum(len(f.name) + len(f.value) for f in card.fields))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(lines: tuple[str, ...], budget: int) -> tuple[str, ...]:
    """Whole lines (joined by newlines) within `budget`; what does not fit becomes one note."""
    kept: list[str] = []
    used = 0
    for i, whole in enumerate(lines):
        line = _clip(whole, budget - NOTE)
        reserve = NOTE if i < len(lines) - 1 else 0
        if used + len(line) + reserve > budget:
            kept.append(f"…and {len(lines) - i} more")
            break
        kept.append(line)
        used += len(line) + 1
    return tuple(kept)


def attribution(as_of: date) -> str:
    """OpenRouter's rankings are CC BY 4.0: every message that shows them carries this line."""
    return f"Source: OpenRouter (openrouter.ai/rankings), as of {as_of.isoformat()} · CC BY 4.0"


SECTIONS: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("Usage rankings (7 days)", (NewLeader, EnteredTop, LeftTop, RankMoved,
                                 OpenWeightShareChanged)),
    ("Prices", (PriceChanged, WentFree, WentPaid)),
    ("Catalog", (ModelAdded, ModelRemoved, ContextChanged, AliasMoved)),
    ("Retirements", (SunsetAnnounced, SunsetSoon)),
    ("Providers", (CheapestProviderChanged, ProviderAdded, ProviderRemoved, ProviderDegraded,
                   ProviderRecovered, QuantizationChanged)),
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
    return fit(Card(
        title=f"OpenRouter: {len(changes)} {noun}",
        lines=(f"Seen {at:%Y-%m-%d %H:%M} UTC",),
        fields=fields,
        footer=attribution(rankings_as_of) if shows_rankings and rankings_as_of else None,
    ))


def describe(change: Change) -> str:  # noqa: PLR0911, PLR0912 - one line per kind reads best flat
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
        case PriceChanged(model, field, old, new, pct):
            return (f"{model} {price_label(field)} {usd(old)} → {usd(new)} {per(field)} "
                    f"({percent(pct)})")
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
        case AliasMoved():
            return alias_line(change)
        case SunsetAnnounced() | SunsetSoon():
            return sunset_line(change)
        case (CheapestProviderChanged() | ProviderAdded() | ProviderRemoved() | ProviderDegraded()
              | ProviderRecovered() | QuantizationChanged()):
            return provider_line(change)
    raise TypeError(f"no description for {change!r}")


def sunset_line(change: SunsetAnnounced | SunsetSoon) -> str:
    """`🌅 openai/gpt-5.2-chat retires on 2026-08-10 (in 7 days); successor: openai/gpt-5.5-chat`,
    `… retirement postponed to 2026-12-31 (was 2026-06-19) …`; a reminder starts with ⏳."""
    mark = "⏳" if isinstance(change, SunsetSoon) else "🌅"
    previous = change.previous if isinstance(change, SunsetAnnounced) else None
    if previous is None:
        what = f"retires on {change.retires}"
    else:
        moved = "postponed" if change.retires > previous else "brought forward"
        what = f"retirement {moved} to {change.retires} (was {previous})"
    line = f"{mark} {change.model} ({change.name}) {what} ({days_left(change.days_left)})"
    return line + (f"; successor: {change.successor}" if change.successor else "")


def days_left(days: int) -> str:
    """`today`, `tomorrow`, `in 7 days`."""
    return "today" if days <= 0 else "tomorrow" if days == 1 else f"in {days} days"


def alias_line(move: AliasMoved) -> str:
    """`~x/y-latest now points to x/z (was x/w): now $3.00/$15.00 per 1M, was $0.66/$3.41`."""
    where = (f"now points to {move.new_target}" if move.new_target
             else "now points to another model")
    if move.old_target and move.old_target != move.new_target:
        where += f" (was {move.old_target})"
    said = [f"↪ {move.model} {where}"]
    old = (move.old_prompt, move.old_completion)
    new = (move.new_prompt, move.new_completion)
    if old != new and None not in (*old, *new):
        said.append(f"now {_pair(*new)} per 1M, was {_pair(*old)}")
    if move.old_context != move.new_context:
        said.append(f"{tokens(move.old_context)} → {tokens(move.new_context)}")
    return ": ".join(said[:2]) + "".join(f"; {part}" for part in said[2:])


def _pair(prompt: Decimal | None, completion: Decimal | None) -> str:
    assert prompt is not None and completion is not None
    return f"{usd(prompt)}/{usd(completion)}"


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


# What each published price is called in a message (others: their name, `_` as spaces), and
# the prices charged per unit rather than per 1M tokens (`bot.catalog.PER_UNIT`), by unit.
PRICE_LABELS = {"prompt": "input", "completion": "output", "input_cache_read": "cache read",
                "input_cache_write": "cache write", "input_cache_write_1h": "cache write 1h",
                "internal_reasoning": "reasoning", "input_audio_cache": "audio cache read",
                "audio": "audio input", "image": "image input", "web_search": "web search"}
UNITS = {"request": "request", "web_search": "search"}


def split_tier(field: str) -> tuple[str, str]:
    """`prompt>200k` → (`prompt`, `>200k`); `prompt` → (`prompt`, ``)."""
    cut = min((i for i in (field.find(">"), field.find("@")) if i >= 0), default=len(field))
    return field[:cut], field[cut:]


def tier_words(tier: str) -> str:
    """`>200k` → `above 200K tokens`; `@10:00-01:00` → `at 10:00-01:00 UTC`."""
    if tier.startswith(">"):
        return f"above {tier[1:].upper()} tokens"
    return f"at {tier[1:]} UTC" if tier[1:2].isdigit() else "in another tier"


def price_label(field: str) -> str:
    """`input`, `cache read`, `input above 200K tokens`, `web search`."""
    base, tier = split_tier(field)
    label = PRICE_LABELS.get(base, base.replace("_", " "))
    return f"{label} {tier_words(tier)}" if tier else label


def per(field: str) -> str:
    """`per 1M` (tokens), or `per search`, `per request`."""
    return f"per {UNITS.get(split_tier(field)[0], '1M')}"


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


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(ranks: Sequence[int | None]) -> str:
    """Daily ranks as a sparkline, higher bars for better ranks; `·` where unranked."""
    known = [r for r in ranks if r is not None]
    if not known:
        return "·" * len(ranks)
    best, worst = min(known), max(known)
    span = worst - best or 1
    top = len(SPARKS) - 1
    return "".join("·" if r is None else SPARKS[top if best == worst else
                                                round((worst - r) / span * top)]
                   for r in ranks)


def token_count(count: int) -> str:
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def provider_line(change: ProviderChange) -> str:
    """One line for a change of the providers behind a model."""
    who = _provider_label(getattr(change, "name", ""), getattr(change, "provider", ""))
    match change:
        case CheapestProviderChanged(model, field, old_key, new_key, old_name, new_name,
                                     old_price, new_price):
            new = _provider_label(new_name, new_key)
            was = _provider_label(old_name, old_key)
            price = f"{_per_1m(new_price)}" + (
                f" (was {was}, {_per_1m(old_price)})" if old_key != new_key
                else f" (was {_per_1m(old_price)})")
            return f"💲 Cheapest {field} for {model}: {new} at {price}"
        case ProviderAdded(model, _, _, prompt, completion, quantization, context):
            quant = f", {quantization}" if quantization and quantization != "unknown" else ""
            return (f"＋ {who} now serves {model}: {price_pair(prompt, completion)}{quant}, "
                    f"{tokens(context)}")
        case ProviderRemoved(model):
            return f"－ {who} no longer serves {model}"
        case ProviderDegraded(model, _, _, uptime, minimum):
            return f"⚠ {who} is degraded for {model}: {uptime}% up over 30 min (under {minimum}%)"
        case ProviderRecovered(model, _, _, uptime, minimum):
            return f"✓ {who} recovered for {model}: {uptime}% up over 30 min (at least {minimum}%)"
        case QuantizationChanged(model, _, _, old, new):
            return (f"{who} serves {model} at {new or 'unknown'} quantization "
                    f"(was {old or 'unknown'})")
    raise TypeError(f"no description for {change!r}")


def _provider_label(name: str, key: str) -> str:
    return name if not key or key.lower() == name.lower() else f"{name} ({key})"


def _per_1m(price: Decimal | None) -> str:
    return "no price" if price is None else f"{usd(price)} per 1M"
