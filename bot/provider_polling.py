"""Polling the providers behind the models people care about: which models, how politely,
and observe → decide per channel → queue, as for the catalog (`bot.polling`).

Which models: the top `TOP` by usage over the last 7 days, then those a channel's `watch`
patterns name (a channel that watches everything adds none), then those people `/watch`, at
most `limit` in all (the setting RANKBOT_PROVIDERS_MAX), one per endpoints path (`:free` and
other variants share their model's). Politely: one request at a time, `spacing` seconds
apart (at least `GAP`); `rankbot poll` fetches them all once, `rankbot run` spreads them over
the catalog interval and stores and tells them in batches. A fault is recorded per source
"providers", one per batch however many models failed; a 404 costs only its model; after
`GIVE_UP_AFTER` faults in a row that are not a model's own the rest of the round is left for
the next one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from rankbot.bot.alerts import ProvidersNews, hear
from rankbot.bot.catalog import Model, ModelIndex
from rankbot.bot.faults import SourceFault, rejected_fault
from rankbot.bot.feed import keep_changes
from rankbot.bot.leaderboard import board
from rankbot.bot.polling import Outcome, internal_fault, record_fault, tell_channels
from rankbot.bot.ports import EndpointsSource, Offload, ProvidersWork, RawEndpoints, inline
from rankbot.bot.providers import ProviderDelta, parse_endpoints, provider_delta
from rankbot.bot.rules import Rules

log = logging.getLogger(__name__)
TOP = 20  # the most used models, by tokens over the last 7 days
LIMIT = 50  # models polled at most, by default (RANKBOT_PROVIDERS_MAX)
GAP = 1.0  # seconds at least between two requests
BATCH = 10  # models stored and told together in `rankbot run`
STALE = timedelta(days=1)  # providers stored longer ago than this are compared with nothing
GIVE_UP_AFTER = 3
PROVIDERS = ("provider", "providers")
Sleep = Callable[[float], Awaitable[None]]
Patterns = tuple[tuple[str, ...], tuple[str, ...]]  # a subscription's (watch, ignore)


@dataclass(frozen=True, slots=True)
class Target:
    model: str  # the catalog id changes are told by
    slug: str  # its permaslug, for the path when `details` will not do
    details: str | None  # the catalog entry's links.details, as served (outside text)


@dataclass(frozen=True, slots=True)
class Fetched:
    target: Target
    at: datetime
    got: RawEndpoints | SourceFault


def choose_targets(work: ProvidersWork, limit: int = LIMIT) -> list[Target]:
    """The models whose providers to poll now, most used first (reads the database)."""
    if limit <= 0:
        return []
    snapshots = work.snapshots
    live = snapshots.live_models()
    latest = snapshots.latest_ranking_date()
    top = [s.permaslug for s in board(snapshots.token_totals, latest).top(TOP)] if latest else []
    watching = [s for s in work.channels.subscriptions() if s.alerts and s.rules.watch]
    channels = [(s.rules.watch, s.rules.ignore) for s in watching if not s.ref.person]
    people = [(s.rules.watch, s.rules.ignore) for s in watching if s.ref.person]
    chosen = pick(live, top, channels, limit, people=people)
    details = work.providers.endpoint_details([m.id for m in chosen])
    return [Target(m.id, m.canonical_slug, details.get(m.id)) for m in chosen]


def pick(live: Mapping[str, Model], top: Sequence[str], channels: Sequence[Patterns],
         limit: int, *, people: Sequence[Patterns] = ()) -> list[Model]:
    """The top models by usage (permaslugs, best first), then those channels watch, then those
    people watch, each by id, one per endpoints path (its base model rather than a variant), at
    most `limit` (pure). Channels come first: an admin's watch speaks for a whole channel, and
    a few people's twenty watches each must not push it out of the budget."""
    index = ModelIndex(live.values())
    ranked = [m for slug in top if (m := index.lookup(slug)) is not None]
    chosen: dict[str, Model] = {}
    for model in (*ranked, *_watched(live, channels), *_watched(live, people)):
        if model.is_alias or not model.canonical_slug:
            continue
        if model.canonical_slug not in chosen and len(chosen) < limit:
            base = live.get(model.id.split(":", 1)[0])
            chosen[model.canonical_slug] = base if base is not None \
                and base.canonical_slug == model.canonical_slug else model
    return list(chosen.values())


