"""The Parquet record store: ingestion batches, published atomically, and the current state derived from them.

Layout::

    STORE/manifest.json                         what readers see; replaced in one step per publication
    STORE/manifests/<sequence>.json             every manifest ever published (audit; the one before
                                                the current one stays readable)
    STORE/staged/<batch_id>.json                a staged batch: the manifest its publication will be
    STORE/batches/<batch_id>/subjects/part-0.parquet
    STORE/batches/<batch_id>/records/decision_year=YYYY/*.parquet
    STORE/batches/<batch_id>/quarantine.csv, summary.json
    STORE/current/<segment>/records.parquet     the derived current state: a base segment and
    STORE/current/<segment>/subjects.parquet    delta segments, newest last
    STORE/current/<segment>/deletes.parquet     rows of earlier segments a delta supersedes
    STORE/.lock                                 writers (stage, publish, discard, compact) take turns

**What readers see is the manifest, nothing else.** A batch directory, or a segment, that no
published manifest names is invisible: to :func:`scan_sql`, :func:`read_latest`, profiles,
labels and grades. Every stored row carries ``version``, ``content_hash``, ``ingested_at``,
``batch_id``; history is never overwritten, readers pick the latest version per key.

**Publication is two steps** (:func:`stage_batch`, then :func:`publish` or :func:`discard`):

1. ``stage_batch`` takes a batch directory written by ingestion, checks it (readable Parquet,
   versions that follow the published ones, records of known subjects, finite amounts), moves it
   under ``batches/`` and derives the current state it implies (a delta segment, or a new base, see
   below), checks that too, syncs it to disk and writes ``staged/<batch_id>.json``: the complete
   manifest its publication will install. Nothing of it is visible yet.
2. ``publish`` replaces ``manifest.json`` by that file (``os.replace``: one atomic step). If another
   batch was published in between, the staged batch is first re-derived against the newer state,
   or refused if both changed the same key. ``discard`` drops a staged batch. Until then,
   :func:`staged_snapshot` gives the state its publication would install, for checks before release.

Any failure at any step raises :class:`StoreError` saying why and leaves the published store as it
was: readable, profileable, and with the same manifest. Leftovers of a crash (a moved batch with no
staged file, a half-written segment) are named by no manifest, so nobody reads them; the next
writer removes them (so does it a directory copied under ``batches/`` by hand: only ``stage_batch``
adds a batch).

**The current state** (``features/sql/current_records.sql`` and ``current_subjects.sql``: the
latest version of every record with its first repair and revocation resolved to dates, the latest
version of every subject, as-of independent) is materialised so that profile builds start from it.
Both tables carry ``subject_key``, an INTEGER: a base assigns them densely in uscc order, a delta
gives new subjects the next free keys (profiles order by uscc, not by key). Records are stored in
``subject_key`` order within each segment, for the cache locality of the per-subject aggregation.
A batch adds a *delta* segment: the current rows of the records it touches (its own, the records
its repairs and revocations refer to, before and after), computed by the same SQL over those rows'
current versions, and its subjects' rows. Record rows are never superseded one by one (a filter per
row cost every build 15–20 %): a subject one of whose current rows changes gets a new key, and
all its current rows are written again under it; the old rows keep the retired key, which no
visible subject has, so they join nothing. Only subject rows are superseded, by position
(``deletes.parquet``). Readers take every segment's records and the visible subjects
(:func:`create_current_views`). When the deltas grow past :data:`MAX_DELTA_SEGMENTS` segments or
:data:`MAX_DELTA_SHARE` of the base, the next stage (or :func:`compact`) rebuilds one base from the history instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd

# phase boundaries at DEBUG ("phase: …"), as features.ingest logs its own
logger = logging.getLogger(__name__)
BATCHES_DIR = "batches"
CURRENT_DIR = "current"
STAGED_DIR = "staged"
MANIFESTS_DIR = "manifests"
MANIFEST = "manifest.json"
LOCK = ".lock"
# DuckDB's memory while deriving the current state (it spills beyond); ingestion passes its own bound
DERIVE_MEMORY = "3GB"
MANIFEST_FORMAT = 1
# Part of every current state's description: a change of the current-state SQL or layout gets a
# new version, so a store materialised by older code is rebuilt, never read with the wrong columns.
CURRENT_LAYOUT_VERSION = "6"  # 6: context_class 0 (actions) and 10 (signed commitments)
# When the next batch rebuilds one base from the history instead of adding a delta: each delta
# costs every profile build a scan and, for the rows it supersedes, a filter (see BENCHMARKS.md).
MAX_DELTA_SEGMENTS = 16
MAX_DELTA_SHARE = 0.25
_REPAIR_KINDS = ("repair", "revocation")


class StoreError(RuntimeError):
    """A store operation was refused or failed. The published store is as it was before the call.

    The message (for the operator who ran the ingestion) opens with that fact in Chinese."""

    def __init__(self, message: str) -> None:
        super().__init__(f"数据存储未变更（{message}）/ store unchanged: {message}")
        self.reason = message


# --------------------------------------------------------------------------------------------
# the published state: manifests and snapshots
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """One file set of the current state: a base (no deletes) or a delta."""

    name: str
    records: int
    subjects: int
    deletes: int = 0


@dataclass(frozen=True)
class Snapshot:
    """One published state of a store, as readers see it: its batches and its current state.

    ``batches`` maps each published batch id to its files by table (paths relative to ``root``).
    ``segments`` is empty when the store has no usable current state (no records yet, a layout of
    older code, or a store written before manifests); readers then run the current-state SQL over
    the history.
    """

    root: Path
    sequence: int
    batches: tuple[tuple[str, dict[str, tuple[str, ...]]], ...]
    segments: tuple[Segment, ...] = ()
    layout: str | None = None

    def files(self, table: str) -> list[str]:
        """Absolute paths of every published Parquet file of ``table`` (records or subjects)."""
        return [str(self.root / f) for _, tables in self.batches for f in tables.get(table, ())]

    @property
    def batch_ids(self) -> list[str]:
        return [b for b, _ in self.batches]

    @property
    def has_current(self) -> bool:
        return bool(self.segments) and self.layout == CURRENT_LAYOUT_VERSION

    @property
    def generation(self) -> str:
        """Fingerprint of what a reader sees: layout, batches and segments."""
        text = "\n".join([f"layout {self.layout}", *self.batch_ids, *(s.name for s in self.segments)])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def segment_path(self, segment: Segment | str, table: str) -> Path:
        name = segment.name if isinstance(segment, Segment) else segment
        return self.root / CURRENT_DIR / name / f"{table}.parquet"

    def to_manifest(self, **extra: object) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "sequence": self.sequence,
            **extra,
            "batches": [{"id": b, **{t: list(f) for t, f in tables.items()}} for b, tables in self.batches],
            "current": None if not self.segments else {
                "layout": self.layout, "generation": self.generation,
                "segments": [{"name": s.name, "records": s.records, "subjects": s.subjects, "deletes": s.deletes}
                             for s in self.segments],
            },
        }


def _snapshot_of(root: Path, manifest: dict) -> Snapshot:
    if manifest.get("format") != MANIFEST_FORMAT:
        raise StoreError(f"store {root}: manifest format {manifest.get('format')!r} is not {MANIFEST_FORMAT} "
                         "(written by other code)")
    current = manifest.get("current") or {}
    return Snapshot(
        root=root,
        sequence=int(manifest["sequence"]),
        batches=tuple((b["id"], {t: tuple(b.get(t, ())) for t in ("subjects", "records")})
                      for b in manifest["batches"]),
        segments=tuple(Segment(s["name"], int(s["records"]), int(s["subjects"]), int(s.get("deletes", 0)))
                       for s in current.get("segments", ())),
        layout=current.get("layout"),
    )


def _batch_files(root: Path, batch_dir: Path) -> dict[str, tuple[str, ...]]:
    """The Parquet files of one batch directory by table, relative to the store root, sorted."""
    out = {}
    for table, pattern in (("subjects", "subjects/*.parquet"), ("records", "records/**/*.parquet")):
        out[table] = tuple(sorted(str(p.relative_to(root)) for p in batch_dir.glob(pattern)))
    return out


def _legacy_snapshot(root: Path) -> Snapshot:
    """A store written before manifests: every batch directory is published, no current state."""
    base = root / BATCHES_DIR
    names = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if base.is_dir() else []
    return Snapshot(root=root, sequence=0, batches=tuple((n, _batch_files(root, base / n)) for n in names))


def snapshot(store: str | Path | Snapshot) -> Snapshot:
    """The published state of ``store`` (one read of its manifest; every reader works on one)."""
    if isinstance(store, Snapshot):
        return store
    root = Path(store)
    try:
        text = (root / MANIFEST).read_text(encoding="utf-8")
    except FileNotFoundError:
        return _legacy_snapshot(root)
    return _snapshot_of(root, json.loads(text))


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------
def has_table(store: str | Path | Snapshot, table: str) -> bool:
    """True if at least one published batch of ``store`` holds rows of ``table`` (records or subjects)."""
    return bool(snapshot(store).files(table))


def sql_file_list(files: list[str]) -> str:
    """A DuckDB list literal of file paths (quotes escaped)."""
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def scan_sql(store: str | Path | Snapshot, table: str) -> str:
    """A DuckDB FROM-clause expression reading every published version of ``table`` (the table must
    be there: see :func:`has_table`)."""
    files = snapshot(store).files(table)
    if not files:
        raise StoreError(f"store {Path(store.root if isinstance(store, Snapshot) else store)} has no published "
                         f"{table}")
    hive = "true" if table == "records" else "false"
    return f"read_parquet({sql_file_list(files)}, hive_partitioning={hive}, union_by_name=true)"


def latest_sql(store: str | Path | Snapshot, table: str) -> str:
    """DuckDB SQL selecting the latest version of each record (by record_id) or subject (by uscc)."""
    key = "record_id" if table == "records" else "uscc"
    drop = ", decision_year" if table == "records" else ""
    return (
        f"SELECT * EXCLUDE (_rn{drop}) FROM (SELECT *, row_number() OVER "
        f"(PARTITION BY {key} ORDER BY version DESC) AS _rn FROM {scan_sql(store, table)}) WHERE _rn = 1"
    )


def read_latest(store: str | Path | Snapshot, table: str, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """The latest published version of every record or subject, as a DataFrame (empty if none)."""
    snap = snapshot(store)
    if not has_table(snap, table):
        return pd.DataFrame()
    con = con or duckdb.connect()
    return con.sql(latest_sql(snap, table)).df()


def _sql_file(name: str) -> str:
    return resources.files("features.sql").joinpath(name).read_text(encoding="utf-8")


def create_version_views(con: duckdb.DuckDBPyConnection, store: str | Path | Snapshot) -> None:
    """Views ``record_versions`` and ``subject_versions`` over every published version of ``store``
    (only for the tables the store holds)."""
    snap = snapshot(store)
    for table, view in (("subjects", "subject_versions"), ("records", "record_versions")):
        if has_table(snap, table):
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {scan_sql(snap, table)}")


def _segments_sql(snap: Snapshot, table: str, *, locate: bool = False) -> str:
    """Every segment's rows of ``table``, superseded or not; ``locate`` adds ``_seg`` (the segment's
    name) and ``_row`` (the row number in its file)."""
    parts = []
    for seg in snap.segments:
        path = str(snap.segment_path(seg, table)).replace("'", "''")
        if locate:
            parts.append(f"SELECT * EXCLUDE (file_row_number), '{seg.name}' AS _seg, file_row_number AS _row "
                         f"FROM read_parquet('{path}', file_row_number = true)")
        else:
            parts.append(f"SELECT * FROM read_parquet('{path}')")
    return "\nUNION ALL\n".join(parts)


def _current_subjects_sql(snap: Snapshot, *, locate: bool = False) -> str:
    """The visible subject rows: every segment's but those a later one supersedes (an anti-join on
    the row number, over ~1 M subject rows, with the deltas' ``deletes.parquet``)."""
    files = [str(snap.root / CURRENT_DIR / s.name / "deletes.parquet") for s in snap.segments if s.deletes]
    if not files:
        return _segments_sql(snap, "subjects", locate=locate)
    keep = "" if locate else " EXCLUDE (_seg, _row)"
    return (f"SELECT s.*{keep} FROM ({_segments_sql(snap, 'subjects', locate=True)}) s ANTI JOIN "
            f"(SELECT segment, row FROM read_parquet({sql_file_list(files)}) WHERE tbl = 'subjects') d "
            "ON s._seg = d.segment AND s._row = d.row")


