"""Charts as PNG images, drawn with matplotlib from bot/charts.py's series.

matplotlib is imported when the first chart is drawn (the cold cost; nothing else needs it),
with the Agg canvas: no display, safe in a worker thread, so callers on the event loop draw
with `asyncio.to_thread`. A series is the key of its image: the same data is drawn once.

The palette reads on Slack's and Discord's light and dark themes alike: the background is
transparent, so the chat's own shows through, and text, axes and grid are a mid grey
(#8c8c8c: about 3.4:1 against white, 5:1 against Slack's dark #1a1d21), the lines a mid-tone
blue and orange, which keep their contrast on both. Nothing white or black that would vanish.
The week chart's ten lines take LINES: ten hues of one lightness (OKLCH L 0.645), each at least
3:1 against white, Slack's dark #1a1d21 and Discord's dark #313338, ordered so that neighbours
in the top 10 differ most in hue.

Model names are outside text: every text is drawn with mathtext and TeX off, so a name with
`$...$` in it is printed as typed, never parsed (nor an error at draw time).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from rankbot.bot.answers import move
from rankbot.bot.charts import CREDIT, PriceSeries, RankSeries, Series, WeekLine, WeekSeries

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

GREY = "#8c8c8c"
BLUE = "#3b82f6"  # rank; input price
ORANGE = "#f08c2e"  # share of tokens; output price
LINES = ("#ef4c4b", "#5fa307", "#0297df", "#e04da1", "#a48d0e", "#01a0ad", "#b760e2",
         "#cb7512", "#16a580", "#747cfe")
PLAIN: dict[str, Any] = {"parse_math": False, "usetex": False}  # names: never mathtext nor TeX
LABEL = 28  # characters of a model's name beside its line
DEEPEST = 20  # the week chart shows ranks 1–20 at most; a line below runs off the bottom
WIDTH, HEIGHT, DPI = 8.0, 4.0, 120  # 960 × 480 pixels: sharp in a chat preview
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CACHED = 64  # images kept; a series (its data version) is the key

_cache: OrderedDict[Series, bytes] = OrderedDict()
_lock = threading.Lock()  # the cache
_drawing = threading.Lock()  # one draw at a time
_drawn = [0]  # images actually drawn, a cache hit aside (tests, bench)


def draws() -> int:
    return _drawn[0]


def png(series: Series) -> bytes:
    """The chart of one series as PNG bytes, from the cache when the same data was drawn.
    One draw at a time: a digest sent to many channels at once draws its chart once (the
    others wait, then find it), and drawing is CPU-bound, so no throughput is lost."""
    if (image := _cached(series)) is not None:
        return image
    with _drawing:
        if (image := _cached(series)) is not None:
            return image
        image = _draw(series)
        with _lock:
            _drawn[0] += 1
            _cache[series] = image
            while len(_cache) > CACHED:
                _cache.popitem(last=False)
    return image


def _cached(series: Series) -> bytes | None:
    with _lock:
        if series in _cache:
            _cache.move_to_end(series)
            return _cache[series]
    return None


def _draw(series: Series) -> bytes:
    if isinstance(series, RankSeries):
        return _rank_png(series)
    if isinstance(series, PriceSeries):
        return _price_png(series)
    return _week_png(series)


def warm() -> None:
    """Pay the cold cost (matplotlib's import, its fonts) before anyone asks for a chart:
    `rankbot run` calls it in a worker thread at start when a chat platform is on."""
    with _drawing:
        figure, axes = _figure()
        axes.plot([0.0, 1.0], [1.0, 0.0], marker="o")
        _finish(figure, axes, "▲▼ warm", "")


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
    figure.suptitle(title, color=GREY, fontsize=11, x=0.09, ha="left", **PLAIN)
    figure.text(0.09, 0.035, footer, color=GREY, fontsize=7, ha="left", **PLAIN)
    figure.text(0.09, 0.075, CREDIT, color=GREY, fontsize=7, ha="left", **PLAIN)
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


def _week_png(series: WeekSeries) -> bytes:
    """A bump chart: each model's daily rank over the week, #1 on top, named at the right."""
    from matplotlib.ticker import FixedLocator, FuncFormatter  # noqa: PLC0415

    figure, axes = _figure()
    figure.subplots_adjust(right=0.72)  # room for the names
    days = [_day(d) for d in series.days]
    ranked = [r for line in series.lines for r in line.ranks if r is not None]
    deepest = min(max([len(series.lines), *ranked]), DEEPEST)
    for n, line in reversed(list(enumerate(series.lines))):  # the leader drawn last, on top
        _bump(axes, days, line, LINES[n % len(LINES)])
    axes.set_ylim(deepest + 0.5, 0.5)  # #1 at the top
    axes.yaxis.set_major_locator(FixedLocator(range(1, deepest + 1)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"#{y:.0f}"))
    axes.set_ylabel("daily rank by tokens", color=GREY, fontsize=8)
    axes.set_xlim(days[0] - 0.3, days[-1] + 0.3)
    axes.xaxis.set_major_locator(FixedLocator(days))
    axes.grid(axis="x", visible=False)
    _name_lines(axes, days[-1], series.lines, deepest)
    start, end = series.days[0], series.days[-1]
    title = (f"Top {len(series.lines)} by tokens · {start:%b} {start.day} – "
             f"{end:%b} {end.day}, {end.year}")
    return _finish(figure, axes, title, f"▲▼ the week against the week before · {series.footer}")


def _bump(axes: Axes, days: list[float], line: WeekLine, colour: str) -> None:
    """Solid between days ranked in a row; dotted across the days without a rank."""
    known = [(x, float(r)) for x, r in zip(days, line.ranks, strict=True) if r is not None]
    if len(known) > 1:
        axes.plot(*zip(*known, strict=True), color=colour, linewidth=1, linestyle=":", alpha=0.7)
    ranks = [float(r) if r is not None else float("nan") for r in line.ranks]
    axes.plot(days, ranks, color=colour, linewidth=2.2, marker="o", markersize=4)


def _name_lines(axes: Axes, last: float, lines: tuple[WeekLine, ...], deepest: int) -> None:
    """Each name beside its line's rank on the last day; a line that has none there (it left
    the top 50, or that day has no data) takes the free place nearest its last rank, in italics."""
    places = _places(lines, deepest)
    for n, line in enumerate(lines):
        axes.annotate(f"{move(line.before, line.rank)} {_short(line)}", (last, places[n]),
                      xytext=(10, 0), textcoords="offset points", va="center", fontsize=8,
                      color=LINES[n % len(LINES)], annotation_clip=False,
                      style="normal" if line.ranks[-1] == places[n] else "italic", **PLAIN)


def _places(lines: tuple[WeekLine, ...], deepest: int) -> list[int]:
    """A rank row 1..deepest per line, no two alike (deepest >= the number of lines): the last
    day's rank where it is free, else the free row nearest the line's last rank."""
    places: dict[int, int] = {}
    for n, line in enumerate(lines):
        end = line.ranks[-1]
        if end is not None and end <= deepest and end not in places.values():
            places[n] = end
    for n, line in enumerate(lines):
        if n not in places:
            known = [r for r in line.ranks if r is not None]
            want = min(known[-1], deepest) if known else deepest
            free = set(range(1, deepest + 1)) - set(places.values())
            places[n] = min(free, key=lambda row: (abs(row - want), row))
    return [places[n] for n in range(len(lines))]


def _short(line: WeekLine) -> str:
    """The model's name alone (the slug the digest adds does not fit), on one line, clipped."""
    name = " ".join(line.label.removesuffix(f" ({line.permaslug})").split())
    return name if len(name) <= LABEL else name[:LABEL - 1] + "…"
