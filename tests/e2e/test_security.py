"""Bad input and security against a running `rankbot run`: every request gets a clear reply or
a 4xx, none crashes the process or writes a bad rule, and no secret ever shows."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankbot.bot.rules import RULES
from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import SECRETS, SIGNING_SECRET, Rankbot, world

SEEN: list[str] = []  # every reply text, scanned for secrets at the end
REQUESTS: list[str] = []  # what was sent, for the report when something hangs


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rankbot]:
    with world(tmp_path_factory.mktemp("security")) as fakes:
        fakes.slack.users = {
            "UADMIN2": {"id": "UADMIN2", "team_id": "T2", "is_admin": True},
            "UMEMBER": {"id": "UMEMBER", "team_id": "T1", "is_admin": False}}
        fakes.openrouter.serve("models", catalog_bytes("2026-08-22T183539Z"))
        serve_export(fakes.openrouter, rankings_csv())
        fakes.bot.start()
        fakes.bot.wait_for("rankings baseline stored")
        fakes.bot.wait_for("Slack HTTP mode: listening")
        yield fakes.bot


def slash(bot: Rankbot, command: str, text: str, user: str = "UMEMBER", *, team: str = "T1",
          age: int = 0, secret: str = SIGNING_SECRET, body: str | None = None
          ) -> httpx.Response:
    body = body if body is not None else urlencode({
        "team_id": team, "channel_id": "C1", "user_id": user, "command": command,
        "text": text, "response_url": "http://127.0.0.1:9/hooks/unheard", "trigger_id": "t"})
    REQUESTS.append(f"{command} {text}"[:200])
    timestamp = str(int(time.time()) - age)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(),
                                 hashlib.sha256).hexdigest()
    try:
        reply = httpx.post(bot.slack_url, content=body, timeout=10, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})
    except httpx.TimeoutException:
        raise AssertionError(f"no answer to {REQUESTS[-1]!r}; log:\n{bot.log[-3000:]}") from None
    SEEN.append(reply.text)
    return reply


@pytest.mark.parametrize(("age", "secret", "headers"), [
    (0, "not-the-secret", True),  # mis-signed
    (10 * 60, SIGNING_SECRET, True),  # replayed: a captured request from 10 minutes ago
    (0, SIGNING_SECRET, False),  # unsigned
])
def test_unsigned_missigned_and_replayed_requests_are_refused(
        bot: Rankbot, age: int, secret: str, headers: bool) -> None:
    if headers:
        reply = slash(bot, "/rankbot", "subscribe", "UADMIN", age=age, secret=secret)
    else:
        reply = httpx.post(bot.slack_url, content="command=%2Frankbot&text=subscribe",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 401


def test_a_non_admin_and_an_admin_of_another_workspace_can_neither_read_nor_change(
        bot: Rankbot) -> None:
    assert "This channel now gets" in slash(bot, "/rankbot", "subscribe", "UADMIN").text
    for user in ("UMEMBER", "UADMIN2"):
        for text in ("config", "set top_n 1", "unsubscribe", "status"):
            reply = slash(bot, "/rankbot", text, user).json()
            assert reply["response_type"] == "ephemeral"
            assert "Only workspace admins" in reply["text"]
    assert "`top_n` = 20 (default)" in slash(bot, "/rankbot", "config", "UADMIN").json()["text"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["/rank", "/price", "/top", "/movers", "/new", "/rankbot"]),
       text=st.text(max_size=400))
def test_any_command_text_gets_a_clear_reply(bot: Rankbot, command: str, text: str) -> None:
    reply = slash(bot, command, text, "UMEMBER")
    assert reply.status_code == 200
    body = reply.json()
    assert body["text"] and body["blocks"][0]["type"] == "header"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from([*RULES, "colour", "TOP_N", ""]), value=st.text(max_size=60))
def test_set_never_writes_a_bad_rule(bot: Rankbot, key: str, value: str) -> None:
    slash(bot, "/rankbot", "subscribe", "UADMIN")
    reply = slash(bot, "/rankbot", f"set {key} {value}", "UADMIN").json()
    assert reply["response_type"] == "ephemeral" and reply["text"]
    shown = slash(bot, "/rankbot", "config", "UADMIN").json()["text"]
    # Whatever was accepted is shown back as a valid value of its key: a re-set is a no-op.
    for line in shown.splitlines()[2:]:
        name, _, current = line.partition("` = ")
        current = current.removesuffix(" (default)")
        echo = slash(bot, "/rankbot", f"set {name.strip('`')} {current}", "UADMIN").json()
        assert "→" in echo["text"], (line, echo["text"])


@pytest.mark.parametrize("body", [
    "x" * 2_000_000,  # oversized
    "%%%%=&&==",  # malformed form
    json.dumps({"command": "/rank", "text": "qwen"}),  # not a form at all
    "command=%2Fnot-ours&text=hi&team_id=T1&channel_id=C1&user_id=U1",
])
def test_malformed_and_oversized_bodies_get_a_reply_or_a_4xx(bot: Rankbot, body: str) -> None:
    reply = slash(bot, "/rank", "", body=body)
    assert reply.status_code == 200 or 400 <= reply.status_code < 500
    assert slash(bot, "/rank", "qwen").status_code == 200  # and the process is fine


def test_no_secret_in_replies_logs_or_status(bot: Rankbot) -> None:
    seen = "\n".join(SEEN) + bot.log + bot.cli("status").stdout
    assert SEEN and not [secret for secret in SECRETS if secret in seen]
