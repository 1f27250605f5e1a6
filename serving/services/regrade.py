"""The real ``Regrader``: after an upheld objection or an approved repair, grade the subject again.

The profile is rebuilt from the feature store plus the changes the service made (a revoked record
gets a ``revocation`` record, a repaired one a ``repair`` record, both dated the decision), graded
with the model version of the subject's latest grade, and stored as a grade row (reasons and
what-if included) in the caller's transaction: nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.models import Grade, Record
from serving.errors import ModelUnavailable
from serving.schemas import GradeIn
from serving.services.grades import Regrader, latest_grade
from serving.services.repairs import Eligibility, RepairEligibility

# Records the service adds to the store's history to replay its own decisions.
_CHANGE_ID = {"revocation": "SRV-REVOKE-{}", "repair": "SRV-REPAIR-{}"}


def service_changes(session: Session, uscc: str) -> pd.DataFrame:
    """The service's decisions on ``uscc`` as contract records: one ``revocation`` (subkind
    ``objection``) per revoked record, one ``repair`` per repaired record, ref = the record."""
    rows = []
    current = session.scalars(select(Record).where(Record.uscc == uscc, Record.is_current.is_(True)))
    for record in current:
        for kind, flag, on in (("revocation", record.revoked, record.revoked_on),
                               ("repair", record.repaired, record.repaired_on)):
            if flag and on is not None:
                rows.append({"record_id": _CHANGE_ID[kind].format(record.record_id), "uscc": uscc, "kind": kind,
                             "subkind": "objection" if kind == "revocation" else None,
                             "decision_date": on, "ref_record_id": record.record_id,
                             "department": record.department, "document_no": "(service decision)",
                             "description": record.change_reason})
    return pd.DataFrame(rows)


def make_regrader(*, store_dir: str | Path, registry: Callable[[], Any], policy: Any = None,
                  what_if: bool = True) -> Regrader:
    """A ``Regrader`` reading ``store_dir`` (written by ``tiers ingest``) and loading models from
    ``registry()`` (a `ModelRegistry`, created on first use). Raises `ModelUnavailable` when the
    store, the registry or the subject's model cannot be used; the workflow then saves nothing."""
    store = Path(store_dir)
    cached: dict[str, Any] = {}

    def regrade(session: Session, uscc: str, reason: str) -> None:
        from features.profiles import build_profiles
        from features.store import has_table, read_latest
        from training.grade import evidence_index, grade_with
        from training.whatif import WhatIfInputs

        if not (has_table(store, "records") and has_table(store, "subjects")):
            raise ModelUnavailable(f"feature store {store} has no records/subjects; cannot regrade {uscc}")
        previous = latest_grade(session, uscc)
        name, _, version = previous.model_version.rpartition("/")
        try:
            reg = cached.get("registry") or cached.setdefault("registry", registry())
            model = cached.get(previous.model_version) or cached.setdefault(
                previous.model_version, reg.load_model(name, int(version)))
        except Exception as exc:  # MLflow raises many kinds; the service speaks one
            raise ModelUnavailable(f"model {previous.model_version} cannot be loaded: {exc}") from exc
        records = read_latest(store, "records")
        records = records.loc[records["uscc"] == uscc]
        subjects = read_latest(store, "subjects")
        subjects = subjects.loc[subjects["uscc"] == uscc]
        changes = service_changes(session, uscc)
        if not changes.empty:
            changes = changes.reindex(columns=records.columns)
            if "version" in changes.columns:
                changes["version"] = 1  # the service's change records have no store history
            records = pd.concat([records.astype(object), changes.astype(object)], ignore_index=True)
        # As of the latest decision: the change must count, and (uscc, as_of, model) stays unique.
        as_of = max([previous.as_of, *pd.to_datetime(changes.get("decision_date", pd.Series(dtype=object))).dt.date])
        profile = build_profiles(records, subjects, as_of=as_of, policy=policy)
        if profile.empty:
            raise ModelUnavailable(f"subject {uscc} has no profile as of {as_of} (closed or unknown to the store)")
        cited = evidence_index(records, as_of, model.features, policy=policy)
        row = grade_with(model, profile, name=name, version=int(version), evidence=[cited.get(uscc, {})],
                         what_if=WhatIfInputs(records, subjects, policy) if what_if else None).iloc[0]
        grade = GradeIn(uscc=uscc, as_of=as_of, score=float(row["score"]), grade=row["grade"],
                        probability=float(row["probability"]), model_version=previous.model_version,
                        profile_hash=row["profile_hash"], reasons=json.loads(row["reasons"]),
                        what_if=json.loads(row["what_if"]))
        values = grade.model_dump(mode="json") | {"as_of": as_of}
        existing = session.scalars(select(Grade).where(Grade.uscc == uscc, Grade.as_of == as_of,
                                                       Grade.model_version == previous.model_version)).first()
        if existing is None:
            existing = Grade(**values, created_at=dt.datetime.now(dt.UTC))
            session.add(existing)
        else:
            for key, value in values.items():
                setattr(existing, key, value)
            existing.created_at = dt.datetime.now(dt.UTC)
        existing.stale, existing.stale_reason = False, None
        session.flush()  # inside the caller's transaction: it commits or rolls back

    return regrade


def catalogue_repair_eligibility(policy: Any = None) -> RepairEligibility:
    """Repair eligibility from the feature policy's catalogue (``Policy.repair_eligible_on``)."""
    from features.policy import default_policy

    catalogue = policy or default_policy()

    def eligibility(record: Record) -> Eligibility:
        row = {"kind": record.kind, "severity": record.severity, "decision_date": record.decision_date}
        eligible = catalogue.repair_eligible_on(row)
        if eligible is None:
            return Eligibility(None, f"{record.kind}/{record.severity or '-'}: not repairable under the catalogue")
        return Eligibility(eligible, f"{record.kind}/{record.severity or '-'}: after the minimum publicity period "
                                     f"(from {eligible.isoformat()})")

    return eligibility
