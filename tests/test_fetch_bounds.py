"""Every fetch from OpenRouter is bounded: in time (one deadline per fetch, however slowly the
bytes come), in bytes (on the wire and once decompressed) and in where it goes (redirects stay
on the base URL's scheme, host and port). Each test points the real client, or the real
`rankbot poll`, at a loopback server that misbehaves that way."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from rankbot.adapters.openrouter import MB, OpenRouterClient, open_http, redirect_target
from rankbot.bot.config import ConfigError, load_settings
from rankbot.bot.faults import SourceFault
from tests.conftest import EXPORTS, catalog_bytes, rankings_csv, serve_export
from tests.fakes.openrouter import (
    FakeOpenRouter,
    Reply,
    dripping,
    endless,
    gzip_bomb,
    gzip_endless,
)

ROOT = Path(__file__).parents[1]
CATALOG = catalog_bytes("2026-07-13T144438Z")
LIMIT = 5 * MB
DEADLINE = 1.5  # seconds for a whole fetch in these tests (each read may take 5 s)
SLACK = 3.0  # loopback and a busy machine, on top of the deadline
MAX_RSS_MB = 200


@asynccontextmanager
async def bounded(fake: FakeOpenRouter) -> AsyncIterator[OpenRouterClient]:
    async with open_http(fake.base_url, httpx.Timeout(5.0, connect=1.0)) as http:
        yield OpenRouterClient(http, api_key="sk-or-test-key", fetch_timeout=DEADLINE,
                               max_bytes=LIMIT)


async def fault_of(fake: FakeOpenRouter) -> SourceFault:
    async with bounded(fake) as client:
        with pytest.raises(SourceFault) as caught:
            await client.fetch_catalog()
    assert "sk-or-test-key" not in str(caught.value)
    return caught.value


# Time: one deadline, whatever the server does.

@pytest.mark.anyio
async def test_a_dripping_body_ends_in_a_timeout_within_the_deadline(
        fake_openrouter: FakeOpenRouter) -> None:
    # A byte every 0.5 s: no read ever waits for 1 s, so only the deadline can end it.
    fake_openrouter.serve("models", Reply(stream=dripping(0.5, count=20)))
    started = time.monotonic()
    fault = await fault_of(fake_openrouter)
    assert time.monotonic() - started < DEADLINE + SLACK
    assert fault.kind == "timeout"
    assert str(fault) == ("fetching /models from OpenRouter took more than 1.5 s in all "
                          "(RANKBOT_FETCH_TIMEOUT), retries included")


@pytest.mark.anyio
async def test_one_deadline_covers_the_manifest_the_csv_and_the_fallback(
        fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve(f"{EXPORTS}/latest.manifest.json",
                          Reply(stream=dripping(0.5, count=20)))
    fake_openrouter.serve(f"{EXPORTS}/latest.csv", rankings_csv())
    started = time.monotonic()
    async with bounded(fake_openrouter) as client:
        with pytest.raises(SourceFault) as caught:
            await client.fetch_rankings()
    assert time.monotonic() - started < DEADLINE + SLACK
    assert caught.value.kind == "timeout" and "the rankings export" in str(caught.value)
    assert fake_openrouter.hits(f"{EXPORTS}/latest.csv") == 0  # no time was left for it


# Bytes: on the wire and once decompressed.

@pytest.mark.anyio
async def test_a_body_without_end_is_cut_off_as_too_large(
        fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(stream=endless()))
    fault = await fault_of(fake_openrouter)
    assert fault.kind == "too_large"
    assert str(fault) == ("OpenRouter's answer for /models ran past the 5 MB limit "
                          "(RANKBOT_MAX_RESPONSE_MB) and was cut off")


@pytest.mark.parametrize("reply", [
    Reply(body=gzip_bomb(), headers={"Content-Encoding": "gzip"}),  # 1 MB → 1 GiB
    Reply(stream=gzip_endless, headers={"Content-Encoding": "gzip"}),  # no end at all
], ids=["1GiB-bomb", "endless-bomb"])
@pytest.mark.anyio
async def test_a_gzip_bomb_is_cut_off_once_it_expands_past_the_limit(
        fake_openrouter: FakeOpenRouter, reply: Reply) -> None:
    fake_openrouter.serve("models", reply)
    fault = await fault_of(fake_openrouter)
    assert fault.kind == "too_large"
    assert "expands past the 5 MB limit (RANKBOT_MAX_RESPONSE_MB) once decompressed" in str(
        fault)


@pytest.mark.anyio
async def test_a_content_length_over_the_limit_is_refused_without_reading_the_body(
        fake_openrouter: FakeOpenRouter) -> None:
    # The body only drips: a client that read it would end in a timeout, not in this fault.
    fake_openrouter.serve("models", Reply(headers={"Content-Length": str(LIMIT + 1)},
                                          stream=dripping(0.5, count=20)))
    fault = await fault_of(fake_openrouter)
    assert fault.kind == "too_large"
    assert str(fault) == ("OpenRouter's answer for /models is 5,000,001 bytes, over the 5 MB "
                          "limit (RANKBOT_MAX_RESPONSE_MB), and was not read")


@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress), ("deflate", zlib.compress), ("", bytes)])
@pytest.mark.anyio
async def test_gzip_and_deflate_within_the_limit_are_decoded(
        fake_openrouter: FakeOpenRouter, encoding: str, compress: Any) -> None:
    fake_openrouter.serve("models", Reply(body=compress(CATALOG),
                                          headers={"Content-Encoding": encoding}))
    async with bounded(fake_openrouter) as client:
        assert await client.fetch_catalog() == CATALOG
    assert fake_openrouter.requests[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding, body, kind", [
    ("br", b"\x0b\x02\x80{}\x03", "http"),  # never asked for, so never decoded
    ("gzip", gzip.compress(CATALOG)[:-100], "unparsable"),  # cut short
    ("gzip", b"not gzip at all", "unparsable"),
])
@pytest.mark.anyio
async def test_an_encoding_not_asked_for_or_a_broken_one_is_a_fault(
        fake_openrouter: FakeOpenRouter, encoding: str, body: bytes, kind: str) -> None:
    fake_openrouter.serve("models", Reply(body=body, headers={"Content-Encoding": encoding}))
    assert (await fault_of(fake_openrouter)).kind == kind


# Where: redirects only on the base URL's scheme, host and port.

@pytest.fixture
def elsewhere(request: pytest.FixtureRequest) -> Iterator[FakeOpenRouter]:
    """Another server serving a good catalog: on 127.0.0.2 (another host) or on another port
    of 127.0.0.1."""
    with FakeOpenRouter(request.param).running() as other:
        other.serve("models", CATALOG)
        yield other


@pytest.mark.parametrize("elsewhere", ["127.0.0.2", "127.0.0.1"], indirect=True,
                         ids=["another-host", "another-port"])
@pytest.mark.anyio
async def test_a_redirect_to_another_host_is_refused_and_never_followed(
        fake_openrouter: FakeOpenRouter, elsewhere: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(302, headers={
        "Location": f"{elsewhere.base_url}/models"}))
    fault = await fault_of(fake_openrouter)
    assert fault.kind == "http"
    assert str(fault) == (f"refused OpenRouter's redirect of /models to another host "
                          f"({elsewhere.base_url.removesuffix('/api/v1')})")
    assert elsewhere.requests == []


@pytest.mark.anyio
async def test_a_redirect_within_the_base_host_is_followed(
        fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(301, headers={"Location": "models-moved?v=2"}))
    fake_openrouter.serve("models-moved", Reply(
        307, headers={"Location": f"{fake_openrouter.base_url}/models-final"}))
    fake_openrouter.serve("models-final", CATALOG)
    async with bounded(fake_openrouter) as client:
        assert await client.fetch_catalog() == CATALOG
    assert [r.path for r in fake_openrouter.requests] == [
        "models", "models-moved", "models-final"]
    assert fake_openrouter.requests[1].query == {"v": ["2"]}


@pytest.mark.anyio
async def test_redirects_stop_after_five_hops(fake_openrouter: FakeOpenRouter) -> None:
    fake_openrouter.serve("models", Reply(302, headers={"Location": "models"}))
    fault = await fault_of(fake_openrouter)
    assert (fault.kind, str(fault)) == ("http", "OpenRouter redirected /models more than 5 times")
    assert fake_openrouter.hits("models") == 6


@pytest.mark.parametrize("location", [
    "http://openrouter.ai/api/v1/models",  # https → http
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://openrouter.ai:8443/api/v1/models",  # another port
    "//openrouter.ai.evil.example/api/v1/models",  # another host, scheme-relative
    "https://user@169.254.169.254/",
])
def test_redirects_away_from_the_base_are_refused_by_their_url_alone(location: str) -> None:
    base = httpx.URL("https://openrouter.ai/api/v1/")
    with pytest.raises(SourceFault, match=r"^refused OpenRouter's redirect of /models to "
                                          r"another host \(.+\)$"):
        redirect_target(base, base.join("models"), location, "models")


@pytest.mark.parametrize("location, expected", [
    ("https://openrouter.ai:443/api/v1/models2", "https://openrouter.ai:443/api/v1/models2"),
    ("/api/v1/models2", "https://openrouter.ai/api/v1/models2"),
    ("models2", "https://openrouter.ai/api/v1/models2"),
    ("HTTPS://OpenRouter.AI/x", "https://openrouter.ai/x"),
])
def test_redirects_on_the_base_are_followed(location: str, expected: str) -> None:
    base = httpx.URL("https://openrouter.ai/api/v1/")
    assert redirect_target(base, base.join("models"), location, "models") == expected


# Memory: the real `rankbot poll`, measured.

# A forked child's peak RSS starts at its parent's (the mm it shares under vfork until exec),
# so pytest's own size would show up in RUSAGE_CHILDREN; a small Python in between, whose only
# child is `rankbot poll`, reports that child's peak alone.
MEASURED = ("import resource, subprocess, sys; "
            "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")


def poll_measured(tmp_path: Path, base_url: str, **env: str) -> tuple[int, str, float]:
    """Run `rankbot poll` against `base_url`: (exit code, stderr, peak RSS in MB)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("RANKBOT_", "OPENROUTER_", "SLACK_", "DISCORD_"))}
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, sys.executable, "-m", "rankbot.shell.cli", "poll"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        env={**clean, "OPENROUTER_BASE_URL": base_url,
             "RANKBOT_DB": str(tmp_path / "rankbot.db"),
             "RANKBOT_LOG_FILE": str(tmp_path / "rankbot.log"), "RANKBOT_LOG_LEVEL": "WARNING",
             "RANKBOT_FETCH_TIMEOUT": "20", **env})
    return done.returncode, done.stderr, int(done.stdout) / 1024  # Linux: KiB


