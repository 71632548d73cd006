"""The diff: how a new catalog differs from the stored one, and what changed in one model (pure).

It states facts, however small; which of them a channel hears is `bot.alerts`' decision.

The catalog diff works on three sets: `known` (live in the last snapshot), `vanished` (missing
from the last snapshot only, so not yet reported) and `current`. A model is reported removed once
it is missing from two snapshots in a row; one that comes back in between is neither removed nor
added, which is what OpenRouter's `:batch` variants do.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal

from rankbot.bot.catalog import Model
from rankbot.bot.changes import (
    CatalogChange,
    ContextChanged,
    PriceChanged,
    WentFree,
    WentPaid,
)
from rankbot.bot.faults import SourceFault

MAX_SHRINK = 0.30  # a catalog that loses more than this fraction at once is a fault, not news


@dataclass(frozen=True, slots=True)
class CatalogDelta:
    """How a new catalog differs from the stored one; storage applies it, alerts read it."""

    added: tuple[Model, ...]
    returned: tuple[tuple[Model, Model], ...]  # (as it vanished, as it is now)
    changed: tuple[tuple[Model, Model], ...]  # (old, new), content hash differs
    vanished: tuple[Model, ...]  # live until now, missing for the first time
    removed: tuple[Model, ...]  # vanished last time and still missing

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.returned or self.changed or self.vanished or self.removed)


def check_shrink(known_count: int, new_count: int) -> None:
    if known_count and new_count < known_count * (1 - MAX_SHRINK):
        raise SourceFault(
            "shrunk",
            f"catalog shrank from {known_count} to {new_count} models "
            f"(more than {MAX_SHRINK:.0%} at once)",
        )


def catalog_delta(
    known: Mapping[str, Model], vanished: Mapping[str, Model], current: Mapping[str, Model],
    held: AbstractSet[str] = frozenset(),
) -> CatalogDelta:
    """`held` are ids whose entry was set aside as malformed: they stay as they were, neither
    changed nor counted absent."""
    return CatalogDelta(
        added=tuple(m for i, m in current.items() if i not in known and i not in vanished),
        returned=tuple((vanished[i], m) for i, m in current.items() if i in vanished),
        changed=tuple((known[i], m) for i, m in current.items()
                      if i in known and known[i].content_hash != m.content_hash),
        vanished=tuple(m for i, m in known.items() if i not in current and i not in held),
        removed=tuple(m for i, m in vanished.items() if i not in current and i not in held),
    )


def model_changes(old: Model, new: Model) -> Iterator[CatalogChange]:
    """Every price the model publishes in both versions is compared, field by field (see
    `Model.prices`): prompt and completion first, then the others in the catalog's order. A
    price that appears or disappears (a long-context tier first published, a cache price that
    comes and goes with the provider OpenRouter routes to) is no change: there is nothing to
    compare it with. Going free or paid is one fact about prompt and completion, which says
    what the other prices did too."""
    if old.context_length != new.context_length:
        yield ContextChanged(new.id, old.context_length, new.context_length)
    if None in (old.prompt, old.completion, new.prompt, new.completion):
        return  # dynamic or missing prices are never compared
    if not old.is_free and new.is_free:
        yield WentFree(new.id)
    elif old.is_free and not new.is_free:
        assert new.prompt is not None and new.completion is not None
        yield WentPaid(new.id, new.prompt, new.completion)
    else:
        for field in price_fields(new):
            yield from _price_change(new.id, field, price_of(old, field), price_of(new, field))


def price_fields(model: Model) -> tuple[str, ...]:
    """The fields the model has a price for: prompt and completion first."""
    return tuple(dict.fromkeys(["prompt", "completion", *(name for name, _ in model.prices)]))


def price_of(model: Model, field: str) -> Decimal | None:
    if field in ("prompt", "completion"):
        price: Decimal | None = getattr(model, field)
        return price
    return model.price(field)


def _price_change(model: str, field: str, old: Decimal | None, new: Decimal | None
                  ) -> Iterator[PriceChanged]:
    if old is not None and new is not None and old != new:
        yield PriceChanged(model, field, old, new, pct_change(old, new))


def pct_change(old: Decimal, new: Decimal) -> Decimal | None:
    """Percent change to one decimal; None from zero, where no percentage means anything."""
    return None if old == 0 else ((new - old) / old * 100).quantize(Decimal("0.1"))
