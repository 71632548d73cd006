"""Changes become one neutral card; the console prints it readably."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rankbot.adapters.console import ConsoleNotifier, render_text
from rankbot.bot.cards import Card, Field, changes_card, usd
from rankbot.bot.changes import ModelAdded, NewLeader, PriceChanged, RankMoved
from rankbot.bot.channels import CONSOLE

AT = datetime(2026, 10, 8, 2, 15, tzinfo=UTC)
PRICE = PriceChanged("openai/gpt-4.1", "completion", Decimal(8), Decimal(6), Decimal("-25.0"))
LEADER = NewLeader("deepseek/deepseek-v4.1-flash-20260910", "stealth/space-bunny-alpha")


def test_all_changes_of_a_poll_make_one_card_grouped_by_section() -> None:
    added = ModelAdded("a/new", "A: New", Decimal("0.3"), Decimal("1.2"), 131072)
    card = changes_card([PRICE, LEADER, added, RankMoved("q/w", 9, 4)], AT, date(2026, 10, 7))
    assert card == Card(
        title="OpenRouter: 4 changes",
        lines=("Seen 2026-10-08 02:15 UTC",),
        fields=(
            Field("Usage rankings (7 days)",
                  "👑 deepseek/deepseek-v4.1-flash-20260910 is the new #1, ahead of "
                  "stealth/space-bunny-alpha\n▲5 q/w: #9 → #4"),
            Field("Prices", "openai/gpt-4.1 output $8.00 → $6.00 per 1M (−25.0%)"),
            Field("Catalog", "＋ a/new (A: New): $0.30 in / $1.20 out per 1M, 131K context"),
        ),
        footer="Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0",
    )


def test_a_card_without_ranking_data_has_no_attribution() -> None:
    card = changes_card([PRICE], AT, date(2026, 10, 7))
    assert card.title == "OpenRouter: 1 change" and card.footer is None


@pytest.mark.parametrize(("amount", "text"), [
    ("0.075", "$0.075"), ("0.3", "$0.30"), ("15", "$15.00"), ("0.00123", "$0.00123"),
    ("1234.5", "$1,234.50"), ("0", "$0.00")])
def test_usd_is_exact(amount: str, text: str) -> None:
    assert usd(Decimal(amount)) == text


@pytest.mark.anyio
async def test_the_console_prints_the_card_as_text() -> None:
    stream = io.StringIO()
    card = changes_card([PRICE, LEADER], AT, date(2026, 10, 7))
    await ConsoleNotifier(stream).send(CONSOLE, card, (), key="k")
    assert stream.getvalue() == render_text(card) + "\n\n"
    assert render_text(card).splitlines() == [
        "━━ OpenRouter: 2 changes ━━",
        "Seen 2026-10-08 02:15 UTC",
        "",
        "Usage rankings (7 days)",
        "  👑 deepseek/deepseek-v4.1-flash-20260910 is the new #1, ahead of "
        "stealth/space-bunny-alpha",
        "",
        "Prices",
        "  openai/gpt-4.1 output $8.00 → $6.00 per 1M (−25.0%)",
        "",
        "Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0",
    ]
