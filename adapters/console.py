"""The embedded default channel: cards printed as plain text on the terminal.

The console is a channel like any other (`console:local/console`): its rules decide what
`rankbot poll` prints, and its operator, at the keyboard, is its admin.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Any, TextIO

from rankbot.bot.cards import CHANNEL_LINK, Card
from rankbot.bot.channels import ChannelRef
from rankbot.bot.charts import Series

# What a terminal would act on rather than show: escape sequences (CSI, OSC), other control
# characters, and the bidirectional overrides that reorder what the eye reads.
UNSAFE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text from outside (model names, fault messages) made safe to print: sequences and
    control characters removed, line breaks and tabs kept."""
    return UNSAFE.sub("", text)


def render_text(card: Card) -> str:
    """A card as readable plain text: title, lines, one block per field, footer."""
    parts = [f"━━ {card.title} ━━", *card.lines]
    for field in card.fields:
        parts += ["", field.name, *(f"  {line}" for line in field.value.splitlines())]
    if card.footer:
        parts += ["", card.footer]
    return CHANNEL_LINK.sub(r"#\1", terminal_safe("\n".join(parts)))


class ConsoleNotifier:
    """Implements the `Notifier` port on a text stream (stdout by default): the card as text,
    or with `as_json` one JSON object per change."""

    def __init__(self, stream: TextIO | None = None, as_json: bool = False) -> None:
        self._stream = stream
        self._as_json = as_json

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str, chart: Series | None = None) -> None:
        stream = self._stream or sys.stdout
        if self._as_json:
            for change in changes:
                print(json.dumps(change), file=stream, flush=True)
        else:
            print(render_text(card), end="\n\n", file=stream, flush=True)

    async def prepare(self, chart: Series) -> None:
        """A terminal shows no image (`rankbot ask --chart` writes one to a file)."""

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        return False  # a terminal cannot be read back: a print in doubt is printed again


class OperatorIsAdmin:
    """Implements the `Authorizer` port for the console: whoever runs rankbot owns it."""

    async def is_admin(self, ref: ChannelRef, user: str) -> bool:
        return ref.platform == "console"