def create_current_views(con: duckdb.DuckDBPyConnection, store: str | Path | Snapshot, *, exact: bool = True) -> bool:
    """Views ``current_records`` and ``current_subjects`` over the materialised current state of
    ``store``, if it has one of this code's layout; False (and no views) otherwise.

    A delta retires the key of every subject whose records it replaces, and the rows under a
    retired key stay in earlier segments (dropping them row by row would cost every build ≈ 15 %).
    With ``exact`` (the default), ``current_records`` leaves them out (a semi-join on the live keys);
    with ``exact=False`` it keeps them, for a reader that only reaches records through
    ``current_subjects`` (the profile build: rows of a retired key aggregate into a group no subject
    joins)."""
    snap = snapshot(store)
    if not snap.has_current:
        return False
    con.execute(f"CREATE OR REPLACE VIEW current_subjects AS {_current_subjects_sql(snap)}")
    records = _segments_sql(snap, "records")
    if exact and len(snap.segments) > 1:
        records = (f"SELECT r.* FROM ({records}) r "
                   "WHERE r.subject_key IN (SELECT subject_key FROM current_subjects)")
    con.execute(f"CREATE OR REPLACE VIEW current_records AS {records}")
    return True


# --------------------------------------------------------------------------------------------
# writers: one at a time, under the store's lock
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StagedBatch:
    """A batch written and checked, with the current state it implies, not yet visible to readers."""

    store: Path
    batch_id: str
    base_sequence: int
    staged_at: str
    records: int
    subjects: int
    rebuilds_current: bool

    @property
    def batch_dir(self) -> Path:
        return self.store / BATCHES_DIR / self.batch_id


