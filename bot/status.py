"""`rankbot status`: what an operator wants to know at a glance (pure formatting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from rankbot.bot.channels import Subscription
from rankbot.bot.connections import ConnectionState, describe
from rankbot.bot.ports import FaultRecord, FetchRecord


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    last_good: FetchRecord | None
    last_fault: FaultRecord | None
    detail: str


def database_lines(db_path: str, db_bytes: int, problems: Sequence[str],
                   read_only: bool) -> list[str]:
    """The file, what SQLite's quick_check found wrong in it, and whether it could be written."""
    lines = [f"Database   {db_path} ({db_bytes / 1_048_576:.1f} MB)"]
    if problems:
        found = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines.append(f"{'':<10} damaged: quick_check found {found}: {problems[0]}; restore it "
                     "from a backup, or move it aside and let rankbot start a new one")
    if read_only:
        lines.append(f"{'':<10} read-only: shown as it is; poll, run, import and digest cannot "
                     "write it")
    return lines


def source_lines(source: SourceStatus) -> list[str]:
    good = (f"last good fetch {_when(source.last_good.at)}" if source.last_good
            else "never fetched: run `rankbot poll`")
    lines = [f"{source.name.capitalize():<10} {good} · {source.detail}"]
    if source.last_fault:
        fault = source.last_fault
        lines.append(f"{'':<10} last fault {_when(fault.at)} ({fault.kind}): {fault.message}")
    return lines


def connection_lines(links: Sequence[ConnectionState], now: datetime) -> list[str]:
    """Each chat connection `rankbot run` keeps: up since when, reconnects, the last error."""
    return [f"{link.platform.capitalize():<10} {describe(link, now)}" for link in links]


def delivery_lines(subscriptions: list[Subscription], outbox: Mapping[str, int],
                   dead: list[tuple[str, str, str]]) -> list[str]:
    """Channels, the outbox by state, and what gave up or stopped, and why. People's watches
    are counted apart: a person who closed their DMs is their own choice, not the operator's to
    fix, so they are neither counted nor listed with the paused channels; one paused by
    rankbot's own setup (a scope the app lacks) is."""
    channels = [s for s in subscriptions if not s.ref.person]
    paused = [s for s in subscriptions if s.paused_for_operator]
    lines = [f"{'Channels':<10} {len(channels)} subscribed, {len(paused)} paused"
             + _people(subscriptions),
             f"{'Outbox':<10} " + (", ".join(f"{outbox[k]} {k}" for k in sorted(outbox))
                                    or "empty")]
    lines += [f"{'':<10} paused {s.ref}: {s.paused}" for s in paused]
    lines += [f"{'':<10} skipped {s.ref}: its settings cannot be read "
              f"({', '.join(s.unreadable)}); `/rankbot set` there repairs them"
              for s in subscriptions if s.unreadable]
    lines += [f"{'':<10} dead letter to {where} ({key}): {error}" for where, key, error in dead]
    return lines


def _people(subscriptions: list[Subscription]) -> str:
    """`; 3 people watching models, 1 paused (their DMs)`, or nothing when nobody watches."""
    people = [s for s in subscriptions if s.ref.person]
    paused = sum(1 for s in people if s.paused and not s.paused_for_operator)
    if not people:
        return ""
    return f"; {len(people)} people watching models" + (
        f", {paused} paused (their DMs)" if paused else "")


def catalog_detail(counts: Mapping[str, int] | None) -> str:
    if counts is None:  # damaged pages
        return "counts cannot be read"
    return (f"{counts['live_models']} models live, {counts['catalog_fetches']} fetches, "
            f"{counts['model_versions']} model versions")


def rankings_detail(counts: Mapping[str, int] | None, as_of: date | None) -> str:
    latest = f"as of {as_of}" if as_of else "no data"
    if counts is None:
        return f"{latest}, counts cannot be read"
    return f"{latest}, {counts['ranking_days']} days, {counts['rankings']} rows"


def providers_detail(models: int, providers: int, keyed: bool) -> str:
    """The providers behind the polled models; whether OpenRouter asked for the key."""
    said = f"{models} models, {providers} providers"
    if keyed:
        said += ("; OpenRouter asks for a key for provider endpoints: they are fetched with "
                 "OPENROUTER_API_KEY")
    return said


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"
