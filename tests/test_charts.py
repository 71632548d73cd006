"""Charts: the series come from the stored data, the images are PNGs of a sane size, each
drawn once (tests check the data and the file, not pixels)."""

from __future__ import annotations

import csv
import os
import struct
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rankbot.adapters import charts as drawn
from rankbot.bot import charts
from rankbot.bot.answers import UsageError
from rankbot.bot.commands import answer
from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork
from tests.conftest import EXPORT_AT, FIXTURES, RANKINGS_CSV, load, raw_models

SLUG = "deepseek/deepseek-v4.1-flash-20260910"
OLD, NEW = "2026-07-14T025033Z", "2026-08-22T183539Z"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def history() -> Iterator[UnitOfWork]:
    store = load(UnitOfWork.open(":memory:"), OLD, NEW)
    yield store
    store.close()


def exported(slug: str) -> dict[date, tuple[int, float]]:
    """Independently of bot/: the model's (rank, share) per day, read from the CSV."""
    with RANKINGS_CSV.open(newline="") as file:
        return {date.fromisoformat(row["date"]): (int(row["rank"]),
                                                  float(row["share_of_daily_tokens"]))
                for row in csv.DictReader(file) if row["model_permaslug"] == slug}


def size(image: bytes) -> tuple[int, int]:
    assert image.startswith(PNG) and image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image[16:24])
    return width, height


def test_the_rank_series_holds_each_stored_day_and_gaps_for_the_others(
        history: UnitOfWork) -> None:
    series = charts.rank_series(history.snapshots, SLUG, EXPORT_AT)
    days = exported(SLUG)
    assert series.permaslug == SLUG
    assert len(series.days) == 30 and series.days[-1].day == max(days)
    assert [d.day for d in series.days] == [max(days) - timedelta(days=29 - n)
                                            for n in range(30)]
    assert {d.day: (d.rank, d.share) for d in series.days if d.rank} == days
    assert all(d.rank is None and d.share is None for d in series.days if d.day not in days)
    assert len(charts.rank_series(history.snapshots, SLUG, EXPORT_AT, 90).days) == 90


def test_the_price_series_steps_through_the_stored_versions(history: UnitOfWork) -> None:
    old, new = raw_models(OLD), raw_models(NEW)
    moved = sorted(i for i in old.keys() & new.keys() if ":" not in i
                   and old[i]["pricing"]["prompt"] != new[i]["pricing"]["prompt"]
                   and float(old[i]["pricing"]["prompt"]) > 0)
    model_id = moved[0]
    series = charts.price_series(history.snapshots, model_id, EXPORT_AT)
    assert series.model_id == model_id

    def per_million(raw: dict[str, dict[str, dict[str, str]]], field: str) -> Decimal:
        return Decimal(raw[model_id]["pricing"][field]) * 1_000_000

    assert [p for _, p in series.prompt] == [per_million(old, "prompt"),
                                             per_million(new, "prompt")]
    assert series.completion[-1][1] == per_million(new, "completion")
    assert [at for at, _ in series.prompt] == sorted(at for at, _ in series.prompt)
    assert series.end == EXPORT_AT


def test_charts_are_pngs_of_a_sane_size_with_the_credit(history: UnitOfWork) -> None:
    rank = charts.rank_series(history.snapshots, SLUG, EXPORT_AT, 90)
    price = charts.price_series(history.snapshots, "deepseek", EXPORT_AT)
    for series in (rank, price):
        image = drawn.png(series)
        assert size(image) == (960, 480)
        assert 20_000 <= len(image) <= 500_000
    assert charts.CREDIT == "Source: OpenRouter (openrouter.ai/rankings) · CC BY 4.0"


def test_the_same_data_is_drawn_once(history: UnitOfWork) -> None:
    series = charts.rank_series(history.snapshots, SLUG, EXPORT_AT, 45)
    first = drawn.png(series)
    before = drawn.draws()
    again = drawn.png(charts.rank_series(history.snapshots, SLUG, EXPORT_AT, 45))
    assert again == first and drawn.draws() == before
    drawn.png(charts.rank_series(history.snapshots, SLUG, EXPORT_AT, 46))  # new data: drawn
    assert drawn.draws() == before + 1


def test_a_model_without_rankings_or_a_query_without_a_match_is_a_usage_error(
        history: UnitOfWork) -> None:
    ranked = set(history.snapshots.token_totals(date(2000, 1, 1), date(2100, 1, 1)))
    unranked = next(m for m in sorted(history.snapshots.live_models().values(),
                                      key=lambda m: m.id)
                    if m.permaslug not in ranked and ":" not in m.id)
    with pytest.raises(UsageError, match="has no rankings in the last 30 days"):
        charts.rank_series(history.snapshots, unranked.id, EXPORT_AT)
    with pytest.raises(UsageError, match="No model matches"):
        charts.rank_series(history.snapshots, "zzqqxx", EXPORT_AT)


def test_rank_takes_the_charts_days() -> None:
    assert charts.split_days(["qwen", "90d"]) == (["qwen"], 90)
    assert charts.split_days(["qwen"]) == (["qwen"], 30)
    with pytest.raises(UsageError, match="between 7 and 365"):
        charts.split_days(["qwen", "900d"])


def test_slash_rank_accepts_the_days(history: UnitOfWork) -> None:
    plain = answer("rank", "deepseek", history.snapshots, EXPORT_AT)
    assert answer("rank", "deepseek 90d", history.snapshots, EXPORT_AT) == plain
    assert plain.public


# -- `rankbot ask … --chart` -----------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_")):
            monkeypatch.delenv(name)
    imported = invoke("import", *(str(FIXTURES / "models" / f"{s}.json.gz") for s in (OLD, NEW)),
                      str(RANKINGS_CSV))
    assert imported.exit_code == 0, imported.output
    return tmp_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="rankbot")


def test_ask_writes_the_chart(workdir: Path) -> None:
    for command in (("rank", "deepseek", "90d"), ("price", "deepseek")):
        result = invoke("ask", *command, "--chart", "chart.png")
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Wrote ") and "chart.png" in result.stdout
        assert size((workdir / "chart.png").read_bytes()) == (960, 480)


def test_ask_says_in_one_line_when_there_is_nothing_to_draw(workdir: Path) -> None:
    result = invoke("ask", "rank", "zzqqxx", "--chart", "none.png")
    assert result.exit_code == 1 and not (workdir / "none.png").exists()
    assert result.stderr.count("\n") == 1 and "No model matches" in result.stderr
    other = invoke("ask", "top", "--chart", "none.png")
    assert other.exit_code == 1 and "rank QUERY" in other.stderr
