"""Chat connections heal themselves, end to end: `rankbot run` against a loopback Discord gateway
that speaks Discord's protocol. Commands arrive over the gateway and are answered; a dropped
connection is resumed; an event discord.py cannot parse ends the connection, and the supervisor
starts a new one; a refused token (4004) is one clear error and no retry loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import World, world
from tests.fakes.discord_api import APP_ID, interaction_payload
from tests.fakes.discord_gateway import FakeDiscordGateway

GUILD, CHANNEL = "111", "222"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[World, FakeDiscordGateway]]:
    with world(tmp_path) as fakes, FakeDiscordGateway(APP_ID).running() as gateway:
        fakes.bot.env["DISCORD_GATEWAY_URL"] = gateway.url
        fakes.openrouter.serve("models", catalog_bytes("2026-08-22T183539Z"))
        serve_export(fakes.openrouter, rankings_csv())
        fakes.bot.start()
        fakes.bot.wait_for("rankings baseline stored")
        yield fakes, gateway


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - started


def rank(interaction_id: str, query: str = "qwen") -> dict[str, Any]:
    """A /rank interaction exactly as Discord dispatches it over the gateway."""
    return interaction_payload(
        {"id": "7001", "name": "rank", "type": 1,
         "options": [{"type": 3, "name": "query", "value": query}]},
        interaction_id=interaction_id, token=f"t{interaction_id}", guild=GUILD, channel=CHANNEL)


def answered(fakes: World, interaction_id: str) -> Callable[[], bool]:
    path = rf"/interactions/{interaction_id}/t{interaction_id}/callback"
    return lambda: bool(fakes.discord.bodies("POST", path))


def test_commands_over_the_gateway_survive_drops_bad_events_and_stop_on_a_refused_token(
        running: tuple[World, FakeDiscordGateway]) -> None:
    fakes, gateway = running
    bot = fakes.bot
    wait_until(lambda: '"discord", "connected"' in status_row(bot), "connected")

    gateway.dispatch("INTERACTION_CREATE", rank("8001"))
    assert wait_until(answered(fakes, "8001"), "the first /rank") < 3
    (callback,) = fakes.discord.bodies("POST", r"/interactions/8001/t8001/callback")
    assert callback["type"] == 4 and callback["data"]["embeds"][0]["title"].startswith("Rank")

    gateway.close(4000)  # Discord drops the connection: discord.py resumes the session
    wait_until(lambda: gateway.resumes() == 1, "a RESUME")
    gateway.dispatch("INTERACTION_CREATE", rank("8002"))
    assert wait_until(answered(fakes, "8002"), "/rank after the resume") < 3

    broken = rank("8003")
    del broken["type"]  # an event discord.py cannot parse ends its connection for good
    gateway.dispatch("INTERACTION_CREATE", broken)
    wait_until(lambda: gateway.identifies() == 2, "a new session after the bad event", 60)
    wait_until(lambda: '"discord", "connected"' in status_row(bot), "connected again")
    gateway.dispatch("INTERACTION_CREATE", rank("8004"))
    assert wait_until(answered(fakes, "8004"), "/rank after the restart") < 3
    assert "Discord connection failed (KeyError" in bot.log

    connections = gateway.connections
    gateway.close(4004)  # the token was refused: one clear error, no loop
    wait_until(lambda: "authentication failed" in bot.log, "the refusal in the log")
    time.sleep(5)  # a retry loop would have reconnected by now (its first wait is 1–2 s)
    assert gateway.connections == connections
    refusals = [line for line in bot.log.splitlines() if "ERROR" in line and "4004" in line]
    assert len(refusals) == 1, refusals
    status = bot.cli("status")
    assert "Discord    token refused at" in status.stdout
    assert "2 reconnects in the last day" in status.stdout
    check = bot.cli("status", "--check")
    assert check.returncode == 1 and "discord connection: token refused" in check.stdout


def status_row(bot: Any) -> str:
    """The connection's row in the database, as `rankbot status` reads it."""
    import sqlite3  # noqa: PLC0415 - only this helper reads the file directly

    path = bot.workdir / "rankbot.db"
    if not path.exists():
        return ""
    with sqlite3.connect(path) as conn:
        try:
            rows = conn.execute("SELECT platform, state FROM chat_connections").fetchall()
        except sqlite3.OperationalError:
            return ""
    return repr(rows).replace("'", '"')
