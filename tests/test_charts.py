"""Charts: the series come from the stored data, the images are PNGs of a sane size, each
drawn once (tests check the data and the file, not pixels)."""

from __future__ import annotations

import csv
import json
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rankbot.adapters import charts as drawn
from rankbot.bot import charts
from rankbot.bot.answers import UsageError, move
from rankbot.bot.commands import answer
from rankbot.bot.digest import weekly_digest
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
    week = charts.week_series(history.snapshots, EXPORT_AT.date())
    assert week is not None
    for series in (rank, price, week):
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



# -- the weekly digest's chart ---------------------------------------------------------------

DIGEST_DAY = EXPORT_AT.date() - timedelta(days=1)  # the digest's week ends the day before


def csv_top(end: date, n: int = 10) -> list[str]:
    tokens: Counter[str] = Counter()
    with RANKINGS_CSV.open(newline="") as file:
        for row in csv.DictReader(file):
            if (0 <= (end - date.fromisoformat(row["date"])).days < 7
                    and row["model_permaslug"] != "other"):
                tokens[row["model_permaslug"]] += int(row["total_tokens"])
    return sorted(tokens, key=lambda slug: (-tokens[slug], slug))[:n]


def week(history: UnitOfWork) -> charts.WeekSeries:
    series = charts.week_series(history.snapshots, DIGEST_DAY)
    assert series is not None
    return series


def test_the_week_chart_is_the_digests_top_10_day_by_day(history: UnitOfWork) -> None:
    series = week(history)
    latest = max(exported(SLUG))
    assert series.as_of == latest == DIGEST_DAY
    assert series.days == tuple(latest - timedelta(days=6 - n) for n in range(7))
    assert [line.permaslug for line in series.lines] == csv_top(latest)
    for line in series.lines:
        days = exported(line.permaslug)
        assert line.ranks == tuple(days[d][0] if d in days else None for d in series.days)
    assert any(None in line.ranks for line in series.lines)  # the sample skips days
    card = weekly_digest(history.snapshots, EXPORT_AT)
    assert card is not None
    shown = card.fields[0].value.splitlines()
    assert [text.split(" — ")[0] for text in shown] == [
        f"{line.rank}. {move(line.before, line.rank)} {line.label}" for line in series.lines]
    assert {move(line.before, line.rank)[0] for line in series.lines} >= {"▲", "▼", "="}
    assert "2026-10-07" in series.footer


def test_the_week_is_the_digests_even_past_the_latest_rankings(history: UnitOfWork) -> None:
    assert charts.week_series(history.snapshots, DIGEST_DAY + timedelta(days=30)) == week(history)
    assert charts.week_series(history.snapshots, date(2020, 1, 1)) is None  # no rankings then
    empty = UnitOfWork.open(":memory:")
    assert charts.week_series(empty.snapshots, DIGEST_DAY) is None
    empty.close()


def test_the_week_chart_survives_the_outbox_as_json(history: UnitOfWork) -> None:
    series = week(history)
    stored = json.loads(json.dumps(charts.series_to_record(series)))
    back = charts.series_from_record(stored)
    assert back == series and hash(back) == hash(series)
    image = drawn.png(series)
    before = drawn.draws()
    assert drawn.png(back) == image and drawn.draws() == before  # the same data: the cache


def first_line(record: dict[str, Any], **changes: object) -> dict[str, Any]:
    """The record with its first line changed (a change to `...` drops the key)."""
    line = {k: v for k, v in {**record["lines"][0], **changes}.items() if v is not ...}
    return {**record, "lines": [line, *record["lines"][1:]]}


BROKEN: dict[str, Callable[[dict[str, Any]], object]] = {
    "not an object": lambda r: [r],
    "a key missing": lambda r: {k: v for k, v in r.items() if k != "footer"},
    "a key more": lambda r: {**r, "extra": 1},
    "another chart": lambda r: {**r, "chart": "rank"},
    "as_of a number": lambda r: {**r, "as_of": 20261007},
    "as_of compact": lambda r: {**r, "as_of": "20261007"},
    "as_of no date": lambda r: {**r, "as_of": "2026-13-01"},
    "as_of the first day": lambda r: {**r, "as_of": "0001-01-01"},  # no week before it
    "footer null": lambda r: {**r, "footer": None},
    "footer huge": lambda r: {**r, "footer": "x" * 100_000},
    "lines an object": lambda r: {**r, "lines": {"0": r["lines"][0]}},
    "no lines": lambda r: {**r, "lines": []},
    "too many lines": lambda r: {**r, "lines": r["lines"] * 100_000},
    "lines out of order": lambda r: {**r, "lines": r["lines"][::-1]},
    "a line a string": lambda r: {**r, "lines": ["deepseek", *r["lines"][1:]]},
    "a line without ranks": lambda r: first_line(r, ranks=...),
    "ranks too few": lambda r: first_line(r, ranks=[1] * 6),
    "ranks huge": lambda r: first_line(r, ranks=[1] * 1_000_000),
    "a rank true": lambda r: first_line(r, ranks=[True] * 7),
    "a rank a float": lambda r: first_line(r, ranks=[1.0] * 7),
    "a rank past 50": lambda r: first_line(r, ranks=[51] * 7),
    "a rank zero": lambda r: first_line(r, ranks=[0] * 7),
    "rank a string": lambda r: first_line(r, rank="1"),
    "rank past 10": lambda r: first_line(r, rank=11),
    "before negative": lambda r: first_line(r, before=-1),
    "before huge": lambda r: first_line(r, before=10**40),
    "label a number": lambda r: first_line(r, label=7),
    "label huge": lambda r: first_line(r, label="x" * 100_000),
    "slug empty": lambda r: first_line(r, permaslug=""),
}


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_record_is_a_value_error(
        history: UnitOfWork, broken: Callable[[dict[str, Any]], object]) -> None:
    record = json.loads(json.dumps(charts.series_to_record(week(history))))
    with pytest.raises(ValueError):  # any message: the sender logs it and goes on
        charts.series_from_record(broken(record))


def test_names_are_drawn_as_typed_never_as_mathtext(history: UnitOfWork) -> None:
    series = week(history)
    named = ("$\\alpha$", "$\\notacommand{$ \\$5", "Total: $5/$10\n<@here>" + "x" * 80)
    lines = tuple(replace(line, label=named[n % len(named)])
                  for n, line in enumerate(series.lines))
    image = drawn.png(replace(series, lines=lines))  # mathtext would raise on the second
    assert size(image) == (960, 480) and len(image) >= 20_000
    rank = charts.rank_series(history.snapshots, SLUG, EXPORT_AT)
    assert size(drawn.png(replace(rank, label="$\\notacommand{$"))) == (960, 480)
    assert drawn._short(lines[2]) == "Total: $5/$10 <@here>" + "x" * 6 + "…"  # one line, 28


def test_the_line_colours_read_on_light_and_dark_chats() -> None:
    def luminance(colour: str) -> float:
        srgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in srgb]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    def contrast(a: str, b: str) -> float:
        high, low = sorted((luminance(a), luminance(b)), reverse=True)
        return (high + 0.05) / (low + 0.05)

    assert len(set(drawn.LINES)) == charts.TOP
    for background in ("#ffffff", "#1a1d21", "#313338"):  # light; Slack's and Discord's dark
        assert min(contrast(c, background) for c in drawn.LINES) >= 3.0


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
