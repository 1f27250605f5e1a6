"""Records follow the domain rules: kinds, publicity periods, repairs, lists, commitments, inspections."""

from __future__ import annotations

import chinese_calendar
import pandas as pd
import pytest
from sim_helpers import RECORD_KINDS, read

# the session's 5,000-subject city (shared with test_sim_truth.py) is generated once on one worker, not on both
pytestmark = pytest.mark.xdist_group("sim_large_city")

SUBKINDS = {
    "commitment_made": {"application", "repair", "industry"},
    "self_declared": {"qualification", "contract_performance", "public_welfare"},
    "arrears": {"tax", "social_insurance", "water", "power", "gas"},
    "inspection": {"no_problem", "corrected", "case_opened"},
    "complaint": {"complaint", "report"},
    "revocation": {"court", "department", "objection"},
}
DATES = ("decision_date", "end_date", "publicity_end", "verified_on")


@pytest.fixture(scope="module")
def records(large_clean_city) -> pd.DataFrame:
    df = read(large_clean_city, "records")
    for c in DATES:
        df[c] = pd.to_datetime(df[c])
    df["amount"] = df["amount"].astype(float)
    return df


@pytest.fixture(scope="module")
def subjects(large_clean_city) -> pd.DataFrame:
    return read(large_clean_city, "subjects")


def _with_ref(records: pd.DataFrame, kind: str) -> pd.DataFrame:
    child = records[records.kind == kind]
    parent = records.set_index("record_id")
    return child.join(parent, on="ref_record_id", rsuffix="_ref", how="left")


def test_every_kind_and_subkind_present_with_realistic_volumes(records, subjects):
    assert set(records.kind) == RECORD_KINDS
    for kind, subs in SUBKINDS.items():
        assert set(records.loc[records.kind == kind, "subkind"].dropna()) == subs, kind
    assert records.record_id.is_unique
    per_subject = len(records) / len(subjects)
    # ~6 records per subject and year: complaints, arrears and penalties are frequent enough to say something
    assert 20 < per_subject < 40
    penalties = records[records.kind == "admin_penalty"]
    assert set(penalties.severity) == {"minor", "general", "serious"}
    assert (penalties.amount >= 0).all() and penalties.document_no.notna().all()
    # serious dishonesty is rare: well under 1 % of subjects a year
    listed = records[records.kind == "list_serious_dishonesty"].uscc.nunique()
    assert listed / len(subjects) / 5 < 0.005
    # double-random draws reach about 5 % of subjects a year, more for risky subjects
    drawn_per_year = (records.kind == "inspection").sum() / len(subjects) / 5
    assert 0.03 < drawn_per_year < 0.09


def test_records_fall_inside_the_span_and_the_subject_lifetime(records, subjects):
    assert records.decision_date.min() >= pd.Timestamp("2021-11-01")
    assert records.decision_date.max() <= pd.Timestamp("2026-10-31")
    life = subjects.set_index("uscc")[["registered_on", "status_date"]].apply(pd.to_datetime)
    joined = records.join(life, on="uscc")
    assert (joined.decision_date >= joined.registered_on).all()
    exited = joined.status_date.notna()
    assert (joined.loc[exited, "decision_date"] <= joined.loc[exited, "status_date"]).all()
    assert set(subjects.status) == {"active", "deregistered", "revoked"}


def test_publicity_periods_follow_severity(records):
    pen = records[records.kind == "admin_penalty"]
    assert pen.loc[pen.severity == "minor", "publicity_end"].isna().all()
    general = pen[pen.severity == "general"]
    serious = pen[pen.severity == "serious"]
    assert (general.publicity_end == general.decision_date + pd.DateOffset(years=1)).all()
    assert (serious.publicity_end == serious.decision_date + pd.DateOffset(years=3)).all()
    has = records.publicity_end.notna()
    assert (records.loc[has, "publicity_end"] >= records.loc[has, "decision_date"]).all()
    assert set(records.loc[has, "kind"]) <= {"admin_penalty"} | {k for k in RECORD_KINDS if k.startswith("list_")}


def test_repairs_only_after_the_minimum_publicity_period(records):
    rep = _with_ref(records, "repair")
    assert rep.kind_ref.notna().all()
    assert (rep.uscc == rep.uscc_ref).all()
    assert len(rep) > 20
    for _, r in rep.iterrows():
        decided = r.decision_date_ref
        if r.kind_ref == "admin_penalty":
            assert r.severity_ref in ("general", "serious")
            months = 3 if r.severity_ref == "general" else 12 if decided >= pd.Timestamp("2026-04-01") else 6
        else:
            months = {"list_serious_dishonesty": 12, "list_key_attention": 3}[r.kind_ref]
        assert r.decision_date >= decided + pd.DateOffset(months=months), r.to_dict()
        assert r.decision_date <= r.publicity_end_ref


