"""What a channel hears: the one place that decides, thresholds and rules included (pure).

A poll observes news (`CatalogNews`, `RankingsNews`: what changed, as facts); `hear` turns one
piece of news into what one channel is told, given its rules and what it was told before.

A channel's memory is sparse: it holds only what the channel was told that differs from the last
snapshot, keyed `rank:<permaslug>`, `price:<id>:<field>` (`price:openai/gpt-4o:prompt`,
`price:anthropic/claude-sonnet-4.5:prompt>200k`: a price as `Model.prices` names it). A value
with no key is taken to be what the previous snapshot said. So a slow drift (a rank slipping
one place a day, a price creeping up) is reported once it adds up to the threshold, and then
never again; a fresh channel, or a one-off diff, simply has an empty memory. The memory of a
model whose news of that family (prices, rank, retirement date, uptime) the rules cannot let
through is left as it is, neither added to nor forgotten: a person watching one model keeps no
other model's prices, and a channel that mutes a model and takes the mute back finds what it
had been told, so a drift under way is still reported once it adds up.

Retirement dates (`SunsetNews`, news on every catalog poll: reminders come with time) are
taken as told as the previous catalog gave them, with the reminder due on its day;
`sunset:<id>` holds a date a channel was told that the catalog no longer gives, with the last
reminder it got (`2026-08-10/7`), until that day has passed: a date that vanishes and comes
back unchanged is not news, and each reminder goes once.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_DOWN, Decimal

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
    ProviderDegraded,
    ProviderRecovered,
    RankingChange,
    RankMoved,
    SunsetAnnounced,
    SunsetSoon,
    WentFree,
    WentPaid,
)
from rankbot.bot.diff import CatalogDelta, model_changes, pct_change, price_fields, price_of
from rankbot.bot.leaderboard import Leaderboard, open_weight_count
from rankbot.bot.providers import ProviderDelta, Uptime
from rankbot.bot.rules import Rules
from rankbot.bot.sunsets import Sunset, reminder

Memory = Mapping[str, str]
SIDES = ("prompt", "completion")
# The kinds each family of memory keys stands for: a model none of them admits has no memory.
PRICE_KINDS = (PriceChanged.kind, WentFree.kind, WentPaid.kind)
RANK_KINDS = (RankMoved.kind, EnteredTop.kind, LeftTop.kind)
SUNSET_KINDS = (SunsetAnnounced.kind, SunsetSoon.kind)
UPTIME_KINDS = (ProviderDegraded.kind, ProviderRecovered.kind)
RECOVERY_MARGIN = Decimal(1)  # percentage points above min_uptime that end a degraded episode


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


@dataclass(frozen=True, slots=True)
class SunsetNews:
    """Every real retirement date of the catalog on the day of a poll (`bot.sunsets`), and
    the dates the catalog of the previous poll, on its own day, gave: news on every catalog
    poll, an unchanged one too, since reminders come with time."""

    sunsets: tuple[Sunset, ...]
    today: date
    before: Mapping[str, date]  # model id → the previous catalog's date
    since: date  # the previous poll's day
    memory = "sunset:"


@dataclass(frozen=True, slots=True)
class ProvidersNews:
    """How the providers behind the polled models changed (`bot.providers.provider_delta`)."""

    deltas: tuple[ProviderDelta, ...]
    memory = "uptime:"


News = CatalogNews | RankingsNews | SunsetNews | ProvidersNews


def hear(news: News, rules: Rules, memory: Memory | None = None) -> Telling:
    """What a channel with these rules and this memory is told about `news`."""
    if isinstance(news, CatalogNews):
        return catalog_alerts(news.delta, rules, memory)
    if isinstance(news, ProvidersNews):
        return provider_alerts(news.deltas, rules, memory)
    if isinstance(news, SunsetNews):
        return sunset_alerts(news, rules, memory)
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


def admits_any(rules: Rules, model_id: str, kinds: tuple[str, ...]) -> bool:
    """Whether the rules may let through a change of any of `kinds` about this model."""
    return any(admits(rules, model_id, kind) for kind in kinds)


def notable_changes(old: Model, new: Model, rules: Rules) -> Iterator[CatalogChange]:
    """One model's changes worth a message: a price must be one the channel hears
    (`price_fields`) and move by its threshold, each field judged on its own (from or to free is
    always news)."""
    for change in model_changes(old, new):
        if not isinstance(change, PriceChanged) or (rules.hears_price(change.field) and (
                change.pct is None or abs(change.pct) >= rules.min_price_change_pct)):
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
        telling.forget |= {_price_key(model.id, field) for field in price_fields(model)}
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
    """Compares prices with what the channel was told, which may be older than `old`. A price
    the channel does not hear, or that is missing from either version, is not remembered; the
    memory of a model whose price changes the rules never let through is left as it is."""
    if not admits_any(rules, new.id, PRICE_KINDS):
        return
    names = dict.fromkeys([*price_fields(old), *price_fields(new)])
    told = _as_told(old, {name: memory.get(_price_key(new.id, name)) for name in names})
    reported: set[str] = set()
    for change in notable_changes(told, new, rules):
        if telling.tell(change, rules) and isinstance(change, PriceChanged | WentFree | WentPaid):
            reported |= {change.field} if isinstance(change, PriceChanged) else set(names)
    for name in names:
        key, before, now = _price_key(new.id, name), price_of(told, name), price_of(new, name)
        if name in reported or before == now or before is None or now is None \
                or not rules.hears_price(name):
            telling.forget.add(key)
        else:
            telling.remember[key] = str(before)


def _as_told(old: Model, said: Mapping[str, str | None]) -> Model:
    """`old` with the prices the channel was last told in place of its own."""
    def told(name: str, price: Decimal | None) -> Decimal | None:
        return _price(said.get(name), price)
    prices = tuple((name, told(name, price)) for name, price in old.prices)
    return replace(old, prompt=told("prompt", old.prompt),
                   completion=told("completion", old.completion),
                   prices=tuple((name, price) for name, price in prices if price is not None))


def _price_key(model_id: str, side: str) -> str:
    return f"price:{model_id}:{side}"


def _price(said: str | None, default: Decimal | None) -> Decimal | None:
    return default if said is None else Decimal(said)


def ranking_alerts(old: Leaderboard, new: Leaderboard, rules: Rules,
                   is_open: Callable[[str], bool], memory: Memory | None = None) -> Telling:
    """Usage-ranking changes for one channel, within its top N. The memory of a model whose
    rank changes the rules never let through is left as it is."""
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
        if not admits_any(rules, slug, RANK_KINDS):
            continue
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


def sunset_alerts(news: SunsetNews, rules: Rules, memory: Memory | None = None) -> Telling:
    """Retirements for one channel: each new date once (`sunset_announced`, which says where a
    date moved from), then reminders 30, 7 and 1 days before (`sunset_soon`), each once; an
    announcement with fewer days left stands for the reminders already due. What the previous
    catalog said counts as told, as it was due on its day; a date that vanishes is remembered
    until it passes, so that its coming back unchanged is not news."""
    memory = memory or {}

    def said(model_id: str) -> tuple[date | None, int | None]:
        key = _sunset_key(model_id)
        if key in memory:
            return _told(memory[key])
        retires = news.before.get(model_id)
        return (retires, reminder((retires - news.since).days)) if retires else (None, None)

    telling = Telling()
    for sunset in news.sunsets:
        key, left = _sunset_key(sunset.model), (sunset.retires - news.today).days
        told, step = said(sunset.model)
        due = reminder(left)
        if left < 0:
            telling.forget.add(key)
            continue
        if not admits_any(rules, sunset.model, SUNSET_KINDS):
            continue
        if told != sunset.retires:
            if telling.tell(SunsetAnnounced(sunset.model, sunset.name, sunset.retires, told,
                                            left, sunset.successor), rules):
                step = due
            else:  # not told the date: its reminders if the channel hears them, else nothing
                step = None if admits(rules, sunset.model, SunsetSoon.kind) else due
        if due is not None and (step is None or due < step) and telling.tell(
                SunsetSoon(sunset.model, sunset.name, sunset.retires, left, sunset.successor),
                rules):
            step = due
        if step == due:  # as the next poll will take it from this catalog
            telling.forget.add(key)
        else:
            telling.remember[key] = _sunset_value(sunset.retires, step)
    listed = {sunset.model for sunset in news.sunsets}
    for model_id in news.before.keys() - listed:  # gone: remembered until its day has passed
        told, step = said(model_id)
        if told is not None and told >= news.today and _sunset_key(model_id) not in memory \
                and admits_any(rules, model_id, SUNSET_KINDS):
            telling.remember[_sunset_key(model_id)] = _sunset_value(told, step)
    telling.forget |= {key for key, value in memory.items() if key.startswith("sunset:")
                       and key.removeprefix("sunset:") not in listed
                       and _passed(value, news.today)}
    telling.forget -= telling.remember.keys()
    return telling


def _sunset_key(model_id: str) -> str:
    return f"sunset:{model_id}"


def _sunset_value(retires: date, step: int | None) -> str:
    return f"{retires.isoformat()}/{step or ''}"


def _passed(value: str, today: date) -> bool:
    told = _told(value)[0]
    return told is None or told < today


def _told(value: str | None) -> tuple[date | None, int | None]:
    """(the date a channel was told, the last reminder it got) from its memory."""
    day, _, step = (value or "").partition("/")
    try:
        return date.fromisoformat(day), int(step) if step.isdigit() else None
    except ValueError:
        return None, None


# -- providers --------------------------------------------------------------------------------

def provider_alerts(deltas: tuple[ProviderDelta, ...], rules: Rules,
                    memory: Memory | None = None) -> Telling:
    """Provider changes for one channel. A provider is degraded while its 30-minute uptime is
    under the channel's `min_uptime`: told once when that begins and once when it ends. The
    memory key `uptime:<model>|<provider>` keeps an episode the last payload no longer shows
    (an uptime OpenRouter stopped reporting); an unknown uptime is never degraded, and a
    model's first payload, like a new provider, is a baseline."""
    telling = Telling()
    for delta in deltas:
        for change in delta.changes:
            telling.tell(change, rules)
        telling.forget |= {_uptime_key(delta.model, p.key) for p in delta.removed}
        for seen in delta.uptimes:
            _uptime_alert(delta.model, seen, rules, memory or {}, telling,
                          baseline=delta.baseline)
    telling.forget -= telling.remember.keys()
    return telling


