"""The Slack Web API played on loopback: enough of auth.test, chat.postMessage,
conversations.history, conversations.open, users.info, views.publish, the three steps of a file
upload (files.getUploadURLExternal, the upload URL itself, files.completeUploadExternal) and
apps.connections.open for the real slack_sdk client, with every call recorded and every
accepted message kept in its channel. Also: requests signed as Slack signs them (slash
commands, block actions, events) and a Socket Mode websocket that sends envelopes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.loopback import LoopbackServer, Reply, Request

FILES = ("files.getUploadURLExternal", "files.completeUploadExternal")
# A response_url no one answers, on this machine (the discard port refuses at once): for tests
# that do not look at what follows an acknowledgement.
UNHEARD = "http://127.0.0.1:9/hooks/unheard"


def direct_message(user: str) -> str:
    """The channel id of a user's direct message with the bot, as the fake opens it."""
    return f"D{user}"


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
        self.undeliverable: dict[str, str] = {}  # user → conversations.open's error for them
        self.uploads: dict[str, bytes] = {}  # file id → the bytes posted to its upload URL
        self.shared: dict[str, Any] = {}  # file id → where completeUploadExternal shared it
        self.homes: dict[str, dict[str, Any]] = {}  # user → the Home tab view last published
        # Seconds Slack takes to process an upload after completeUploadExternal answered: till
        # then an image block naming the file is refused (invalid_blocks), as real Slack does.
        self.processing = 0.0
        self._ready: dict[str, float] = {}  # file id → when it can be shown
        self._files = 0
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
                for r in self._server.requests if r.path.startswith("/api/")]

    def arrived(self, method: str) -> list[float]:
        """When each call to `method` arrived (time.monotonic)."""
        return [r.at for r in self._server.requests if r.path == f"/api/{method}"]

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
        if request.path.startswith("/upload/"):  # a file's bytes, as files.slack.com takes them
            return self._upload(request)
        method = request.path.removeprefix("/api/")
        with self._lock:
            queued = self._queued.get(method)
            if queued:
                return queued.pop(0)
        args = request.args()
        if method in FILES:
            return self._file_step(method, args)
        if method == "auth.test":
            return Reply.json({"ok": True, "team_id": self.team, "user_id": "UBOT",
                               "bot_id": "BBOT"})
        if method == "chat.postMessage":
            return self._unready_files(args) or self._post(request.at, args)
        if method == "conversations.history":
            return self._history(args)
        if method == "users.info":
            user = self.users.get(args.get("user", ""))
            return Reply.json({"ok": True, "user": user} if user else
                              {"ok": False, "error": "user_not_found"})
        if method.startswith("hooks/"):  # a slash command's response_url
            refused = self._unready_files(args)
            return replace(refused, status=404) if refused else Reply(200, b"ok")
        if method == "apps.connections.open":
            return Reply.json({"ok": True, "url": self.socket_url})
        if method == "conversations.open":
            return self._open(args)
        if method == "views.publish":
            view = json.loads(args["view"]) if isinstance(args["view"], str) else args["view"]
            self.homes[str(args.get("user_id"))] = view
            return Reply.json({"ok": True, "view": {"id": "VHOME", **view}})
        return Reply.json({"ok": False, "error": "unknown_method"}, 404)

    def _open(self, args: dict[str, Any]) -> Reply:
        user = str(args.get("users"))
        if user in self.undeliverable:
            return Reply.json({"ok": False, "error": self.undeliverable[user]})
        return Reply.json({"ok": True, "channel": {"id": direct_message(user)}})

    def _file_step(self, method: str, args: dict[str, Any]) -> Reply:
        if method == "files.getUploadURLExternal":
            with self._lock:
                self._files += 1
                file_id = f"F{self._files:09d}"
            return Reply.json({"ok": True, "file_id": file_id,
                               "upload_url": f"{self._server.origin}/upload/{file_id}"})
        files = json.loads(args["files"])
        if any(f["id"] not in self.uploads for f in files):
            return Reply.json({"ok": False, "error": "file_not_found"})
        for f in files:
            self.shared[f["id"]] = args.get("channel_id") or args.get("channels")
            self._ready[f["id"]] = time.monotonic() + self.processing
        return Reply.json({"ok": True, "files": [
            {"id": f["id"], "title": f.get("title"), "mimetype": "image/png",
             "size": len(self.uploads[f["id"]])} for f in files]})

    def _unready_files(self, args: dict[str, Any]) -> Reply | None:
        """Slack's refusal of a message whose image block names a file it cannot show (yet)."""
        blocks = args.get("blocks") or []
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        for n, block in enumerate(blocks):
            file_id = (block.get("slack_file") or {}).get("id") if block.get("type") == \
                "image" else None
            if file_id is not None and self._ready.get(file_id, float("inf")) > time.monotonic():
                return Reply.json({"ok": False, "error": "invalid_blocks", "errors": [
                    f"invalid slack file [json-pointer:/blocks/{n}/slack_file]"]})
        return None

    def _upload(self, request: Request) -> Reply:
        file_id = request.path.removeprefix("/upload/")
        with self._lock:
            queued = self._queued.get("upload")  # `then("upload", ...)`: slow, or refused
            reply = queued.pop(0) if queued else Reply(200, f"OK - {len(request.body)}".encode())
            if reply.status == 200:
                self.uploads[file_id] = request.body
        return reply

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
                       response_url: str = UNHEARD) -> httpx.Response:
    """POST a slash command exactly as Slack does: form-encoded and signed (`age` seconds ago)."""
    body = urlencode({
        "token": "legacy", "team_id": team, "team_domain": "acme", "channel_id": channel,
        "channel_name": "models", "user_id": user, "user_name": user.lower(),
        "command": command, "text": text, "api_app_id": "A1",
        "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": "1.2.3"})
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", **signed(secret, body, age=age)})


