"""What the container runs, run outside one (no Docker engine needed): the Dockerfile's own
ENTRYPOINT + CMD, ENV, WORKDIR and HEALTHCHECK, read from it, against loopback OpenRouter; only
/data is moved into a temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rankbot.bot.channels import CONSOLE
from rankbot.storage import UnitOfWork
from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.dockerfile import Dockerfile, load
from tests.fakes.openrouter import FakeOpenRouter


class Container:
    """The image's process: its environment, its working directory, its output (one stream,
    as `docker logs` shows it)."""

    def __init__(self, docker: Dockerfile, data: Path, openrouter: str) -> None:
        volume = docker.volumes[-1]
        image_env = {k: v.replace(volume, str(data)) for k, v in docker.env.items()}
        outside = {k: v for k, v in os.environ.items()
                   if not k.startswith(("RANKBOT_", "OPENROUTER_", "SLACK_", "DISCORD_"))}
        # `rankbot` is found on PATH, as in the image: here, beside this Python.
        path = f"{Path(sys.executable).parent}{os.pathsep}{outside.get('PATH', '')}"
        self.env = {**outside, **image_env, "PATH": path,
                    # what an operator's .env would add: where OpenRouter is, and no waiting
                    "OPENROUTER_BASE_URL": openrouter, "RANKBOT_FETCH_TIMEOUT": "5"}
        self.cwd = Path(docker.last("WORKDIR").replace(volume, str(data)))
        self.docker = docker
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.docker.command, cwd=self.cwd, env=self.env,
                                        text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.output):
            assert self.process is not None and self.process.poll() is None, self.output
            assert time.monotonic() < deadline, f"{text!r} not seen:\n{''.join(self.output)}"
            time.sleep(0.1)

    def health(self) -> tuple[int, str, float]:
        """The HEALTHCHECK, as Docker runs it: exit code, output, seconds taken."""
        options, command = self.docker.healthcheck
        started = time.monotonic()
        result = subprocess.run(command, cwd=self.cwd, env=self.env, capture_output=True,
                                text=True, check=False, timeout=seconds(options["timeout"]))
        return result.returncode, result.stdout + result.stderr, time.monotonic() - started

    def stop(self) -> int:
        """`docker stop`: SIGTERM, then the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def seconds(duration: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(duration[:-1]) * units[duration[-1]]


@pytest.fixture
def container(tmp_path: Path) -> Iterator[tuple[Container, FakeOpenRouter]]:
    data = tmp_path / "data"
    data.mkdir()
    with FakeOpenRouter().running() as openrouter:
        box = Container(load(), data, openrouter.base_url)
        yield box, openrouter
        if box.process is not None and box.process.poll() is None:
            box.process.kill()
            box.process.wait(timeout=30)


def test_the_images_command_serves_and_its_health_check_tells_down_healthy_degraded(
        container: tuple[Container, FakeOpenRouter]) -> None:
    box, openrouter = container
    db = Path(box.env["RANKBOT_DB"])
    limit = seconds(box.docker.healthcheck[0]["timeout"])

    code, line, _ = box.health()  # a new volume: down, and the probe creates nothing
    assert (code, line) == (2, "down: never fetched, run `rankbot poll`\n")
    assert list(db.parent.iterdir()) == []

    openrouter.serve("models", catalog_bytes("2026-07-14T025033Z"))
    serve_export(openrouter, rankings_csv("2026-09-30", "2026-10-01"))
    box.start()
    box.wait_for("catalog baseline stored")
    box.wait_for("rankings baseline stored")
    code, line, took = box.health()
    assert code == 0 and line.startswith("healthy: catalog fetched 0 min ago; rankings"), line
    assert took < limit

    store = UnitOfWork.open(db)  # a channel gone while it runs
    try:
        console = store.channels.subscription(CONSOLE)
        assert console is not None
        with store:
            store.channels.pause(console, "channel_not_found", datetime.now(UTC))
    finally:
        store.close()
    code, line, took = box.health()
    assert (code, line) == (1, "degraded: 1 channel paused\n") and took < limit

    assert box.stop() == 0
    assert any("rankbot stopped." in line for line in box.output)
    # Logs went to the container's output only: no log file on the volume.
    assert sorted(p.name for p in db.parent.iterdir() if not p.name.startswith(
        "rankbot.db")) == []

    for stale in db.parent.glob("rankbot.db*"):
        stale.unlink()
    db.write_bytes(b"not a database " * 100)
    code, line, _ = box.health()
    assert code == 2 and line.startswith(f"rankbot: {db} is not a SQLite database")
    assert line.count("\n") == 1