@contextmanager
def _writer(store: Path) -> Iterator[None]:
    """The store's writer lock (released by the kernel if the process dies)."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fsync_tree(path: Path) -> None:
    """Flush every file under ``path`` and the directories themselves to disk, so a manifest never
    names data a power cut could lose."""
    for p in sorted(path.rglob("*"), reverse=True) if path.is_dir() else [path]:
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in [path, *[p for p in path.rglob("*") if p.is_dir()]] if path.is_dir() else []:
        _fsync_dir(d)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json(path: Path, content: dict) -> None:
    """Write ``content`` to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(content, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _staged_path(store: Path, batch_id: str) -> Path:
    return store / STAGED_DIR / f"{batch_id}.json"


def _check_batch_id(batch_id: str) -> None:
    if not batch_id or batch_id.startswith(".") or "/" in batch_id or batch_id != batch_id.strip():
        raise StoreError(f"batch id {batch_id!r} is not a plain directory name")


def stage_batch(store: str | Path, batch_dir: str | Path, *, batch_id: str | None = None,
                memory_limit: str = DERIVE_MEMORY) -> StagedBatch:
    """Check a batch directory written by ingestion, move it into ``store`` and derive the current
    state it implies, without making anything visible; see the module docstring.

    ``batch_dir`` (``subjects/*.parquet``, ``records/**/*.parquet``, any other files) must be on the
    store's file system; it is moved, not copied, and put back where it was if staging fails.
    ``memory_limit`` bounds DuckDB while deriving (it spills beyond).
    Raises :class:`StoreError` with the reason; the store is then as it was.
    """
    store, batch_dir = Path(store), Path(batch_dir)
    batch_id = batch_id or batch_dir.name
    _check_batch_id(batch_id)
    if not batch_dir.is_dir():
        raise StoreError(f"batch {batch_id}: {batch_dir} is not a directory")
    with _writer(store):
        snap = _adopt(store)
        final = store / BATCHES_DIR / batch_id
        if batch_id in snap.batch_ids or final.exists() or _staged_path(store, batch_id).exists():
            raise StoreError(f"batch {batch_id}: a batch of that id is already published or staged")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(batch_dir, final)
        created: list[Path] = []
        try:
            staged, manifest = _derive(store, snap, batch_id, created, memory_limit)
            logger.debug("phase: sync batch")
            _fsync_tree(final)
            _fsync_dir(final.parent)
            _write_json(_staged_path(store, batch_id), manifest)
        except BaseException:
            for path in created:
                shutil.rmtree(path, ignore_errors=True)
            os.rename(final, batch_dir)
            raise
        return staged


def publish(store: str | Path, batch: str | StagedBatch, *, memory_limit: str = DERIVE_MEMORY) -> Snapshot:
    """Make a staged batch visible: one atomic replace of the manifest. Re-derives its current state
    first if another batch was published since it was staged (or refuses, if both changed one key).
    Returns the published snapshot; raises :class:`StoreError` (nothing changed) otherwise."""
    store = Path(store)
    batch_id = batch.batch_id if isinstance(batch, StagedBatch) else batch
    with _writer(store):
        path = _staged_path(store, batch_id)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"batch {batch_id} is not staged in {store}") from None
        current = snapshot(store)
        if manifest["base_sequence"] != current.sequence:
            # another batch went first: derive this one's current state again on top of it
            created: list[Path] = []
            try:
                staged_at = manifest["staged_at"]
                _, manifest = _derive(store, current, batch_id, created, memory_limit)
                manifest["staged_at"] = staged_at
                _write_json(path, manifest)
            except BaseException:
                for p in created:
                    shutil.rmtree(p, ignore_errors=True)
                raise
        manifest["published_at"] = _now()
        _write_json(path, manifest)
        os.replace(path, store / MANIFEST)  # the one step that makes the batch visible
        _fsync_dir(store)
        _write_json(store / MANIFESTS_DIR / f"{manifest['sequence']:08d}.json", manifest)  # the audit copy
        published = _snapshot_of(store, manifest)
        _collect_garbage(store, published, previous=current)
        return published


