"""预警: the pure rule of which changes in a subject's file raise an early warning."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from supervision.warnings import (
    GradeChange,
    RecordEvent,
    WarningRulesError,
    detect_grade_warnings,
    detect_record_warnings,
    load_warning_rules,
)

TODAY = dt.date(2026, 11, 23)
RULES = load_warning_rules()
U1, U2 = "91320102MA1AAAAA1X", "91320104MA1BBBBB2X"  # codes are not checked here


def event(rid: str, kind: str = "admin_penalty", severity: str | None = "serious", uscc: str = U1,
          days_ago: int = 5, **kw) -> RecordEvent:
    return RecordEvent(uscc=uscc, record_id=rid, kind=kind, severity=severity, department="samr",
                       decision_date=TODAY - dt.timedelta(days=days_ago), **kw)


def test_new_serious_records_raise_one_candidate_per_subject_and_cause_with_every_record():
    found = detect_record_warnings([event("R1"), event("R2"), event("R3", "list_key_attention", None),
                                    event("R4", uscc=U2)], RULES, TODAY)
    by_key = {(c.uscc, c.cause): c for c in found}
    assert set(by_key) == {(U1, "serious_record"), (U1, "list_entry"), (U2, "serious_record")}
    assert by_key[(U1, "serious_record")].record_ids == ("R1", "R2")
    assert "R1" in by_key[(U1, "serious_record")].message_zh and "严重" in by_key[(U1, "serious_record")].message_zh


def test_what_is_not_a_rise_raises_nothing():
    quiet = [
        event("G", severity="general"),                                   # not serious
        event("OLD", days_ago=RULES.record_rules[0].max_age_days + 1),   # history loaded late
        event("REV", revoked=True), event("REP", repaired=True),         # no longer counts
        event("SAME", previous=("admin_penalty", "serious")),            # a new version of a serious record
        event("C", kind="complaint", severity=None),
    ]
    assert detect_record_warnings(quiet, RULES, TODAY) == []
    # a version that became serious is a rise
    upgraded = detect_record_warnings([event("UP", previous=("admin_penalty", "general"))], RULES, TODAY)
    assert [c.cause for c in upgraded] == ["serious_record"]


def test_broken_commitment_is_its_own_cause():
    found = detect_record_warnings([event("CMT1-B", "commitment_broken", None)], RULES, TODAY)
    assert [(c.cause, c.record_ids) for c in found] == [("commitment_broken", ("CMT1-B",))]


def change(old: str | None, new: str, p_old: float | None, p_new: float) -> GradeChange:
    return GradeChange(uscc=U1, as_of=TODAY, new_grade=new, new_probability=p_new, old_grade=old,
                       old_probability=p_old, record_ids=("R9",))


def test_grade_drop_and_probability_rise_by_the_configured_thresholds():
    causes = lambda *c: sorted(w.cause for w in detect_grade_warnings([change(*c)], RULES))  # noqa: E731
    assert causes("A", "B", 0.02, 0.03) == ["grade_drop"]
    assert causes("B", "B", 0.10, 0.16) == ["probability_rise"]
    assert causes("B", "C", 0.10, 0.30) == ["grade_drop", "probability_rise"]
    assert causes("C", "B", 0.30, 0.10) == []          # improved
    assert causes("B", "B", 0.10, 0.149) == []         # below the threshold
    assert causes(None, "D", None, 0.9) == []          # a first grade is not a rise
    w = detect_grade_warnings([change("A", "C", 0.02, 0.2)], RULES)[0]
    assert w.record_ids == ("R9",) and "A" in w.message_zh and "C" in w.message_zh


@settings(max_examples=40, deadline=None)
@given(old=st.sampled_from("ABCD"), new=st.sampled_from("ABCD"),
       p_old=st.floats(0, 1), p_new=st.floats(0, 1))
def test_a_warning_only_when_risk_rose(old, new, p_old, p_new):
    for w in detect_grade_warnings([change(old, new, p_old, p_new)], RULES):
        assert ("ABCD".index(new) > "ABCD".index(old)) if w.cause == "grade_drop" else p_new > p_old


def test_a_wrong_rules_file_names_the_field(refused_toml):
    refused_toml(load_warning_rules, WarningRulesError, 'version = "x"\n[probability_rise]\nmin_increase = -1\n',
                 r"probability_rise\.min_increase")
    refused_toml(load_warning_rules, WarningRulesError,
                 'version = "x"\n[[record_rules]]\ncause = "weather"\nkinds = ["x"]\n', r"record_rules\.0\.cause")
