"""SQL views of the history for a person browsing the file (`datasette rankbot.db`, or any
SQLite browser): the current catalog with prices as numbers, every price step, each day's
usage. rankbot owns them: `migrate` drops them before a migration (while a view names a column
that a rebuilt table lost, SQLite refuses every ALTER TABLE) and creates them after, on every
writable open; a read-only open leaves the file as it is.

Prices are stored as exact decimal strings in USD per 1M tokens (`bot.catalog.per_million`),
such as "0.06006" or "3E+1"; here they are REAL numbers rounded to 6 decimals (a millionth of a
dollar per 1M tokens), NULL where there is none (a router priced by the model it picks)."""

from __future__ import annotations

from sqlite_utils import Database


def _usd(column: str) -> str:
    return f"ROUND(CAST({column} AS REAL), 6)"


def _real(expression: str) -> str:
    # A view's column that is a CAST has the type's affinity, and a function's has none: with
    # it, a filter whose value comes as text (Datasette's `?prompt_usd_per_1m__lt=0.5`)
    # compares as a number, not as text, which every number is less than.
    return f"CAST({expression} AS REAL)"


def _changed(side: str) -> str:
    """The versions that start a step of `side`'s price: after a time unlisted (or first) with
    a price, or else with a price that differs from the version before's."""
    return (f"  SELECT model_id, name, from_fetch, run_end, '{side}' AS side, {side} AS usd,\n"
            f"         was_{side} AS previous FROM runs\n"
            f"   WHERE CASE WHEN listed_before THEN {side} IS NOT was_{side} "
            f"ELSE {side} IS NOT NULL END")


# name → SELECT. Changing one changes its CREATE VIEW text, which replaces it at the next open.
VIEWS: dict[str, str] = {
    # The models in the newest catalog fetch ('live'; 'vanished' ones were missing from it).
    "current_catalog": f"""
SELECT v.model_id, v.name, v.canonical_slug,
       {_real(_usd("v.prompt"))} AS prompt_usd_per_1m,
       {_real(_usd("v.completion"))} AS completion_usd_per_1m,
       {_real(_usd("v.cache_read"))} AS cache_read_usd_per_1m,
       v.context_length,
       (SELECT MIN(f.fetched_at) FROM model_versions o
          JOIN catalog_fetches f ON f.id = o.from_fetch
         WHERE o.model_id = v.model_id) AS first_seen,
       (SELECT MAX(fetched_at) FROM catalog_fetches) AS last_fetched
  FROM model_versions v
 WHERE v.status = 'live'
 ORDER BY v.model_id""",
    # One row per price step of each model and side: its first price, then each version whose
    # price differs (to 6 decimals) from the version before it, or that follows a time the
    # model was not listed (a price it had before it left is a step of its own). A step lasts
    # until the next one, or until the model was no longer listed (NULL while it is current),
    # whichever is first: as `rankbot export prices` (bot/exports.py) counts them. Window
    # passes over the versions, in the order of their (model_id, from_fetch) index.
    "price_history": f"""
WITH versions AS (
  SELECT model_id, name, from_fetch, until_fetch,
         {_usd("prompt")} AS prompt,
         {_usd("completion")} AS completion,
         {_usd("cache_read")} AS cache_read,
         -- listed without a break since the version before (which ended where this begins)
         COALESCE(LAG(until_fetch) OVER w = from_fetch, 0) AS listed_before,
         LAG({_usd("prompt")}) OVER w AS was_prompt,
         LAG({_usd("completion")}) OVER w AS was_completion,
         LAG({_usd("cache_read")}) OVER w AS was_cache_read
    FROM model_versions
  WINDOW w AS (PARTITION BY model_id ORDER BY from_fetch)
), numbered AS (  -- each unbroken run of versions of a model gets a number
  SELECT *, SUM(NOT listed_before) OVER (PARTITION BY model_id ORDER BY from_fetch
                                         ROWS UNBOUNDED PRECEDING) AS run
    FROM versions
), runs AS (  -- with the fetch that first missed the model after it (NULL: still listed)
  SELECT *, LAST_VALUE(until_fetch) OVER (
              PARTITION BY model_id, run ORDER BY from_fetch
              ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS run_end
    FROM numbered
), changes AS (
{_changed("prompt")}
  UNION ALL
{_changed("completion")}
  UNION ALL
{_changed("cache_read")}
), steps AS (
  SELECT *, LEAD(from_fetch) OVER (PARTITION BY model_id, side ORDER BY from_fetch) AS next
    FROM changes
)
SELECT s.model_id, s.name, s.side, {_real("s.usd")} AS usd_per_1m,
       {_real("s.previous")} AS previous_usd_per_1m,
       f.fetched_at AS since, u.fetched_at AS until
  FROM steps s
  JOIN catalog_fetches f ON f.id = s.from_fetch
  LEFT JOIN catalog_fetches u ON u.id = CASE WHEN s.next IS NULL THEN s.run_end
                                             WHEN s.run_end IS NULL THEN s.next
                                             ELSE MIN(s.next, s.run_end) END
 ORDER BY s.model_id, s.side, s.from_fetch""",
    # OpenRouter's daily usage rankings: `other` (rank NULL) is every model past the day's top,
    # so that a day's shares add up to 100. A live model's permaslug is built as
    # `Model.permaslug` builds it: its canonical slug, and `:variant` where its id has one
    # (`…:free` is ranked apart); a `~` alias names another model's slug and is left out.
    "daily_rankings": f"""
SELECT r.date, r.rank, r.permaslug, n.name, r.tokens,
       {_real("ROUND(r.share * 100, 4)")} AS share_pct
  FROM rankings r
  LEFT JOIN (SELECT permaslug, MIN(name) AS name FROM (
               SELECT canonical_slug || CASE WHEN instr(model_id, ':') > 0
                        THEN substr(model_id, instr(model_id, ':')) ELSE '' END AS permaslug,
                      name
                 FROM model_versions
                WHERE status = 'live' AND model_id NOT LIKE '~%')
              GROUP BY permaslug) n
         ON n.permaslug = r.permaslug
 ORDER BY r.date DESC, r.rank IS NULL, r.rank""",
}


def _create(name: str) -> str:
    return f"CREATE VIEW {name} AS{VIEWS[name]}"


def drop_views(db: Database) -> None:
    """Drops rankbot's views, so that a migration may rebuild the tables they read."""
    for name in VIEWS:
        db.execute(f"DROP VIEW IF EXISTS {name}")


def create_views(db: Database) -> None:
    """(Re)creates each view that is missing or differs from this rankbot's; one that matches
    is left alone, so that an open writes nothing when all of them do. A connection that may
    not write (`PRAGMA query_only`, a read-only open) is never asked to."""
    stale = [name for name in VIEWS if _existing(db, name) != _create(name)]
    if not stale or db.execute("PRAGMA query_only").fetchone()[0]:
        return
    with db.atomic():
        for name in stale:
            db.execute(f"DROP VIEW IF EXISTS {name}")
            db.execute(_create(name))


def _existing(db: Database, name: str) -> str | None:
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?",
                     [name]).fetchone()
    return None if row is None else str(row[0])
