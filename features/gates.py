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
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from features.held_queue import drop, parked_rules, waiting_batches, waiting_path
from features.quality import GATE_COLUMNS, Finding, QualityConfig, blocking, load_quality_config
from features.quality_rules_extra import check_all
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
    stage_batch,
    staged_batches,
)

GATES_DIR = "gates"
QUARANTINE_FEEDS = "quarantine_feeds.parquet"  # written by features.ingest next to quarantine.csv
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
    if not files and not sub_files:
        return []
    con = duckdb.connect()
    # a batch of millions of rows outgrows memory_limit (the batch table, the duplicate joins): spill
    # beside the store, not into the working directory's .tmp (DuckDB's default for an in-memory database)
    spill = store / f".tmp-gate-{batch_id}"
    try:
        con.execute("SET threads = 2")
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{spill}'")
        subjects = []
        if sub_files:
            subjects.append(f"SELECT uscc, district_code FROM read_parquet({sql_file_list(sub_files)})")
        register = None  # the store's current subjects
        if create_current_views(con, published):
            register = "current_subjects"
            history = "current_records"
        elif has_table(published, "records"):
            history = f"({latest_sql(published, 'records')})"
            register = f"({latest_sql(published, 'subjects')})"
        else:
            history = None
        if register:
            subjects.append(f"SELECT uscc, district_code FROM {register}")
        _register_views(con, sub_files, register)
        _quarantine_view(con, batch_dir)
        union = " UNION ALL ".join(subjects) or "SELECT NULL::VARCHAR AS uscc, NULL::VARCHAR AS district_code"
        # a table, not a view: every scan of the history joins it (a view re-read the subjects each time)
        con.execute(f"CREATE TEMP TABLE gate_subjects AS SELECT uscc, any_value(district_code) AS district_code "
                    f"FROM ({union}) GROUP BY uscc")
        if files:
            batch = f"read_parquet({sql_file_list(files)}, hive_partitioning = true, union_by_name = true)"
            con.execute(f"CREATE TEMP TABLE qb AS {_select(batch)}")
        else:  # a subjects-only batch: the register rules still look at it
            con.execute("CREATE TEMP TABLE qb (record_id VARCHAR, uscc VARCHAR, kind VARCHAR, subkind VARCHAR, "
                        "severity VARCHAR, decision_date DATE, amount DOUBLE, department VARCHAR, document_no VARCHAR, "
                        "district_code VARCHAR)")
        if history is None:
            con.execute("CREATE TEMP VIEW qh AS SELECT * FROM qb WHERE false")
        else:
            con.execute(f"CREATE TEMP VIEW qh AS {_select(history)}")
        return check_all(con, as_of=as_of, config=config)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _register_views(con: duckdb.DuckDBPyConnection, sub_files: list[str], register: str | None) -> None:
    """Views ``qs_batch`` (the batch's subjects) and ``qs_store`` (the store's current register) for the
    register rules of features.quality_rules_extra; absent when the batch has no subjects file."""
    if not sub_files:
        return
    con.execute(f"CREATE TEMP VIEW qs_batch AS SELECT uscc, district_code, status FROM "
                f"read_parquet({sql_file_list(sub_files)}, union_by_name = true)")
    con.execute("CREATE TEMP VIEW qs_store AS " + (
        f"SELECT uscc, district_code, status FROM {register}" if register else
        "SELECT NULL::VARCHAR AS uscc, NULL::VARCHAR AS district_code, NULL::VARCHAR AS status WHERE false"))


def _quarantine_view(con: duckdb.DuckDBPyConnection, batch_dir: Path) -> None:
    """Table ``qq``: the batch's quarantined record rows per feed and rule (written by ingestion), so a
    feed whose rows were all quarantined is not taken for one that sent nothing, and the future dates of a
    day/month swap count with the rows it sent into the past."""
    path = batch_dir / QUARANTINE_FEEDS
    if path.exists():
        # ``dates`` (the raw dates of rows refused as future): absent from a batch written before it was kept
        has_dates = "dates" in {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()}
        dates = "dates" if has_dates else "[]::VARCHAR[] AS dates"
        con.execute(f"CREATE TEMP TABLE qq AS SELECT department, kind, rule, n, ids, {dates} FROM read_parquet('{path}')")


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
    """The batches held by a gate and still staged, then those waiting behind one (features.held_queue),
    oldest first."""
    store = Path(store)
    out = []
    for batch_id in [s.batch_id for s in staged_batches(store)] + waiting_batches(store):
        if _report_path(store, batch_id).exists():
            report = read_report(store, batch_id)
            if report.held:
                out.append(report)
    return out


