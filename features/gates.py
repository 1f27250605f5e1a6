"""Data-quality gates between staging and publishing a batch, and the hold / release / reject of a batch.

``gate_staged`` runs :func:`features.quality.check_feeds` on a staged batch (its own record files)
against the published store (the current state: one row per record, its latest version). A batch
with a finding whose action is ``hold`` stays staged, invisible to every reader (profiles, grades,
monitoring), until a person calls :func:`release` (publishes exactly the files that were held) or
:func:`reject` (discards them: the store is as before). Warnings do not stop publication.

Every gated batch gets ``STORE/gates/<batch_id>.json``: its findings, its status (``published``,
``held``, ``released``, ``rejected``) and every decision on it (who, when, why): the audit of the
gates lives next to the data it is about and is written atomically like the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from features.quality import GATE_COLUMNS, Finding, QualityConfig, check_feeds
from features.store import (
    Snapshot,
    StoreError,
    _write_json,
    create_current_views,
    discard,
    has_table,
    latest_sql,
    publish,
    snapshot,
    sql_file_list,
    staged_batches,
)

GATES_DIR = "gates"
STATUSES = ("published", "held", "released", "rejected")


class GateError(StoreError):
    """A release or reject was refused (unknown batch, not held, no reason given); nothing changed."""


@dataclass(frozen=True)
class GateReport:
    """What the gates said about one batch and what became of it."""

    batch_id: str
    status: str
    findings: list[Finding]
    checked_at: str
    as_of: str
    decisions: list[dict]

    @property
    def held(self) -> bool:
        return self.status == "held"

    def to_dict(self) -> dict:
        return {"batch_id": self.batch_id, "status": self.status, "as_of": self.as_of, "checked_at": self.checked_at,
                "findings": [f.to_dict() for f in self.findings], "decisions": self.decisions}


def _report_path(store: Path, batch_id: str) -> Path:
    return store / GATES_DIR / f"{batch_id}.json"


def _select(source: str) -> str:
    cols = ", ".join(f"r.{c}" for c in GATE_COLUMNS if c != "district_code")
    return f"SELECT {cols}, s.district_code FROM {source} r LEFT JOIN gate_subjects s ON s.uscc = r.uscc"


def check_batch(store: str | Path, batch_id: str, *, as_of: date, config: QualityConfig | None = None,
                memory_limit: str = "768MB") -> list[Finding]:
    """The findings of staged batch ``batch_id`` against the published history of ``store``."""
    store = Path(store)
    published = snapshot(store)
    staged = {s.batch_id for s in staged_batches(store)}
    if staged & set(published.batch_ids):
        # a store never published before reads every batch directory, staged ones too: not history
        published = Snapshot(root=store, sequence=published.sequence,
                             batches=tuple(b for b in published.batches if b[0] not in staged))
    batch_dir = store / "batches" / batch_id
    files = sorted(str(p) for p in batch_dir.glob("records/**/*.parquet"))
    sub_files = sorted(str(p) for p in batch_dir.glob("subjects/*.parquet"))
    if not files:
        return []
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        con.execute(f"SET memory_limit = '{memory_limit}'")
        subjects = []
        if sub_files:
            subjects.append(f"SELECT uscc, district_code FROM read_parquet({sql_file_list(sub_files)})")
        if create_current_views(con, published):
            subjects.append("SELECT uscc, district_code FROM current_subjects")
            history = "current_records"
        elif has_table(published, "records"):
            history = f"({latest_sql(published, 'records')})"
            subjects.append(f"SELECT uscc, district_code FROM ({latest_sql(published, 'subjects')})")
        else:
            history = None
        union = " UNION ALL ".join(subjects) or "SELECT NULL::VARCHAR AS uscc, NULL::VARCHAR AS district_code"
        # a table, not a view: every scan of the history joins it (a view re-read the subjects each time)
        con.execute(f"CREATE TEMP TABLE gate_subjects AS SELECT uscc, any_value(district_code) AS district_code "
                    f"FROM ({union}) GROUP BY uscc")
        batch = f"read_parquet({sql_file_list(files)}, hive_partitioning = true, union_by_name = true)"
        con.execute(f"CREATE TEMP TABLE qb AS {_select(batch)}")
        if history is None:
            con.execute("CREATE TEMP VIEW qh AS SELECT * FROM qb WHERE false")
        else:
            con.execute(f"CREATE TEMP VIEW qh AS {_select(history)}")
        return check_feeds(con, as_of=as_of, config=config)
    finally:
        con.close()


def record_gate(store: str | Path, batch_id: str, findings: list[Finding], *, as_of: date,
                published: bool) -> GateReport:
    """Write the gate report of a batch just published (warnings only) or held."""
    report = GateReport(batch_id, "published" if published else "held", findings,
                        datetime.now(UTC).isoformat(timespec="seconds"), as_of.isoformat(), [])
    _write_json(_report_path(Path(store), batch_id), report.to_dict())
    return report


def read_report(store: str | Path, batch_id: str) -> GateReport:
    path = _report_path(Path(store), batch_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"批次 {batch_id} 没有质量检查记录 / batch {batch_id} has no gate report") from None
    return GateReport(data["batch_id"], data["status"], [Finding(**f) for f in data["findings"]],
                      data["checked_at"], data["as_of"], data["decisions"])


def held_batches(store: str | Path) -> list[GateReport]:
    """The batches held by a gate and still staged, oldest first."""
    store = Path(store)
    out = []
    for staged in staged_batches(store):
        if _report_path(store, staged.batch_id).exists():
            report = read_report(store, staged.batch_id)
            if report.held:
                out.append(report)
    return out


def _decide(store: Path, batch_id: str, decision: str, by: str, reason: str) -> GateReport:
    if not by.strip() or not reason.strip():
        raise GateError(f"批次 {batch_id}：放行或拒绝须写明操作人和理由 / batch {batch_id}: a release or reject "
                        "needs who and why")
    report = read_report(store, batch_id)
    if not report.held:
        raise GateError(f"批次 {batch_id} 未被拦截（状态 {report.status}）/ batch {batch_id} is not held "
                        f"(status {report.status})")
    if batch_id not in {s.batch_id for s in staged_batches(store)}:
        raise GateError(f"批次 {batch_id} 已不在暂存区 / batch {batch_id} is no longer staged")
    if decision == "released":
        publish(store, batch_id)
    else:
        discard(store, batch_id)
    entry = {"decision": decision, "by": by.strip(), "reason": reason.strip(),
             "at": datetime.now(UTC).isoformat(timespec="seconds")}
    updated = GateReport(report.batch_id, decision, report.findings, report.checked_at, report.as_of,
                         [*report.decisions, entry])
    _write_json(_report_path(store, batch_id), updated.to_dict())
    return updated


def release(store: str | Path, batch_id: str, *, by: str, reason: str) -> GateReport:
    """Publish a held batch exactly as it was staged; recorded with who and why."""
    return _decide(Path(store), batch_id, "released", by, reason)


def reject(store: str | Path, batch_id: str, *, by: str, reason: str) -> GateReport:
    """Discard a held batch (the store stays as it is); recorded with who and why."""
    return _decide(Path(store), batch_id, "rejected", by, reason)