def add_batch(store: str | Path, batch_dir: str | Path, *, batch_id: str | None = None,
              memory_limit: str = DERIVE_MEMORY) -> Snapshot:
    """Stage a batch and publish it at once (no gate in between); if publishing fails, the staged
    batch is discarded, so the store is left exactly as it was. Raises :class:`StoreError`."""
    staged = stage_batch(store, batch_dir, batch_id=batch_id, memory_limit=memory_limit)
    try:
        return publish(store, staged, memory_limit=memory_limit)
    except BaseException:
        if staged.batch_id not in snapshot(store).batch_ids:
            discard(store, staged)
        raise


def discard(store: str | Path, batch: str | StagedBatch) -> None:
    """Drop a staged batch: its files and the current state derived from it. Raises
    :class:`StoreError` if it is not staged (a published batch cannot be discarded)."""
    store = Path(store)
    batch_id = batch.batch_id if isinstance(batch, StagedBatch) else batch
    with _writer(store):
        path = _staged_path(store, batch_id)
        if not path.exists():
            raise StoreError(f"batch {batch_id} is not staged in {store}")
        os.remove(path)  # from here on it is no longer staged; the files are garbage
        _fsync_dir(path.parent)
        _collect_garbage(store, snapshot(store))


def staged_snapshot(store: str | Path, batch: str | StagedBatch) -> Snapshot:
    """The state publishing a staged batch would install, for checking it before release (e.g.
    ``build_profiles(staged_snapshot(store, batch_id), ...)``); readers of the store do not see it.
    If another batch is published meanwhile, :func:`publish` derives it again on top of that one."""
    store = Path(store)
    batch_id = batch.batch_id if isinstance(batch, StagedBatch) else batch
    try:
        return _snapshot_of(store, json.loads(_staged_path(store, batch_id).read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise StoreError(f"batch {batch_id} is not staged in {store}") from None


def staged_batches(store: str | Path) -> list[StagedBatch]:
    """The batches staged in ``store`` and neither published nor discarded, oldest first."""
    store = Path(store)
    out = []
    for path in sorted((store / STAGED_DIR).glob("*.json")):
        if path.name.startswith("."):
            continue
        m = json.loads(path.read_text(encoding="utf-8"))
        out.append(_staged_of(store, m))
    return sorted(out, key=lambda s: (s.staged_at, s.batch_id))


def _staged_of(store: Path, manifest: dict) -> StagedBatch:
    batch = manifest["published_batch"]
    return StagedBatch(store=store, batch_id=batch, base_sequence=int(manifest["base_sequence"]),
                       staged_at=manifest["staged_at"], records=int(manifest["batch_records"]),
                       subjects=int(manifest["batch_subjects"]),
                       rebuilds_current=manifest["current_change"] == "rebuild")


def compact(store: str | Path) -> Snapshot:
    """Rebuild the current state of ``store`` as one base from its published history, and publish it
    (one atomic manifest replace, like a batch). Returns the new snapshot."""
    store = Path(store)
    with _writer(store):
        snap = _adopt(store)
        if not (has_table(snap, "subjects") and has_table(snap, "records")):
            raise StoreError(f"store {store} needs published subjects and records to build its current state")
        created: list[Path] = []
        try:
            segment = _build_base(store, snap, extra_batch=None, created=created)
            new = Snapshot(root=store, sequence=snap.sequence + 1, batches=snap.batches, segments=(segment,),
                           layout=CURRENT_LAYOUT_VERSION)
            manifest = new.to_manifest(action="compact", base_sequence=snap.sequence, published_at=_now())
            _write_json(store / MANIFEST, manifest)
        except BaseException:
            for p in created:
                shutil.rmtree(p, ignore_errors=True)
            raise
        _write_json(store / MANIFESTS_DIR / f"{new.sequence:08d}.json", manifest)
        _collect_garbage(store, new, previous=snap)
        return new


def _adopt(store: Path) -> Snapshot:
    """The published snapshot; a store written before manifests first gets one naming every batch
    directory it holds (what its readers saw), so staged batches stay invisible from now on."""
    if (store / MANIFEST).exists():
        return snapshot(store)
    snap = _legacy_snapshot(store)
    if snap.batches:
        manifest = snap.to_manifest(action="adopt", base_sequence=0, published_at=_now())
        _write_json(store / MANIFEST, manifest)
        _write_json(store / MANIFESTS_DIR / f"{0:08d}.json", manifest)
    return snap


def _collect_garbage(store: Path, published: Snapshot, previous: Snapshot | None = None) -> None:
    """Remove batch directories and segments no manifest or staged batch names (crash leftovers,
    discarded batches, superseded segments). The state before ``published`` (``previous``, else
    the audit copy of the manifest before it) keeps its files, as a build that started before the
    replace may still be scanning them. Runs under the lock."""
    keeps = [published]
    before = store / MANIFESTS_DIR / f"{published.sequence - 1:08d}.json"
    paths = [p for p in (store / STAGED_DIR).glob("*.json") if not p.name.startswith(".")]
    if previous is not None:
        keeps.append(previous)
    elif before.exists():
        paths.append(before)
    for path in paths:
        try:
            keeps.append(_snapshot_of(store, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, StoreError):
            continue
    keep_batches = {b for snap in keeps for b in snap.batch_ids}
    keep_segments = {s.name for snap in keeps for s in snap.segments}
    for directory, keep in ((store / BATCHES_DIR, keep_batches), (store / CURRENT_DIR, keep_segments)):
        if directory.is_dir():
            for child in directory.iterdir():
                if child.name not in keep:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
    staged = store / STAGED_DIR
    if staged.is_dir():
        for child in staged.glob(".*.tmp"):
            child.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# deriving the current state
# --------------------------------------------------------------------------------------------
def _connect(spill: Path, memory_limit: str, threads: int = 2) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads = {int(threads)}")
    # 20+ M records on a shared machine: bounded memory, spilling into the segment being written
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET preserve_insertion_order = false")
    return con


def _new_segment(store: Path, kind: str, created: list[Path]) -> tuple[str, Path]:
    name = f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = store / CURRENT_DIR / f".tmp-{name}"
    tmp.mkdir(parents=True)
    created.append(tmp)
    return name, tmp


def _finish_segment(store: Path, name: str, tmp: Path, created: list[Path]) -> Path:
    shutil.rmtree(tmp / "spill", ignore_errors=True)
    _fsync_tree(tmp)
    final = store / CURRENT_DIR / name
    os.rename(tmp, final)
    created.append(final)
    _fsync_dir(final.parent)
    return final


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def _derive(store: Path, snap: Snapshot, batch_id: str, created: list[Path],
            memory_limit: str = DERIVE_MEMORY) -> tuple[StagedBatch, dict]:
    """Check the batch under ``batches/<batch_id>`` against ``snap`` and write the current state
    its publication implies; returns the staged batch and the manifest that publishes it."""
    batch_dir = store / BATCHES_DIR / batch_id
    files = _batch_files(store, batch_dir)
    # bounded like the derivation: counting a 27 M-record batch's distinct keys in an unbounded
    # connection took ~2 GB beyond ingestion's own memory (the 5 GB CSV's peak; BENCHMARKS.md)
    spill = store / CURRENT_DIR / f".tmp-check-{uuid.uuid4().hex[:8]}"
    spill.mkdir(parents=True)  # DuckDB creates only the last level, and a new store has no current/ yet
    con = _connect(spill, memory_limit)
    logger.debug("phase: check batch")
    try:
        counts = _check_batch(con, store, snap, batch_id, files)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    batches = (*snap.batches, (batch_id, files))
    both = bool(snap.files("subjects") or files["subjects"]) and bool(snap.files("records") or files["records"])
    change = "none"
    segments, layout = snap.segments, snap.layout
    if both and not (files["subjects"] or files["records"]) and snap.has_current:
        pass  # nothing new: the current state stays as it is
    elif both and _wants_rebuild(snap):
        logger.debug("phase: derive base")
        segments, layout, change = (_build_base(store, snap, extra_batch=(batch_id, files), created=created,
                                               memory_limit=memory_limit),), \
            CURRENT_LAYOUT_VERSION, "rebuild"
    elif both:
        logger.debug("phase: derive delta")
        delta = _build_delta(store, snap, batch_id, files, created, memory_limit)
        if delta is not None:
            segments, change = (*snap.segments, delta), "delta"
    new = Snapshot(root=store, sequence=snap.sequence + 1, batches=batches, segments=segments, layout=layout)
    staged_at = _now()
    manifest = new.to_manifest(action="publish", published_batch=batch_id, base_sequence=snap.sequence,
                               staged_at=staged_at, batch_records=counts[0], batch_subjects=counts[1],
                               current_change=change)
    return _staged_of(store, manifest), manifest


def _wants_rebuild(snap: Snapshot) -> bool:
    if not snap.has_current:
        return True
    base, deltas = snap.segments[0], snap.segments[1:]
    return len(deltas) + 1 > MAX_DELTA_SEGMENTS or \
        sum(d.records for d in deltas) > MAX_DELTA_SHARE * max(base.records, 1)


def _check_batch(con: duckdb.DuckDBPyConnection, store: Path, snap: Snapshot, batch_id: str,
                 files: dict[str, tuple[str, ...]]) -> tuple[int, int]:
    """Refuse a batch the current state could not be derived from, with the reason: unreadable
    Parquet, missing columns, repeated or missing keys, non-finite amounts, versions that do not
    follow the published ones (checked against the current state, in the derivation), records of
    subjects the store will not hold. Returns (records, subjects) row counts."""
    from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS

    counts = []
    for table, key, columns in (("records", "record_id", RECORD_COLUMNS), ("subjects", "uscc", SUBJECT_COLUMNS)):
        paths = [str(store / f) for f in files[table]]
        if not paths:
            counts.append(0)
            continue
        try:
            rel = con.sql(f"SELECT * FROM read_parquet({sql_file_list(paths)}, union_by_name = true)")
            names = set(rel.columns)
        except duckdb.Error as exc:
            raise StoreError(f"batch {batch_id}: its {table} files cannot be read as Parquet: {exc}") from exc
        missing = [c for c in (*columns, "version") if c not in names]
        if missing:
            raise StoreError(f"batch {batch_id}: its {table} lack the columns {missing}")
        rel.create_view("_b", replace=True)
        n, n_keys, bad_key, bad_version = con.execute(
            f"SELECT count(*), count(DISTINCT ({key}, version)), count(*) FILTER ({key} IS NULL), "
            "count(*) FILTER (version IS NULL OR version < 1) FROM _b").fetchone()
        if bad_key or bad_version:
            raise StoreError(f"batch {batch_id}: {bad_key} {table} without {key}, {bad_version} without a version ≥ 1")
        if n_keys != n:
            raise StoreError(f"batch {batch_id}: {n - n_keys} {table} repeat a {key} and version already in the "
                             "batch (one row per key and version)")
        if table == "records":
            bad = con.execute("SELECT record_id, amount FROM _b WHERE amount IS NOT NULL AND NOT isfinite(amount) "
                          "ORDER BY record_id LIMIT 3").fetchall()
            if bad:
                raise StoreError(f"batch {batch_id}: amounts must be finite; e.g. {bad}")
        con.execute("DROP VIEW _b")
        counts.append(int(n))
    return counts[0], counts[1]


def _history_views(con: duckdb.DuckDBPyConnection, snap: Snapshot, extra: tuple[str, dict] | None) -> None:
    """record_versions / subject_versions over the published history plus, if given, one staged batch."""
    for table, view in (("subjects", "subject_versions"), ("records", "record_versions")):
        files = snap.files(table) + ([str(snap.root / f) for f in extra[1][table]] if extra else [])
        hive = "true" if table == "records" else "false"
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({sql_file_list(files)}, "
                    f"hive_partitioning={hive}, union_by_name=true)")


def _build_base(store: Path, snap: Snapshot, extra_batch: tuple[str, dict] | None, created: list[Path],
                memory_limit: str = DERIVE_MEMORY) -> Segment:
    """The whole current state from the history (the published batches and ``extra_batch``), as one
    base segment: subject keys dense in uscc order, records in key order."""
    name, tmp = _new_segment(store, "base", created)
    con = _connect(tmp / "spill", memory_limit)
    try:
        for table, key in (("records", "record_id"), ("subjects", "uscc")):
            new = [str(snap.root / f) for f in extra_batch[1][table]] if extra_batch else []
            if new and snap.files(table):
                _refuse_stale_versions(
                    con, extra_batch[0], table, key, batch=f"read_parquet({sql_file_list(new)}, union_by_name = true)",
                    stored=f"(SELECT {key}, max(version) AS version FROM {scan_sql(snap, table)} GROUP BY {key})")
        _history_views(con, snap, extra_batch)
        con.execute(
            "CREATE TEMP TABLE _subjects AS SELECT CAST(ROW_NUMBER() OVER (ORDER BY uscc) AS INTEGER) AS subject_key, "
            f"s.* EXCLUDE (subject_key) FROM ({_sql_file('current_subjects.sql')}) s"
        )
        con.execute(f"COPY (SELECT * FROM _subjects ORDER BY subject_key) TO '{tmp / 'subjects.parquet'}' "
                    "(FORMAT parquet)")
        # Ordered by subject: a profile build aggregates per subject, and consecutive rows of one
        # subject keep its hash-table entry in cache (≈ 1 M groups of ~50 aggregates otherwise miss).
        con.execute(
            f"COPY (SELECT k.subject_key, r.* EXCLUDE (subject_key) FROM ({_sql_file('current_records.sql')}) r "
            "JOIN _subjects k ON r.uscc = k.uscc ORDER BY k.subject_key) "
            f"TO '{tmp / 'records.parquet'}' (FORMAT parquet)"
        )
    except duckdb.Error as exc:
        raise StoreError(f"deriving the current state failed, nothing was published: {exc}") from exc
    finally:
        con.close()
    final = _finish_segment(store, name, tmp, created)
    return Segment(name, _rows(final / "records.parquet"), _rows(final / "subjects.parquet"))


def _build_delta(store: Path, snap: Snapshot, batch_id: str, files: dict[str, tuple[str, ...]],
                 created: list[Path], memory_limit: str = DERIVE_MEMORY) -> Segment | None:
    """The current rows a batch changes, derived by the current-state SQL from their current versions
    and the batch's rows; None if the batch changes nothing.

    Records are never superseded row by row. A record whose current row changes (a new version, a
    new repair or revocation date) takes its whole subject with it: every current row of that
    subject is written again under a new ``subject_key``, the touched ones recomputed, the others
    copied, and the subject's row moves to the new key. The old rows keep the retired key, which no
    visible subject has (see :func:`create_current_views`). New records of other subjects are added
    under their key. Only subject rows are superseded by position (``deletes.parquet``).
    """
    from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS

    name, tmp = _new_segment(store, "delta", created)
    con = _connect(tmp / "spill", memory_limit)
    try:
        con.execute(f"CREATE TEMP VIEW cur_subjects AS {_current_subjects_sql(snap, locate=True)}")
        con.execute("CREATE TEMP TABLE live AS SELECT subject_key, uscc, _seg, _row FROM cur_subjects")
        con.execute(f"CREATE TEMP VIEW all_records AS {_segments_sql(snap, 'records', locate=True)}")
        # the columns the current-state SQL reads from the versions are the ones its output keeps;
        # the batch's are read as the current state types them
        typed = {}
        for table, columns in (("records", RECORD_COLUMNS), ("subjects", SUBJECT_COLUMNS)):
            view = "all_records" if table == "records" else "cur_subjects"
            kept = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()}
            typed[table] = [(c, kept[c]) for c in (*columns, "version") if c in kept]
            paths = [str(store / f) for f in files[table]]
            source = (f"read_parquet({sql_file_list(paths)}, union_by_name = true)" if paths else
                      f"(SELECT * FROM {view} WHERE false)")
            cast = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in typed[table])
            con.execute(f"CREATE TEMP TABLE b_{table} AS SELECT {cast} FROM {source}")
        rec_cols, sub_cols = (", ".join(f'"{c}"' for c, _ in typed[t]) for t in ("records", "subjects"))

        # records touched: the batch's own and the ones its repairs and revocations refer to, now
        # and in the versions they replace; their visible current rows (one scan of record ids)
        con.execute("CREATE TEMP TABLE touched AS SELECT record_id FROM b_records UNION "
                    "SELECT ref_record_id FROM b_records WHERE ref_record_id IS NOT NULL")
        _find_current(con, "touched")
        con.execute("CREATE TEMP TABLE more AS SELECT DISTINCT p.ref_record_id AS record_id FROM p_records p "
                    "JOIN b_records b ON p.record_id = b.record_id WHERE p.ref_record_id IS NOT NULL "
                    "AND p.ref_record_id NOT IN (SELECT record_id FROM touched)")
        if con.execute("SELECT count(*) FROM more").fetchone()[0]:
            _find_current(con, "more")
            con.execute("INSERT INTO touched SELECT record_id FROM more")
        _refuse_stale_versions(con, batch_id, "records", "record_id")
        # subjects whose records are replaced get a new key; all their rows, and those of the subjects
        # of every repair or revocation referring to a touched record (one scan, of all columns, by
        # subject key alone: an OR with the referrers' condition cost it ~55 % more on 20 M records;
        # the referrers' subjects' other rows join nothing below, they are neither copied nor touched)
        con.execute("CREATE TEMP TABLE rekeyed AS SELECT DISTINCT subject_key FROM p_records")
        con.execute(
            "CREATE TEMP TABLE around AS SELECT a.* FROM all_records a "
            "WHERE a.subject_key IN (SELECT subject_key FROM rekeyed UNION SELECT subject_key FROM referrers)")
        con.execute("CREATE TEMP TABLE hit AS SELECT a.* FROM around a SEMI JOIN p_records p "
                    "ON a._seg = p._seg AND a._row = p._row")

        # subjects: the batch's versions over the current ones, and the re-keyed subjects' rows
        con.execute("CREATE TEMP TABLE p_subjects AS SELECT * FROM cur_subjects WHERE uscc IN (SELECT uscc FROM b_subjects) "
                    "OR subject_key IN (SELECT subject_key FROM rekeyed)")
        _refuse_stale_versions(con, batch_id, "subjects", "uscc")
        con.execute(f"CREATE TEMP VIEW subject_versions AS SELECT {sub_cols} FROM p_subjects "
                    f"UNION ALL SELECT {sub_cols} FROM b_subjects")
        next_key = con.execute(f"SELECT coalesce(max(subject_key), 0) FROM ({_segments_sql(snap, 'subjects')})"
                               ).fetchone()[0]
        con.execute(
            "CREATE TEMP TABLE d_subjects AS "
            "SELECT CAST(CASE WHEN p.subject_key IS NOT NULL AND p.subject_key NOT IN (SELECT subject_key FROM rekeyed) "
            "                 THEN p.subject_key "
            f"            ELSE {int(next_key)} + ROW_NUMBER() OVER (PARTITION BY p.subject_key IS NOT NULL "
            "                 AND p.subject_key NOT IN (SELECT subject_key FROM rekeyed) ORDER BY s.uscc) END AS INTEGER) "
            "  AS subject_key, s.* EXCLUDE (subject_key) "
            f"FROM ({_sql_file('current_subjects.sql')}) s LEFT JOIN p_subjects p ON s.uscc = p.uscc")
        con.execute("CREATE TEMP TABLE keys AS SELECT uscc, subject_key FROM live "
                    "WHERE uscc NOT IN (SELECT uscc FROM d_subjects) UNION ALL SELECT uscc, subject_key FROM d_subjects")
        orphans = con.execute("SELECT record_id, uscc FROM b_records WHERE uscc NOT IN (SELECT uscc FROM keys) "
                              "ORDER BY record_id LIMIT 3").fetchall()
        if orphans:
            raise StoreError(f"batch {batch_id}: records of subjects the store does not hold, e.g. {orphans}")

        # the touched records recomputed from their current versions, the referrers and the batch
        con.execute(f"CREATE TEMP VIEW record_versions AS SELECT {rec_cols} FROM "
                    "(SELECT * FROM hit UNION SELECT * FROM around WHERE record_id NOT IN (SELECT record_id FROM hit)"
                    f" AND kind IN {_REPAIR_KINDS}) UNION ALL SELECT {rec_cols} FROM b_records")
        con.execute(
            "CREATE TEMP TABLE d_records AS "
            "SELECT k.subject_key, r.* EXCLUDE (subject_key) "
            f"FROM ({_sql_file('current_records.sql')}) r JOIN keys k ON r.uscc = k.uscc "
            "WHERE r.record_id IN (SELECT record_id FROM touched) "
            # the other rows of re-keyed subjects, as they were, under the new key
            "UNION ALL BY NAME SELECT k.subject_key, a.* EXCLUDE (subject_key, _seg, _row) FROM around a "
            "JOIN keys k ON a.uscc = k.uscc "
            "WHERE a.subject_key IN (SELECT subject_key FROM rekeyed) "
            "AND a.record_id NOT IN (SELECT record_id FROM touched)")
        con.execute("CREATE TEMP TABLE d_deletes AS SELECT _seg AS segment, 'subjects' AS tbl, _row AS row "
                    "FROM p_subjects")
        n_rec, n_sub, n_del = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                               for t in ("d_records", "d_subjects", "d_deletes"))
        if n_rec == n_sub == n_del == 0:
            return None
        con.execute(f"COPY (SELECT * FROM d_records ORDER BY subject_key, record_id) "
                    f"TO '{tmp / 'records.parquet'}' (FORMAT parquet)")
        con.execute(f"COPY (SELECT * FROM d_subjects ORDER BY subject_key) TO '{tmp / 'subjects.parquet'}' "
                    "(FORMAT parquet)")
        con.execute(f"COPY (SELECT * FROM d_deletes ORDER BY segment, tbl, row) "
                    f"TO '{tmp / 'deletes.parquet'}' (FORMAT parquet)")
        _same_columns(con, snap, tmp)
    except duckdb.Error as exc:
        raise StoreError(f"batch {batch_id}: deriving the current state failed, nothing was published: {exc}") from exc
    finally:
        con.close()
    final = _finish_segment(store, name, tmp, created)
    written = (_rows(final / "records.parquet"), _rows(final / "subjects.parquet"), _rows(final / "deletes.parquet"))
    if written != (n_rec, n_sub, n_del):
        raise StoreError(f"batch {batch_id}: the current state written ({written}) is not what was derived "
                         f"({(n_rec, n_sub, n_del)})")
    return Segment(name, n_rec, n_sub, n_del)


