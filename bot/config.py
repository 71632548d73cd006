"""Settings from the environment (and `.env`), validated once, each documented in one place.

`SETTINGS` is the single list of variables: `.env.example` and the README are checked against it.
"""

from __future__ import annotations

import math
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
    Setting("RANKBOT_LOG_FILE", "./rankbot.log",
            "log file; keeps full tracebacks. Set but empty: none, tracebacks go to the terminal"),
    Setting("RANKBOT_LOG_MAX_MB", "10", "megabytes the log file may reach before it is rotated"),
    Setting("RANKBOT_LOG_BACKUPS", "3", "rotated log files kept (rankbot.log.1 ...), 1 to 100"),
    Setting("RANKBOT_LOG_LEVEL", "INFO", "terminal log level: DEBUG, INFO, WARNING or ERROR"),
    Setting("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1", "OpenRouter API base URL"),
    Setting("OPENROUTER_API_KEY", "",
            "optional; `rankbot backfill` uses it, and provider polling if OpenRouter asks "
            "for a key"),
    Setting("RANKBOT_FETCH_TIMEOUT", "30",
            "seconds one fetch from OpenRouter may take in all, retries included"),
    Setting("RANKBOT_MAX_RESPONSE_MB", "50",
            "megabytes one answer from OpenRouter may hold, compressed or not; more is a fault"),
    Setting("RANKBOT_CATALOG_EVERY", "60", "minutes between catalog polls in `rankbot run`"),
    Setting("RANKBOT_RANKINGS_AT", "02:15",
            "UTC time of the daily rankings poll (the export is published about 01:46 UTC)"),
    Setting("RANKBOT_PROVIDERS_MAX", "50",
            "models whose providers are polled at most (the top 20 by usage, then the watched "
            "ones), 0 to 500; 0 turns provider polling off"),
    Setting("SLACK_BOT_TOKEN", "", "Slack bot token (xoxb-...); enables Slack. Its scopes "
            "(slack-manifest.yml) include files:write for charts and im:write, im:history for "
            "/watch messages"),
    Setting("SLACK_APP_TOKEN", "", "Slack app-level token (xapp-...) for Socket Mode"),
    Setting("SLACK_SIGNING_SECRET", "", "Slack signing secret, for HTTP mode"),
    Setting("RANKBOT_HTTP_PORT", "3000",
            "port `rankbot run` serves /healthz, /feed.atom, /feed.json on (and /slack/events "
            "in Slack HTTP mode)"),
    Setting("SLACK_API_URL", "https://slack.com/api/", "Slack Web API base URL"),
    Setting("RANKBOT_ADMINS", "", "comma-separated user ids who may always use /rankbot and "
            "the Mute here button"),
    Setting("DISCORD_BOT_TOKEN", "", "Discord bot token; enables Discord"),
    Setting("DISCORD_API_URL", "https://discord.com/api/v10", "Discord REST API base URL"),
    Setting("DISCORD_GATEWAY_URL", "wss://gateway.discord.gg/", "Discord gateway (websocket) URL"),
    Setting("DISCORD_APPLICATION_ID", "",
            "Discord application id, for the invite link (default: read from the token)"),
)
SECRETS = frozenset({"OPENROUTER_API_KEY", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                     "SLACK_SIGNING_SECRET", "DISCORD_BOT_TOKEN"})
DEFAULTS = {s.name: s.default for s in SETTINGS}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FILE_SUFFIX = "_FILE"  # NAME_FILE names a file holding NAME: Docker and Kubernetes secrets


