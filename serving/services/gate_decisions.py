"""Batches held by the data-quality gates, and a person's release or rejection of one.

The one place a held batch is decided: ``tiers gate release|reject`` and the analyst page
(``serving.routes.gate_pages``) both call :func:`decide`, which publishes (release) or discards
(reject) the batch through :mod:`features.gates` (that also appends the decision to the batch's
JSON report in the store) and records who, when, what and why in ``gate_decisions``. The row is
flushed before the store changes and committed after: a refused decision (not held, no reason,
unknown batch) leaves neither the store nor the table changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from features.gates import GateError, GateReport, held_batches, reject, release
from features.quality import Finding, blocking
from serving.db.tables import GateDecision

DECISIONS = ("released", "rejected")

#: what each gate rule means, for a person deciding (features/quality.py names them)
RULE_NAMES: dict[str, str] = {
    "volume_surge": "数量激增（疑似重复报送或积压补报）",
    "volume_silence": "数量骤减（数据源可能中断）",
    "district_silence": "区县数据中断",
    "amount_unit": "金额疑似计量单位变更（如万元/元）",
    "amount_tail": "部分金额疑似计量单位错误",
    "amount_shift": "金额水平变化",
    "category_recoded": "分类代码疑似重编",
    "category_vanished": "分类取值消失",
    "category_appeared": "出现历史上没有的分类取值",
    "category_mix": "分类构成变化",
    "date_future": "决定日期晚于入库日期",
    "date_far_past": "决定日期过早（疑似年份或格式错误）",
    "date_late": "积压补报",
    "date_swap": "日期疑似日/月颠倒",
    "duplicate": "疑似重复记录",
}
ACTION_NAMES = {"hold": "拦截", "warn": "警告"}


def rule_name(rule: str) -> str:
    return RULE_NAMES.get(rule, rule)


@dataclass(frozen=True)
class HeldBatch:
    """A held batch as a person sees it: its findings, the holding ones first."""

    batch_id: str
    checked_at: str
    as_of: str
    findings: list[Finding]

    @property
    def holding_rules(self) -> list[str]:
        return sorted({f.rule for f in blocking(self.findings)})


def held_reports(store: str | Path) -> list[GateReport]:
    """The gate reports of the batches of ``store`` held and waiting for a decision, oldest first,
    as the gates wrote them (`tiers gate held`)."""
    return held_batches(store)


def held(store: str | Path) -> list[HeldBatch]:
    """The batches of ``store`` held and waiting for a decision, oldest first."""
    out = []
    for report in held_reports(store):
        findings = sorted(report.findings, key=lambda f: (f.action != "hold", f.feed, f.rule))
        out.append(HeldBatch(report.batch_id, report.checked_at, report.as_of, findings))
    return out


def decide(session: Session, store: str | Path, batch_id: str, *, decision: str, actor: str,
           reason: str) -> GateReport:
    """Release (publish exactly what was held) or reject (discard: the store as before) held batch
    ``batch_id`` of ``store``, audited in ``gate_decisions``. Raises :class:`GateError` (nothing
    changed) when the batch is not held, unknown, or who or why is missing."""
    if decision not in DECISIONS:
        raise GateError(f"未知的决定 {decision!r} / unknown decision {decision!r}")
    if not actor.strip() or not reason.strip():
        raise GateError(f"批次 {batch_id}：放行或拒绝须写明操作人和理由 / batch {batch_id}: a release or reject "
                        "needs who and why")
    report = next((r for r in held_batches(store) if r.batch_id == batch_id), None)
    if report is None:
        raise GateError(f"批次 {batch_id} 不是待处理的拦截批次 / batch {batch_id} is not a held batch")
    row = GateDecision(batch_id=batch_id, decision=decision, actor=actor.strip()[:80], reason=reason.strip(),
                       rules=",".join(sorted({f.rule for f in blocking(report.findings)}))[:400],
                       store=str(Path(store).resolve())[:500])
    session.add(row)
    try:
        session.flush()  # the audit row is writable before the store changes
        act = release if decision == "released" else reject
        updated = act(store, batch_id, by=actor, reason=reason)
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return updated


def decisions(session: Session, batch_id: str | None = None, limit: int = 50) -> list[GateDecision]:
    """The latest decisions, newest first (of one batch if given)."""
    query = select(GateDecision).order_by(GateDecision.id.desc()).limit(limit)
    if batch_id is not None:
        query = query.where(GateDecision.batch_id == batch_id)
    return list(session.scalars(query))
