"""Discord's REST API played on loopback: enough for discord.py's own HTTP client to log in,
answer interactions (and follow them up), open direct messages, post and read messages, with
files, and sync commands, with every request recorded. Like Discord, it drops a message whose
enforced nonce it saw from the bot a short while ago."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from tests.fakes.loopback import LoopbackServer, Reply, Request

APP_ID = "999"
TOKEN = "OTk5.fake.token"  # base64("999") is the application id
BOT = {"id": APP_ID, "username": "rankbot", "discriminator": "0", "avatar": None,
       "global_name": None, "bot": True}


DISCORD_EPOCH_MS = 1_420_070_400_000
FOLLOW_UPS = "1"  # the channel follow-ups are kept in (the fake does not track where they go)


class FakeDiscordAPI:
    def __init__(self) -> None:
        self.nonce_window = 300.0  # seconds an enforced nonce is remembered ("a few minutes")
        self.answer_after = 0.0  # seconds a post is kept before it is answered (in flight)
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._nonces: dict[str, tuple[float, dict[str, Any]]] = {}
        self._ids = 0
        self._queued: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._reply)

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}/api/v10"

    def then(self, route: str, *replies: Reply) -> None:
        """The next requests to `route` ("POST /channels/123/messages") get these replies."""
        with self._lock:
            self._queued.setdefault(route, []).extend(replies)

    def bodies(self, method: str, pattern: str) -> list[Any]:
        """JSON bodies of the requests whose path (after /api/v10) matches `pattern` (of a
        multipart request, its `payload_json`)."""
        return [_payload(r) for r in self._requests(method, pattern)]

    def files(self, method: str, pattern: str) -> list[dict[str, bytes]]:
        """The files each of those requests uploaded, by file name."""
        return [_parts(r)[1] for r in self._requests(method, pattern)]

    def _requests(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self._server.requests
                if r.method == method and re.fullmatch(pattern, _route(r))]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The messages in a channel, oldest first."""
        return list(self._channels.get(channel, []))

    def _reply(self, request: Request) -> Reply:  # noqa: PLR0911 - a branch per route
        route = _route(request)
        with self._lock:
            queued = self._queued.get(f"{request.method} {route}")
            if queued:
                return queued.pop(0)
        if route in ("/gateway", "/gateway/bot"):  # a closed loopback port: never the internet
            return Reply.json({"url": "ws://127.0.0.1:9", "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
        if route == "/users/@me":
            return Reply.json(BOT)
        if route == "/oauth2/applications/@me":
            return Reply.json({"id": APP_ID, "name": "rankbot", "description": "", "icon": None,
                               "bot_public": True, "bot_require_code_grant": False,
                               "owner": BOT, "verify_key": "00", "flags": 0, "summary": ""})
        if match := re.fullmatch(r"/interactions/(\d+)/[^/]+/callback", route):
            return Reply.json({"interaction": {"id": match[1], "type": 2}})
        if re.fullmatch(rf"/webhooks/{APP_ID}/[^/]+", route):  # an interaction's follow-up
            return Reply.json(self._post(FOLLOW_UPS, _payload(request), request.at))
        if route == "/users/@me/channels" and request.method == "POST":
            return Reply.json(dm_channel(str(json.loads(request.body)["recipient_id"])))
        if match := re.fullmatch(r"/channels/(\d+)/messages", route):
            if request.method == "GET":
                return self._history(match[1], request.args())
            return replace(Reply.json(self._post(match[1], _payload(request), request.at)),
                           delay=self.answer_after)
        if request.method == "PUT" and route.endswith("/commands"):
            return Reply.json([{**c, "id": str(1000 + i), "application_id": APP_ID,
                                "version": "1"} for i, c in enumerate(json.loads(request.body))])
        return Reply.json({"message": "404: Not Found", "code": 0}, 404)

    def _post(self, channel: str, body: dict[str, Any], at: float) -> dict[str, Any]:
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        with self._lock:
            if nonce and (seen := self._nonces.get(nonce)) and at - seen[0] < self.nonce_window:
                return seen[1]  # Discord returns the first message and creates none
            self._ids += 1
            snowflake = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22 | self._ids
            message = {"id": str(snowflake), "channel_id": channel, "author": BOT,
                       "content": body.get("content") or "", "embeds": body.get("embeds", []),
                       "components": _components(body.get("components", [])),
                       "attachments": [{"id": str(snowflake + n), "filename": a["filename"],
                                        "size": 1, "url": "https://cdn.example/a",
                                        "proxy_url": "https://cdn.example/a"}
                                       for n, a in enumerate(body.get("attachments", []))],
                       "flags": body.get("flags", 0), "type": 0, "tts": False,
                       "timestamp": "2026-10-08T09:00:00+00:00", "edited_timestamp": None,
                       "mention_everyone": False, "mentions": [], "mention_roles": [],
                       "pinned": False, "application_id": APP_ID}
            self._channels.setdefault(channel, []).append(message)
            if nonce:
                self._nonces[nonce] = (at, message)
        return message

    def _history(self, channel: str, args: dict[str, Any]) -> Reply:
        after, limit = int(args.get("after") or 0), int(args.get("limit") or 50)
        newer = [m for m in self._channels.get(channel, []) if int(m["id"]) > after]
        return Reply.json(list(reversed(newer[:limit])))  # the oldest `limit`, newest first

    @contextmanager
    def running(self) -> Iterator[FakeDiscordAPI]:
        with self._server.running():
            yield self


def _route(request: Request) -> str:
    return request.path.removeprefix("/api/v10")


def _payload(request: Request) -> Any:
    """A request's JSON: its body, or a multipart body's `payload_json` (a message with files)."""
    if not request.body:
        return None
    if request.headers.get("Content-Type", "").startswith("multipart/form-data"):
        return _parts(request)[0]
    return json.loads(request.body)


def _parts(request: Request) -> tuple[Any, dict[str, bytes]]:
    """A multipart body as discord.py sends one: `payload_json`, then `files[n]`."""
    kind = request.headers.get("Content-Type", "")
    if not kind.startswith("multipart/form-data"):
        return (json.loads(request.body) if request.body else None), {}
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + request.body)
    payload, files = None, {}
    for part in parsed.iter_parts():  # type: ignore[attr-defined]
        body = part.get_payload(decode=True)
        if part.get_param("name", header="content-disposition") == "payload_json":
            payload = json.loads(body)
        else:
            files[part.get_filename()] = body
    return payload, files


def _components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord echoes them in a message: each with its id (1, 2, …)."""
    numbered, n = [], 0
    for row in rows:
        n += 1
        children = []
        for child in row.get("components", []):
            n += 1
            children.append({**child, "id": n})
        numbered.append({**row, "id": n - len(children), "components": children})
    return numbered


def dm_channel(user: str) -> dict[str, Any]:
    """A person's DM channel with the bot, as Discord returns it (the same one every time)."""
    return {"id": f"7{user}", "type": 1, "last_message_id": None, "flags": 0,
            "recipients": [person(user)]}


def person(user: str, name: str = "alice") -> dict[str, Any]:
    return {"id": user, "username": name, "discriminator": "0", "avatar": None,
            "global_name": name.title()}


def rate_limited(retry_after: float) -> Reply:
    """A 429 as Discord sends it (the Via header tells discord.py it is not a Cloudflare ban)."""
    return Reply.json({"message": "You are being rate limited.", "retry_after": retry_after,
                       "global": False}, 429, **{"Retry-After": str(retry_after), "Via":
                                                 "1.1 google", "X-RateLimit-Scope": "user"})


def interaction_payload(data: dict[str, Any], *, interaction_id: str = "9001",
                        token: str = "interaction-token", kind: int = 2,
                        guild: str | None = "111", channel: str = "222",
                        permissions: int = 3072, user: str = "333") -> dict[str, Any]:
    """An interaction exactly as Discord sends it over the gateway (`data`: the command, or
    the clicked component). `guild=None`: in the user's direct messages with the bot, where
    Discord sends `user` rather than `member`, and a DM channel."""
    payload: dict[str, Any] = {
        "id": interaction_id, "application_id": APP_ID, "type": kind, "token": token,
        "version": 1, "channel_id": channel, "locale": "en-US",
        "app_permissions": "3072", "entitlements": [],
        "attachment_size_limit": 10_485_760, "data": data}
    if guild is None:
        return {**payload, "authorizing_integration_owners": {"0": "0"}, "context": 1,
                "channel": {**dm_channel(user), "id": channel}, "user": person(user)}
    return {
        **payload, "guild_id": guild, "guild_locale": "en-US",
        "authorizing_integration_owners": {"0": guild}, "context": 0,
        "channel": {"id": channel, "type": 0, "guild_id": guild, "name": "models",
                    "position": 0, "permission_overwrites": [], "nsfw": False,
                    "parent_id": None},
        "member": {"user": person(user), "roles": [],
                   "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False,
                   "mute": False, "flags": 0, "permissions": str(permissions)},
    }


def component_payload(message: dict[str, Any], custom_id: str, *, values: list[str] | None = None,
                      **where: Any) -> dict[str, Any]:
    """A click on a button of `message` (as the fake stored it), or a choice in one of its
    menus (`values`), exactly as Discord sends it: type 3 with the message it is on."""
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": 2}
    if values is not None:
        data = {**data, "component_type": 3, "values": values}
    return {**interaction_payload(data, kind=3, channel=message["channel_id"], **where),
            "message": message}
