"""Slack, end to end on loopback: the real bolt app in HTTP mode receives slash commands signed
exactly as Slack signs them, and the real slack_sdk client posts to a fake Web API."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters import slack_chat
from rankbot.adapters.charts import png
from rankbot.adapters.slack_blocks import blocks
from rankbot.adapters.slack_chat import PATH, SlackNotifier, connect_socket_mode, socket_mode
from rankbot.adapters.supervisor import Connection, supervise
from rankbot.bot.admin import NOT_ADMIN
from rankbot.bot.cards import Card, Field, channel_link, fit
from rankbot.bot.channels import CONSOLE, ChannelRef
from rankbot.bot.commands import answer, answer_with_chart
from rankbot.bot.config import load_settings
from rankbot.bot.connections import ConnectionState
from rankbot.bot.delivery import Courier, Pacer, delivery_key
from rankbot.bot.digest import queue_due_digests
from rankbot.bot.ports import DeliveryError
from rankbot.shell.bootstrap import open_app, run_until_stopped
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8, Clock, NoWait
from tests.fakes.loopback import Reply
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack_api import FakeSlackAPI, post_command
from tests.fakes.slack_bot import ADMIN_AND_MEMBER, answered, serving, slack_app

pytestmark = pytest.mark.anyio
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
C1, C2 = ChannelRef("slack", "T1", "C1"), ChannelRef("slack", "T1", "C2")


@pytest.fixture
def slack_users() -> dict[str, dict[str, Any]]:
    return {**ADMIN_AND_MEMBER, "UOWNER": {"id": "UOWNER", "team_id": "T1", "is_owner": True}}


@dataclass
class Endpoint:
    url: str
    store: UnitOfWork

    async def command(self, command: str, text: str, user: str = "UMEMBER",
                      channel: str = "C1", *, age: int = 0, secret: str = SECRET
                      ) -> httpx.Response:
        return await post_command(self.url, secret, command, text, user=user,
                                  channel=channel, age=age)


@pytest.fixture
async def endpoint(slack_client: AsyncWebClient, fake_slack: FakeSlackAPI, october: UnitOfWork
                   ) -> AsyncIterator[Endpoint]:
    async with serving(october, fake_slack, slack_client, frozenset({"UENV"}), SECRET) as served:
        yield Endpoint(served.url, october)


def warm(store: UnitOfWork) -> None:
    """The chart of `/rank qwen` drawn once beforehand: matplotlib's first import (a second or
    more on a busy machine) is not what these tests time (bench/slack_commands.py does)."""
    chart = answer_with_chart("/rank", "qwen", store.snapshots, OCT_8).chart
    assert chart is not None
    png(chart)


async def test_rank_qwen_is_answered_in_the_channel_within_3_seconds(
        endpoint: Endpoint, fake_slack: FakeSlackAPI) -> None:
    warm(endpoint.store)
    started = time.monotonic()
    reply = await endpoint.command("/rank", "qwen")
    elapsed = time.monotonic() - started
    assert reply.status_code == 200 and elapsed < 3
    body = reply.json()
    expected = answer("/rank", "qwen", endpoint.store.snapshots, OCT_8).card
    assert body["response_type"] == "in_channel"
    assert body["blocks"] == blocks(expected)  # its chart follows (tests/test_slack_charts.py)
    assert body["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": "Rank: qwen", "emoji": True}}
    assert body["text"].startswith("Rank: qwen")


async def test_errors_and_help_are_only_for_the_asker(endpoint: Endpoint) -> None:
    typo = (await endpoint.command("/rank", "qwn")).json()
    assert typo["response_type"] == "ephemeral"
    assert "Did you mean `qwen`?" in typo["text"]
    help_reply = (await endpoint.command("/rankbot", "help")).json()
    assert help_reply["response_type"] == "ephemeral"


@pytest.mark.parametrize(("age", "secret"), [(0, "wrong-secret"), (6 * 60, SECRET)])
async def test_bad_signatures_and_stale_timestamps_get_401(
        endpoint: Endpoint, age: int, secret: str) -> None:
    reply = await endpoint.command("/rank", "qwen", age=age, secret=secret)
    assert reply.status_code == 401


@pytest.mark.parametrize("timestamp", ["", "soon", "-1", "1e9", "17e8", "9" * 5000])
async def test_a_timestamp_that_is_not_one_gets_401(endpoint: Endpoint, timestamp: str) -> None:
    body = "command=%2Frank&text=qwen"
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)
    async with httpx.AsyncClient() as http:
        reply = await http.post(endpoint.url, content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature or ""})
    assert reply.status_code == 401


async def test_text_that_says_payload_is_still_a_command(endpoint: Endpoint) -> None:
    reply = await endpoint.command("/rank", "payload")  # slack-bolt alone answers 404
    assert reply.status_code == 200
    assert "No model matches `payload`" in reply.json()["text"]


async def test_a_rule_typed_with_angle_brackets_arrives_as_typed(endpoint: Endpoint) -> None:
    # Slack escapes & < > in a command's text as in messages: `*>*` arrives as `*&gt;*`.
    await endpoint.command("/rankbot", "subscribe", user="UADMIN")
    reply = await endpoint.command("/rankbot", "set price_fields prompt,*&gt;*", user="UADMIN")
    assert "→ prompt,*&gt;*" in reply.json()["text"]  # and escaped again on the way out
    subscription = endpoint.store.channels.subscription(ChannelRef("slack", "T1", "C1"))
    assert subscription is not None and subscription.rules.price_fields == ("prompt", "*>*")


async def test_an_unsigned_request_gets_401(endpoint: Endpoint) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(endpoint.url, content="command=%2Frank&text=qwen",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 401


async def test_a_non_admin_cannot_change_rules_and_an_admin_can(
        endpoint: Endpoint, fake_slack: FakeSlackAPI) -> None:
    refused = (await endpoint.command("/rankbot", "subscribe", user="UMEMBER")).json()
    assert refused["response_type"] == "ephemeral" and NOT_ADMIN in refused["text"]
    assert endpoint.store.channels.subscription(C1) is None
    for user in ("UADMIN", "UOWNER", "UENV"):
        ok = (await endpoint.command("/rankbot", "subscribe", user=user)).json()
        assert ok["response_type"] == "ephemeral" and "This channel now gets" in ok["text"]
    changed = (await endpoint.command("/rankbot", "set min_rank_move 5", user="UADMIN")).json()
    assert "`min_rank_move`: 3 → 5" in changed["text"]
    subscription = endpoint.store.channels.subscription(C1)
    assert subscription is not None and subscription.rules.min_rank_move == 5
    asked = [args["user"] for args in fake_slack.calls_to("users.info")]
    assert asked == ["UMEMBER", "UADMIN", "UOWNER"]  # cached since, and UENV never asked


async def test_a_channel_shared_by_two_organisations_has_one_subscription(
        endpoint: Endpoint, fake_slack: FakeSlackAPI) -> None:
    fake_slack.users["UPARTNER"] = {"id": "UPARTNER", "team_id": "T2", "is_admin": True}
    partner = await post_command(endpoint.url, SECRET, "/rankbot", "subscribe alerts",
                                 user="UPARTNER", channel="CSHARED", team="T2")
    assert "This channel now gets alerts." in partner.json()["text"]
    # The channel's own admins see and change that subscription, not a second one.
    config = (await endpoint.command("/rankbot", "config", user="UADMIN",
                                     channel="CSHARED")).json()
    assert "Gets: alerts." in config["text"]
    await endpoint.command("/rankbot", "set top_n 5", user="UADMIN", channel="CSHARED")
    rows = endpoint.store.db.execute(
        "SELECT workspace, rules FROM subscriptions WHERE channel = 'CSHARED'").fetchall()
    assert [(team, json.loads(rules)["top_n"]) for team, rules in rows] == [("T2", 5)]
    audit = endpoint.store.channels.audit_log(ChannelRef("slack", "T2", "CSHARED"))
    assert audit[-1]["who"] == "UADMIN"
    # Each sees their own workspace's list and this channel; an admin of neither is refused.
    await endpoint.command("/rankbot", "subscribe", user="UADMIN", channel="C1")
    status = (await endpoint.command("/rankbot", "status", user="UADMIN",
                                     channel="CSHARED")).json()
    assert "2 channel(s) subscribed in this workspace." in status["text"]
    partner_status = await post_command(endpoint.url, SECRET, "/rankbot", "status",
                                        user="UPARTNER", channel="CSHARED", team="T2")
    assert "1 channel(s) subscribed in this workspace." in partner_status.json()["text"]
    fake_slack.users["UOTHER"] = {"id": "UOTHER", "team_id": "T3", "is_admin": True}
    refused = await post_command(endpoint.url, SECRET, "/rankbot", "unsubscribe",
                                 user="UOTHER", channel="CSHARED", team="T2")
    assert NOT_ADMIN in refused.json()["text"]


async def test_a_rate_limited_admin_check_waits_briefly_or_says_try_again(
        endpoint: Endpoint, fake_slack: FakeSlackAPI) -> None:
    limited = Reply.json({"ok": False, "error": "ratelimited"}, 429, **{"Retry-After": "1"})
    fake_slack.then("users.info", limited)  # a second's wait fits in Slack's 3 s: waited out
    started = time.monotonic()
    ok = (await endpoint.command("/rankbot", "subscribe", user="UADMIN")).json()
    assert "This channel now gets" in ok["text"] and time.monotonic() - started < 3
    fake_slack.then("users.info", Reply.json({"ok": False, "error": "ratelimited"}, 429,
                                             **{"Retry-After": "30"}))
    busy = (await endpoint.command("/rankbot", "config", user="UOWNER")).json()
    assert NOT_ADMIN not in busy["text"]
    assert busy["text"].endswith("Could not check who may change settings here (Slack "
                                 "answered ratelimited): try again in a moment.")
    again = (await endpoint.command("/rankbot", "config", user="UOWNER")).json()
    assert "Settings for this channel" in again["text"]  # no false "no" was remembered


def courier(store: UnitOfWork, client: AsyncWebClient, clock: Clock) -> Courier:
    waits = NoWait()
    return Courier(store, {"slack": SlackNotifier(client)}, clock, Pacer(waits.clock,
                                                                         waits.sleep))


async def test_alerts_and_digests_arrive_as_chat_post_message(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    with october:
        subscription = october.channels.subscribe(C1, "all", OCT_8)
    card = Card("OpenRouter: 1 change", ("Seen 2026-10-08 09:00 UTC",),
                (Field("Prices", "qwen/qwen3-coder output $1.00 → $0.80 per 1M (−20.0%)"),),
                "Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0")
    with october:
        october.outbox.enqueue(subscription, "test:1", kind="alert", card=card, changes=[],
                               at=OCT_8)
    (due,) = october.outbox.due_messages(OCT_8)
    report = await courier(october, slack_client, Clock(OCT_8)).deliver_due()
    assert report.sent == 1
    (posted,) = fake_slack.calls_to("chat.postMessage")
    assert posted == {
        "channel": "C1",
        "text": "OpenRouter: 1 change\nSeen 2026-10-08 09:00 UTC",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "OpenRouter: 1 change",
                                        "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn",
                                         "text": "Seen 2026-10-08 09:00 UTC"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                "*Prices*\nqwen/qwen3-coder output $1.00 → $0.80 per 1M (−20.0%)")}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0")}]},
        ],
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": {"event_type": "rankbot_message",
                     "event_payload": {"key": delivery_key([due])}},
    }
    monday = datetime(2026, 10, 12, 9, 0, tzinfo=UTC)
    assert queue_due_digests(october, monday) == 1
    await courier(october, slack_client, Clock(monday)).deliver_due()
    digest = fake_slack.calls_to("chat.postMessage")[-1]
    assert digest["blocks"][0]["text"]["text"] == "OpenRouter weekly: Oct 1 – Oct 7, 2026"
    assert digest["blocks"][-1]["elements"][0]["text"].endswith("CC BY 4.0")


async def test_a_send_in_doubt_is_found_in_the_channel_history_by_its_key(
        slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    notifier, card = SlackNotifier(slack_client), Card("Hello")
    began = datetime.now(UTC)
    await notifier.send(C1, card, (), "rb-sent")
    assert await notifier.find(C1, card, "rb-sent", began)
    assert not await notifier.find(C1, card, "rb-never-sent", began)
    assert not await notifier.find(C2, card, "rb-sent", began)  # another channel
    assert not await notifier.find(C1, card, "rb-sent", began + timedelta(minutes=5))
    asked = fake_slack.calls_to("conversations.history")[0]
    assert (asked["channel"], asked["include_all_metadata"]) == ("C1", "1")
    fake_slack.then("conversations.history", Reply.json({"ok": False,
                                                         "error": "missing_scope"}))
    with pytest.raises(DeliveryError) as cannot_say:  # an old install without the scope
        await notifier.find(C1, card, "rb-sent", began)
    assert cannot_say.value.kind == "permanent"


async def test_a_post_whose_answer_was_cut_off_is_not_posted_twice(
        fake_openrouter: FakeOpenRouter, fake_slack: FakeSlackAPI, tmp_path: Path) -> None:
    settings = load_settings({
        "RANKBOT_DB": str(tmp_path / "rankbot.db"), "OPENROUTER_BASE_URL":
        fake_openrouter.base_url, "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake_slack.base_url})
    async with open_app(settings) as app:  # the Slack client as rankbot wires it
        with app.store:
            subscription = app.store.channels.subscribe(C1, "alerts", OCT_8)
        with app.store:
            app.store.outbox.enqueue(subscription, "test:1", kind="alert", card=Card("Hello"),
                              changes=[], at=OCT_8)
        fake_slack.drop_answers = 1  # Slack takes the post; the connection drops before its answer
        clock, waits = Clock(OCT_8), NoWait()
        work = Courier(app.store, app.notifiers, clock, Pacer(waits.clock, waits.sleep))
        assert (await work.deliver_due()).deferred == 1  # no quiet retry inside the SDK
        clock.advance(hours=1)
        assert (await work.deliver_due()).sent == 1
    assert len(fake_slack.messages("C1")) == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # found by its key, not resent
    assert len(fake_slack.calls_to("conversations.history")) == 1


async def test_429_is_retried_after_retry_after_and_each_message_arrives_once(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    with october:
        subscription = october.channels.subscribe(C1, "alerts", OCT_8)
    for n in (1, 2):
        with october:
            october.outbox.enqueue(subscription, f"test:{n}", kind="alert",
                                   card=Card(f"Message {n}"), changes=[], at=OCT_8)
    fake_slack.then("chat.postMessage", Reply.json({"ok": False, "error": "ratelimited"}, 429,
                                                   **{"Retry-After": "2"}))
    clock = Clock(OCT_8)
    work = courier(october, slack_client, clock)
    first = await work.deliver_due()
    assert (first.sent, first.deferred) == (0, 1)
    clock.advance(seconds=1)
    assert (await work.deliver_due()).sent == 0  # message 2 waits behind message 1
    clock.advance(seconds=1)
    assert (await work.deliver_due()).sent == 2
    texts = [c["text"] for c in fake_slack.calls_to("chat.postMessage")]
    assert texts == ["Message 1", "Message 1", "Message 2"]  # the 429, then each once


async def test_channel_not_found_pauses_only_that_channel(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    for ref in (C1, C2):
        with october:
            subscription = october.channels.subscribe(ref, "alerts", OCT_8)
        with october:
            october.outbox.enqueue(subscription, "test:1", kind="alert",
                                   card=Card(f"For {ref.channel}"), changes=[], at=OCT_8)

    fake_slack.then("chat.postMessage",
                    Reply.json({"ok": True, "ts": "1"}),
                    Reply.json({"ok": False, "error": "channel_not_found"}))
    report = await courier(october, slack_client, Clock(OCT_8)).deliver_due()
    assert report.sent == 1 and len(report.paused) == 1
    posts = fake_slack.calls_to("chat.postMessage")
    paused_channel = posts[1]["channel"]
    paused = october.channels.subscription(ChannelRef("slack", "T1", paused_channel))
    assert paused is not None and paused.paused == "channel_not_found"
    other = october.channels.subscription(ChannelRef("slack", "T1", posts[0]["channel"]))
    assert other is not None and other.paused is None


async def test_a_revoked_token_stops_slack_delivery_without_a_retry_loop(
        october: UnitOfWork, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI,
        caplog: pytest.LogCaptureFixture) -> None:
    with october:
        subscription = october.channels.subscribe(C1, "alerts", OCT_8)
    with october:
        october.outbox.enqueue(subscription, "test:1", kind="alert", card=Card("Hello"), changes=[],
                        at=OCT_8)
    fake_slack.then("chat.postMessage", Reply.json({"ok": False, "error": "token_revoked"}))
    clock = Clock(OCT_8)
    work = courier(october, slack_client, clock)
    await work.deliver_due()
    clock.advance(minutes=10)
    await work.deliver_due()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert work.down == {"slack": "token_revoked"}
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "slack refused our credentials (token_revoked): nothing more is sent there until "
        "rankbot restarts with a valid token"]
    assert "xoxb-test-token" not in caplog.text
    assert october.outbox.queued(subscription) == 1  # kept for when the token is fixed


async def test_socket_mode_answers_a_slash_command_over_the_websocket(
        slack_client: AsyncWebClient, october: UnitOfWork, fake_slack: FakeSlackAPI) -> None:
    acks: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def link(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        await socket.send_json({
            "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"team_id": "T1", "channel_id": "C1", "user_id": "UMEMBER",
                        "command": "/rank", "text": "qwen", "api_app_id": "A1",
                        "response_url": fake_slack.base_url + "hooks/socket",
                        "trigger_id": "t"}})
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await acks.put(json.loads(message.data))
        return socket

    wsapp = web.Application()
    wsapp.router.add_get("/link", link)
    runner = web.AppRunner(wsapp)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake_slack.socket_url = f"ws://{host}:{port}/link"
    warm(october)
    handler = await connect_socket_mode(slack_app(october, slack_client), "xapp-test-token")
    try:
        ack = await asyncio.wait_for(acks.get(), timeout=10)
    finally:
        await handler.close_async()
        await runner.cleanup()
    assert ack["envelope_id"] == "env-1"
    payload = ack["payload"]
    assert isinstance(payload, dict) and payload["response_type"] == "in_channel"
    assert payload["blocks"] == blocks(answer("/rank", "qwen", october.snapshots, OCT_8).card)
    chart = await answered(fake_slack, "hooks/socket")  # it follows, as over HTTP
    assert chart["blocks"][0]["slack_file"]["id"] in fake_slack.uploads
    (opened,) = [c for c in fake_slack.calls if c.method == "apps.connections.open"]
    assert opened.token == "xapp-test-token"


async def test_socket_mode_is_supervised_and_a_refused_token_stops_it(
        slack_client: AsyncWebClient, october: UnitOfWork, fake_slack: FakeSlackAPI,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(slack_chat, "SOCKET_CHECK", 0.05)
    connected = asyncio.Event()

    async def link(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        connected.set()
        async for _ in socket:
            pass
        return socket

    wsapp = web.Application()
    wsapp.router.add_get("/link", link)
    runner = web.AppRunner(wsapp)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    fake_slack.socket_url = f"ws://{host}:{port}/link"
    app = slack_app(october, slack_client)
    states: list[str] = []

    async def record(state: ConnectionState) -> None:
        states.append(state.state)

    # Slack fails to open the connection once (a 500): the supervisor tries again, and it is up.
    fake_slack.then("apps.connections.open", Reply.json({"ok": False, "error": "fatal_error"},
                                                        500))
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    link_state = Connection("slack", record, lambda: OCT_8)
    supervisor = asyncio.create_task(supervise(
        link_state, socket_mode(app, "xapp-test-token", link_state), sleep=no_wait))
    await asyncio.wait_for(connected.wait(), 10)
    while "connected" not in states:
        await asyncio.sleep(0.05)
    supervisor.cancel()
    await asyncio.gather(supervisor, return_exceptions=True)
    assert states[:2] == ["down", "connected"] and len(waits) == 1

    # A refused app token: one clear error, and no retry loop.
    fake_slack.then("apps.connections.open", Reply.json({"ok": False, "error": "invalid_auth"}))
    refused = Connection("slack", record, lambda: OCT_8)
    waits.clear()
    await asyncio.wait_for(supervise(refused, socket_mode(app, "xapp-bad", refused),
                                     sleep=no_wait), 10)
    await runner.cleanup()
    assert waits == [] and refused.state.state == "refused"
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "Slack: SLACK_APP_TOKEN was refused (invalid_auth): give it a new app-level token with "
        "connections:write; Socket Mode is off until rankbot restarts"]


async def test_rankbot_run_serves_slack_http_mode_from_its_settings(
        tmp_path: Path, fake_slack: FakeSlackAPI, fake_openrouter: FakeOpenRouter) -> None:
    with socket.socket() as probe:  # a free port for the endpoint
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings({
        "RANKBOT_DB": str(tmp_path / "rankbot.db"), "OPENROUTER_BASE_URL":
        fake_openrouter.base_url, "SLACK_BOT_TOKEN": "xoxb-test-token",
        "SLACK_SIGNING_SECRET": SECRET, "RANKBOT_HTTP_PORT": str(port),
        "SLACK_API_URL": fake_slack.base_url})
    stop = asyncio.Event()
    async with open_app(settings) as app:
        assert set(app.notifiers) == {"console", "slack"}
        assert app.store.channels.subscription(CONSOLE) is None  # with Slack, the console is opt-in
        running = asyncio.create_task(run_until_stopped(app, stop))
        endpoint = Endpoint(f"http://127.0.0.1:{port}{PATH}", app.store)
        for _ in range(50):
            try:
                reply = await endpoint.command("/rank", "")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        stop.set()
        await running
    assert reply.status_code == 200
    assert reply.json()["text"] == ("/rank\nNo rankings yet: run `rankbot poll` once (or keep "
                                    "`rankbot run` going), then ask again.")


def test_block_kit_stays_within_slacks_limits_on_the_largest_cards() -> None:
    huge = fit(Card("T" * 400, tuple(f"line {i} & <stuff>" * 5 for i in range(2000)),
                    tuple(Field(f"field {i} <b>", "\n".join(["x & y > z"] * 200))
                          for i in range(60)), "footer " * 100))
    rendered = blocks(huge)
    assert len(rendered) <= 50
    assert len(rendered[0]["text"]["text"]) <= 150
    sections = [b["text"]["text"] for b in rendered if b["type"] == "section"]
    assert sections and all(len(text) <= 3000 for text in sections)
    assert all("<" not in text and ">" not in text for text in sections)  # escaped
    assert blocks(Card("Status", (f"{channel_link('C123')} is paused",)))[1]["text"]["text"] == (
        "<#C123> is paused")  # our own channel links stay links
    assert blocks(Card("Status", ("<#C123> is paused",)))[1]["text"]["text"] == (
        "&lt;#C123&gt; is paused")  # anyone else's are text
