"""The Parquet record store written by :mod:`features.ingest` and read by profiles and labels.

Layout (one directory per ingestion batch, so a batch appears whole or not at all)::

    STORE/batches/<batch_id>/subjects/part-0.parquet
    STORE/batches/<batch_id>/records/decision_year=YYYY/*.parquet
    STORE/batches/<batch_id>/quarantine.csv
    STORE/batches/<batch_id>/summary.json

    STORE/current/<generation>/records.parquet   derived: current state, see below
    STORE/current/<generation>/subjects.parquet

Every stored row carries ``version``, ``content_hash``, ``ingested_at``, ``batch_id``; history is
never overwritten, readers pick the latest version per key.

``current/`` is a derived, disposable cache of the as-of-independent part of the profile work
(``features/sql/current_records.sql`` and ``current_subjects.sql``): the latest version of every
record with its repair and revocation dates resolved, and the latest version of every subject,
both keyed by ``subject_key``, a dense INTEGER assigned in uscc order.
``<generation>`` is a fingerprint of the batch directories it was built from, so a store changed
by a later batch is never read through a stale cache (readers then fall back to the SQL views).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd

BATCHES_DIR = "batches"
CURRENT_DIR = "current"
# Part of every generation's fingerprint: a change of the current-state SQL or layout gets a new
# version, so a store materialised by older code is rebuilt, never read with the wrong columns.
CURRENT_LAYOUT_VERSION = "4"


def _glob(store: Path, table: str) -> str:
    pattern = "records/**/*.parquet" if table == "records" else "subjects/*.parquet"
    return str(Path(store) / BATCHES_DIR / "*" / pattern)


def has_table(store: str | Path, table: str) -> bool:
    """True if at least one batch of ``store`` holds rows of ``table`` (records or subjects)."""
    base = Path(store) / BATCHES_DIR
    if not base.is_dir():
        return False
    sub = "records" if table == "records" else "subjects"
    return any(base.glob(f"*/{sub}/**/*.parquet"))


def scan_sql(store: str | Path, table: str) -> str:
    """A DuckDB FROM-clause expression reading every stored version of ``table``."""
    hive = "true" if table == "records" else "false"
    return f"read_parquet('{_glob(Path(store), table)}', hive_partitioning={hive}, union_by_name=true)"


def latest_sql(store: str | Path, table: str) -> str:
    """DuckDB SQL selecting the latest version of each record (by record_id) or subject (by uscc)."""
    key = "record_id" if table == "records" else "uscc"
    drop = ", decision_year" if table == "records" else ""
    return (
        f"SELECT * EXCLUDE (_rn{drop}) FROM (SELECT *, row_number() OVER "
        f"(PARTITION BY {key} ORDER BY version DESC) AS _rn FROM {scan_sql(store, table)}) WHERE _rn = 1"
    )


def read_latest(store: str | Path, table: str, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """The latest version of every stored record or subject, as a DataFrame (empty if none)."""
    if not has_table(store, table):
        return pd.DataFrame()
    con = con or duckdb.connect()
    return con.sql(latest_sql(store, table)).df()


def read_versions(store: str | Path, table: str, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """Every stored version (key, version, content_hash): what ingestion compares new rows against."""
    key = "record_id" if table == "records" else "uscc"
    if not has_table(store, table):
        return pd.DataFrame({key: pd.Series(dtype=object), "version": pd.Series(dtype="int64"),
                             "content_hash": pd.Series(dtype=object)})
    con = con or duckdb.connect()
    return con.sql(f"SELECT {key}, version, content_hash FROM {scan_sql(store, table)}").df()


def _sql_file(name: str) -> str:
    return resources.files("features.sql").joinpath(name).read_text(encoding="utf-8")


def store_generation(store: str | Path) -> str:
    """Fingerprint of the batches of ``store`` (their names) and of the current-state layout: changes
    whenever a batch is added or the layout changes."""
    base = Path(store) / BATCHES_DIR
    names = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return hashlib.sha256("\n".join([f"layout {CURRENT_LAYOUT_VERSION}", *names]).encode()).hexdigest()[:16]


def current_dir(store: str | Path) -> Path | None:
    """The materialised current state of ``store`` if it is up to date with its batches, else None."""
    path = Path(store) / CURRENT_DIR / store_generation(store)
    return path if (path / "records.parquet").is_file() and (path / "subjects.parquet").is_file() else None


def create_version_views(con: duckdb.DuckDBPyConnection, store: str | Path) -> None:
    """Views ``record_versions`` and ``subject_versions`` over every stored version of ``store``
    (only for the tables the store holds)."""
    for table, view in (("subjects", "subject_versions"), ("records", "record_versions")):
        if has_table(store, table):
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {scan_sql(store, table)}")


def write_current(store: str | Path, threads: int = 2, memory_limit: str = "3GB") -> Path:
    """Materialise the current state of ``store`` under ``current/<generation>/``; keep the one before, drop older ones.

    Same rows and values as ``current_records.sql`` / ``current_subjects.sql`` over the history,
    except that ``subject_key`` is a dense INTEGER (uscc order): grouping and joining on a small
    integer instead of an 18-character code is part of what makes the profile build fast. Written to a
    temporary directory and renamed, so readers see a whole generation or none.
    """
    store = Path(store)
    if not (has_table(store, "subjects") and has_table(store, "records")):
        raise ValueError(f"store {store} needs both subjects and records to build its current state")
    generation = store_generation(store)
    root = store / CURRENT_DIR
    final = root / generation
    tmp = root / f".tmp-{generation}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(threads)}")
        # 20+ M records on a shared machine: bounded memory, spilling to the store's own tmp dir
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{tmp / 'spill'}'")
        con.execute("SET preserve_insertion_order = false")
        create_version_views(con, store)
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
    except BaseException:
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    con.close()
    shutil.rmtree(tmp / "spill", ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    # Earlier generations describe fewer batches, so no new reader resolves to them; the one just
    # before is kept because a build that started before the rename may still be scanning it.
    older = sorted((d for d in root.iterdir() if d != final and not d.name.startswith(".tmp-")),
                   key=lambda d: d.stat().st_mtime, reverse=True)
    for old in older[1:]:
        shutil.rmtree(old, ignore_errors=True)
    return final
