"""The OpenRouter adapter against a loopback server: retries, Retry-After, fallbacks, headers.
Retries happen within one deadline per fetch; see test_fetch_bounds.py for the deadline, size
and redirect bounds against misbehaving servers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
import pytest

from rankbot.adapters.openrouter import OpenRouterClient, open_http
from rankbot.bot.faults import SourceFault
from tests.conftest import EXPORTS, MANIFEST, Sleeps, catalog_bytes, rankings_csv
from tests.fakes.openrouter import FakeOpenRouter, Reply

pytestmark = pytest.mark.anyio
CATALOG = catalog_bytes("2026-07-13T144438Z")


@asynccontextmanager
async def client_with(fake: FakeOpenRouter, sleeps: Sleeps, **options: Any
                      ) -> AsyncIterator[OpenRouterClient]:
    """Like the `client` fixture, with other options (a shorter fetch deadline)."""
    async with open_http(fake.base_url, httpx.Timeout(0.5, connect=1.0)) as http:
        yield OpenRouterClient(http, api_key="sk-or-test-key", sleep=sleeps, **options)


async def test_catalog_is_fetched_raw_with_a_descriptive_user_agent(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", CATALOG)
    assert await client.fetch_catalog() == CATALOG
    agent = fake_openrouter.requests[0].headers["User-Agent"]
    assert agent.startswith("rankbot/0.1.0 (")
    assert "Authorization" not in fake_openrouter.requests[0].headers  # the catalog is keyless


async def test_5xx_is_retried_with_growing_backoff_then_succeeds(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> None:
    fake_openrouter.serve("models", Reply(502), Reply(503), CATALOG)
    assert await client.fetch_catalog() == CATALOG
    assert fake_openrouter.hits("models") == 3
    first, second = sleeps.waits
    assert 1.6 <= first <= 2.4 and 3.2 <= second <= 4.8  # 2s then 4s, ±20% jitter


async def test_retries_are_bounded_and_end_in_one_typed_fault(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(500))
    with pytest.raises(SourceFault) as caught:
        await client.fetch_catalog()
    assert fake_openrouter.hits("models") == 3
    assert caught.value.kind == "http"
    assert str(caught.value) == "OpenRouter answered HTTP 500 for /models (after 3 tries)"


async def test_429_waits_for_retry_after(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> None:
    fake_openrouter.serve("models", Reply(429, headers={"Retry-After": "7"}), CATALOG)
    assert await client.fetch_catalog() == CATALOG
    assert sleeps.waits == [7.0]


async def test_429_asking_for_too_long_a_wait_gives_up_at_once(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> None:
    fake_openrouter.serve("models", Reply(429, headers={"Retry-After": "3600"}))
    with pytest.raises(SourceFault) as caught:
        await client.fetch_catalog()
    assert (caught.value.kind, sleeps.waits, fake_openrouter.hits("models")) == (
        "rate_limited", [], 1)
    assert str(caught.value) == "OpenRouter rate-limited /models (HTTP 429) (after 1 try)"


async def test_a_retry_after_longer_than_what_is_left_of_the_deadline_gives_up_at_once(
        fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> None:
    fake_openrouter.serve("models", Reply(429, headers={"Retry-After": "7"}), CATALOG)
    async with client_with(fake_openrouter, sleeps, fetch_timeout=5) as client:
        with pytest.raises(SourceFault) as caught:
            await client.fetch_catalog()
    assert (caught.value.kind, sleeps.waits, fake_openrouter.hits("models")) == (
        "rate_limited", [], 1)


async def test_a_backoff_longer_than_what_is_left_of_the_deadline_gives_up_at_once(
        fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> None:
    # Backoff is 2 s then 4 s (±20%): with 3 s in all, the second wait does not fit.
    fake_openrouter.serve("models", Reply(502), Reply(503), CATALOG)
    async with client_with(fake_openrouter, sleeps, fetch_timeout=3) as client:
        with pytest.raises(SourceFault) as caught:
            await client.fetch_catalog()
    assert fake_openrouter.hits("models") == 2
    assert len(sleeps.waits) == 1 and 1.6 <= sleeps.waits[0] <= 2.4
    assert str(caught.value) == "OpenRouter answered HTTP 503 for /models (after 2 tries)"


async def test_other_4xx_fail_at_once(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(404))
    with pytest.raises(SourceFault, match=r"HTTP 404 for /models$"):
        await client.fetch_catalog()
    assert fake_openrouter.hits("models") == 1


async def test_a_slow_server_is_a_timeout_fault(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(body=CATALOG, delay=1.0))  # client reads for 0.5 s
    with pytest.raises(SourceFault) as caught:
        await client.fetch_catalog()
    assert caught.value.kind == "timeout"
    assert fake_openrouter.hits("models") == 3


async def test_rankings_follow_the_manifest_to_the_dated_csv(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    # The real manifest names https://openrouter.ai/...; we fetch the same file under our base.
    fake_openrouter.serve(f"{EXPORTS}/latest.manifest.json", MANIFEST.read_bytes())
    fake_openrouter.serve(f"{EXPORTS}/2026-10-08.csv", rankings_csv())
    raw = await client.fetch_rankings()
    assert (raw.body, raw.origin) == (rankings_csv(), "export")
    assert raw.expected_sha256 == (
        "a568e932f96c7508efe40bae7f74b9d16cf31e088196b1da9ebbd9aaa23dc735")


@pytest.mark.parametrize("manifest", [Reply(500), Reply(body=b"<html>oops</html>")])
async def test_rankings_fall_back_to_latest_csv_without_a_usable_manifest(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter, manifest: Reply) -> None:
    fake_openrouter.serve(f"{EXPORTS}/latest.manifest.json", manifest)
    fake_openrouter.serve(f"{EXPORTS}/latest.csv", rankings_csv())
    raw = await client.fetch_rankings()
    assert (raw.body, raw.expected_sha256, raw.origin) == (rankings_csv(), None, "latest")


async def test_rankings_fall_back_when_the_dated_csv_is_missing(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve(f"{EXPORTS}/latest.manifest.json", MANIFEST.read_bytes())
    fake_openrouter.serve(f"{EXPORTS}/latest.csv", rankings_csv())
    assert (await client.fetch_rankings()).origin == "latest"
    assert fake_openrouter.hits(f"{EXPORTS}/2026-10-08.csv") == 1  # a 404 is not retried


async def test_keyed_rankings_send_the_key_and_the_window(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("datasets/rankings-daily", b'{"data":[]}')
    await client.fetch_keyed_rankings(date(2026, 9, 1), date(2026, 9, 30))
    request = fake_openrouter.requests[0]
    assert request.headers["Authorization"] == "Bearer sk-or-test-key"
    assert request.query == {"start_date": ["2026-09-01"], "end_date": ["2026-09-30"],
                             "period": ["day"]}


async def test_a_refused_key_is_named_but_never_shown(
        client: OpenRouterClient, fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("datasets/rankings-daily", Reply(401))
    with pytest.raises(SourceFault) as caught:
        await client.fetch_keyed_rankings(date(2026, 9, 1), date(2026, 9, 30))
    assert "OPENROUTER_API_KEY" in str(caught.value)
    assert "sk-or-test-key" not in str(caught.value)


def test_the_manifest_hash_is_the_one_the_tests_rely_on() -> None:
    # Guards the fixture: the real manifest's hash is of the full export, not of our excerpt.
    assert hashlib.sha256(rankings_csv()).hexdigest() not in MANIFEST.read_text()
