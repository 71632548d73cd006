"""Personal watches: `/watch QUERY`, `/watch`, `/unwatch QUERY`, `/watch quiet 22:00-07:00`.

A person's watches are a subscription of their own (`bot.channels.person_ref`: their direct
messages), so they are told through the same rules, memory and outbox as a channel: exactly
once, held through their quiet hours. What they watch is a list of `Watch` (a model's id and
its rankings name); their rules' `watch` patterns are made from it, so they hear every kind
about those models but the one about no model (the open-weight count), any price move, and
rank moves of `min_rank_move` places or more anywhere in the top 50.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from rankbot.bot.answers import UsageError, View, price_groups, shown
from rankbot.bot.buttons import Button, acceptable
from rankbot.bot.cards import Card, fit
from rankbot.bot.catalog import Model
from rankbot.bot.channels import ChannelRef, Mode, Subscription, Watch
from rankbot.bot.commands import Reply, private, words
from rankbot.bot.ports import History, Offload, Subscriptions, Work, inline
from rankbot.bot.rules import ALERT_KINDS, DEFAULT_RULES, RuleError, Rules, set_rule, show_rule

log = logging.getLogger(__name__)
MAX_WATCHES = 20
NAME = 100  # characters of a model's name shown beside its id
PERSON_RULES = replace(
    DEFAULT_RULES, top_n=50, min_price_change_pct=Decimal("0.01"), price_fields=("*",),
    kinds=frozenset(ALERT_KINDS) - {"open_weight_share_changed"})
USAGE = ("`/watch QUERY` follows a model in your direct messages; `/watch` lists yours; "
         "`/unwatch QUERY` stops one; `/watch quiet 22:00-07:00 [time zone]` or `/watch quiet "
         "off`; `/watch moves N`: rank moves of N places or more (default 3).")


class PersonChannels(Subscriptions, Protocol):
    def subscribe(self, ref: ChannelRef, mode: Mode, at: datetime) -> Subscription: ...
    def unsubscribe(self, ref: ChannelRef, at: datetime) -> Subscription | None: ...
    def set_rules(self, subscription: Subscription, rules: Rules, *, who: str, at: datetime,
                  setting: str, old: str, new: str) -> None: ...
    def watches(self, subscription: Subscription) -> list[Watch]: ...
    def set_watches(self, subscription: Subscription, watches: Sequence[Watch],
                    at: datetime) -> None: ...


class PersonQueue(Protocol):
    def pending_changes(self, subscription: Subscription
                        ) -> Mapping[int, Sequence[Mapping[str, Any]]]:
        """Each message still to send: its id → its change records."""
        ...
    def cancel(self, subscription: Subscription, ids: Collection[int] | None = None) -> None:
        ...


class WatchWork(Work, Protocol):
    """What watching reads and writes; every change is one unit of work."""

    @property
    def channels(self) -> PersonChannels: ...
    @property
    def outbox(self) -> PersonQueue: ...
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
    if not args:
        return listing(watcher)
    first = args[0].lower()
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
    more = (f" Also matching: {', '.join(f'`{o}`' for o in others[:5])}; `/watch` one by id."
            if others else "")
    return _add(watcher, Watch(model.id, model.permaslug), _named(model), more)


def watch_model(watcher: Watcher, name: str) -> Reply:
    """Follow exactly the model a button names, never a search's best match."""
    live = watcher.work.snapshots.live_models()
    exact = named_exactly(live, name)
    return _add(watcher, exact, _named(live[exact.model]) if exact.model in live
                else f"`{name}`", "")


def named_exactly(live: Mapping[str, Model], name: str) -> Watch:
    """The model a button names, by its id or its rankings name (a variant's own, `:free`
    included); one no longer listed, or known to the rankings alone, by that name alone."""
    model = live.get(name) or next((m for m in live.values() if m.permaslug == name), None)
    return Watch(model.id, model.permaslug) if model is not None else Watch(name, name)


def _add(watcher: Watcher, new: Watch, named: str, more: str) -> Reply:
    with watcher.work:
        subscription = _subscription(watcher)
        watches = watcher.work.channels.watches(subscription)
        if any(w.model == new.model for w in watches):
            return _reply(f"You already watch {named}.", new.model)
        if len(watches) >= MAX_WATCHES:
            raise UsageError(f"You watch {MAX_WATCHES} models already, the most there can be. "
                             "`/unwatch` one first; `/watch` lists them.")
        _save(watcher, subscription, [*watches, new], "+" + new.model)
    return _reply(f"Watching {named}: changes to its prices, providers, retirement and rank "
                  f"come to you as direct messages.{more}", new.model)


def unwatch(watcher: Watcher, query: str, *, exact: bool = False) -> Reply:
    """Stop watching the model `query` names (`all`: every one). `exact` (a button): only the
    watch with that very id or rankings name. What was queued about it alone is not sent."""
    if not query:
        raise UsageError("Which model? `/unwatch QUERY`, or `/unwatch all`; `/watch` lists "
                         "what you watch.")
    with watcher.work:
        subscription = watcher.work.channels.subscription(watcher.person)
        watches = watcher.work.channels.watches(subscription) \
            if subscription is not None and subscription.active else []
        gone = watches if query.lower() == "all" and not exact else \
            _which(watches, query, watcher, exact)
        if subscription is None or not gone:
            raise UsageError(f"You do not watch `{shown(query)}`. `/watch` lists yours.")
        _save(watcher, subscription, [w for w in watches if w not in gone],
              "-" + ",".join(w.model for w in gone))
        if len(gone) == len(watches):  # watching nothing: nothing is heard, nothing is queued
            watcher.work.outbox.cancel(subscription)
            watcher.work.channels.unsubscribe(watcher.person, watcher.now)
        else:
            _cancel_about(watcher.work.outbox, subscription, gone)
    return private("unwatch", f"Stopped watching {', '.join(f'`{w.model}`' for w in gone)}.")


