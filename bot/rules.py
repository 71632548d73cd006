"""A channel's rules: which changes are worth a message, and when messages may go out (pure).

`RULES` is the one list of settable keys (`/rankbot set KEY VALUE`), each with its parser and
its help; `.parse()` turns a typed value into a rule or one short sentence saying what is allowed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

ALERT_KINDS = ("rank_moved", "entered_top", "left_top", "new_leader",
               "open_weight_share_changed", "model_added", "model_removed", "price_changed",
               "went_free", "went_paid", "context_changed", "alias_moved",
               "sunset_announced", "sunset_soon",
               "cheapest_provider_changed", "provider_added", "provider_removed",
               "provider_degraded", "provider_recovered", "quantization_changed")
# The kinds there were before stored rules named the kinds they knew (`known_kinds`): a kind
# added since is on for a channel that stored its kinds before it existed, as it is by default.
FIRST_KINDS = frozenset(ALERT_KINDS[:12])
# The prices a channel hears by default (`price_fields`): input and output, cache read and write,
# and long-context tiers of any price (`prompt>200k`); not per-unit, audio or time-of-day prices.
DEFAULT_PRICE_FIELDS = ("prompt", "completion", "input_cache_read", "input_cache_write*", "*>*")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
T = TypeVar("T")
DAYS_PLURAL = tuple(f"{day.capitalize()}s" for day in WEEKDAYS)


class RuleError(ValueError):
    """A key or value `/rankbot set` cannot take; the message says what it can."""


@dataclass(frozen=True, slots=True)
class Rules:
    top_n: int = 20
    min_rank_move: int = 3
    min_price_change_pct: Decimal = Decimal(10)
    min_uptime: Decimal = Decimal(95)  # percent: a provider's 30-minute uptime below is news
    price_fields: tuple[str, ...] = DEFAULT_PRICE_FIELDS  # patterns of `Model.prices` names
    kinds: frozenset[str] = frozenset(ALERT_KINDS)
    watch: tuple[str, ...] = ()  # id or author patterns; empty: every model
    ignore: tuple[str, ...] = ()
    variants: bool = True  # `:free`, `:batch` and other variants
    digest_day: int = 0  # Monday
    digest_time: time = time(9, 0)
    timezone: str = "UTC"
    quiet_hours: tuple[time, time] | None = None  # local start, end; messages wait

    def hears_price(self, field: str) -> bool:
        """Whether a change of this price (`prompt`, `input_cache_read`, `prompt>200k`) is
        news here: `price_fields`."""
        return any(fnmatch.fnmatchcase(field, pattern) for pattern in self.price_fields)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def quiet_until(self, at: datetime) -> datetime | None:
        """When quiet hours that cover `at` end (UTC), or None if `at` is not in them."""
        if self.quiet_hours is None:
            return None
        start, end = self.quiet_hours
        local = at.astimezone(self.zone)
        for day in (local.date() - timedelta(days=1), local.date()):
            begins = datetime.combine(day, start, self.zone)
            ends = datetime.combine(day + timedelta(days=end <= start), end, self.zone)
            if begins <= local < ends:
                return ends.astimezone(at.tzinfo)
        return None

    def last_digest_time(self, now: datetime) -> datetime:
        """The most recent digest moment at or before `now`, in the channel's own week."""
        local = now.astimezone(self.zone)
        days_back = (local.weekday() - self.digest_day) % 7
        moment = datetime.combine(local.date() - timedelta(days=days_back), self.digest_time,
                                  self.zone)
        if moment > local:
            moment -= timedelta(days=7)
        return moment.astimezone(now.tzinfo)


DEFAULT_RULES = Rules()


@dataclass(frozen=True, slots=True)
class RuleKey:
    name: str
    allowed: str  # what the value may be, said in the error and in `config`
    parse: Callable[[str], Any]
    show: Callable[[Any], str] = str


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError
        return int(raw)
    return parse


def _pct(raw: str) -> Decimal:
    try:
        value = Decimal(raw.rstrip("%"))
    except InvalidOperation:
        raise ValueError from None
    if not value.is_finite() or not 1 <= value <= 1000:
        raise ValueError
    return value.normalize()


def _uptime_pct(raw: str) -> Decimal:
    try:
        value = Decimal(raw.rstrip("%"))
    except InvalidOperation:
        raise ValueError from None
    return _in_uptime_range(value).normalize()


def _in_uptime_range(value: Decimal) -> Decimal:
    if not value.is_finite() or not 1 <= value <= 100:
        raise ValueError
    return value


def _kinds(raw: str) -> frozenset[str]:
    chosen = frozenset(ALERT_KINDS) if raw == "all" else frozenset(_items(raw))
    if not chosen or not chosen <= set(ALERT_KINDS):
        raise ValueError
    return chosen


