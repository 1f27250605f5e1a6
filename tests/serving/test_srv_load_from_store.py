"""A first load from the feature store into the service's mirror (`services.subjects.load_from_store`,
what `tiers demo` loads): rows validated, a record's repair or revocation decided by the as-of date
sets its flags on the earliest such date, and a second load writes nothing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import func, select
from srv_fixtures import ENT1, ENT2

from serving.db.migrate import upgrade
from serving.db.session import dispose_engine, iter_session
from serving.db.tables import Record, Subject
from serving.services.subjects import load_from_store

AS_OF = dt.date(2026, 9, 30)


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    subjects = pd.DataFrame({"uscc": [ENT1, ENT2], "name": ["甲公司", "乙公司"], "industry": ["C", "F"],
                             "status": ["active", "active"], "registered_on": pd.to_datetime(["2015-03-01", "2016-04-01"])})
    day = pd.Timestamp
    records = pd.DataFrame([
        dict(record_id="P1", uscc=ENT1, kind="admin_penalty", severity="general", decision_date=day("2026-01-10"),
             department="samr", ref_record_id=None, amount=float("nan")),
        dict(record_id="P2", uscc=ENT2, kind="admin_penalty", severity="serious", decision_date=day("2026-02-01"),
             department="samr", ref_record_id=None, amount=2000.0, end_date=day("2027-02-01")),
        # P1 repaired twice (the earliest counts), P2 revoked only after the as-of date
        dict(record_id="F1", uscc=ENT1, kind="repair", decision_date=day("2026-05-02"), department="samr",
             ref_record_id="P1"),
        dict(record_id="F2", uscc=ENT1, kind="repair", decision_date=day("2026-04-01"), department="samr",
             ref_record_id="P1"),
        dict(record_id="V1", uscc=ENT2, kind="revocation", decision_date=day("2026-10-01"), department="samr",
             ref_record_id="P2"),
    ])
    return subjects, records


def test_a_first_load_sets_the_flags_of_repaired_and_revoked_records_and_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    session = next(iter_session(url))
    try:
        subjects, records = _frames()
        assert load_from_store(session, subjects, records, as_of=AS_OF) == 2
        stored = {r.record_id: r for r in session.scalars(select(Record))}
        assert set(stored) == set(records["record_id"])
        assert all(r.version == 1 and r.is_current and r.change_reason == "ingested" for r in stored.values())
        assert (stored["P1"].repaired, stored["P1"].repaired_on) == (True, dt.date(2026, 4, 1))
        assert (stored["P2"].revoked, stored["P2"].revoked_on) == (False, None)  # decided after the as-of date
        assert stored["P1"].amount is None and not stored["P2"].repaired
        assert stored["P1"].end_date is None and stored["P2"].end_date == dt.date(2027, 2, 1)  # NaT → None
        assert session.get(Subject, ENT2).registered_on == dt.date(2016, 4, 1)

        assert load_from_store(session, subjects, records, as_of=AS_OF) == 0
        assert session.scalar(select(func.count()).select_from(Record)) == len(records)
        assert session.scalar(select(func.count()).select_from(Subject)) == 2
    finally:
        session.close()
        dispose_engine(url)
