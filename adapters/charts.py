"""Charts as PNG images, drawn with matplotlib from bot/charts.py's series.

matplotlib is imported when the first chart is drawn (the cold cost; nothing else needs it),
with the Agg canvas: no display, safe in a worker thread, so callers on the event loop draw
with `asyncio.to_thread`. A series is the key of its image: the same data is drawn once.

The palette reads on Slack's and Discord's light and dark themes alike: the background is
transparent, so the chat's own shows through, and text, axes and grid are a mid grey
(#8c8c8c: about 3.4:1 against white, 5:1 against Slack's dark #1a1d21), the lines a mid-tone
blue and orange, which keep their contrast on both. Nothing white or black that would vanish.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from rankbot.bot.charts import CREDIT, PriceSeries, RankSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GREY = "#8c8c8c"
BLUE = "#3b82f6"  # rank; input price
ORANGE = "#f08c2e"  # share of tokens; output price
WIDTH, HEIGHT, DPI = 8.0, 4.0, 120  # 960 × 480 pixels: sharp in a chat preview
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CACHED = 64  # images kept; a series (its data version) is the key

_cache: OrderedDict[RankSeries | PriceSeries, bytes] = OrderedDict()
_lock = threading.Lock()
_drawn = [0]  # images actually drawn, a cache hit aside (tests, bench)


def draws() -> int:
    return _drawn[0]


def png(series: RankSeries | PriceSeries) -> bytes:
    """The chart of one series as PNG bytes, from the cache when the same data was drawn."""
    with _lock:
        if series in _cache:
            _cache.move_to_end(series)
            return _cache[series]
    image = _rank_png(series) if isinstance(series, RankSeries) else _price_png(series)
    with _lock:
        _drawn[0] += 1
        _cache[series] = image
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return image


def _figure() -> tuple[Figure, Axes]:
    # The cold cost, paid on the first draw only; Figure alone renders with Agg, no pyplot.
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    axes = figure.add_subplot()
    figure.subplots_adjust(left=0.09, right=0.91, top=0.87, bottom=0.2)
    _grey(axes)
    axes.grid(color=GREY, alpha=0.25, linewidth=0.6)
    return figure, axes


def _day(at: date | datetime) -> float:
    """matplotlib's date number (days since 1970-01-01, its default epoch), typed."""
    if not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day, tzinfo=UTC)
    return (at - EPOCH).total_seconds() / 86400


def _grey(axes: Axes) -> None:
    for spine in axes.spines.values():
        spine.set_color(GREY)
    axes.tick_params(colors=GREY, labelsize=8)


def _finish(figure: Figure, axes: Axes, title: str, footer: str) -> bytes:
    import matplotlib.dates as mdates  # noqa: PLC0415

    axes.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))  # type: ignore[no-untyped-call]
    figure.suptitle(title, color=GREY, fontsize=11, x=0.09, ha="left")
    figure.text(0.09, 0.035, footer, color=GREY, fontsize=7, ha="left")
    figure.text(0.09, 0.075, CREDIT, color=GREY, fontsize=7, ha="left")
    out = io.BytesIO()
    figure.savefig(out, format="png", transparent=True)
    return out.getvalue()


def _rank_png(series: RankSeries) -> bytes:
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    figure, axes = _figure()
    days = [_day(d.day) for d in series.days]
    share = axes.twinx()
    _grey(share)
    share.bar(days, [(d.share or 0.0) * 100 for d in series.days], color=ORANGE, alpha=0.5,
              width=0.8)
    share.set_ylim(bottom=0)
    share.set_ylabel("share of tokens, %", color=ORANGE, fontsize=8)
    axes.set_zorder(share.get_zorder() + 1)  # the rank line over the bars
    axes.patch.set_visible(False)
    ranks = [float(d.rank) if d.rank else float("nan") for d in series.days]
    axes.plot(days, ranks, color=BLUE, linewidth=2, marker="o", markersize=3)
    worst = max((d.rank for d in series.days if d.rank), default=10)
    axes.set_ylim(worst + 0.5, 0.5)  # #1 at the top
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("daily rank", color=BLUE, fontsize=8)
    axes.set_xlim(days[0] - 0.6, days[-1] + 0.6)
    return _finish(figure, axes, f"{series.label} · last {len(days)} days", series.footer)


def _price_png(series: PriceSeries) -> bytes:
    figure, axes = _figure()
    for points, colour, name in ((series.prompt, BLUE, "input"),
                                 (series.completion, ORANGE, "output")):
        if not points:
            continue
        times = [_day(at) for at, _ in points] + [_day(series.end)]
        prices = [float(p) if p is not None else float("nan") for _, p in points]
        axes.step(times, [*prices, prices[-1]], where="post", color=colour, linewidth=2,
                  label=name)
    axes.set_ylim(bottom=0)
    axes.set_ylabel("USD per 1M tokens", color=GREY, fontsize=8)
    legend = axes.legend(loc="upper left", fontsize=8, frameon=False)
    for text in legend.get_texts():
        text.set_color(GREY)
    return _finish(figure, axes, f"{series.label} · price", series.footer)
