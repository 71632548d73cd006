"""Buttons under alerts and answers (pure): what each one does, and the id a platform carries
back when it is clicked.

An id names an action and, for a button, the model it acts on (`rankbot:mute:openai/gpt-4o`);
a menu's id names the action and the chosen option is the model. Nothing else is kept anywhere,
so a button still works after a restart, and a forged id can do no more than its clicker could
by typing the command: every click is checked again (`bot.clicks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

PREFIX = "rankbot"
ACTIONS = ("details", "mute", "unmute", "watch", "unwatch")
MAX_VALUE = 80  # Discord's custom_id holds 100 characters: `rankbot:unwatch:` + a model id
MAX_OPTIONS = 25  # Discord's select menus (Slack's take 100)
Style = Literal["primary", "danger", ""]


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: str
    value: str  # a model id: outside text, shown as text and carried back as is
    style: Style = ""


@dataclass(frozen=True, slots=True)
class Menu:
    """A choice of models for one action: a message about several models."""

    label: str  # the placeholder
    action: str
    options: tuple[str, ...]  # model ids


Control = Button | Menu


def alert_controls(changes: Iterable[Mapping[str, Any]], *, person: bool = False
                   ) -> tuple[Control, ...]:
    """What goes under an alert: Details, Mute here and Watch for the model it is about, or a
    menu of each for the models of a message about several. A person's own alert (a direct
    message) offers Details and Stop watching instead: there is no channel to mute."""
    models = tuple(dict.fromkeys(
        model for change in changes if isinstance(model := change.get("model"), str)
        and acceptable(model)))[:MAX_OPTIONS]
    if not models:
        return ()
    actions: tuple[tuple[str, str, Style], ...] = (
        ("Details", "details", ""),
        *((("Stop watching", "unwatch", ""),) if person else
          (("Mute here", "mute", "danger"), ("Watch", "watch", "primary"))))
    if len(models) == 1:
        return tuple(Button(label, action, models[0], style) for label, action, style in actions)
    return tuple(Menu(f"{label}…", action, models) for label, action, _ in actions)


def acceptable(value: str) -> bool:
    """A model id (`author/name`) that fits in every platform's ids and values. A bare author
    is none: as a watch or ignore pattern it would stand for every model of that author."""
    author, _, name = value.partition("/")
    return 0 < len(value) <= MAX_VALUE and value.isprintable() and " " not in value \
        and bool(author) and bool(name)


def control_id(action: str, value: str | None = None) -> str:
    """A button's id (`rankbot:watch:qwen/qwen3-coder`) or a menu's (`rankbot:watch`)."""
    return f"{PREFIX}:{action}" + (f":{value}" if value is not None else "")


def parse_id(control: str, chosen: str | None = None) -> tuple[str, str] | None:
    """(action, model) from a clicked control's id, and the chosen option for a menu; None for
    anything rankbot did not make."""
    prefix, _, rest = control.partition(":")
    action, _, value = rest.partition(":")
    value = chosen if chosen is not None and not value else value
    if prefix != PREFIX or action not in ACTIONS or not acceptable(value):
        return None
    return action, value
