from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from rankbot.adapters.discord_chat import DiscordContext, build_tree, intents, use_api
from rankbot.adapters.openrouter import OpenRouterClient, open_http
from rankbot.bot import config
from rankbot.bot.cards import Card
from rankbot.bot.channels import ChannelRef
from rankbot.bot.charts import Series
from rankbot.bot.history import import_snapshot
from rankbot.bot.ports import DeliveryError, InPlace
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.fakes.clock import OCT_8
from tests.fakes.discord_api import TOKEN, FakeDiscordAPI
from tests.fakes.memory import MemoryWork
from tests.fakes.openrouter import FakeOpenRouter
from tests.fakes.slack_api import FakeSlackAPI
from tests.fakes.slack_bot import Bot, serving

FIXTURES = Path(__file__).parent / "fixtures" / "openrouter"
RANKINGS_CSV = FIXTURES / "rankings" / "exports-sample-2026-10-08.csv"
MANIFEST = FIXTURES / "rankings" / "exports-sample-2026-10-08.manifest.json"
EXPORTS = "datasets/exports/rankings-daily"


def catalog_bytes(stamp: str) -> bytes:
    """A real `/models` body from tests/fixtures, by its fetch time, e.g. 2026-07-20T194813Z."""
    return gzip.decompress((FIXTURES / "models" / f"{stamp}.json.gz").read_bytes())


def raw_models(stamp: str) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in json.loads(catalog_bytes(stamp))["data"]}


PriceMove = tuple[str, str, Decimal, Decimal]
PER_UNIT = ("request", "web_search")  # USD per call or search, not per token


def default_price_field(field: str) -> bool:
    """The prices a channel hears by default: input, output, cache read and write (5 min and
    1 h), and every long-context tier."""
    return (field in ("prompt", "completion", "input_cache_read") or ">" in field
            or field.startswith("input_cache_write"))


def published_prices(pricing: dict[str, Any]) -> dict[str, Decimal]:
    """Independently of bot/: every price of a raw `pricing` object by name, USD per 1M tokens
    (per unit for PER_UNIT), tiers as `prompt>200k` or `prompt@10:00-01:00`."""
    prices: dict[str, Decimal] = {}
    for key, value in pricing.items():
        if key == "overrides":
            for tier in value:
                if "min_prompt_tokens" in tier:
                    label = f">{tier['min_prompt_tokens'] // 1000}k"
                else:
                    start, end = tier["utc_start"], tier["utc_end"]
                    label = f"@{start // 100:02}:{start % 100:02}-{end // 100:02}:{end % 100:02}"
                prices |= {f"{name}{label}": price for name, price in published_prices(
                    {k: v for k, v in tier.items() if isinstance(v, str)}).items()}
        elif key != "discount" and value != "-1":
            prices[key] = Decimal(value) * (1 if key in PER_UNIT else 10**6)
    return prices


def expected_price_moves(old_stamp: str, new_stamp: str, pct: int = 10,
                         fields: Callable[[str], bool] = default_price_field
                         ) -> tuple[set[PriceMove], set[str], set[str]]:
    """Independently of bot/: (price moves of at least `pct`%, went free, went paid) between
    two real catalogs, straight from their JSON: every price both publish whose name passes
    `fields` (by default, what a default channel hears)."""
    return price_moves(raw_models(old_stamp), raw_models(new_stamp), pct, fields)


def price_moves(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], pct: int = 10,
                fields: Callable[[str], bool] = default_price_field
                ) -> tuple[set[PriceMove], set[str], set[str]]:
    moves: set[PriceMove] = set()
    went_free, went_paid = set(), set()
    for model_id in old.keys() & new.keys():
        before, after = old[model_id]["pricing"], new[model_id]["pricing"]
        if model_id.startswith("~") or "-1" in (before["prompt"], after["prompt"]):
            continue
        was_free = Decimal(before["prompt"]) == Decimal(before["completion"]) == 0
        is_free = Decimal(after["prompt"]) == Decimal(after["completion"]) == 0
        if was_free != is_free:
            (went_free if is_free else went_paid).add(model_id)
            continue
        a_prices, b_prices = published_prices(before), published_prices(after)
        for name in a_prices.keys() & b_prices.keys():
            a, b = a_prices[name], b_prices[name]
            if fields(name) and a != b and (a == 0 or abs(b - a) / a * 100 >= pct):
                moves.add((model_id, name, a, b))
    return moves, went_free, went_paid


def serve_export(fake: FakeOpenRouter, body: bytes, sha256: str | None = None) -> None:
    """Serve a rankings CSV as the keyless export: the real manifest, naming `body`'s sha256
    (or the one given), and the dated file it points to."""
    manifest = json.loads(MANIFEST.read_text())
    manifest["files"]["csv"]["sha256"] = sha256 or hashlib.sha256(body).hexdigest()
    fake.serve(f"{EXPORTS}/latest.manifest.json", json.dumps(manifest).encode())
    fake.serve(f"{EXPORTS}/2026-10-08.csv", body)


def rankings_csv(*days: str) -> bytes:
    """The real export excerpt, optionally cut down to some of its days (header kept)."""
    lines = RANKINGS_CSV.read_bytes().splitlines(keepends=True)
    return b"".join(lines[:1] + [ln for ln in lines[1:] if not days or ln[:10].decode() in days])


