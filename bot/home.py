"""A person's home page (Slack's App Home tab), as plain sections any platform could render:
their watches, each with a button that stops it; how fresh the data is; this week's top 10;
and, for an admin, the channels of their workspace with each one's rules (pure, reads local
data only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rankbot.bot.answers import UsageError, View, top
from rankbot.bot.buttons import Button
from rankbot.bot.cards import channel_link
from rankbot.bot.channels import Subscription, Watch
from rankbot.bot.ports import History
from rankbot.bot.rules import DEFAULT_RULES, RULES, show_rule
from rankbot.bot.watches import MAX_WATCHES, USAGE, line, stop_button

MANAGED = 20  # channels shown; a home page holds 100 blocks in all
RULE = 200  # characters of one rule's value shown (an `ignore` list grows with every Mute)


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    button: Button | None = None


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    lines: tuple[Line, ...]
    footer: str | None = None


def home(history: History, mine: Subscription | None, watches: Sequence[Watch],
         managed: Sequence[Subscription] | None, now: datetime) -> tuple[Section, ...]:
    """`mine`: the person's own subscription (`bot.channels.person_ref`), if any, and
    `watches` theirs; `managed`: the channels of the workspace when the person is an admin
    there, else None."""
    view = View(history, now)
    sections = [_watches(view, mine, watches), _freshness(view), _top(view)]
    if managed is not None:
        sections += channel_sections(managed)
    return tuple(sections)


def _watches(view: View, mine: Subscription | None, watches: Sequence[Watch]) -> Section:
    if mine is None or not mine.active or not watches:
        return Section("Your watches", (Line("You watch no models. " + USAGE),))
    lines = tuple(Line(line(w, view.models), stop_button(w.model)) for w in watches)
    rules = mine.rules
    quiet = show_rule(rules, "quiet_hours")
    note = (f"{len(watches)} of {MAX_WATCHES} · rank moves of {rules.min_rank_move}+ places · "
            f"quiet hours {quiet}" + (f" ({rules.timezone})" if rules.quiet_hours else ""))
    if mine.paused_for_operator:
        note += " · ⚠ rankbot cannot send you direct messages until its app is set up again"
    elif mine.paused:
        note += f" · ⚠ direct messages failed ({mine.paused[:100]}): `/watch` a model to resume"
    return Section("Your watches", lines, note)


def _freshness(view: View) -> Section:
    rankings = f"rankings as of {view.latest}" if view.latest else "no rankings yet"
    return Section("Data", (Line(f"{view.prices_as_of}; {rankings}."),))


def _top(view: View) -> Section:
    try:
        card = top(view, 10, "week")
    except UsageError as empty:
        return Section("This week's top 10", (Line(str(empty)),))
    return Section(card.title, tuple(Line(line) for line in card.lines), card.footer)


def channel_sections(channels: Sequence[Subscription]) -> list[Section]:
    """One section per channel (a long `ignore` list cut short in it), at most MANAGED."""
    shown = [s for s in channels if not s.ref.person]
    if not shown:
        return [Section("Channels you manage", (Line(
            "No channel here is subscribed: `/rankbot subscribe` in one."),))]
    sections = [Section("Channels you manage" if n == 0 else "", (Line(_channel(s)),))
                for n, s in enumerate(shown[:MANAGED])]
    if len(shown) > MANAGED:
        sections.append(Section("", (Line(f"…and {len(shown) - MANAGED} more: `/rankbot "
                                          "status` in any of them lists them all."),)))
    return sections


def _channel(subscription: Subscription) -> str:
    changed = [f"`{key}` = {show_rule(subscription.rules, key)[:RULE]}" for key in RULES
               if show_rule(subscription.rules, key) != show_rule(DEFAULT_RULES, key)]
    state = f"paused: {subscription.paused[:100]}" if subscription.paused \
        else subscription.mode
    return (f"{channel_link(subscription.ref.channel)}: {state}; "
            + (", ".join(changed) if changed else "default rules"))
