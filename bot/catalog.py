"""The OpenRouter model catalog: parsing a `/models` payload into `Model`s (pure)."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

from rankbot.bot.cards import PRIVATE_USE
from rankbot.bot.faults import BadEntry, Rejected, SourceFault, check_rejected

PER_MILLION = Decimal(1_000_000)
DYNAMIC = "-1"  # OpenRouter's marker for a router whose price depends on the model it picks
# Sanity bounds: a value past them is a broken entry, set aside for the poll, not news.
PER_TOKEN_MAX = Decimal("0.01")  # $10,000 per 1M tokens
# Priced per call or per search. `image` is not: SOURCES.md's reading of the API says "per
# image", but in every real catalog of 2026 its value is a price per token (most often the
# prompt's), so it is shown and judged per 1M tokens like the others.
PER_UNIT = frozenset({"request", "web_search"})
PER_UNIT_MAX = Decimal(10_000)
NON_PRICES = frozenset({"discount"})
MIN_EXPONENT = -20  # a price with digits below 1e-20 USD is no price anyone charges
MAX_CONTEXT = 100_000_000
MAX_ID = 200
MAX_TEXT = 100_000  # a name or slug longer than this is not a name
MAX_NUMBER = 100  # characters of a number worth reading
PRICE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # prompt, input_cache_write_1h, web_search…
MAX_PRICES = 40  # prices (or tiers) one pricing object may have; a real one has at most 13
T = TypeVar("T")
KIND_NAMES: dict[type, str] = {int: "a whole number", str: "text", dict: "an object"}


@dataclass(frozen=True, slots=True)
class Model:
    """One catalog entry. Prices are exact USD per 1M tokens; None when absent or dynamic."""

    id: str
    name: str
    canonical_slug: str
    context_length: int | None
    prompt: Decimal | None
    completion: Decimal | None
    cache_read: Decimal | None
    dynamic_price: bool
    hugging_face_id: str | None
    alias_target: str | None
    content_hash: str
    expiration_date: date | None = None  # the retirement date OpenRouter announced, if any
    # Every published price, in the catalog's order: USD per 1M tokens, or per unit for the
    # fields in PER_UNIT; long-context and time-of-day tiers as `prompt>200k`,
    # `prompt@10:00-01:00`. Dynamic (router) prices are left out.
    prices: tuple[tuple[str, Decimal], ...] = ()
    # Artificial Analysis indices, where the entry carries them (`intelligence_index`, …).
    benchmarks: tuple[tuple[str, Decimal], ...] = ()

    def price(self, field: str) -> Decimal | None:
        return next((value for name, value in self.prices if name == field), None)

    def benchmark(self, index: str) -> Decimal | None:
        return next((value for name, value in self.benchmarks if name == index), None)

    @property
    def author(self) -> str:
        return self.id.lstrip("~").split("/", 1)[0]

    @property
    def variant(self) -> str | None:
        """`free` for `qwen/qwen3-coder:free`; None for the base model."""
        return self.id.split(":", 1)[1] if ":" in self.id else None

    @property
    def permaslug(self) -> str:
        """Its key in the usage rankings: the canonical slug, plus `:variant` if any."""
        return f"{self.canonical_slug}:{self.variant}" if self.variant else self.canonical_slug

    @property
    def open_weight(self) -> bool:
        return bool(self.hugging_face_id)

    @property
    def is_alias(self) -> bool:
        return self.id.startswith("~")

    @property
    def is_free(self) -> bool:
        return self.prompt == 0 and self.completion == 0


@dataclass(frozen=True, slots=True)
class Catalog:
    """A parsed catalog: models by id, each model's raw JSON object (kept for storage), and the
    entries set aside as malformed, with the ids among them whose last good version stays.
    `raw` is every entry that has a valid id, in the order served, good or set aside (the
    `entries` of a model, the last one served of a held id): the catalog as it can be stored
    and given back. Of entries sharing an id it keeps one, at the first one's place."""

    models: Mapping[str, Model]
    entries: Mapping[str, dict[str, Any]]
    rejected: tuple[Rejected, ...] = ()
    held: frozenset[str] = frozenset()
    raw: Mapping[str, dict[str, Any]] = field(default_factory=dict)


