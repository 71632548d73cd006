"""Personal watches: `/watch QUERY`, `/watch`, `/unwatch QUERY`, `/watch quiet 22:00-07:00`.

A person's watches are a subscription of their own (`bot.channels.person_ref`: their direct
messages), so they are told through the same rules, memory and outbox as a channel: exactly
once, held through their quiet hours. Its rules watch the models' ids and permaslugs (the
rankings name a model by the latter), hear every kind about those models but the one about no
model (the open-weight count), any price move, and rank moves of `min_rank_move` places or
more anywhere in the top 50.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from rankbot.bot.answers import UsageError, View, price_groups, shown
from rankbot.bot.buttons import Button, acceptable
from rankbot.bot.cards import Card, fit
from rankbot.bot.catalog import Model
from rankbot.bot.channels import ChannelRef, Mode, Subscription
from rankbot.bot.commands import Reply, private, words
from rankbot.bot.ports import History, Offload, Subscriptions, Work, inline
from rankbot.bot.rules import ALERT_KINDS, DEFAULT_RULES, RuleError, Rules, set_rule, show_rule

log = logging.getLogger(__name__)
MAX_WATCHES = 20
PERSON_RULES = replace(
    DEFAULT_RULES, top_n=50, min_price_change_pct=Decimal("0.01"), price_fields=("*",),
    kinds=frozenset(ALERT_KINDS) - {"open_weight_share_changed"})
USAGE = ("`/watch QUERY` follows a model in your direct messages; `/watch` lists yours; "
         "`/unwatch QUERY` stops one; `/watch quiet 22:00-07:00 [time zone]` or `/watch quiet "
         "off`; `/watch moves N`: rank moves of N places or more (default 3).")
GLOB = re.compile(r"([*?\[])")


class PersonChannels(Subscriptions, Protocol):
    def subscribe(self, ref: ChannelRef, mode: Mode, at: datetime) -> Subscription: ...
    def unsubscribe(self, ref: ChannelRef, at: datetime) -> Subscription | None: ...
    def set_rules(self, subscription: Subscription, rules: Rules, *, who: str, at: datetime,
                  setting: str, old: str, new: str) -> None: ...


class WatchWork(Work, Protocol):
    """What watching reads and writes; every change is one unit of work."""

    @property
    def channels(self) -> PersonChannels: ...
    @property
    def snapshots(self) -> History: ...


@dataclass(frozen=True, slots=True)
class Watcher:
    person: ChannelRef  # `bot.channels.person_ref`
    work: WatchWork
    now: datetime


async def watch_command(command: str, text: str, *, person: ChannelRef, work: WatchWork,
                        now: datetime, offload: Offload = inline) -> Reply:
    """`/watch ...` or `/unwatch ...` for one person; the reply is theirs alone. Never raises:
    bad input gets a short reply, an unexpected error is logged and gets an apology."""
    name = command.strip().lstrip("/").lower()
    try:
        args = words(text)
        watcher = Watcher(person, work, now)
        if name == "unwatch":
            return await offload(lambda: unwatch(watcher, " ".join(args)))
        return await offload(lambda: _watch(watcher, args))
    except (UsageError, RuleError) as exc:
        return private(name, str(exc))
    except Exception:
        log.exception("/%s %s failed for %s", name, shown(text, 40), person)
        return private(name, "Sorry, that failed on our side; the error is logged.")


def _watch(watcher: Watcher, args: list[str]) -> Reply:
    first = args[0].lower() if args else ""
    if not args:
        return listing(watcher)
    if first == "quiet" and len(args) in (2, 3):
        return quiet(watcher, args[1], args[2] if len(args) == 3 else None)
    if first == "moves" and len(args) == 2:
        return _setting(watcher, "min_rank_move", args[1], "Rank moves")
    if first == "help":
        return private("watch", USAGE)
    return watch(watcher, " ".join(args))


# -- watching -----------------------------------------------------------------------------

def watch(watcher: Watcher, query: str) -> Reply:
    """Follow the model `query` finds best (an exact id first), at most MAX_WATCHES."""
    model, others = find(watcher, query)
    with watcher.work:
        subscription = _subscription(watcher)
        followed = watched(subscription.rules, watcher.work.snapshots.live_models())
        if model.id in followed:
            return _reply(f"You already watch {model.name} (`{model.id}`).", model.id)
        if len(followed) >= MAX_WATCHES:
            raise UsageError(f"You watch {MAX_WATCHES} models already, the most there can be. "
                             "`/unwatch` one first; `/watch` lists them.")
        patterns = (*subscription.rules.watch, *map(pattern, names(model)))
        _save(watcher, subscription, replace(subscription.rules, watch=patterns), "watch",
              "+" + model.id)
    more = (f" Also matching: {', '.join(f'`{o}`' for o in others[:5])}; `/watch` one by id."
            if others else "")
    return _reply(f"Watching {model.name} (`{model.id}`): changes to its prices, providers, "
                  f"retirement and rank come to you as direct messages.{more}", model.id)


def unwatch(watcher: Watcher, query: str) -> Reply:
    if not query:
        raise UsageError("Which model? `/unwatch QUERY`, or `/unwatch all`; `/watch` lists "
                         "what you watch.")
    with watcher.work:
        subscription = watcher.work.channels.subscription(watcher.person)
        live = watcher.work.snapshots.live_models()
        followed = watched(subscription.rules, live) if subscription and subscription.active \
            else []
        gone = followed if query.lower() == "all" else _which(followed, query, watcher)
        if subscription is None or not gone:
            raise UsageError(f"You do not watch `{shown(query)}`. `/watch` lists yours.")
        dropped = {pattern(name) for model_id in gone for name in _names_of(model_id, live)}
        rules = replace(subscription.rules,
                        watch=tuple(p for p in subscription.rules.watch if p not in dropped))
        _save(watcher, subscription, rules, "watch", "-" + ",".join(gone))
        if not rules.watch:  # watching nothing: nothing is heard, nothing is queued
            watcher.work.channels.unsubscribe(watcher.person, watcher.now)
    return private("unwatch", f"Stopped watching {', '.join(f'`{g}`' for g in gone)}.")


def listing(watcher: Watcher) -> Reply:
    subscription = watcher.work.channels.subscription(watcher.person)
    live = watcher.work.snapshots.live_models()
    followed = watched(subscription.rules, live) if subscription and subscription.active else []
    if subscription is None or not followed:
        return private("watch", "You watch no models. " + USAGE)
    rules = subscription.rules
    lines = [f"`{model_id}`" + (f" — {live[model_id].name}" if model_id in live else
                                " — no longer in the catalog") for model_id in followed]
    lines.append(f"Rank moves of {rules.min_rank_move} places or more; quiet hours "
                 f"{show_rule(rules, 'quiet_hours')} ({rules.timezone}).")
    if subscription.paused:
        lines.append(f"⚠ Your direct messages could not be delivered ({subscription.paused}): "
                     "open a direct message with rankbot, then `/watch` any model to resume.")
    card = Card(f"You watch {len(followed)} of {MAX_WATCHES} models", tuple(lines))
    buttons = tuple(Button("Stop watching " + m[:40], "unwatch", m) for m in followed
                    if acceptable(m))
    return Reply(fit(card), public=False, buttons=buttons)


def quiet(watcher: Watcher, hours: str, zone: str | None) -> Reply:
    with watcher.work:
        subscription = _subscription(watcher)
        rules = set_rule(subscription.rules, "quiet_hours", hours)
        if zone is not None:
            rules = set_rule(rules, "timezone", zone)
        _save(watcher, subscription, rules, "quiet_hours",
              f"{show_rule(rules, 'quiet_hours')} {rules.timezone}")
    if rules.quiet_hours is None:
        return private("watch", "Quiet hours off: your alerts come as they happen.")
    return private("watch", f"Quiet hours {show_rule(rules, 'quiet_hours')} "
                   f"({rules.timezone}): what comes then waits, and arrives as one message.")


def _setting(watcher: Watcher, key: str, value: str, name: str) -> Reply:
    with watcher.work:
        subscription = _subscription(watcher)
        rules = set_rule(subscription.rules, key, value)
        _save(watcher, subscription, rules, key, show_rule(rules, key))
    return private("watch", f"{name}: {show_rule(rules, key)} places or more.")


# -- what a person's rules hold -------------------------------------------------------------

def watched(rules: Rules, models: Mapping[str, Model]) -> list[str]:
    """The model ids a person watches, in the order they were added: their rules' patterns
    less the permaslugs that came with them."""
    ids = {model_id.lower(): model_id for model_id in models}  # patterns are lower-case
    names = [ids.get(name, name) for name in map(unpattern, rules.watch)]
    slugs = {_slug(models[n]).lower() for n in names if n in models}
    return [n for n in names if n in models or n.lower() not in slugs]


def pattern(name: str) -> str:
    """A model id or permaslug as a `watch` pattern that matches it alone."""
    return GLOB.sub(r"[\1]", name.lower())


def unpattern(text: str) -> str:
    return re.sub(r"\[([*?\[])\]", r"\1", text)


def names(model: Model) -> tuple[str, ...]:
    return tuple(dict.fromkeys((model.id, _slug(model))))


def _names_of(model_id: str, models: Mapping[str, Model]) -> tuple[str, ...]:
    return names(models[model_id]) if model_id in models else (model_id,)


def _slug(model: Model) -> str:
    """The name the rankings give a model (`canonical_slug`, with its variant)."""
    variant = model.id.partition(":")[2]
    return f"{model.canonical_slug}:{variant}" if variant else model.canonical_slug


def find(watcher: Watcher, query: str) -> tuple[Model, list[str]]:
    """The model a query means: its exact id, else the most used match; and other matches."""
    view = View(watcher.work.snapshots, watcher.now)
    view.require_catalog()
    exact = view.models.get(query) or view.models.get(query.lower()) \
        or view.index.lookup(query.lower())  # a permaslug, as a rank alert names a model
    if exact is not None:
        return exact, []
    groups = price_groups(view, query)  # raises "did you mean" for no match
    return groups[0][0], [group[0].id for group in groups[1:]]


def _which(followed: list[str], query: str, watcher: Watcher) -> list[str]:
    lowered = query.lower()
    if exact := [m for m in followed if m.lower() == lowered]:
        return exact
    try:
        model, _ = find(watcher, query)
    except UsageError:
        model = None
    if model is not None and model.id in followed:
        return [model.id]
    hits = [m for m in followed if lowered in m.lower()]
    return hits if len(hits) == 1 else []


def _subscription(watcher: Watcher) -> Subscription:
    """The person's subscription, made or resumed (a pause lifted) as they watch again."""
    channels = watcher.work.channels
    before = channels.subscription(watcher.person)
    subscription = channels.subscribe(watcher.person, "alerts", watcher.now)
    if before is None:
        channels.set_rules(subscription, PERSON_RULES, who=watcher.person.user,
                           at=watcher.now, setting="person", old="", new="defaults")
        subscription = replace(subscription, rules=PERSON_RULES)
    return subscription


def _save(watcher: Watcher, subscription: Subscription, rules: Rules, setting: str,
          new: str) -> None:
    watcher.work.channels.set_rules(subscription, rules, who=watcher.person.user,
                                    at=watcher.now, setting=setting, old="", new=new[:200])


def _reply(text: str, model_id: str) -> Reply:
    buttons = (Button("Stop watching", "unwatch", model_id),) if acceptable(model_id) else ()
    return Reply(fit(Card("/watch", (text,))), public=False, buttons=buttons)
