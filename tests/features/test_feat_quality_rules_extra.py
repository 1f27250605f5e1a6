"""The rules of features.quality_rules_extra fire on their class of error, not only on the reviewer's
cases (issue 21), and stay quiet on clean feeds: properties over random feeds; the ingest rule
ref_other_subject and a batch waiting behind a held one, through `ingest`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from feat_fixtures import code, record, records_frame, subject, subjects_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.quality import GATE_COLUMNS, QualityConfig
from features.quality_rules_extra import check_all, check_register

AS_OF = date(2026, 10, 1)  # the batch is September's
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
seeds = st.integers(0, 2**32 - 1)


def feed(rng, n: int, start: date, days: int, *, dept="samr", kind="admin_penalty", tag="H") -> pd.DataFrame:
    return pd.DataFrame({
        "record_id": [f"{tag}{dept}{i:07d}" for i in range(n)],
        "uscc": [f"U{x:06d}" for x in rng.integers(0, 50_000, n)],
        "kind": kind, "subkind": None, "severity": rng.choice(["minor", "general", "serious"], n),
        "decision_date": [start + timedelta(days=int(d)) for d in rng.integers(0, days, n)],
        "amount": np.round(10 ** rng.normal(3.3, 0.8, n), -1) + 10,
        "department": dept, "document_no": [f"宁{dept}罚〔2026〕{tag}{i}号" for i in range(n)],
        "district_code": "320102",
    })


def hist(rng, per_month=40, months=12, **kw):
    return feed(rng, per_month * months, date(2026, 9, 1) - timedelta(days=30 * months), 30 * months, **kw)


def month(rng, n=40, **kw):
    return feed(rng, n, date(2026, 9, 1), 30, tag="B", **kw)


def run(batch: pd.DataFrame, history: pd.DataFrame, qq: pd.DataFrame | None = None):
    con = duckdb.connect()
    for name, frame in (("qb", batch), ("qh", history)):
        con.register(f"{name}_df", frame[list(GATE_COLUMNS)])
        con.execute(f"CREATE VIEW {name} AS SELECT * REPLACE (CAST(decision_date AS DATE) AS decision_date, "
                    f"CAST(amount AS DOUBLE) AS amount) FROM {name}_df")
    if qq is not None:
        con.register("qq_df", qq)
        con.execute("CREATE TABLE qq AS SELECT * FROM qq_df")
    return check_all(con, as_of=AS_OF, config=QualityConfig())


@SETTINGS
@given(seed=seeds, per_month=st.sampled_from([12, 40, 150]))
def test_clean_months_trip_none_of_the_new_rules(seed, per_month):
    rng = np.random.default_rng(seed)
    new = {"value_collapse", "date_swap", "feed_quarantined"}
    assert not [f for f in run(month(rng, per_month), hist(rng, per_month)) if f.rule in new]


@SETTINGS
@given(seed=seeds, column=st.sampled_from(["decision_date", "amount_zero", "amount_null"]),
       share=st.floats(0.8, 1.0), n=st.integers(25, 200))
def test_a_column_collapsing_onto_one_value_holds(seed, column, share, n):
    rng = np.random.default_rng(seed)
    batch = month(rng, n)
    rows = batch.index[: int(share * n)]
    if column == "decision_date":
        batch.loc[rows, "decision_date"] = date(2026, 9, int(rng.integers(1, 31)))
    else:
        batch["amount"] = batch["amount"].astype(object)
        batch.loc[rows, "amount"] = 0.0 if column == "amount_zero" else None
    found = [f for f in run(batch, hist(rng)) if f.rule == "value_collapse"]
    assert found and found[0].feed == "samr/admin_penalty" and found[0].action == "hold"
    assert found[0].observed >= found[0].threshold and found[0].examples
    assert found[0].detail["column"] == ("decision_date" if column == "decision_date" else "amount")


def test_a_feed_that_always_collapses_is_its_own_normal():
    """Arrears published on one day a month: every batch on one day is the feed's history, not an error."""
    rng = np.random.default_rng(5)
    h, b = hist(rng, kind="arrears"), month(rng, kind="arrears")
    h["decision_date"] = [d.replace(day=15) for d in h["decision_date"]]
    b["decision_date"] = date(2026, 9, 15)
    assert not [f for f in run(b, h) if f.rule == "value_collapse"]


@SETTINGS
@given(seed=seeds, n=st.integers(40, 300), kind=st.sampled_from(["arrears", "admin_check", "admin_penalty"]))
def test_a_day_month_swap_of_the_days_up_to_12_holds(seed, n, kind):
    """Read month-first, the batch month's days 1…12 become that day's month; those in the future are
    quarantined at ingestion (dropped here), the rest stay in the batch, most inside the window."""
    rng = np.random.default_rng(seed)
    batch = month(rng, n, kind=kind)
    swapped = [date(d.year, d.day, d.month) if d.day <= 12 and d.day != d.month else d for d in batch.decision_date]
    batch["decision_date"] = swapped
    batch = batch[batch.decision_date < AS_OF]
    found = [f for f in run(batch, hist(rng, kind=kind)) if f.rule == "date_swap"]
    assert found and found[0].action == "hold" and found[0].examples


