"""Retirements (pure): which announced dates are real, which reminder is due, and what to move to.

OpenRouter's catalog gives some models an `expiration_date`. A date more than 5 years after the
day it is seen (`2098-12-31`, `9999-01-01`) is a placeholder, never a sunset. Reminders go 30, 7
and 1 days before (`REMINDERS`).

A retiring model's successor is the same author's newest model of its family that is not
leaving itself; failing that, the author's most used model over the last 7 days of rankings.
A family is an id without its author's prefix, its `:variant`, and every number in it:
`openai/gpt-5.2-chat` and `openai/gpt-5.5-chat` are both `gpt-chat`, `z-ai/glm-4.5` and
`z-ai/glm-5.2` both `glm`, `z-ai/glm-4.5v` is `glm-v`. Newer is a higher version, the numbers
of the id read in order ((5, 5) > (5, 2)); a variant's own base model (`x/y` for `x/y:free`)
counts too, as the same version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from rankbot.bot.cards import Card, attribution, days_left
from rankbot.bot.catalog import Model, ModelIndex
from rankbot.bot.ports import History

REMINDERS = (30, 7, 1)  # days before a retirement, largest first
PLACEHOLDER_YEARS = 5
USAGE_DAYS = 7
NUMBER = re.compile(r"\d+")
SIZE = re.compile(r"\d+(?:\.\d+)?[bmkt]\b|\d+x\d+[bm]?\b")  # 70b, 1.5b, a3b, 8x7b: no versions
Usage = Callable[[], Mapping[str, int]]  # tokens by permaslug, over the last USAGE_DAYS


@dataclass(frozen=True, slots=True)
class Sunset:
    """A model with a real retirement date, and the model suggested instead (None if none)."""

    model: str
    name: str
    retires: date
    successor: str | None


def is_placeholder(retires: date, today: date) -> bool:
    """More than 5 years away: a date that stands for "not planned", not a sunset."""
    try:
        horizon = today.replace(year=today.year + PLACEHOLDER_YEARS)
    except ValueError:  # 29 February
        horizon = today.replace(year=today.year + PLACEHOLDER_YEARS, day=28)
    return retires > horizon


def retirement(model: Model, today: date) -> date | None:
    """The model's real retirement date, if it has one (aliases mirror another model)."""
    retires = model.expiration_date
    if retires is None or model.is_alias or is_placeholder(retires, today):
        return None
    return retires


def reminder(days_left: int) -> int | None:
    """The reminder due with this many days left: 30, 7 or 1 (the nearest passed); None
    before the first or after the day."""
    if days_left < 0:
        return None
    return min((days for days in REMINDERS if days_left <= days), default=None)


def family(model_id: str) -> tuple[str, str]:
    """(author, family): `openai/gpt-5.2-chat:free` → ("openai", "gpt-chat")."""
    author, _, rest = model_id.lstrip("~").partition("/")
    stem = NUMBER.sub("", rest.split(":", 1)[0]).replace(".", "-")
    return author, "-".join(part for part in stem.split("-") if part)


def version(model_id: str) -> tuple[int, ...]:
    """The version numbers of an id, in order, sizes aside: `openai/gpt-5.2-chat` → (5, 2),
    `meta-llama/llama-3.3-70b-instruct` → (3, 3)."""
    name = SIZE.sub("", model_id.split("/", 1)[-1].split(":", 1)[0])
    return tuple(int(n) for n in NUMBER.findall(name))


def successor(model: Model, live: Mapping[str, Model], usage: Usage, today: date
              ) -> str | None:
    """What to move to from `model` (see the module's docstring)."""
    return _successor(model, staying_by_author(live, today).get(model.author, []), usage)


def staying_by_author(live: Mapping[str, Model], today: date) -> dict[str, list[Model]]:
    """The models not retiring, aliases aside, by author: a successor's candidates."""
    staying: dict[str, list[Model]] = {}
    for other in live.values():
        if not other.is_alias and retirement(other, today) is None:
            staying.setdefault(other.author, []).append(other)
    return staying


