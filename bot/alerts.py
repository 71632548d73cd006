"""What a channel hears: the one place that decides, thresholds and rules included (pure).

A poll observes news (`CatalogNews`, `RankingsNews`: what changed, as facts); `hear` turns one
piece of news into what one channel is told, given its rules and what it was told before.

A channel's memory is sparse: it holds only what the channel was told that differs from the last
snapshot, keyed `rank:<permaslug>`, `price:<id>:<side>`. A value with no key is taken to be
what the previous snapshot said. So a slow drift (a rank slipping one place a day, a price
creeping up) is reported once it adds up to the threshold, and then never again; a fresh channel,
or a one-off diff, simply has an empty memory.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from decimal import Decimal

from rankbot.bot.catalog import Model
from rankbot.bot.changes import (
    AliasMoved,
    CatalogChange,
    Change,
    EnteredTop,
    LeftTop,
    ModelAdded,
    ModelRemoved,
    NewLeader,
    OpenWeightShareChanged,
    PriceChanged,
    RankingChange,
    RankMoved,
    WentFree,
    WentPaid,
)
from rankbot.bot.diff import CatalogDelta, model_changes, pct_change
from rankbot.bot.leaderboard import Leaderboard, open_weight_count
from rankbot.bot.rules import Rules

Memory = Mapping[str, str]
SIDES = ("prompt", "completion")


@dataclass(frozen=True, slots=True)
class CatalogNews:
    """How a new catalog differs from the stored one."""

    delta: CatalogDelta
    memory = "price:"  # the prefix of the memory keys hearing it reads


@dataclass(frozen=True, slots=True)
class RankingsNews:
    """The usage leaderboard before and after a new day of rankings."""

    old: Leaderboard
    new: Leaderboard
    is_open: Callable[[str], bool]  # whether a permaslug is an open-weight model
    memory = "rank:"


News = CatalogNews | RankingsNews


def hear(news: News, rules: Rules, memory: Memory | None = None) -> Telling:
    """What a channel with these rules and this memory is told about `news`."""
    if isinstance(news, CatalogNews):
        return catalog_alerts(news.delta, rules, memory)
    return ranking_alerts(news.old, news.new, rules, news.is_open, memory)


def admits(rules: Rules, model_id: str | None, kind: str) -> bool:
    """Whether a change of `kind` about `model_id` (an id or a permaslug; None for changes
    about no one model) may be sent under `rules`: its kinds, watch and ignore patterns."""
    if kind not in rules.kinds:
        return False
    if model_id is None:
        return True
    if not rules.variants and ":" in model_id:
        return False
    bare = model_id.lower().lstrip("~")  # an alias matches the patterns of its author
    names = (model_id.lower(), bare, bare.split("/", 1)[0])

    def hit(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)
    return (not rules.watch or hit(rules.watch)) and not hit(rules.ignore)


def notable_changes(old: Model, new: Model, rules: Rules) -> Iterator[CatalogChange]:
    """One model's changes worth a message: a price must move by the channel's threshold
    (from or to free is always news)."""
    for change in model_changes(old, new):
        if not isinstance(change, PriceChanged) or change.pct is None \
                or abs(change.pct) >= rules.min_price_change_pct:
            yield change


@dataclass
class Telling:
    """The changes to send, and how the channel's memory changes once they are sent."""

    changes: list[Change] = field(default_factory=list)
    remember: dict[str, str] = field(default_factory=dict)
    forget: set[str] = field(default_factory=set)

    def tell(self, change: Change, rules: Rules) -> bool:
        """Keep the change if the rules admit it; True if they did."""
        admitted = admits(rules, change.model, change.kind)
        if admitted:
            self.changes.append(change)
        return admitted


def catalog_alerts(delta: CatalogDelta, rules: Rules, memory: Memory | None = None) -> Telling:
    """Catalog changes for one channel. An alias (`~...-latest`) mirrors another model, so
    only its coming, going and moving to another model are its own news."""
    telling = Telling()
    for model in delta.added:
        telling.tell(ModelAdded(model.id, model.name, model.prompt, model.completion,
                                model.context_length), rules)
    for model in delta.removed:
        telling.tell(ModelRemoved(model.id, model.name), rules)
        telling.forget |= {_price_key(model.id, side) for side in SIDES}
    pairs = (*delta.changed, *delta.returned)
    moves = {(_terms(old), _terms(new)) for old, new in pairs if not new.is_alias}
    for old, new in pairs:
        if not new.is_alias:
            _model_alerts(old, new, rules, memory or {}, telling)
        elif alias_moved(old, new, rules, moves):
            telling.tell(AliasMoved(new.id, old.alias_target, new.alias_target, old.prompt,
                                    new.prompt, old.completion, new.completion,
                                    old.context_length, new.context_length), rules)
    telling.forget -= telling.remember.keys()
    return telling


