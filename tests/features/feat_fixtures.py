"""Hand-made subjects and records following docs/data-contract.md, for the features tests."""

from __future__ import annotations

import errno
import hashlib
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from stdnum.cn import uscc as stdnum_uscc

from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS

# the ingestion time of every test batch: fixed, so 'not in the future' is reproducible
INGESTED_AT = datetime(2026, 11, 22, tzinfo=UTC)


def code(i: int, first: str = "9") -> str:
    """A valid USCC numbered ``i`` (registering authority ``first``)."""
    body = f"{first}1320102MA{i:07d}"
    return body + stdnum_uscc.calc_check_digit(body)


def subject(i: int, **overrides) -> dict:
    row = {
        "uscc": code(i), "name": f"南京测试{i}有限公司", "legal_form": "llc", "industry": "C",
        "district_code": "320102", "district_name": "玄武区", "registered_on": "2015-03-01",
        "registered_capital": 100.0, "employees": 12, "status": "active", "status_date": None,
        "legal_rep_name": "张三", "legal_rep_id": None,
    }
    row.update(overrides)
    return row


_DOC = {
    "admin_penalty": "宁市监罚〔2024〕1号", "admin_enforcement": "宁市监强〔2024〕1号",
    "commitment_broken": "宁信诺〔2024〕1号", "repair": "宁信修〔2024〕1号", "revocation": "宁信撤〔2024〕1号",
    "list_serious_dishonesty": "宁失信〔2024〕1号", "list_key_attention": "宁关注〔2024〕1号",
    "list_abnormal_operation": "宁异常〔2024〕1号", "list_dishonest_debtor": "（2024）苏01执1号",
    "admin_adjudication": "宁裁〔2024〕1号",
}


def record(record_id: str, uscc: str, kind: str, decision_date: date | str, **overrides) -> dict:
    row = {c: None for c in RECORD_COLUMNS}
    row.update(record_id=record_id, uscc=uscc, kind=kind, decision_date=str(decision_date),
               department="samr", document_no=_DOC.get(kind), description="测试记录")
    if kind == "admin_penalty":
        row.update(severity="general", amount=1000.0)
    if kind == "inspection":
        row.update(subkind="no_problem", inspection_item="SAMR-01")
    row.update(overrides)
    if isinstance(row["decision_date"], date):
        row["decision_date"] = row["decision_date"].isoformat()
    return row


def subjects_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(SUBJECT_COLUMNS))


def records_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


# --- injected failures of the record store (features.store) ------------------------------------
def store_tree(store: Path) -> dict[str, str]:
    """Every file of the store (but the writers' lock) with a hash of its bytes."""
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.name != ".lock"}


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def inject_store_failure(monkeypatch, target: str) -> None:
    """Make ``features.store``'s ``target`` fail with a full disk; ``os.replace`` only for the one
    replace that publishes (``manifest.json``)."""
    import features.store as store_module

    if target != "os.replace":
        monkeypatch.setattr(store_module, target, disk_full)
        return
    real = os.replace

    def replace(src, dst):
        if Path(dst).name == "manifest.json":
            disk_full()
        real(src, dst)

    monkeypatch.setattr(store_module.os, "replace", replace)


def published_versions(store: Path, table: str) -> pd.DataFrame:
    """(key, version) of every published version of ``table`` in ``store`` (none if it has no such table)."""
    import duckdb

    from features.store import has_table, scan_sql

    key = "record_id" if table == "records" else "uscc"
    if not has_table(store, table):
        return pd.DataFrame({key: pd.Series(dtype=object), "version": pd.Series(dtype="int64")})
    return duckdb.connect().sql(f"SELECT {key}, version FROM {scan_sql(store, table)}").df()
