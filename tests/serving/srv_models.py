"""A transparent grading model and a feature store for the regrade and model-fault tests (a
uniquely named module, like `srv_fixtures`).

`CountsModel` is pickled *by value* (cloudpickle), so a model registered in MLflow from a test
also loads in a uvicorn process that cannot import this module.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
from srv_fixtures import ENT1

from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS
from models.grading import Grader
from training.bundle import probability_to_score

cloudpickle.register_pickle_by_value(sys.modules[__name__])

FEATURES = ("n_penalty_12m", "n_serious_penalty_36m", "n_arrears_unsettled")
WEIGHTS = np.array([0.8, 1.5, 0.6])


class CountsModel:
    """A `GradingModel` stand-in: log-odds rise with counted penalties and arrears (``shift`` moves
    them all, so two versions grade differently); each reason cites the records behind its
    feature (the evidence the job passes in)."""

    features = FEATURES

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift
        self.grader = Grader(policy="bands", bands=[0.1, 0.25, 0.5]).fit()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        z = -2.8 + self.shift + frame[list(FEATURES)].fillna(0).to_numpy(float) @ WEIGHTS
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        p = self.predict_proba(frame)[:, 1]
        grades = self.grader.grade(p, frame).grades
        return pd.DataFrame({"p_adverse_12m": p, "score": np.round(probability_to_score(p), 1),
                             "model_grade": grades, "grade": grades, "override": ""}, index=frame.index)

    def reasons(self, frame: pd.DataFrame, *, top: int = 5, evidence=None) -> list[list[dict]]:
        out = []
        for i, row in enumerate(frame[list(FEATURES)].fillna(0).to_dict("records")):
            cited = evidence[i] if evidence is not None else {}
            out.append([{"code": f, "label_zh": f, "label_en": f, "contribution": -10.0 * w * row[f],
                         "value": float(row[f]), "override": False,
                         "record_ids": [e["record_id"] for e in cited.get(f, [])]}
                        for f, w in zip(FEATURES, WEIGHTS, strict=True) if row[f] > 0][:top])
        return out


def ingest_ent1(root: Path) -> Path:
    """ENT1's subject and records R1–R3 (as seeded in the service database) ingested into a
    feature store under ``root``; returns the store directory."""
    from features.ingest import ingest

    subject = dict.fromkeys(SUBJECT_COLUMNS) | dict(
        uscc=ENT1, name="南京甲制造有限公司", legal_form="llc", industry="C", district_code="320102",
        district_name="玄武区", registered_on="2012-05-01", registered_capital=500.0, employees=40, status="active",
        legal_rep_name="张三丰")
    records = [
        dict(record_id="R1", kind="admin_penalty", severity="general", decision_date="2026-03-10",
             publicity_end="2027-03-10", amount=5000, department="samr", document_no="宁市监罚〔2026〕12号"),
        dict(record_id="R2", kind="admin_penalty", severity="serious", decision_date="2026-06-01",
             publicity_end="2029-06-01", amount=200000, department="samr", document_no="宁市监罚〔2026〕88号"),
        dict(record_id="R3", kind="arrears", subkind="tax", decision_date="2026-02-01", amount=1200,
             department="tax"),
    ]
    pd.DataFrame([subject], columns=list(SUBJECT_COLUMNS)).to_csv(root / "subjects.csv", index=False)
    pd.DataFrame([dict.fromkeys(RECORD_COLUMNS) | r | {"uscc": ENT1, "description": "记录"} for r in records],
                 columns=list(RECORD_COLUMNS)).to_csv(root / "records.csv", index=False)
    ingest(store=root / "store", subjects=root / "subjects.csv", records=root / "records.csv",
           ingested_at=datetime(2026, 11, 1, tzinfo=UTC))
    return root / "store"
