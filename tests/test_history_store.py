"""The compact catalog history: every catalog served comes back exactly (`rankbot export catalog`),
the document codec round-trips through its keyframes, and m008 converts an old database in
place. The history is the real one: 40 consecutive 6-hourly catalogs of the shared history
(tests/fixtures/openrouter/history, see SOURCES.md), with models vanishing and returning."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlite_utils import Database

from rankbot.bot.catalog import Model, content_hash, parse_catalog
from rankbot.bot.diff import catalog_delta
from rankbot.bot.history import time_from_name
from rankbot.shell.cli import cli
from rankbot.storage import UnitOfWork, documents
from rankbot.storage.documents import KEYFRAME, DamagedDocument, Documents, serialize
from rankbot.storage.migrations import migrations
from rankbot.storage.snapshots import MODEL_COLUMNS, model_from_row
from rankbot.storage.times import stamp
from tests.conftest import FIXTURES

HISTORY = FIXTURES / "history" / "2026-08-13_2026-08-22.tar.xz"
Served = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("history")
    with tarfile.open(HISTORY) as tar:
        tar.extractall(folder, filter="data")
    return sorted(folder.glob("*.json"))


def when(path: Path) -> datetime:
    at = time_from_name(path.name)
    assert at is not None
    return at


def served(path: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(path.read_bytes())["data"]
    return entries


def by_id(entries: list[dict[str, Any]]) -> Served:
    return {entry["id"]: entry for entry in entries}


def invoke(*args: str, db: Path) -> Result:
    return CliRunner().invoke(cli, list(args), env={"RANKBOT_DB": str(db)}, prog_name="rankbot")


def test_the_slice_holds_what_the_store_must_get_right(history: list[Path]) -> None:
    ids = [set(by_id(served(p))) for p in history]
    assert len(history) == 40
    assert any(a - b for a, b in pairwise(ids))  # models vanish
    assert any(b - a for a, b in pairwise(ids))  # and come back or arrive


def test_export_catalog_gives_back_every_catalog_as_served(
        history: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "KEYFRAME_EVERY", 5)  # many keyframes in 40 catalogs
    db = tmp_path / "rankbot.db"
    monkeypatch.chdir(tmp_path)
    assert invoke("import", *map(str, history), db=db).exit_code == 0
    store = UnitOfWork.open(db, read_only=True)
    try:
        for path in history:  # the whole slice, entry by entry and in the order served
            assert store.snapshots.catalog_documents_at(when(path)) == served(path), path.name
        versions, stored = store.snapshots.counts()["model_versions"], store.db.table(
            "model_documents").count
    finally:
        store.close()
    assert versions < stored / 4  # a version row only when something rankbot reads changes
    # Through the CLI: around the models that vanish and return, and between two fetches.
    for index in (0, 20, 21, 22, 23, 31, 36, 39):
        at = when(history[index]) + timedelta(minutes=30)
        result = invoke("export", "catalog", "--at", stamp(at), db=db)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"data": served(history[index])}


def test_export_catalog_before_the_first_fetch_is_one_clear_line(
        history: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "rankbot.db"
    monkeypatch.chdir(tmp_path)
    invoke("import", str(history[0]), db=db)
    result = invoke("export", "catalog", "--at", "2026-08-01", db=db)
    assert result.exit_code == 1
    assert result.output == ("Error: no catalog stored at or before "
                             "2026-08-01T00:00:00Z\n")
    assert invoke("export", "catalog", "--at", "soon", db=db).exit_code == 1


def test_export_catalog_gives_back_set_aside_entries_where_they_were_served(
        history: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed entry is set aside by the poll (its model's last good version stays in use),
    but the catalog as served had it, there: the export gives it back, at its place. What
    cannot be kept by id is not: an entry without a valid id, and all but one of the entries
    sharing an id."""
    catalogs = [served(path) for path in history[:4]]
    first = by_id(catalogs[0])
    broken_id = next(i for i, entry in enumerate(catalogs[1]) if entry["id"] in first
                     and not entry["id"].startswith("~") and "pricing" in entry)
    model = catalogs[1][broken_id]["id"]
    twice = catalogs[1][broken_id + 3]
    # The 2nd catalog: one model's entry broken where it stands, a new model broken from the
    # start, an entry without an id, and a second entry for a model already listed.
    catalogs[1][broken_id] = {**catalogs[1][broken_id],
                              "pricing": {**catalogs[1][broken_id]["pricing"], "prompt": "-0.5"}}
    new = {"id": "evil/broken", "name": "Broken", "pricing": "free"}
    catalogs[1].insert(7, new)
    catalogs[1].insert(3, {"name": "no id", "pricing": {"prompt": "0"}})
    catalogs[1].append({**twice, "name": "the same id again"})
    # The 3rd: the model fixed, its entry as it was before it broke; the new one still broken.
    where = next(i for i, entry in enumerate(catalogs[2]) if entry["id"] == model)
    catalogs[2][where] = first[model]
    catalogs[2].insert(5, new)
    db = tmp_path / "rankbot.db"
    monkeypatch.chdir(tmp_path)
    files = []
    for path, entries in zip(history, catalogs, strict=False):
        files.append(tmp_path / path.name)
        files[-1].write_text(json.dumps({"data": entries}))
    assert invoke("import", *map(str, files), db=db).exit_code == 0

    kept = [entry for entry in catalogs[1][:-1] if "id" in entry]  # with an id, once each
    kept[kept.index(twice)] = catalogs[1][-1]  # the later entry, at the first one's place
    store = UnitOfWork.open(db, read_only=True)
    try:
        assert store.snapshots.catalog_at(when(history[1]))[model].prompt is not None  # held
        exported = [store.snapshots.catalog_documents_at(when(path)) for path in history[:4]]
    finally:
        store.close()
    assert exported[1] == kept
    assert [exported[0], *exported[2:]] == [catalogs[0], *catalogs[2:]]
    result = invoke("export", "catalog", "--at", stamp(when(history[1])), db=db)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"data": kept}


