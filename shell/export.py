"""`rankbot export`: the stored history is the users' data, printed in plain formats."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from rankbot.adapters.console import terminal_safe
from rankbot.bot.changes import change_record, plain
from rankbot.bot.exports import (
    NoMatch,
    PriceStep,
    in_force_since,
    matching_ids,
    price_steps,
    replay_changes,
)
from rankbot.storage import UnitOfWork
from rankbot.storage.documents import DamagedDocument
from rankbot.storage.exports import has_catalog, model_versions, stored_fetches
from rankbot.storage.times import stamp

FORMATS = ("csv", "json")
PRICE_COLUMNS = ("model", "name", "field", "from", "until", "price")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SINCE = click.option("--since", metavar="DATE",
                     help="From this UTC date or time on (2026-07-20, 2026-07-20T19:48:13Z).")


@click.group()
def export() -> None:
    """Print the stored history: the catalog at a time, price steps, changes found."""


@export.command("prices")
@click.argument("query", required=False)
@SINCE
@click.option("--format", "form", default="csv", show_default=True, metavar="csv|json",
              help="CSV with a header, or one JSON object per line.")
def export_prices(query: str | None, since: str | None, form: str) -> None:
    """Every price step: model, name, field (prompt, completion, input_cache_read), from, until
    (empty: the current price) and price in USD per 1M tokens.

    QUERY keeps the models `/price QUERY` would show (any model ever stored); --since keeps the
    steps still in force at or after DATE.
    """
    if form.lower() not in FORMATS:
        raise click.ClickException(f"unknown format {form[:20]!r}: give csv or json")
    start = _since(since)
    with _history() as store:
        versions = model_versions(store.db)
    if query is not None:
        latest = {v.model.id: v.model for v in versions}  # oldest first: the last one stays
        try:
            wanted = matching_ids(query, latest)
        except NoMatch as no_match:
            raise click.ClickException(str(no_match)) from None
        versions = [v for v in versions if v.model.id in wanted]
    steps = price_steps(versions)
    if start is not None:
        steps = in_force_since(steps, start)
    _write(_price_csv(steps) if form.lower() == "csv" else map(_price_json, steps))


@export.command("changes")
@SINCE
def export_changes(since: str | None) -> None:
    """Every catalog change found, as JSON lines: the objects `rankbot poll --json` prints,
    each with `at`, when it was found. Replayed from the stored catalogs under the default
    rules, as a channel subscribed from the first one was told them."""
    start = _since(since)
    with _history() as store:
        found = list(replay_changes(stored_fetches(store.db)))
    _write(json.dumps({"at": stamp(at), **change_record(change)}) + "\n"
           for at, change in found if start is None or at >= start)


@export.command("catalog")
@click.option("--at", "when", required=True, metavar="TIME",
              help="A UTC date or time (2026-07-20, 2026-07-20T19:48:13Z).")
def export_catalog(when: str) -> None:
    """The catalog as OpenRouter served it at the last fetch at or before TIME, as its /models
    JSON ({"data": [...]}): each entry exactly as served (a malformed one too), in the order
    served. Entries are kept by id: one without a valid id is left out, and of entries that
    share an id only one is kept, at the first one's place."""
    at = _time("--at", when)
    with _history() as store:
        try:
            entries = store.snapshots.catalog_documents_at(at)
        except DamagedDocument as damaged:
            raise click.ClickException(str(damaged)) from None
    if entries is None:
        raise click.ClickException(f"no catalog stored at or before {stamp(at)}")
    _write([json.dumps({"data": entries}) + "\n"])  # ASCII: nothing from outside drives a tty


def _time(option: str, value: str) -> datetime:
    """The time, in UTC; one line for text that is no time, or one that has no UTC second
    (`0001-01-01T00:00:00+01:00` is in year 0 in UTC)."""
    try:
        at = datetime.fromisoformat(value.strip())
        at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
        stamp(at)  # strftime refuses some years on some platforms
    except (ValueError, OverflowError):
        raise click.ClickException(f"{option}: cannot read {value[:40]!r} as a time; give "
                                   "2026-07-20 or 2026-07-20T19:48:13Z (UTC)") from None
    return at


def _since(value: str | None) -> datetime | None:
    return None if value is None else _time("--since", value)


@contextmanager
def _history() -> Iterator[UnitOfWork]:
    """The database, opened read-only: never created, migrated or written (one that needs a
    migration is refused in one line); an error if it holds no catalog yet."""
    from rankbot.shell.cli import _setup  # noqa: PLC0415 - cli imports this module

    path = _setup(log_to_terminal=False).db_path
    if not path.exists():
        raise click.ClickException(f"no database at {terminal_safe(str(path.absolute()))}: "
                                   "run `rankbot poll` first")
    store = UnitOfWork.open(path, read_only=True)
    try:
        if not has_catalog(store.db):
            raise click.ClickException("no catalog stored yet: run `rankbot poll` or "
                                       "`rankbot import` first")
        yield store
    finally:
        store.close()


def _price_csv(steps: Iterable[PriceStep]) -> Iterator[str]:
    """RFC 4180 CSV (the csv module quotes commas and quotes), one record a line: text from
    outside has control characters removed and line breaks and tabs made spaces, and a `'`
    before it where a spreadsheet would take it for a formula."""
    line = _Line()
    writer = csv.writer(line, lineterminator="\n")
    writer.writerow(PRICE_COLUMNS)
    yield line.take()
    for step in steps:
        writer.writerow([_csv_text(step.model), _csv_text(step.name), _csv_text(step.field),
                         stamp(step.since), stamp(step.until) if step.until else "",
                         plain(step.price)])
        yield line.take()


def _csv_text(text: str) -> str:
    text = terminal_safe(text).translate({ord(c): " " for c in "\r\n\t"})
    # OWASP's advice against CSV injection: a cell starting with one of these is a formula to
    # Excel, LibreOffice and Google Sheets (`=HYPERLINK(...)`); the quote makes it text.
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """Where csv.writer writes one row at a time."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> None:
        self._parts.append(text)

    def take(self) -> str:
        text, self._parts = "".join(self._parts), []
        return text


def _price_json(step: PriceStep) -> str:
    """One JSON object; the price a JSON number written exactly as the decimal it is."""
    fields: dict[str, Any] = {"model": step.model, "name": step.name, "field": step.field,
                              "from": stamp(step.since),
                              "until": stamp(step.until) if step.until else None}
    return f'{json.dumps(fields)[:-1]}, "price": {plain(step.price)}}}\n'


def _write(lines: Iterable[str]) -> None:
    """Lines to stdout; a reader that stops early (`| head`) ends the command quietly."""
    out = sys.stdout
    try:
        for line in lines:
            out.write(line)
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        sys.exit(1)
