"""Secrets from files (NAME_FILE, as Docker and Kubernetes mount them) and `--env-file`: the
rules on their own (bot/config.py), then through the command line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rankbot.bot.config import SECRETS, ConfigError, layered, load_settings, with_secret_files
from tests.fakes.openrouter import FakeOpenRouter
from tests.test_cli import invoke

TOKEN = "xoxb-file-secret-token"


def reader(files: dict[str, str]) -> Callable[[str], str]:
    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return files[path]
    return read


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_secret_may_come_from_a_file_without_its_trailing_newline(name: str) -> None:
    env = with_secret_files({f"{name}_FILE": "/run/secrets/s"},
                            reader({"/run/secrets/s": "s3cret\n"}))
    assert env[name] == "s3cret"
    crlf = with_secret_files({f"{name}_FILE": "/s"}, reader({"/s": "s3cret\r\n"}))
    assert crlf[name] == "s3cret"


def test_a_file_feeds_the_setting_as_the_variable_would() -> None:
    files = reader({"/bot": TOKEN + "\n", "/app": "xapp-1\n"})
    settings = load_settings(with_secret_files(
        {"SLACK_BOT_TOKEN_FILE": "/bot", "SLACK_APP_TOKEN_FILE": "/app"}, files))
    assert (settings.slack_bot_token, settings.slack_app_token) == (TOKEN, "xapp-1")
    # an empty NAME_FILE is unset, as an empty NAME is
    assert with_secret_files({"SLACK_BOT_TOKEN_FILE": " "}, files) == {
        "SLACK_BOT_TOKEN_FILE": " "}


@pytest.mark.parametrize(("env", "files", "message"), [
    ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_BOT_TOKEN_FILE": "/bot"}, {"/bot": TOKEN},
     "SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE are both set: set one of them"),
    ({"DISCORD_BOT_TOKEN_FILE": "/missing"}, {},
     "DISCORD_BOT_TOKEN_FILE: cannot read /missing (No such file or directory)"),
    ({"OPENROUTER_API_KEY_FILE": "/empty"}, {"/empty": "\n"},
     "OPENROUTER_API_KEY_FILE: /empty is empty"),
])
def test_both_set_or_a_file_unread_is_one_error_naming_the_variable(
        env: dict[str, str], files: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        with_secret_files(env, reader(files))
    assert str(raised.value) == message


def test_the_environment_wins_over_dotenv_for_a_secret_and_its_file_alike() -> None:
    dotenv = {"SLACK_BOT_TOKEN": "xoxb-from-dotenv", "RANKBOT_DB": "dotenv.db"}
    # a secret file given to the process replaces .env's token instead of clashing with it
    assert layered(dotenv, {"SLACK_BOT_TOKEN_FILE": "/bot"}) == {
        "SLACK_BOT_TOKEN_FILE": "/bot", "RANKBOT_DB": "dotenv.db"}
    assert layered({"SLACK_BOT_TOKEN_FILE": "/bot"}, {"SLACK_BOT_TOKEN": TOKEN}) == {
        "SLACK_BOT_TOKEN": TOKEN}
    assert layered(dotenv, {"RANKBOT_DB": "env.db"}) == {**dotenv, "RANKBOT_DB": "env.db"}
    both = layered({"SLACK_BOT_TOKEN": TOKEN, "SLACK_BOT_TOKEN_FILE": "/bot"}, {})
    with pytest.raises(ConfigError, match="both set"):
        with_secret_files(both, reader({"/bot": TOKEN}))


# -- through the command line -----------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_", "SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    return tmp_path


def test_a_key_from_a_file_reaches_openrouter_and_nowhere_else(
        workdir: Path, fake_openrouter: FakeOpenRouter) -> None:
    key = "sk-or-v1-from-a-secret-file"
    (workdir / "key").write_text(key + "\n")
    fake_openrouter.serve("datasets/rankings-daily", b'{"data": []}')
    result = invoke("backfill", "--days", "1", env={
        "OPENROUTER_BASE_URL": fake_openrouter.base_url, "OPENROUTER_API_KEY_FILE": "key"})
    assert result.exit_code == 0, result.output
    assert fake_openrouter.requests[0].headers["Authorization"] == f"Bearer {key}"
    assert key not in result.output + (workdir / "rankbot.log").read_text()


@pytest.mark.parametrize(("files", "env", "message"), [
    ({"bot": TOKEN}, {"SLACK_BOT_TOKEN": TOKEN, "SLACK_BOT_TOKEN_FILE": "bot"},
     "SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE are both set: set one of them"),
    ({}, {"SLACK_BOT_TOKEN_FILE": "nowhere"},
     "SLACK_BOT_TOKEN_FILE: cannot read nowhere (No such file or directory)"),
    ({"bot": "\xff" + TOKEN}, {"SLACK_BOT_TOKEN_FILE": "bot"},
     "SLACK_BOT_TOKEN_FILE: bot is not UTF-8 text"),
    ({"bot": TOKEN * 3000}, {"SLACK_BOT_TOKEN_FILE": "bot"},
     "SLACK_BOT_TOKEN_FILE: bot is larger than 64 KB: not a secret"),
    ({"bot": "sekrit-not-a-token"}, {"SLACK_BOT_TOKEN_FILE": "bot"},
     "SLACK_BOT_TOKEN must start with xoxb-"),
])
def test_a_secret_file_that_cannot_serve_is_one_line_without_the_secret(
        workdir: Path, files: dict[str, str], env: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (workdir / name).write_bytes(text.encode("latin-1" if "\xff" in text else "utf-8"))
    result = invoke("status", env={**env, "SLACK_APP_TOKEN": "xapp-1"})
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"Error: {message}\n"
    assert TOKEN not in result.stderr and "sekrit" not in result.stderr


def test_env_file_picks_the_dotenv_and_the_environment_still_wins(workdir: Path) -> None:
    (workdir / ".env").write_text("RANKBOT_DB=from-dotenv.db\n")
    (workdir / "prod.env").write_text("RANKBOT_DB=from-prod.db\n")
    assert "from-prod.db" in invoke("--env-file", "prod.env", "status").stdout
    assert "from-env.db" in invoke("--env-file", "prod.env", "status",
                                   env={"RANKBOT_DB": "from-env.db"}).stdout
    assert "from-dotenv.db" in invoke("status").stdout
    missing = invoke("--env-file", "nowhere.env", "status")
    assert missing.exit_code == 2 and "'nowhere.env' does not exist" in missing.stderr