def _watched(live: Mapping[str, Model], patterns: Sequence[Patterns]) -> list[Model]:
    """The models any of these (watch, ignore) pairs names, base models first, by id."""
    return sorted((m for m in live.values() if any(
        _hit(m.id, watch) and not _hit(m.id, ignore) for watch, ignore in patterns)),
        key=lambda m: (m.variant is not None, m.id))


def _hit(model_id: str, patterns: tuple[str, ...]) -> bool:
    bare = model_id.lower()
    names = (bare, bare.split("/", 1)[0])
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


async def fetch_all(source: EndpointsSource, targets: Sequence[Target],
                    clock: Callable[[], datetime], sleep: Sleep, spacing: float = GAP
                    ) -> list[Fetched]:
    """Each target's endpoints, one request at a time, `spacing` (at least GAP) seconds apart.
    After GIVE_UP_AFTER faults in a row that are not one model's own (its 404, its path), the
    rest waits for the next round: OpenRouter is struggling, and more requests will not help."""
    fetched: list[Fetched] = []
    in_a_row = 0
    for number, target in enumerate(targets):
        if number:
            await sleep(max(GAP, spacing))
        got = await fetch_one(source, target)
        fetched.append(Fetched(target, clock(), got))
        in_a_row = in_a_row + 1 if isinstance(got, SourceFault) and not _own(got) else 0
        if in_a_row >= GIVE_UP_AFTER and number + 1 < len(targets):
            log.info("providers: %d faults in a row; the other %d models wait for the next round",
                     in_a_row, len(targets) - number - 1)
            break
    return fetched


async def fetch_one(source: EndpointsSource, target: Target) -> RawEndpoints | SourceFault:
    try:
        return await source.fetch_endpoints(target.details, target.slug)
    except SourceFault as fault:
        return fault
    except Exception as error:  # a fault in the adapter: recorded, not a crash
        return internal_fault("providers", error)


def _own(fault: SourceFault) -> bool:
    """A fault of one model only: its endpoints not found, or no path to them."""
    return fault.kind in ("bad_entries", "not_found")


async def poll_providers(source: EndpointsSource, work: ProvidersWork,
                         clock: Callable[[], datetime], rules: Rules, *, limit: int = LIMIT,
                         offload: Offload = inline, sleep: Sleep, spacing: float = GAP,
                         batch: int | None = None, after_batch: Callable[[], Awaitable[object]]
                         | None = None) -> list[Outcome]:
    """One round: choose the models, fetch them politely, and store and tell them (all at
    once, or every `batch` models, then `after_batch`, e.g. delivery)."""
    targets = await offload(lambda: choose_targets(work, limit))
    if not targets:
        return []
    size = batch or len(targets)
    outcomes: list[Outcome] = []
    for start in range(0, len(targets), size):
        if start:
            await sleep(max(GAP, spacing))
        fetched = await fetch_all(source, targets[start:start + size], clock, sleep, spacing)
        outcomes.append(await offload(partial(store_and_tell, work, clock(), rules, fetched)))
        if after_batch is not None:
            await after_batch()
        if len(fetched) < len(targets[start:start + size]):
            break  # gave up: OpenRouter is struggling
    return outcomes