EXPORT_AT = datetime(2026, 10, 8, 1, 46, tzinfo=UTC)


def load(store: UnitOfWork, *stamps: str, rankings: bool = True) -> UnitOfWork:
    for stamp in stamps:
        at = datetime.strptime(stamp, "%Y-%m-%dT%H%M%SZ").replace(tzinfo=UTC)
        import_snapshot(store, f"{stamp}.json", catalog_bytes(stamp), at, DEFAULT_RULES)
    if rankings:
        import_snapshot(store, RANKINGS_CSV.name, RANKINGS_CSV.read_bytes(), EXPORT_AT,
                        DEFAULT_RULES)
    return store


@pytest.fixture
def october() -> Iterator[UnitOfWork]:
    """A fresh database with the newest catalog and the real rankings export."""
    store = load(UnitOfWork.open(":memory:"), "2026-07-14T025033Z", "2026-08-22T183539Z")
    yield store
    store.close()


@dataclass
class RecordingNotifier:
    """A Notifier that keeps what it was asked to send, and can fail as a platform would: each
    queued error is raised by one send, in order."""

    sent: list[tuple[ChannelRef, Card, tuple[dict[str, Any], ...]]] = field(default_factory=list)
    errors: list[DeliveryError] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # of what was sent, in order
    looked_for: list[tuple[str, datetime]] = field(default_factory=list)
    charts: list[Series | None] = field(default_factory=list)  # of what was sent, in order
    prepared: list[Series] = field(default_factory=list)  # charts readied before their sends

    async def send(self, ref: ChannelRef, card: Card, changes: tuple[dict[str, Any], ...],
                   key: str, chart: Series | None = None) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((ref, card, changes))
        self.keys.append(key)
        self.charts.append(chart)

    async def prepare(self, chart: Series) -> None:
        self.prepared.append(chart)

    async def find(self, ref: ChannelRef, card: Card, key: str, since: datetime) -> bool:
        self.looked_for.append((key, since))
        return key in self.keys

    @property
    def cards(self) -> list[Card]:
        return [card for _, card, _ in self.sent]

    def to(self, ref: ChannelRef) -> list[Card]:
        return [card for where, card, _ in self.sent if where == ref]


@pytest.fixture(autouse=True)
def no_provider_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `rankbot poll` in these tests would otherwise fetch the providers of the top 20
    models, a second apart, from fakes that do not serve them: off by default here (tests
    that clear the environment too); RANKBOT_PROVIDERS_MAX turns it on."""
    monkeypatch.setitem(config.DEFAULTS, "RANKBOT_PROVIDERS_MAX", "0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_openrouter() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter().running() as fake:
        yield fake


@pytest.fixture(params=["memory", "sqlite"])
def work(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A unit of work for a core test: the in-memory fake and SQLite's, one run each, so that
    the fake cannot drift from what it stands in for."""
    if request.param == "memory":
        yield MemoryWork()
        return
    store = UnitOfWork.open(":memory:")
    yield store
    store.close()


@pytest.fixture
def store() -> Iterator[UnitOfWork]:
    repo = UnitOfWork.open(":memory:")
    yield repo
    repo.close()


@dataclass
class Sleeps:
    """Stands in for asyncio.sleep so retry tests record waits instead of taking them."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def client(fake_openrouter: FakeOpenRouter, sleeps: Sleeps) -> AsyncIterator[
        OpenRouterClient]:
    timeout = httpx.Timeout(0.5, connect=1.0)
    async with open_http(fake_openrouter.base_url, timeout) as http:
        yield OpenRouterClient(http, api_key="sk-or-test-key", sleep=sleeps)


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscordAPI]:
    with FakeDiscordAPI().running() as fake:
        yield fake


@pytest.fixture
async def discord_client(fake_discord: FakeDiscordAPI) -> AsyncIterator[discord.Client]:
    """discord.py's client, logged in to the fake (REST only: no gateway)."""
    use_api(fake_discord.base_url)
    bot = discord.Client(intents=intents())
    await bot.login(TOKEN)
    yield bot
    await bot.close()


@pytest.fixture
def tree(discord_client: discord.Client, october: UnitOfWork
         ) -> discord.app_commands.CommandTree[discord.Client]:
    """rankbot's command tree on `discord_client`, answering from `october` at OCT_8."""
    return build_tree(discord_client, DiscordContext(InPlace(october), lambda: OCT_8))


@pytest.fixture
def slack_users() -> dict[str, dict[str, Any]]:
    """Who the fake Slack knows (users.info): no one, unless a module overrides this."""
    return {}


@pytest.fixture
def fake_slack(slack_users: dict[str, dict[str, Any]]) -> Iterator[FakeSlackAPI]:
    fake = FakeSlackAPI()
    fake.users = dict(slack_users)
    with fake.running():
        yield fake


@pytest.fixture
def slack_client(fake_slack: FakeSlackAPI) -> AsyncWebClient:
    """slack_sdk's client, posting to the fake Web API."""
    return AsyncWebClient(token="xoxb-test-token", base_url=fake_slack.base_url)


@pytest.fixture
async def bot(october: UnitOfWork, fake_slack: FakeSlackAPI, slack_client: AsyncWebClient
              ) -> AsyncIterator[Bot]:
    """rankbot's Slack endpoint, answering from `october`."""
    async with serving(october, fake_slack, slack_client) as served:
        yield served
