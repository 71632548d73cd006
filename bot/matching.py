"""Finding models by what people type: ids, permaslugs, names, authors, prefixes, typos (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from bot.catalog import Model


@dataclass(frozen=True, slots=True)
class Found:
    keys: tuple[str, ...]
    suggestions: tuple[str, ...] = ()


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def search(query: str, names: Mapping[str, Iterable[str]]) -> Found:
    """Keys whose names match `query`, by the first tier that finds any: exact (id, permaslug,
    name, author), then prefix (of a name or of the part after "/"), then substring. Nothing
    found: up to three close spellings to suggest."""
    q = normalize(query)
    index = {key: {normalize(n) for n in key_names} for key, key_names in names.items()}
    tiers: tuple[Callable[[str], bool], ...] = (
        lambda name: name == q,
        lambda name: name.startswith(q) or name.split("/", 1)[-1].startswith(q),
        lambda name: q in name,
    )
    for tier in tiers:
        keys = tuple(key for key, key_names in index.items() if any(map(tier, key_names)))
        if keys:
            return Found(keys)
    vocabulary = sorted({part for key_names in index.values() for name in key_names
                         for part in name.split("/")})
    return Found((), tuple(difflib.get_close_matches(q, vocabulary, n=3, cutoff=0.6)))


def model_names(model: Model) -> list[str]:
    """What people call a model: `qwen/qwen3-coder`, `Qwen: Qwen3 Coder`, `Qwen3 Coder`, `qwen`
    and its permaslug."""
    names = [model.id, model.canonical_slug, model.name, model.author]
    if ": " in model.name:
        names.append(model.name.split(": ", 1)[1])
    return names


def catalog_names(models: Mapping[str, Model]) -> dict[str, list[str]]:
    """Searchable names by model id. An alias (`~anthropic/claude-sonnet-latest`) is a name of
    the model it points at; one whose target is unknown is searchable as itself."""
    names = {m.id: model_names(m) for m in models.values()
             if not (m.is_alias and m.alias_target in models)}
    for alias in models.values():
        if alias.is_alias and alias.alias_target in names:
            names[alias.alias_target] += [alias.id, alias.name]
    return names
