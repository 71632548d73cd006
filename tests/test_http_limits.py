"""The Slack endpoint's limits, in process and with short deadlines: refused requests are one
line without their body, slow clients are cut off, the oldest connection makes room at the cap,
and a flood of anything is a line a minute."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters import http_server
from rankbot.adapters.http_server import (
    ACCEPT_FAILED,
    FD_RESERVE,
    MAX_CONNECTIONS,
    Summarised,
    connection_cap,
    quiet_accept_errors,
    raise_open_files,
)
from rankbot.adapters.slack_chat import PATH
from rankbot.storage import UnitOfWork
from tests.fakes.slack_api import FakeSlackAPI, post_command
from tests.fakes.slack_bot import serving

pytestmark = pytest.mark.anyio
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DEADLINE = 1.0
CAP = 8
MARKER = "BODY-MARKER-7f3a"


@pytest.fixture
async def endpoint(october: UnitOfWork, fake_slack: FakeSlackAPI, slack_client: AsyncWebClient,
                   caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[str]:
    # slack_bolt sets its loggers to the root's level when the app is built: DEBUG first, so
    # that a body it logs would be seen here.
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(http_server, "DEADLINE", DEADLINE)
    monkeypatch.setattr(http_server, "connection_cap", lambda open_files: CAP)
    async with serving(october, fake_slack, slack_client, secret=SECRET) as bot:
        yield bot.url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def rank(url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    reply = await post_command(url, SECRET, "/rank", "qwen", user="U1")
    return reply, time.monotonic() - started


async def test_a_refused_request_is_one_short_line_and_never_its_body(
        endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    body = f"command=%2Frank&text={MARKER}\n2026-01-01 00:00:00 ERROR forged"
    async with httpx.AsyncClient() as http:
        for _ in range(20):
            reply = await http.post(endpoint, content=body, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Signature": "v0=bad", "X-Slack-Request-Timestamp": str(int(time.time()))})
            assert reply.status_code == 401
    logged = [r.getMessage() for r in caplog.records]
    assert not [m for m in logged if MARKER in m or "forged" in m]
    refused = [m for m in logged if "refused" in m]
    assert refused == [f"refused an unsigned or mis-signed request to {PATH} from 127.0.0.1"]


async def test_a_malformed_request_is_one_short_line_and_never_its_bytes(
        endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(endpoint))
        writer.write(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nNo colon {MARKER}\r\n\r\n".encode())
        assert (await reader.read()).split(b" ")[1] == b"400"
        writer.close()
    logged = [(r.getMessage(), r.exc_text or "", r.exc_info) for r in caplog.records]
    assert not [m for m in logged if MARKER in m[0] + m[1] + str(m[2])]
    assert warnings(caplog) == ["refused a malformed request from 127.0.0.1 (BadHttpMessage)"]


async def test_headers_that_come_slowly_are_cut_off_at_the_deadline(endpoint: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(endpoint))
    writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")

    async def trickle() -> None:  # a byte every 0.1 s: sending does not buy more time
        while not writer.is_closing():
            writer.write(b"X")
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    started = time.monotonic()
    try:
        assert await asyncio.wait_for(reader.read(), DEADLINE + 2) == b""
    finally:
        trickling.cancel()
        writer.close()
    assert DEADLINE - 0.2 < time.monotonic() - started < DEADLINE + 1


async def test_a_body_that_comes_slowly_gets_408_at_the_deadline(endpoint: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(endpoint))
    writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\ncommand=")
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), DEADLINE + 2)  # and then closed
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert DEADLINE - 0.2 < time.monotonic() - started < DEADLINE + 1


async def test_at_the_cap_a_new_connection_closes_the_oldest_and_slack_is_answered(
        endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", port_of(endpoint)) for _ in range(CAP)]
    for _, writer in idle:
        writer.write(b"POST /slack/events HTTP/1.1\r\n")
    await asyncio.sleep(0.1)
    reply, took = await rank(endpoint)
    assert reply.status_code == 200 and took < 0.5 * DEADLINE
    oldest, newest = idle[0][0], idle[-1][0]
    assert await asyncio.wait_for(oldest.read(), 0.2) == b""  # closed to make room
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(newest.read(), 0.05)  # still open
    for _, writer in idle:
        writer.close()
    shed = [r.getMessage() for r in caplog.records if "connections open" in r.getMessage()]
    assert shed == [f"{CAP} connections open, the most kept: closing the oldest to let a new "
                    "one in"]


async def test_a_flood_is_said_once_then_counted_once_a_minute(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    summary = Summarised("refused one from %s", "refused %d more in the last minute", every=0.1)
    for _ in range(50):
        summary.note("127.0.0.1")
    await asyncio.sleep(0.15)  # a "minute" with 49 more
    await asyncio.sleep(0.1)  # one with none: quiet again
    summary.note("127.0.0.2")
    assert warnings(caplog) == [
        "refused one from 127.0.0.1", "refused 49 more in the last minute",
        "refused one from 127.0.0.2"]


async def test_a_failed_accept_is_logged_once_not_in_a_loop(
        caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_exception_handler()
    quiet_accept_errors(loop)
    try:
        for _ in range(1000):  # Python 3.11 reports up to 128 per retry, a retry a second
            loop.call_exception_handler({"message": ACCEPT_FAILED, "exception": OSError(
                errno.EMFILE, "Too many open files")})
        loop.call_exception_handler({"message": "something else"})
    finally:
        loop.set_exception_handler(before)
    assert warnings(caplog) == [
        "cannot accept a connection: [Errno 24] Too many open files; retrying every second",
        "something else"]


def test_the_open_files_limit_is_raised_toward_what_the_endpoint_needs() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + FD_RESERVE
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the hard limit on open files here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        assert raise_open_files(wanted) == wanted
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (wanted, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize(("open_files", "cap"), [(1024, 768), (300, 150), (20_000, 4096)])
def test_the_connection_cap_leaves_room_for_everything_else(open_files: int, cap: int) -> None:
    assert connection_cap(open_files) == cap
