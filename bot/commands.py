"""The slash commands: parsing what people type, and one boundary nothing raises past.

Every platform calls `answer(command, text, history, now)`; the reply is a `Card` plus whether
it belongs in the channel (an answer) or only to the asker (help, errors).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from rankbot.bot import answers, best, charts, provider_answers, sunsets
from rankbot.bot.answers import MAX_QUERY, UsageError, View, shown
from rankbot.bot.buttons import Button
from rankbot.bot.cards import Card, fit
from rankbot.bot.ports import History

log = logging.getLogger(__name__)
MAX_TEXT = 300  # longer than any model name people type; anything past it is not a query
# Slack and Discord both show an error for a command not acknowledged within 3 seconds: an
# admin command still waiting on the database by then is acknowledged with BUSY, and its
# answer follows.
ACK_WITHIN = 2.5
BUSY = "Working on it: the database is busy. The answer follows here in a moment."

VERSUS = re.compile(r"\s+(?:vs\.?|versus)\s+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Reply:
    card: Card
    public: bool  # answers go in the channel; help and errors only to the asker
    # What to draw beside the answer (`/rank qwen`, `/price qwen`): the adapter draws it off
    # the event loop and attaches it; None for every other answer.
    chart: charts.Series | None = None
    buttons: tuple[Button, ...] = ()  # under the answer (an undo, say)


@dataclass(frozen=True, slots=True)
class Command:
    usage: str
    summary: str
    run: Callable[[View, list[str]], Card]
    personal: bool = False  # answered for one person, who is told alone (`bot.watches`)


def _rank(view: View, args: list[str]) -> Card:
    words, _ = charts.split_days(args)  # `/rank qwen 90d`: the days are the chart's
    return answers.rank(view, _query(words, required=False))


def _price(view: View, args: list[str]) -> Card:
    query, *versus = VERSUS.split(" ".join(args), maxsplit=1)
    if not query:
        raise UsageError("Which model? Try `/price deepseek` or `/price qwen vs gpt-4.1`.")
    other = _query(versus[0].split(), required=True) if versus else None
    return answers.price(view, _query(query.split(), required=True), other)


def _top(view: View, args: list[str]) -> Card:
    n, period = 10, "week"
    for arg in args:
        if arg.isdigit():
            n = _number(arg, "n", 1, 50)
        else:
            period = _period(arg)
    return answers.top(view, n, period)


def _movers(view: View, args: list[str]) -> Card:
    if len(args) > 1:
        raise UsageError("Usage: `/movers [day|week]`")
    return answers.movers(view, _period(args[0]) if args else "week")


def _new(view: View, args: list[str]) -> Card:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise UsageError("Usage: `/new [days]`, e.g. `/new 14`")
    return answers.new(view, _number(args[0], "days", 1, 90) if args else 7)


def _best(view: View, args: list[str]) -> Card:
    return best.best(view, *best.parse(args))


def _sunsets(view: View, args: list[str]) -> Card:
    if len(args) > 1 or (args and not args[0].isdigit()):
        raise UsageError("Usage: `/sunsets [days]`, e.g. `/sunsets 90`")
    days = _number(args[0], "days", 1, sunsets.MAX_DAYS) if args else sunsets.DEFAULT_DAYS
    return sunsets.answer(view.history, view.now, days)


def _providers(view: View, args: list[str]) -> Card:
    query = _query(args, required=False)
    if not query:
        raise UsageError("Which model? Try `/providers claude-sonnet` or `/providers gpt-4o`.")
    return provider_answers.providers(view, query)


def _personal(view: View, args: list[str]) -> Card:
    raise UsageError("Watches are personal: use `/watch` in Slack or Discord, where rankbot "
                     "knows who you are.")


def _help(view: View, args: list[str]) -> Card:
    return help_card()


COMMANDS: dict[str, Command] = {
    "rank": Command("/rank [query] [90d]", "a model's usage rank, trend, share and price; no "
                    "query: the top 10", _rank),
    "price": Command("/price query [vs query]", "every price a model has (input, output, "
                     "cache, long-context tiers, per search or image) and how they moved", _price),
    "top": Command("/top [n] [day|week]", "the top n models by tokens (default 10, week)", _top),
    "movers": Command("/movers [day|week]", "the biggest climbs, falls and share gains", _movers),
    "new": Command("/new [days]", "models added to the catalog or new in the top 50 (default "
                   "7 days)", _new),
    "best": Command("/best [intelligence|coding|agentic] [under PRICE]", "the best quality "
                    "per dollar, with usage beside it", _best),
    "sunsets": Command("/sunsets [days]", "models OpenRouter retires within the days "
                       "(default 30), with dates and successors", _sunsets),
    "providers": Command("/providers query", "who serves a model: each provider's price, "
                         "quantization, uptime, latency and speed, cheapest first", _providers),
    "watch": Command("/watch [query | quiet HH:MM-HH:MM [zone] | moves N]", "follow a model "
                     "in your direct messages (up to 20); no query: what you watch", _personal,
                     personal=True),
    "unwatch": Command("/unwatch query", "stop following a model (or `all`)", _personal,
                       personal=True),
    "help": Command("/help", "this list", _help),
}


def help_card() -> Card:
    return Card("rankbot commands", tuple(f"`{c.usage}` — {c.summary}" for c in COMMANDS.values()),
                footer="Answers come from rankbot's own copy of OpenRouter's data.")


def answer(command: str, text: str, history: History, now: datetime) -> Reply:
    """Answer one command. Bad input gets a short reply; an unexpected error is logged with its
    traceback and gets an apology — never an exception past this point."""
    name = command.strip().lstrip("/").lower()
    try:
        spec = COMMANDS.get(name)
        if spec is None:
            raise UsageError(f"Unknown command `{shown(name)}`. Try "
                             + ", ".join(f"`/{n}`" for n in COMMANDS) + ".")
        card = spec.run(View(history, now), words(text))
        return Reply(fit(card), public=name != "help" and not spec.personal)
    except UsageError as exc:
        return private(name, str(exc))
    except Exception:
        log.exception("answering /%s failed", name)
        return private(name, "Sorry, that failed on our side; the error is logged.")


CHARTED = ("rank", "price")  # the commands whose answers carry a chart


def answer_with_chart(command: str, text: str, history: History, now: datetime) -> Reply:
    """`answer`, with the chart of the model it is about where the command has one
    (`/rank QUERY [90d]`, `/price QUERY`). A chart that cannot be had (no rankings for the
    model, prices per request) leaves the answer as it is: the answer says what there is."""
    reply = answer(command, text, history, now)
    name = command.strip().lstrip("/").lower()
    if not reply.public or name not in CHARTED or not isinstance(history, charts.ChartHistory):
        return reply
    return replace(reply, chart=chart_of(name, text, history, now))



def chart_of(name: str, text: str, history: charts.ChartHistory, now: datetime
             ) -> charts.Series | None:
    try:
        args = words(text)
        if name == "rank":
            query, days = charts.split_days(args)
            return charts.rank_series(history, _query(query, required=False), now, days) \
                if query else None
        first = VERSUS.split(" ".join(args), maxsplit=1)[0]
        return charts.price_series(history, _query(first.split(), required=True), now)
    except UsageError:
        return None
    except Exception:
        log.exception("the chart for /%s failed; the answer goes without it", name)
        return None


def private(name: str, message: str) -> Reply:
    return Reply(fit(Card(f"/{shown(name, 20)}", (message,))), public=False)


def ask(line: str, history: History, now: datetime) -> Reply:
    """A whole command line, as `rankbot ask "rank qwen"` takes it."""
    name, _, text = line.strip().partition(" ")
    return answer(name or "help", text, history, now)


def words(text: str) -> list[str]:
    """Text split into words, control characters dropped; too long is a usage error."""
    if len(text) > MAX_TEXT:
        raise UsageError("That is too long for a model name. Try `/rank qwen` or `/help`.")
    clean = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return clean.split()


def _query(words: list[str], required: bool) -> str:
    query = " ".join(words).strip("`'\"“”‘’ ")
    if len(query) > MAX_QUERY:
        raise UsageError(f"Model names are shorter than {MAX_QUERY} characters. Try a part of "
                         "one, like `qwen`.")
    if required and not query:
        raise UsageError("Which model? Try `/price deepseek`.")
    return query


def _number(text: str, name: str, low: int, high: int) -> int:
    value = int(text)
    if not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}.")
    return value


def _period(text: str) -> str:
    period = text.lower()
    if period not in ("day", "week"):
        raise UsageError(f"`{shown(text)}` is not a period: use `day` or `week`.")
    return period