@SETTINGS
@given(seed=seeds)
def test_a_first_load_of_a_year_is_no_swap(seed):
    rng = np.random.default_rng(seed)
    assert not [f for f in run(hist(rng, 60), hist(rng).iloc[:0]) if f.rule == "date_swap"]


def test_a_feed_mostly_quarantined_is_reported_and_a_few_rows_are_not():
    rng = np.random.default_rng(3)
    batch = month(rng, 40)
    qq = pd.DataFrame({"department": ["fire", "samr"], "kind": ["admin_check", "admin_penalty"],
                       "rule": ["date_invalid", "date_invalid"], "n": [30, 3], "ids": [["F1", "F2"], ["S1"]]})
    found = [f for f in run(batch, hist(rng), qq) if f.rule == "feed_quarantined"]
    assert [(f.feed, f.observed, f.examples) for f in found] == [("fire/admin_check", 1.0, ["F1", "F2"])]


def test_a_fifth_of_a_feed_quarantined_under_one_rule_is_reported():
    """A January read month-first: days 2…12 land in the future and are quarantined date_in_future
    (a third of the feed), the rest look fine: the quarantine itself is the signal."""
    rng = np.random.default_rng(4)
    qq = pd.DataFrame({"department": ["tax", "tax", "samr"], "kind": ["arrears", "arrears", "admin_penalty"],
                       "rule": ["date_in_future", "uscc_invalid", "unknown_subject"], "n": [13, 1, 13],
                       "ids": [["T1"], ["T2"], ["S1"]]})  # a lagging register (unknown_subject) is no export error
    batch = pd.concat([month(rng, 40), month(rng, 26, dept="tax", kind="arrears")], ignore_index=True)
    found = [f for f in run(batch, hist(rng), qq) if f.rule == "feed_quarantined"]
    assert [(f.feed, f.threshold, f.detail["by_rule"]) for f in found] == \
        [("tax/arrears", 0.2, {"date_in_future": "13", "uscc_invalid": "1"})]


def _register(store: pd.DataFrame, batch: pd.DataFrame):
    con = duckdb.connect()
    con.register("qs_store", store)
    con.register("qs_batch", batch)
    return check_register(con, QualityConfig())


@given(n=st.integers(60, 3000), share=st.floats(0.0, 1.0), status=st.sampled_from(["revoked", "deregistered"]),
       delta=st.booleans())
@SETTINGS
def test_active_subjects_turned_inactive_en_masse_hold(n, share, status, delta):
    """Whether the registry re-sends every subject or only the changed ones, the share is of the register."""
    store = pd.DataFrame({"uscc": [f"U{i}" for i in range(n)], "district_code": "320102", "status": "active"})
    batch = store.copy()
    k = int(share * n)
    batch.loc[: k - 1, "status"] = status
    if delta:
        batch = batch.iloc[:k]
    found = [f for f in _register(store, batch) if f.rule == "register_status_mass"]
    expected = k >= 20 and k / n >= 0.10
    assert bool(found) == expected
    assert not found or (found[0].action == "hold" and found[0].detail["to"] == {status: k})


def test_a_district_code_table_change_holds_and_new_codes_are_named():
    store = pd.DataFrame({"uscc": [f"U{i}" for i in range(400)],
                          "district_code": [f"3201{i % 4 + 2:02d}" for i in range(400)], "status": "active"})
    batch = store.copy()
    batch.loc[:99, "district_code"] = "320199"
    found = {f.rule: f for f in _register(store, batch)}
    assert found["register_district_moved"].action == "hold" and found["register_district_moved"].observed == 0.25
    assert found["register_district_new"].detail["codes"] == {"320199": 100}
    few = store.copy()
    few.loc[:9, "district_code"] = "320103"  # ten subjects moving: ordinary
    assert _register(store, few) == []


# --- through ingest ------------------------------------------------------------------------------
def _ingest(store, tmp_path, name, records=None, subjects=None, at=datetime(2026, 8, 1, tzinfo=UTC),
            gates: QualityConfig | None = None):
    from features.ingest import ingest

    sub = rec = None
    if subjects is not None:
        sub = tmp_path / f"{name}-subjects.csv"
        subjects_frame(subjects).to_csv(sub, index=False)
    if records is not None:
        rec = tmp_path / f"{name}-records.csv"
        records_frame(records).to_csv(rec, index=False)
    return ingest(store=store, subjects=sub, records=rec, ingested_at=at, gates=gates or QualityConfig())


