"""Buttons and personal watches through real processes: `rankbot poll` posts an alert with its
buttons to the loopback Slack, clicks come back signed, as Slack sends them, to `rankbot run`'s
endpoint (before a restart and after it), and a watched model's next change reaches the
person's direct messages once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from rankbot.bot.channels import ChannelRef
from rankbot.storage import UnitOfWork
from tests.conftest import catalog_bytes, rankings_csv, serve_export
from tests.e2e.harness import SIGNING_SECRET, World
from tests.fakes.slack_api import block_action, direct_message, post_interaction

OLD, NEW = "2026-07-20T194813Z", "2026-07-28T193833Z"
CHANNEL = "CALERTS"


def poll(world: World) -> None:
    polled = world.bot.cli("poll")
    assert polled.returncode == 0, polled.stderr


def controls(world: World) -> dict[str, dict[str, Any]]:
    """The buttons or menus under the last alert in CHANNEL, by action."""
    (*_, alert) = [c for c in world.slack.calls_to("chat.postMessage")
                   if c["channel"] == CHANNEL]
    blocks = json.loads(alert["blocks"]) if isinstance(alert["blocks"], str) else alert["blocks"]
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    return {e["action_id"].split(":")[1]: e for e in actions["elements"]}


def as_clicked(element: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    """The action Slack sends for a click on `element` (a menu: `model` chosen)."""
    if element["type"] == "button":
        return {k: element[k] for k in ("type", "action_id", "value", "text")}
    option = next(o for o in element["options"] if o["value"] == model)
    return {"type": "static_select", "action_id": element["action_id"],
            "selected_option": option, "placeholder": element["placeholder"]}


def click(world: World, action: dict[str, Any], user: str) -> dict[str, Any]:
    """Click as `user` in CHANNEL; what rankbot answered at the click's response_url."""
    hook = f"hooks/e2e-{time.monotonic_ns()}"
    payload = block_action(action, user=user, channel=CHANNEL,
                           response_url=world.slack.base_url + hook)
    reply = asyncio.run(post_interaction(world.bot.slack_url, SIGNING_SECRET, payload))
    assert reply.status_code == 200
    deadline = time.monotonic() + 20
    while not (answers := world.slack.calls_to(hook)):
        assert time.monotonic() < deadline, world.bot.log
        time.sleep(0.05)
    (answer,) = answers
    return answer


def said(answer: dict[str, Any]) -> str:
    return json.dumps(answer["blocks"], ensure_ascii=False)


def test_clicks_work_across_a_restart_and_a_watch_reaches_the_person_once(
        running: World) -> None:
    bot, openrouter, slack = running.bot, running.openrouter, running.slack
    serve_export(openrouter, rankings_csv())
    openrouter.serve("models", catalog_bytes(OLD))
    poll(running)  # the baseline
    store = UnitOfWork.open(bot.workdir / "rankbot.db")
    with store:
        store.channels.subscribe(ChannelRef("slack", "T1", CHANNEL), "alerts",
                                 store.snapshots.last_catalog_fetch().at)  # type: ignore[union-attr]
    openrouter.serve("models", catalog_bytes(NEW))
    poll(running)  # an alert, with its buttons
    menus = controls(running)
    assert set(menus) == {"details", "mute", "watch"}
    model = menus["watch"]["options"][0]["value"]

    bot.start()
    bot.wait_for("Slack HTTP mode: listening")
    watched = click(running, as_clicked(menus["watch"], model), "UMEMBER")
    assert f"`{model}`" in said(watched) and watched["response_type"] == "ephemeral"
    refused = click(running, as_clicked(menus["mute"], model), "UMEMBER")
    assert "Only workspace admins" in said(refused)
    muted = click(running, as_clicked(menus["mute"], model), "UADMIN")
    (undo,) = [e for b in muted["blocks"] if b["type"] == "actions" for e in b["elements"]]
    bot.stop()

    bot.start()  # the buttons of messages sent before the restart still work
    bot.wait_for("Slack HTTP mode: listening", times=2)
    assert "heard here again" in said(click(running, as_clicked(undo), "UADMIN"))
    audit = [(e["who"], e["setting"]) for e in store.channels.audit_log(
        ChannelRef("slack", "T1", CHANNEL))]
    assert audit == [("UADMIN", "ignore"), ("UADMIN", "ignore")]  # the mute and its undo

    moved = json.loads(catalog_bytes(NEW))
    entry = next(m for m in moved["data"] if m["id"] == model)
    entry["pricing"]["prompt"] = str(float(entry["pricing"]["prompt"] or 0) * 2 + 1e-6)
    openrouter.serve("models", json.dumps(moved).encode())
    poll(running)
    poll(running)  # the same catalog again: nothing more
    bot.stop()
    assert [c["users"] for c in slack.calls_to("conversations.open")] == ["UMEMBER"]
    assert len(slack.messages(direct_message("UMEMBER"))) == 1
    (dm,) = [c for c in slack.calls_to("chat.postMessage")
             if c["channel"] == direct_message("UMEMBER")]
    blocks = json.loads(dm["blocks"]) if isinstance(dm["blocks"], str) else dm["blocks"]
    assert model in json.dumps(blocks, ensure_ascii=False)
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == [
        f"rankbot:details:{model}", f"rankbot:unwatch:{model}"]  # a person's own buttons
    store.close()
