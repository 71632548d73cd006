"""`/providers QUERY`: who serves a model, at what price and how well (pure: reads `History`).

Each matching model's providers as of its last endpoints fetch, cheapest first: input and
output price per 1M tokens, quantization, 30-minute uptime, p50 latency and p50 throughput.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal

from rankbot.bot.answers import SHOWN, UsageError, View, more_matches, shown
from rankbot.bot.cards import Card, Field, usd
from rankbot.bot.matching import catalog_index, search
from rankbot.bot.providers import Provider, by_price

PER_MODEL = 12  # providers listed per model; more are counted
NOT_YET = ("no provider data yet: rankbot polls the providers of the top 20 models by usage "
           "and of the models a channel watches, after each catalog poll")


def providers(view: View, query: str) -> Card:
    view.require_catalog()
    found = search(query, catalog_index(view.models))
    if not found.keys:
        hint = (f" Did you mean {' or '.join(f'`{s}`' for s in found.suggestions)}?"
                if found.suggestions else "")
        raise UsageError(f"No model matches `{shown(query)}`.{hint}")
    models: dict[str, str] = {}  # endpoints are per permaslug: one entry per base model
    for key in found.keys:
        model = view.models.get(key)
        if model is None or model.is_alias:
            continue
        base = view.models.get(model.id.split(":", 1)[0], model)
        models.setdefault(base.canonical_slug or base.id, base.id)
    ids = list(models.values())
    listed = view.history.provider_listings(ids[:SHOWN])
    fields = [Field(f"{view.models[i].name} ({i})", _listing(listed.get(i))) for i in ids[:SHOWN]]
    fields += more_matches(ids[SHOWN:])
    newest = max((at for at, _ in listed.values()), default=None)
    footer = "USD per 1M tokens, input / output · uptime over 30 min · " + (
        f"providers as of {newest:%Y-%m-%d %H:%M} UTC" if newest else "no provider data yet")
    return Card(f"Providers: {shown(query)}", (), tuple(fields), footer)


def _listing(listing: tuple[datetime, tuple[Provider, ...]] | None) -> str:
    if listing is None:
        return NOT_YET
    _, found = listing
    ranked = by_price(found)
    lines = [provider_line(p) for p in ranked[:PER_MODEL]]
    if len(ranked) > PER_MODEL:
        lines.append(f"and {len(ranked) - PER_MODEL} more")
    return "\n".join(lines) or "no provider serves it"


def _usd(price: Decimal | None) -> str:
    return "n/a" if price is None else usd(price)


def provider_line(provider: Provider) -> str:
    """`Google (google-vertex/global): $3.00 / $15.00 · fp8 · 99.8% up · 1,246 ms · 34 tok/s`"""
    parts = [f"{_usd(provider.prompt)} / {_usd(provider.completion)}"]
    if provider.quantization and provider.quantization != "unknown":
        parts.append(provider.quantization)
    parts.append("uptime n/a" if provider.uptime_30m is None
                 else f"{math.floor(provider.uptime_30m * 10) / 10:.1f}% up")
    latency, throughput = provider.latency[0], provider.throughput[0]
    parts.append("latency n/a" if latency is None else f"p50 {latency:,.0f} ms")
    parts.append("speed n/a" if throughput is None else f"{throughput:,.0f} tok/s")
    if provider.status is not None and provider.status < 0:
        parts.append(f"status {provider.status}")
    return f"{provider.label}: {' · '.join(parts)}"