def _uptime_alert(model: str, seen: Uptime, rules: Rules, memory: Memory, telling: Telling, *,
                  baseline: bool) -> None:
    """What the channel was told is `ok`, `degraded`, or `quiet` (degraded when first seen:
    a baseline, never told, so neither is its end). Unknown uptimes change nothing, and so does
    an uptime the rules never let the channel hear of."""
    if not admits_any(rules, model, UPTIME_KINDS):
        return
    key, now = _uptime_key(model, seen.provider), _degraded(seen.new, rules)
    said = memory.get(key)
    if said is None:  # as the previous payload had it
        if baseline or not seen.seen_before:
            said = "quiet" if now else "ok"
        else:
            said = "degraded" if _degraded(seen.old, rules) else "ok"
    if now and said == "ok" and seen.new is not None:
        telling.tell(ProviderDegraded(model, seen.provider, seen.name, _floor(seen.new),
                                      rules.min_uptime), rules)
        said = "degraded"
    elif seen.new is not None and not now and (said != "degraded" or _recovered(seen.new, rules)):
        if said == "degraded":
            telling.tell(ProviderRecovered(model, seen.provider, seen.name, _floor(seen.new),
                                           rules.min_uptime), rules)
        said = "ok"
    if said == ("degraded" if now else "ok"):
        telling.forget.add(key)
    else:
        telling.remember[key] = said


def _degraded(uptime: float | None, rules: Rules) -> bool:
    return uptime is not None and Decimal(repr(uptime)) < rules.min_uptime


def _recovered(uptime: float, rules: Rules) -> bool:
    """Back a point above `min_uptime` (or at 100%): an uptime that hovers at the line is one
    episode, not a message every round."""
    return Decimal(repr(uptime)) >= min(rules.min_uptime + RECOVERY_MARGIN, Decimal(100))


def _floor(uptime: float) -> Decimal:
    """Percent to one decimal, rounded down: 94.96 is "94.9", never "95.0" below 95."""
    return Decimal(repr(uptime)).quantize(Decimal("0.1"), rounding=ROUND_DOWN)


def _uptime_key(model: str, provider: str) -> str:
    return f"uptime:{model}|{provider}"
