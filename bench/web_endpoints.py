"""Time /healthz and the feeds as `rankbot run` serves them, on the real catalog history.

    python bench/web_endpoints.py [--requests 200] [--limit N]

The 290 real catalog snapshots of ../shared/data/openrouter/history/ are polled in order into a
fresh SQLite file (WAL), which keeps each poll's changes for the feeds; then the composition
root's own HTTP site (bot/bootstrap.serve_web, threads for the database) serves them on a
loopback port. Prints the feeds' share of the database, a /healthz verdict taken afresh (facts,
quick_check included, on a reader thread), round trips of /healthz, /feed.atom and /feed.json
(100 entries) one at a time, and how many verdicts 100 concurrent /healthz requests cost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from bench.replay_history import ARCHIVE, snapshots  # noqa: E402
from rankbot.adapters.web import FRESH  # noqa: E402
from rankbot.bot.config import load_settings  # noqa: E402
from rankbot.bot.polling import poll  # noqa: E402
from rankbot.bot.rules import DEFAULT_RULES  # noqa: E402
from rankbot.shell import bootstrap  # noqa: E402
from rankbot.storage import UnitOfWork  # noqa: E402

FLOOD = 100  # concurrent probes, within the listen backlog (128)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def replay(db: Path, limit: int | None) -> int:
    store = UnitOfWork.open(db)
    found = 0
    for at, body in list(snapshots(ARCHIVE))[:limit]:
        async def fetch(body: bytes = body) -> bytes:
            return body
        outcome, = await poll(store, at, DEFAULT_RULES, catalog=fetch)
        found += len(outcome.changes)
    store.close()
    return found


def feed_bytes(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        feed = conn.execute("SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%feed_entries%'"
                            ).fetchone()[0]
        whole = conn.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0]
    finally:
        conn.close()
    return int(feed), int(whole)


async def timed(requests: int, ask: Callable[[], Awaitable[object]]) -> list[float]:
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        await ask()
        samples.append(time.perf_counter() - start)
    return sorted(samples[5:])  # the first few warm up


def line(name: str, samples: list[float]) -> str:
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return f"{name}: p50 {statistics.median(samples) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def serve_and_measure(db: Path, requests: int) -> None:
    port = free_port()
    bootstrap.HTTP_HOST = "127.0.0.1"  # loopback only
    settings = load_settings({"RANKBOT_DB": str(db), "RANKBOT_HTTP_PORT": str(port),
                              "OPENROUTER_BASE_URL": "http://127.0.0.1:9", "RANKBOT_LOG_FILE": ""})
    async with bootstrap.open_app(settings, threaded=True) as app, \
            contextlib.AsyncExitStack() as stack, \
            httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as client:
        await bootstrap.serve_web(app, stack, None)
        base = f"http://127.0.0.1:{port}"
        print(line("/healthz verdict taken afresh (facts and quick_check, reader thread)",
                   await timed(requests, app.health)))
        for path in ("/healthz", "/feed.atom", "/feed.json", "/feed.json?kinds=model_added"):
            async def get(path: str = path) -> object:
                reply = await client.get(base + path)
                assert reply.status_code == 200, reply.text
                return reply
            print(line(f"GET {path} (loopback, one at a time)", await timed(requests, get)))
        verdicts: list[object] = []
        gather = bootstrap.health_facts

        def counted(*args: Any) -> Any:
            verdicts.append(args)
            return gather(*args)

        bootstrap.health_facts = counted  # type: ignore[assignment]
        await asyncio.sleep(FRESH + 0.1)  # the verdict the requests above share has gone stale
        start = time.perf_counter()
        flood = await asyncio.gather(*(client.get(base + "/healthz") for _ in range(FLOOD)))
        took = time.perf_counter() - start
        assert all(r.status_code == 200 for r in flood)
        print(f"{FLOOD} concurrent GET /healthz: {took * 1000:.0f} ms in all, "
              f"{len(verdicts)} verdict(s) taken")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--limit", type=int, default=None, help="replay only the first N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "web.db"
        started = time.perf_counter()
        found = asyncio.run(replay(db, args.limit))
        feed, whole = feed_bytes(db)
        print(f"replayed in {time.perf_counter() - started:.0f} s: {found} changes kept for the "
              f"feeds, {feed / 1e6:.2f} MB of {whole / 1e6:.1f} MB")
        asyncio.run(serve_and_measure(db, args.requests))


if __name__ == "__main__":
    main()
