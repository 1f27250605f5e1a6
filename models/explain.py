"""Reason codes: exact per-feature contributions → top-k reasons in Chinese and English.

Bulk path (millions of subjects): `explain_bulk` keeps only integer codes — for each subject
the indices and contributions of its top-k risk-raising features, chosen with
`np.argpartition` (O(n·p), no full sort) — plus the grades. Text is rendered lazily, one
subject at a time, by `BulkExplanation.reasons(i, ...)` or `reason_codes(...)`.

Every contribution is in log-odds (positive = raises the risk), and
`base_value + Σ contributions = the model's log-odds` exactly (see `models.base`); a model with
declared pairwise terms (`models.gam.BoostedGAM`) adds one term per pair, and a pair's reason
names both features. Overrides that fired always come first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.base import Contributions, sigmoid
from models.grading import GradeResult, OverrideRule
from models.meta import Evidence, FeatureMeta, as_evidence


@dataclass(frozen=True)
class ReasonCode:
    """One reason: a fired override, a feature or a declared pair of features with its
    contribution and the records behind it (a pair's code is ``a*b``, its value ``(a, b)``)."""

    code: str
    kind: str  # "override" | "feature" | "pair"
    text_zh: str
    text_en: str
    contribution: float = math.nan
    value: Any = None
    evidence: list[Evidence] = field(default_factory=list)

    def evidence_zh(self) -> list[str]:
        """The records behind the reason, one line each (kind, date, department, document no.)."""
        return [f"{e.kind} {e.decision_date} {e.department} {e.document_no}".strip() for e in self.evidence]


def top_k(values: np.ndarray, k: int = 5, *, risk_raising_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n×k, -1 = none) and values of the k largest contributions per row, largest first."""
    values = np.asarray(values, dtype=float)
    n, p = values.shape
    k = min(k, p)
    if k == 0:
        return np.full((n, 0), -1, dtype=np.int32), np.empty((n, 0))
    part = np.argpartition(-values, k - 1, axis=1)[:, :k] if k < p else np.tile(np.arange(p), (n, 1))
    vals = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1)
    if risk_raising_only:
        idx = np.where(vals > 0, idx, -1)
        vals = np.where(vals > 0, vals, 0.0)
    return idx, vals


def _format_value(value: Any) -> str:
    """Whole numbers without decimals, others with two; thousands separated (罚没金额 1,250,000元)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.2f}"


def _percent(share: Any) -> str:
    """A share as a whole percentage that never rounds a non-zero share to 0 % or a partial one to 100 %."""
    share = float(share)
    if 0 < share < 0.005:
        return "<1%"
    if 0.995 <= share < 1:
        return ">99%"
    return f"{share:.0%}"


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def render_feature_reason(meta: FeatureMeta, value: Any, contribution: float) -> tuple[str, str]:
    """(zh, en) sentence of a feature reason: the meta's templates, else "<label> is <value>".

    A missing value gets the meta's missing sentence, else "<label>: no data", so no sentence
    states a count or a rate the subject does not have.
    """
    raises = contribution > 0
    effect_zh, effect_en = ("提高了信用风险", "raises the credit risk") if raises else ("降低了信用风险", "lowers the credit risk")
    if _is_missing(value):
        label_en = meta.label_en[:1].upper() + meta.label_en[1:]
        return ((meta.missing_zh or "{label}：无数据，{effect}").format(label=meta.label_zh, effect=effect_zh),
                (meta.missing_en or "{label}: no data; this {effect}").format(label=label_en, effect=effect_en))
    numeric = isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating))
    truthy = bool(value) if numeric else None
    fields = {"label_zh": meta.label_zh, "label_en": meta.label_en, "percent": _percent(value) if numeric else "—"}
    zh = (meta.template_zh or "{label_zh}为{value}，{effect}").format(
        value=_format_value(value), effect=effect_zh, yes_no={True: "是", False: "否", None: "—"}[truthy], **fields)
    en = (meta.template_en or "{label_en} is {value}: this {effect}").format(
        value=_format_value(value), effect=effect_en, yes_no={True: "yes", False: "no", None: "—"}[truthy],
        **fields)
    return zh, en


