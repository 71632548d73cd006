"""The `rankbot` command line. Reads settings, opens the app through the composition root."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import discord as discord_api
from dotenv import dotenv_values

from rankbot.adapters.charts import png as chart_png
from rankbot.adapters.console import ConsoleNotifier, OperatorIsAdmin, render_text, terminal_safe
from rankbot.adapters.discord_chat import (
    DiscordContext,
    application_id,
    build_tree,
    commands_json,
    invite_url,
)
from rankbot.adapters.discord_chat import intents as discord_intents
from rankbot.bot import charts
from rankbot.bot.admin import administer
from rankbot.bot.answers import UsageError
from rankbot.bot.channels import CONSOLE
from rankbot.bot.commands import ask as ask_line
from rankbot.bot.config import ConfigError, Settings, layered, load_settings, with_secret_files
from rankbot.bot.digest import queue_due_digests, weekly_digest
from rankbot.bot.faults import SourceFault
from rankbot.bot.health import assess
from rankbot.bot.history import ImportRejected, backfill, import_snapshot, time_from_name
from rankbot.bot.polling import Outcome
from rankbot.bot.ports import FetchRecord, InPlace
from rankbot.bot.rules import DEFAULT_RULES
from rankbot.bot.status import (
    SourceStatus,
    catalog_detail,
    connection_lines,
    database_lines,
    delivery_lines,
    providers_detail,
    rankings_detail,
    source_lines,
)
from rankbot.shell import bootstrap
from rankbot.shell.export import export
from rankbot.storage import UnitOfWork
from rankbot.storage.health import DatabaseUnusable, diagnose

T = TypeVar("T")
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "discord", "aiohttp.access")
DB_PATH = "rankbot.db_path"  # where `_setup` leaves the database's path for `Shell`
ENV_FILE = "rankbot.env_file"  # the .env file `_setup` reads (--env-file)
SECRET_MAX_BYTES = 64 * 1024


class DatabaseExit(click.ClickException):
    """A database that cannot serve: one line naming it and what to do, exit 2."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"rankbot: {terminal_safe(self.message)}", file=file, err=True)


