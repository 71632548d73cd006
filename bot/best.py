"""`/best`: quality per dollar, with usage beside it — the Artificial Analysis index a catalog
entry carries, over its blended price (pure).

The blended price weighs input three to one against output, as Artificial Analysis does: a
typical workload reads more than it writes. Free models and routers have no price to divide by,
and variants (`:free`, `:batch`) and aliases repeat a model: all are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rankbot.bot.answers import UsageError, View
from rankbot.bot.cards import Card, usd
from rankbot.bot.catalog import Model

INDICES = {"intelligence": "intelligence_index", "coding": "coding_index",
           "agentic": "agentic_index"}
SHOWN = 10
CREDIT = "Indices: Artificial Analysis, via OpenRouter's catalog"


@dataclass(frozen=True, slots=True)
class Value:
    model: Model
    score: Decimal
    blended: Decimal

    @property
    def per_dollar(self) -> Decimal:
        return self.score / self.blended


def blended(model: Model) -> Decimal | None:
    """USD per 1M tokens at three input tokens to one output token."""
    if model.prompt is None or model.completion is None:
        return None
    return (3 * model.prompt + model.completion) / 4


def ranked(models: list[Model], index: str, under: Decimal | None) -> list[Value]:
    """Models with this index and a price, best value first (the higher score on a tie)."""
    values = []
    for model in models:
        score, price = model.benchmark(INDICES[index]), blended(model)
        if (score is None or price is None or price <= 0 or model.is_alias or model.variant
                or (under is not None and price > under)):
            continue
        values.append(Value(model, score, price))
    return sorted(values, key=lambda v: (-v.per_dollar, -v.score, v.model.id))


def best(view: View, index: str, under: Decimal | None) -> Card:
    view.require_catalog()
    values = ranked(list(view.models.values()), index, under)
    week = view.board("week") if view.latest else None
    lines = tuple(_line(n, value, index, week.rank_of(value.model.permaslug) if week else None)
                  for n, value in enumerate(values[:SHOWN], 1))
    limit = f" under {usd(under)}" if under is not None else ""
    title = f"Best {index} per dollar{limit}"
    if not lines:
        lines = (f"No model with an {index} index{limit} (blended, per 1M tokens).",)
    footer = view.rankings_footer() if view.latest else view.prices_as_of
    return Card(title, lines, (), f"{CREDIT} · blended = (3 × input + output) / 4 per 1M "
                                  f"tokens · {footer}")


def _line(n: int, value: Value, index: str, usage: int | None) -> str:
    model = value.model
    return (f"{n}. {model.name} ({model.id}) — {index} {value.score} · {usd(value.blended)} "
            f"blended · {value.per_dollar:.1f} per $ · usage "
            f"{f'#{usage}' if usage else 'unranked'} this week")


def parse(args: list[str]) -> tuple[str, Decimal | None]:
    """`[intelligence|coding|agentic] [under PRICE]`, PRICE in USD per 1M tokens ($ optional)."""
    words = [a.lower() for a in args]
    index = words.pop(0) if words and words[0] in INDICES else "intelligence"
    under = None
    if words[:1] == ["under"] and len(words) == 2:
        under = _price(words[1])
        words = []
    if words:
        raise UsageError("Usage: `/best [intelligence|coding|agentic] [under PRICE]`, e.g. "
                         "`/best coding under 2` (USD per 1M tokens, blended)")
    return index, under


def _price(text: str) -> Decimal:
    raw = text.removeprefix("$").removesuffix("/m")
    try:
        price = Decimal(raw) if len(raw) <= 12 else None
    except ArithmeticError:
        price = None
    if price is None or not price.is_finite() or not 0 < price <= 10_000:
        raise UsageError("The price after `under` is USD per 1M tokens, e.g. `under 2` or "
                         "`under $0.5`")
    return price
