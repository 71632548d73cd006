"""rankbot's Slack endpoint, served on loopback for end-to-end tests: the real bolt app in HTTP
mode, posting through the real slack_sdk client to the fake Web API, and what it answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.slack_chat import PATH, SlackAdmins, SlackContext, build_app, serve_http
from rankbot.bot.ports import InPlace
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.slack_api import FakeSlackAPI, block_action, post_command, post_interaction

SECRET = "slack-test-signing-secret"
QWEN = "qwen/qwen3.8-27b"  # what `/watch qwen` finds in the fixtures
DEEPSEEK = "deepseek/deepseek-v4-flash"
ADMIN_AND_MEMBER = {"UADMIN": {"id": "UADMIN", "team_id": "T1", "is_admin": True},
                    "UMEMBER": {"id": "UMEMBER", "team_id": "T1", "is_admin": False}}


@dataclass
class Bot:
    """rankbot's Slack endpoint in HTTP mode, and what its clicks and commands got back."""

    url: str
    store: UnitOfWork
    fake: FakeSlackAPI
    secret: str = SECRET

    async def command(self, command: str, text: str, user: str = "UMEMBER") -> dict[str, Any]:
        reply = await post_command(self.url, self.secret, command, text, user=user)
        assert reply.status_code == 200
        body: dict[str, Any] = reply.json()
        return body

    async def click(self, action: dict[str, Any], user: str = "UMEMBER", channel: str = "C1"
                    ) -> dict[str, Any]:
        """Click; the answer its response_url got."""
        hook = f"hooks/click-{time.monotonic_ns()}"
        started = time.monotonic()
        reply = await post_interaction(self.url, self.secret, block_action(
            action, user=user, channel=channel, response_url=self.fake.base_url + hook))
        assert reply.status_code == 200 and reply.text == ""  # acknowledged, nothing else
        assert time.monotonic() - started < 3
        return await answered(self.fake, hook)

    async def click_home(self, action: dict[str, Any], user: str = "UMEMBER"
                         ) -> dict[str, Any]:
        """Click in the App Home; the view published after it."""
        before = len(self.fake.calls_to("views.publish"))
        reply = await post_interaction(self.url, self.secret, block_action(action, user=user,
                                                                           home=True))
        assert reply.status_code == 200
        for _ in range(200):
            if len(self.fake.calls_to("views.publish")) > before:
                return self.fake.homes[user]
            await asyncio.sleep(0.01)
        raise AssertionError("the Home tab was not published again")


async def answered(fake: FakeSlackAPI, hook: str, within: float = 10.0) -> dict[str, Any]:
    """What was posted to a response_url, waiting for it (a click's answer follows its
    acknowledgement)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if calls := fake.calls_to(hook):
            (call,) = calls
            return call
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing was posted to {hook}")


def slack_app(store: UnitOfWork, client: AsyncWebClient, secret: str | None = None,
              admins: frozenset[str] = frozenset()) -> AsyncApp:
    """rankbot's bolt app, answering from `store` at OCT_8; with no secret, as Socket Mode
    runs it."""
    return build_app(client, secret, SlackContext(InPlace(store), SlackAdmins(client, admins),
                                                  lambda: OCT_8))


@asynccontextmanager
async def serving(store: UnitOfWork, fake: FakeSlackAPI, client: AsyncWebClient,
                  admins: frozenset[str] = frozenset(), secret: str = SECRET
                  ) -> AsyncIterator[Bot]:
    """The app in HTTP mode on a free port."""
    runner = await serve_http(slack_app(store, client, secret, admins), 0, "127.0.0.1")
    host, port = runner.addresses[0][:2]
    try:
        yield Bot(f"http://{host}:{port}{PATH}", store, fake, secret)
    finally:
        await runner.cleanup()


def pressed(action: str, model: str, label: str = "") -> dict[str, Any]:
    """A button's part of a block_actions payload, as Slack sends it."""
    return {"type": "button", "action_id": f"rankbot:{action}:{model}", "value": model,
            "text": {"type": "plain_text", "text": label or action, "emoji": False}}