def test_list_exits_come_after_entries(records):
    lists = records[records.kind.str.startswith("list_")]
    assert {"list_serious_dishonesty", "list_key_attention", "list_abnormal_operation", "list_dishonest_debtor"} <= set(lists.kind)
    out = lists.end_date.notna()
    assert out.any() and (~out).any()
    assert (lists.loc[out, "end_date"] > lists.loc[out, "decision_date"]).all()
    assert (lists.loc[out, "end_date"] <= lists.loc[out, "publicity_end"]).all()
    assert (lists.department[lists.kind == "list_dishonest_debtor"] == "court").all()


def test_commitments_and_revocations_reference_earlier_records(records):
    for kind in ("commitment_kept", "commitment_broken"):
        ref = _with_ref(records, kind)
        assert (ref.kind_ref == "commitment_made").all()
        assert (ref.decision_date > ref.decision_date_ref).all()
        assert (ref.decision_date <= ref.end_date_ref).all()  # kept or broken by the due date
    rev = _with_ref(records, "revocation")
    assert rev.kind_ref.notna().all() and (rev.decision_date > rev.decision_date_ref).all()
    assert not ((rev.kind_ref == "admin_penalty") & (rev.severity_ref == "serious")).any()
    assert records.loc[records.kind.isin({"repair", "revocation", "commitment_kept", "commitment_broken"}),
                       "ref_record_id"].notna().all()


def test_inspection_items_match_department_and_industry(large_clean_city, records, subjects):
    items = read(large_clean_city, "items").set_index("item_code")
    insp = records[records.kind == "inspection"].join(items, on="inspection_item", rsuffix="_item")
    assert insp.inspection_item.notna().all()
    assert (insp.department == insp.department_item).all()
    industry = subjects.set_index("uscc").industry
    for _, r in insp.iterrows():
        if pd.notna(r.industries):
            assert industry[r.uscc] in r.industries.split(";")
    assert records.loc[records.kind != "inspection", "inspection_item"].isna().all()


def test_self_declared_verification_within_five_working_days(records):
    sd = records[records.kind == "self_declared"].assign(verified=lambda d: d.verified.str.lower())
    assert set(sd.verified) == {"true", "false"}
    assert records.loc[records.kind != "self_declared", "verified"].isna().all()
    checked = sd[sd.verified == "true"].head(300)
    for _, r in checked.iterrows():
        days = chinese_calendar.get_workdays(r.decision_date.date(), r.verified_on.date())
        assert 1 <= len([d for d in days if d > r.decision_date.date()]) <= 5
    assert sd.loc[sd.verified == "false", "verified_on"].isna().all()


def test_exemptions_include_an_epidemic_force_majeure_wave(records):
    exempt = records[records.exemption.notna()]
    assert set(exempt.exemption) == {"force_majeure", "minor_person", "first_minor_unintentional"}
    fm = exempt[exempt.exemption == "force_majeure"]
    assert fm.decision_date.between("2022-03-01", "2022-12-31").all()
    assert set(exempt.kind) <= {"admin_penalty", "arrears"}
    assert (exempt.severity != "serious").all()


def test_document_numbers_look_like_legal_documents(records):
    pen = records[records.kind == "admin_penalty"]
    assert pen.document_no.str.fullmatch(r"宁.+罚〔20\d\d〕\d+号").all()
    years = pen.document_no.str.extract(r"〔(\d{4})〕")[0].astype(int)
    assert (years == pen.decision_date.dt.year).all()
    court = records[records.kind == "list_dishonest_debtor"]
    assert court.document_no.str.fullmatch(r"（20\d\d）苏01执\d+号").all()


def test_inspector_pool_and_conflicts(large_clean_city, subjects):
    inspectors = read(large_clean_city, "inspectors")
    items = read(large_clean_city, "items").set_index("item_code")
    assert inspectors.inspector_id.is_unique
    assert (inspectors.capacity.astype(int) > 0).all()
    for _, r in inspectors.iterrows():
        assert all(items.department[i] == r.department for i in r.qualified_items.split(";"))
    # every item can draw two inspectors in every district
    for code in items.index:
        qualified = inspectors[inspectors.qualified_items.str.split(";").map(lambda q, c=code: c in q)]
        assert qualified.groupby("district_code").size().min() >= 1
    conflicts = read(large_clean_city, "conflicts")
    assert len(conflicts) > 0
    assert conflicts.inspector_id.isin(inspectors.inspector_id).all()
    assert conflicts.uscc.isin(subjects.uscc).all()
