"""Slash-command answers on real data: each command, the matching rules and bad input."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rankbot.bot.cards import LIMITS, Card, changes_card, size
from rankbot.bot.commands import COMMANDS, Reply, answer, ask
from rankbot.bot.polling import observe
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.storage import UnitOfWork
from tests.conftest import (
    FIXTURES,
    RANKINGS_CSV,
    catalog_bytes,
    expected_price_moves,
    load,
    raw_models,
)
from tests.fakes.clock import OCT_8

JUL_21 = datetime(2026, 7, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def october() -> Iterator[UnitOfWork]:
    """The newest catalog and the real rankings export (read-only: shared by the module)."""
    store = load(UnitOfWork.open(":memory:"), "2026-07-14T025033Z", "2026-08-22T183539Z")
    yield store
    store.close()


@pytest.fixture(scope="module")
def july() -> Iterator[UnitOfWork]:
    """Two catalogs a week apart, for price history (read-only)."""
    store = load(UnitOfWork.open(":memory:"), "2026-07-14T025033Z", "2026-07-20T194813Z",
                 rankings=False)
    yield store
    store.close()


def text(card: Card) -> str:
    return "\n".join([card.title, *card.lines, *(f"{f.name}\n{f.value}" for f in card.fields),
                      card.footer or ""])


def csv_tokens() -> dict[str, dict[date, int]]:
    """Tokens per model per day, read straight from the fixture CSV."""
    tokens: dict[str, dict[date, int]] = defaultdict(dict)
    for line in RANKINGS_CSV.read_text().splitlines()[1:]:
        day, slug, _, count, _ = line.split(",")
        tokens[slug][date.fromisoformat(day)] = int(count)
    return tokens


def week_order(*days: date) -> list[str]:
    totals = {slug: sum(v for d, v in by_day.items() if d in days)
              for slug, by_day in csv_tokens().items() if slug != "other"}
    return sorted((s for s in totals if totals[s]), key=lambda s: (-totals[s], s))


# -- /rank -------------------------------------------------------------------------------------

def test_rank_of_one_model_in_full(october: UnitOfWork) -> None:
    reply = answer("rank", "deepseek/deepseek-v4.1-flash-20260910", october.snapshots, OCT_8)
    assert reply.public
    (field,) = reply.card.fields
    tokens = csv_tokens()["deepseek/deepseek-v4.1-flash-20260910"]
    week = tokens[date(2026, 10, 1)] + tokens[date(2026, 10, 7)]
    total = sum(v[d] for v in csv_tokens().values() for d in v if d >= date(2026, 10, 1))
    assert field.name == "#1 · deepseek/deepseek-v4.1-flash-20260910"
    lines = field.value.splitlines()
    assert lines[0] == "7 days #1 ▲1 · today #1"  # #2 the week before (2026-09-30)
    assert lines[1] == f"{week / 1e12:.1f}T tokens this week · {week / total:.1%} of all"
    spark = lines[2].removeprefix("30 days `").removesuffix("`")
    assert len(spark) == 30 and spark.count("·") == 27  # ranked on 3 of the last 30 days
    assert lines[3] == "Not in the catalog (stealth, or no longer listed)"
    assert reply.card.footer is not None and reply.card.footer.startswith(
        "Source: OpenRouter (openrouter.ai/rankings), as of 2026-10-07 · CC BY 4.0")


def test_rank_shows_catalog_facts_for_a_known_model(october: UnitOfWork) -> None:
    reply = answer("rank", "nvidia/nemotron-3-ultra-550b-a55b-20260604:free", october.snapshots,
                   OCT_8)
    *_, detail, scores = reply.card.fields[0].value.splitlines()
    raw = raw_models("2026-08-22T183539Z")["nvidia/nemotron-3-ultra-550b-a55b:free"]
    kind = "Open weights" if raw["hugging_face_id"] else "Proprietary"
    assert raw["context_length"] == 1_000_000
    assert detail == f"{kind} · free · 1M context"
    indices = raw["benchmarks"]["artificial_analysis"]  # type: ignore[index]
    assert scores == "Quality (Artificial Analysis): " + " · ".join(
        f"{name.removesuffix('_index')} {value}" for name, value in indices.items())
    assert reply.card.fields[0].name.endswith(
        "NVIDIA: Nemotron 3 Ultra (free) (nvidia/nemotron-3-ultra-550b-a55b-20260604:free)")


def test_rank_without_a_query_is_the_weekly_top_10(october: UnitOfWork) -> None:
    reply = answer("rank", "", october.snapshots, OCT_8)
    assert reply.card == answer("top", "10 week", october.snapshots, OCT_8).card
    order = week_order(date(2026, 10, 1), date(2026, 10, 7))
    assert [line.split(" — ")[0].split(" ")[-1].strip("()") for line in reply.card.lines] == \
        order[:10]


def test_several_matches_show_the_best_by_rank_then_how_many_more(october: UnitOfWork) -> None:
    card = answer("rank", "deepseek", october.snapshots, OCT_8).card
    ranks = [int(f.name.split(" ")[0].lstrip("#")) for f in card.fields[:3]]
    assert ranks == sorted(ranks)
    order = [s for s in week_order(date(2026, 10, 1), date(2026, 10, 7))
             if s.startswith("deepseek/")]
    assert card.fields[0].name.endswith(f"({order[0]})") or card.fields[0].name.endswith(
        order[0])
    assert card.fields[-1].name.startswith("and ") and card.fields[-1].name.endswith(" more")


@pytest.mark.parametrize(("query", "expected"), [
    ("openai/gpt-4.1", "openai/gpt-4.1"),  # exact id, among gpt-4.1-mini and -nano
    ("gpt-4.1", "openai/gpt-4.1"),  # exact name after the author ("OpenAI: GPT-4.1")
    ("OpenAI/GPT-4.1", "openai/gpt-4.1"),  # case-insensitive
    ("OpenAI: GPT-4.1", "openai/gpt-4.1"),  # display name
])
def test_exact_names_and_aliases_match_one_model(july: UnitOfWork, query: str,
                                                 expected: str) -> None:
    card = answer("price", query, july.snapshots, JUL_21).card
    assert [f.name.split("(")[-1].rstrip(")") for f in card.fields] == [expected]


@pytest.mark.parametrize("query", ["~anthropic/claude-sonnet-latest", "claude-sonnet-latest",
                                   "Anthropic Claude Sonnet Latest"])
def test_aliases_resolve_to_their_target(october: UnitOfWork, query: str) -> None:
    target = raw_models("2026-08-22T183539Z")["~anthropic/claude-sonnet-latest"]["alias_target"]
    card = answer("price", query, october.snapshots, OCT_8).card
    assert [f.name for f in card.fields] == [f"{target['name']} ({target['slug']})"]


def test_an_alias_without_a_target_is_found_as_itself(july: UnitOfWork) -> None:
    card = answer("price", "~anthropic/claude-sonnet-latest", july.snapshots, JUL_21).card
    assert [f.name for f in card.fields] == [
        "Anthropic Claude Sonnet Latest (~anthropic/claude-sonnet-latest)"]


@pytest.mark.parametrize(("query", "test"), [
    ("anthropic", lambda i: i.lstrip("~").startswith("anthropic/")),  # author
    ("gpt-4-t", lambda i: i.startswith("openai/gpt-4-t")),  # prefix of the slug
    ("coder", lambda i: "coder" in i),  # substring
])
def test_authors_prefixes_and_substrings_match_many(july: UnitOfWork, query: str,
                                                    test: object) -> None:
    expected = {i.split(":")[0] for i in raw_models("2026-07-20T194813Z")
                if test(i)}  # type: ignore[operator]
    card = answer("price", query, july.snapshots, JUL_21).card
    shown = {f.name.split("(")[-1].rstrip(")") for f in card.fields if "(" in f.name}
    more = next((f for f in card.fields if f.name.startswith("and ")), None)
    count = len(shown) + (int(more.name.split()[1]) if more else 0)
    assert shown <= expected and count == len(expected)


def test_a_typo_gets_did_you_mean(july: UnitOfWork) -> None:
    reply = answer("rank", "qwn", july.snapshots, JUL_21)
    assert not reply.public
    assert reply.card.lines == ("No rankings yet: run `rankbot poll` once (or keep "
                                "`rankbot run` going), then ask again.",)
    reply = answer("price", "qwn", july.snapshots, JUL_21)
    assert reply.card.lines == ("No model matches `qwn`. Did you mean `qwen`?",)


# -- /price ------------------------------------------------------------------------------------

def test_price_shows_per_million_prices_and_the_change_since(july: UnitOfWork) -> None:
    card = answer("price", "deepseek/deepseek-chat-v3-0324", july.snapshots, JUL_21).card
    (field,) = card.fields
    moves = {(side, a, b) for i, side, a, b in expected_price_moves(
        "2026-07-14T025033Z", "2026-07-20T194813Z")[0] if i == "deepseek/deepseek-chat-v3-0324"}
    (_, p0, p1), = (m for m in moves if m[0] == "prompt")
    (_, c0, c1), = (m for m in moves if m[0] == "completion")
    head, *_, since = field.value.splitlines()
    assert head == (f"deepseek/deepseek-chat-v3-0324: ${p1.normalize():f} in / "
                    f"${c1.normalize():.2f} out per 1M")
    assert since == (f"  7 days: input {(p1 - p0) / p0 * 100:+.1f}%, output "
                     f"{(c1 - c0) / c0 * 100:+.1f}% · 30 days: not listed then")
    assert card.footer == ("USD per 1M tokens, or per search, image or request where said · "
                           "prices as of 2026-07-20 19:48 UTC")


def test_price_shows_variants_together(july: UnitOfWork) -> None:
    raw = raw_models("2026-07-20T194813Z")
    base = next(i.removesuffix(":free") for i in raw
                if i.endswith(":free") and i.removesuffix(":free") in raw)
    card = answer("price", base, july.snapshots, JUL_21).card
    (field,) = card.fields
    ids = [line.split(":")[0] + (":free" if line.startswith(f"{base}:free") else "")
           for line in field.value.splitlines() if not line.startswith(" ")]
    assert ids == [base, f"{base}:free"]
    assert f"{base}:free: free" in field.value


def test_price_vs_says_the_ratio_in_plain_words(july: UnitOfWork) -> None:
    raw = raw_models("2026-07-20T194813Z")
    a, b = raw["qwen/qwen3-coder"]["pricing"], raw["openai/gpt-4.1"]["pricing"]
    ratio_in = Decimal(b["prompt"]) / Decimal(a["prompt"])
    ratio_out = Decimal(b["completion"]) / Decimal(a["completion"])
    card = answer("price", "qwen/qwen3-coder vs openai/gpt-4.1", july.snapshots, JUL_21).card
    assert card.lines == (f"qwen/qwen3-coder vs openai/gpt-4.1: input is {ratio_in:.1f}x "
                          f"cheaper, output is {ratio_out:.1f}x cheaper",)
    assert card.title == "Price: qwen/qwen3-coder vs openai/gpt-4.1"


# -- /top, /movers, /new -----------------------------------------------------------------------

def test_top_n_for_a_day(october: UnitOfWork) -> None:
    card = answer("top", "5 day", october.snapshots, OCT_8).card
    assert card.title == "Top 5 on 2026-10-07"
    day = [s for s in week_order(date(2026, 10, 7))][:5]
    assert [line.split(" — ")[0].split(" ")[-1].strip("()") for line in card.lines] == day
    assert answer("top", "day 5", october.snapshots, OCT_8).card == card  # any order


def test_movers_lists_climbs_falls_and_share_gains(october: UnitOfWork) -> None:
    card = answer("movers", "week", october.snapshots, OCT_8).card
    now = week_order(date(2026, 10, 1), date(2026, 10, 7))
    before = week_order(date(2026, 9, 30))
    climbs = sorted(((before.index(s) - now.index(s), s) for s in now[:50] if s in before
                     and before.index(s) > now.index(s)), key=lambda m: (-m[0], now.index(m[1])))
    climbing = card.fields[0].value.splitlines()
    assert card.fields[0].name == "Climbing"
    assert [line.split(" ")[0] for line in climbing] == [f"▲{d}" for d, _ in climbs[:5]]
    assert [f.name for f in card.fields] == ["Climbing", "Falling", "Gaining share"]


def test_new_lists_catalog_additions_and_newcomers_to_the_top_50(july: UnitOfWork) -> None:
    card = answer("new", "7", july.snapshots, JUL_21).card
    added = {i for i in set(raw_models("2026-07-20T194813Z")) - set(
        raw_models("2026-07-14T025033Z")) if not i.startswith("~")}
    catalog = card.fields[0].value.splitlines()
    assert {line.split("(")[-1].split(")")[0] for line in catalog} == added
    assert all(line.startswith("2026-07-20 ") for line in catalog)


def test_new_in_the_top_50_after_the_first_stored_day(october: UnitOfWork) -> None:
    tokens = csv_tokens()
    first_day = date(2026, 9, 30)
    newcomers = {s for s, days in tokens.items() if s != "other" and first_day not in days}
    card = answer("new", "30", october.snapshots, OCT_8).card
    listed = card.fields[1].value.splitlines()
    assert {line.split(" ")[-1].strip("()") for line in listed} == newcomers


def test_help_lists_every_command_privately(october: UnitOfWork) -> None:
    reply = answer("help", "", october.snapshots, OCT_8)
    assert not reply.public
    assert [line.split("`")[1].split(" ")[0] for line in reply.card.lines] == [
        f"/{name}" for name in COMMANDS]


# -- no data, bad input, failures --------------------------------------------------------------

@pytest.mark.parametrize("command", ["rank qwen", "rank", "price qwen", "top", "movers",
                                     "new"])
def test_an_empty_database_says_what_to_run(store: UnitOfWork, command: str) -> None:
    reply = ask(command, store.snapshots, OCT_8)
    assert not reply.public or "none" in text(reply.card)
    assert "rankbot poll" in text(reply.card) or reply.card.fields[0].value == "none"


BAD_INPUT = [
    ("rank", "x" * 10_000, "too long"),
    ("rank", "q" * 150, "shorter than 100 characters"),
    ("rank", "\x00\x1b[31mqwen\x07", None),  # control characters are dropped
    ("price", "'; DROP TABLE rankings; --", "No model matches"),
    ("price", '"qwen" OR 1=1', "No model matches"),
    ("rank", "🦙🦙", "No model matches that."),
    ("rank", "<!channel> <@U123> hi", "No model matches `channel U123 hi`."),
    ("frobnicate", "now", "Unknown command `frobnicate`"),
    ("top", "0", "n must be between 1 and 50."),
    ("top", "51", "n must be between 1 and 50."),
    ("top", "-3", "`-3` is not a period"),
    ("top", "month", "`month` is not a period"),
    ("new", "9999", "days must be between 1 and 90."),
    ("new", "soon", "Usage: `/new [days]`"),
    ("movers", "day week", "Usage: `/movers [day|week]`"),
    ("price", "", "Which model?"),
    ("price", "vs openai/gpt-4.1", "No model matches"),
    ("price", "qwen vs", "No model matches"),
]


@pytest.mark.parametrize(("command", "args", "message"), BAD_INPUT)
def test_bad_input_gets_a_short_reply_and_changes_nothing(
        october: UnitOfWork, command: str, args: str, message: str | None) -> None:
    counts = october.snapshots.counts()
    reply = answer(command, args, october.snapshots, OCT_8)
    assert isinstance(reply, Reply)
    if message is not None:
        assert not reply.public and message in reply.card.lines[0]
        assert len(reply.card.lines[0]) < 200
    assert "<!" not in text(reply.card) and "<@" not in text(reply.card)
    assert october.snapshots.counts() == counts


class BrokenHistory:
    def __getattr__(self, name: str) -> object:
        raise RuntimeError("disk on fire")


def test_an_unexpected_error_is_logged_and_gets_an_apology(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        reply = answer("rank", "qwen", BrokenHistory(), OCT_8)  # type: ignore[arg-type]
    assert reply.card.lines == ("Sorry, that failed on our side; the error is logged.",)
    assert "disk on fire" in caplog.text and caplog.records[0].exc_info is not None


# -- platform limits ---------------------------------------------------------------------------

def assert_fits(card: Card) -> None:
    assert len(card.title) <= LIMITS.title and len(card.fields) <= LIMITS.fields
    assert len("\n".join(card.lines)) <= LIMITS.lines and size(card) <= LIMITS.total
    assert all(len(f.value) <= LIMITS.field_value and len(f.name) <= LIMITS.field_name
               for f in card.fields)


@pytest.mark.parametrize("line", ["rank a", "rank", "price a", "price -", "top 50",
                                  "top 50 day", "movers", "movers day", "new 90", "help"])
def test_every_answer_fits_slack_and_discord(october: UnitOfWork, line: str) -> None:
    reply = ask(line, october.snapshots, OCT_8)
    assert reply.public or line == "help"
    assert_fits(reply.card)


def test_the_fixture_is_the_largest_real_data(october: UnitOfWork) -> None:
    snapshots = october.snapshots
    assert len(snapshots.live_models()) == 421 and snapshots.counts()["rankings"] == 153
    assert Path(FIXTURES / "models" / "2026-08-22T183539Z.json.gz").exists()


def test_the_largest_real_poll_fits_in_one_message(store: UnitOfWork) -> None:
    observe(store, "catalog", catalog_bytes("2026-07-20T194813Z"), JUL_21, DEFAULT_RULES)
    outcome = observe(store, "catalog", catalog_bytes("2026-07-28T193833Z"), OCT_8, DEFAULT_RULES)
    assert len(outcome.changes) > 100  # 37 added models, 26 price and 38 context changes
    card = changes_card(outcome.changes, OCT_8, None)
    assert_fits(card)
    assert any("more" in line for f in card.fields for line in f.value.splitlines()[-1:])
