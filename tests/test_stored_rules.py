"""A channel's rules as stored: typed, versioned JSON, read by type and never by the `set`
parser, so that a stricter `set` one day cannot make a stored row unreadable."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from rankbot.bot.channels import ChannelRef
from rankbot.bot.rules import (
    ALERT_KINDS,
    DEFAULT_RULES,
    RULES_VERSION,
    RuleError,
    rules_from_record,
    rules_to_record,
    set_rule,
)
from rankbot.storage import UnitOfWork
from rankbot.storage.migrations import migrations

NOW = datetime(2026, 10, 5, 12, tzinfo=UTC)
REF = ChannelRef("slack", "T1", "C1")
CUSTOM = replace(DEFAULT_RULES, top_n=7, min_price_change_pct=Decimal("2.5"),
                 kinds=frozenset({"price_changed", "new_leader"}), watch=("qwen", "openai/*"),
                 variants=False, digest_day=4, digest_time=time(17, 30),
                 timezone="Europe/Berlin", quiet_hours=(time(22), time(7)))


@pytest.mark.parametrize("rules", [DEFAULT_RULES, CUSTOM], ids=["default", "custom"])
def test_rules_round_trip_through_json(rules: Any) -> None:
    record = json.loads(json.dumps(rules_to_record(rules)))
    assert record["version"] == RULES_VERSION
    assert rules_from_record(record) == (rules, ())


def test_a_stored_value_the_set_parser_now_refuses_still_reads() -> None:
    with pytest.raises(RuleError):
        set_rule(DEFAULT_RULES, "top_n", "60")  # `set` allows 1 to 50
    record = {**rules_to_record(DEFAULT_RULES), "top_n": 60, "min_price_change_pct": "0.5"}
    rules, unreadable = rules_from_record(record)
    assert (rules.top_n, rules.min_price_change_pct, unreadable) == (60, Decimal("0.5"), ())


def test_a_retired_kind_is_dropped_not_fatal() -> None:
    record = {**rules_to_record(DEFAULT_RULES), "kinds": ["price_changed", "gone_kind"]}
    assert rules_from_record(record) == (replace(DEFAULT_RULES,
                                                 kinds=frozenset({"price_changed"})), ())


@pytest.mark.parametrize(("field", "value"), [
    ("top_n", True), ("top_n", "5"), ("top_n", 0), ("variants", "on"), ("kinds", "all"),
    ("watch", [1]), ("digest_day", 9), ("digest_time", "25:00"), ("timezone", "right/UTC"),
    ("quiet_hours", ["22:00"]), ("min_price_change_pct", "NaN"), ("min_price_change_pct", 5),
])
def test_a_value_of_the_wrong_type_is_named_and_only_it_falls_back(field: str,
                                                                    value: Any) -> None:
    record = {**rules_to_record(CUSTOM), field: value}
    rules, unreadable = rules_from_record(record)
    assert unreadable == (f"{field} {str(value)[:40]!r}",)
    assert rules == replace(CUSTOM, **{field: getattr(DEFAULT_RULES, field)})


def test_a_newer_format_or_no_object_at_all_is_unreadable() -> None:
    assert rules_from_record({"version": 2, "top_n": 5}) == (
        DEFAULT_RULES, ("version '2', newer than this rankbot",))
    assert rules_from_record("not json")[1] == ("rules 'not json'",)


def test_old_rows_are_rewritten_as_typed_json_and_unreadable_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "rankbot.db"
    old = Database(path)
    migrations.apply(old, stop_before="m009_typed_rules")
    for channel, stored in (("C1", '{"top_n": "10", "quiet_hours": "22:00-07:00"}'),
                            ("C2", '{"timezone": "right/UTC"}'), ("C3", "{}")):
        old["subscriptions"].insert({"platform": "slack", "workspace": "T1", "channel": channel,
                                     "mode": "alerts", "active": 1, "rules": stored,
                                     "created_at": NOW.isoformat()})
    old.close()
    store = UnitOfWork.open(path)
    stored = dict(store.db.execute("SELECT channel, rules FROM subscriptions").fetchall())
    assert json.loads(stored["C1"]) == rules_to_record(
        replace(DEFAULT_RULES, top_n=10, quiet_hours=(time(22), time(7))))
    assert json.loads(stored["C3"]) == rules_to_record(DEFAULT_RULES)
    assert stored["C2"] == '{"timezone": "right/UTC"}'  # still told why, until a `set`
    broken = store.channels.subscription(ChannelRef("slack", "T1", "C2"))
    assert broken is not None and broken.unreadable == ("timezone 'right/UTC'",)
    store.close()


def test_a_row_that_is_not_json_skips_only_its_channel(store: UnitOfWork) -> None:
    with store:
        store.channels.subscribe(REF, "alerts", NOW)
    with store:
        other = store.channels.subscribe(ChannelRef("slack", "T1", "C2"), "alerts", NOW)
    store.db.execute("UPDATE subscriptions SET rules = 'garbage{' WHERE channel = 'C1'")
    subs = {s.ref.channel: s for s in store.channels.subscriptions()}
    assert subs["C1"].unreadable and not subs["C1"].alerts
    assert subs["C2"] == other and other.alerts


def test_kinds_chosen_in_the_old_format_still_get_the_kinds_added_since() -> None:
    rules, unreadable = rules_from_record({"kinds": "rank_moved,price_changed"})
    added_since = set(ALERT_KINDS[12:])
    assert unreadable == () and added_since
    assert rules.kinds == {"rank_moved", "price_changed"} | added_since
    # and so once m009 has rewritten the row in the typed format
    assert rules_from_record(json.loads(json.dumps(rules_to_record(rules))))[0] == rules
