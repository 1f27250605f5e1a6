"""What-if in the grading job: only actionable proposals, promised grade = grade of the applied profile."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import uscc as stdnum_uscc

from features.actions import apply_actions, candidate_actions
from features.profiles import build_profiles
from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS
from models.grading import Grader
from training.bundle import probability_to_score
from training.whatif import WhatIfInputs, what_if_entries

AS_OF = date(2026, 6, 30)
ACTIONABLE = {"repair", "settle_arrears", "fulfil_commitment"}


def code(i: int) -> str:
    body = f"91320102MA{i:07d}"
    return body + stdnum_uscc.calc_check_digit(body)


def subject(i: int) -> dict:
    row = dict.fromkeys(SUBJECT_COLUMNS)
    row.update(uscc=code(i), name=f"南京测试{i}有限公司", legal_form="llc", industry="C", district_code="320102",
               district_name="玄武区", registered_on="2015-03-01", registered_capital=100.0, employees=12,
               status="active", legal_rep_name="张三")
    return row


def record(rid: str, i: int, kind: str, decided: str, **extra) -> dict:
    row = dict.fromkeys(RECORD_COLUMNS)
    row.update(record_id=rid, uscc=code(i), kind=kind, decision_date=decided, department="samr",
               description="测试记录")
    if kind == "admin_penalty":
        row.update(severity="general", amount=1000.0, document_no="宁市监罚〔2024〕1号")
    row.update(extra)
    return row


class RiskByCounts:
    """A transparent stand-in for `GradingModel`: risk rises with counted penalties and arrears."""

    def __init__(self) -> None:
        self.grader = Grader(policy="bands", bands=[0.12, 0.3, 0.6]).fit()

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        z = (-2.5 + 1.2 * frame["n_penalty_36m"].fillna(0).to_numpy(float)
             + 1.0 * frame["n_arrears_unsettled"].fillna(0).to_numpy(float))
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        p = self.predict_proba(frame)[:, 1]
        return pd.DataFrame({"p_adverse_12m": p, "score": np.round(probability_to_score(p), 1),
                             "grade": self.grader.grade(p, frame).grades}, index=frame.index)


@pytest.fixture(scope="module")
def city() -> tuple[pd.DataFrame, pd.DataFrame]:
    subjects = pd.DataFrame([subject(i) for i in range(1, 6)])
    records = pd.DataFrame([
        # 1: two old general penalties (repairable) and unsettled arrears → several actions
        record("R1", 1, "admin_penalty", "2025-01-10"), record("R2", 1, "admin_penalty", "2025-03-10"),
        record("R3", 1, "arrears", "2025-06-01", subkind="tax", amount=5000.0),
        # 2: clean → A, nothing to search
        record("R4", 2, "admin_license", "2024-05-01"),
        # 3: a penalty decided last week: not yet repairable → no action helps
        record("R5", 3, "admin_penalty", "2026-06-20"), record("R6", 3, "admin_penalty", "2026-06-21"),
        # 4: arrears only
        record("R7", 4, "arrears", "2026-01-05", subkind="social_insurance", amount=800.0),
        record("R8", 4, "arrears", "2026-02-05", subkind="water", amount=80.0),
    ])
    return records, subjects


@pytest.fixture(scope="module")
def graded(city) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    records, subjects = city
    profiles = build_profiles(records, subjects, as_of=AS_OF)
    model = RiskByCounts()
    grades = model.grade(profiles).assign(uscc=profiles["uscc"].to_numpy())
    entries = what_if_entries(model, grades, WhatIfInputs(records, subjects), as_of=AS_OF)
    return grades.set_index("uscc"), entries


def test_every_subject_gets_a_list_and_grade_a_gets_none(graded) -> None:
    grades, entries = graded
    assert set(entries) == set(grades.index)
    assert grades.loc[code(2), "grade"] == "A" and entries[code(2)] == []


def test_proposals_are_actionable_and_refer_to_candidate_records(graded, city) -> None:
    records, _ = city
    _, entries = graded
    proposed = [e for rows in entries.values() for e in rows]
    assert proposed, "the fixture has subjects that can improve"
    for uscc, rows in entries.items():
        offered = {(a.action, a.record_id) for a in candidate_actions(records, uscc, AS_OF)}
        assert {(e["action"], e["record_id"]) for e in rows} <= offered
        assert all(e["action"] in ACTIONABLE for e in rows)


def test_promised_grade_is_what_grading_the_applied_profile_gives_and_is_better(graded, city) -> None:
    records, subjects = city
    grades, entries = graded
    model = RiskByCounts()
    for uscc, rows in entries.items():
        if not rows:
            continue
        chosen = [a for a in candidate_actions(records, uscc, AS_OF)
                  if (a.action, a.record_id) in {(e["action"], e["record_id"]) for e in rows}]
        applied = apply_actions(records, chosen, AS_OF)
        profile = build_profiles(applied, subjects, as_of=AS_OF).set_index("uscc").loc[[uscc]]
        truth = model.grade(profile)
        assert {e["grade"] for e in rows} == {truth["grade"].iloc[0]}
        assert {e["score"] for e in rows} == {truth["score"].iloc[0]}
        assert rows[0]["grade"] < grades.loc[uscc, "grade"]  # "A" < "B" < …: strictly better


def test_no_helpful_action_gives_an_empty_list(graded) -> None:
    grades, entries = graded
    assert grades.loc[code(3), "grade"] != "A"
    assert entries[code(3)] == []


def test_the_smallest_set_is_chosen(graded, city) -> None:
    """No proper subset of a proposed set already improves the grade."""
    records, subjects = city
    grades, entries = graded
    model = RiskByCounts()
    for uscc, rows in entries.items():
        if len(rows) < 2:
            continue
        for a in candidate_actions(records, uscc, AS_OF):
            profile = build_profiles(apply_actions(records, [a], AS_OF), subjects, as_of=AS_OF)
            one = model.grade(profile.set_index("uscc").loc[[uscc]])
            assert one["grade"].iloc[0] >= grades.loc[uscc, "grade"]
