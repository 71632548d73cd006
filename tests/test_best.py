"""`/best`: quality per dollar on the real catalog, with usage beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rankbot.bot.answers import View
from rankbot.bot.commands import answer
from rankbot.storage import UnitOfWork
from tests.conftest import raw_models

OCT_8 = datetime(2026, 10, 8, 9, 0, tzinfo=UTC)
NEWEST = "2026-08-22T183539Z"


def expected(index: str, under: Decimal | None = None) -> list[tuple[str, Decimal]]:
    """Independently of bot/: (id, index per blended dollar) from the raw catalog JSON."""
    values = []
    for model_id, raw in raw_models(NEWEST).items():
        indices = (raw.get("benchmarks") or {}).get("artificial_analysis") or {}  # type: ignore[union-attr]
        score, pricing = indices.get(f"{index}_index"), raw["pricing"]
        if not isinstance(score, int | float) or ":" in model_id or model_id.startswith("~") \
                or "-1" in (pricing["prompt"], pricing["completion"]):  # type: ignore[index]
            continue
        blended = (3 * Decimal(pricing["prompt"]) + Decimal(pricing["completion"])) \
            * 10**6 / 4  # type: ignore[index]
        if blended > 0 and (under is None or blended <= under):
            values.append((model_id, Decimal(str(score)) / blended, Decimal(str(score))))
    values.sort(key=lambda v: (-v[1], -v[2], v[0]))
    return [(model_id, value) for model_id, value, _ in values]


@pytest.mark.parametrize(("text", "index", "under"), [
    ("", "intelligence", None), ("coding", "coding", None),
    ("agentic under 2", "agentic", Decimal(2)), ("under $0.5", "intelligence", Decimal("0.5")),
])
def test_best_ranks_the_real_catalog_by_index_per_blended_dollar(
        october: UnitOfWork, text: str, index: str, under: Decimal | None) -> None:
    reply = answer("best", text, october.snapshots, OCT_8)
    assert reply.public, reply.card
    want = expected(index, under)
    assert want and len(reply.card.lines) == min(10, len(want))
    for line, (model_id, value) in zip(reply.card.lines, want, strict=False):
        assert f"({model_id})" in line and f"{value:.1f} per $" in line
        assert "usage #" in line or "usage unranked" in line
    assert "Artificial Analysis" in (reply.card.footer or "")


def test_usage_rank_stands_beside_each(october: UnitOfWork) -> None:
    view = View(october.snapshots, OCT_8)
    week, models = view.board("week"), october.snapshots.live_models()
    lines = answer("best", "intelligence", october.snapshots, OCT_8).card.lines
    ranked = 0
    for line in lines:
        model_id = line.split(" — ", 1)[0].rsplit("(", 1)[1].rstrip(")")
        rank = week.rank_of(models[model_id].permaslug)
        assert line.endswith(f"usage #{rank} this week" if rank else "usage unranked this week")
        ranked += rank is not None
    assert ranked  # some of the best value is also used


@pytest.mark.parametrize("text", ["speed", "coding under", "under free", "under 1e9",
                                  "coding under 2 please", "under NaN"])
def test_bad_input_gets_one_line(october: UnitOfWork, text: str) -> None:
    reply = answer("best", text, october.snapshots, OCT_8)
    assert not reply.public and len(reply.card.lines) == 1
    assert reply.card.lines[0].startswith(("Usage: `/best", "The price after `under`"))


def test_nothing_under_a_tiny_price_says_so(october: UnitOfWork) -> None:
    reply = answer("best", "under 0.0001", october.snapshots, OCT_8)
    assert reply.card.lines == ("No model with an intelligence index under $0.0001 (blended, "
                                "per 1M tokens).",)


def test_price_shows_the_quality_indices_beside_the_prices(october: UnitOfWork) -> None:
    raw = raw_models(NEWEST)
    model_id = next(i for i, m in raw.items() if ":" not in i and not i.startswith("~") and (
        (m.get("benchmarks") or {}).get("artificial_analysis")))  # type: ignore[union-attr]
    card = answer("price", model_id, october.snapshots, OCT_8).card
    indices = raw[model_id]["benchmarks"]["artificial_analysis"]  # type: ignore[index]
    scores = " · ".join(f"{name.removesuffix('_index')} {value}"
                        for name, value in indices.items() if value is not None)
    assert f"  Quality (Artificial Analysis): {scores}" in card.fields[0].value.splitlines()
