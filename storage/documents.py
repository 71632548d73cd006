"""The catalog's documents: every model's entry as OpenRouter served it, kept compact.

Why this shape (measured on the shared history, 290 catalogs over 76 days, 17,348 documents):
- What rankbot reads of a model (name, prices, context, ...) stays in `model_versions`, which gets
  a row only when one of those changes (1,423 rows instead of 17,348): answers never decompress.
  The rest of an entry (about 50 models change their benchmark lists in almost every snapshot)
  lives here, one row per new document of a model.
- Each document is zlib with the model's previous document as preset dictionary: what changed,
  88 bytes on average instead of 3.3 KB. A plain zlib keyframe every 64 documents of a model
  bounds a read to 64 decompressions (about 3 ms) and what one damaged blob can take with it.
  Deltas against the keyframe instead of the previous document would make reads O(1) but are
  2.5x larger (documents drift); a dictionary of the two previous documents saves only 3%.
- zlib rather than raw deflate keeps its Adler-32 check: a damaged blob is an error naming its
  model, never a wrong document, and the next document written starts a new keyframe.
- `model_keys` gives each id a small integer, so ~70,000 rows a year do not repeat 30-byte ids;
  `model_documents` is WITHOUT ROWID, keyed (model, from_fetch): the key is the row.
- `catalog_orders` keeps the order the entries were served in (as model keys), when it changes;
  catalogs stored before it (migrated from the old schema) are listed newest `created` first,
  which is OpenRouter's order but for ties.
- An entry the poll set aside as malformed is stored here too (a catalog comes back as served),
  its key negated in the order; so the model's next good entry is stored even where it equals
  its version's own (no change in the delta). A reader of documents meets such entries.
- Membership (which models a catalog held) is `model_versions`' spans; a document here is the
  entry of its model from its fetch until the next document of that model.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

log = logging.getLogger(__name__)
KEYFRAME, DELTA = 0, 1  # codecs: zlib alone; zlib with the previous document as dictionary
KEYFRAME_EVERY = 64
WRITE_BATCH = 1000  # rows a write holds before it inserts them


class DamagedDocument(Exception):
    """A stored document that cannot be read back (a damaged blob, a broken chain)."""

    def __init__(self, model_id: str, fetch: int, why: str) -> None:
        super().__init__(f"the stored document of {model_id} as of catalog fetch {fetch} "
                         f"cannot be read ({why})")
        self.model_id = model_id


def serialize(entry: Mapping[str, Any]) -> bytes:
    """An entry's JSON, keys in the order served; floats as Python's shortest repr, which reads
    back to the same number (and, in every catalog of the shared history, to the same text)."""
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()


def encode(document: bytes, previous: bytes | None) -> tuple[int, bytes]:
    """(codec, blob): a delta against `previous`, or a keyframe where there is none."""
    if previous is None:
        return KEYFRAME, zlib.compress(document, 9)
    packer = zlib.compressobj(9, zdict=previous)
    return DELTA, packer.compress(document) + packer.flush()


def decode(codec: int, blob: bytes, previous: bytes | None) -> bytes:
    """The document; zlib.error or ValueError if the blob or its chain is damaged."""
    if codec == KEYFRAME:
        return zlib.decompress(blob)
    if codec != DELTA or previous is None:
        raise ValueError(f"a delta (codec {codec}) without the document before it")
    unpacker = zlib.decompressobj(zdict=previous)
    document = unpacker.decompress(blob) + unpacker.flush()
    if not unpacker.eof:
        raise zlib.error("the blob is truncated")
    return document


def create_tables(db: Database) -> None:
    db.execute("CREATE TABLE model_keys (id INTEGER PRIMARY KEY, "
               "model_id TEXT NOT NULL UNIQUE)")
    db.execute("CREATE TABLE model_documents (model INTEGER NOT NULL REFERENCES model_keys(id), "
               "from_fetch INTEGER NOT NULL REFERENCES catalog_fetches(id), "
               "codec INTEGER NOT NULL, body BLOB NOT NULL, "
               "PRIMARY KEY (model, from_fetch)) WITHOUT ROWID")
    db.execute("CREATE TABLE catalog_orders (fetch INTEGER PRIMARY KEY "
               "REFERENCES catalog_fetches(id), models BLOB NOT NULL)")


@dataclass(frozen=True, slots=True)
class _Tip:
    """A model's newest stored document: where it is, and how far from its keyframe."""

    fetch: int
    depth: int  # documents since the keyframe (0: it is one)
    document: bytes