def _base_then_held_july(store, root):
    """A published base of six penalised subjects, then July held (most of its decisions 20 years
    old: date_far_past) registering subject 7; returns July's (held) summary."""
    _ingest(store, root, "base", [record(f"P{i}", code(i), "admin_penalty", "2026-06-10") for i in range(6)],
            [subject(i) for i in range(6)])
    july = [record(f"J{i}", code(i % 6), "admin_penalty", "2006-07-10") for i in range(6)]
    july.append(record("J9", code(7), "admin_penalty", "2026-07-11"))
    held = _ingest(store, root, "july", july, [subject(7, registered_on="2026-07-05")],
                   at=datetime(2026, 8, 2, tzinfo=UTC))
    assert held.status == "held"
    return held

def test_a_revocation_of_another_subjects_record_is_quarantined_naming_the_field(tmp_path):
    store = tmp_path / "store"
    pens = [record(f"P{i}", code(i), "admin_penalty", "2026-06-10") for i in range(4)]
    _ingest(store, tmp_path, "base", pens, [subject(i) for i in range(4)])
    rows = [record("V1", code(0), "revocation", "2026-07-10", ref_record_id="P0"),   # its own: accepted
            record("V2", code(1), "revocation", "2026-07-10", ref_record_id="P2"),   # another's: quarantined
            record("P9", code(3), "admin_penalty", "2026-07-01"),
            record("V3", code(2), "repair", "2026-07-10", ref_record_id="P9"),       # in this file, another's
            record("V4", code(3), "repair", "2026-07-10", ref_record_id="P9")]       # in this file, its own
    s = _ingest(store, tmp_path, "july", rows, at=datetime(2026, 8, 2, tzinfo=UTC))
    q = pd.read_csv(s.quarantine_path)
    assert sorted(q["key"]) == ["V2", "V3"]
    assert set(q["rule"]) == {"ref_other_subject"} and set(q["field"]) == {"ref_record_id"}


@pytest.mark.slow
def test_a_batch_waiting_behind_a_held_one_gives_the_store_of_ingesting_in_order(tmp_path):
    from features.gates import held_batches, reject, release
    from features.store import read_latest

    def build(root):
        store = root / "store"
        return store, _base_then_held_july(store, root)

    def august(store, root):
        return _ingest(store, root, "august", [record("A1", code(7), "admin_penalty", "2026-08-12"),
                                               record("A2", code(1), "admin_penalty", "2026-08-13")],
                       at=datetime(2026, 9, 1, tzinfo=UTC))

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    in_order, held = build(tmp_path / "a")
    release(in_order, held.batch_id, by="t", reason="checked")
    assert august(in_order, tmp_path / "a").status == "published"

    waited, held = build(tmp_path / "b")
    s = august(waited, tmp_path / "b")
    assert s.status == "held" and s.quarantined == 0 and s.findings[0]["rule"] == "held_behind"
    assert Path(s.quarantine_path).exists()
    assert [r.batch_id for r in held_batches(waited)] == [held.batch_id, s.batch_id]
    release(waited, held.batch_id, by="t", reason="checked")
    assert held_batches(waited) == []

    def state(store):
        return read_latest(store, "records")[["record_id", "uscc", "content_hash", "version"]] \
            .sort_values("record_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(state(in_order), state(waited))

    # rejecting the parked batch leaves the store as it was
    parked, held = build(tmp_path / "c")
    before = state(parked)
    s = august(parked, tmp_path / "c")
    reject(parked, s.batch_id, by="t", reason="resend after July")
    pd.testing.assert_frame_equal(state(parked), before)
    assert [r.batch_id for r in held_batches(parked)] == [held.batch_id]


def test_a_parked_batch_is_gated_with_the_rules_its_ingestion_was_given(tmp_path):
    """A batch parked behind a held one is checked when that one is released: with the rules its own
    ingestion was given (an office's rules file), as ingesting in order would have, not the packaged
    ones. Here the office warns on decisions 20 years old where the packaged rules hold them."""
    from features.gates import read_report, release

    store = tmp_path / "store"
    held = _base_then_held_july(store, tmp_path)
    office = QualityConfig.model_validate({"dates": {"date_action": "warn"}})
    august = [record("A1", code(7), "admin_penalty", "2026-08-12", document_no="宁市监罚〔2026〕801号")]
    august += [record(f"A{i + 2}", code(i), "admin_penalty", "2006-08-13", document_no=f"宁市监罚〔2006〕{i}号")
               for i in range(6)]
    s = _ingest(store, tmp_path, "august", august, at=datetime(2026, 9, 1, tzinfo=UTC), gates=office)
    assert s.status == "held" and s.findings[0]["rule"] == "held_behind"
    release(store, held.batch_id, by="t", reason="checked")
    report = read_report(store, s.batch_id)
    assert report.status == "published", report.findings
    assert {(f.rule, f.action) for f in report.findings} >= {("date_far_past", "warn")}
