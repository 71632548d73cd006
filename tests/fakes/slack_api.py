"""The Slack Web API played on loopback: enough of auth.test, chat.postMessage,
conversations.history, users.info and apps.connections.open for the real slack_sdk client, with
every call recorded and every accepted message kept in its channel."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fakes.loopback import LoopbackServer, Reply, Request


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    token: str


class FakeSlackAPI:
    def __init__(self, team: str = "T1") -> None:
        self.team = team
        self.users: dict[str, dict[str, Any]] = {}
        self.socket_url = ""
        self.rate_limit_every = 0  # every Nth chat.postMessage gets a 429, for storms
        self.answer_after = 0.0  # seconds a post is kept before it is answered (in flight)
        self.drop_answers = 0  # the next N posts are kept, but their connections dropped
        self._posts = 0
        self._accepted: list[tuple[float, str]] = []
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._queued: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._reply)

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}/api/"

    @property
    def calls(self) -> list[Call]:
        return [Call(r.path.removeprefix("/api/"), r.args(),
                     r.headers.get("Authorization", "").removeprefix("Bearer "))
                for r in self._server.requests]

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def posted(self) -> list[tuple[float, str]]:
        """(arrival time, channel) of every chat.postMessage that was accepted."""
        return list(self._accepted)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages in a channel, as conversations.history returns them, oldest first."""
        return list(self._channels.get(channel, []))

    def then(self, method: str, *replies: Reply) -> None:
        """The next calls to `method` get these replies, in order, then the default again."""
        with self._lock:
            self._queued.setdefault(method, []).extend(replies)

    def _reply(self, request: Request) -> Reply:  # noqa: PLR0911 - a branch per method
        method = request.path.removeprefix("/api/")
        with self._lock:
            queued = self._queued.get(method)
            if queued:
                return queued.pop(0)
        args = request.args()
        if method == "auth.test":
            return Reply.json({"ok": True, "team_id": self.team, "user_id": "UBOT",
                               "bot_id": "BBOT"})
        if method == "chat.postMessage":
            return self._post(request.at, args)
        if method == "conversations.history":
            return self._history(args)
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            return Reply.json({"ok": True, "user": user} if user else
                              {"ok": False, "error": "user_not_found"})
        if method.startswith("hooks/"):  # a slash command's response_url
            return Reply(200, b"ok")
        if method == "apps.connections.open":
            return Reply.json({"ok": True, "url": self.socket_url})
        return Reply.json({"ok": False, "error": "unknown_method"}, 404)

    def _post(self, at: float, args: dict[str, Any]) -> Reply:
        channel = str(args.get("channel"))
        with self._lock:
            self._posts += 1
            if self.rate_limit_every and self._posts % self.rate_limit_every == 0:
                return Reply.json({"ok": False, "error": "ratelimited"}, 429,
                                  **{"Retry-After": "1"})
            self._accepted.append((at, channel))
            ts = f"{time.time() + self._posts * 1e-6:.6f}"  # unique, rising, like Slack's
            metadata = args.get("metadata")
            self._channels.setdefault(channel, []).append({
                "type": "message", "ts": ts, "bot_id": "BBOT", "text": args.get("text", ""),
                "metadata": json.loads(metadata) if isinstance(metadata, str) else metadata})
            drop, self.drop_answers = self.drop_answers > 0, max(0, self.drop_answers - 1)
        return replace(Reply.json({"ok": True, "channel": channel, "ts": ts}),
                       delay=self.answer_after, drop=drop)

    def _history(self, args: dict[str, Any]) -> Reply:
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata")).lower() in ("1", "true")
        found = [{k: v for k, v in m.items() if k != "metadata" or with_metadata}
                 for m in reversed(self._channels.get(str(args.get("channel")), []))
                 if float(m["ts"]) > oldest]
        return Reply.json({"ok": True, "messages": found[: int(args.get("limit") or 100)],
                           "has_more": False})

    @contextmanager
    def running(self) -> Iterator[FakeSlackAPI]:
        with self._server.running():
            yield self


async def post_command(url: str, secret: str, command: str, text: str, *, user: str,
                       channel: str = "C1", team: str = "T1", age: int = 0,
                       response_url: str = "https://hooks.slack.invalid/1") -> httpx.Response:
    """POST a slash command exactly as Slack does: form-encoded and signed (`age` seconds ago)."""
    body = urlencode({
        "token": "legacy", "team_id": team, "team_domain": "acme", "channel_id": channel,
        "channel_name": "models", "user_id": user, "user_name": user.lower(),
        "command": command, "text": text, "api_app_id": "A1",
        "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": "1.2.3"})
    timestamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})
