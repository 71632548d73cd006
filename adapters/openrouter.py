"""OpenRouter over httpx: the catalog, the keyless rankings export and the keyed rankings API.

Fetching returns raw bytes; parsing lives in the core. Every failure becomes one SourceFault
whose message names what failed and never contains the API key.

Everything from OpenRouter is bounded: each public fetch runs under one deadline that covers all
its tries, a body may not grow past a byte limit on the wire or once decompressed, and
redirects are followed only on the base URL's own scheme, host and port.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import random
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import version

import httpx

from rankbot.bot.faults import FaultKind, SourceFault
from rankbot.bot.ports import RawEndpoints, RawRankings
from rankbot.bot.rankings import parse_manifest

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
EXPORTS = "datasets/exports/rankings-daily"
DATED_CSV = re.compile(r"^\d{4}-\d{2}-\d{2}\.csv$")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MB = 1_000_000
MAX_BYTES = 50 * MB
MAX_REDIRECTS = 5
# Only what we decode ourselves, with a bound: httpx's decoders inflate a whole chunk at once.
ACCEPT_ENCODING = "gzip, deflate"
WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
INFLATE_STEP = 1 << 20  # bytes decompressed per zlib call, so a bomb never expands at once
DEFAULT_PORTS = {"http": 80, "https": 443}


def user_agent() -> str:
    return f"rankbot/{version('rankbot')} (self-hosted OpenRouter watcher; httpx)"


def open_http(base_url: str, timeout: httpx.Timeout = TIMEOUT) -> httpx.AsyncClient:
    """The client's own timeout bounds each phase (connect, each read); OpenRouterClient bounds
    the whole fetch. Redirects are followed by OpenRouterClient, never by httpx."""
    return httpx.AsyncClient(base_url=base_url, timeout=timeout,
                             headers={"User-Agent": user_agent()}, follow_redirects=False)


class OpenRouterClient:
    """Implements the core's `OpenRouterSource` port."""

    def __init__(self, http: httpx.AsyncClient, *, api_key: str | None = None,
                 fetch_timeout: float = 30.0, max_bytes: int = MAX_BYTES,
                 attempts: int = 3, backoff: float = 2.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._http = http
        self._api_key = api_key
        self._fetch_timeout = fetch_timeout
        self._max_bytes = max_bytes
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep
        self._endpoints_keyed = False  # OpenRouter asked for the key for provider endpoints

    async def fetch_catalog(self) -> bytes:
        async with self._deadline("/models") as deadline:
            return await self._get("models", deadline)

    async def fetch_rankings(self) -> RawRankings:
        """The dated CSV its manifest names, hash to verify; else `latest.csv`, unverified.
        Manifest, CSV and fallback share one deadline."""
        async with self._deadline("the rankings export") as deadline:
            try:
                manifest = parse_manifest(
                    await self._get(f"{EXPORTS}/latest.manifest.json", deadline))
                # Fetched from the manifest's folder under our base URL, never from another host.
                name = manifest.csv_url.rsplit("/", 1)[-1]
                if not DATED_CSV.match(name):
                    raise SourceFault("unparsable", f"manifest names an unexpected file {name!r}")
                body = await self._get(f"{EXPORTS}/{name}", deadline)
                return RawRankings(body, manifest.sha256, "export")
            except SourceFault as fault:
                log.warning("rankings export unavailable (%s); falling back to latest.csv",
                            fault.message, exc_info=fault)
            return RawRankings(await self._get(f"{EXPORTS}/latest.csv", deadline), None,
                               "latest")

    async def fetch_keyed_rankings(self, start: date, end: date) -> bytes:
        """`datasets/rankings-daily` for backfill; needs OPENROUTER_API_KEY."""
        if not self._api_key:
            raise SourceFault("http", "backfill needs OPENROUTER_API_KEY")
        params = {"start_date": start.isoformat(), "end_date": end.isoformat(), "period": "day"}
        async with self._deadline("/datasets/rankings-daily") as deadline:
            return await self._get("datasets/rankings-daily", deadline, params=params,
                                   headers={"Authorization": f"Bearer {self._api_key}"})

    async def fetch_endpoints(self, details: str | None, slug: str) -> RawEndpoints:
        """A model's providers, at its catalog entry's `links.details` where that is a path
        under the base URL (else at `models/{slug}/endpoints`), bounded like any fetch.
        Keyless; once OpenRouter refuses that (401, 403) and OPENROUTER_API_KEY is set, with
        the key from then on, said once in the log."""
        path = endpoints_path(self._http.base_url, details, slug)
        if path is None:
            raise SourceFault("bad_entries", f"no endpoints path for {slug[:100]!r}: neither "
                                             "its links.details nor its permaslug is one")
        async with self._deadline(f"/{path}") as deadline:
            if not self._endpoints_keyed:
                try:
                    return RawEndpoints(await self._get(path, deadline))
                except Refused as refused:
                    if not self._api_key:
                        raise SourceFault("http", "OpenRouter asks for a key for provider "
                                          f"endpoints (HTTP {refused.code}): set "
                                          "OPENROUTER_API_KEY") from refused
                    self._endpoints_keyed = True
                    log.warning("OpenRouter asks for a key for provider endpoints: fetching "
                                "them with OPENROUTER_API_KEY from now on")
            return RawEndpoints(await self._get(
                path, deadline, headers={"Authorization": f"Bearer {self._api_key}"}), True)

    @asynccontextmanager
    async def _deadline(self, what: str) -> AsyncIterator[asyncio.Timeout]:
        """One deadline for a whole fetch, however slowly the bytes come; httpx's own timeout
        is per read, so a server dripping bytes would otherwise hold a poll forever."""
        try:
            async with asyncio.timeout(self._fetch_timeout) as deadline:
                yield deadline
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise SourceFault("timeout", f"fetching {what} from OpenRouter took more than "
                              f"{self._fetch_timeout:g} s in all (RANKBOT_FETCH_TIMEOUT), "
                              "retries included") from exc

    async def _get(self, path: str, deadline: asyncio.Timeout,
                   params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> bytes:
        """GET with bounded retries within what is left of the deadline: 5xx, timeouts and
        network errors back off with jitter, 429 waits for Retry-After; any other 4xx fails at
        once, and so does a wait that would outlast the deadline."""
        for attempt in itertools.count(1):
            try:
                return await self._get_once(path, params, headers)
            except _Transient as transient:
                wait = transient.retry_after or self._delay(attempt)
                if attempt >= self._attempts or wait > _left(deadline):
                    tries = "1 try" if attempt == 1 else f"{attempt} tries"
                    raise SourceFault(transient.kind,
                                      f"{transient.message} (after {tries})") from transient
                log.info("%s; retrying in %.1fs", transient.message, wait)
                await self._sleep(wait)
        raise AssertionError("unreachable")

    async def _get_once(self, path: str, params: dict[str, str] | None,
                        headers: dict[str, str] | None) -> bytes:
        try:
            return await self._follow(path, params, headers)
        except httpx.TimeoutException as exc:
            raise _Transient("timeout", f"OpenRouter did not answer /{path} in time") from exc
        except httpx.TransportError as exc:
            raise _Transient("network", f"could not reach OpenRouter for /{path} "
                                        f"({type(exc).__name__})") from exc

    async def _follow(self, path: str, params: dict[str, str] | None,
                      headers: dict[str, str] | None) -> bytes:
        """One try, following at most MAX_REDIRECTS redirects, each checked before it is
        followed: httpx would follow one anywhere."""
        url: httpx.URL | str = path
        sent = {**(headers or {}), "Accept-Encoding": ACCEPT_ENCODING}
        for _ in range(MAX_REDIRECTS + 1):
            async with self._http.stream("GET", url, params=params, headers=sent,
                                         follow_redirects=False) as response:
                if not response.has_redirect_location:
                    return await self._accept(response, path)
                url = redirect_target(self._http.base_url, response.url,
                                      response.headers["Location"], path)
                params = None  # the Location carries its own query
        raise SourceFault("http", f"OpenRouter redirected /{path} more than "
                                  f"{MAX_REDIRECTS} times")

    async def _accept(self, response: httpx.Response, path: str) -> bytes:
        code = response.status_code
        if response.is_success:
            return await read_bounded(response, path, self._max_bytes)
        if code == 429:
            raise _Transient("rate_limited", f"OpenRouter rate-limited /{path} (HTTP 429)",
                             _retry_after(response))
        if code >= 500:
            raise _Transient("http", f"OpenRouter answered HTTP {code} for /{path}")
        if code in (401, 403):
            raise Refused(code, f"OpenRouter refused /{path} (HTTP {code}): "
                                "check OPENROUTER_API_KEY")
        raise SourceFault("not_found" if code == 404 else "http",
                          f"OpenRouter answered HTTP {code} for /{path}")

    def _delay(self, attempt: int) -> float:
        return self._backoff * 2.0 ** (attempt - 1) * random.uniform(0.8, 1.2)


class Refused(SourceFault):
    """OpenRouter answered 401 or 403: it wants a key (another one)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__("http", message)
        self.code = code


class _Transient(SourceFault):
    """A fault worth another try, optionally after the wait the server asked for."""

    def __init__(self, kind: FaultKind, message: str, retry_after: float | None = None) -> None:
        super().__init__(kind, message)
        self.retry_after = retry_after


def _left(deadline: asyncio.Timeout) -> float:
    when = deadline.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()


MAX_DETAILS = 300  # characters of a `links.details` worth reading
SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~:-]{0,199}")


def endpoints_path(base: httpx.URL, details: str | None, slug: str) -> str | None:
    """The endpoints' path relative to the base URL (`models/anthropic/claude-…/endpoints`):
    `details` (the catalog's `links.details`, outside text) where it resolves to a path under
    the base URL on its own scheme, host and port; else the one built from the permaslug;
    None if neither is a plain path of `models/<author>/<slug>/endpoints` shape."""
    prefix = base.path.rstrip("/") + "/"
    if isinstance(details, str) and 0 < len(details) <= MAX_DETAILS:
        try:
            target = base.join(details)
        except (httpx.InvalidURL, ValueError):
            target = None
        if target is not None and _origin(target) == _origin(base) and not target.query \
                and not target.fragment and target.path.startswith(prefix) \
                and _endpoints_shape(found := target.path.removeprefix(prefix)):
            return found
    built = f"models/{slug}/endpoints"
    return built if _endpoints_shape(built) else None


def _endpoints_shape(path: str) -> bool:
    parts = path.split("/")
    return (len(parts) in (4, 5) and parts[0] == "models" and parts[-1] == "endpoints"
            and all(SEGMENT.fullmatch(part) for part in parts[1:-1]))


def redirect_target(base: httpx.URL, current: httpx.URL, location: str, path: str) -> httpx.URL:
    """Where a redirect leads, if that is on the base URL's scheme, host and port; anywhere
    else (another host, another port, https to http, a cloud metadata address) is refused by
    its URL alone, without connecting."""
    try:
        target = current.join(location)
    except httpx.InvalidURL:
        raise SourceFault("http", f"OpenRouter redirected /{path} to an invalid URL") from None
    if _origin(target) != _origin(base):
        scheme, host, port = _origin(target)
        raise SourceFault("http", f"refused OpenRouter's redirect of /{path} to another host "
                                  f"({scheme}://{host[:100]}:{port})")
    return target


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme)


async def read_bounded(response: httpx.Response, path: str, limit: int) -> bytes:
    """The body of a streamed response, cut off as a fault once it passes `limit` bytes on the
    wire or decompressed. A declared Content-Length over the limit is refused unread."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise SourceFault("too_large", f"OpenRouter's answer for /{path} is {int(declared):,} "
                                       f"bytes, over {_limit(limit)}, and was not read")
    encoding = response.headers.get("Content-Encoding", "").strip().lower() or "identity"
    if encoding not in ("identity", *WBITS):
        raise SourceFault("http", f"OpenRouter answered /{path} in an encoding it was not "
                                  f"asked for ({encoding[:20]!r})")
    body = BoundedBody(limit, WBITS.get(encoding))
    try:
        async for chunk in response.aiter_raw():
            body.feed(chunk)
        return body.value()
    except TooLarge as cut:
        raise SourceFault("too_large", f"OpenRouter's answer for /{path} {cut}") from None
    except zlib.error as exc:
        raise SourceFault("unparsable", f"OpenRouter's {encoding} answer for /{path} does not "
                                        "decompress") from exc


class BoundedBody:
    """A body received chunk by chunk, never holding more than `limit` bytes: counted on the
    wire and, when `wbits` says it is compressed, inflated at most one step past what fits."""

    def __init__(self, limit: int, wbits: int | None = None) -> None:
        self._limit = limit
        self._received = 0
        self._zlib = None if wbits is None else zlib.decompressobj(wbits)
        self._out = io.BytesIO()  # its getvalue() hands the buffer over without a copy

    def feed(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self._limit:
            raise TooLarge(f"ran past {_limit(self._limit)} and was cut off")
        if self._zlib is None:
            self._write(chunk)
            return
        while chunk:  # max_length leaves the rest of the input in unconsumed_tail
            room = self._limit - self._out.tell()
            self._write(self._zlib.decompress(chunk, min(INFLATE_STEP, room + 1)))
            chunk = self._zlib.unconsumed_tail

    def value(self) -> bytes:
        if self._zlib is not None:
            self._write(self._zlib.flush())
            if not self._zlib.eof:
                raise zlib.error("the compressed stream ends early")
        return self._out.getvalue()

    def _write(self, data: bytes) -> None:
        if self._out.tell() + len(data) > self._limit:
            raise TooLarge(f"expands past {_limit(self._limit)} once decompressed and was "
                           "cut off")
        self._out.write(data)


class TooLarge(Exception):
    """A body passed its limit; the message says how."""


def _limit(limit: int) -> str:
    return f"the {limit / MB:g} MB limit (RANKBOT_MAX_RESPONSE_MB)"


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
