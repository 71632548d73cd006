"""The rankings export, the keyed API and leaderboards, on the real excerpt and on literals."""

from __future__ import annotations

from datetime import date

import pytest

from rankbot.bot.faults import SourceFault
from rankbot.bot.leaderboard import Totals, board, open_weight_count
from rankbot.bot.rankings import OTHER, DailyRank, parse_keyed_rankings, parse_rankings_csv
from tests.conftest import rankings_csv

D1, D2, D7 = date(2026, 9, 30), date(2026, 10, 1), date(2026, 10, 7)


def test_the_real_export_parses_with_lf_and_with_crlf() -> None:
    lf = rankings_csv()
    crlf = lf.replace(b"\n", b"\r\n")
    assert b"\r\n" not in lf
    rows = parse_rankings_csv(lf).rows
    assert rows == parse_rankings_csv(crlf).rows
    assert len(rows) == 153 and {r.date for r in rows} == {D1, D2, D7}
    assert rows[0] == DailyRank(D1, "stealth/space-bunny-alpha", 1, 5331621827040,
                                0.21870872876777964)


def test_the_other_row_has_no_rank() -> None:
    others = [r for r in parse_rankings_csv(rankings_csv()).rows if r.permaslug == OTHER]
    assert len(others) == 3 and all(r.rank is None for r in others)


@pytest.mark.parametrize(("body", "kind"), [
    (b"", "unparsable"),
    (b"date,model_permaslug,rank,total_tokens,share_of_daily_tokens\n", "empty"),
    (b"<html>error</html>", "unparsable"),
    (b"date,model_permaslug,rank,total_tokens,share_of_daily_tokens\n2026-10-07,a/b,1,lots,0.1\n",
     "unparsable"),
])
def test_bad_csvs_are_typed_faults(body: bytes, kind: str) -> None:
    with pytest.raises(SourceFault) as caught:
        parse_rankings_csv(body)
    assert caught.value.kind == kind


def totals(rows: list[DailyRank]) -> Totals:
    """A window's tokens per model, as storage sums them."""
    def window(start: date, end: date) -> dict[str, int]:
        summed: dict[str, int] = {}
        for row in rows:
            if start <= row.date <= end:
                summed[row.permaslug] = summed.get(row.permaslug, 0) + row.tokens
        return summed
    return window


def test_the_daily_leaderboard_reproduces_the_export_ranks() -> None:
    rows = parse_rankings_csv(rankings_csv()).rows
    day = board(totals(rows), D7, days=1)
    assert [(s.permaslug, s.rank) for s in day.standings] == [
        (r.permaslug, r.rank) for r in rows if r.date == D7 and r.rank is not None]
    assert day.leader is not None and day.leader.share == pytest.approx(0.2993197303783515)


def test_the_weekly_leaderboard_sums_the_days_present_in_its_window() -> None:
    rows = [DailyRank(D1, "a/x", 1, 100, 0), DailyRank(D2, "b/y", 1, 80, 0),
            DailyRank(D7, "b/y", 1, 50, 0), DailyRank(D7, "a/x", 2, 20, 0),
            DailyRank(D7, OTHER, None, 30, 0)]
    week = board(totals(rows), D7)  # 2026-10-01..07: D1 is outside
    assert (week.start, week.end) == (D2, D7)
    assert [(s.permaslug, s.rank, s.tokens) for s in week.standings] == [
        ("b/y", 1, 130), ("a/x", 2, 20)]
    assert week.standings[0].share == pytest.approx(130 / 180)  # other counts in the total
    assert week.rank_of("a/x") == 2 and week.rank_of(OTHER) is None
    assert open_weight_count(week, 1, lambda slug: slug == "b/y") == 1


def test_keyed_rankings_get_ranks_and_shares_per_day() -> None:
    body = (b'{"data":[{"date":"2026-10-07","model_permaslug":"a/x","total_tokens":"10"},'
            b'{"date":"2026-10-07","model_permaslug":"b/y","total_tokens":"30"},'
            b'{"date":"2026-10-06","model_permaslug":"a/x","total_tokens":"5"}],'
            b'"meta":{"version":"v1"}}')
    assert parse_keyed_rankings(body) == [
        DailyRank(date(2026, 10, 6), "a/x", 1, 5, 1.0),
        DailyRank(D7, "b/y", 1, 30, 0.75), DailyRank(D7, "a/x", 2, 10, 0.25)]
    with pytest.raises(SourceFault):
        parse_keyed_rankings(b'{"error":{"code":401,"message":"no"}}')
