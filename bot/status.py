"""`rankbot status`: what an operator wants to know at a glance (pure formatting)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from bot.channels import Subscription
from bot.ports import FaultRecord, FetchRecord


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    last_good: FetchRecord | None
    last_fault: FaultRecord | None
    detail: str


def format_status(db_path: str, db_bytes: int, sources: list[SourceStatus]) -> str:
    lines = [f"Database   {db_path} ({db_bytes / 1_048_576:.1f} MB)"]
    for source in sources:
        good = (f"last good fetch {_when(source.last_good.at)}" if source.last_good
                else "never fetched: run `rankbot poll`")
        lines.append(f"{source.name.capitalize():<10} {good} · {source.detail}")
        if source.last_fault:
            fault = source.last_fault
            lines.append(f"{'':<10} last fault {_when(fault.at)} ({fault.kind}): {fault.message}")
    return "\n".join(lines)


def delivery_lines(subscriptions: list[Subscription], outbox: Mapping[str, int],
                   dead: list[tuple[str, str, str]]) -> list[str]:
    """Channels, the outbox by state, and what gave up or stopped, and why."""
    paused = [s for s in subscriptions if s.paused]
    lines = [f"{'Channels':<10} {len(subscriptions)} subscribed, {len(paused)} paused",
             f"{'Outbox':<10} " + (", ".join(f"{outbox[k]} {k}" for k in sorted(outbox))
                                    or "empty")]
    lines += [f"{'':<10} paused {s.ref}: {s.paused}" for s in paused]
    lines += [f"{'':<10} dead letter to {where} ({key}): {error}" for where, key, error in dead]
    return lines


def catalog_detail(counts: Mapping[str, int]) -> str:
    return (f"{counts['live_models']} models live, {counts['catalog_fetches']} fetches, "
            f"{counts['model_versions']} model versions")


def rankings_detail(counts: Mapping[str, int], as_of: date | None) -> str:
    latest = f"as of {as_of}" if as_of else "no data"
    return f"{latest}, {counts['ranking_days']} days, {counts['rankings']} rows"


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"
