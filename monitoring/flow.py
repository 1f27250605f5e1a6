"""Record-flow drift: what arrived this month, against the same feed's own trailing months.

Profiles count records over 12- and 36-month windows, so a change that starts this month moves a
profile by about 1/12 of its size and the profile PSI sees it only months later. The monthly
flow of records shows it at once:

* :func:`segment_flow` — subjects with a negative record, per sector / district, this month
  against the segment's trailing monthly mean (subjects, not records: one event often brings
  several records at once — a penalty with its enforcement, arrears on several utilities — and
  such bursts are noise here) (one-sided test, Bonferroni over segments): a sector shock
  shows as a jump in one sector. Monthly counts vary more than a Poisson law says (working
  days, holidays), so the test uses a negative binomial whose dispersion is the segment's own
  trailing variance (Poisson when that variance is not above the mean);
* :func:`severity_mix` — the severity mix of each department's penalties this month against its
  trailing months (chi-square test): a department that starts coding general penalties as
  serious shows as a jump in its serious share, before any severity feature has moved much.
  Exact binomial tests per severity (a chi-square test is too optimistic with the handful of
  serious penalties a department decides in a month).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
from scipy.stats import binomtest

from features.quality import upper_tail as _upper_tail  # one test of a count's surge, shared with the gates
from monitoring.health import evaluated_month

#: Negative records, as ``kind`` or ``kind:subkind``: the conduct the score penalises.
DEFAULT_NEGATIVE_KINDS: tuple[str, ...] = (
    "admin_penalty", "admin_enforcement", "commitment_broken", "complaint", "arrears",
    "inspection:corrected", "inspection:case_opened",
    "list_serious_dishonesty", "list_key_attention", "list_abnormal_operation", "list_dishonest_debtor",
)
SEVERITIES: tuple[str, ...] = ("minor", "general", "serious")


@dataclass(frozen=True)
class FlowSegment:
    """Subjects of one segment with a negative record in the evaluated month vs the trailing mean."""

    segment_column: str
    segment: str
    month: str
    subjects: int
    trailing_mean: float
    ratio: float | None
    p_value: float
    significant: bool


@dataclass(frozen=True)
class SeverityMix:
    """Severity shares of one department's penalties this month against its trailing months."""

    department: str
    month: str
    n_current: int
    n_trailing: int
    current_shares: dict[str, float]
    trailing_shares: dict[str, float]
    points_moved: dict[str, float]
    p_value: float
    significant: bool


