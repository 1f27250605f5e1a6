"""Batches waiting behind a held batch: a later batch must not lose what an earlier, held one brings.

A batch whose records belong to subjects registered only in a held batch cannot be staged (the store
refuses records of subjects it will not hold) and must not quarantine them as unknown either: the
subjects exist, they are waiting for a person's decision. Such a batch is parked whole under
``STORE/waiting/<batch_id>`` (invisible to every reader, like a staged one) and is staged, gated
and published when the batches it waits for are released (:mod:`features.gates` does that), so
ingesting July (held, then released) and August gives the store ingesting them in order gives.
That includes the gate: a parked batch keeps the rules its ingestion was given (``gate_rules.json``
beside it; ``null``: ingested without gates), and is checked with those, not the packaged ones or
whatever a later ingestion passes: the office's rules file of that ingestion is the one in force
for that batch, as it would have been had the batch not waited.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from features.store import BATCHES_DIR, sql_file_list

WAITING_DIR = "waiting"
RULES_FILE = "gate_rules.json"


def waiting_path(store: Path, batch_id: str) -> Path:
    return store / WAITING_DIR / batch_id


def waiting_batches(store: str | Path) -> list[str]:
    """The ids of the parked batches, oldest first (ids start with their ingestion time)."""
    root = Path(store) / WAITING_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def held_subjects(store: str | Path, held_ids: list[str]) -> dict[str, str]:
    """The subjects (uscc → batch id) of the held batches ``held_ids``, staged or parked."""
    if not held_ids:
        return {}
    store, files = Path(store), {}
    for batch_id in held_ids:
        for base in (store / BATCHES_DIR / batch_id, waiting_path(store, batch_id)):
            found = sorted(str(p) for p in base.glob("subjects/*.parquet"))
            if found:
                files[batch_id] = found
    out: dict[str, str] = {}
    if not files:
        return out
    con = duckdb.connect()
    try:
        for batch_id, paths in files.items():
            for (uscc,) in con.execute(f"SELECT DISTINCT uscc FROM read_parquet({sql_file_list(paths)})").fetchall():
                out.setdefault(uscc, batch_id)
    finally:
        con.close()
    return out


def dependent_records(batch_dir: Path, pending: dict[str, str]) -> tuple[int, list[str], list[str]]:
    """Records of ``batch_dir`` (a written batch) of subjects known only from a held batch (``pending``,
    less the subjects the batch itself carries): their count, up to 5 record ids, the batches they wait for."""
    records = sorted(str(p) for p in batch_dir.glob("records/**/*.parquet"))
    if not pending or not records:
        return 0, [], []
    own = sorted(str(p) for p in batch_dir.glob("subjects/*.parquet"))
    con = duckdb.connect()
    try:
        con.execute("CREATE TEMP TABLE pending (uscc VARCHAR, batch_id VARCHAR)")
        con.executemany("INSERT INTO pending VALUES (?, ?)", list(pending.items()))
        exclude = f"AND r.uscc NOT IN (SELECT uscc FROM read_parquet({sql_file_list(own)}))" if own else ""
        n, ids, behind = con.execute(
            f"SELECT count(*), list(r.record_id ORDER BY r.record_id)[1:5], list(DISTINCT p.batch_id) "
            f"FROM read_parquet({sql_file_list(records)}, hive_partitioning = true, union_by_name = true) r "
            f"JOIN pending p USING (uscc) WHERE true {exclude}").fetchone()
    finally:
        con.close()
    return int(n), list(ids or []), sorted(behind or [])


def park(store: Path, batch_dir: Path, batch_id: str, rules: dict | None = None) -> Path:
    """Move a written batch directory under ``STORE/waiting`` with the gate rules its ingestion was given
    (``rules``: a QualityConfig as a dict; None: no gates); returns where it is."""
    target = waiting_path(store, batch_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(batch_dir), str(target))
    (target.parent / f"{batch_id}.{RULES_FILE}").write_text(json.dumps({"gates": rules}, ensure_ascii=False),
                                                           encoding="utf-8")
    return target


def parked_rules(store: Path, batch_id: str) -> tuple[bool, dict | None]:
    """Whether the parked batch recorded its gate rules, and those rules (None: it was ingested without
    gates). A batch parked before the rules were kept records none."""
    path = waiting_path(store, batch_id).parent / f"{batch_id}.{RULES_FILE}"
    if not path.exists():
        return False, None
    return True, json.loads(path.read_text(encoding="utf-8"))["gates"]


def drop(store: Path, batch_id: str) -> None:
    shutil.rmtree(waiting_path(store, batch_id), ignore_errors=True)
    (waiting_path(store, batch_id).parent / f"{batch_id}.{RULES_FILE}").unlink(missing_ok=True)