# -- the codec --------------------------------------------------------------------------------


def chains(history: list[Path]) -> dict[str, list[bytes]]:
    """Each model's distinct documents, in the order served."""
    found: dict[str, list[bytes]] = {}
    for path in history:
        for model_id, entry in by_id(served(path)).items():
            chain = found.setdefault(model_id, [])
            if not chain or serialize(entry) != chain[-1]:
                chain.append(serialize(entry))
    return found


def test_documents_round_trip_through_deltas_and_keyframes(
        history: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents, "KEYFRAME_EVERY", 4)
    volatile, chain = max(chains(history).items(), key=lambda item: len(item[1]))
    assert len(chain) >= 20  # a model whose benchmarks change in almost every catalog
    db = Database(memory=True)
    documents.create_tables(db)
    store = Documents(db)
    for fetch, document in enumerate(chain, start=1):
        if fetch == 10:
            store = Documents(db)  # a new process: its cache is empty, the chain goes on
        store.write(fetch * 2, [(volatile, document)])
    codecs = [c for (c,) in db.execute("SELECT codec FROM model_documents ORDER BY from_fetch")]
    assert codecs == [KEYFRAME if i % 4 == 0 else documents.DELTA for i in range(len(chain))]
    reader = Documents(db)
    for fetch, document in enumerate(chain, start=1):
        for at in (fetch * 2, fetch * 2 + 1):  # at its fetch and until the next
            assert serialize(reader.read([volatile], at)[volatile]) == document
    sizes = [len(b) for (b,) in db.execute("SELECT body FROM model_documents")]
    assert sum(sizes) < sum(map(len, chain)) / 5


def test_a_damaged_document_is_an_error_for_its_model_and_the_next_is_stored_whole(
        history: list[Path]) -> None:
    entries = by_id(served(history[0]))
    first, second = list(entries)[:2]
    db = Database(memory=True)
    documents.create_tables(db)
    store = Documents(db)
    store.write(1, [(first, serialize(entries[first])), (second, serialize(entries[second]))])
    changed = serialize({**entries[first], "name": "renamed"})
    store.write(2, [(first, changed)])
    db.execute("UPDATE model_documents SET body = CAST(substr(body, 1, 10) || x'00ff' || "
               "substr(body, 13) AS BLOB) WHERE from_fetch = 1 AND model = "
               "(SELECT id FROM model_keys WHERE model_id = ?)", [first])
    reader = Documents(db)
    with pytest.raises(DamagedDocument, match=f"of {first} as of catalog fetch 2"):
        reader.read([first], 2)
    assert reader.read([second], 2) == {second: entries[second]}  # the others still read
    reader.write(3, [(first, serialize(entries[first]))])  # a poll: no crash, a new keyframe
    assert reader.read([first], 3) == {first: entries[first]}


def test_an_undone_write_leaves_no_stale_document_behind(
        history: list[Path], store: UnitOfWork) -> None:
    bodies = [p.read_bytes() for p in history[:3]]
    save(store, bodies[0], when(history[0]))
    with pytest.raises(RuntimeError), store:
        save(store, bodies[1], when(history[1]))
        raise RuntimeError("the poll fails after storing")  # its fetch id is used again
    save(store, bodies[2], when(history[2]))
    for path in (history[0], history[2]):
        assert store.snapshots.catalog_documents_at(when(path)) == served(path)


def save(store: UnitOfWork, body: bytes, at: datetime) -> None:
    known, vanished = store.snapshots.catalog_state()
    catalog = parse_catalog(body, {**vanished, **known})
    delta = catalog_delta(known, vanished, catalog.models)
    with store:
        store.snapshots.save_catalog(at, stamp(at), catalog, delta)


# -- m008 converts an old database in place ----------------------------------------------------


OLD_COLUMNS = MODEL_COLUMNS[:11]  # before m010