def parse_catalog(body: bytes, known: Mapping[str, Model] | None = None) -> Catalog:
    """Parse a `/models` body, either envelope (`{"data": [...]}`, later with `total_count`).
    A malformed entry is set aside, unless there are so many that the payload is a fault.
    An entry whose content hash equals that of its `known` model is that model: most of a
    catalog is unchanged from one fetch to the next, and was checked when it was new."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, JSON, or huge ints
        raise SourceFault("unparsable", f"catalog is not valid JSON ({str(exc)[:200]})"
                          ) from exc
    entries = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise SourceFault("unparsable", 'catalog has no "data" list')
    if not entries:
        raise SourceFault("empty", "catalog is empty (0 models)")
    models: dict[str, Model] = {}
    raw: dict[str, dict[str, Any]] = {}
    rejected: list[Rejected] = []
    held: set[str] = set()
    served: dict[str, dict[str, Any]] = {}  # by id, at its first place; values set below
    known = known or {}
    for number, entry in enumerate(entries, start=1):
        model_id = entry_id(entry)
        if model_id:
            served[model_id] = entry
        try:
            digest = content_hash(entry) if model_id else ""
            same = known.get(model_id or "")
            model = same if same and same.content_hash == digest else parse_model(entry, digest)
        except (BadEntry, RecursionError) as bad:  # RecursionError: nested past what we hash
            held |= {model_id} if model_id else set()
            what = f"model {model_id}" if model_id else f"entry #{number}"
            field, reason = ((bad.field, bad.reason) if isinstance(bad, BadEntry)
                             else ("entry", "is nested too deeply"))
            rejected.append(Rejected(what, field, reason))
            continue
        models[model.id] = model
        raw[model.id] = entry
    check_rejected(rejected, len(entries), "catalog entries")
    served |= raw  # a good entry wins over a malformed one of the same id, as in `models`
    return Catalog(models, raw, tuple(rejected), frozenset(held - models.keys()), served)


def parse_model(entry: Any, digest: str = "") -> Model:
    """One catalog entry as a Model; BadEntry names the first field that cannot be right.
    `digest` is its content hash, if already computed."""
    model_id = entry_id(entry)
    if model_id is None:
        raise BadEntry("id", "is missing or not a short printable string")
    pricing = _optional(entry, "pricing", dict) or {}
    _check_prices(pricing, "pricing")
    dynamic = DYNAMIC in (pricing.get("prompt"), pricing.get("completion"))
    target = entry.get("alias_target")
    if isinstance(target, dict):
        target = target.get("slug")
    if target is not None and not isinstance(target, str):
        raise BadEntry("alias_target", "is neither a slug nor an object with one")
    target = _slug(target, "alias_target")
    context = _optional(entry, "context_length", int)
    if context is not None and not 0 <= context <= MAX_CONTEXT:
        raise BadEntry("context_length", f"{_shown(context)} is out of range")
    return Model(
        id=model_id,
        name=PRIVATE_USE.sub("", _optional(entry, "name", str) or "") or model_id,
        canonical_slug=_slug(_optional(entry, "canonical_slug", str), "canonical_slug")
        or model_id.split(":", 1)[0],
        context_length=context,
        prompt=None if dynamic else per_million(pricing.get("prompt")),
        completion=None if dynamic else per_million(pricing.get("completion")),
        cache_read=per_million(pricing.get("input_cache_read")),
        dynamic_price=dynamic,
        hugging_face_id=_slug(_optional(entry, "hugging_face_id", str), "hugging_face_id"),
        alias_target=target,
        content_hash=digest or content_hash(entry),
        expiration_date=_expiration(entry),
        prices=() if dynamic else published_prices(pricing),
        benchmarks=_benchmarks(entry),
    )


def published_prices(pricing: dict[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    """Every price in a checked `pricing` object, by field name (see `Model.prices`)."""
    prices: list[tuple[str, Decimal]] = []
    for key, value in pricing.items():
        if key == "overrides":
            for tier in value:
                label = tier_label(tier)
                prices += [(f"{name}{label}", price) for name, price
                           in published_prices({k: v for k, v in tier.items()
                                                if not _is_int(v)})]
        elif key not in NON_PRICES and value != DYNAMIC:
            price = _price(value, key, PER_UNIT_MAX if key in PER_UNIT else PER_TOKEN_MAX)
            prices.append((key, price.normalize() if key in PER_UNIT else _scaled(price)))
    return tuple(prices)


def tier_label(tier: dict[str, Any]) -> str:
    """`>200k` for prompts over 200,000 tokens; `@10:00-01:00` for a UTC time of day."""
    tokens, start, end = (tier.get(k) for k in ("min_prompt_tokens", "utc_start", "utc_end"))
    if isinstance(tokens, int):
        return f">{tokens // 1000}k" if tokens % 1000 == 0 else f">{tokens}"
    if isinstance(start, int) and isinstance(end, int):
        return f"@{start // 100:02d}:{start % 100:02d}-{end // 100:02d}:{end % 100:02d}"
    return "@tier"


def _expiration(entry: dict[str, Any]) -> date | None:
    text = _optional(entry, "expiration_date", str)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise BadEntry("expiration_date", f"{_shown(text)} is not a date") from None


def _benchmarks(entry: dict[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    """The Artificial Analysis indices; one that is not a number from 0 to 1,000 is left
    out (they are shown, never alerted on: no reason to set the model aside)."""
    benchmarks = entry.get("benchmarks")
    indices = benchmarks.get("artificial_analysis") if isinstance(benchmarks, dict) else None
    if not isinstance(indices, dict):
        return ()
    return tuple((name, Decimal(str(value)).normalize()) for name, value in indices.items()
                 if isinstance(name, str) and name.endswith("_index")
                 and PRICE_NAME.fullmatch(name)
                 and isinstance(value, int | float) and not isinstance(value, bool)
                 and 0 <= value <= 1000)


def entry_id(entry: Any) -> str | None:
    """The entry's id if it is one we can name it by (see `is_slug`)."""
    model_id = entry.get("id") if isinstance(entry, dict) else None
    return model_id if isinstance(model_id, str) and is_slug(model_id) else None