def _find_current(con: duckdb.DuckDBPyConnection, ids: str) -> None:
    """Add to ``p_records`` where the visible current rows of the records in table ``ids`` are, with
    what the checks need, and to ``referrers`` the live subject keys of the repairs and revocations
    referring to them (one scan of a few columns of every segment; rows kept if their subject key
    is live). The rows themselves are read with their subjects' (``around``)."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'p_records'").fetchone()[0]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _found AS SELECT * FROM ("
        "SELECT record_id, subject_key, kind, ref_record_id, version, _seg, _row, "
        f"record_id IN (SELECT record_id FROM {ids}) AS _own, "
        f"kind IN {_REPAIR_KINDS} AND ref_record_id IN (SELECT record_id FROM {ids}) AS _refers "
        "FROM all_records) f WHERE (f._own OR f._refers) AND f.subject_key IN (SELECT subject_key FROM live)")
    select = "SELECT * EXCLUDE (_own, _refers) FROM _found WHERE _own"
    refs = "SELECT DISTINCT subject_key FROM _found WHERE _refers"
    con.execute(f"INSERT INTO p_records {select}" if exists else f"CREATE TEMP TABLE p_records AS {select}")
    con.execute(f"INSERT INTO referrers {refs}" if exists else f"CREATE TEMP TABLE referrers AS {refs}")


def _refuse_stale_versions(con: duckdb.DuckDBPyConnection, batch_id: str, table: str, key: str,
                           batch: str | None = None, stored: str | None = None) -> None:
    """A batch's version of a key must come after the stored one: else a batch published since it
    was numbered changed the same key, and publishing both would leave two rows of one version.
    ``batch`` and ``stored``: relations with ``key`` and ``version`` (default: the delta's tables)."""
    batch, stored = batch or f"b_{table}", stored or f"p_{table}"
    stale = con.execute(f"SELECT b.{key}, b.version, p.version FROM {batch} b JOIN {stored} p ON b.{key} = p.{key} "
                        f"WHERE b.version <= p.version ORDER BY 1 LIMIT 3").fetchall()
    if stale:
        raise StoreError(f"batch {batch_id}: {table} {[s[0] for s in stale]} carry version(s) "
                         f"{[s[1] for s in stale]}, but the store already holds version(s) {[s[2] for s in stale]} "
                         "(published after this batch was numbered): discard it and ingest its files again")


def _same_columns(con: duckdb.DuckDBPyConnection, snap: Snapshot, tmp: Path) -> None:
    """A delta has the base's columns and types: readers union the segments by position."""
    for table in ("records", "subjects"):
        want = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{snap.segment_path(snap.segments[0], table)}')").fetchall()
        got = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{tmp / f'{table}.parquet'}')").fetchall()
        if [(c[0], c[1]) for c in want] != [(c[0], c[1]) for c in got]:
            raise StoreError(f"the derived {table} do not have the current state's columns: {got} vs {want}")

