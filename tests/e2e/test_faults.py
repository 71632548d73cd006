"""Source faults against a running `rankbot run`: no alert, visible in `status`, commands still
answering from the last good data, and normal service on the next good poll without a burst.
Polls come from `rankbot poll` beside it, as from cron, on the same database."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import SECRETS, SIGNING_SECRET, Rankbot, World
from tests.fakes.loopback import Reply
from tests.fakes.slack_api import post_command

GOOD = catalog_bytes("2026-07-14T025033Z")
HALF = json.dumps({"data": json.loads(GOOD)["data"][:171]}).encode()
FAULTS = [  # (what OpenRouter does, the fault kind `status` shows)
    ({"models": Reply(500)}, "http"),
    ({"models": Reply(429, headers={"Retry-After": "1"})}, "rate_limited"),
    ({"models": Reply(body=GOOD, delay=3.0)}, "timeout"),
    ({"models": Reply(body=GOOD[:200_000])}, "unparsable"),
    ({"models": Reply(502, b"<html><body>Bad gateway</body></html>")}, "http"),
    ({"models": Reply(body=b"<html><body>Maintenance</body></html>")}, "unparsable"),
    ({"models": Reply(body=b'{"data":[],"total_count":0}')}, "empty"),
    ({"models": Reply(body=HALF)}, "shrunk"),
    ({"sha": "0" * 64}, "hash_mismatch"),
]


def ask(bot: Rankbot, command: str, text: str, user: str = "UMEMBER") -> dict[str, str]:
    reply = asyncio.run(post_command(bot.slack_url, SIGNING_SECRET, command, text, user=user))
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_faults_send_nothing_show_in_status_and_commands_keep_answering(
        running: World) -> None:
    bot, openrouter, slack = running.bot, running.openrouter, running.slack
    openrouter.serve("models", GOOD)
    serve_export(openrouter, rankings_csv("2026-09-30", "2026-10-01"))
    bot.start()
    bot.wait_for("rankings baseline stored")
    bot.wait_for("Slack HTTP mode: listening")
    assert "This channel now gets alerts" in ask(bot, "/rankbot", "subscribe alerts",
                                                 user="UADMIN")["text"]
    posted = len(slack.calls_to("chat.postMessage"))

    for reply, kind in FAULTS:
        openrouter.serve("models", reply.get("models", GOOD))  # type: ignore[arg-type]
        serve_export(openrouter, rankings_csv("2026-09-30", "2026-10-01"),
                     reply.get("sha"))  # type: ignore[arg-type]
        result = bot.cli("poll")
        assert result.returncode == 1, (kind, result.stderr)
        assert f"fault ({kind})" in result.stderr and "Traceback" not in result.stderr
        assert kind in bot.cli("status").stdout
        answer = ask(bot, "/rank", "")
        assert answer["response_type"] == "in_channel"
        footer = answer["blocks"][-1]["elements"][0]["text"]
        assert "as of 2026-10-01" in footer  # the last good data, with its date
        assert len(slack.calls_to("chat.postMessage")) == posted, kind  # no alert

    openrouter.serve("models", catalog_bytes("2026-07-20T194813Z"))
    serve_export(openrouter, rankings_csv())
    assert bot.cli("poll").returncode == 0
    messages = slack.calls_to("chat.postMessage")[posted:]
    assert len(messages) == 1  # one message for the good poll: no burst of stale alerts
    assert messages[0]["channel"] == "C1"
    assert messages[0]["blocks"][0]["text"]["text"].startswith("OpenRouter: ")
    assert "as of 2026-10-07" in ask(bot, "/rank", "")["blocks"][-1]["elements"][0]["text"]

    stderr = bot.stop()
    assert stderr.rstrip().endswith("rankbot stopped.")
    seen = stderr + bot.log + bot.cli("status").stdout + json.dumps(slack.calls_to(
        "chat.postMessage"))
    assert not [secret for secret in SECRETS if secret in seen]  # no token leaks anywhere
