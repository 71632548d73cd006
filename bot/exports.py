"""The stored history as records for `rankbot export`: price steps, and the changes a replay of
the stored catalogs finds (pure).

A price step is a span of time during which one price of one model held: versions of a model
that changed for another reason (its context, its description) do not split it; a time the model
was not listed does. The changes are those a channel with the default rules, subscribed from the
first stored catalog, was told: each stored catalog is diffed against the one before, with the
poll's own diff and alert policy (a model missing from two catalogs in a row is removed; a slow
price drift is told once it adds up to the threshold).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from rankbot.bot.alerts import CatalogNews, hear
from rankbot.bot.catalog import Model
from rankbot.bot.changes import Change
from rankbot.bot.diff import catalog_delta, price_fields, price_of
from rankbot.bot.matching import NameIndex, catalog_names, search
from rankbot.bot.rules import DEFAULT_RULES, Rules

# The prices listed first for each model; the others follow in the order they first appear.
FIRST_FIELDS = ("prompt", "completion", "input_cache_read")


@dataclass(frozen=True, slots=True)
class Listed:
    """A stored version of a model: as it was from one catalog fetch until another (None: it
    still is)."""

    model: Model
    since: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class PriceStep:
    """One price of one model (USD per 1M tokens, or per unit for `request`, `image`,
    `web_search`) from `since` until `until` (None: current)."""

    model: str
    name: str  # the model's name at the end of the step
    field: str  # as `Model.prices` names it: prompt, input_cache_read, prompt>200k, …
    since: datetime
    until: datetime | None
    price: Decimal


def price_steps(versions: Iterable[Listed]) -> list[PriceStep]:
    """Every price step, by model id, then field, then time. A field without a price (a router
    priced per request; no cache pricing) has no step for that time."""
    by_model: dict[str, list[Listed]] = {}
    for version in versions:
        by_model.setdefault(version.model.id, []).append(version)
    steps: list[PriceStep] = []
    for model_id in sorted(by_model):
        history = sorted(by_model[model_id], key=lambda v: v.since)
        named = dict.fromkeys(f for v in history for f in price_fields(v.model))
        for field in sorted(named, key=lambda f: FIRST_FIELDS.index(f)
                            if f in FIRST_FIELDS else len(FIRST_FIELDS)):
            steps += _field_steps(history, field)
    return steps


def _field_steps(history: Sequence[Listed], field: str) -> list[PriceStep]:
    steps: list[PriceStep] = []
    for version in history:
        price = price_of(version.model, field)
        last = steps[-1] if steps else None
        if price is None:
            continue
        if last is not None and last.until == version.since and last.price == price:
            steps[-1] = PriceStep(last.model, version.model.name, field, last.since,
                                  version.until, last.price)
        else:
            steps.append(PriceStep(version.model.id, version.model.name, field, version.since,
                                   version.until, price))
    return steps


def in_force_since(steps: Iterable[PriceStep], since: datetime) -> list[PriceStep]:
    """The steps that still held at or after `since`."""
    return [step for step in steps if step.until is None or step.until > since]


class NoMatch(ValueError):
    """A query that matches no model; the message says so, with close spellings if any."""


def matching_ids(query: str, models: Mapping[str, Model]) -> set[str]:
    """The ids `/price QUERY` would show, looked for among `models` (every model ever stored,
    as last listed): the matches, by exact name, then prefix, then substring, and every
    variant (`:free`, `:batch`) of each."""
    found = search(query, NameIndex(catalog_names(models)))
    if not found.keys:
        hint = (f"; did you mean {' or '.join(map(repr, found.suggestions))}?"
                if found.suggestions else "")  # quoted: a name may hold control characters
        raise NoMatch(f"no stored model matches {query!r}{hint}")
    bases = {key.split(":", 1)[0] for key in found.keys}
    return {model_id for model_id in models if model_id.split(":", 1)[0] in bases}


@dataclass(frozen=True, slots=True)
class StoredFetch:
    """One stored catalog fetch: the model versions that begin with it and the ids of those
    that end with it (replaced, or missing from it)."""

    at: datetime
    sha256: str
    begun: Sequence[Model]
    ended: Sequence[str]


def replay_changes(fetches: Iterable[StoredFetch], rules: Rules = DEFAULT_RULES
                   ) -> Iterator[tuple[datetime, Change]]:
    """The changes a poll of each fetch in turn told a channel with these rules, subscribed from
    the first: each catalog is diffed against the one before with the poll's own diff, the
    channel's memory carried along. A fetch identical to the one before (the same bytes) is not
    diffed, as the poll does not diff it. A model set aside as malformed in a fetch stays live in
    the stored history, as in the poll; one that vanished and was set aside in the next fetch is
    told removed here one fetch early (the store does not keep that it was held)."""
    listed: dict[str, Model] = {}
    known: dict[str, Model] | None = None  # live in the last diffed fetch; None: no baseline
    vanished: dict[str, Model] = {}
    memory: dict[str, str] = {}
    last_sha: str | None = None
    for fetch in fetches:
        for model_id in fetch.ended:
            listed.pop(model_id, None)
        listed.update((model.id, model) for model in fetch.begun)
        if fetch.sha256 == last_sha:
            continue
        last_sha = fetch.sha256
        if known is not None:
            delta = catalog_delta(known, vanished, listed)
            telling = hear(CatalogNews(delta), rules, memory)
            yield from ((fetch.at, change) for change in telling.changes)
            for key in telling.forget:
                memory.pop(key, None)
            memory.update(telling.remember)
            vanished = {model.id: model for model in delta.vanished}
        known = dict(listed)
