"""The OpenRouter model catalog: parsing a `/models` payload into `Model`s (pure)."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.faults import SourceFault

PER_MILLION = Decimal(1_000_000)
DYNAMIC = "-1"  # OpenRouter's marker for a router whose price depends on the model it picks


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
    """A parsed catalog: models by id, and each model's raw JSON object, kept for storage."""

    models: Mapping[str, Model]
    entries: Mapping[str, dict[str, Any]]


def parse_catalog(body: bytes) -> Catalog:
    """Parse a `/models` body, either envelope (`{"data": [...]}`, later with `total_count`)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFault("unparsable", f"catalog is not valid JSON ({exc})") from exc
    entries = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise SourceFault("unparsable", 'catalog has no "data" list')
    if not entries:
        raise SourceFault("empty", "catalog is empty (0 models)")
    models: dict[str, Model] = {}
    raw: dict[str, dict[str, Any]] = {}
    for entry in entries:
        model = parse_model(entry)
        models[model.id] = model
        raw[model.id] = entry
    return Catalog(models, raw)


def parse_model(entry: Any) -> Model:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        raise SourceFault("unparsable", "catalog entry without an id")
    pricing = entry.get("pricing") or {}
    dynamic = DYNAMIC in (pricing.get("prompt"), pricing.get("completion"))
    target = entry.get("alias_target")
    return Model(
        id=entry["id"],
        name=str(entry.get("name") or entry["id"]),
        canonical_slug=str(entry.get("canonical_slug") or entry["id"].split(":", 1)[0]),
        context_length=_int_or_none(entry.get("context_length")),
        prompt=None if dynamic else per_million(pricing.get("prompt")),
        completion=None if dynamic else per_million(pricing.get("completion")),
        cache_read=per_million(pricing.get("input_cache_read")),
        dynamic_price=dynamic,
        hugging_face_id=entry.get("hugging_face_id") or None,
        alias_target=target.get("slug") if isinstance(target, dict) else target,
        content_hash=content_hash(entry),
    )


def content_hash(entry: dict[str, Any]) -> str:
    """A digest of everything OpenRouter says about a model, so an unchanged one is skipped.
    pickle is three times faster than json.dumps here and is stable for equal JSON within one
    Python version; after an upgrade, models may get one new version each (never an alert:
    alerts compare prices by value)."""
    return hashlib.blake2b(pickle.dumps(entry, protocol=5), digest_size=16).hexdigest()


def per_million(price: object) -> Decimal | None:
    """USD per token (a decimal string) → exact USD per 1M tokens; None if absent or dynamic."""
    if price is None or price == DYNAMIC:
        return None
    try:
        value = Decimal(str(price))
    except InvalidOperation as exc:
        raise SourceFault("unparsable", f"price {price!r} is not a number") from exc
    return (value * PER_MILLION).normalize() if value.is_finite() else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
