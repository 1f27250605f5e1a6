"""The real regrader: an upheld objection or an approved repair regrades the subject from the
feature store plus the service's decisions, in the decision's transaction."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from srv_fixtures import ENT1, TODAY, principal
from srv_models import CountsModel, ingest_ent1

from serving.db.tables import Grade, Objection, Record
from serving.errors import ModelUnavailable
from serving.schemas import DecisionIn, ObjectionCreate
from serving.services import objections
from serving.services.champions import ChampionHolder
from serving.services.grades import latest_grade, store_grades
from serving.services.regrade import make_regrader
from serving.services.repairs import catalogue_repair_eligibility
from serving.services.subjects import store_records

# the module's ingested store is made once on one worker, not on both
pytestmark = pytest.mark.xdist_group("srv_regrade")

MODEL_VERSION = "tiers-general/1"


class OneModelRegistry:
    """A registry whose only model is ``tiers-general`` version 1, the champion."""

    def alias_version(self, name: str, alias: str) -> int | None:
        return 1 if name == "tiers-general" and alias == "champion" else None

    def load_model(self, name: str, version: int) -> CountsModel:
        if f"{name}/{version}" != MODEL_VERSION:
            raise LookupError(f"no model {name}/{version}")
        return CountsModel()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """ENT1's subject and records (as seeded in the service database) ingested into a store."""
    return ingest_ent1(tmp_path_factory.mktemp("regrade_store"))


@pytest.fixture
def regrader(store):
    return make_regrader(store_dir=store, models=ChampionHolder(OneModelRegistry))


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


def test_missing_store_or_model_is_model_unavailable_and_saves_nothing(session, store, graded,
                                                                         tmp_path) -> None:
    down = ChampionHolder(lambda: (_ for _ in ()).throw(OSError("down")))
    for broken in (make_regrader(store_dir=tmp_path / "nowhere", models=ChampionHolder(OneModelRegistry)),
                   make_regrader(store_dir=store, models=down)):
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


def _reasons_cite(grade: Grade, record_id: str) -> bool:
    return any(record_id in r["record_ids"] for r in grade.reasons)


def _regraded_with(session, regrader, reason: str, **record) -> Grade:
    """ENT1's grade after the service stores this penalty record of ENT1 and regrades it."""
    store_records(session, [dict(uscc=ENT1, kind="admin_penalty", department="samr", **record)])
    regrader(session, ENT1, reason)
    session.commit()
    return latest_grade(session, ENT1)


def test_regrade_counts_a_record_only_the_service_has(session, regrader, graded) -> None:
    """An inspection result fed back into the service (not in the store) counts at the next
    regrade; upholding an objection against it takes its effect and its citation away again."""
    with_result = _regraded_with(session, regrader, "inspection result fed back", record_id="INSP-1",
                                 severity="serious", decision_date="2026-11-16", publicity_end="2029-11-16",
                                 amount=80000, document_no="宁市监罚〔2026〕201号")
    assert with_result.as_of == dt.date(2026, 11, 16)  # the service's record is inside the profile window
    assert with_result.probability > graded.probability and with_result.grade >= graded.grade
    assert _reasons_cite(with_result, "INSP-1")
    _uphold(session, regrader, "INSP-1")
    after = latest_grade(session, ENT1)
    assert after.probability < with_result.probability and after.grade <= with_result.grade
    assert not _reasons_cite(after, "INSP-1")
    assert all(w.get("record_id") != "INSP-1" for w in after.what_if)


def test_regrade_uses_the_service_correction_of_a_store_record(session, regrader, graded) -> None:
    """A record the service corrected (serious → general) is graded as corrected, not as stored."""
    before = graded.probability  # the regrade below replaces this very row (same as-of and model)
    corrected = _regraded_with(session, regrader, "R2 corrected", record_id="R2", severity="general",
                               decision_date="2026-06-01", publicity_end="2027-06-01", amount=20000,
                               document_no="宁市监罚〔2026〕88号")
    assert corrected.probability < before
    serious = [r for r in corrected.reasons if r["code"] == "n_serious_penalty_36m"]
    assert not serious, corrected.reasons  # R2 no longer counts as serious
    assert _reasons_cite(corrected, "R2")  # but still as a penalty in the last 12 months