def store_and_tell(work: ProvidersWork, at: datetime, rules: Rules,
                   fetched: Sequence[Fetched]) -> Outcome:
    """Store every model's providers, then queue one message per channel for all of them, in
    one unit of work; each model's store is a savepoint, so one failure costs only it."""
    try:
        with work:
            deltas: list[ProviderDelta] = []
            faults: list[tuple[str, SourceFault]] = []  # a model's, used or not
            failed = 0  # models that could not be used
            for item in fetched:
                try:
                    delta, rejected = observe(work, item)
                except SourceFault as fault:
                    faults.append((item.target.model, fault))
                    failed += 1
                    continue
                except Exception as error:
                    faults.append((item.target.model, internal_fault("providers", error)))
                    log.exception("providers of %s could not be stored", item.target.model)
                    failed += 1
                    continue
                if rejected is not None:  # some of its providers set aside; the rest used
                    faults.append((item.target.model, rejected))
                if delta is not None:
                    deltas.append(delta)
            outcome = _outcome(at, deltas, faults, rules, failed=failed, count=len(fetched))
            tell_channels(work, at, [outcome])
            keep_changes(work, at, [outcome])
            if faults:
                _record(work, at, faults, len(fetched), whole=outcome.fault is not None)
    except Exception as error:  # nothing of this round is kept; the next one does it again
        return record_fault(work, "providers", at, internal_fault("providers", error))
    return outcome


def observe(work: ProvidersWork, item: Fetched
            ) -> tuple[ProviderDelta | None, SourceFault | None]:
    """Store one model's payload and diff it with what was stored (None: the same bytes),
    with a fault naming the providers set aside, if any. A savepoint of its own."""
    if isinstance(item.got, SourceFault):
        raise item.got
    raw, model = item.got, item.target.model
    sha = hashlib.sha256(raw.body).hexdigest()
    with work:
        stored = work.providers.stored_providers(model)
        if stored is not None and stored.sha256 == sha:
            work.providers.confirm_providers(model, item.at, raw.keyed)
            return None, None
        endpoints = parse_endpoints(raw.body, model)
        fresh = stored is not None and item.at - stored.at <= STALE
        delta = provider_delta(model, stored.state if stored and fresh else None, endpoints)
        work.providers.save_providers(model, item.at, sha, raw.keyed, delta.state)
        rejected = rejected_fault(endpoints.rejected, PROVIDERS) if endpoints.rejected \
            else None
        return delta, rejected


def _outcome(at: datetime, deltas: Sequence[ProviderDelta],
             faults: Sequence[tuple[str, SourceFault]], rules: Rules, *, failed: int, count: int
             ) -> Outcome:
    """A fault only when no model could be used; otherwise what was found."""
    fault = _summary_fault(faults, count) if failed == count else None
    if fault is not None:
        return Outcome("providers", f"providers fault: {fault.message}", fault=fault)
    news = ProvidersNews(tuple(deltas))
    changes = tuple(hear(news, rules).changes)
    ok = count - failed
    summary = f"providers: {ok} of {count} models fetched, {len(changes)} changes"
    if not deltas:
        return Outcome("providers", summary)
    key = f"providers:{at:%Y%m%dT%H%M%S.%f}"
    return Outcome("providers", summary, changes, news=(news,), key=key,
                   baseline=all(d.baseline for d in deltas))


def _summary_fault(faults: Sequence[tuple[str, SourceFault]], count: int) -> SourceFault:
    """One fault for a batch, however many models failed: the first few named."""
    shown = "; ".join(f"{model}: {fault.message}" for model, fault in faults[:3])
    more = f"; and {len(faults) - 3} more" if len(faults) > 3 else ""
    kind = faults[0][1].kind
    error = SourceFault(kind, f"{len(faults)} of {count} models' providers could not be "
                        f"fetched or used: {shown}{more}")
    error.__cause__ = faults[0][1]
    return error


def _record(work: ProvidersWork, at: datetime, faults: Sequence[tuple[str, SourceFault]],
            count: int, *, whole: bool) -> None:
    fault = _summary_fault(faults, count)
    if whole:
        record_fault(work, "providers", at, fault)
        return
    work.snapshots.record_fault("providers", at, fault)
    log.warning("providers: %s; the other models were used", fault.message)
