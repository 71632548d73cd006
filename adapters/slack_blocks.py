"""Slack's Block Kit for rankbot: a card, its buttons and menus, a chart, the Home tab, and the
escaping that keeps whatever came from outside (model names, typed text) text, never markup
(pure: no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rankbot.bot.buttons import Button, Control, control_id
from rankbot.bot.cards import CHANNEL_LINK, Card
from rankbot.bot.commands import Reply
from rankbot.bot.home import Section


def blocks(card: Card) -> list[dict[str, Any]]:
    """A card as Block Kit: a header, its lines, one section per field, the footer as context.
    Cards are already cut to Slack's limits by the core (`bot.cards.fit`)."""
    rendered: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": card.title, "emoji": True}}]
    if card.lines:
        rendered.append(_section("\n".join(card.lines)))
    rendered += [_section(f"*{escape(f.name)}*\n{escape(f.value)}", escaped=True)
                 for f in card.fields]
    if card.footer:
        rendered.append({"type": "context",
                         "elements": [{"type": "mrkdwn", "text": escape(card.footer)}]})
    return rendered


def fallback(card: Card) -> str:
    """The text shown in notifications and where blocks cannot be: title and lines. Slack reads
    it as markup too (`<!channel>` would ping), so it is escaped like the blocks."""
    return escape("\n".join([card.title, *card.lines])[:3000])


SECTION_TEXT = 3000  # Slack's limit; escaping `&<>` can lengthen what the core already fitted


def _section(text: str, escaped: bool = False) -> dict[str, Any]:
    text = text if escaped else escape(text)
    if len(text) > SECTION_TEXT:
        text = text[: SECTION_TEXT - 2].rsplit("\n", 1)[0] + "\n…"  # 3,000 at most
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def escape(text: str) -> str:
    """Slack's three control characters escaped, so only rankbot's own markup is markup: its
    channel links (`bot.cards.channel_link`) become Slack's `<#C123>`."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return CHANNEL_LINK.sub(r"<#\1>", escaped)


def response(reply: Reply) -> dict[str, Any]:
    """A slash command's reply: answers in the channel; help, errors and admin replies only to
    the person who asked."""
    return {"text": fallback(reply.card),
            "blocks": message_blocks(reply.card, reply.buttons),
            "response_type": "in_channel" if reply.public else "ephemeral"}


def message_blocks(card: Card, controls: Sequence[Control] = (),
                   image: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A card with its chart above the footer (the credit stays last of the card) and its
    buttons under it all. A card takes at most 28 blocks: with these two, within Slack's 50."""
    rendered = blocks(card)
    if image is not None:
        at = len(rendered) - (rendered[-1]["type"] == "context")
        rendered.insert(at, image)
    if controls:
        rendered.append(actions(controls))
    return rendered


ELEMENTS = 25  # Slack's limit for an actions block
OPTIONS = 100  # for a static_select
LABEL, OPTION, PLACEHOLDER = 75, 75, 150  # characters of a button's, an option's, a placeholder's


def actions(controls: Sequence[Control]) -> dict[str, Any]:
    """Buttons and menus as one actions block. Their text is plain_text: a model id in a label
    or an option is shown as typed, never read as markup."""
    return {"type": "actions", "elements": [_element(c) for c in controls[:ELEMENTS]]}


def _element(control: Control) -> dict[str, Any]:
    if isinstance(control, Button):
        return button(control)
    return {"type": "static_select", "action_id": control_id(control.action),
            "placeholder": _plain(control.label, PLACEHOLDER),
            "options": [{"text": _plain(model, OPTION), "value": model}
                        for model in control.options[:OPTIONS]]}


def button(control: Button) -> dict[str, Any]:
    element = {"type": "button", "text": _plain(control.label, LABEL),
               "action_id": control_id(control.action, control.value), "value": control.value}
    return element | ({"style": control.style} if control.style else {})


def _plain(text: str, limit: int) -> dict[str, Any]:
    # emoji off: a `:name:` in a model id stays text too
    return {"type": "plain_text", "text": text if len(text) <= limit else text[:limit - 1] + "…",
            "emoji": False}


HOME_BLOCKS = 100  # Slack's limit for a view


def home_view(sections: Sequence[Section]) -> dict[str, Any]:
    """The Home tab: each section a header (after a divider; an untitled section continues
    the one before), its lines (one section block per line with a button, the button beside
    it; lines without one together), its footer as context."""
    rendered: list[dict[str, Any]] = []
    for section in sections:
        part: list[dict[str, Any]] = [
            {"type": "divider"}, {"type": "header", "text": _plain(section.title, 150)}
        ] if section.title else []
        plain: list[str] = []
        for line in section.lines:
            if line.button is None:
                plain.append(line.text)
                continue
            if plain:
                part.append(_section("\n".join(plain)))
                plain = []
            part.append(_section(line.text) | {"accessory": button(line.button)})
        if plain:
            part.append(_section("\n".join(plain)))
        if section.footer:
            part.append({"type": "context",
                         "elements": [{"type": "mrkdwn", "text": escape(section.footer)}]})
        rendered += part
    # The core keeps a page far below Slack's limit; past it, a view Slack would refuse.
    if rendered[:1] == [{"type": "divider"}]:  # none above the first header
        rendered = rendered[1:]
    return {"type": "home", "blocks": rendered[:HOME_BLOCKS]}
