"""The Parquet record store written by :mod:`features.ingest` and read by profiles and labels.

Layout (one directory per ingestion batch, so a batch appears whole or not at all)::

    STORE/batches/<batch_id>/subjects/part-0.parquet
    STORE/batches/<batch_id>/records/decision_year=YYYY/*.parquet
    STORE/batches/<batch_id>/quarantine.csv
    STORE/batches/<batch_id>/summary.json

Every stored row carries ``version``, ``content_hash``, ``ingested_at``, ``batch_id``; history is
never overwritten, readers pick the latest version per key.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

BATCHES_DIR = "batches"


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