@dataclass(frozen=True, slots=True)
class Settings:
    db_path: Path
    log_file: Path | None  # None: no log file
    log_level: str
    openrouter_base_url: str
    openrouter_api_key: str | None = field(repr=False)
    catalog_every_minutes: int
    rankings_at: time
    providers_max: int = 50
    fetch_timeout: float = 30.0
    max_response_mb: float = 50.0
    log_max_mb: float = 10.0
    log_backups: int = 3
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    http_port: int = 3000
    slack_api_url: str = "https://slack.com/api/"
    admins: frozenset[str] = frozenset()
    discord_bot_token: str | None = field(default=None, repr=False)
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_application_id: int | None = None

    @property
    def slack(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def discord(self) -> bool:
        return self.discord_bot_token is not None


def layered(dotenv: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The environment over `.env`. A secret and its NAME_FILE are one setting: where the
    environment sets either, `.env`'s pair is ignored, so a secret file given to a container
    replaces the token a `.env` holds instead of clashing with it."""
    merged = {**dotenv, **environ}
    for pair in ((name, name + FILE_SUFFIX) for name in SECRETS):
        if any(key in environ for key in pair):
            for key in pair:
                if key not in environ:
                    merged.pop(key, None)
    return merged


def with_secret_files(env: Mapping[str, str], read: Callable[[str], str]) -> dict[str, str]:
    """Each secret NAME whose NAME_FILE is set, read from that file by `read` (the shell's), its
    trailing newline stripped. Errors name the variable and the file, never what it holds."""
    resolved = dict(env)
    for name in sorted(SECRETS):
        variable = name + FILE_SUFFIX
        if not (path := (env.get(variable) or "").strip()):
            continue
        if (env.get(name) or "").strip():
            raise ConfigError(f"{name} and {variable} are both set: set one of them")
        try:
            value = read(path).removesuffix("\n").removesuffix("\r")
        except OSError as exc:
            raise ConfigError(f"{variable}: cannot read {path} "
                              f"({exc.strerror or type(exc).__name__})") from None
        except ValueError as exc:  # `read` says what is wrong with the file, not its content
            raise ConfigError(f"{variable}: {path} {exc}") from None
        if not value.strip():
            raise ConfigError(f"{variable}: {path} is empty")
        resolved[name] = value
    return resolved


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from a mapping (the process environment over `.env`); empty means default,
    except for RANKBOT_LOG_FILE, where set but empty means no log file (a container's logs go
    to stderr)."""

    def get(name: str, parse: Callable[[str], T]) -> T:
        raw = (env.get(name) or DEFAULTS[name]).strip()
        try:
            return parse(raw)
        except ValueError as exc:
            shown = "" if name in SECRETS else f" (got {raw!r})"  # never echo a secret
            raise ConfigError(f"{name} {exc}{shown}") from None

    no_log_file = "RANKBOT_LOG_FILE" in env and not env["RANKBOT_LOG_FILE"].strip()
    settings = Settings(
        db_path=get("RANKBOT_DB", _path),
        log_file=None if no_log_file else get("RANKBOT_LOG_FILE", _path),
        log_level=get("RANKBOT_LOG_LEVEL", _log_level),
        openrouter_base_url=get("OPENROUTER_BASE_URL", _url),
        openrouter_api_key=(env.get("OPENROUTER_API_KEY") or "").strip() or None,
        catalog_every_minutes=get("RANKBOT_CATALOG_EVERY", _minutes),
        rankings_at=get("RANKBOT_RANKINGS_AT", _utc_time),
        providers_max=get("RANKBOT_PROVIDERS_MAX", _providers_max),
        fetch_timeout=get("RANKBOT_FETCH_TIMEOUT", _seconds),
        max_response_mb=get("RANKBOT_MAX_RESPONSE_MB", _megabytes),
        log_max_mb=get("RANKBOT_LOG_MAX_MB", _megabytes),
        log_backups=get("RANKBOT_LOG_BACKUPS", _backups),
        slack_bot_token=get("SLACK_BOT_TOKEN", _token("xoxb-")),
        slack_app_token=get("SLACK_APP_TOKEN", _token("xapp-")),
        slack_signing_secret=get("SLACK_SIGNING_SECRET", lambda raw: raw or None),
        http_port=get("RANKBOT_HTTP_PORT", _port),
        slack_api_url=get("SLACK_API_URL", _url) + "/",
        admins=frozenset(a.strip() for a in (env.get("RANKBOT_ADMINS") or "").split(",")
                         if a.strip()),
        discord_bot_token=get("DISCORD_BOT_TOKEN", lambda raw: raw or None),
        discord_api_url=get("DISCORD_API_URL", _url),
        discord_gateway_url=get("DISCORD_GATEWAY_URL", _socket_url),
        discord_application_id=get("DISCORD_APPLICATION_ID", _snowflake),
    )
    if settings.slack and not (settings.slack_app_token or settings.slack_signing_secret):
        raise ConfigError("SLACK_BOT_TOKEN is set: also set SLACK_APP_TOKEN (Socket Mode) or "
                          "SLACK_SIGNING_SECRET (HTTP mode)")
    if (settings.slack_app_token or settings.slack_signing_secret) and not settings.slack:
        raise ConfigError("SLACK_BOT_TOKEN is missing: Slack needs it with SLACK_APP_TOKEN or "
                          "SLACK_SIGNING_SECRET")
    return settings


def _path(raw: str) -> Path:
    if not raw:
        raise ValueError("must be a file path")
    return Path(raw)


def _log_level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def _url(raw: str) -> str:
    return _checked_url(raw, ("http", "https"),
                        "an http(s) URL such as https://openrouter.ai/api/v1").rstrip("/")


def _socket_url(raw: str) -> str:
    return _checked_url(raw, ("ws", "wss"), "a ws(s) URL such as wss://gateway.discord.gg/")


def _checked_url(raw: str, schemes: tuple[str, ...], wanted: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"must be {wanted}")
    return raw


def _token(prefix: str) -> Callable[[str], str | None]:
    def parse(raw: str) -> str | None:
        if raw and not raw.startswith(prefix):
            raise ValueError(f"must start with {prefix}")
        return raw or None
    return parse


def _seconds(raw: str) -> float:
    if not raw.isdigit() or not 1 <= int(raw) <= 300:
        raise ValueError("must be a whole number of seconds from 1 to 300")
    return float(raw)


def _megabytes(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise ValueError("must be a positive number of megabytes, such as 50")
    return value


def _backups(raw: str) -> int:
    # 0 would mean never rotating at all (RotatingFileHandler's rule), so the least is 1.
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ValueError("must be a whole number of files from 1 to 100")
    return int(raw)


def _snowflake(raw: str) -> int | None:
    if raw and not raw.isdigit():
        raise ValueError("must be a Discord id (digits)")
    return int(raw) if raw else None


def _port(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return int(raw)


def _minutes(raw: str) -> int:
    if not raw.isdigit() or not 5 <= int(raw) <= 1440:
        raise ValueError("must be a whole number of minutes from 5 to 1440")
    return int(raw)


def _providers_max(raw: str) -> int:
    if not raw.isdigit() or not 0 <= int(raw) <= 500:
        raise ValueError("must be a whole number of models from 0 to 500")
    return int(raw)


def _utc_time(raw: str) -> time:
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ValueError("must be a UTC time of day as HH:MM") from None