Terms = tuple[Decimal | None, Decimal | None, int | None]


def _terms(model: Model) -> Terms:
    return model.prompt, model.completion, model.context_length


def alias_moved(old: Model, new: Model, rules: Rules, moves: AbstractSet[tuple[Terms, Terms]]
                ) -> bool:
    """Whether an alias now resolves to another model. OpenRouter names the target
    (`alias_target`) in newer catalogs; where it does not, a jump in price (past the channel's
    threshold) or context that no real model made in the same snapshot is taken as a move, so
    that a price change of the target itself is told once, on the target."""
    if old.alias_target and new.alias_target:
        return old.alias_target != new.alias_target
    if (_terms(old), _terms(new)) in moves:
        return False
    return old.context_length != new.context_length or any(
        _crossed(getattr(old, side), getattr(new, side), rules) for side in SIDES)


def _crossed(old: Decimal | None, new: Decimal | None, rules: Rules) -> bool:
    if old is None or new is None or old == new:
        return False
    pct = pct_change(old, new)
    return pct is None or abs(pct) >= rules.min_price_change_pct


def _model_alerts(old: Model, new: Model, rules: Rules, memory: Memory,
                  telling: Telling) -> None:
    """Compares prices with what the channel was told, which may be older than `old`."""
    said = {side: memory.get(_price_key(new.id, side)) for side in SIDES}
    told = replace(old, prompt=_price(said["prompt"], old.prompt),
                   completion=_price(said["completion"], old.completion))
    reported: set[str] = set()
    for change in notable_changes(told, new, rules):
        if telling.tell(change, rules) and isinstance(change, PriceChanged | WentFree | WentPaid):
            reported |= {change.side} if isinstance(change, PriceChanged) else set(SIDES)
    for side in SIDES:
        key, before, now = _price_key(new.id, side), getattr(told, side), getattr(new, side)
        if side in reported or before == now or before is None:
            telling.forget.add(key)
        else:
            telling.remember[key] = str(before)


def _price_key(model_id: str, side: str) -> str:
    return f"price:{model_id}:{side}"


def _price(said: str | None, default: Decimal | None) -> Decimal | None:
    return default if said is None else Decimal(said)


def ranking_alerts(old: Leaderboard, new: Leaderboard, rules: Rules,
                   is_open: Callable[[str], bool], memory: Memory | None = None) -> Telling:
    """Usage-ranking changes for one channel, within its top N."""
    memory = memory or {}
    telling = Telling()
    n = rules.top_n

    def told_rank(slug: str) -> int | None:
        said = memory.get(f"rank:{slug}")
        return old.rank_of(slug) if said is None else int(said) if said else None

    _leader_and_share(old, new, rules, is_open, telling)
    remembered = [key.removeprefix("rank:") for key in memory if key.startswith("rank:")]
    slugs = dict.fromkeys([s.permaslug for s in (*new.top(n), *old.top(n))] + remembered)
    for slug in slugs:
        said, now, key = told_rank(slug), new.rank_of(slug), f"rank:{slug}"
        change = rank_change(slug, said, now, n, rules.min_rank_move)
        reported = change is not None and telling.tell(change, rules)
        outside = (said is None or said > n) and (now is None or now > n)
        if reported or said == now or outside:
            telling.forget.add(key)
        else:
            telling.remember[key] = "" if said is None else str(said)
    return telling


def rank_change(slug: str, said: int | None, now: int | None, n: int,
                min_move: int) -> RankingChange | None:
    """Entering or leaving the top N takes a real move too (or a first appearance), so a model
    hovering at the edge does not flap in and out."""
    if now is not None and now <= n and (said is None or said > n):
        return EnteredTop(slug, now, said, n) if said is None or said - now >= min_move else None
    if said is None or said > n:
        return None
    if now is None or now > n:
        return LeftTop(slug, said, now, n) if now is None or now - said >= min_move else None
    return RankMoved(slug, said, now) if abs(said - now) >= min_move else None


def _leader_and_share(old: Leaderboard, new: Leaderboard, rules: Rules,
                      is_open: Callable[[str], bool], telling: Telling) -> None:
    if old.leader and new.leader and old.leader.permaslug != new.leader.permaslug:
        telling.tell(NewLeader(new.leader.permaslug, old.leader.permaslug), rules)
    before, after = (open_weight_count(b, rules.top_n, is_open) for b in (old, new))
    if before != after:
        telling.tell(OpenWeightShareChanged(before, after, rules.top_n), rules)