def old_save(db: Database, body: bytes, at: datetime) -> None:
    """A catalog stored as rankbot did before m008: a version row, with the whole entry, for
    every model whose entry changed at all."""
    state: dict[str, dict[str, Model]] = {"live": {}, "vanished": {}}
    for row in db.execute(f"SELECT status, {', '.join(OLD_COLUMNS)} FROM model_versions "
                          "WHERE status IN ('live', 'vanished')").fetchall():
        state[row[0]][row[1]] = model_from_row((*row[1:], None, None, None))
    known, vanished = state["live"], state["vanished"]
    catalog = parse_catalog(body, {**vanished, **known})
    delta = catalog_delta(known, vanished, catalog.models)
    fetch = db.table("catalog_fetches").insert({"fetched_at": stamp(at), "sha256": stamp(at),
                                                "model_count": len(catalog.models)}).last_pk
    moves = [([n.id for _, n in delta.changed], "live", "replaced", fetch),
             ([n.id for _, n in delta.returned], "vanished", "replaced", None),
             ([m.id for m in delta.vanished], "live", "vanished", fetch),
             ([m.id for m in delta.removed], "vanished", "removed", None)]
    for ids, current, status, until in moves:
        db.conn.executemany("UPDATE model_versions SET status = ?, until_fetch = COALESCE(?, "
                            "until_fetch) WHERE model_id = ? AND status = ?",
                            [(status, until, i, current) for i in ids])
    fresh = (*delta.added, *(new for _, new in (*delta.changed, *delta.returned)))
    db.table("model_versions").insert_all(
        {"model_id": m.id, "status": "live", "from_fetch": fetch, "content_hash": m.content_hash,
         "name": m.name, "canonical_slug": m.canonical_slug, "context_length": m.context_length,
         "prompt": _text(m.prompt), "completion": _text(m.completion),
         "cache_read": _text(m.cache_read), "dynamic_price": int(m.dynamic_price),
         "hugging_face_id": m.hugging_face_id, "alias_target": m.alias_target,
         "document": json.dumps(catalog.entries[m.id], ensure_ascii=False,
                                separators=(",", ":"))} for m in fresh)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def versions(store: UnitOfWork) -> list[tuple[Any, ...]]:
    return store.db.execute(
        f"SELECT status, from_fetch, until_fetch, {', '.join(MODEL_COLUMNS)} FROM "
        "model_versions ORDER BY model_id, from_fetch").fetchall()


def unhashed(models: dict[str, Model]) -> dict[str, Model]:
    return {i: replace(m, content_hash="") for i, m in models.items()}


@pytest.fixture
def old_database(history: list[Path], tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m008_compact_history")
    db.execute("CREATE VIEW someones_view AS SELECT model_id, prompt FROM model_versions")
    with db.conn:  # committed
        for snapshot in history[:30]:
            old_save(db, snapshot.read_bytes(), when(snapshot))
    db.close()
    yield path


def test_m008_moves_every_document_and_keeps_what_rankbot_reads(
        history: list[Path], old_database: Path) -> None:
    before = Database(old_database)
    old_rows = before.table("model_versions").count
    old_size = old_database.stat().st_size
    before.close()
    store = UnitOfWork.open(old_database)
    try:
        assert "document" not in store.db.table("model_versions").columns_dict
        # The rows rankbot would have written itself: one per change of what it reads.
        fresh = UnitOfWork.open(":memory:")
        for path in history[:30]:
            save(fresh, path.read_bytes(), when(path))
        assert versions(store) == versions(fresh) and len(versions(fresh)) < old_rows / 3
        fresh.close()
        for path in history[:30]:
            at, entries = when(path), served(path)
            assert by_id(store.snapshots.catalog_documents_at(at) or []) == by_id(entries)
            models = parse_catalog(path.read_bytes()).models
            assert unhashed(store.snapshots.catalog_at(at)) == unhashed(dict(models))
        # parse_catalog reuses a live model by its hash: that of the entry last served.
        last = by_id(served(history[29]))
        assert {i: m.content_hash for i, m in store.snapshots.catalog_state()[0].items()} == {
            i: content_hash(e) for i, e in last.items()}
        # Polls go on from the converted history.
        for path in history[30:33]:
            save(store, path.read_bytes(), when(path))
            assert store.snapshots.catalog_documents_at(when(path)) == served(path)
        assert store.db.execute("SELECT * FROM someones_view LIMIT 1").fetchone()
    finally:
        store.close()
    assert old_database.stat().st_size < old_size / 3  # VACUUM gave the space back


def test_m008_reads_the_model_keys_once_a_batch_not_once_a_document(
        old_database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every model key for each document made m008 quadratic: 0.3 ms a document with
    1,700 models, about 20 s for a year, holding the write lock."""
    before = Database(old_database)
    rows = before.table("model_versions").count
    before.close()
    reads: list[int] = []
    keys = Documents._keys

    def counted(self: Documents) -> dict[str, int]:
        reads.append(1)
        return keys(self)

    monkeypatch.setattr(Documents, "_keys", counted)
    UnitOfWork.open(old_database).close()
    assert rows > 2 * documents.WRITE_BATCH
    assert 0 < len(reads) <= rows // documents.WRITE_BATCH + 2
