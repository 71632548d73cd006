"""Floods against a running `rankbot run`: refused requests and slow clients cost the log a line,
not megabytes, and never keep Slack's commands from being answered."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import Rankbot, World
from tests.e2e.test_security import slash

SLOW_CLIENTS = 1100
OPEN_FILES = 1024  # a common default soft limit
DEADLINE = 10  # seconds rankbot gives a request's headers (adapters/http_server.py)


# `rankbot run` under a limit on open files (soft, hard) that it sets itself before starting:
# the child's own equivalent of preexec_fn, which is unsafe in this threaded test process.
LIMITED = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, "
           "(int(sys.argv[1]), int(sys.argv[2]))); sys.argv = ['rankbot', 'run']; "
           "runpy.run_module('rankbot.shell.cli', run_name='__main__')")


def start(fakes: World, open_files: tuple[int, int] | None = None) -> Path:
    """`rankbot run` with its stderr in a file (a pipe nobody reads would block it); the file."""
    fakes.openrouter.serve("models", catalog_bytes("2026-08-22T183539Z"))
    serve_export(fakes.openrouter, rankings_csv())
    bot = fakes.bot
    stderr = bot.workdir / "stderr.txt"
    command = (["-c", LIMITED, *map(str, open_files)] if open_files
               else ["-m", "rankbot.shell.cli", "run"])
    with stderr.open("w") as sink:
        bot.process = subprocess.Popen(
            [sys.executable, *command], cwd=bot.workdir, env=bot.env, text=True,
            stdout=subprocess.DEVNULL, stderr=sink)
    bot.runs.append(bot.process)
    bot.wait_for("rankings baseline stored")
    bot.wait_for("Slack HTTP mode: listening")
    return stderr


def log_bytes(bot: Rankbot) -> int:
    return sum(p.stat().st_size for p in bot.workdir.glob("rankbot.log*"))


def test_a_flood_of_unsigned_and_malformed_requests_is_a_line_of_each(running: World) -> None:
    bot = running.bot
    stderr = start(running)
    log_before, stderr_before = log_bytes(bot), stderr.stat().st_size
    body = "command=%2Frank&text=" + "A" * 1_000_000 + "\n2026-01-01 00:00:00,000 ERROR forged"
    with httpx.Client(timeout=10) as http:
        codes = [http.post(bot.slack_url, content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"}).status_code for _ in range(50)]
    assert codes == [401] * 50
    port = int(bot.env["RANKBOT_HTTP_PORT"])
    for _ in range(50):  # and requests aiohttp cannot parse: an 8 KB header line, no colon
        with socket.create_connection(("127.0.0.1", port), timeout=10) as malformed:
            malformed.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n" + b"A" * 8000
                              + b" forged\r\n\r\n")
            assert malformed.recv(100).split(b" ")[1] == b"400"
    assert slash(bot, "/rank", "qwen").status_code == 200
    grown = log_bytes(bot) - log_before, stderr.stat().st_size - stderr_before
    assert grown[0] < 20_000 and grown[1] < 20_000, grown  # 52 MB each before
    for text in (bot.log, stderr.read_text()):
        assert "AAAAAAAAAA" not in text and "forged" not in text
        refused = [line for line in text.splitlines() if "refused" in line]
        assert len(refused) == 2 and all(len(line) < 200 for line in refused), refused


@pytest.fixture
def many_files() -> Iterator[None]:
    """This process opens 1,100 sockets and more: its soft limit raised to its hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SLOW_CLIENTS + 500:
        pytest.skip(f"the hard limit on open files here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def slow_client(port: int) -> socket.socket:
    """A connection that starts a request and sends its headers a byte at a time."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    client.setblocking(False)
    return client


def trickle(clients: list[socket.socket]) -> None:
    for client in clients:
        with contextlib.suppress(OSError):  # closed by rankbot
            client.send(b"x")


def still_open(clients: list[socket.socket]) -> int:
    count = 0
    for client in clients:
        try:
            count += client.recv(1) != b""
        except BlockingIOError:
            count += 1
        except OSError:  # reset
            pass
    return count


@pytest.mark.usefixtures("many_files")
@pytest.mark.parametrize("hard", [None, OPEN_FILES], ids=["hard-limit-as-is", "hard-limit-1024"])
def test_slow_clients_at_1024_open_files_are_cut_off_and_commands_answered(
        running: World, hard: int | None) -> None:
    bot = running.bot
    start(running, (OPEN_FILES, hard or resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    port = int(bot.env["RANKBOT_HTTP_PORT"])
    clients = [slow_client(port) for _ in range(SLOW_CLIENTS)]
    opened = time.monotonic()
    try:
        for _ in range(3):
            trickle(clients)
            started = time.monotonic()
            reply = slash(bot, "/rank", "qwen")
            assert reply.status_code == 200 and time.monotonic() - started < 3
            time.sleep(0.5)
        while still_open(clients) and time.monotonic() < opened + DEADLINE + 5:
            trickle(clients)  # sending slowly buys no time
            time.sleep(0.5)
        assert still_open(clients) == 0
        assert time.monotonic() - opened > DEADLINE - 1  # cut at the deadline, not before
    finally:
        for client in clients:
            client.close()
    assert slash(bot, "/rank", "qwen").status_code == 200
    assert log_bytes(bot) < 1_000_000  # 295 MB in a minute before
    assert "out of system resource" not in bot.log
    assert bot.log.count("connections open, the most kept") <= 1  # said once, if at all
