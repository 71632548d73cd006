"""The log file: rotated at its size with a few backups, and none at all when RANKBOT_LOG_FILE is
set but empty."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from rankbot.bot.config import ConfigError, load_settings
from rankbot.shell.cli import cli, configure_logging


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_")):
            monkeypatch.delenv(name)
    yield tmp_path
    configure_logging(load_settings({"RANKBOT_LOG_FILE": ""}), log_to_terminal=False)  # releases


def test_the_log_file_is_rotated_at_its_size_keeping_its_backups(workdir: Path) -> None:
    settings = load_settings({"RANKBOT_LOG_MAX_MB": "0.01", "RANKBOT_LOG_BACKUPS": "2"})
    configure_logging(settings, log_to_terminal=False)
    for i in range(100):  # 100 KB of records, ten times the size allowed
        logging.getLogger("rankbot.test").warning("record %d %s", i, "x" * 1000)
    logs = sorted(p.name for p in workdir.glob("rankbot.log*"))
    assert logs == ["rankbot.log", "rankbot.log.1", "rankbot.log.2"]
    assert all((workdir / name).stat().st_size <= 10_000 + 1_100 for name in logs)
    assert "record 99 " in (workdir / "rankbot.log").read_text()  # the newest is kept


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_an_empty_log_file_setting_means_no_log_file(workdir: Path, where: str) -> None:
    env = {"RANKBOT_LOG_FILE": ""} if where == "environment" else {}
    if where == ".env":
        (workdir / ".env").write_text("RANKBOT_LOG_FILE=\n")
    result = CliRunner().invoke(cli, ["status"], env=env, catch_exceptions=False)
    assert result.exit_code == 0
    assert not list(workdir.glob("rankbot.log*"))
    assert load_settings({"RANKBOT_LOG_FILE": " "}).log_file is None
    assert load_settings({}).log_file == Path("rankbot.log")  # unset: the default


def test_without_a_log_file_tracebacks_go_to_the_terminal(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings({"RANKBOT_LOG_FILE": ""}), log_to_terminal=True)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("rankbot.test").exception("storing failed\nforged line")
    stderr = capsys.readouterr().err
    assert "ERROR storing failed\\nforged line\nTraceback" in stderr
    assert "ValueError: boom" in stderr


@pytest.mark.parametrize(("name", "value", "message"), [
    ("RANKBOT_LOG_MAX_MB", "-1", "RANKBOT_LOG_MAX_MB must be a positive number of megabytes"),
    ("RANKBOT_LOG_MAX_MB", "lots", "RANKBOT_LOG_MAX_MB must be a positive number of megabytes"),
    ("RANKBOT_LOG_BACKUPS", "0", "RANKBOT_LOG_BACKUPS must be a whole number of files from 1"),
    ("RANKBOT_LOG_BACKUPS", "1000", "RANKBOT_LOG_BACKUPS must be a whole number of files from 1"),
])
def test_an_invalid_log_setting_is_refused_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({name: value})
