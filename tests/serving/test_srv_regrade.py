"""The real regrader: an upheld objection or an approved repair regrades the subject from the
feature store plus the service's decisions, in the decision's transaction."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from srv_fixtures import ENT1, TODAY, principal

from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS
from models.grading import Grader
from serving.db.models import Grade, Objection, Record
from serving.errors import ModelUnavailable
from serving.schemas import DecisionIn, ObjectionCreate
from serving.services import objections
from serving.services.grades import latest_grade, store_grades
from serving.services.regrade import catalogue_repair_eligibility, make_regrader
from training.bundle import probability_to_score

MODEL_VERSION = "tiers-general/1"
FEATURES = ("n_penalty_12m", "n_serious_penalty_36m", "n_arrears_unsettled")
WEIGHTS = np.array([0.8, 1.5, 0.6])


class CountsModel:
    """A transparent `GradingModel` stand-in: log-odds rise with counted penalties and arrears;
    each reason cites the records behind its feature (the evidence the job passes in)."""

    features = FEATURES

    def __init__(self) -> None:
        self.grader = Grader(policy="bands", bands=[0.1, 0.25, 0.5]).fit()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        z = -2.8 + frame[list(FEATURES)].fillna(0).to_numpy(float) @ WEIGHTS
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


class OneModelRegistry:
    def load_model(self, name: str, version: int) -> CountsModel:
        if f"{name}/{version}" != MODEL_VERSION:
            raise LookupError(f"no model {name}/{version}")
        return CountsModel()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """ENT1's subject and records (as seeded in the service database) ingested into a store."""
    from features.ingest import ingest

    root = tmp_path_factory.mktemp("regrade_store")
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


@pytest.fixture
def regrader(store):
    return make_regrader(store_dir=store, registry=OneModelRegistry)


@pytest.fixture
def graded(session, regrader):
    """ENT1 graded by the model as of 2026-10-31 (the regrader on an unchanged subject = the job)."""
    store_grades(session, [dict(uscc=ENT1, as_of="2026-10-31", score=600.0, grade="C", probability=0.3,
                                model_version=MODEL_VERSION, profile_hash="0" * 64)])
    regrader(session, ENT1, "baseline")
    session.commit()
    return latest_grade(session, ENT1)


def _uphold(session, regrader, record_id: str) -> None:
    filed = objections.file_objection(session, principal("ent1"), ENT1,
                                      ObjectionCreate(record_id=record_id, reason="该处罚已被法院撤销"), TODAY)
    objections.decide_objection(session, principal("reg_samr"), filed.id,
                                DecisionIn(decision="upheld", reason="核实无误"), TODAY, regrader)


def test_upheld_objection_removes_the_record_effect(session, regrader, graded) -> None:
    before = (graded.grade, graded.probability, graded.profile_hash)
    assert any("R2" in r["record_ids"] for r in graded.reasons), graded.reasons
    _uphold(session, regrader, "R2")
    after = latest_grade(session, ENT1)
    assert after.as_of == TODAY and after.model_version == MODEL_VERSION and not after.stale
    assert after.profile_hash != before[2]
    assert after.probability < before[1] and after.grade <= before[0]
    assert all("R2" not in r["record_ids"] for r in after.reasons)
    assert all(w["record_id"] != "R2" for w in after.what_if)


def test_regrade_lands_in_the_decision_transaction(session, regrader, graded) -> None:
    n_before = len(session.scalars(select(Grade).where(Grade.uscc == ENT1)).all())
    _uphold(session, regrader, "R1")
    assert len(session.scalars(select(Grade).where(Grade.uscc == ENT1)).all()) == n_before + 1
    assert session.scalars(select(Objection).where(Objection.record_id == "R1")).one().status == "upheld"


def test_missing_store_or_model_is_model_unavailable_and_saves_nothing(session, graded, tmp_path) -> None:
    for broken in (make_regrader(store_dir=tmp_path / "nowhere", registry=OneModelRegistry),
                   make_regrader(store_dir=tmp_path, registry=lambda: (_ for _ in ()).throw(OSError("down")))):
        filed = objections.file_objection(session, principal("ent1"), ENT1,
                                          ObjectionCreate(record_id="R2", reason="该处罚已被法院撤销"), TODAY)
        with pytest.raises(ModelUnavailable):
            objections.decide_objection(session, principal("reg_samr"), filed.id,
                                        DecisionIn(decision="upheld", reason="核实无误"), TODAY, broken)
        assert session.get(Objection, filed.id).status == "pending"
        record = session.scalars(select(Record).where(Record.record_id == "R2", Record.is_current.is_(True))).one()
        assert not record.revoked
        assert latest_grade(session, ENT1).id == graded.id
        session.delete(session.get(Objection, filed.id))
        session.commit()


def test_catalogue_eligibility_follows_the_policy() -> None:
    eligibility = catalogue_repair_eligibility()
    general = Record(kind="admin_penalty", severity="general", decision_date=dt.date(2026, 3, 10))
    license_ = Record(kind="admin_license", severity=None, decision_date=dt.date(2026, 3, 10))
    verdict = eligibility(general)
    assert verdict.eligible_from is not None and verdict.eligible_from > general.decision_date
    assert eligibility(license_).eligible_from is None
