"""Settings from the environment (and `.env`), validated once, each documented in one place.

`SETTINGS` is the single list of variables: `.env.example` and the README are checked against it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class ConfigError(Exception):
    """A missing or invalid setting; the message names the variable and what it accepts."""


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS = (
    Setting("RANKBOT_DB", "./rankbot.db", "SQLite file holding every snapshot"),
    Setting("RANKBOT_LOG_FILE", "./rankbot.log", "log file; keeps full tracebacks"),
    Setting("RANKBOT_LOG_LEVEL", "INFO", "terminal log level: DEBUG, INFO, WARNING or ERROR"),
    Setting("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1", "OpenRouter API base URL"),
    Setting("OPENROUTER_API_KEY", "", "optional; only `rankbot backfill` uses it"),
    Setting("RANKBOT_CATALOG_EVERY", "60", "minutes between catalog polls in `rankbot run`"),
    Setting("RANKBOT_RANKINGS_AT", "02:15",
            "UTC time of the daily rankings poll (the export is published about 01:46 UTC)"),
)
DEFAULTS = {s.name: s.default for s in SETTINGS}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True, slots=True)
class Settings:
    db_path: Path
    log_file: Path
    log_level: str
    openrouter_base_url: str
    openrouter_api_key: str | None = field(repr=False)
    catalog_every_minutes: int
    rankings_at: time


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from a mapping (the process environment over `.env`); empty means default."""

    def get(name: str, parse: Callable[[str], T]) -> T:
        raw = (env.get(name) or DEFAULTS[name]).strip()
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} {exc} (got {raw!r})") from None

    return Settings(
        db_path=get("RANKBOT_DB", _path),
        log_file=get("RANKBOT_LOG_FILE", _path),
        log_level=get("RANKBOT_LOG_LEVEL", _log_level),
        openrouter_base_url=get("OPENROUTER_BASE_URL", _url),
        openrouter_api_key=(env.get("OPENROUTER_API_KEY") or "").strip() or None,
        catalog_every_minutes=get("RANKBOT_CATALOG_EVERY", _minutes),
        rankings_at=get("RANKBOT_RANKINGS_AT", _utc_time),
    )


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError("must be a file path")
    return Path(raw)


def _log_level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL such as https://openrouter.ai/api/v1")
    return raw.rstrip("/")


def _minutes(raw: str) -> int:
    if not raw.isdigit() or not 5 <= int(raw) <= 1440:
        raise ValueError("must be a whole number of minutes from 5 to 1440")
    return int(raw)


def _utc_time(raw: str) -> time:
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be a UTC time of day as HH:MM") from None

