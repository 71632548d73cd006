"""The `rankbot` command line, end to end against the loopback OpenRouter."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rankbot.shell.cli import cli
from tests.conftest import FIXTURES, catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import free_port
from tests.fakes.openrouter import FakeOpenRouter, Reply

KINDS = {"rank_moved", "entered_top", "left_top", "new_leader", "model_added", "model_removed",
         "price_changed", "went_free", "went_paid", "context_changed",
         "open_weight_share_changed", "alias_moved", "sunset_announced", "sunset_soon"}
KEY = "sk-or-v1-very-secret-test-key"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # ./rankbot.db, ./rankbot.log and ./.env live here
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_")):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def env(workdir: Path, fake_openrouter: FakeOpenRouter) -> dict[str, str]:
    return {"OPENROUTER_BASE_URL": fake_openrouter.base_url, "OPENROUTER_API_KEY": KEY}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False,
                              prog_name="rankbot")


def serve(fake: FakeOpenRouter, catalog: bytes | Reply, csv: bytes, sha: str | None = None) -> None:
    fake.serve("models", catalog)
    serve_export(fake, csv, sha)


def test_the_first_poll_prints_this_weeks_digest_then_one_message_per_poll(
        env: dict[str, str], fake_openrouter: FakeOpenRouter) -> None:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"),
          rankings_csv("2026-09-30", "2026-10-01"))
    first = invoke("poll", env=env)
    assert first.exit_code == 0
    assert "catalog baseline stored (342 models); no alerts" in first.stderr
    assert "rankings baseline stored (as of 2026-10-01); no alerts" in first.stderr
    # Not silent: the export's days already make a week, shown at once (no alert yet).
    assert first.stdout.count("━━ ") == 1
    assert first.stdout.startswith("━━ OpenRouter weekly: Sep 25 – Oct 1, 2026 ━━")
    for section in ("Top 10 by tokens", "Open weights", "Biggest movers",
                    "Cost of the top 5 (USD per 1M tokens, in / out)"):
        assert f"\n{section}\n" in first.stdout
    assert first.stdout.rstrip().endswith("as of 2026-10-01 · CC BY 4.0")
    assert invoke("poll", env=env).stdout == ""  # nothing new, and no second digest

    serve(fake_openrouter, catalog_bytes("2026-07-20T194813Z"), rankings_csv())
    second = invoke("poll", env=env)
    assert second.exit_code == 0
    assert second.stdout.count("━━ OpenRouter:") == 1
    assert "👑 deepseek/deepseek-v4.1-flash-20260910 is the new #1" in second.stdout
    assert second.stdout.rstrip().endswith("as of 2026-10-07 · CC BY 4.0")


def test_poll_json_prints_one_object_per_change(
        env: dict[str, str], fake_openrouter: FakeOpenRouter) -> None:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"),
          rankings_csv("2026-09-30", "2026-10-01"))
    assert invoke("poll", "--json", env=env).stdout == ""
    serve(fake_openrouter, catalog_bytes("2026-07-20T194813Z"), rankings_csv())
    result = invoke("poll", "--json", env=env)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records and all({"kind", "model"} <= r.keys() and r["kind"] in KINDS for r in records)
    assert {"price_changed", "new_leader", "model_added"} <= {r["kind"] for r in records}
    leader = next(r for r in records if r["kind"] == "new_leader")
    assert leader == {"kind": "new_leader", "model": "deepseek/deepseek-v4.1-flash-20260910",
                      "previous": "stealth/space-bunny-alpha"}
    prices = [r[k] for r in records for k in PRICE_FIELDS if r["kind"] in PRICED
              and r.get(k) is not None]
    assert prices and all(re.fullmatch(r"\d+(\.\d*[1-9])?", p) for p in prices)


PRICED = ("price_changed", "went_paid", "model_added", "alias_moved")
PRICE_FIELDS = ("old", "new", "prompt", "completion", "old_prompt", "new_prompt",
                "old_completion", "new_completion")


def test_poll_json_writes_round_prices_as_plain_decimals(
        env: dict[str, str], fake_openrouter: FakeOpenRouter) -> None:
    before = json.loads(catalog_bytes("2026-07-14T025033Z"))
    target = before["data"][0]
    target["pricing"].update(prompt="0.00001", completion="0.0001")  # $10 and $100 per 1M
    serve(fake_openrouter, json.dumps(before).encode(), rankings_csv("2026-10-01"))
    invoke("poll", env=env)
    target["pricing"].update(prompt="0.00002", completion="0.0000600600")
    serve(fake_openrouter, json.dumps(before).encode(), rankings_csv("2026-10-01"))
    records = [json.loads(line) for line in invoke("poll", "--json", env=env).stdout.splitlines()]
    assert [(r["field"], r["old"], r["new"]) for r in records] == [
        ("prompt", "10", "20"), ("completion", "100", "60.06")]


def test_outside_text_reaches_the_terminal_without_escape_sequences(
        env: dict[str, str], fake_openrouter: FakeOpenRouter, workdir: Path) -> None:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"), rankings_csv("2026-10-01"))
    invoke("poll", env=env)
    payload = json.loads(catalog_bytes("2026-07-14T025033Z"))
    hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRed\x1b[0m \u202egnp.exe\r\nforged line\x9b"
    payload["data"].append({**payload["data"][0], "id": "evil/model", "name": hostile})
    serve(fake_openrouter, json.dumps(payload).encode(), rankings_csv("2026-10-01"))
    shown = invoke("poll", env=env).stdout
    assert "＋ evil/model (Red gnp.exe" in shown
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", shown)
    as_json = invoke("ask", "rank", "evil", env=env).stdout
    assert "\x1b" not in as_json


@pytest.mark.parametrize(("catalog", "sha", "fault"), [
    (b'{"data":[]}', None, "catalog fault (empty)"),
    (catalog_bytes("2026-07-20T194813Z")[:1000], None, "catalog fault (unparsable)"),
    (catalog_bytes("2026-07-14T025033Z"), "f" * 64, "rankings fault (hash_mismatch)"),
])
def test_a_fault_exits_1_with_one_line_and_the_log_keeps_the_traceback(
        env: dict[str, str], fake_openrouter: FakeOpenRouter, workdir: Path,
        catalog: bytes, sha: str | None, fault: str) -> None:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"), rankings_csv("2026-10-01"))
    invoke("poll", env=env)
    serve(fake_openrouter, catalog, rankings_csv("2026-10-01"), sha)
    result = invoke("poll", env=env)
    assert result.exit_code == 1 and result.stdout == ""
    assert [line for line in result.stderr.splitlines() if "fault" in line] == [
        next(line for line in result.stderr.splitlines() if fault in line)]
    assert "Traceback" not in result.stderr
    assert "Traceback" in (workdir / "rankbot.log").read_text()
    status = invoke("status", env=env).stdout
    assert "last fault" in status and fault.split(" (")[1].rstrip(")") in status


def test_import_loads_history_in_time_order(workdir: Path) -> None:
    catalogs = [FIXTURES / "models" / f"{s}.json.gz"
                for s in ("2026-07-20T194813Z", "2026-07-14T025033Z")]
    result = invoke("import", *map(str, catalogs), str(FIXTURES / "rankings" /
                                                       "exports-sample-2026-10-08.csv"))
    assert result.exit_code == 0, result.output
    baseline, step, rankings = result.stdout.splitlines()
    assert baseline == "2026-07-14T025033Z.json.gz: catalog baseline stored (342 models); no alerts"
    assert re.fullmatch(r"2026-07-20T194813Z.json.gz: catalog: 339 models, \d+ changes", step)
    assert rankings == ("exports-sample-2026-10-08.csv: rankings baseline stored "
                        "(as of 2026-10-07); no alerts")
    older = invoke("import", str(FIXTURES / "models" / "2026-07-13T144438Z.json.gz"))
    assert older.exit_code == 1
    assert "older than the newest stored catalog" in older.stderr


def test_import_needs_a_time_from_the_name_or_at(workdir: Path) -> None:
    (workdir / "models.json").write_bytes(catalog_bytes("2026-07-14T025033Z"))
    unnamed = invoke("import", "models.json")
    assert unnamed.exit_code == 2 and "cannot tell when models.json was fetched" in unnamed.stderr
    named = invoke("import", "--at", "2026-07-14T02:50:33", "models.json")
    assert named.exit_code == 0 and "baseline stored (342 models)" in named.stdout


def test_status_on_an_empty_database_says_what_to_run(workdir: Path) -> None:
    result = invoke("status")
    assert result.exit_code == 0
    assert "never fetched: run `rankbot poll`" in result.stdout


def test_backfill_fills_missing_days_with_the_key(
        env: dict[str, str], fake_openrouter: FakeOpenRouter, workdir: Path) -> None:
    fake_openrouter.serve("datasets/rankings-daily", json.dumps({"data": [
        {"date": "2026-09-01", "model_permaslug": "a/x", "total_tokens": "10"},
        {"date": "2026-09-02", "model_permaslug": "a/x", "total_tokens": "12"}]}).encode())
    result = invoke("backfill", "--days", "30", env=env)
    assert result.exit_code == 0 and result.stdout == "Backfilled 2 days of rankings.\n"
    assert fake_openrouter.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in result.output + (workdir / "rankbot.log").read_text()
    no_key = invoke("backfill", env={**env, "OPENROUTER_API_KEY": ""})
    assert no_key.exit_code == 1 and "needs OPENROUTER_API_KEY" in no_key.stderr


@pytest.mark.parametrize(("name", "value", "message"), [
    ("RANKBOT_CATALOG_EVERY", "often", "RANKBOT_CATALOG_EVERY must be a whole number"),
    ("RANKBOT_RANKINGS_AT", "25:99", "RANKBOT_RANKINGS_AT must be a UTC time"),
    ("OPENROUTER_BASE_URL", "openrouter.ai", "OPENROUTER_BASE_URL must be an http(s) URL"),
    ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg",
     "DISCORD_GATEWAY_URL must be a ws(s) URL"),
    ("RANKBOT_LOG_LEVEL", "LOUD", "RANKBOT_LOG_LEVEL must be one of"),
    ("SLACK_BOT_TOKEN", "sekrit-value", "SLACK_BOT_TOKEN must start with xoxb-"),
    ("SLACK_SIGNING_SECRET", "sekrit-value", "SLACK_BOT_TOKEN is missing"),
])
def test_an_invalid_setting_gets_one_message_naming_it(
        workdir: Path, name: str, value: str, message: str) -> None:
    result = invoke("status", env={name: value})
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1
    assert "sekrit" not in result.output  # a secret is never echoed


def test_dotenv_is_read_and_the_environment_wins(workdir: Path) -> None:
    (workdir / ".env").write_text("RANKBOT_DB=from-dotenv.db\nRANKBOT_LOG_LEVEL=WARNING\n")
    assert "from-dotenv.db" in invoke("status").stdout
    assert "from-env.db" in invoke("status", env={"RANKBOT_DB": "from-env.db"}).stdout


@pytest.mark.parametrize("command", [[], *([name] for name in cli.commands)])
def test_every_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and result.stdout.startswith("Usage: rankbot")


@pytest.fixture
def rankbot_run(env: dict[str, str], fake_openrouter: FakeOpenRouter,
                workdir: Path) -> Iterator[subprocess.Popen[str]]:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"), rankings_csv())
    process = subprocess.Popen(
        [sys.executable, "-m", "rankbot.shell.cli", "run"], cwd=workdir, text=True,
        env={**os.environ, **env,
             "RANKBOT_HTTP_PORT": str(free_port())},  # /healthz and the feeds: no fixed port
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield process
    process.kill()
    process.wait()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_run_polls_at_start_and_stops_cleanly(
        rankbot_run: subprocess.Popen[str], workdir: Path, stop: signal.Signals) -> None:
    log = workdir / "rankbot.log"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "delivery: 1 sent" not in (
            log.read_text() if log.exists() else ""):  # the baseline's welcome digest
        time.sleep(0.1)
    rankbot_run.send_signal(stop)
    stdout, stderr = rankbot_run.communicate(timeout=20)
    assert rankbot_run.returncode == 0, stderr
    assert "catalog baseline stored (342 models)" in stderr
    assert "rankbot is running: catalog every 60 min, rankings daily at 02:15 UTC" in stderr
    assert stderr.rstrip().endswith("rankbot stopped.")
    assert "Traceback" not in stderr
    assert stdout.count("━━ ") == 1 and stdout.startswith("━━ OpenRouter weekly: ")


def test_ask_answers_on_the_console_through_the_same_handlers(workdir: Path) -> None:
    empty = invoke("ask", "rank", "qwen")
    assert empty.exit_code == 0 and "run `rankbot poll` once" in empty.stdout
    invoke("import", str(FIXTURES / "models" / "2026-08-22T183539Z.json.gz"),
           str(FIXTURES / "rankings" / "exports-sample-2026-10-08.csv"))
    result = invoke("ask", "/price", "qwen/qwen3.8-27b")
    assert result.exit_code == 0
    assert result.stdout.startswith("━━ Price: qwen/qwen3.8-27b ━━")
    assert "qwen/qwen3.8-27b: $0.45 in / $3.20 out per 1M" in result.stdout
    assert invoke("ask", "top 3 day").stdout.splitlines()[1].startswith(
        "1. deepseek/deepseek-v4.1-flash-20260910")


def test_digest_dry_run_prints_the_digest(workdir: Path) -> None:
    none = invoke("digest", "--dry-run")
    assert none.exit_code == 1 and "no rankings yet" in none.stderr
    invoke("import", str(FIXTURES / "rankings" / "exports-sample-2026-10-08.csv"))
    result = invoke("digest", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.startswith("━━ OpenRouter weekly: ")
    assert "CC BY 4.0" in result.stdout


def test_the_console_channels_rules_decide_what_poll_prints(
        env: dict[str, str], fake_openrouter: FakeOpenRouter) -> None:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"),
          rankings_csv("2026-09-30", "2026-10-01"))
    invoke("poll", env=env)
    changed = invoke("ask", "rankbot", "set", "kinds", "new_leader,went_free", env=env)
    assert "`kinds`: all → new_leader,went_free" in changed.stdout
    serve(fake_openrouter, catalog_bytes("2026-07-20T194813Z"), rankings_csv())
    result = invoke("poll", "--json", env=env)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["kind"] for r in records] == ["new_leader"]  # the fixture has no went_free
    status = invoke("status", env=env).stdout
    assert "Channels   1 subscribed, 0 paused" in status and "2 sent" in status  # welcome too
    assert "config" in invoke("ask", "rankbot", "help", env=env).stdout


def test_a_bad_entry_is_one_warning_the_rest_is_told_and_status_names_it(
        env: dict[str, str], fake_openrouter: FakeOpenRouter, workdir: Path) -> None:
    serve(fake_openrouter, catalog_bytes("2026-07-14T025033Z"), rankings_csv("2026-10-01"))
    invoke("poll", env=env)
    payload = json.loads(catalog_bytes("2026-07-20T194813Z"))
    payload["data"][3]["pricing"] = ["not", "an", "object"]
    serve(fake_openrouter, json.dumps(payload).encode(), rankings_csv("2026-10-01"))
    result = invoke("poll", env=env)
    assert result.exit_code == 0
    assert result.stdout.count("━━ OpenRouter:") == 1
    warned = [line for line in result.stderr.splitlines() if "set aside" in line]
    assert len(warned) == 1 and payload["data"][3]["id"] in warned[0]
    assert "Traceback" not in result.stderr
    status = invoke("status", env=env).stdout
    assert f"(bad_entries): 1 catalog entry set aside, the rest used: model " \
           f"{payload['data'][3]['id']}: pricing is a list, not an object" in status


def test_a_logged_line_break_cannot_forge_a_log_record(workdir: Path) -> None:
    from rankbot.bot.config import load_settings  # noqa: PLC0415
    from rankbot.shell.cli import configure_logging  # noqa: PLC0415
    configure_logging(load_settings({}), log_to_terminal=False)
    logging.getLogger("rankbot.test").warning("model %s", "x\n2026-01-01 ERROR forged\x1b[2J")
    lines = (workdir / "rankbot.log").read_text().splitlines()
    assert lines[-1].endswith("model x\\n2026-01-01 ERROR forged")
    configure_logging(load_settings({}), log_to_terminal=False)  # releases the file
