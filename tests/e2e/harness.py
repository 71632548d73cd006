"""`rankbot` as a real subprocess, with OpenRouter, the Slack Web API and Discord REST played by
loopback fakes whose addresses are in its environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rankbot.bot.channels import ChannelRef
from rankbot.storage import UnitOfWork
from tests.conftest import FIXTURES, RANKINGS_CSV
from tests.fakes.discord_api import FakeDiscordAPI
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack_api import FakeSlackAPI

ROOT = Path(__file__).parents[2]
SIGNING_SECRET = "e2e-signing-secret-0123456789abcdef"
SLACK_TOKEN = "xoxb-e2e-secret-slack-token"
DISCORD_TOKEN = "OTk5.e2e-secret.discord-token"
OPENROUTER_KEY = "sk-or-e2e-secret-key"
SECRETS = (SIGNING_SECRET, SLACK_TOKEN, DISCORD_TOKEN, OPENROUTER_KEY)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Rankbot:
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    runs: list[subprocess.Popen[str]] = field(default_factory=list)

    @classmethod
    def against(cls, workdir: Path, openrouter: str, slack: str, discord: str) -> Rankbot:
        port = free_port()
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith(("RANKBOT_", "OPENROUTER_", "SLACK_", "DISCORD_"))},
               "OPENROUTER_BASE_URL": openrouter,
               "OPENROUTER_API_KEY": OPENROUTER_KEY, "RANKBOT_FETCH_TIMEOUT": "2",
               # The fake serves no provider endpoints (tests/test_providers.py covers them).
               "RANKBOT_PROVIDERS_MAX": "0",
               "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "RANKBOT_HTTP_PORT": str(port), "SLACK_API_URL": slack,
               "RANKBOT_ADMINS": "UADMIN", "DISCORD_BOT_TOKEN": DISCORD_TOKEN,
               "DISCORD_API_URL": discord, "RANKBOT_LOG_LEVEL": "INFO",
               # A closed loopback port: the gateway (Discord's commands) stays down, and
               # nothing reaches for the internet.
               "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{free_port()}/"}
        return cls(workdir, env)

    @property
    def slack_url(self) -> str:
        return f"http://127.0.0.1:{self.env['RANKBOT_HTTP_PORT']}/slack/events"

    @property
    def log(self) -> str:
        path = self.workdir / "rankbot.log"
        return path.read_text() if path.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rankbot.shell.cli", *args], cwd=self.workdir,
                              env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)

    def cli_async(self, *args: str) -> subprocess.Popen[str]:
        """A `rankbot` command running beside `rankbot run` (a cron poll, say)."""
        process = subprocess.Popen([sys.executable, "-m", "rankbot.shell.cli", *args],
                                   cwd=self.workdir, env=self.env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.runs.append(process)
        return process

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rankbot.shell.cli", "run"], cwd=self.workdir, env=self.env,
            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.runs.append(self.process)

    def wait_for(self, text: str, timeout: float = 30, times: int = 1) -> None:
        """Until the log says `text` (`times` times in all: a restart says it again)."""
        deadline = time.monotonic() + timeout
        while self.log.count(text) < times:
            assert self.process is None or self.process.poll() is None, self.stop()
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log after {timeout} s:\n{self.log}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL `rankbot run`, then reap it, as a service manager would."""
        assert self.process is not None
        self.process.kill()
        self.process.communicate(timeout=30)
        self.process = None

    def stop(self) -> str:
        """Stop `rankbot run` as Ctrl-C would; its stderr."""
        assert self.process is not None
        self.process.send_signal(2)
        _, stderr = self.process.communicate(timeout=30)
        self.process = None
        return stderr

    def close(self) -> None:
        for process in self.runs:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)


@dataclass
class World:
    """A `rankbot` and the fakes it talks to."""

    bot: Rankbot
    openrouter: FakeOpenRouter
    slack: FakeSlackAPI
    discord: FakeDiscordAPI


def digest_due_in(bot: Rankbot, slack_channels: int, discord_channels: int) -> None:
    """The real catalog and rankings, and this many channels on each platform subscribed to
    the digest long ago: this week's digest is due for all of them as soon as rankbot runs."""
    imported = bot.cli("import", str(FIXTURES / "models" / "2026-08-22T183539Z.json.gz"),
                       str(RANKINGS_CSV))
    assert imported.returncode == 0, imported.stderr
    store = UnitOfWork.open(bot.workdir / "rankbot.db")
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(slack_channels):
        with store:
            store.channels.subscribe(ChannelRef("slack", "T1", slack_channel(i)), "digest",
                                     long_ago)
    for i in range(discord_channels):
        with store:
            store.channels.subscribe(ChannelRef("discord", "G1", discord_channel(i)), "digest",
                                     long_ago)
    store.close()


def slack_channel(i: int) -> str:
    return f"C{i:04}"


def discord_channel(i: int) -> str:
    return str(10_000 + i)


@contextmanager
def world(workdir: Path) -> Iterator[World]:
    with FakeOpenRouter().running() as openrouter, FakeSlackAPI().running() as slack, \
            FakeDiscordAPI().running() as discord:
        bot = Rankbot.against(workdir, openrouter.base_url, slack.base_url, discord.base_url)
        try:
            yield World(bot, openrouter, slack, discord)
        finally:
            bot.close()
