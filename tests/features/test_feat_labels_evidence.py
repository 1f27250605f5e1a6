"""Labels against the simulator's truth; evidence behind features; actions and what-if profiles."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from feat_fixtures import code, record, records_frame, subject, subjects_frame

from features.actions import apply_actions, candidate_actions
from features.evidence import EVIDENCE_CONDITIONS, records_behind
from features.labels import CONTRACT_ADVERSE, AdverseOutcome, LabelDefinition, build_labels
from features.profiles import build_profiles
from features.specs import FEATURE_SPECS
from features.store import read_latest


@pytest.mark.parametrize("as_of", [date(2023, 6, 30), date(2025, 9, 30)])
def test_labels_equal_the_simulators_realised_adverse_outcomes(sim_city, sim_store, as_of):
    truth = pd.read_parquet(sim_city / "truth" / "true_risk.parquet")
    truth = truth.loc[pd.to_datetime(truth["as_of"]).dt.date == as_of]
    labels = build_labels(sim_store, as_of)
    merged = truth.merge(labels, on="uscc", how="outer", indicator=True)
    assert (merged["_merge"] == "both").all()  # same population
    assert (merged["adverse_12m"].astype(int) == merged["label"]).all()
    assert 0 < labels["label"].mean() < 0.5


def test_label_window_is_after_as_of_and_uses_raw_events():
    subjects = subjects_frame([subject(0), subject(1), subject(2)])
    rows = [
        record("P0", code(0), "admin_penalty", "2025-06-30", severity="serious"),   # on as_of: not in window
        record("P1", code(1), "admin_penalty", "2026-06-30", severity="serious"),   # last day: in window
        record("F1", code(1), "repair", "2026-07-30", ref_record_id="P1"),           # repair does not undo it
        record("P2", code(2), "admin_penalty", "2025-09-01", severity="serious"),
        record("V2", code(2), "revocation", "2025-10-01", ref_record_id="P2"),      # revoked: never happened
    ]
    labels = build_labels((records_frame(rows), subjects), date(2025, 6, 30)).set_index("uscc")["label"]
    assert labels.to_dict() == {code(0): 0, code(1): 1, code(2): 0}
    narrow = LabelDefinition("lists_only", (AdverseOutcome("list_serious_dishonesty"),))
    assert build_labels((records_frame(rows), subjects), date(2025, 6, 30), definition=narrow)["label"].sum() == 0
    assert len(CONTRACT_ADVERSE.outcomes) == 4


def test_records_behind_count_features_equal_the_feature(sim_store):
    records = read_latest(sim_store, "records")
    as_of = date(2026, 6, 30)
    profiles = build_profiles(sim_store, as_of=as_of).set_index("uscc")
    busiest = records.loc[pd.to_datetime(records["decision_date"]).dt.date <= as_of, "uscc"].value_counts()
    counted = [s.name for s in FEATURE_SPECS if s.name.startswith("n_")]
    # every count and weight built from records can name its records (an enterprise objects to records)
    assert not [s.name for s in FEATURE_SPECS if s.name[:2] in ("n_", "w_") and s.source_kinds
                and s.name not in EVIDENCE_CONDITIONS]
    counted = [name for name in counted if name in EVIDENCE_CONDITIONS]
    for uscc in busiest.index[:2]:
        for feature in counted:
            cited = records_behind(records, uscc, as_of, feature)
            assert len(cited) == profiles.loc[uscc, feature], (uscc, feature)
            assert cited["decision_date"].le(as_of).all()
    assert records_behind(records, busiest.index[0], as_of, "age_years").empty
    with pytest.raises(KeyError):
        records_behind(records, busiest.index[0], as_of, "no_such_feature")


def test_candidate_actions_and_what_if_profiles():
    subjects = subjects_frame([subject(0)])
    rows = [
        record("P-old", code(0), "admin_penalty", "2025-01-10", severity="general"),   # eligible since 2025-04-10
        record("P-new", code(0), "admin_penalty", "2026-05-20", severity="general"),   # eligible 2026-08-20
        record("A", code(0), "arrears", "2026-01-05", subkind="tax", amount=1200.0),
        record("B", code(0), "commitment_broken", "2026-02-01", ref_record_id="C"),
        record("L", code(0), "list_abnormal_operation", "2026-03-01"),
    ]
    as_of = date(2026, 6, 30)
    actions = candidate_actions(records_frame(rows), code(0), as_of)
    by_record = {(a.action, a.record_id) for a in actions}
    assert ("repair", "P-old") not in by_record  # 2019-rule general penalty: publicity already ended
    assert ("repair", "P-new") not in by_record  # minimum publicity not reached yet
    assert ("settle_arrears", "A") in by_record
    assert ("repair", "B") in by_record and ("repair", "L") in by_record
    assert all(a.available_on <= as_of for a in actions)
    assert not any(a.action == "fulfil_commitment" for a in actions)  # default policy does not offer it
    before = build_profiles(records_frame(rows), subjects, as_of=as_of).iloc[0]
    what_if = build_profiles(apply_actions(records_frame(rows), actions, as_of), subjects, as_of=as_of).iloc[0]
    assert what_if["n_arrears_unsettled"] == 0 and what_if["on_list_abnormal_operation"] == 0
    assert what_if["n_commitment_broken_12m"] == 0 and what_if["n_penalty_12m"] == before["n_penalty_12m"]
    assert what_if["age_years"] == before["age_years"]  # never "be older"
    later = candidate_actions(records_frame(rows), code(0), date(2026, 9, 1))
    assert ("repair", "P-new") in {(a.action, a.record_id) for a in later}


@pytest.mark.parametrize("repaired_counts", [False, True])
def test_every_evidence_condition_renders_without_a_placeholder_left(repaired_counts):
    from features.catalogue import default_policy
    from features.evidence import evidence_condition

    policy = default_policy().model_copy(update={"repaired_counts": repaired_counts})
    for feature in EVIDENCE_CONDITIONS:
        rendered = evidence_condition(feature, date(2026, 6, 30), policy)
        assert rendered and "$" not in rendered, feature
    assert evidence_condition("age_years", date(2026, 6, 30), policy) is None
