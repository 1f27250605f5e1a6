"""The real ``Regrader``: after an upheld objection or an approved repair, grade the subject again.

The profile is rebuilt from the feature store overlaid with the service's own view of the subject's
records: the current version of every record in the service database wins over the store's row
(corrections), records only the service has are added (inspection results fed back), and the
service's decisions are replayed (a revoked record gets a ``revocation`` record, a repaired one a
``repair`` record, both dated the decision). It is graded with the model the `ChampionHolder`
serves for the name of the subject's latest grade (the champion, or the last good one when the
champion cannot be loaded) and stored as a grade row (reasons and what-if included) in the
caller's transaction: nothing here commits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables import Record
from serving.errors import ModelUnavailable
from serving.schemas import GradeIn
from serving.services.champions import ChampionHolder
from serving.services.grades import Regrader, latest_grade, put_grade, refresh_current

# Records the service adds to the store's history to replay its own decisions.
_CHANGE_ID = {"revocation": "SRV-REVOKE-{}", "repair": "SRV-REPAIR-{}"}


def service_changes(session: Session, uscc: str) -> pd.DataFrame:
    """The service's decisions on ``uscc`` as contract records: one ``revocation`` (subkind
    ``objection``) per revoked record, one ``repair`` per repaired record, ref = the record."""
    current = session.scalars(select(Record).where(Record.uscc == uscc, Record.is_current.is_(True)))
    return pd.DataFrame(change_rows(current))


def change_rows(current: Any) -> list[dict[str, Any]]:
    """The contract records replaying the service's decisions on the current record versions
    ``current`` (any subjects): a ``revocation`` per revoked record, a ``repair`` per repaired one."""
    rows = []
    for record in current:
        for kind, flag, on in (("revocation", record.revoked, record.revoked_on),
                               ("repair", record.repaired, record.repaired_on)):
            if flag and on is not None:
                rows.append({"record_id": _CHANGE_ID[kind].format(record.record_id), "uscc": record.uscc,
                             "kind": kind, "subkind": "objection" if kind == "revocation" else None,
                             "decision_date": on, "ref_record_id": record.record_id,
                             "department": record.department, "document_no": "(service decision)",
                             "description": record.change_reason})
    return rows


# Record fields the service database holds (`serving.db.tables.Record`); the store's other
# contract columns (ref_record_id, verified, exemption, …) are kept from the store's row.
SERVICE_RECORD_FIELDS = ("record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date",
                          "publicity_end", "amount", "department", "document_no", "description")


def service_records(session: Session, uscc: str) -> pd.DataFrame:
    """The current version of each of ``uscc``'s records in the service database (contract columns
    the database holds): mirrored records, corrections, inspection results fed back."""
    current = session.scalars(select(Record).where(Record.uscc == uscc, Record.is_current.is_(True))
                              .order_by(Record.record_id))
    return pd.DataFrame([{f: getattr(r, f) for f in SERVICE_RECORD_FIELDS} for r in current],
                        columns=list(SERVICE_RECORD_FIELDS))


def overlay_service_records(store_records: pd.DataFrame, service: pd.DataFrame) -> pd.DataFrame:
    """``store_records`` with the service's view applied: a record the service holds takes the
    service's field values (other columns stay the store's), records only the service has are
    appended with ``version`` 1. Columns are the store's; a service-only record has none of the
    columns the database does not hold (``verified``, ``exemption``, …), read as absent."""
    if service.empty:
        return store_records
    in_service = store_records["record_id"].isin(service["record_id"])
    store_only_columns = ["record_id", *(c for c in store_records.columns if c not in SERVICE_RECORD_FIELDS)]
    merged = service.merge(store_records.loc[in_service, store_only_columns], on="record_id", how="left")
    merged = merged.reindex(columns=store_records.columns)
    if "version" in merged.columns:
        merged["version"] = merged["version"].fillna(1)  # service-only records have no store history
    return pd.concat([store_records.loc[~in_service].astype(object), merged.astype(object)], ignore_index=True)


def make_regrader(*, store_dir: str | Path, models: ChampionHolder, policy: Any = None,
                  what_if: bool = True) -> Regrader:
    """A ``Regrader`` reading ``store_dir`` (written by ``tiers ingest``) and grading with the model
    ``models`` serves for the name of the subject's latest grade. Raises `ModelUnavailable` when
    the store or every version of that model is unusable; the workflow then saves nothing."""
    store = Path(store_dir)

    def regrade(session: Session, uscc: str, reason: str) -> None:
        from features.profiles import build_profiles
        from features.store import has_table, read_latest
        from training.grade import evidence_index, grade_with
        from training.whatif import WhatIfInputs

        if not (has_table(store, "records") and has_table(store, "subjects")):
            raise ModelUnavailable(f"feature store {store} has no records/subjects; cannot regrade {uscc}")
        previous = latest_grade(session, uscc)
        name = previous.model_version.rpartition("/")[0]
        if not name:
            raise ModelUnavailable(f"latest grade of {uscc} was made by {previous.model_version!r}, not a "
                                   "registered NAME/VERSION; cannot tell which model regrades it")
        served = models.get(name)
        stored = read_latest(store, "records")
        stored = stored.loc[stored["uscc"] == uscc]
        service = service_records(session, uscc)
        records = overlay_service_records(stored, service)
        subjects = read_latest(store, "subjects")
        subjects = subjects.loc[subjects["uscc"] == uscc]
        changes = service_changes(session, uscc)
        if not changes.empty:
            changes = changes.reindex(columns=records.columns)
            if "version" in changes.columns:
                changes["version"] = 1  # the service's change records have no store history
            records = pd.concat([records.astype(object), changes.astype(object)], ignore_index=True)
        # As of the latest decision or record only the service has: it must count, and
        # (uscc, as_of, model) stays unique.
        news = pd.concat([changes.get("decision_date", pd.Series(dtype=object)),
                          service.loc[~service["record_id"].isin(stored["record_id"]), "decision_date"]])
        as_of = max([previous.as_of, *pd.to_datetime(news).dt.date])
        profile = build_profiles(records, subjects, as_of=as_of, policy=policy)
        if profile.empty:
            raise ModelUnavailable(f"subject {uscc} has no profile as of {as_of} (closed or unknown to the store)")
        model = served.model
        cited = evidence_index(records, as_of, model.features, policy=policy)
        row = grade_with(model, profile, name=name, version=served.version, evidence=[cited.get(uscc, {})],
                         what_if=WhatIfInputs(records, subjects, policy) if what_if else None).iloc[0]
        grade = GradeIn(uscc=uscc, as_of=as_of, score=float(row["score"]), grade=row["grade"],
                        probability=float(row["probability"]), model_version=served.model_version,
                        profile_hash=row["profile_hash"], reasons=json.loads(row["reasons"]),
                        what_if=json.loads(row["what_if"]))
        put_grade(session, grade)
        refresh_current(session, [uscc])
        session.flush()  # inside the caller's transaction: it commits or rolls back

    return regrade
