"""OpenRouter over httpx: the catalog, the keyless rankings export and the keyed rankings API.

Fetching returns raw bytes; parsing lives in the core. Every failure becomes one SourceFault
whose message names what failed and never contains the API key.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import version
from typing import Any

import httpx

from bot.faults import FaultKind, SourceFault
from bot.ports import RawRankings
from bot.rankings import parse_manifest

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
EXPORTS = "datasets/exports/rankings-daily"
DATED_CSV = re.compile(r"^\d{4}-\d{2}-\d{2}\.csv$")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def user_agent() -> str:
    return f"rankbot/{version('rankbot')} (self-hosted OpenRouter watcher; httpx)"


def open_http(base_url: str, timeout: httpx.Timeout = TIMEOUT) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=timeout,
                             headers={"User-Agent": user_agent()}, follow_redirects=True)


class OpenRouterClient:
    """Implements the core's `OpenRouterSource` port."""

    def __init__(self, http: httpx.AsyncClient, *, api_key: str | None = None,
                 attempts: int = 3, backoff: float = 2.0, max_wait: float = 60.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._http = http
        self._api_key = api_key
        self._attempts = attempts
        self._backoff = backoff
        self._max_wait = max_wait
        self._sleep = sleep

    async def fetch_catalog(self) -> bytes:
        return await self._get("models")

    async def fetch_rankings(self) -> RawRankings:
        """The dated CSV its manifest names, hash to verify; else `latest.csv`, unverified."""
        try:
            manifest = parse_manifest(await self._get(f"{EXPORTS}/latest.manifest.json"))
            # Fetched from the manifest's folder under our base URL, never from another host.
            name = manifest.csv_url.rsplit("/", 1)[-1]
            if not DATED_CSV.match(name):
                raise SourceFault("unparsable", f"manifest names an unexpected file {name!r}")
            body = await self._get(f"{EXPORTS}/{name}")
            return RawRankings(body, manifest.sha256, "export")
        except SourceFault as fault:
            log.warning("rankings export unavailable (%s); falling back to latest.csv",
                        fault.message, exc_info=fault)
        return RawRankings(await self._get(f"{EXPORTS}/latest.csv"), None, "latest")

    async def fetch_keyed_rankings(self, start: date, end: date) -> bytes:
        """`datasets/rankings-daily` for backfill; needs OPENROUTER_API_KEY."""
        if not self._api_key:
            raise SourceFault("http", "backfill needs OPENROUTER_API_KEY")
        params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "period": "day"}
        return await self._get("datasets/rankings-daily", params=params,
                               headers={"Authorization": f"Bearer {self._api_key}"})

    async def _get(self, path: str, **request: Any) -> bytes:
        """GET with bounded retries: 5xx, timeouts and network errors back off with jitter,
        429 waits for Retry-After; any other 4xx fails at once."""
        for attempt in itertools.count(1):
            try:
                return await self._get_once(path, **request)
            except _Transient as transient:
                wait = transient.retry_after or self._delay(attempt)
                if attempt >= self._attempts or wait > self._max_wait:
                    raise SourceFault(transient.kind, f"{transient.message} "
                                      f"(after {attempt} tries)") from transient
                log.info("%s; retrying in %.1fs", transient.message, wait)
                await self._sleep(wait)
        raise AssertionError("unreachable")

    async def _get_once(self, path: str, **request: Any) -> bytes:
        try:
            response = await self._http.get(path, **request)
        except httpx.TimeoutException as exc:
            raise _Transient("timeout", f"OpenRouter did not answer /{path} in time") from exc
        except httpx.TransportError as exc:
            raise _Transient("network", f"could not reach OpenRouter for /{path} "
                                        f"({type(exc).__name__})") from exc
        code = response.status_code
        if response.is_success:
            return response.content
        if code == 429:
            raise _Transient("rate_limited", f"OpenRouter rate-limited /{path} (HTTP 429)",
                             _retry_after(response))
        if code >= 500:
            raise _Transient("http", f"OpenRouter answered HTTP {code} for /{path}")
        if code in (401, 403):
            raise SourceFault("http", f"OpenRouter refused /{path} (HTTP {code}): "
                                      "check OPENROUTER_API_KEY")
        raise SourceFault("http", f"OpenRouter answered HTTP {code} for /{path}")

    def _delay(self, attempt: int) -> float:
        return self._backoff * 2.0 ** (attempt - 1) * random.uniform(0.8, 1.2)


class _Transient(SourceFault):
    """A fault worth another try, optionally after the wait the server asked for."""

    def __init__(self, kind: FaultKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(kind, message)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header, either delta-seconds or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
