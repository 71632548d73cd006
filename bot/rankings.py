"""OpenRouter usage rankings: parsing the daily export and the keyed API into daily rows (pure)."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from bot.faults import SourceFault

OTHER = "other"  # the export's last row per day: every model outside the top 50, with no rank
COLUMNS = ("date", "model_permaslug", "rank", "total_tokens", "share_of_daily_tokens")


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


def parse_rankings_csv(body: bytes) -> list[DailyRank]:
    """Parse the export CSV (CRLF or LF). An empty or malformed file is a source fault."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFault("unparsable", "rankings CSV is not UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise SourceFault("unparsable", f"rankings CSV header is {reader.fieldnames}")
    rows = [_parse_row(row, reader.line_num) for row in reader]
    if not rows:
        raise SourceFault("empty", "rankings CSV has no rows")
    return rows


def _parse_row(row: dict[str, str], line: int) -> DailyRank:
    try:
        return DailyRank(
            date=date.fromisoformat(row["date"]),
            permaslug=row["model_permaslug"],
            rank=int(row["rank"]) if row["rank"] else None,
            tokens=int(row["total_tokens"]),
            share=float(row["share_of_daily_tokens"]),
        )
    except (TypeError, ValueError) as exc:
        raise SourceFault("unparsable", f"rankings CSV line {line} is malformed ({exc})") from exc


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
        tokens = [(date.fromisoformat(e["date"]), e["model_permaslug"], int(e["total_tokens"]))
                  for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceFault("unparsable", f"keyed rankings are malformed ({exc!r})") from exc
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