@pytest.mark.parametrize("reply", [
    Reply(stream=endless()),
    Reply(body=gzip_bomb(), headers={"Content-Encoding": "gzip"}),
], ids=["endless-body", "1GiB-gzip-bomb"])
@pytest.mark.parametrize("limit_mb", ["5", ""], ids=["5MB", "default-50MB"])
def test_rankbot_poll_stays_small_and_says_why_in_one_line(
        tmp_path: Path, fake_openrouter: FakeOpenRouter, reply: Reply, limit_mb: str) -> None:
    fake_openrouter.serve("models", reply)
    serve_export(fake_openrouter, rankings_csv())
    code, stderr, peak_mb = poll_measured(tmp_path, fake_openrouter.base_url,
                                          RANKBOT_MAX_RESPONSE_MB=limit_mb)
    assert peak_mb < MAX_RSS_MB
    assert code == 1
    assert "Traceback" not in stderr
    faults = [line for line in stderr.splitlines() if "fault" in line]
    assert len(faults) == 1 and "catalog fault (too_large)" in faults[0], stderr
    assert f"the {limit_mb or 50} MB limit" in faults[0]


# The setting.

def test_the_response_limit_is_50_mb_by_default_and_any_positive_number() -> None:
    assert load_settings({}).max_response_mb == 50
    assert load_settings({"RANKBOT_MAX_RESPONSE_MB": "2.5"}).max_response_mb == 2.5
    for bad in ("0", "-1", "lots", "inf", "nan"):
        with pytest.raises(ConfigError, match=r"^RANKBOT_MAX_RESPONSE_MB must be a positive"):
            load_settings({"RANKBOT_MAX_RESPONSE_MB": bad})