def listing(watcher: Watcher) -> Reply:
    subscription = watcher.work.channels.subscription(watcher.person)
    watches = watched(watcher.work.channels, subscription)
    if subscription is None or not watches:
        return private("watch", "You watch no models. " + USAGE)
    live = watcher.work.snapshots.live_models()
    rules = subscription.rules
    lines = [line(w, live) for w in watches]
    lines.append(f"Rank moves of {rules.min_rank_move} places or more; quiet hours "
                 f"{show_rule(rules, 'quiet_hours')} ({rules.timezone}).")
    if subscription.paused_for_operator:
        lines.append("⚠ rankbot cannot send you direct messages until its app is set up again "
                     "(nothing to do on your side: tell a workspace admin). Your alerts wait.")
    elif subscription.paused:
        lines.append(f"⚠ Your direct messages could not be delivered ({subscription.paused}): "
                     "open a direct message with rankbot, then `/watch` any model to resume.")
    card = Card(f"You watch {len(watches)} of {MAX_WATCHES} models", tuple(lines))
    return Reply(fit(card), public=False, buttons=stop_buttons(watches))


def quiet(watcher: Watcher, hours: str, zone: str | None) -> Reply:
    with watcher.work:
        subscription = _subscription(watcher)
        rules = set_rule(subscription.rules, "quiet_hours", hours)
        if zone is not None:
            rules = set_rule(rules, "timezone", zone)
        _set_rules(watcher, subscription, rules, "quiet_hours",
                   f"{show_rule(rules, 'quiet_hours')} {rules.timezone}")
    if rules.quiet_hours is None:
        return private("watch", "Quiet hours off: your alerts come as they happen.")
    return private("watch", f"Quiet hours {show_rule(rules, 'quiet_hours')} "
                   f"({rules.timezone}): what comes then waits, and arrives as one message.")


def _setting(watcher: Watcher, key: str, value: str, name: str) -> Reply:
    with watcher.work:
        subscription = _subscription(watcher)
        rules = set_rule(subscription.rules, key, value)
        _set_rules(watcher, subscription, rules, key, show_rule(rules, key))
    return private("watch", f"{name}: {show_rule(rules, key)} places or more.")


# -- what a person watches --------------------------------------------------------------------

def watched(channels: PersonChannels, subscription: Subscription | None) -> list[Watch]:
    """A person's watches, oldest first; none while their subscription is off."""
    if subscription is None or not subscription.active:
        return []
    return channels.watches(subscription)


def line(watch: Watch, live: Mapping[str, Model]) -> str:
    """One watch as a line: its id and, while it is listed, its name (cut short)."""
    model = live.get(watch.model)
    name = model.name if model else "no longer in the catalog"
    return f"`{watch.model}` — {name[:NAME]}"


def stop_button(model: str, label: str = "Stop watching") -> Button | None:
    """The button that stops a watch; none for an id no button can carry."""
    return Button(label, "unwatch", model) if acceptable(model) else None


def stop_buttons(watches: Iterable[Watch]) -> tuple[Button, ...]:
    """One per watch, in a row under a reply: each says whose."""
    return tuple(b for w in watches if (b := stop_button(w.model, f"Stop watching "
                                                               f"{w.model[:40]}")))


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


def _which(watches: list[Watch], query: str, watcher: Watcher, exact: bool) -> list[Watch]:
    """The watch `query` names: by its id or rankings name, then (typed) by search, then by a
    part of one id alone."""
    lowered = query.lower()
    named = [w for w in watches if lowered in (w.model.lower(), w.slug.lower())]
    if named or exact:
        return named[:1]
    try:
        model: Model | None = find(watcher, query)[0]
    except UsageError:
        model = None
    found = [w for w in watches if model is not None and w.model == model.id]
    hits = [w for w in watches if lowered in w.model.lower()]
    return found or (hits if len(hits) == 1 else [])


def _cancel_about(outbox: PersonQueue, subscription: Subscription, gone: list[Watch]) -> None:
    """Messages still queued (waiting out quiet hours, say) about unwatched models alone."""
    names = {name.lower() for w in gone for name in (w.model, w.slug)}
    stale = [i for i, changes in outbox.pending_changes(subscription).items()
             if changes and all(str(c.get("model", "")).lower() in names for c in changes)]
    if stale:
        outbox.cancel(subscription, stale)


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


def _save(watcher: Watcher, subscription: Subscription, watches: list[Watch],
          change: str) -> None:
    """The watches, and the rules' `watch` patterns made from them."""
    watcher.work.channels.set_watches(subscription, watches, watcher.now)
    patterns = tuple(dict.fromkeys(p for w in watches for p in w.patterns))
    _set_rules(watcher, subscription, replace(subscription.rules, watch=patterns), "watch",
               change)


def _set_rules(watcher: Watcher, subscription: Subscription, rules: Rules, setting: str,
               new: str) -> None:
    watcher.work.channels.set_rules(subscription, rules, who=watcher.person.user,
                                    at=watcher.now, setting=setting, old="", new=new[:200])


def _named(model: Model) -> str:
    return f"{model.name[:NAME]} (`{model.id}`)"


def _reply(text: str, model_id: str) -> Reply:
    button = stop_button(model_id)
    return Reply(fit(Card("/watch", (text,))), public=False,
                 buttons=(button,) if button else ())