def is_slug(text: str) -> bool:
    """A short name without spaces, control or private-use characters (none of those is
    printable but the space): what an id, a slug or a Hugging Face repo looks like, and
    nothing that could pass for markup of rankbot's own (`bot.cards.channel_link`)."""
    return 0 < len(text) <= MAX_ID and text.isprintable() and " " not in text


def _slug(value: str | None, field: str) -> str | None:
    if not value:
        return None
    if not is_slug(value):
        raise BadEntry(field, f"{_shown(value)} is not a slug")
    return value


def _optional(entry: dict[str, Any], key: str, kind: type[T]) -> T | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadEntry(key, f"is a {type(value).__name__}, not {KIND_NAMES[kind]}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise BadEntry(key, f"is {len(value):,} characters long")
    return value


def _check_prices(pricing: dict[str, Any], where: str) -> None:
    """Every price is a finite decimal string (or number) from 0 to the sanity bound, or the
    router marker "-1"; long-context tiers (`overrides`) are checked the same way."""
    if len(pricing) > MAX_PRICES:
        raise BadEntry(where, f"has {len(pricing)} prices")
    for key, value in pricing.items():
        if not isinstance(key, str) or not PRICE_NAME.fullmatch(key):
            # A price's name is shown and alerted on: only a plain name may be one.
            raise BadEntry(where, f"has a price named {_shown(key)}")
        field = f"{where}.{key}"
        if key == "overrides":
            tiers = value if isinstance(value, list) and len(value) <= MAX_PRICES else [None]
            for tier in tiers:
                if not isinstance(tier, dict):
                    raise BadEntry(field, "is not a list of price tiers")
                # A tier's prices are strings; its conditions (min_prompt_tokens, utc_start)
                # are whole numbers.
                _check_prices({k: v for k, v in tier.items() if not _is_int(v)}, field)
        elif key not in NON_PRICES and value != DYNAMIC:
            _price(value, field, PER_UNIT_MAX if key in PER_UNIT else PER_TOKEN_MAX)


def _price(value: object, field: str, limit: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadEntry(field, f"is a {type(value).__name__}, not a price")
    price = _checked(str(value), limit)
    if isinstance(price, str):
        raise BadEntry(field, f"{_shown(value)} {price}")
    return price


@lru_cache(maxsize=4096)  # a catalog repeats a few hundred price strings thousands of times
def _checked(text: str, limit: Decimal) -> Decimal | str:
    """The price, or why it is none."""
    try:
        price = Decimal(text) if len(text) <= MAX_NUMBER else None
    except InvalidOperation:
        price = None
    if price is None:
        return "is not a number"
    if not price.is_finite() or price < 0:
        return "is not a price"
    if price > limit or (price and price.adjusted() < MIN_EXPONENT):
        return "is out of range"
    return price


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """An outside value in a fault message: quoted, and short."""
    text = repr(value)
    return text if len(text) <= 24 else text[:23] + "…"


def content_hash(entry: dict[str, Any]) -> str:
    """A digest of everything OpenRouter says about a model, so an unchanged one is skipped.
    pickle is three times faster than json.dumps here and is stable for equal JSON within one
    Python version; after an upgrade, models may get one new version each (never an alert:
    alerts compare prices by value)."""
    return hashlib.blake2b(pickle.dumps(entry, protocol=5), digest_size=16).hexdigest()


def per_million(price: object) -> Decimal | None:
    """USD per token (a checked decimal string) → exact USD per 1M tokens; None if absent or
    dynamic."""
    if price is None or price == DYNAMIC:
        return None
    return _scaled(_price(price, "price", PER_TOKEN_MAX))


@lru_cache(maxsize=4096)
def _scaled(per_token: Decimal) -> Decimal:
    return (per_token * PER_MILLION).normalize()


class ModelIndex:
    """Finds the catalog model behind a rankings permaslug (`canonical_slug[:variant]`)."""

    def __init__(self, models: Iterable[Model]) -> None:
        self._by_key = {(m.canonical_slug, m.variant): m for m in models if not m.is_alias}

    def lookup(self, permaslug: str) -> Model | None:
        """The exact variant if listed, else its base model; None for unknown or stealth."""
        slug, _, variant = permaslug.partition(":")
        return self._by_key.get((slug, variant or None)) or self._by_key.get((slug, None))

    def is_open_weight(self, permaslug: str) -> bool:
        model = self.lookup(permaslug)
        return model is not None and model.open_weight