class Shell(click.Group):
    """Every command: a database that cannot serve, found wherever, is one line and exit 2;
    the log file keeps the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DatabaseUnusable, sqlite3.Error) as error:  # the latter met mid-command
            path = ctx.meta.get(DB_PATH)
            if (unusable := diagnose(path, error) if path else None) is None:
                raise
            _log_to_file(str(unusable), error)
            raise DatabaseExit(str(unusable)) from None


def _log_to_file(message: str, error: BaseException) -> None:
    """An error with its traceback for the log file alone: the terminal gets one line."""
    record = logging.getLogger(__name__).makeRecord(
        __name__, logging.ERROR, __file__, 0, "%s", (message,),
        (type(error), error, error.__traceback__))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@click.group(cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rankbot")
@click.option("--env-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read settings from this file instead of ./.env; the environment still "
                   "wins over it.")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None) -> None:
    """rankbot watches OpenRouter's model rankings and prices and reports what changed.

    Settings come from the environment and ./.env (see .env.example); each secret may instead
    come from a file named by NAME_FILE.
    """
    ctx.meta[ENV_FILE] = env_file or Path(".env")  # an explicit one must exist; ./.env may not


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per change, one per line, instead of a message.")
def poll(as_json: bool) -> None:
    """Fetch OpenRouter once, store, diff, report what changed, and exit (cron-friendly).

    What is printed follows the console channel's rules (rankbot ask rankbot config).
    Exits 1 if a source failed; its last good data stays in use.
    """
    settings = _setup()

    async def main() -> list[Outcome]:
        async with bootstrap.open_app(settings, ConsoleNotifier(as_json=as_json)) as app:
            outcomes = await app.poll()
            await app.deliver()
            return outcomes

    outcomes = _run(main())
    if any(o.fault for o in outcomes):
        sys.exit(1)


@cli.command()
def run() -> None:
    """Run until stopped: poll OpenRouter, send alerts and weekly digests to every subscribed
    channel, and answer Slack and Discord commands when their tokens are set."""
    settings = _setup()

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with bootstrap.open_app(settings, threaded=True) as app:
            await bootstrap.run_until_stopped(app, stop)

    with contextlib.suppress(KeyboardInterrupt):
        _run(main())
    click.echo("rankbot stopped.", err=True)


@cli.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
              help="When the files were fetched (UTC); overrides the time in their names.")
def import_(files: Sequence[Path], at: datetime | None) -> None:
    """Load saved models JSON (.json, .json.gz) and rankings CSV files as history.

    The fetch time comes from each file name (2026-07-20T194813Z.json) or --at.
    Catalogs are stored oldest first; nothing is sent to any channel.
    """
    settings = _setup()
    stamped = [(_file_time(f, at), f) for f in files]
    store = bootstrap.open_store(settings)
    failed = False
    try:
        for when, path in sorted(stamped):
            outcome = import_snapshot(store, path.name.removesuffix(".gz"), _read(path), when,
                                      DEFAULT_RULES)
            failed |= outcome.fault is not None
            click.echo(terminal_safe(f"{path.name}: {outcome.summary}"))
    except ImportRejected as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if failed:
        sys.exit(1)


@cli.command("backfill")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="How many complete UTC days back to fill.")
def backfill_command(days: int) -> None:
    """Fill older daily rankings from OpenRouter's keyed API (needs OPENROUTER_API_KEY).

    Days already stored from the export are kept as they are.
    """
    settings = _setup()
    if not settings.openrouter_api_key:
        raise click.ClickException("backfill needs OPENROUTER_API_KEY (in the environment or .env)")

    async def main() -> int:
        async with bootstrap.open_app(settings) as app:
            now = app.clock()
            return await backfill(app.source, app.store, days, now.date(), now)

    try:
        added = _run(main())
    except SourceFault as fault:
        logging.getLogger(__name__).debug("backfill failed", exc_info=fault)
        raise click.ClickException(f"backfill failed: {fault.message}") from None
    click.echo(f"Backfilled {added} days of rankings.")


@cli.command()
@click.argument("command", nargs=-1, required=True)
@click.option("--chart", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="rank or price only: also write the model's chart to this PNG file.")
def ask(command: Sequence[str], chart: Path | None) -> None:
    """Answer a slash command here, as Slack and Discord would: rankbot ask rank qwen.

    Commands: rank, price, top, movers, new, help, and the console channel's admin commands:
    rankbot ask rankbot config, rankbot ask rankbot set top_n 10.
    """
    settings = _setup(log_to_terminal=False)
    line = " ".join(command).strip().removeprefix("/")
    if chart is not None:
        _write_chart(settings, line, chart)
        return
    admin = line.split(" ", 1)[0].lower() == "rankbot"  # the console's rules: they may change
    store = bootstrap.open_store(settings, writes=admin)
    try:
        if admin:
            reply = asyncio.run(administer(
                line.partition(" ")[2], ref=CONSOLE, user=os.environ.get("USER", "operator"),
                authorizer=OperatorIsAdmin(), work=store, now=bootstrap.utc_now()))
        else:
            reply = ask_line(line, store.snapshots, bootstrap.utc_now())
    finally:
        store.close()
    click.echo(render_text(reply.card))


def _write_chart(settings: Settings, line: str, path: Path) -> None:
    """`rankbot ask rank qwen [90d] --chart qwen.png`: the chart only, or a one-line error."""
    name, *args = line.split()
    store = bootstrap.open_store(settings, writes=False)
    try:
        now = bootstrap.utc_now()
        if name.lower() == "rank":
            words, days = charts.split_days(args)
            series: charts.RankSeries | charts.PriceSeries = charts.rank_series(
                store.snapshots, " ".join(words), now, days)
        elif name.lower() == "price":
            series = charts.price_series(store.snapshots, " ".join(args), now)
        else:
            raise click.ClickException("--chart goes with `rank QUERY` or `price QUERY`.")
    except UsageError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    path.write_bytes(chart_png(series))
    click.echo(f"Wrote {series.label}'s chart to {path}.")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Print this week's digest here; send nothing.")
def digest(dry_run: bool) -> None:
    """Send the weekly digest to every channel whose digest time has passed this week and
    that has not had it (rankbot run does this by itself). The digest covers the last 7
    complete UTC days against the 7 before."""
    settings = _setup()
    if dry_run:
        store = bootstrap.open_store(settings, writes=False)
        try:
            card = weekly_digest(store.snapshots, bootstrap.utc_now())
        finally:
            store.close()
        if card is None:
            raise click.ClickException("no rankings yet: run `rankbot poll` first")
        click.echo(render_text(card))
        return

    async def main() -> None:
        async with bootstrap.open_app(settings) as app:
            queued = queue_due_digests(app.store, app.clock())
            await app.deliver()
        click.echo(f"Weekly digest queued for {queued} channel(s).", err=True)

    _run(main())


@cli.command()
@click.option("--check", is_flag=True,
              help="Print one line instead: healthy, degraded or down, and why; exit 0, 1 or 2 "
                   "(for a container's HEALTHCHECK or a monitor).")
def status(check: bool) -> None:
    """Show the last good fetch and last fault of each source, counts, database size and
    damaged pages (SQLite's quick_check), the subscribed channels, the outbox, dead letters and
    paused channels with the reason. A database this user cannot write is read as it is."""
    settings = _setup(log_to_terminal=False)
    if check:
        health = assess(bootstrap.probe_health(settings, bootstrap.utc_now(), _unreadable))
        click.echo(terminal_safe(health.line()))
        sys.exit(health.level)
    path = settings.db_path
    store = bootstrap.open_store(settings, writes=False)
    try:
        lines = database_lines(str(path), _db_bytes(path), store.quick_check(), store.read_only)
        counts = _unless_damaged("counts", store.snapshots.counts)
        lines += _section("Catalog", lambda: source_lines(_catalog_status(store, counts)))
        lines += _section("Rankings", lambda: source_lines(_rankings_status(store, counts)))
        lines += _section("Providers", lambda: source_lines(_providers_status(store)))
        lines += _section("Channels", lambda: delivery_lines(
            store.channels.subscriptions(), store.outbox.outbox_counts(),
            store.outbox.dead_letters()))
        lines += _section("Chat", lambda: connection_lines(store.channels.connections(),
                                                           bootstrap.utc_now()))
    finally:
        store.close()
    click.echo(terminal_safe("\n".join(lines)))


def _catalog_status(store: UnitOfWork, counts: dict[str, int] | None) -> SourceStatus:
    snapshots = store.snapshots
    return SourceStatus("catalog", snapshots.last_catalog_fetch(), snapshots.last_fault("catalog"),
                        catalog_detail(counts))


def _rankings_status(store: UnitOfWork, counts: dict[str, int] | None) -> SourceStatus:
    snapshots = store.snapshots
    return SourceStatus("rankings", snapshots.last_rankings_fetch(),
                        snapshots.last_fault("rankings"),
                        rankings_detail(counts, snapshots.latest_ranking_date()))


def _providers_status(store: UnitOfWork) -> SourceStatus:
    summary = store.providers.summary()
    last = FetchRecord(summary.last, "", summary.models) if summary.last else None
    return SourceStatus("providers", last, store.snapshots.last_fault("providers"),
                        providers_detail(summary.models, summary.providers, summary.keyed))


def _section(label: str, read: Callable[[], list[str]]) -> list[str]:
    lines = _unless_damaged(label.lower(), read)
    return [f"{label:<10} cannot be read: its pages are damaged"] if lines is None else lines


def _unless_damaged(what: str, read: Callable[[], T]) -> T | None:
    """A part of `status`; None where its pages are damaged, so that the rest still shows."""
    return bootstrap.unless_damaged(what, read, _unreadable)


def _unreadable(what: str, error: sqlite3.DatabaseError) -> None:
    _log_to_file(f"status: the {what} cannot be read", error)  # the log file keeps the error


cli.add_command(export)


@cli.group()
def discord() -> None:
    """Discord: sync the slash commands, show them, or get the invite link."""


@discord.command("sync")
@click.option("--guild", type=int, help="Sync to one server, at once (global sync can take "
                                        "up to an hour to show).")
def discord_sync(guild: int | None) -> None:
    """Register the slash commands with Discord. Run it once, and again after upgrading:
    Discord limits command writes, so rankbot never syncs on its own."""
    settings = _discord_settings()

    async def main() -> int:
        store = bootstrap.open_store(settings, writes=False)  # a broken one is said before login
        try:
            client = await bootstrap.open_discord(settings)
            try:
                tree = build_tree(client, DiscordContext(InPlace(store), bootstrap.utc_now))
                target = discord_api.Object(id=guild) if guild else None
                if target is not None:
                    tree.copy_global_to(guild=target)
                return len(await tree.sync(guild=target))
            finally:
                await client.close()
        finally:
            store.close()

    count = _run(main())
    where = f"to server {guild}" if guild else "globally (allow up to an hour to appear)"
    click.echo(f"Synced {count} commands {where}.")


@discord.command("commands")
def discord_commands() -> None:
    """Print the JSON that `rankbot discord sync` sends."""
    settings = _setup(log_to_terminal=False)
    store = bootstrap.open_store(settings, writes=False)
    try:
        client = discord_api.Client(intents=discord_intents())
        tree = build_tree(client, DiscordContext(InPlace(store), bootstrap.utc_now))
        click.echo(json.dumps(commands_json(tree), indent=2))
    finally:
        store.close()


@discord.command("invite")
def discord_invite() -> None:
    """Print the link that adds the bot to a server, with the scopes bot and
    applications.commands and the permissions it needs (view channels, send messages,
    embed links)."""
    settings = _discord_settings()
    token = settings.discord_bot_token or ""
    try:
        app_id = settings.discord_application_id or application_id(token)
    except ValueError:
        raise click.ClickException("cannot read the application id from DISCORD_BOT_TOKEN: set "
                                   "DISCORD_APPLICATION_ID") from None
    click.echo(invite_url(app_id))


def _discord_settings() -> Settings:
    settings = _setup()
    if not settings.discord:
        raise click.ClickException("set DISCORD_BOT_TOKEN (in the environment or .env) first")
    return settings


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run async work; a setting that turns out to be refused (a token) is one clear line."""
    try:
        return asyncio.run(work)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _setup(log_to_terminal: bool = True) -> Settings:
    """Settings from the environment over the .env file (--env-file), secrets from their
    NAME_FILE where set, and logging: terminal lines, file tracebacks."""
    ctx = click.get_current_context()
    try:
        dotenv = {k: v for k, v in dotenv_values(ctx.meta.get(ENV_FILE, ".env")).items()
                  if v is not None}
        settings = load_settings(with_secret_files(layered(dotenv, os.environ), _read_secret))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings, log_to_terminal)
    ctx.meta[DB_PATH] = settings.db_path
    return settings


