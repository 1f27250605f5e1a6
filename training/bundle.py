"""`GradingModel`: the one object registered in MLflow and loaded by the grading job.

It bundles a fitted, calibrated risk model of `models/` (``CalibratedModel``), the sector's
`Grader` (cut-offs from target shares + direct-grading overrides) and the feature metadata,
so that ``models:/NAME@champion`` alone turns a profile into probability → score → grade →
reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.base import sigmoid
from models.calibration import CalibratedModel, fit_calibrator
from models.explain import BulkExplanation, explain_bulk
from models.grading import Grader
from models.meta import GRADES, Evidence, FeatureMeta

# Score scale: the scorecard's (`models.scorecard`), so scores of all model kinds read alike.
from models.scorecard import SCORE_BASE, SCORE_BASE_ODDS, SCORE_PDO


def probability_to_score(p: np.ndarray) -> np.ndarray:
    """Points on the PDO scale; higher is lower risk."""
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    factor = SCORE_PDO / np.log(2.0)
    return SCORE_BASE + factor * (np.log((1 - p) / p) - np.log(SCORE_BASE_ODDS))


def calibrate_prefit(estimator: Any, x_cal: pd.DataFrame, y_cal: np.ndarray, *, method: str = "sigmoid") -> CalibratedModel:
    """A ``CalibratedModel`` around an already fitted risk model, its map fitted on (x_cal, y_cal).

    Equivalent to ``CalibratedModel(...).fit(X, y, X_cal=..., y_cal=...)`` without fitting the
    estimator a second time (a scorecard fit is the slowest step of training).
    """
    out = CalibratedModel(estimator=estimator, method=method)
    out.estimator_ = estimator
    out.calibrator_ = fit_calibrator(estimator.decision_function(x_cal), np.asarray(y_cal, dtype=int), method=method)
    out.classes_ = np.array([0, 1])
    out.n_features_in_ = estimator.n_features_in_
    if hasattr(estimator, "feature_names_in_"):
        out.feature_names_in_ = estimator.feature_names_in_
    return out


def recalibrated(model: CalibratedModel, x_cal: pd.DataFrame, y_cal: np.ndarray, *, method: str = "sigmoid") -> CalibratedModel:
    """A copy of a fitted ``CalibratedModel`` whose calibration map is refitted on (x_cal, y_cal).

    The wrapped estimator is shared, not refitted: this is how a sector without enough outcomes
    gets the general model's ranking with its own level of risk.
    """
    return calibrate_prefit(model.estimator_, x_cal, y_cal, method=method)


@dataclass
class GradingModel:
    """Calibrated risk model + grader + feature metadata, as registered in MLflow.

    ``predict_proba`` takes a profile frame (extra columns are ignored) and returns
    [P(good), P(adverse outcome within 12 months)] per subject.
    """

    estimator: CalibratedModel
    grader: Grader
    features: tuple[str, ...]
    metas: tuple[FeatureMeta, ...] = ()
    kind: str = "general"  # general | sector | general_recalibrated
    sector: str | None = None
    candidate: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cutoffs(self) -> tuple[float, ...]:
        return tuple(float(c) for c in self.grader.cutoffs_)

    @property
    def labels_zh(self) -> dict[str, str]:
        return {m.name: m.label_zh for m in self.metas}

    def _matrix(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise KeyError(f"profile lacks feature columns {missing} required by this model")
        return model_matrix(frame, self.features, self.metas)

    def raw_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated probability (sigmoid of the model's log-odds)."""
        return sigmoid(self.estimator.decision_function(self._matrix(frame)))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): [good, adverse]."""
        return self.estimator.predict_proba(self._matrix(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Grades A–D after direct-grading overrides."""
        return self.grade(frame)["grade"].to_numpy()

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Probability, score, model grade, final grade and the override rules that fired."""
        p = self.predict_proba(frame)[:, 1]
        result = self.grader.grade(p, frame)
        fired = [";".join(r.rule_id for r in result.overrides_for(i)) for i in range(len(p))]
        return pd.DataFrame(
            {
                "p_adverse_12m": p,
                "score": np.round(probability_to_score(p), 1),
                "model_grade": np.asarray(GRADES)[result.model_codes],
                "grade": result.grades,
                "override": fired,
            },
            index=frame.index,
        )

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Exact log-odds contributions (positive = raises the risk): one column per feature,
        then one per declared pair (``a × b``)."""
        return self.estimator.contributions(self._matrix(frame)).frame().set_axis(frame.index)

    def explain(self, frame: pd.DataFrame, *, k: int = 5) -> BulkExplanation:
        """Grades and top-k reason codes of every row (text rendered on demand)."""
        return explain_bulk(self.estimator, self.grader, self._matrix(frame), frame, k=k)

    def reasons(
        self,
        frame: pd.DataFrame,
        *,
        top: int = 5,
        evidence: Sequence[Mapping[str, Sequence[Evidence | Mapping[str, Any]]]] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Per subject: fired overrides first, then the top ``top`` risk-raising features, in the
        shape of ``serving.schemas.ReasonOut`` (contribution in score points, negative = points
        lost); ``evidence[i]`` maps a feature to the records behind it for subject i."""
        bulk = self.explain(frame, k=top)
        wanted = set(self.features) | {r.column for r in self.grader.overrides}
        records = frame.loc[:, [c for c in frame.columns if c in wanted]].to_dict(orient="records")
        factor = SCORE_PDO / np.log(2.0)
        out = []
        for i, row in enumerate(records):
            codes = bulk.reasons(i, row, metas=self.metas, evidence=None if evidence is None else evidence[i])
            out.append(
                [
                    {
                        "code": c.code,
                        "label_zh": c.text_zh,
                        "label_en": c.text_en,
                        "contribution": 0.0 if np.isnan(c.contribution) else round(-factor * float(c.contribution), 2),
                        "value": _plain(c.value),
                        "record_ids": [e.record_id for e in c.evidence],
                        "override": c.kind == "override",
                    }
                    for c in codes
                ]
            )
        return out


def _plain(value: Any) -> float | str | None:
    if isinstance(value, tuple):  # a pair's two values
        return " / ".join("—" if (v := _plain(part)) is None else f"{v:g}" if isinstance(v, float) else v
                          for part in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def model_matrix(frame: pd.DataFrame, features: Sequence[str], metas: Sequence[FeatureMeta] = ()) -> pd.DataFrame:
    """The model's input columns: numeric features as float, categorical ones as text."""
    categorical = {m.name for m in metas if m.categorical}
    out = frame.loc[:, list(features)].copy()
    for col in out.columns:
        if col in categorical:
            out[col] = out[col].astype(object).where(out[col].notna(), None).astype("string").astype(object)
        else:
            out[col] = pd.to_numeric(out[col], errors="raise").astype(float)
    return out