def _successor(model: Model, authors: list[Model], usage: Usage) -> str | None:
    candidates = [m for m in authors if m.id != model.id]
    base = model.id.split(":", 1)[0]
    kin, mine = family(model.id), version(model.id)
    newer = [m for m in candidates if family(m.id) == kin
             and (version(m.id) > mine or m.id == base)]
    if newer:
        # The newest version; of equal ones, the base model before its variants.
        return max(newer, key=lambda m: (version(m.id), m.variant is None, m.id)).id
    return most_used(model, candidates, usage)


def most_used(model: Model, candidates: Iterable[Model], usage: Usage) -> str | None:
    """Of `candidates`, the one with the most tokens in the rankings; None if none ranked."""
    candidates = list(candidates)
    if not candidates:
        return None
    index = ModelIndex(candidates)
    tokens: dict[str, int] = {}
    for slug, count in usage().items():
        found = index.lookup(slug)
        if found is not None:
            tokens[found.id] = tokens.get(found.id, 0) + count
    if not tokens:
        return None
    return max(tokens, key=lambda model_id: (tokens[model_id], model_id))


def sunsets(live: Mapping[str, Model], today: date, usage: Usage, until: date | None = None
            ) -> tuple[Sunset, ...]:
    """Every model of the catalog with a real retirement date (up to `until`), soonest
    first."""
    cached: list[Mapping[str, int]] = []

    def once() -> Mapping[str, int]:  # the rankings are read at most once, if needed
        if not cached:
            cached.append(usage())
        return cached[0]

    found = [(retires, model) for model in live.values()
             if (retires := retirement(model, today)) is not None
             and (until is None or today <= retires <= until)]
    if not found:
        return ()
    staying = staying_by_author(live, today)
    return tuple(Sunset(m.id, m.name, retires, _successor(m, staying.get(m.author, []), once))
                 for retires, m in sorted(found, key=lambda pair: (pair[0], pair[1].id)))


def dates(live: Mapping[str, Model], today: date) -> dict[str, date]:
    """The real retirement dates of a catalog, by model id."""
    return {model.id: retires for model in live.values()
            if (retires := retirement(model, today)) is not None}


def usage_over_week(totals: Callable[[date, date], Mapping[str, int]],
                    latest: Callable[[], date | None]) -> Usage:
    """Tokens by permaslug over the 7 days of rankings ending on the `latest` day (no rankings:
    nothing); read only when asked."""
    def read() -> Mapping[str, int]:
        end = latest()
        return {} if end is None else totals(end - timedelta(days=USAGE_DAYS - 1), end)
    return read


# -- /sunsets and the digest's "Leaving soon" ---------------------------------------------------

DEFAULT_DAYS = 30
MAX_DAYS = 365
NONE_LEAVING = "Nothing announced"


def leaving(live: Mapping[str, Model], today: date, days: int, usage: Usage
            ) -> tuple[Sunset, ...]:
    """The models retiring from `today` to `days` later, soonest first."""
    return sunsets(live, today, usage, until=today + timedelta(days=days))


def leaving_lines(found: Iterable[Sunset], today: date | None = None) -> list[str]:
    """`2026-08-10 (in 7 days) openai/gpt-5.2-chat (OpenAI: GPT-5.2 Chat) → openai/gpt-5.3-chat`;
    without `today`, no count of days."""
    return [f"{s.retires}{f' ({days_left((s.retires - today).days)})' if today else ''} "
            f"{s.model} ({s.name})" + (f" → {s.successor}" if s.successor else "")
            for s in found]


def answer(history: History, now: datetime, days: int) -> Card:
    """`/sunsets [days]`: what leaves the catalog within `days`, with dates and successors."""
    fetch = history.last_catalog_fetch()
    if fetch is None:
        return Card("Leaving OpenRouter", ("No catalog yet: run `rankbot poll` once (or keep "
                                           "`rankbot run` going), then ask again.",))
    latest = history.latest_ranking_date()
    found = leaving(history.live_models(), now.date(), days,
                    usage_over_week(history.token_totals, lambda: latest))
    lines = leaving_lines(found, now.date()) or [f"{NONE_LEAVING} to leave in the next "
                                                 f"{days} days."]
    footer = f"Retirement dates as of {fetch.at:%Y-%m-%d %H:%M} UTC"
    if latest is not None:  # a successor may be the author's most used model
        footer += f" · {attribution(latest)}"
    return Card(f"Leaving OpenRouter in the next {days} days", tuple(lines), (), footer)