def _read_secret(path: str) -> str:
    """A secret file's text. Bounded, so that a wrong path (a log, /dev/zero) is an error, not a
    token; neither error quotes what the file holds."""
    with open(path, "rb") as file:
        data = file.read(SECRET_MAX_BYTES + 1)
    if len(data) > SECRET_MAX_BYTES:
        raise ValueError(f"is larger than {SECRET_MAX_BYTES // 1024} KB: not a secret")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None


class LineFormatter(logging.Formatter):
    """One record, one line: a line break or control character in a message (outside text
    quoted in it) can neither forge another record nor drive the terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return terminal_safe(super().formatMessage(record).replace("\n", "\\n"))


class OneLineFormatter(LineFormatter):
    """Terminal lines without tracebacks; the log file keeps those."""

    def format(self, record: logging.LogRecord) -> str:
        line = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None,
                                      "stack_info": None})
        return super().format(line)


def configure_logging(settings: Settings, log_to_terminal: bool) -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "rankbot", False)]:
        root.removeHandler(handler)  # a second command in one process (tests) starts afresh
        handler.close()
    root.setLevel(logging.DEBUG)
    handlers: list[logging.Handler] = []
    if settings.log_file is not None:  # None: RANKBOT_LOG_FILE set but empty
        handlers.append(_log_file(settings.log_file, settings))
    if log_to_terminal:
        terminal = logging.StreamHandler(sys.stderr)
        terminal.setLevel(settings.log_level)
        # Without a file (a container), the terminal is the only place a traceback can go.
        lines = OneLineFormatter if settings.log_file else LineFormatter
        terminal.setFormatter(lines("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
        handlers.append(terminal)
    if not handlers:  # neither file nor terminal: dropped, not logging's bare stderr fallback
        handlers.append(logging.NullHandler())
    for handler in handlers:
        handler.rankbot = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _log_file(path: Path, settings: Settings) -> logging.Handler:
    """The log file, with tracebacks; rotated at RANKBOT_LOG_MAX_MB so that nothing (a flood
    of requests, a fault repeating for weeks) can fill the disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = RotatingFileHandler(path, maxBytes=max(1, int(settings.log_max_mb * 1_000_000)),
                                  backupCount=settings.log_backups, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(LineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return to_file


def _file_time(path: Path, at: datetime | None) -> datetime:
    when = at.replace(tzinfo=UTC) if at else time_from_name(path.name)
    if when is None:
        raise click.BadParameter(f"cannot tell when {path.name} was fetched: name it like "
                                 "2026-07-20T194813Z.json or pass --at", param_hint="FILES")
    return when


def _read(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
