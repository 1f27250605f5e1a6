"""Repair eligibility comes from the catalogue policy (``features.catalogue``) whether or not the
service has a feature store: what an enterprise is shown equals the catalogue's date, for every
kind and severity, under both the 2019 and the 2026 publicity rules."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from fastapi.testclient import TestClient
from srv_fixtures import TODAY

from features.catalogue import default_policy, repair_eligible_on
from serving.app import create_app
from serving.deps import get_today
from serving.services.subjects import store_records

SEVERITIES = (None, "minor", "general", "serious")
DECISIONS = (dt.date(2025, 5, 10), dt.date(2026, 5, 10))  # before and after the 2026-04-01 rules


@pytest.mark.parametrize("with_store", [False, True], ids=["no store", "store"])
def test_shown_eligibility_equals_the_catalogue(with_store, settings, session, auth, world, tmp_path):
    if with_store:
        settings = settings.model_copy(update={"store_dir": tmp_path / "store"})
    app = create_app(settings)
    app.dependency_overrides[get_today] = lambda: TODAY
    client = TestClient(app)
    rows = []
    for n, (kind, severity, decided) in enumerate(itertools.product(default_policy().kinds, SEVERITIES, DECISIONS)):
        rows.append(dict(record_id=f"E{n:04d}", uscc=world.ent1, kind=kind, severity=severity,
                         decision_date=decided.isoformat(), department="samr", document_no=f"宁测〔2026〕{n}号"))
    store_records(session, rows)
    repairable = 0
    for row in rows:
        shown = client.get(f"/api/v1/subjects/{world.ent1}/records/{row['record_id']}/repair-eligibility",
                           headers=auth("ent1")).json()
        expected = repair_eligible_on(row)
        assert shown["eligible_from"] == (None if expected is None else expected.isoformat()), row
        assert shown["eligible"] == (expected is not None and expected <= TODAY), row
        repairable += expected is not None
    # the catalogue makes more than penalties repairable (lists, broken commitments)
    assert repairable > sum(r["kind"] == "admin_penalty" for r in rows) // 2
