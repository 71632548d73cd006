"""How times are stored: UTC, to the second, as sortable ISO text."""

from __future__ import annotations

from datetime import UTC, datetime


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