def _patterns(raw: str) -> tuple[str, ...]:
    if raw in ("none", "-"):
        return ()
    patterns = tuple(_items(raw))
    if not patterns or any(len(p) > 80 or not all(c.isalnum() or c in "-_./:*?~" for c in p)
                           for p in patterns):
        raise ValueError
    return patterns


def _price_fields(raw: str) -> tuple[str, ...]:
    fields = ("*",) if raw == "all" else tuple(_items(raw))
    if not fields or any(len(f) > 60 or not all(c.isalnum() or c in "_*?>@:-." for c in f)
                         for f in fields):
        raise ValueError
    return fields


def _show_price_fields(value: tuple[str, ...]) -> str:
    return "all" if value == ("*",) else ",".join(value)


def _on_off(raw: str) -> bool:
    if raw not in ("on", "off"):
        raise ValueError
    return raw == "on"


def _day(raw: str) -> int:
    for number, day in enumerate(DAYS):
        if raw in (day, WEEKDAYS[number]):
            return number
    raise ValueError


def _clock(raw: str) -> time:
    hours, _, minutes = raw.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError
    return time(int(hours), int(minutes))  # raises ValueError when out of range


@cache
def iana_zones() -> dict[str, str]:
    """The zones the `tzdata` package ships, by lower-cased name. A host's own zone files may
    hold more (`right/UTC`, `posix/…`): a rule valid here must be valid on every host."""
    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return {name.lower(): name for name in names}


def _zone(raw: str) -> str:
    zone = iana_zones().get(raw.lower())
    if zone is None:
        raise ValueError
    return zone


def _quiet(raw: str) -> tuple[time, time] | None:
    if raw == "off":
        return None
    start, _, end = raw.partition("-")
    span = (_clock(start), _clock(end))
    if span[0] == span[1]:
        raise ValueError
    return span


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _show_quiet(value: tuple[time, time] | None) -> str:
    return "off" if value is None else f"{value[0]:%H:%M}-{value[1]:%H:%M}"


RULES = {key.name: key for key in (
    RuleKey("top_n", "a whole number from 1 to 50", _int_in(1, 50)),
    RuleKey("min_rank_move", "a whole number from 1 to 50", _int_in(1, 50)),
    RuleKey("min_price_change_pct", "a percentage from 1 to 1000", _pct, lambda v: f"{v}%"),
    RuleKey("min_uptime", "a percentage from 1 to 100, like 95 or 99.5", _uptime_pct,
            lambda v: f"{v}%"),
    RuleKey("price_fields", "all, or a comma list of price names or patterns like "
            "prompt,completion,input_cache_*,web_search,*>* (`>` long-context tiers, `@` "
            "time-of-day ones)", _price_fields, _show_price_fields),
    RuleKey("kinds", f"all, or a comma list of: {', '.join(ALERT_KINDS)}", _kinds,
            lambda v: "all" if v == frozenset(ALERT_KINDS) else ",".join(sorted(v))),
    RuleKey("watch", "none, or comma-separated id or author patterns like qwen,openai/gpt-*",
            _patterns, lambda v: ",".join(v) or "none"),
    RuleKey("ignore", "none, or comma-separated id or author patterns like *:free",
            _patterns, lambda v: ",".join(v) or "none"),
    RuleKey("variants", "on or off", _on_off, lambda v: "on" if v else "off"),
    RuleKey("digest_day", "a weekday: mon, tue, wed, thu, fri, sat or sun", _day,
            lambda v: DAYS[v]),
    RuleKey("digest_time", "a local time as HH:MM", _clock, lambda v: f"{v:%H:%M}"),
    RuleKey("timezone", "an IANA time zone like Europe/Berlin or UTC", _zone),
    RuleKey("quiet_hours", "off, or local HH:MM-HH:MM like 22:00-07:00", _quiet, _show_quiet),
)}
assert set(RULES) == {f.name for f in fields(Rules)}


def set_rule(rules: Rules, key: str, raw: str) -> Rules:
    spec = RULES.get(key.lower())
    if spec is None:
        raise RuleError(f"Unknown setting `{key[:40]}`. Settings: {', '.join(RULES)}.")
    try:
        value = spec.parse(raw.strip().lower() if spec.name != "timezone" else raw.strip())
    except ValueError:
        raise RuleError(f"{spec.name} must be {spec.allowed}.") from None
    return replace(rules, **{spec.name: value})


def show_rule(rules: Rules, key: str) -> str:
    return str(RULES[key].show(getattr(rules, key)))


def rules_to_dict(rules: Rules) -> dict[str, str]:
    """Rules as their `set` values: what `config` shows."""
    return {key: show_rule(rules, key) for key in RULES}


# -- stored rules: typed, versioned JSON ------------------------------------------------------
#
# What storage keeps is decoded by type, never by the `set` parser: a stricter parser one day
# (a narrower range, a removed kind) must not make a stored row unreadable. Version 0 is the
# old format, a dict of `set` values, still read for rows that were never rewritten.

