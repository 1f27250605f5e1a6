"""Point-in-time profiles: properties the fairness rules and the as-of discipline require."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from dateutil.relativedelta import relativedelta
from feat_fixtures import code, record, records_frame, subject, subjects_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.catalogue import default_policy
from features.profiles import build_profiles, feature_columns
from features.specs import FEATURE_SPECS, FEATURES_BY_NAME

SUBJECTS = subjects_frame([subject(i, registered_on="2012-01-01") for i in range(3)])
# Features that measure conduct against the subject (monotone +1), without the rates whose
# denominators legitimately move when a record is added or removed.
NEGATIVE = [s.name for s in FEATURE_SPECS if s.monotone == 1 and not s.name.endswith("_rate")]
PROPERTY = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KINDS = ["admin_penalty", "admin_enforcement", "commitment_broken", "inspection", "complaint", "arrears",
         "list_serious_dishonesty", "list_abnormal_operation", "admin_reward", "commitment_kept", "self_declared"]
DAY0 = date(2020, 1, 1)
SPAN = (date(2026, 10, 31) - DAY0).days


@st.composite
def records_strategy(draw, min_size=1, max_size=14):
    n = draw(st.integers(min_size, max_size))
    rows = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        decided = DAY0 + timedelta(days=draw(st.integers(0, SPAN)))
        extra = {}
        if kind == "admin_penalty":
            extra["severity"] = draw(st.sampled_from(["minor", "general", "serious"]))
            extra["amount"] = float(draw(st.integers(0, 100_000)))
        if kind == "inspection":
            extra["subkind"] = draw(st.sampled_from(["no_problem", "corrected", "case_opened"]))
        if kind in ("arrears", "list_serious_dishonesty", "list_abnormal_operation") and draw(st.booleans()):
            extra["end_date"] = (decided + timedelta(days=draw(st.integers(1, 900)))).isoformat()
        if kind == "arrears":
            extra["amount"] = float(draw(st.integers(1, 50_000)))
        if kind == "self_declared":
            extra.update(verified="true", verified_on=(decided + timedelta(days=3)).isoformat())
        if draw(st.integers(0, 9)) == 0:
            extra["exemption"] = draw(st.sampled_from(list(default_policy().exemption_reasons)))
        rows.append(record(f"R{i}", code(draw(st.integers(0, 2))), kind, decided, **extra))
    return rows


as_of_strategy = st.integers(400, SPAN).map(lambda d: DAY0 + timedelta(days=d))


def profiles(rows, as_of, **kw) -> pd.DataFrame:
    return build_profiles(records_frame(rows), SUBJECTS, as_of=as_of, with_hash=True, **kw).set_index("uscc")


def assert_same_negative(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a[NEGATIVE], b[NEGATIVE], check_exact=False, atol=1e-9)


@PROPERTY
@given(rows=records_strategy(), later=records_strategy(), as_of=as_of_strategy)
def test_records_after_as_of_change_no_profile(rows, later, as_of):
    shifted = []
    for r in later:  # the same kinds of records, all decided after as_of (including repairs of old ones)
        day = date.fromisoformat(r["decision_date"])
        new_day = as_of + timedelta(days=1 + (day - DAY0).days % 400)
        shifted.append({**r, "record_id": "L" + r["record_id"], "decision_date": new_day.isoformat()})
    shifted.append(record("LREP", rows[0]["uscc"], "repair", as_of + timedelta(days=1), ref_record_id="R0"))
    shifted.append(record("LREV", rows[0]["uscc"], "revocation", as_of + timedelta(days=2), ref_record_id="R0"))
    before = profiles(rows, as_of)
    after = profiles(rows + shifted, as_of)
    assert before["profile_hash"].tolist() == after["profile_hash"].tolist()


@PROPERTY
@given(rows=records_strategy(), as_of=as_of_strategy, target=st.integers(0, 13), gap=st.integers(0, 300),
       kind=st.sampled_from(["repair", "revocation"]))
def test_repair_or_revocation_before_as_of_removes_the_record_after_changes_nothing(rows, as_of, target, gap, kind):
    victim = rows[target % len(rows)]
    decided = date.fromisoformat(victim["decision_date"])
    if decided > as_of:
        return
    without = [r for r in rows if r["record_id"] != victim["record_id"]]
    base = profiles(rows, as_of)
    # dated after as_of: nothing changes
    late = record("X1", victim["uscc"], kind, as_of + timedelta(days=1 + gap), ref_record_id=victim["record_id"])
    assert profiles([*rows, late], as_of)["profile_hash"].tolist() == base["profile_hash"].tolist()
    # dated on or before as_of (and after the decision): the record no longer counts against the subject
    when = decided + timedelta(days=min(gap, (as_of - decided).days))
    early = record("X1", victim["uscc"], kind, when, ref_record_id=victim["record_id"])
    assert_same_negative(profiles([*rows, early], as_of), profiles(without, as_of))


@PROPERTY
@given(rows=records_strategy(), as_of=as_of_strategy, target=st.integers(0, 13),
       reason=st.sampled_from(["force_majeure", "minor_person", "first_minor_unintentional"]))
def test_exempted_records_never_count_against(rows, as_of, target, reason):
    victim = rows[target % len(rows)]
    exempted = [{**r, "exemption": reason} if r is victim else r for r in rows]
    without = [r for r in rows if r is not victim]
    assert_same_negative(profiles(exempted, as_of), profiles(without, as_of))


@PROPERTY
@given(rows=records_strategy(min_size=0), as_of=as_of_strategy, back=st.integers(0, 2000), who=st.integers(0, 2))
def test_one_more_serious_penalty_never_lowers_negative_features(rows, as_of, back, who):
    extra = record("SP", code(who), "admin_penalty", max(DAY0, as_of - timedelta(days=back)), severity="serious",
                   amount=20_000.0)
    before, after = profiles(rows, as_of), profiles([*rows, extra], as_of)
    for name in NEGATIVE:
        if name == "days_since_last_negative":
            continue
        assert (after[name] >= before[name] - 1e-12).all(), name
    # a newer negative record never makes the clean period longer
    b, a = before["days_since_last_negative"], after["days_since_last_negative"]
    assert (a.isna() <= b.isna()).all()
    both = a.notna() & b.notna()
    assert (a[both] <= b[both]).all()


@pytest.mark.parametrize(("severity", "decided", "months"), [
    ("general", date(2024, 5, 10), 12),   # 2019 rules: general max 1 year
    ("serious", date(2024, 5, 10), 36),   # 2019 rules: serious max 3 years
    ("general", date(2026, 4, 1), 12),    # 2026 rules: general max 1 year
])
def test_penalty_stops_counting_at_its_publicity_end(severity, decided, months):
    rows = [record("P", code(0), "admin_penalty", decided, severity=severity)]
    end = decided + relativedelta(months=months)
    inside = profiles(rows, end - timedelta(days=1)).loc[code(0)]
    outside = profiles(rows, end).loc[code(0)]
    assert inside["max_penalty_severity"] > 0 and inside["n_penalty_36m"] == 1
    assert outside["max_penalty_severity"] == 0 and outside["n_penalty_36m"] == 0
    # a department's shorter publicity_end is respected too
    short = [{**rows[0], "publicity_end": (decided + relativedelta(months=3)).isoformat()}]
    assert profiles(short, decided + relativedelta(months=4)).loc[code(0), "n_penalty_36m"] == 0


def test_minor_penalties_after_2026_rules_follow_policy():
    rows = [record("P", code(0), "admin_penalty", date(2026, 5, 1), severity="minor")]
    as_of = date(2026, 9, 30)
    assert profiles(rows, as_of).loc[code(0), "n_penalty_12m"] == 0
    counting = default_policy().model_copy(update={"minor_penalty_counts": True})
    assert profiles(rows, as_of, policy=counting).loc[code(0), "n_penalty_12m"] == 1


def test_list_membership_is_active_from_entry_until_exit():
    rows = [record("L", code(1), "list_serious_dishonesty", date(2025, 3, 1), end_date="2026-03-01")]
    flag = "on_list_serious_dishonesty"
    assert profiles(rows, date(2025, 2, 28)).loc[code(1), flag] == 0
    assert profiles(rows, date(2025, 3, 1)).loc[code(1), flag] == 1
    assert profiles(rows, date(2026, 2, 28)).loc[code(1), flag] == 1
    assert profiles(rows, date(2026, 3, 1)).loc[code(1), flag] == 0


def test_repaired_records_count_only_if_policy_says_so():
    rows = [record("P", code(0), "admin_penalty", date(2025, 1, 10), severity="serious"),
            record("F", code(0), "repair", date(2026, 2, 1), ref_record_id="P")]
    as_of = date(2026, 6, 30)
    default = profiles(rows, as_of).loc[code(0)]
    assert default["n_penalty_36m"] == 0 and default["n_repaired_36m"] == 1
    keep = default_policy().model_copy(update={"repaired_counts": True})
    assert profiles(rows, as_of, policy=keep).loc[code(0), "n_penalty_36m"] == 1


def test_unsettled_arrears_and_subject_population():
    subjects = subjects_frame([subject(0), subject(1, registered_on="2026-08-01"),
                               subject(2, status="deregistered", status_date="2025-01-01")])
    rows = [record("A1", code(0), "arrears", date(2025, 1, 1), subkind="tax", amount=300.0),
            record("A2", code(0), "arrears", date(2025, 2, 1), subkind="water", amount=50.0, end_date="2025-06-01")]
    p = build_profiles(records_frame(rows), subjects, as_of=date(2026, 6, 30)).set_index("uscc")
    assert list(p.index) == [code(0)]  # not yet registered / already deregistered: no profile
    assert p.loc[code(0), "n_arrears_unsettled"] == 1
    assert p.loc[code(0), "amount_arrears_unsettled"] == pytest.approx(300.0)


def test_profile_columns_match_feature_specs_and_hash_tracks_values():
    rows = [record("P", code(0), "admin_penalty", date(2025, 1, 10))]
    p = build_profiles(records_frame(rows), SUBJECTS, as_of=date(2025, 6, 30), with_hash=True)
    assert feature_columns(p) == [s.name for s in FEATURE_SPECS]
    assert p["profile_hash"].str.fullmatch(r"p2[0-9a-f]{62}").all()  # scheme 2 (test_feat_profile_hash)
    assert p["profile_hash"].nunique() == len(p)  # subjects differ (uscc is hashed with the features)
    renamed = SUBJECTS.assign(name="改名后的公司")
    again = build_profiles(records_frame(rows), renamed, as_of=date(2025, 6, 30), with_hash=True)
    assert again["profile_hash"].tolist() == p["profile_hash"].tolist()  # renaming changes nothing
    for spec in FEATURE_SPECS:
        assert spec.monotone in (-1, 0, 1) and spec.reason and spec.label_zh and spec.label_en
        assert FEATURES_BY_NAME[spec.name] is spec


def test_profiles_from_store_equal_profiles_from_frames(sim_store):
    from features.store import read_latest

    as_of = date(2025, 12, 31)
    from_store = build_profiles(sim_store, as_of=as_of, with_hash=True)
    from_frames = build_profiles(read_latest(sim_store, "records"), read_latest(sim_store, "subjects"), as_of=as_of,
                                 with_hash=True)
    assert from_store["profile_hash"].tolist() == from_frames["profile_hash"].tolist()
    assert len(from_store) > 500 and from_store["n_penalty_36m"].sum() > 0


def test_arrears_by_type_count_settled_ones_but_never_exempted_ones():
    as_of = date(2026, 6, 30)
    rows = [record("T1", code(0), "arrears", date(2026, 1, 5), subkind="tax", amount=300.0, end_date="2026-02-01"),
            record("T2", code(0), "arrears", date(2024, 3, 5), subkind="tax", amount=300.0),
            record("S1", code(0), "arrears", date(2026, 2, 5), subkind="social_insurance", amount=90.0,
                   exemption="force_majeure"),
            record("W1", code(0), "arrears", date(2025, 9, 1), subkind="water", amount=50.0, end_date="2025-10-01"),
            record("G1", code(0), "arrears", date(2022, 9, 1), subkind="gas", amount=50.0)]  # older than 36 months
    p = profiles(rows, as_of).loc[code(0)]
    # settling ends the open debt, not the record of the missed payment
    assert (p["n_arrears_tax_12m"], p["n_arrears_tax_36m"], p["n_arrears_unsettled"]) == (1, 2, 2)
    assert p["n_arrears_social_insurance_12m"] == p["n_arrears_social_insurance_36m"] == 0
    assert (p["n_arrears_utility_12m"], p["n_arrears_utility_36m"]) == (1, 1)


def test_penalties_by_severity_follow_publicity_and_checks_are_context():
    as_of = date(2025, 12, 31)
    rows = [record("M", code(0), "admin_penalty", date(2025, 6, 1), severity="minor"),
            record("G", code(0), "admin_penalty", date(2025, 3, 1), severity="general"),
            record("E", code(0), "admin_penalty", date(2024, 6, 1), severity="general"),  # publicity ended
            record("C1", code(0), "admin_check", date(2025, 11, 1)),
            record("C2", code(0), "admin_check", date(2023, 11, 1))]
    p = profiles(rows, as_of).loc[code(0)]
    assert (p["n_minor_penalty_12m"], p["n_general_penalty_12m"]) == (1, 1)
    assert (p["n_admin_check_12m"], p["n_admin_check_36m"]) == (1, 2)
    for name in ("n_admin_check_12m", "n_admin_check_36m"):
        assert FEATURES_BY_NAME[name].monotone == 0 and not FEATURES_BY_NAME[name].actionable


@pytest.mark.parametrize("as_of", [date(2021, 2, 27), date(2021, 2, 28), date(2021, 3, 1), date(2021, 3, 30),
                                   date(2021, 3, 31), date(2021, 4, 30), date(2023, 2, 28), date(2023, 3, 1),
                                   date(2024, 2, 28), date(2024, 2, 29)])
def test_period_ends_exactly_at_add_months_of_the_decision(as_of):
    """Periods are resolved once per month count of the policy, not per record: each must still end
    exactly on decision + N months, clipped at month end like ADD_MONTHS and relativedelta (every
    decision day around the month ends of a leap and a common year, month-end as-of dates included)."""
    from features.evidence import record_status

    kinds = {"complaint": (None, 12), "admin_enforcement": (None, 36), "admin_penalty": ("general", 12)}
    first = as_of - relativedelta(months=36) - timedelta(days=40)
    rows, months_of = [], {}
    for i in range((as_of - first).days + 1):
        decided = first + timedelta(days=i)
        for kind, (severity, months) in kinds.items():
            if kind == "admin_penalty" and decided < as_of - relativedelta(months=13):
                continue  # general penalties: 12 months; older ones only make the frame bigger
            rows.append(record(f"{kind}-{i}", code(0), kind, decided, **({"severity": severity} if severity else {})))
            months_of[rows[-1]["record_id"]] = (decided, months)
    status = record_status(records_frame(rows), as_of).set_index("record_id")
    expected = {rid: decided + relativedelta(months=months) > as_of for rid, (decided, months) in months_of.items()}
    got = status["in_period"].astype(bool).to_dict()
    assert got == expected
    assert any(expected.values()) and not all(expected.values())
