"""OpenRouter played on loopback, serving canned replies per path under /api/v1.

Tests point the real httpx client at `base_url`, so requests, retries and timeouts are real.
The bodies below misbehave as a hostile or broken server would: slow, endless, or a gzip bomb.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

from tests.fakes.loopback import LoopbackServer, Reply, Request

PREFIX = "/api/v1"
MIB = 1 << 20
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # deflate, no name, no time
__all__ = ["FakeOpenRouter", "Reply", "dripping", "endless", "gzip_bomb", "gzip_endless"]


def dripping(every: float, count: int = 60) -> Callable[[], Iterator[bytes]]:
    """A body of `count` bytes, one every `every` seconds: each read is quick, the whole slow."""
    def drip() -> Iterator[bytes]:
        for _ in range(count):
            yield b" "
            time.sleep(every)
    return drip


def endless(cap: int = 1 << 30) -> Callable[[], Iterator[bytes]]:
    """A body that goes on until the client hangs up; the cap only keeps a client that never
    does (one without a size limit) from taking the test machine's memory with it."""
    def stream() -> Iterator[bytes]:
        return itertools.repeat(b"x" * 65536, cap // 65536)
    return stream


@cache
def _zeros_segment() -> tuple[bytes, bytes]:
    """1 MiB of zeros deflated and fully flushed (which resets zlib's history, so every MiB of
    zeros compresses to these same ~1 KB), and the end of the deflate stream."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = deflate.compress(bytes(MIB)) + deflate.flush(zlib.Z_FULL_FLUSH)
    return segment, deflate.flush()


@cache
def gzip_bomb(mib: int = 1024) -> bytes:
    """A valid gzip of `mib` MiB of zeros, about 1 KB per MiB: 1 GiB in about 1 MB."""
    segment, end = _zeros_segment()
    crc, zeros = 0, bytes(MIB)
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return GZIP_HEADER + segment * mib + end + struct.pack("<II", crc, (mib * MIB) % 2**32)


def gzip_endless() -> Iterator[bytes]:
    """A gzip stream of zeros that never ends (about 1,000 times larger inflated), until the
    client hangs up or 2 GiB have expanded."""
    segment, _ = _zeros_segment()
    yield GZIP_HEADER
    yield from itertools.repeat(segment * 64, 32)


class FakeOpenRouter:
    """A queue of replies per path is used in order and its last reply repeats. Unknown paths
    get 404. Every request is recorded, with its path relative to the API base."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._reply, host)

    @property
    def base_url(self) -> str:
        return f"{self._server.origin}{PREFIX}"

    @property
    def requests(self) -> list[Request]:
        return [Request(r.method, r.path.removeprefix(PREFIX).lstrip("/"), r.query, r.headers,
                        r.body) for r in self._server.requests]

    def serve(self, path: str, *replies: Reply | bytes) -> None:
        self._routes[path] = [r if isinstance(r, Reply) else Reply(body=r) for r in replies]

    def serve_endpoints(self, permaslug: str, *replies: Reply | bytes) -> str:
        """A model's providers at `models/{permaslug}/endpoints` (a capture, or a failure:
        `Reply(500)`, `Reply(401)`, `Reply(delay=…)`, an `endless()` stream); its path."""
        path = f"models/{permaslug}/endpoints"
        self.serve(path, *replies)
        return path

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def _reply(self, request: Request) -> Reply:
        path = request.path.removeprefix(PREFIX).lstrip("/")
        with self._lock:
            queue = self._routes.get(path)
            if not queue:
                return Reply(404, b'{"error":{"code":404,"message":"Not Found"}}')
            return queue.pop(0) if len(queue) > 1 else queue[0]

    @contextmanager
    def running(self) -> Iterator[FakeOpenRouter]:
        with self._server.running():
            yield self