def _months(records: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(records["decision_date"], errors="coerce").dt.to_period("M")


def negative_mask(records: pd.DataFrame, kinds: Sequence[str] = DEFAULT_NEGATIVE_KINDS) -> pd.Series:
    """Rows of ``records`` that are negative records under ``kinds`` (``kind`` or ``kind:subkind``)."""
    mask = pd.Series(False, index=records.index)
    for spec in kinds:
        kind, _, subkind = spec.partition(":")
        hit = records["kind"] == kind
        if subkind:
            hit &= records["subkind"] == subkind
        mask |= hit
    return mask


def segment_flow(
    records: pd.DataFrame,
    segments: pd.DataFrame,
    *,
    as_of: date,
    segment_columns: Sequence[str] = ("industry", "district_code"),
    kinds: Sequence[str] = DEFAULT_NEGATIVE_KINDS,
    trailing_months: int = 12,
    min_ratio: float = 1.5,
    min_trailing_mean: float = 5.0,
    alpha: float = 0.01,
) -> list[FlowSegment]:
    """Subjects with a negative record, per segment, in the last complete month at ``as_of`` vs the
    trailing monthly mean.

    ``segments`` maps ``uscc`` to the segment columns (the current profiles). ``significant`` needs
    both a rise of at least ``min_ratio`` × the trailing mean and a one-sided p-value below
    ``alpha`` / number of segments tested; segments whose trailing mean is below
    ``min_trailing_mean`` subjects a month are reported but never flagged.
    """
    month = evaluated_month(as_of)
    negative = records.loc[negative_mask(records, kinds), ["uscc", "decision_date"]]
    negative = negative.assign(month=_months(negative))
    negative = negative[(negative["month"] >= month - trailing_months) & (negative["month"] <= month)]
    cols = [c for c in segment_columns if c in segments.columns]
    negative = negative.merge(segments[["uscc", *cols]], on="uscc", how="inner")
    history = pd.period_range(month - trailing_months, month - 1, freq="M")
    pending = []
    for col in cols:
        counts = negative.groupby([col, "month"], observed=True)["uscc"].nunique().unstack(fill_value=0)
        counts = counts.reindex(columns=[*history, month], fill_value=0)
        for seg, row in counts.iterrows():
            trailing_mean = float(row[history].mean())
            observed = int(row[month])
            p = _upper_tail(observed, trailing_mean, float(row[history].var(ddof=1)))
            ratio = observed / trailing_mean if trailing_mean > 0 else None
            pending.append((col, str(seg), observed, trailing_mean, ratio, p))
    n_tests = max(len(pending), 1)
    return [
        FlowSegment(
            segment_column=col, segment=seg, month=str(month), subjects=obs, trailing_mean=mean, ratio=ratio,
            p_value=p,
            significant=bool(mean >= min_trailing_mean and ratio is not None and ratio >= min_ratio
                             and p < alpha / n_tests),
        )
        for col, seg, obs, mean, ratio, p in pending
    ]


def _severity_p_value(now: pd.Series, before: pd.Series) -> float:
    """Bonferroni-combined exact binomial p-value of this month's severity counts vs the trailing shares."""
    n_now = int(now.sum())
    if n_now == 0:
        return 1.0
    smoothed = (before + 0.5) / (before.sum() + 0.5 * len(before))
    p_min = min(binomtest(int(now[s]), n_now, float(smoothed[s])).pvalue for s in now.index)
    return float(min(1.0, p_min * len(now)))


def severity_mix(
    records: pd.DataFrame,
    *,
    as_of: date,
    kind: str = "admin_penalty",
    trailing_months: int = 12,
    min_records: int = 15,
    min_points: float = 10.0,
    alpha: float = 0.01,
) -> list[SeverityMix]:
    """Severity mix of each department's ``kind`` records in the evaluated month vs its trailing months.

    ``significant`` needs a severity share moved by more than ``min_points`` percentage points and a
    p-value below ``alpha`` / number of departments tested, where the p-value is the smallest exact
    two-sided binomial p-value of this month's count of each severity given its trailing share
    (smoothed by ½ so a severity never seen before is not impossible), times the number of
    severities; departments with fewer than
    ``min_records`` such records this month are reported but never flagged.
    """
    month = evaluated_month(as_of)
    rows = records.loc[(records["kind"] == kind) & records["severity"].isin(SEVERITIES),
                       ["department", "severity", "decision_date"]]
    rows = rows.assign(month=_months(rows))
    rows = rows[(rows["month"] >= month - trailing_months) & (rows["month"] <= month)]
    pending = []
    for dept, dept_rows in rows.groupby("department", observed=True):
        now = dept_rows.loc[dept_rows["month"] == month, "severity"].value_counts().reindex(SEVERITIES, fill_value=0)
        before = dept_rows.loc[dept_rows["month"] < month, "severity"].value_counts().reindex(SEVERITIES, fill_value=0)
        if before.sum() == 0:
            continue
        cur_shares = now / now.sum() if now.sum() else now.astype(float)
        ref_shares = before / before.sum()
        p = _severity_p_value(now, before)
        pending.append((str(dept), now, before, cur_shares, ref_shares, p))
    n_tests = max(len(pending), 1)
    out = []
    for dept, now, before, cur_shares, ref_shares, p in pending:
        moved = {s: float(100 * (cur_shares[s] - ref_shares[s])) for s in SEVERITIES}
        out.append(
            SeverityMix(
                department=dept, month=str(month), n_current=int(now.sum()), n_trailing=int(before.sum()),
                current_shares={s: float(cur_shares[s]) for s in SEVERITIES},
                trailing_shares={s: float(ref_shares[s]) for s in SEVERITIES},
                points_moved=moved, p_value=p,
                significant=bool(now.sum() >= min_records and max(abs(v) for v in moved.values()) > min_points
                                 and p < alpha / n_tests),
            )
        )
    return out
