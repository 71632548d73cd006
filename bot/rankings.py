"""OpenRouter usage rankings: parsing the daily export and the keyed API into daily rows (pure)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date

from rankbot.bot.faults import BadEntry, Rejected, SourceFault, check_rejected

OTHER = "other"  # the export's last row per day: every model outside the top 50, with no rank
COLUMNS = ("date", "model_permaslug", "rank", "total_tokens", "share_of_daily_tokens")
# Sanity bounds: past them a row is broken (set aside), not news. OpenRouter routes about 1e13
# tokens a day in all, and SQLite integers stop at 2**63.
MAX_TOKENS = 10**18
MAX_RANK = 10_000
MAX_SLUG = 200


@dataclass(frozen=True, slots=True)
class DailyRank:
    """One row of the export: a model's tokens on one UTC day. `rank` is None for `other`."""

    date: date
    permaslug: str
    rank: int | None
    tokens: int
    share: float


@dataclass(frozen=True, slots=True)
class Manifest:
    """What `latest.manifest.json` says about the newest dated CSV."""

    snapshot_date: date
    csv_url: str
    sha256: str


@dataclass(frozen=True, slots=True)
class RankingsCsv:
    """A parsed export: its good rows, and the rows set aside as malformed."""

    rows: list[DailyRank]
    rejected: tuple[Rejected, ...] = ()


def parse_rankings_csv(body: bytes, newest: date | None = None) -> RankingsCsv:
    """Parse the export CSV (CRLF or LF). A malformed row is set aside, and so is one dated
    after `newest` (the day the export was fetched: a future day would pass for the latest
    data until it came); an empty file, a wrong header or too many bad rows is a fault."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFault("unparsable", "rankings CSV is not UTF-8") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = _next_row(reader)
    except csv.Error as exc:
        raise SourceFault("unparsable", f"rankings CSV header is not CSV ({exc})") from exc
    if header is None or tuple(header) != COLUMNS:
        shown = "missing" if header is None else repr(header)[:120]
        raise SourceFault("unparsable", f"rankings CSV header is {shown}")
    rows: list[DailyRank] = []
    rejected: list[Rejected] = []
    while True:
        try:
            row = _next_row(reader)
        except csv.Error as exc:  # a field past csv's size limit, say: skip to the next line
            if rejected and rejected[-1].what == f"line {reader.line_num}":
                raise SourceFault("unparsable", f"rankings CSV is not CSV ({exc})") from exc
            rejected.append(Rejected(f"line {reader.line_num}", "row", f"is not CSV ({exc})"))
            continue
        if row is None:
            break
        if not row:
            continue  # a blank line
        try:
            rows.append(parse_row(row, newest))
        except BadEntry as bad:
            rejected.append(Rejected(f"line {reader.line_num}", bad.field, bad.reason))
    check_rejected(rejected, len(rows) + len(rejected), "rankings rows")
    if not rows:
        raise SourceFault("empty", "rankings CSV has no rows")
    return RankingsCsv(rows, tuple(rejected))


def _next_row(reader: Iterator[list[str]]) -> list[str] | None:
    return next(reader, None)


def parse_row(row: list[str], newest: date | None = None) -> DailyRank:
    """One export row; BadEntry names the first field that cannot be right."""
    if len(row) != len(COLUMNS):
        raise BadEntry("row", f"has {len(row)} fields, not {len(COLUMNS)}")
    day, slug, rank, tokens, share = row
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise BadEntry("date", f"{day[:24]!r} is not a date") from None
    if newest is not None and when > newest:
        raise BadEntry("date", f"{day!r} has not come yet")
    if not 0 < len(slug) <= MAX_SLUG or not slug.isprintable() or " " in slug:
        raise BadEntry("model_permaslug", f"{slug[:24]!r} is not a model slug")
    if rank and not (_whole(rank) and 1 <= int(rank) <= MAX_RANK):
        raise BadEntry("rank", f"{rank[:24]!r} is not a rank")
    return DailyRank(when, slug, int(rank) if rank else None, token_count(tokens),
                     _share(share))


def token_count(raw: str) -> int:
    if not (_whole(raw) and int(raw) <= MAX_TOKENS):
        raise BadEntry("total_tokens", f"{raw[:24]!r} is not a token count")
    return int(raw)


def _share(raw: str) -> float:
    try:
        share = float(raw) if len(raw) <= 40 else math.nan
    except ValueError:
        share = math.nan
    if not 0 <= share <= 1 + 1e-9:  # NaN fails this too
        raise BadEntry("share_of_daily_tokens", f"{raw[:24]!r} is not a share")
    return share


def _whole(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= 20


def parse_manifest(body: bytes) -> Manifest:
    try:
        payload = json.loads(body)
        csv_file = payload["files"]["csv"]
        return Manifest(
            snapshot_date=date.fromisoformat(payload["snapshot_date"]),
            csv_url=str(csv_file["url"]),
            sha256=str(csv_file["sha256"]).lower(),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceFault("unparsable", f"rankings manifest is malformed ({exc!r})") from exc


def parse_keyed_rankings(body: bytes) -> list[DailyRank]:
    """Parse `datasets/rankings-daily` (tokens only) and derive each day's rank and share."""
    try:
        entries = json.loads(body)["data"]
        tokens = [(date.fromisoformat(e["date"]), str(e["model_permaslug"]),
                   token_count(str(e["total_tokens"]))) for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceFault("unparsable", f"keyed rankings are malformed ({exc})") from exc
    return rank_days(tokens)


def rank_days(tokens: Iterable[tuple[date, str, int]]) -> list[DailyRank]:
    """Rank each day's models by tokens, with shares of that day's total."""
    days: dict[date, list[tuple[str, int]]] = defaultdict(list)
    for day, slug, count in tokens:
        days[day].append((slug, count))
    rows: list[DailyRank] = []
    for day, entries in sorted(days.items()):
        total = sum(count for _, count in entries) or 1
        ranked = sorted((e for e in entries if e[0] != OTHER), key=lambda e: (-e[1], e[0]))
        rows += [DailyRank(day, slug, i, count, count / total)
                 for i, (slug, count) in enumerate(ranked, start=1)]
        rows += [DailyRank(day, OTHER, None, count, count / total)
                 for slug, count in entries if slug == OTHER]
    return rows