def signed(secret: str, body: str, *, age: int = 0) -> dict[str, str]:
    """The headers Slack signs a request with (`age` seconds ago)."""
    timestamp = str(int(time.time()) - age)
    return {"X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(
                timestamp=timestamp, body=body)}


async def post_interaction(url: str, secret: str, payload: dict[str, Any], *, age: int = 0
                           ) -> httpx.Response:
    """POST an interaction (a block action) exactly as Slack does in HTTP mode: a form with
    one field, `payload`, holding the JSON; signed."""
    body = urlencode({"payload": json.dumps(payload)})
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", **signed(secret, body, age=age)})


async def post_event(url: str, secret: str, event: dict[str, Any], *, team: str = "T1"
                     ) -> httpx.Response:
    """POST an Events API callback exactly as Slack does: JSON, signed."""
    body = json.dumps({"token": "legacy", "team_id": team, "api_app_id": "A1",
                       "event": event, "type": "event_callback", "event_id": "Ev1",
                       "event_time": int(time.time())})
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(url, content=body, headers={
            "Content-Type": "application/json", **signed(secret, body)})


def block_action(action: dict[str, Any], *, user: str, team: str = "T1",
                 channel: str | None = "C1", response_url: str | None = None,
                 home: bool = False) -> dict[str, Any]:
    """A block_actions payload as Slack sends one for a click on a message's button or menu
    (`channel` and `response_url`), or in the App Home (`home`: neither)."""
    payload: dict[str, Any] = {
        "type": "block_actions", "api_app_id": "A1", "token": "legacy", "trigger_id": "1.2.3",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team},
        "team": {"id": team, "domain": "acme"}, "enterprise": None,
        "is_enterprise_install": False, "state": {"values": {}},
        "actions": [{"block_id": "b1", "action_ts": f"{time.time():.6f}", **action}]}
    if home:
        payload |= {"container": {"type": "view", "view_id": "VHOME"},
                    "view": {"id": "VHOME", "type": "home", "blocks": []}}
    else:
        payload |= {"container": {"type": "message", "message_ts": "1.000001",
                                  "channel_id": channel, "is_ephemeral": False},
                    "channel": {"id": channel, "name": "models"},
                    "message": {"type": "message", "ts": "1.000001", "text": "", "blocks": []},
                    "response_url": response_url}
    return payload


@dataclass
class SocketLink:
    """Slack's Socket Mode websocket on loopback: says hello to each connection, sends what
    `send` is given as envelopes, and keeps the acknowledgements that come back."""

    acks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    url: str = ""
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1})
        self._sockets.append(socket)
        self._open.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await self.acks.put(json.loads(message.data))
        return socket

    async def send(self, envelope_id: str, kind: str, payload: dict[str, Any]) -> None:
        """One envelope (`slash_commands`, `interactive`, `events_api`), once a client is on."""
        await asyncio.wait_for(self._open.wait(), 10)
        await self._sockets[-1].send_json({"envelope_id": envelope_id, "type": kind,
                                           "accepts_response_payload": kind != "events_api",
                                           "payload": payload})

    async def ack(self, envelope_id: str) -> dict[str, Any]:
        while True:
            ack = await asyncio.wait_for(self.acks.get(), 10)
            if ack.get("envelope_id") == envelope_id:
                return ack

    @asynccontextmanager
    async def running(self, fake: FakeSlackAPI) -> AsyncIterator[SocketLink]:
        """Served on a free loopback port, and named by the fake's apps.connections.open."""
        app = web.Application()
        app.router.add_get("/link", self._link)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        self.url = fake.socket_url = f"ws://{host}:{port}/link"
        try:
            yield self
        finally:
            for socket in self._sockets:
                await socket.close()
            await runner.cleanup()
