"""What `rankbot run` serves over HTTP besides Slack, in process on a loopback port: /healthz
says what `rankbot status --check` says (200 healthy or degraded, 503 down), read off the event
loop; the feeds answer with their types, a 400 for an unknown kind, a 304 for what a reader has;
a port that is taken is one warning."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rankbot.adapters.web import Reused
from rankbot.bot.channels import ChannelRef
from rankbot.bot.config import Settings, load_settings
from rankbot.bot.history import import_snapshot
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.shell import bootstrap
from rankbot.shell.bootstrap import App, open_app, serve_web
from rankbot.storage import UnitOfWork
from tests.conftest import RANKINGS_CSV, catalog_bytes
from tests.fakes.openrouter import FakeOpenRouter

pytestmark = pytest.mark.anyio
Prepare = Callable[[UnitOfWork, datetime], None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_for(tmp_path: Path, openrouter: FakeOpenRouter, port: int) -> Settings:
    return load_settings({"RANKBOT_DB": str(tmp_path / "rankbot.db"), "RANKBOT_HTTP_PORT":
                          str(port), "OPENROUTER_BASE_URL": openrouter.base_url})


def fetched(ago: timedelta) -> Prepare:
    def prepare(store: UnitOfWork, now: datetime) -> None:
        import_snapshot(store, "models.json", catalog_bytes("2026-08-22T183539Z"), now - ago,
                        DEFAULT_RULES)
        import_snapshot(store, RANKINGS_CSV.name, RANKINGS_CSV.read_bytes(), now - ago,
                        DEFAULT_RULES)
    return prepare


def never(store: UnitOfWork, now: datetime) -> None:
    pass


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, openrouter: FakeOpenRouter, prepare: Prepare
                  ) -> AsyncIterator[tuple[App, str]]:
    prepared = UnitOfWork.open(tmp_path / "rankbot.db")
    prepare(prepared, datetime.now(UTC))
    prepared.close()
    port = free_port()
    async with open_app(settings_for(tmp_path, openrouter, port), threaded=True) as app, \
            contextlib.AsyncExitStack() as stack:
        await serve_web(app, stack, None)
        yield app, f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "HTTP_HOST", "127.0.0.1")


@pytest.mark.parametrize(("prepare", "status", "body"), [
    (fetched(timedelta(minutes=1)), 200, {"status": "healthy", "exit_code": 0, "reasons": [
        "catalog fetched 1 min ago", "rankings fetched 1 min ago"]}),
    (fetched(timedelta(hours=3)), 200, {"status": "degraded", "exit_code": 1, "reasons": [
        "catalog last fetched 3 h ago (every 60 min)"]}),
    (never, 503, {"status": "down", "exit_code": 2,
                  "reasons": ["never fetched, run `rankbot poll`"]}),
], ids=["healthy", "degraded", "down"])
async def test_healthz_answers_the_verdict_of_status_check(
        tmp_path: Path, fake_openrouter: FakeOpenRouter, monkeypatch: pytest.MonkeyPatch,
        prepare: Prepare, status: int, body: dict[str, object]) -> None:
    threads: list[str] = []
    gather = bootstrap.health_facts

    def recorded(*args: object) -> object:
        threads.append(threading.current_thread().name)
        return gather(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(bootstrap, "health_facts", recorded)
    async with serving(tmp_path, fake_openrouter, prepare) as (_, url), \
            httpx.AsyncClient() as client:
        reply = await client.get(f"{url}/healthz")
        again = await client.get(f"{url}/healthz")
    assert reply.status_code == status and reply.json() == body
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["cache-control"] == "no-store"
    assert again.json() == body and len(threads) == 1  # a verdict is reused for a few seconds
    assert threads[0].startswith("rankbot-read")  # read off the event loop


async def test_the_feeds_over_http(tmp_path: Path, fake_openrouter: FakeOpenRouter) -> None:
    async with serving(tmp_path, fake_openrouter, fetched(timedelta(minutes=1))) as (app, url), \
            httpx.AsyncClient() as client:
        digest = await app.database.write(lambda: bootstrap.keep_digest(
            app.database.store, datetime(2026, 10, 8, 12, tzinfo=UTC)))
        assert digest
        atom = await client.get(f"{url}/feed.atom")
        feed = await client.get(f"{url}/feed.json?kinds=weekly_digest")
        empty = await client.get(f"{url}/feed.json?kinds=went_free")
        wrong = await client.get(f"{url}/feed.json?kinds=went_free,price_change")
        cached = await client.get(f"{url}/feed.atom", headers={"If-None-Match": atom.headers[
            "etag"]})
        head = await client.head(f"{url}/feed.json")
        posted = await client.post(f"{url}/feed.json")
    assert atom.status_code == 200
    assert atom.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert atom.text.count("<entry>") == 1 and "OpenRouter weekly: " in atom.text
    assert f'href="{url}/feed.atom" rel="self"' in atom.text
    assert feed.headers["content-type"] == "application/feed+json; charset=utf-8"
    item, = feed.json()["items"]
    assert item["tags"] == ["weekly_digest"] and item["url"] == "https://openrouter.ai/rankings"
    assert feed.json()["feed_url"] == f"{url}/feed.json?kinds=weekly_digest"
    assert empty.status_code == 200 and empty.json()["items"] == []
    assert wrong.status_code == 400
    assert wrong.text.startswith("unknown kind price_change; known: alias_moved, ")
    assert cached.status_code == 304 and cached.content == b""
    assert head.status_code == 200 and head.content == b""
    assert posted.status_code == 405


async def test_a_taken_port_is_one_warning_and_nothing_else(
        tmp_path: Path, fake_openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
        ) -> None:
    caplog.set_level(logging.INFO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with open_app(settings_for(tmp_path, fake_openrouter, port)) as app, \
                contextlib.AsyncExitStack() as stack:
            await serve_web(app, stack, None)
            assert app.database.store.feed.feed_entries(frozenset(), 1) == []  # still serving
    said = [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "rankbot.shell.bootstrap"]
    assert said == [("WARNING", f"cannot serve HTTP on port {port} (Address already in use): "
                     "/healthz, /feed.atom, /feed.json are off; set RANKBOT_HTTP_PORT to a free "
                     "port")]
    assert not logging.getLogger("aiohttp.server").filters  # nothing left behind


async def test_health_json_never_names_a_channel_or_a_secret(
        tmp_path: Path, fake_openrouter: FakeOpenRouter) -> None:
    def paused(store: UnitOfWork, now: datetime) -> None:
        fetched(timedelta(minutes=1))(store, now)
        with store:
            secret = ChannelRef("slack", "T-SECRET-TEAM", "C-SECRET-CHANNEL")
            gone = store.channels.subscribe(secret, "alerts", now)
        with store:
            store.channels.pause(gone, "channel_not_found", now)

    async with serving(tmp_path, fake_openrouter, paused) as (_, url), \
            httpx.AsyncClient() as client:
        reply = await client.get(f"{url}/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "degraded", "exit_code": 1,
                            "reasons": ["1 channel paused"]}
    assert "SECRET" not in reply.text and json.loads(reply.text)["reasons"]


async def test_a_database_that_stops_serving_is_down(
        tmp_path: Path, fake_openrouter: FakeOpenRouter, caplog: pytest.LogCaptureFixture
        ) -> None:
    async with serving(tmp_path, fake_openrouter, fetched(timedelta(minutes=1))) as (_, url), \
            httpx.AsyncClient() as client:
        (tmp_path / "rankbot.db").write_bytes(b"not a database " * 1000)  # under rankbot
        reply = await client.get(f"{url}/healthz")
    assert reply.status_code == 503
    assert reply.json() == {"status": "down", "exit_code": 2, "reasons": [
        "the database cannot serve: `rankbot status` says why"]}
    assert str(tmp_path) not in reply.text
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"/healthz: {tmp_path / 'rankbot.db'} is not a SQLite database (file is not a "
        "database); move it aside or point RANKBOT_DB at another file"]


async def test_one_verdict_serves_the_probes_that_wait_for_it_and_the_next_seconds() -> None:
    taken: list[int] = []
    now = [0.0]
    release = asyncio.Event()

    async def judge() -> int:
        taken.append(1)
        await release.wait()
        return len(taken)

    verdict = Reused(judge, 5.0, clock=lambda: now[0])
    waiting = [asyncio.ensure_future(verdict()) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    now[0] = 4.9
    assert await verdict() == 1  # reused
    now[0] = 5.1
    assert await verdict() == 2 and len(taken) == 2  # stale: taken afresh
