"""Build :class:`~monitoring.run.MonitoringFrames` from records and subjects (frames, no I/O).

Profiles come from ``features.profiles.build_profiles`` and adverse outcomes from the label
definition of ``features.labels``, so monitoring sees exactly what training saw.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from monitoring.health import monthly_volume
from monitoring.run import MonitoringFrames


def adverse_outcomes(records: pd.DataFrame, *, definition=None) -> pd.DataFrame:
    """Adverse outcome events (``uscc``, ``decision_date``) under the label definition of ``features``.

    Revoked events (a ``revocation`` record refers to them) are dropped when the definition says so.
    """
    from features.labels import CONTRACT_ADVERSE

    definition = definition or CONTRACT_ADVERSE
    mask = pd.Series(False, index=records.index)
    for outcome in definition.outcomes:
        hit = records["kind"] == outcome.kind
        if outcome.field:
            hit &= records[outcome.field].isin(outcome.values)
        mask |= hit
    if definition.drop_revoked and "ref_record_id" in records.columns:
        revoked = set(records.loc[records["kind"] == "revocation", "ref_record_id"].dropna())
        mask &= ~records["record_id"].isin(revoked)
    out = records.loc[mask, ["uscc", "decision_date"]].copy()
    out["decision_date"] = pd.to_datetime(out["decision_date"], errors="coerce")
    return out.dropna().reset_index(drop=True)


def frames_at(
    as_of: date,
    *,
    profiles: pd.DataFrame,
    scores: pd.DataFrame,
    records: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    ingested: pd.DataFrame | None = None,
) -> MonitoringFrames:
    """What is known at ``as_of``: profiles and scores of that date; from ``records``, the records,
    monthly volume per department and adverse outcomes decided on or before ``as_of``."""
    volume = outcomes = known = None
    if records is not None:
        known = records[pd.to_datetime(records["decision_date"], errors="coerce") <= pd.Timestamp(as_of)]
        volume = monthly_volume(known)
        outcomes = adverse_outcomes(known)
    return MonitoringFrames(
        as_of=as_of, profiles=profiles, scores=scores, outcomes=outcomes, volume=volume,
        quarantine=quarantine, ingested=ingested, records=known,
    )
