"""Discord's gateway played on loopback: enough of its protocol (HELLO, IDENTIFY → READY,
heartbeats, RESUME → RESUMED, dispatches) for the real discord.py client, in text frames.

It runs on its own thread and event loop; tests steer it with `dispatch`, `close` and read what
the client did from `ops` (every opcode received, in order) and `connections`. `received` hands
one event to a client that has no connection, through the same parsing.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import discord
from aiohttp import WSMsgType, web

BOT_USER = {"id": "999", "username": "rankbot", "discriminator": "0", "avatar": None,
            "bot": True, "global_name": None}


async def received(client: discord.Client, event: str, data: dict[str, Any]) -> None:
    """One gateway event as the client takes it off the wire, without a connection: its state
    parses the payload (`INTERACTION_CREATE`: the command tree, the view store, then the
    `on_interaction` event), and every task that starts is awaited."""
    before = asyncio.all_tasks()
    client._connection.parsers[event](data)
    while started := asyncio.all_tasks() - before - {asyncio.current_task()}:
        await asyncio.wait_for(asyncio.gather(*started), 10)
        before |= started


class FakeDiscordGateway:
    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.ops: list[int] = []  # opcodes the client sent, in order
        self.connections = 0
        self._socket: web.WebSocketResponse | None = None
        self._seq = 0
        self._loop = asyncio.new_event_loop()
        self._port = 0
        self._started = threading.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/"

    def identifies(self) -> int:
        return self.ops.count(2)

    def resumes(self) -> int:
        return self.ops.count(6)

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an event to the connected client."""
        self._call(self._send_dispatch(event, data))

    def close(self, code: int) -> None:
        """Close the client's connection with a gateway close code (4000: resume; 4004: a
        refused token)."""
        self._call(self._close(code))

    def _call(self, work: Any) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _send_dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._socket is not None, "no client connected"
        self._seq += 1
        await self._socket.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def _close(self, code: int) -> None:
        assert self._socket is not None, "no client connected"
        await self._socket.close(code=code)

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._socket = socket
        self.connections += 1
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            self.ops.append(payload["op"])
            if payload["op"] == 1:  # heartbeat
                await socket.send_str(json.dumps({"op": 11}))
            elif payload["op"] == 2:  # identify: a new session
                await self._send_dispatch("READY", {
                    "v": 10, "user": BOT_USER, "guilds": [], "session_id": f"s{self.connections}",
                    "resume_gateway_url": self.url, "application": {"id": self.app_id,
                                                                    "flags": 0}})
            elif payload["op"] == 6:  # resume
                await self._send_dispatch("RESUMED", {})
        return socket

    async def _serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/", self._link)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = runner.addresses[0][1]
        return runner

    @contextmanager
    def running(self) -> Iterator[FakeDiscordGateway]:
        runner_box: list[web.AppRunner] = []

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            runner_box.append(self._loop.run_until_complete(self._serve()))
            self._started.set()
            self._loop.run_forever()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert self._started.wait(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)
