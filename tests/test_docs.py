"""README, .env.example and .ci/run are kept true: these fail when they drift from the code."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import yaml

from rankbot.adapters.slack_chat import ADMIN_COMMAND, QUERY_COMMANDS, SCOPES
from rankbot.bot import changes
from rankbot.bot.admin import ADMIN
from rankbot.bot.commands import COMMANDS
from rankbot.bot.config import SECRETS, SETTINGS
from rankbot.bot.rules import ALERT_KINDS, RULES
from rankbot.shell.cli import cli

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = "\n".join(README.splitlines()[:25])


def shell_commands(text: str) -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_the_first_screen_holds_the_run_and_test_commands() -> None:
    run, test = shell_commands(FIRST_SCREEN)
    assert run.endswith("pip install -e . && .venv/bin/rankbot run")
    assert test.endswith("pip install -e '.[test]' && .venv/bin/python -m pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert shell_commands(FIRST_SCREEN)[1] in ci.splitlines()
    assert '"$status" -eq 5' in ci  # "no tests" is a failure


def test_every_command_is_in_the_readme() -> None:
    documented = set(re.findall(r"^\| `rankbot (\w+)", README, flags=re.MULTILINE))
    assert documented == set(cli.commands)


def test_every_setting_is_in_env_example_and_readme_with_its_default() -> None:
    example = (ROOT / ".env.example").read_text()
    pairs = dict(re.findall(r"^([A-Z_]+)=(.*)$", example, flags=re.MULTILINE))
    assert pairs == {s.name: s.default for s in SETTINGS}
    readme = dict(re.findall(r"^\| `([A-Z_]+)` \|\s*`?([^`|]*?)`?\s*\|", README,
                             flags=re.MULTILINE))
    assert readme == {s.name: s.default for s in SETTINGS}


def test_every_change_kind_is_in_the_readme_with_its_json_fields() -> None:
    kinds = {c.kind: [f.name for f in dataclasses.fields(c) if f.name != "model"]
             for c in vars(changes).values()
             if isinstance(c, type) and isinstance(getattr(c, "kind", None), str)}
    assert set(kinds) == set(ALERT_KINDS)  # every kind a channel can be told, and no other
    rows = re.findall(r"^\| `([a-z_]+)` \| [^|]+ \| ([^|]+) \|$", README, flags=re.MULTILINE)
    documented = {kind: re.findall(r"`([a-z_]+)`", fields) for kind, fields in rows
                  if kind in kinds or "_" in kind}
    # Each kind's row names exactly its fields, in order (a value such as `prompt` in parentheses
    # may follow a field's name).
    assert {k: [f for f in v if f in kinds[k]] for k, v in documented.items()} == kinds


def test_every_slash_command_is_in_the_readme() -> None:
    documented = re.findall(r"^\| `/(?!rankbot )(\w+)[^`]*` \|", README, flags=re.MULTILINE)
    assert documented == list(COMMANDS)
    assert [f"/{name}" for name in documented] == [c.usage.split()[0] for c in COMMANDS.values()]


def test_every_admin_command_and_rule_is_in_the_readme() -> None:
    documented = re.findall(r"^\| `/rankbot (\w+)[^`]*` \|", README, flags=re.MULTILINE)
    assert documented == list(ADMIN)
    paragraph = README.split("Rules (`set` keys):")[1].split("\n\n")[0]
    assert [k for k in re.findall(r"`([a-z_]+)`", paragraph) if k in RULES] == list(RULES)


def test_the_slack_manifest_declares_every_command_and_scope() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yml").read_text())
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [*QUERY_COMMANDS, ADMIN_COMMAND]
    assert [f"/{name}" for name in COMMANDS if name != "help"] == list(QUERY_COMMANDS)
    assert manifest["oauth_config"]["scopes"]["bot"] == list(SCOPES)
    setup = README.split("## Slack")[1].split("\n2. ")[0]
    assert re.findall(r"`([a-z:.]+)`", setup) == list(SCOPES)  # the README names each, in order
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "slack-manifest.yml" in README


def test_the_slack_manifest_enables_buttons_and_the_home_tab() -> None:
    manifest = yaml.safe_load((ROOT / "slack-manifest.yml").read_text())
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["app_home"] == {
        "home_tab_enabled": True, "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": True}


def test_the_secrets_that_may_come_from_files_are_named_in_readme_and_env_example() -> None:
    settings = {s.name for s in SETTINGS}
    readme = next(p for p in README.split("\n\n") if "`_FILE`" in p)
    assert {n for n in re.findall(r"`([A-Z_]+)`", readme) if n in settings} == SECRETS
    example = (ROOT / ".env.example").read_text()
    comment = " ".join(line for line in example.splitlines() if line.startswith("#"))
    said = comment.split("NAME_FILE")[0].rsplit(".", 1)[-1]  # the sentence that says it
    assert {n for n in re.findall(r"[A-Z][A-Z_]+", said) if n in settings} == SECRETS
    assert "--env-file" in readme and "--env-file" in example
