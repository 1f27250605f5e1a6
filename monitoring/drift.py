"""Input drift: Evidently's per-column tests, our decile PSI per feature, and drift per segment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from stability.psi import binned_counts, decile_psi, is_categorical

#: Evidently methods whose value is a p-value (drift when below the threshold); the others are
#: distances (drift when at or above the threshold).
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z", "fisher_exact", "g_test", "anderson", "cramer_von_mises",
                             "mannw", "t_test", "empirical_mmd", "epps_singleton"})


@dataclass(frozen=True)
class EvidentlyColumnDrift:
    """Evidently's verdict on one column: method, statistic and whether it drifted."""

    feature: str
    method: str
    value: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class SegmentDrift:
    """Decile PSI of one variable inside one segment, with a chi-square significance test."""

    segment_column: str
    segment: str
    variable: str
    n_reference: int
    n_current: int
    psi: float
    p_value: float
    significant: bool


def evidently_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str],
    num_method: str = "wasserstein",
    cat_method: str = "jensenshannon",
    html_path: Path | None = None,
) -> list[EvidentlyColumnDrift]:
    """Run Evidently 0.7's ``DataDriftPreset`` on ``columns``; write its HTML only if ``html_path``.

    Numerical columns default to the normed Wasserstein distance and categorical ones to the
    Jensen–Shannon distance: both are effect sizes, so unlike K-S or chi-square p-values they do
    not flag every negligible shift once a city has a million subjects.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = list(columns)
    cat_cols = [c for c in columns if is_categorical(reference[c])]
    num_cols = [c for c in columns if c not in cat_cols]

    def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[columns].copy()
        for c in cat_cols:  # Evidently wants plain strings; missing is a category of its own
            out[c] = out[c].astype("object").where(out[c].notna(), "missing").astype(str)
        for c in num_cols:
            out[c] = out[c].astype(float)
        return out

    definition = DataDefinition(numerical_columns=num_cols, categorical_columns=cat_cols)
    report = Report([DataDriftPreset(columns=columns, num_method=num_method, cat_method=cat_method)])
    snapshot = report.run(
        Dataset.from_pandas(_prepare(current), data_definition=definition),
        Dataset.from_pandas(_prepare(reference), data_definition=definition),
    )
    if html_path is not None:
        Path(html_path).parent.mkdir(parents=True, exist_ok=True)
        snapshot.save_html(str(html_path))
    results: list[EvidentlyColumnDrift] = []
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        method, threshold, value = config["method"], float(config["threshold"]), float(metric["value"])
        drifted = value < threshold if method in P_VALUE_METHODS else value >= threshold
        results.append(EvidentlyColumnDrift(config["column"], method, value, threshold, bool(drifted)))
    return results


def feature_psi(
    reference: pd.DataFrame, current: pd.DataFrame, *, columns: Sequence[str], n_bins: int = 10
) -> dict[str, float]:
    """Decile PSI per column (see :mod:`stability.psi`)."""
    return {c: decile_psi(reference[c], current[c], n_bins=n_bins).psi for c in columns}


def segment_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    segment_columns: Sequence[str],
    variables: Sequence[str],
    min_segment_size: int = 200,
    alpha: float = 0.01,
    n_bins: int = 10,
) -> list[SegmentDrift]:
    """PSI of each variable within each segment (e.g. sector, district) present on both sides.

    Segments smaller than ``min_segment_size`` on either side are skipped. ``significant`` means
    the chi-square test of the binned counts (reference vs current) rejects equality at ``alpha``
    after a Bonferroni correction over all tested (segment, variable) pairs: small segments have
    a noisy PSI, so the PSI alone would flag them by chance.
    """
    pending: list[tuple[str, str, str, int, int, float, float]] = []
    for seg_col in segment_columns:
        ref_groups = reference.groupby(seg_col, observed=True, sort=True)
        cur_groups = dict(list(current.groupby(seg_col, observed=True, sort=True)))
        for seg_value, ref_seg in ref_groups:
            cur_seg = cur_groups.get(seg_value)
            if cur_seg is None or len(ref_seg) < min_segment_size or len(cur_seg) < min_segment_size:
                continue
            for var in variables:
                psi = decile_psi(ref_seg[var], cur_seg[var], n_bins=n_bins).psi
                ref_counts, cur_counts = binned_counts(ref_seg[var], cur_seg[var], n_bins=n_bins)
                table = np.vstack([ref_counts, cur_counts])
                table = table[:, table.sum(axis=0) > 0]
                p_value = 1.0 if table.shape[1] < 2 else float(chi2_contingency(table)[1])
                pending.append((seg_col, str(seg_value), var, len(ref_seg), len(cur_seg), psi, p_value))
    n_tests = max(len(pending), 1)
    return [
        SegmentDrift(seg_col, seg, var, n_ref, n_cur, psi, p, significant=p < alpha / n_tests)
        for seg_col, seg, var, n_ref, n_cur, psi, p in pending
    ]