class Documents:
    """Writes each model's next document and reads documents as of a fetch."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Each model's newest document, so that a poll does not walk its chain; checked against
        # the table before use (another process writes too; an undone write leaves it stale).
        self._tips: dict[int, _Tip] = {}

    def forget(self) -> None:
        self._tips.clear()

    def write(self, fetch: int, documents: Iterable[tuple[str, bytes]], *,
              unless_same: bool = False) -> None:
        """Store each model's document (`serialize`d entry) as served at `fetch`;
        `unless_same`: not where it is the model's newest document already."""
        self.write_all(((model_id, fetch, document) for model_id, document in documents),
                       unless_same=unless_same)

    def write_all(self, documents: Iterable[tuple[str, int, bytes]], *,
                  unless_same: bool = False) -> None:
        """Store documents (model id, fetch, `serialize`d entry), each model's in the order
        served, after every one stored. The model keys are read once and the rows inserted
        in batches: m008 moves a year of documents through here in one go."""
        keys = self._keys()
        batch: dict[int, _Tip] = {}  # the tips written here, ahead of what the table shows
        rows: list[tuple[int, int, int, bytes]] = []
        for model_id, fetch, document in documents:
            key = keys.get(model_id)
            if key is None:
                key = keys[model_id] = self._new_key(model_id)
            tip = batch.get(key) or self._tip(key, model_id)
            if unless_same and tip is not None and tip.document == document:
                continue
            if tip is not None and tip.depth + 1 >= KEYFRAME_EVERY:
                tip = None  # time for a keyframe
            codec, blob = encode(document, tip.document if tip else None)
            rows.append((key, fetch, codec, blob))
            batch[key] = self._tips[key] = _Tip(fetch, tip.depth + 1 if tip else 0, document)
            if len(rows) >= WRITE_BATCH:
                self._insert(rows)
                rows = []
        self._insert(rows)

    def _insert(self, rows: list[tuple[int, int, int, bytes]]) -> None:
        self.db.conn.executemany("INSERT INTO model_documents (model, from_fetch, codec, body) "
                                 "VALUES (?, ?, ?, ?)", rows)

    def read(self, model_ids: Iterable[str], fetch: int) -> dict[str, dict[str, Any]]:
        """Each model's entry as served at `fetch`; DamagedDocument names the first that
        cannot be read."""
        keys = self._keys()
        return {model_id: self._read(keys.get(model_id), model_id, fetch)
                for model_id in model_ids}

    def write_order(self, fetch: int, model_ids: Sequence[str],
                    set_aside: AbstractSet[str] = frozenset()) -> None:
        """The order the catalog at `fetch` served its entries in, if not that of the last;
        the ids in `set_aside` are those of entries the poll set aside (kept negated)."""
        keys = self._keys()
        order = json.dumps([(keys.get(i) or self._new_key(i)) * (-1 if i in set_aside else 1)
                            for i in model_ids]).encode()
        last = self.db.execute("SELECT models FROM catalog_orders ORDER BY fetch DESC "
                               "LIMIT 1").fetchone()
        if last is None or _unpacked(last[0]) != order:  # a damaged one: b"", replaced
            self.db.execute("INSERT INTO catalog_orders (fetch, models) VALUES (?, ?)",
                            [fetch, zlib.compress(order, 9)])

    def order_at(self, fetch: int) -> list[str]:
        """The ids in the order served at `fetch`; empty where it was not recorded."""
        row = self.db.execute("SELECT models FROM catalog_orders WHERE fetch <= ? "
                              "ORDER BY fetch DESC LIMIT 1", [fetch]).fetchone()
        if row is None:
            return []
        ids = {key: model_id for model_id, key in self._keys().items()}
        try:
            return [ids[abs(key)] for key in json.loads(_unpacked(row[0]))]
        except (ValueError, KeyError, TypeError):
            log.warning("the stored order of catalog fetch %s cannot be read; listing its "
                        "models newest first", fetch)
            return []

    def set_aside_last(self) -> set[str]:
        """The ids whose entry the newest stored catalog set aside (see `write_order`)."""
        row = self.db.execute("SELECT models FROM catalog_orders ORDER BY fetch DESC "
                              "LIMIT 1").fetchone()
        try:
            negated = {-key for key in json.loads(_unpacked(row[0])) if key < 0} if row else set()
        except (ValueError, TypeError):  # a damaged order: b"", as in order_at
            return set()
        if not negated:
            return set()
        return {model_id for model_id, key in self._keys().items() if key in negated}

    # -- plumbing ----------------------------------------------------------------------------

    def _new_key(self, model_id: str) -> int:
        key = self.db.execute("INSERT INTO model_keys (model_id) VALUES (?)",
                              [model_id]).lastrowid
        assert key is not None  # an INSERT into a rowid table has one
        return key

    def _keys(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT model_id, id FROM model_keys").fetchall())

    def _tip(self, key: int, model_id: str) -> _Tip | None:
        """The model's newest document, or None: a new model, or a chain that cannot be read
        (logged; the next document starts a new keyframe rather than fail the poll)."""
        row = self.db.execute("SELECT MAX(from_fetch) FROM model_documents WHERE model = ?",
                              [key]).fetchone()
        if row[0] is None:
            return None
        cached = self._tips.get(key)
        if cached is not None and cached.fetch == row[0]:
            return cached
        try:
            chain = self._chain(key, model_id, row[0])
        except DamagedDocument as damaged:
            log.warning("%s; its next document is stored whole", damaged)
            return None
        return _Tip(row[0], len(chain) - 1, chain[-1])

    def _read(self, key: int | None, model_id: str, fetch: int) -> dict[str, Any]:
        if key is None:
            raise DamagedDocument(model_id, fetch, "none is stored")
        document = self._chain(key, model_id, fetch)[-1]
        try:
            entry = json.loads(document)
        except ValueError as error:
            raise DamagedDocument(model_id, fetch, f"not JSON: {error}") from None
        if not isinstance(entry, dict):
            raise DamagedDocument(model_id, fetch, "not a JSON object")
        return entry

    def _chain(self, key: int, model_id: str, fetch: int) -> list[bytes]:
        """The model's documents from the keyframe before `fetch` to the last at `fetch`."""
        rows = self.db.execute(
            # CAST: a body that is not a BLOB (edited by hand) reads as bytes, and fails below
            "SELECT codec, CAST(body AS BLOB) FROM model_documents WHERE model = ? "
            "AND from_fetch <= ? "
            "AND from_fetch >= (SELECT MAX(from_fetch) FROM model_documents WHERE model = ? "
            "AND from_fetch <= ? AND codec = ?) ORDER BY from_fetch",
            [key, fetch, key, fetch, KEYFRAME]).fetchall()
        if not rows:
            raise DamagedDocument(model_id, fetch, "no keyframe is stored before it")
        chain: list[bytes] = []
        for codec, blob in rows:
            try:
                chain.append(decode(codec, blob, chain[-1] if chain else None))
            except (zlib.error, ValueError) as error:
                raise DamagedDocument(model_id, fetch, str(error)) from None
        return chain


def _unpacked(blob: bytes) -> bytes:
    try:
        return zlib.decompress(blob)
    except zlib.error:
        return b""


# What rankbot reads of a version (besides its span and status): a new row only when these move.
# m008 knew the first nine; m010 added the rest.
FIRST_READ_COLUMNS = ("name", "canonical_slug", "context_length", "prompt", "completion",
                      "cache_read", "dynamic_price", "hugging_face_id", "alias_target")
READ_COLUMNS = (*FIRST_READ_COLUMNS, "expiration_date", "prices", "benchmarks")


def every_document(db: Database) -> Iterator[tuple[str, int, bytes]]:
    """(model id, fetch, document) of every stored document, each model's in order."""
    previous: tuple[int, bytes] | None = None
    rows = db.execute("SELECT k.id, k.model_id, d.from_fetch, d.codec, d.body FROM "
                      "model_documents d JOIN model_keys k ON k.id = d.model "
                      "ORDER BY d.model, d.from_fetch")
    for key, model_id, fetch, codec, blob in rows:
        before = previous[1] if previous and previous[0] == key else None
        document = decode(codec, blob, before)
        previous = (key, document)
        yield model_id, fetch, document


def compact_history(db: Database) -> None:
    """Migration m008: each `model_versions.document` moves here, in the order it was stored;
    a version that differs from the one it replaced in nothing rankbot reads is folded into it
    (the span, status and content hash of the later); then the `document` column goes."""
    create_tables(db)
    documents = Documents(db)
    merges: list[tuple[int | None, str, str, int]] = []  # (until, status, hash, into id)
    folded: list[tuple[int]] = []
    kept: tuple[Any, ...] | None = None  # (id, model_id, until, status, read columns)
    rows = db.execute(f"SELECT id, model_id, from_fetch, until_fetch, status, content_hash, "
                      f"{', '.join(FIRST_READ_COLUMNS)}, document FROM model_versions "
                      "ORDER BY model_id, from_fetch")
    moved: list[tuple[str, int, bytes]] = []
    for row in rows:
        version, model_id, start, until, status, digest, *read, document = row
        moved.append((model_id, start, document.encode()))
        if len(moved) >= WRITE_BATCH:  # one read of the model keys per batch, not per row
            documents.write_all(moved)
            moved = []
        if (kept is not None and kept[1] == model_id and kept[2] == start
                and kept[3] == "replaced" and kept[4] == read):
            merges.append((until, status, digest, kept[0]))
            folded.append((version,))
            kept = (kept[0], model_id, until, status, read)
        else:
            kept = (version, model_id, until, status, read)
    documents.write_all(moved)
    db.conn.executemany("UPDATE model_versions SET until_fetch = ?, status = ?, "
                        "content_hash = ? WHERE id = ?", merges)
    db.conn.executemany("DELETE FROM model_versions WHERE id = ?", folded)
    db.table("model_versions").transform(drop={"document"})


def reclaim_space(db: Database) -> None:
    """Give the space m008 freed back to the file system. VACUUM cannot run in a transaction,
    so `migrate` calls this after; a database another process is writing keeps its free pages
    (reused by later writes) and says how to reclaim them."""
    try:
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as error:  # another process's lock: never fail the open over it
        log.warning("the space freed by compacting the history stays in the file (%s); "
                    "`sqlite3 FILE VACUUM` gives it back", error)