def held_behind_finding(records: int, examples: list[str], behind: list[str]) -> Finding:
    """The finding of a batch parked behind held batches ``behind`` (its ``records`` need their subjects)."""
    return Finding("*", "held_behind", "hold", records, 0, examples, {"behind": behind, "records": records},
                   f"本批 {records} 条记录的主体仅见于尚在拦截中的批次 {'、'.join(behind)}：本批排在其后，"
                   "该批次放行后自动检查并发布（拒绝则须处理本批）",
                   f"{records} records of this batch belong to subjects only in held batch(es) {', '.join(behind)}: "
                   "it waits behind them and is checked and published when they are released")


def _run_parked(store: Path, batch_id: str, report: GateReport, entry: dict) -> GateReport:
    """Stage, gate and publish (or hold) a parked batch whose blockers were released. If staging fails
    it stays parked (StoreError); if publishing fails it stays staged and held, the error in its audit."""
    # the rules its ingestion was given, as ingesting in order would have used (features.held_queue);
    # a batch parked before they were kept: the packaged ones
    known, rules = parked_rules(store, batch_id)
    config = QualityConfig.model_validate(rules) if rules is not None else None if known else load_quality_config()
    staged = stage_batch(store, waiting_path(store, batch_id), batch_id=batch_id)
    drop(store, batch_id)  # no longer parked: its directory moved to batches/, its rules file goes
    findings = [] if config is None else check_batch(store, batch_id, as_of=date.fromisoformat(report.as_of),
                                                     config=config)
    status = "held"
    if not blocking(findings):
        try:
            publish(store, staged)
            status = "published"
        except StoreError as exc:
            entry = {**entry, "error": str(exc)}
    updated = GateReport(batch_id, status, findings, datetime.now(UTC).isoformat(timespec="seconds"), report.as_of,
                         [*report.decisions, entry])
    _write_json(_report_path(store, batch_id), updated.to_dict())
    return updated


def _release_waiting(store: Path, released: str, by: str) -> None:
    """After ``released`` was published: every parked batch no longer behind a held one goes on."""
    still_held = {r.batch_id for r in held_batches(store) if r.batch_id not in waiting_batches(store)}
    for batch_id in waiting_batches(store):
        report = read_report(store, batch_id)
        behind = {b for f in report.findings if f.rule == "held_behind" for b in f.detail.get("behind", [])}
        if released in behind and not behind & still_held:
            entry = {"decision": "released_behind", "by": by, "reason": f"{released} released",
                     "at": datetime.now(UTC).isoformat(timespec="seconds")}
            try:
                done = _run_parked(store, batch_id, report, entry)
            except StoreError:
                continue  # stays parked; releasing it by hand reports why (e.g. a key both batches changed)
            if done.status == "published":  # a batch parked behind this one goes on in its turn
                _release_waiting(store, batch_id, by)


def _decide(store: Path, batch_id: str, decision: str, by: str, reason: str) -> GateReport:
    if not by.strip() or not reason.strip():
        raise GateError(f"批次 {batch_id}：放行或拒绝须写明操作人和理由 / batch {batch_id}: a release or reject "
                        "needs who and why")
    report = read_report(store, batch_id)
    if not report.held:
        raise GateError(f"批次 {batch_id} 未被拦截（状态 {report.status}）/ batch {batch_id} is not held "
                        f"(status {report.status})")
    entry = {"decision": decision, "by": by.strip(), "reason": reason.strip(),
             "at": datetime.now(UTC).isoformat(timespec="seconds")}
    if batch_id in waiting_batches(store):  # parked behind a held batch (features.held_queue)
        if decision == "rejected":
            drop(store, batch_id)
        else:
            try:
                return _run_parked(store, batch_id, report, entry)
            except StoreError as exc:
                raise GateError(f"批次 {batch_id} 无法发布 / batch {batch_id} cannot be published: {exc}") from exc
        updated = GateReport(report.batch_id, decision, report.findings, report.checked_at, report.as_of,
                             [*report.decisions, entry])
        _write_json(_report_path(store, batch_id), updated.to_dict())
        return updated
    if batch_id not in {s.batch_id for s in staged_batches(store)}:
        raise GateError(f"批次 {batch_id} 已不在暂存区 / batch {batch_id} is no longer staged")
    if decision == "released":
        publish(store, batch_id)
    else:
        discard(store, batch_id)
    updated = GateReport(report.batch_id, decision, report.findings, report.checked_at, report.as_of,
                         [*report.decisions, entry])
    _write_json(_report_path(store, batch_id), updated.to_dict())
    if decision == "released":
        _release_waiting(store, batch_id, by.strip())
    return updated


def release(store: str | Path, batch_id: str, *, by: str, reason: str) -> GateReport:
    """Publish a held batch exactly as it was staged; recorded with who and why."""
    return _decide(Path(store), batch_id, "released", by, reason)


def reject(store: str | Path, batch_id: str, *, by: str, reason: str) -> GateReport:
    """Discard a held batch (the store stays as it is); recorded with who and why."""
    return _decide(Path(store), batch_id, "rejected", by, reason)