RULES_VERSION = 1


def rules_to_record(rules: Rules) -> dict[str, Any]:
    """Every rule, typed, with the format's version: what storage keeps as JSON."""
    return {"version": RULES_VERSION, "top_n": rules.top_n, "min_rank_move": rules.min_rank_move,
            "min_price_change_pct": str(rules.min_price_change_pct),
            "min_uptime": str(rules.min_uptime),
            "price_fields": list(rules.price_fields),
            "kinds": sorted(rules.kinds), "known_kinds": list(ALERT_KINDS),
            "watch": list(rules.watch),
            "ignore": list(rules.ignore), "variants": rules.variants,
            "digest_day": rules.digest_day, "digest_time": f"{rules.digest_time:%H:%M}",
            "timezone": rules.timezone,
            "quiet_hours": None if rules.quiet_hours is None
            else [f"{moment:%H:%M}" for moment in rules.quiet_hours]}


def rules_from_record(record: Any) -> tuple[Rules, tuple[str, ...]]:
    """Stored rules, and what of them cannot be read (kept at its default, so that one
    channel's bad row never stops the others, and any `set` rewrites it)."""
    if not isinstance(record, dict):
        return DEFAULT_RULES, (f"rules {str(record)[:40]!r}",)
    version = record.get("version", 0)
    if version == 0:
        return _from_set_values(record)
    if version != RULES_VERSION:
        return DEFAULT_RULES, (f"version {str(version)[:10]!r}, newer than this rankbot",)
    values, unreadable = {}, []
    for name, decode in _DECODERS.items():
        if name in record:
            try:
                values[name] = decode(record[name])
            except (TypeError, ValueError, InvalidOperation):
                unreadable.append(f"{name} {str(record[name])[:40]!r}")
    if "kinds" in values:  # a kind added since the row was written is on, as by default
        values["kinds"] |= frozenset(ALERT_KINDS) - _known_kinds(record.get("known_kinds"))
    return replace(DEFAULT_RULES, **values), tuple(unreadable)


def _known_kinds(value: Any) -> frozenset[str]:
    try:
        return frozenset(_names(value))
    except TypeError:  # rows written before rankbot recorded them
        return FIRST_KINDS


def _from_set_values(values: dict[str, Any]) -> tuple[Rules, tuple[str, ...]]:
    rules, unreadable = DEFAULT_RULES, []
    for key, raw in values.items():
        try:
            rules = set_rule(rules, key, str(raw)) if key in RULES else rules
        except RuleError:
            unreadable.append(f"{key} {str(raw)[:40]!r}")
    if "kinds" in values:  # chosen among the first kinds: those added since are on
        rules = replace(rules, kinds=rules.kinds | (frozenset(ALERT_KINDS) - FIRST_KINDS))
    return rules, tuple(unreadable)


def _typed(kind: type[T]) -> Callable[[Any], T]:
    def decode(value: Any) -> T:
        if type(value) is not kind:  # bool is an int subclass: `true` is no top_n
            raise TypeError
        return value
    return decode


def _whole(value: Any) -> int:
    number = _typed(int)(value)
    if number < 1:
        raise ValueError
    return number


def _stored_pct(value: Any) -> Decimal:
    number = Decimal(_typed(str)(value))
    if not number.is_finite() or number <= 0:
        raise ValueError
    return number


def _names(value: Any) -> tuple[str, ...]:
    items = tuple(_typed(list)(value))
    if not all(type(item) is str for item in items):
        raise TypeError
    return items


def _stored_price_fields(value: Any) -> tuple[str, ...]:
    fields = _names(value)
    if not fields:
        raise ValueError
    return fields


def _stored_kinds(value: Any) -> frozenset[str]:
    return frozenset(_names(value)) & frozenset(ALERT_KINDS)  # a retired kind is just gone


def _weekday(value: Any) -> int:
    day = _typed(int)(value)
    if not 0 <= day <= 6:
        raise ValueError
    return day


def _stored_zone(value: Any) -> str:
    return _zone(_typed(str)(value))


def _stored_quiet(value: Any) -> tuple[time, time] | None:
    if value is None:
        return None
    start, end = _names(value)
    return _clock(start), _clock(end)


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "top_n": _whole, "min_rank_move": _whole, "min_price_change_pct": _stored_pct,
    "min_uptime": lambda v: _in_uptime_range(_stored_pct(v)),
    "price_fields": _stored_price_fields,
    "kinds": _stored_kinds, "watch": _names, "ignore": _names, "variants": _typed(bool),
    "digest_day": _weekday, "digest_time": lambda v: _clock(_typed(str)(v)),
    "timezone": _stored_zone, "quiet_hours": _stored_quiet,
}
assert set(_DECODERS) == set(RULES)
