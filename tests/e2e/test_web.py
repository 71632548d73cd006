"""`rankbot run` with no chat tokens at all, as the README's first command starts it: it serves
/healthz and the feeds on RANKBOT_HTTP_PORT (loopback here), and a port that is taken is one
warning while everything else goes on."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import World, world

HOSTILE = '<script>alert(1)</script> & "x"'


def hostile_catalog() -> bytes:
    payload = json.loads(catalog_bytes("2026-08-22T183539Z"))
    payload["data"].append({**payload["data"][0], "id": "evil/model",
                            "canonical_slug": "evil/model", "name": HOSTILE})
    return json.dumps(payload).encode()


@pytest.fixture
def tokenless(tmp_path: Path) -> Iterator[World]:
    """The fakes up, and a `rankbot` without a single token or secret in its environment."""
    with world(tmp_path) as fakes:
        fakes.bot.env = {k: v for k, v in fakes.bot.env.items()
                         if not k.startswith(("SLACK_", "DISCORD_", "OPENROUTER_API_KEY"))}
        yield fakes


def url(fakes: World, path: str) -> str:
    return f"http://127.0.0.1:{fakes.bot.env['RANKBOT_HTTP_PORT']}{path}"


def wait_for_items(fakes: World, kinds: str, timeout: float = 30) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        items: list[dict[str, object]] = httpx.get(url(fakes, f"/feed.json?kinds={kinds}"),
                                                   timeout=10).json()["items"]
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_run_without_tokens_serves_healthz_and_the_feeds(tokenless: World) -> None:
    fakes, bot = tokenless, tokenless.bot
    fakes.openrouter.serve("models", catalog_bytes("2026-08-22T124646Z"))
    serve_export(fakes.openrouter, rankings_csv())
    assert bot.cli("poll").returncode == 0  # the baseline: nothing for the feeds
    fakes.openrouter.serve("models", hostile_catalog())
    assert bot.cli("poll").returncode == 0  # four changes, one of them the hostile model
    bot.start()
    bot.wait_for("serving /healthz, /feed.atom, /feed.json on port")

    health = httpx.get(url(fakes, "/healthz"), timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "healthy" and health.json()["exit_code"] == 0

    changes = httpx.get(url(fakes, "/feed.json?kinds=model_added,price_changed"), timeout=10)
    items = changes.json()["items"]
    assert [i["tags"][0] for i in items] == ["model_added", *["price_changed"] * 3]
    assert items[0]["title"].startswith(f"＋ evil/model ({HOSTILE}): ")
    assert items[0]["url"] == "https://openrouter.ai/evil/model"
    assert b"<script>" not in changes.content
    atom = httpx.get(url(fakes, "/feed.atom"), timeout=10)
    assert atom.status_code == 200 and atom.text.count("<entry>") >= 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; \"x\"" in atom.text
    digest, = wait_for_items(fakes, "weekly_digest")  # `run` keeps this week's at start
    assert str(digest["content_text"]).endswith("· CC BY 4.0")
    assert httpx.get(url(fakes, "/feed.json?kinds=nope"), timeout=10).status_code == 400

    stderr = bot.stop()
    assert "Traceback" not in stderr and stderr.rstrip().endswith("rankbot stopped.")
    assert "Slack" not in bot.log and "Discord" not in bot.log


def test_a_taken_port_is_one_warning_and_rankbot_keeps_polling(tokenless: World) -> None:
    fakes, bot = tokenless, tokenless.bot
    fakes.openrouter.serve("models", catalog_bytes("2026-08-22T124646Z"))
    serve_export(fakes.openrouter, rankings_csv())
    with socket.socket() as taken:  # another program holds the port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot.env["RANKBOT_HTTP_PORT"] = str(port)
        bot.start()
        bot.wait_for("catalog baseline stored")
        bot.wait_for("rankings baseline stored")
        bot.wait_for("rankbot is running")
        assert fakes.openrouter.hits("models") == 1
        assert bot.cli("status", "--check").stdout.startswith("healthy")
        stderr = bot.stop()
    warnings = [line for line in stderr.splitlines() if "WARNING" in line]
    assert warnings == [line for line in warnings if "cannot serve HTTP" in line]
    assert len(warnings) == 1 and warnings[0].endswith(
        f"cannot serve HTTP on port {port} (Address already in use): /healthz, /feed.atom, "
        "/feed.json are off; set RANKBOT_HTTP_PORT to a free port")
    assert "Traceback" not in stderr and stderr.rstrip().endswith("rankbot stopped.")