def render_pair_reason(meta_a: FeatureMeta, value_a: Any, meta_b: FeatureMeta, value_b: Any,
                       contribution: float) -> tuple[str, str]:
    """(zh, en) sentence of a pair term: both features with their values, and that their
    combination (beyond what each does alone) raises or lowers the risk."""
    raises = contribution > 0
    effect_zh, effect_en = ("提高了信用风险", "raises the credit risk") if raises else ("降低了信用风险", "lowers the credit risk")

    def shown(value: Any, missing: str) -> str:
        return missing if _is_missing(value) else _format_value(value)

    zh = (f"{meta_a.label_zh}（{shown(value_a, '无数据')}）与{meta_b.label_zh}（{shown(value_b, '无数据')}）"
          f"同时出现，其组合{effect_zh}")
    en = (f"{meta_a.label_en} ({shown(value_a, 'no data')}) together with {meta_b.label_en} "
          f"({shown(value_b, 'no data')}): the combination {effect_en}")
    return zh, en


def _metas_by_name(metas: Mapping[str, FeatureMeta] | Sequence[FeatureMeta] | None) -> dict[str, FeatureMeta]:
    if metas is None:
        return {}
    return dict(metas) if isinstance(metas, Mapping) else {m.name: m for m in metas}


def reason_codes(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    values: Mapping[str, Any],
    *,
    metas: Mapping[str, FeatureMeta] | Sequence[FeatureMeta] | None = None,
    k: int = 5,
    evidence: Mapping[str, Sequence[Evidence | Mapping[str, Any]]] | None = None,
    overrides: Sequence[OverrideRule] = (),
    indices: Sequence[int] | None = None,
    pairs: Sequence[tuple[str, str]] = (),
) -> list[ReasonCode]:
    """Reasons for one subject: fired overrides first, then the top-k risk-raising terms.

    contributions: this subject's row of `Contributions.terms()` (one value per feature, then
    one per declared pair in ``pairs``); values: its profile values; evidence: feature (or
    override column) → records behind it. A pair's reason names both features and cites the
    records behind each.
    """
    by_name = _metas_by_name(metas)
    evidence = evidence or {}
    out = [
        ReasonCode(r.rule_id, "override", r.reason_zh, r.reason_en or r.reason_zh,
                   value=values.get(r.column), evidence=as_evidence(evidence.get(r.column)))
        for r in overrides
    ]
    if indices is None:
        idx, _ = top_k(np.asarray(contributions, dtype=float).reshape(1, -1), k)
        indices = idx[0]
    def meta(name: str) -> FeatureMeta:
        return by_name.get(name) or FeatureMeta(name, name, name)

    p = len(feature_names)
    for j in indices:
        if j < 0:
            continue
        c = float(contributions[j])
        if j >= p:
            a, b = pairs[j - p]
            zh, en = render_pair_reason(meta(a), values.get(a), meta(b), values.get(b), c)
            out.append(ReasonCode(f"{a}*{b}", "pair", zh, en, c, (values.get(a), values.get(b)),
                                  as_evidence([*evidence.get(a, ()), *evidence.get(b, ())])))
            continue
        name = feature_names[j]
        zh, en = render_feature_reason(meta(name), values.get(name), c)
        out.append(ReasonCode(name, "feature", zh, en, c, values.get(name), as_evidence(evidence.get(name))))
    return out


@dataclass
class BulkExplanation:
    """Grades and top-k reason codes of many subjects; text only on demand."""

    grades: GradeResult
    top_index: np.ndarray
    top_contribution: np.ndarray
    feature_names: list[str]
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def reasons(self, i: int, values: Mapping[str, Any], *, metas=None,
                evidence: Mapping[str, Sequence[Evidence | Mapping[str, Any]]] | None = None) -> list[ReasonCode]:
        """Render subject i's reasons (overrides first) in Chinese and English."""
        contrib = np.zeros(len(self.feature_names) + len(self.pairs))
        valid = self.top_index[i] >= 0
        contrib[self.top_index[i][valid]] = self.top_contribution[i][valid]
        return reason_codes(contrib, self.feature_names, values, metas=metas, evidence=evidence,
                            overrides=self.grades.overrides_for(i), indices=self.top_index[i], pairs=self.pairs)


def explain_bulk(model, grader, X: pd.DataFrame, profile: pd.DataFrame | None = None, *, k: int = 5,
                 contributions: Contributions | None = None) -> BulkExplanation:
    """Grade every subject and keep its top-k reason codes (vectorised, no text); a reason may
    be a feature or a declared pair of features.

    The probability is computed from the same contributions when the model has no separate
    calibration map, so the model is evaluated once.
    """
    contrib = contributions if contributions is not None else model.contributions(X)
    if hasattr(model, "calibrator_"):
        p = model.calibrator_.predict_proba_1(contrib.total())
    else:
        p = sigmoid(contrib.total())
    grades = grader.grade(p, profile if profile is not None else X)
    values, _ = contrib.terms()
    idx, vals = top_k(values, k)
    return BulkExplanation(grades, idx, vals, list(contrib.feature_names), [tuple(p) for p in contrib.pairs])
