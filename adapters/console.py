"""The embedded default channel: cards printed as plain text on the terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.cards import Card


def render_text(card: Card) -> str:
    """A card as readable plain text: title, lines, one block per field, footer."""
    parts = [f"━━ {card.title} ━━", *card.lines]
    for field in card.fields:
        parts += ["", field.name, *(f"  {line}" for line in field.value.splitlines())]
    if card.footer:
        parts += ["", card.footer]
    return "\n".join(parts)


class ConsoleNotifier:
    """Implements the `Notifier` port on a text stream (stdout by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, card: Card) -> None:
        stream = self._stream or sys.stdout
        print(render_text(card), end="\n\n", file=stream, flush=True)
