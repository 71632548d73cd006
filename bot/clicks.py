"""What a click on one of rankbot's buttons does (`bot.buttons`), on any platform.

Details shows the model's `/rank` card to whoever clicked; Mute here (admins) adds the model to
the channel's `ignore`, audited like `/rankbot set`, with an Undo; Watch and Stop watching are
`/watch` and `/unwatch` for the clicker. Every reply is the clicker's alone, and every click is
checked as the typed command would be: a forged id gains nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from rankbot.bot import watches
from rankbot.bot.admin import NOT_ADMIN, AdminWork
from rankbot.bot.alerts import admits_any
from rankbot.bot.answers import UsageError, shown
from rankbot.bot.buttons import Button, parse_id
from rankbot.bot.cards import Card, fit
from rankbot.bot.channels import ChannelRef, Watch, person_ref
from rankbot.bot.commands import Reply, answer, private
from rankbot.bot.ports import AskAgain, Authorizer, Offload, inline
from rankbot.bot.rules import ALERT_KINDS, Rules, show_rule

log = logging.getLogger(__name__)
UNKNOWN = "That button is not one of rankbot's, or too old to work. Try `/help`."


@dataclass(frozen=True, slots=True)
class Click:
    """One click: on which control (its id, and the option chosen in a menu), where, by whom."""

    control: str
    chosen: str | None
    ref: ChannelRef  # the channel the message is in
    user: str
    workspace: str  # the clicker's (Slack team; Discord guild, or "" in a direct message)


async def click(clicked: Click, *, authorizer: Authorizer, work: AdminWork, now: datetime,
                offload: Offload = inline) -> Reply:
    """The reply to one click, for the clicker only. Never raises."""
    parsed = parse_id(clicked.control, clicked.chosen)
    if parsed is None:
        return private("rankbot", UNKNOWN)
    action, model = parsed
    try:
        return await _act(action, model, clicked, authorizer=authorizer, work=work, now=now,
                          offload=offload)
    except AskAgain as busy:
        return private("rankbot", f"Could not check who may change settings here ({busy}): "
                       "try again in a moment.")
    except UsageError as exc:
        return private("rankbot", str(exc))
    except Exception:
        log.exception("the %s button failed for %s in %s", action, shown(model), clicked.ref)
        return private("rankbot", "Sorry, that failed on our side; the error is logged.")


async def _act(action: str, model: str, clicked: Click, *, authorizer: Authorizer,
               work: AdminWork, now: datetime, offload: Offload) -> Reply:
    if action == "details":
        reply = await offload(lambda: answer("rank", model, work.snapshots, now))
        return replace(reply, public=False)
    watcher = watches.Watcher(person_ref(clicked.ref.platform, clicked.workspace,
                                         clicked.user), work, now)
    if action == "watch":
        return await offload(lambda: watches.watch_model(watcher, model))
    if action == "unwatch":
        return await offload(lambda: watches.unwatch(watcher, model, exact=True))
    if not await authorizer.is_admin(clicked.ref, clicked.user):
        return private("rankbot", NOT_ADMIN)
    return await offload(lambda: mute(work, clicked, model, now, undo=action == "unmute"))


def mute(work: AdminWork, clicked: Click, model: str, now: datetime, *, undo: bool) -> Reply:
    """Add the model the button names, exactly (its id and its rankings name), to the
    channel's `ignore`, or take those out again; recorded in the audit log as `set ignore`
    is. A model the channel leaves out already, in part or whole, is left as it is: its Undo
    would otherwise take out what an admin set."""
    with work:
        subscription = work.channels.subscription(clicked.ref)
        if subscription is None or not subscription.active:
            raise UsageError("This channel is not subscribed: there is nothing to mute.")
        target = watches.named_exactly(work.snapshots.live_models(), model)
        rules = subscription.rules
        if not undo and (not heard(rules, target)
                         or any(p in rules.ignore for p in target.patterns)):
            return private("rankbot", f"`{model}` is left out here already, in part or whole "
                           "(`/rankbot config` shows the channel's `watch` and `ignore`).")
        ignore = tuple(p for p in rules.ignore if p not in target.patterns)
        changed = replace(rules, ignore=ignore if undo else (*ignore, *target.patterns))
        if changed != rules:
            work.channels.set_rules(subscription, changed, who=clicked.user, at=now,
                                    setting="ignore", old=show_rule(rules, "ignore"),
                                    new=show_rule(changed, "ignore"))
    if undo:
        return private("rankbot", f"`{model}` is heard here again." if heard(changed, target)
                       else f"`{model}` is still left out here by the channel's other rules "
                       "(`/rankbot config` shows `watch` and `ignore`).")
    card = Card("Muted here", (f"`{model}`: its changes are no longer told in this channel "
                               "(`/rankbot config` shows `ignore`).",))
    return Reply(fit(card), public=False, buttons=(Button("Undo", "unmute", model),))


def heard(rules: Rules, target: Watch) -> bool:
    """Whether a channel with these rules hears anything of the model, by either name."""
    return any(admits_any(rules, name, ALERT_KINDS) for name in (target.model, target.slug))
