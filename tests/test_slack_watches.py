"""Personal watches on Slack, end to end on loopback: `/watch` and `/unwatch` as signed slash
commands, and a watcher's alerts in their direct message with rankbot (conversations.open),
through the real outbox; someone who cannot be messaged pauses their watches, and `/watch`
says so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.slack_blocks import blocks
from rankbot.adapters.slack_chat import SlackNotifier
from rankbot.bot.cards import Card
from rankbot.bot.channels import person_ref
from rankbot.bot.config import load_settings
from rankbot.bot.delivery import Courier, Pacer
from rankbot.bot.ports import DeliveryError
from rankbot.bot.status import delivery_lines
from rankbot.shell.bootstrap import health_facts
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8, Clock, NoWait
from tests.fakes.slack_api import FakeSlackAPI, direct_message
from tests.fakes.slack_bot import DEEPSEEK, QWEN, Bot

pytestmark = pytest.mark.anyio
ME = person_ref("slack", "T1", "UMEMBER")


def stop_button(model: str, label: str = "Stop watching") -> dict[str, object]:
    return {"type": "button", "text": {"type": "plain_text", "text": label, "emoji": False},
            "action_id": f"rankbot:unwatch:{model}", "value": model}


async def test_watch_list_and_unwatch_are_answered_to_the_person_alone(bot: Bot) -> None:
    watched = await bot.command("/watch", "qwen")
    assert watched["response_type"] == "ephemeral"
    assert watched["text"].startswith(f"/watch\nWatching Qwen: Qwen3.8 27B (`{QWEN}`)")
    assert watched["blocks"][-1] == {"type": "actions", "elements": [stop_button(QWEN)]}
    await bot.command("/watch", DEEPSEEK)
    mine = bot.store.channels.subscription(ME)
    assert mine is not None and mine.active and mine.ref == ME

    listed = await bot.command("/watch", "")
    assert listed["response_type"] == "ephemeral"
    assert listed["blocks"][0]["text"]["text"] == "You watch 2 of 20 models"
    assert listed["blocks"][-1] == {"type": "actions", "elements": [
        stop_button(QWEN, f"Stop watching {QWEN}"),
        stop_button(DEEPSEEK, f"Stop watching {DEEPSEEK}")]}

    stopped = await bot.command("/unwatch", "qwen")
    assert stopped["response_type"] == "ephemeral"
    assert stopped["text"] == f"/unwatch\nStopped watching `{QWEN}`."
    assert (await bot.command("/watch", "", user="UOTHER"))["text"].startswith(
        "/watch\nYou watch no models.")  # watches are each person's own


def alert(store: UnitOfWork, key: str) -> None:
    subscription = store.channels.subscription(ME)
    assert subscription is not None
    with store:
        store.outbox.enqueue(subscription, key, kind="alert", card=Card(f"Alert {key}"),
                             changes=[{"kind": "price_changed", "model": QWEN}], at=OCT_8)


def courier(store: UnitOfWork, notifier: SlackNotifier, clock: Clock) -> Courier:
    waits = NoWait()
    return Courier(store, {"slack": notifier}, clock, Pacer(waits.clock, waits.sleep))


async def test_a_watchers_alerts_go_to_their_direct_message(
        bot: Bot, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI) -> None:
    await bot.command("/watch", "qwen")
    notifier, clock = SlackNotifier(slack_client), Clock(OCT_8)
    for key in ("1", "2"):
        alert(bot.store, key)
        assert (await courier(bot.store, notifier, clock).deliver_due()).sent == 1
        clock.advance(minutes=1)
    assert fake_slack.calls_to("conversations.open") == [{"users": "UMEMBER"}]  # once
    first, second = fake_slack.calls_to("chat.postMessage")
    assert first["channel"] == second["channel"] == direct_message("UMEMBER")
    # a person's alert: Details and Stop watching (there is no channel to mute)
    assert first["blocks"] == [*blocks(Card("Alert 1")), {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Details", "emoji": False},
         "action_id": f"rankbot:details:{QWEN}", "value": QWEN},
        stop_button(QWEN)]}]
    # a send in doubt is looked for in that direct message (`im:history`)
    began = datetime(2000, 1, 1, tzinfo=UTC)
    key = first["metadata"]["event_payload"]["key"]
    assert await notifier.find(ME, Card("Alert 1"), key, began)
    assert fake_slack.calls_to("conversations.history")[0]["channel"] == "DUMEMBER"


@pytest.mark.parametrize("error", ["cannot_dm_bot", "user_not_found", "user_disabled"])
async def test_someone_who_cannot_be_messaged_has_their_watches_paused_and_told(
        bot: Bot, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI, error: str) -> None:
    await bot.command("/watch", "qwen")
    fake_slack.undeliverable["UMEMBER"] = error
    with pytest.raises(DeliveryError) as refused:
        await SlackNotifier(slack_client).send(ME, Card("Hello"), (), "rb-x")
    assert (refused.value.kind, refused.value.reason) == ("permanent", error)

    alert(bot.store, "1")
    report = await courier(bot.store, SlackNotifier(slack_client), Clock(OCT_8)).deliver_due()
    assert report.sent == 0 and len(report.paused) == 1
    mine = bot.store.channels.subscription(ME)
    assert mine is not None and mine.paused == error
    assert fake_slack.calls_to("chat.postMessage") == []
    listed = await bot.command("/watch", "")
    assert f"could not be delivered ({error})" in listed["text"]


@pytest.mark.parametrize("error", ["missing_scope", "restricted_action"])
async def test_an_app_without_the_dm_scope_is_the_operators_to_mend_not_the_persons(
        bot: Bot, slack_client: AsyncWebClient, fake_slack: FakeSlackAPI, error: str) -> None:
    """Upgraded but not reinstalled: conversations.open lacks im:write for everyone."""
    await bot.command("/watch", "qwen")
    fake_slack.undeliverable["UMEMBER"] = error
    alert(bot.store, "1")
    report = await courier(bot.store, SlackNotifier(slack_client), Clock(OCT_8)).deliver_due()
    assert report.sent == 0 and len(report.paused) == 1
    mine = bot.store.channels.subscription(ME)
    assert mine is not None and mine.paused_for_operator and error in (mine.paused or "")
    listed = await bot.command("/watch", "")
    assert "nothing to do on your side" in listed["text"]
    facts = health_facts(load_settings({}), bot.store, OCT_8, lambda *_: None)
    assert facts.paused == 1  # health says so: the operator's to mend
    status = delivery_lines(bot.store.channels.subscriptions(), {}, [])
    assert any(f"paused {ME}: rankbot's app is not set up" in line for line in status)
