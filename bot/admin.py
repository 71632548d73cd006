"""`/rankbot ...`: the admin commands, for the channel they are typed in and nowhere else.

Every reply goes only to the admin who asked. Who is an admin is the platform's call, through
the `Authorizer` port; a non-admin can neither read nor change anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rankbot.bot.answers import UsageError, shown
from rankbot.bot.cards import Card, channel_link, fit
from rankbot.bot.channels import MODES, ChannelRef, Subscription
from rankbot.bot.commands import Reply, private, words
from rankbot.bot.ports import AskAgain, Authorizer, Offload, Work, inline
from rankbot.bot.preview import PreviewHistory, preview
from rankbot.bot.rules import (
    DAYS_PLURAL,
    DEFAULT_RULES,
    RULES,
    RuleError,
    set_rule,
    show_rule,
)
from rankbot.bot.watches import PersonChannels, PersonQueue

log = logging.getLogger(__name__)
NOT_ADMIN = ("Only workspace admins can see or change rankbot's settings here. Ask an admin, "
             "or try `/rank` and `/help`.")


class ChannelAdmin(PersonChannels, Protocol):
    """What admins (and people, for their own watches) read and change."""

    def channel_subscription(self, platform: str, channel: str) -> Subscription | None: ...
    def subscriptions_in(self, platform: str, workspace: str) -> list[Subscription]: ...
    def audit(self, ref: ChannelRef, who: str, at: datetime, action: str, *, setting: str = "",
              old: str = "", new: str = "") -> None: ...


class ChannelQueue(PersonQueue, Protocol):
    def queued(self, subscription: Subscription) -> int: ...
    def last_delivery(self, subscription: Subscription) -> datetime | None: ...


class AdminWork(Work, Protocol):
    """What the admin commands read and write; a command that writes is one unit of work."""

    @property
    def channels(self) -> ChannelAdmin: ...
    @property
    def outbox(self) -> ChannelQueue: ...
    @property
    def snapshots(self) -> PreviewHistory: ...


@dataclass(frozen=True, slots=True)
class Asked:
    """One admin command: where it was typed, by whom, and when."""

    ref: ChannelRef
    user: str
    args: list[str]
    work: AdminWork
    now: datetime
    workspace: str  # the asker's: what `status` and the notices cover


async def administer(text: str, *, ref: ChannelRef, user: str, authorizer: Authorizer,
                     work: AdminWork, now: datetime, workspace: str | None = None,
                     offload: Offload = inline) -> Reply:
    """Run `/rankbot <text>` for `user` in `ref`; `workspace` is the asker's when the channel
    belongs to another (a Slack channel shared between organisations). The platform decides
    who is an admin; the command's reads and writes then run through `offload`. Never raises:
    bad input gets a short reply, an unexpected error is logged with its traceback and gets
    an apology."""
    try:
        args = words(text)
        name = args[0].lower() if args else "help"
        if name == "help":
            return Reply(help_card(), public=False)
        command = ADMIN.get(name)
        if command is None:
            raise UsageError(f"Unknown `/rankbot {shown(name, 20)}`. Try: "
                             + ", ".join(f"`{c.usage}`" for c in ADMIN.values()))
        if not await authorizer.is_admin(ref, user):
            return private("rankbot", NOT_ADMIN)
        asked = Asked(ref, user, args[1:], work, now, workspace or ref.workspace)
        card = await offload(lambda: _with_notices(_run(command, asked), asked))
        return Reply(fit(card), public=False)
    except AskAgain as busy:  # never a false "not an admin"
        return private("rankbot", f"Could not check who may change settings here ({busy}): "
                       "try again in a moment.")
    except (UsageError, RuleError) as exc:
        return private("rankbot", str(exc))
    except Exception:
        log.exception("/rankbot %s failed in %s", shown(text, 40), ref)
        return private("rankbot", "Sorry, that failed on our side; the error is logged.")


@dataclass(frozen=True, slots=True)
class AdminCommand:
    usage: str
    summary: str
    run: Callable[[Asked], Card]
    writes: bool = False  # then it runs as one unit of work: all of it, or none


def _run(command: AdminCommand, asked: Asked) -> Card:
    if not command.writes:
        return command.run(asked)
    with asked.work:
        return command.run(asked)


def _subscribe(asked: Asked) -> Card:
    chosen = asked.args[0].lower() if asked.args else "all"
    mode = next((m for m in MODES if m == chosen), None)
    if mode is None or len(asked.args) > 1:
        raise UsageError("Usage: `/rankbot subscribe [alerts|digest|all]`")
    before = asked.work.channels.subscription(asked.ref)
    subscription = asked.work.channels.subscribe(asked.ref, mode, asked.now)
    asked.work.channels.audit(asked.ref, asked.user, asked.now, "subscribe", setting="mode",
                              old=before.mode if before and before.active else "", new=mode)
    return Card("Subscribed", (f"This channel now gets {_mode_words(subscription)}.",
                               "See `/rankbot config`; change it with `/rankbot set`."))


def _unsubscribe(asked: Asked) -> Card:
    stopped = asked.work.channels.unsubscribe(asked.ref, asked.now)
    if stopped is not None:
        asked.work.outbox.cancel(stopped)
        asked.work.channels.audit(asked.ref, asked.user, asked.now, "unsubscribe")
        return Card("Unsubscribed", ("This channel gets no more alerts or digests; its "
                                     "settings are kept for if you subscribe again.",))
    return Card("Not subscribed", ("This channel was not subscribed.",))


def _config(asked: Asked) -> Card:
    subscription = asked.work.channels.subscription(asked.ref)
    rules = subscription.rules if subscription else DEFAULT_RULES
    lines = [f"`{key}` = {show_rule(rules, key)}"
             + (" (default)" if show_rule(rules, key) == show_rule(DEFAULT_RULES, key) else "")
             for key in RULES]
    state = _mode_words(subscription) if subscription and subscription.active else (
        "nothing: not subscribed")
    return Card("Settings for this channel", (f"Gets: {state}.", *lines))


def _set(asked: Asked) -> Card:
    if len(asked.args) < 2:
        raise UsageError(f"Usage: `/rankbot set KEY VALUE`. Keys: {', '.join(RULES)}.")
    subscription = _subscribed(asked)
    key, value = asked.args[0].lower(), " ".join(asked.args[1:])
    rules = set_rule(subscription.rules, key, value)
    old, new = show_rule(subscription.rules, key), show_rule(rules, key)
    asked.work.channels.set_rules(subscription, rules, who=asked.user, at=asked.now,
                                  setting=key, old=old, new=new)
    return Card("Setting changed", (f"`{key}`: {old} → {new}",))


def _preview(asked: Asked) -> Card:
    days = asked.args[0] if asked.args else "7"
    if len(asked.args) > 1 or not days.isdigit() or not 1 <= int(days) <= 90:
        raise UsageError("Usage: `/rankbot preview [days]`, days from 1 to 90.")
    subscription = asked.work.channels.subscription(asked.ref)
    rules = subscription.rules if subscription else DEFAULT_RULES
    return preview(asked.work.snapshots, rules, asked.now, int(days))


def _status(asked: Asked) -> Card:
    subscriptions = _channels_in(asked)
    here = asked.work.channels.subscription(asked.ref)  # it may belong to another workspace
    if here is not None and here.active and here not in subscriptions:
        subscriptions.append(here)
    lines = [f"{len(subscriptions)} channel(s) subscribed in this workspace."]
    for subscription in subscriptions:
        last = asked.work.outbox.last_delivery(subscription)
        state = f"paused: {subscription.paused}" if subscription.paused else "active"
        lines.append(f"{_where(subscription.ref)}: {subscription.mode}, {state}, "
                     f"{asked.work.outbox.queued(subscription)} queued, last message "
                     f"{f'{last:%Y-%m-%d %H:%M} UTC' if last else 'never'}")
    return Card("rankbot status", tuple(lines))


ADMIN = {
    "subscribe": AdminCommand("/rankbot subscribe [alerts|digest|all]",
                              "get alerts, the weekly digest, or both (default) here",
                              _subscribe, writes=True),
    "unsubscribe": AdminCommand("/rankbot unsubscribe", "stop everything here", _unsubscribe,
                                writes=True),
    "config": AdminCommand("/rankbot config", "this channel's settings, defaults marked",
                           _config),
    "set": AdminCommand("/rankbot set KEY VALUE", "change one setting", _set, writes=True),
    "preview": AdminCommand("/rankbot preview [days]",
                            "what these settings would have sent lately", _preview),
    "status": AdminCommand("/rankbot status", "channels, queues and pauses here", _status),
}


def help_card() -> Card:
    return Card("rankbot admin commands",
                tuple(f"`{c.usage}` — {c.summary}" for c in ADMIN.values()),
                footer="Only workspace admins can use these.")


def _subscribed(asked: Asked) -> Subscription:
    subscription = asked.work.channels.subscription(asked.ref)
    if subscription is None or not subscription.active:
        raise UsageError("Subscribe this channel first: `/rankbot subscribe`.")
    return subscription


def _with_notices(card: Card, asked: Asked) -> Card:
    """Admins hear about paused channels of their workspace, and channels whose settings
    cannot be read, in every admin reply."""
    channels = _channels_in(asked)
    notices = [f"⚠ {_where(s.ref)} is paused ({s.paused}): fix it, then run "
               "`/rankbot subscribe` there." for s in channels if s.paused]
    notices += [f"⚠ {_where(s.ref)} gets nothing: its settings cannot be read "
                f"({', '.join(s.unreadable)}). Any `/rankbot set` there repairs them, e.g. "
                "`/rankbot set timezone UTC`." for s in channels if s.unreadable]
    return Card(card.title, (*card.lines, *notices), card.fields, card.footer)


def _channels_in(asked: Asked) -> list[Subscription]:
    """The asker's workspace's channels; people's own watches are theirs, not an admin's."""
    return [s for s in asked.work.channels.subscriptions_in(asked.ref.platform, asked.workspace)
            if not s.ref.person]


def _mode_words(subscription: Subscription) -> str:
    rules = subscription.rules
    digest = (f"the weekly digest ({DAYS_PLURAL[rules.digest_day]} "
              f"{rules.digest_time:%H:%M} {rules.timezone})")
    return {"alerts": "alerts", "digest": digest, "all": f"alerts and {digest}"}[
        subscription.mode]


def _where(ref: ChannelRef) -> str:
    return channel_link(ref.channel) if ref.platform in ("slack", "discord") else ref.channel
