"""Finding models by what people type: ids, permaslugs, names, authors, prefixes, typos (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rankbot.bot.catalog import Model


@dataclass(frozen=True, slots=True)
class Found:
    keys: tuple[str, ...]
    suggestions: tuple[str, ...] = ()


class NameIndex:
    """Keys (model ids, permaslugs) and every lower-cased name each is known by, including the
    part after the author (`qwen3-coder` for `qwen/qwen3-coder`)."""

    def __init__(self, names: Mapping[str, Iterable[str]]) -> None:
        self._names = [(key, _variants(key_names)) for key, key_names in names.items()]
        self.vocabulary = frozenset(name for _, names in self._names for name in names)

    def keys_where(self, test: Callable[[str], bool]) -> list[str]:
        return [key for key, names in self._names if any(map(test, names))]


def _variants(names: Iterable[str]) -> tuple[str, ...]:
    lowered = {name.lower() for name in names}
    return tuple(lowered | {name.split("/", 1)[1] for name in lowered if "/" in name})


def normalize(text: str) -> str:
    return " ".join(text.lower().split())


def search(query: str, *indexes: NameIndex) -> Found:
    """Keys whose names match `query`, by the first tier that finds any: exact, then prefix,
    then substring, case-insensitively. Nothing found: up to three close spellings."""
    q = normalize(query)
    tiers: tuple[Callable[[str], bool], ...] = (q.__eq__, lambda n: n.startswith(q),
                                                 lambda n: q in n)
    for tier in tiers:
        keys = tuple(key for index in indexes for key in index.keys_where(tier))
        if keys:
            return Found(keys)
    vocabulary = sorted(frozenset().union(*(index.vocabulary for index in indexes)))
    return Found((), tuple(difflib.get_close_matches(q, vocabulary, n=3, cutoff=0.6)))


def model_names(model: Model) -> list[str]:
    """What people call a model: `qwen/qwen3-coder`, `Qwen: Qwen3 Coder`, `Qwen3 Coder`, `qwen`
    and its permaslug."""
    names = [model.id, model.permaslug, model.name, model.author]
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


_LAST: list[tuple[Mapping[str, Model], NameIndex]] = []


def catalog_index(models: Mapping[str, Model]) -> NameIndex:
    """The name index of a catalog, rebuilt only when the catalog object changes (storage hands
    out the same mapping until the next poll), so answers do not rebuild it every time."""
    if not _LAST or _LAST[0][0] is not models:
        _LAST[:] = [(models, NameIndex(catalog_names(models)))]
    return _LAST[0][1]
