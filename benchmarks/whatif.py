"""Cost of the what-if in the grading job on a simulated 3,000-subject city.

Every subject graded worse than A gets a search over its candidate actions (repair an eligible
record, settle arrears, fulfil a broken commitment): candidate actions come from one record-status
pass, hypothetical profiles from two ``build_profiles`` calls, and all of them are graded in one
model call (`training.whatif`). Printed: the what-if time, the baseline measured in the
same run (profiles + grading of the whole city, i.e. the job without what-if) and their ratio, and
the naive way (one ``build_profiles`` per hypothetical profile) timed on a sample and extrapolated.

Run: .venv/bin/python benchmarks/whatif.py [--subjects 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import timed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))



class BenchModel:
    """Additive monotone GBM on the numeric profile features + share-based grader."""

    def __init__(self, profiles: pd.DataFrame, y: np.ndarray) -> None:
        from models import Grader, MonotoneGBM

        self.features = [c for c in profiles.columns if c not in ("uscc", "as_of", "profile_hash")
                         and pd.api.types.is_numeric_dtype(profiles[c])]
        self.gbm = MonotoneGBM(monotone={}, additive=True, n_estimators=100).fit(self._x(profiles), y)
        self.grader = Grader().fit(self.gbm.predict_proba(self._x(profiles))[:, 1])

    def _x(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.features].astype(float)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.gbm.predict_proba(self._x(frame))

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        from training.bundle import probability_to_score

        p = self.predict_proba(frame)[:, 1]
        return pd.DataFrame({"p_adverse_12m": p, "score": np.round(probability_to_score(p), 1),
                             "grade": self.grader.grade(p, frame).grades}, index=frame.index)


def main() -> None:
    import psutil

    from features.actions import apply_actions, candidate_actions
    from features.ingest import ingest
    from features.profiles import build_profiles
    from features.store import read_latest
    from simulation import SimulationConfig, generate
    from training.whatif import WhatIfInputs, what_if_entries

    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()} RAM={psutil.virtual_memory().total / 2**30:.1f} GiB "
          f"cpu={platform.processor() or platform.machine()} python={platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        city, store = Path(tmp) / "city", Path(tmp) / "store"
        generate(SimulationConfig(n_subjects=args.subjects, seed=7), city)
        # ingestion quarantines the simulator's dirty rows; the job reads the clean store
        ingest(store=store, subjects=city / "subjects.csv", records=city / "records.csv",
               ingested_at=datetime(2026, 11, 1, tzinfo=UTC))
        subjects, records = read_latest(store, "subjects"), read_latest(store, "records")
        truth = pd.read_parquet(city / "truth" / "true_risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    as_of = sorted(truth["as_of"].unique())[-5]
    truth = truth.loc[truth["as_of"] == as_of].set_index("uscc")

    def job():
        profiles = build_profiles(records, subjects, as_of=as_of)
        return profiles, model.grade(profiles)

    profiles = build_profiles(records, subjects, as_of=as_of)
    y = truth["adverse_12m"].reindex(profiles["uscc"]).fillna(0).astype(int).to_numpy()
    model = BenchModel(profiles, y)
    t_job, (profiles, graded) = timed(job, args.repeats)
    graded = graded.assign(uscc=profiles["uscc"].to_numpy())
    inputs = WhatIfInputs(records, subjects)
    t_whatif, entries = timed(lambda: what_if_entries(model, graded, inputs, as_of=as_of), args.repeats)
    searched = int((graded["grade"] != "A").sum())
    with_actions = [u for u in graded.loc[graded["grade"] != "A", "uscc"]
                    if candidate_actions(records.loc[records["uscc"] == u], u, as_of)]
    helped = sum(1 for rows in entries.values() if rows)

    # naive: one build_profiles per hypothetical (single-action) profile, on a sample
    sample = with_actions[: args.naive_sample]
    t0, n_naive = time.perf_counter(), 0
    for u in sample:
        own = records.loc[records["uscc"] == u]
        for action in candidate_actions(own, u, as_of):
            build_profiles(apply_actions(own, [action], as_of), subjects.loc[subjects["uscc"] == u], as_of=as_of)
            n_naive += 1
    t_naive_each = (time.perf_counter() - t0) / max(n_naive, 1)
    n_single = sum(len(candidate_actions(records.loc[records["uscc"] == u], u, as_of)) for u in with_actions)

    print(f"city: {len(profiles):,} subjects profiled as of {as_of}; {searched:,} graded worse than A, "
          f"{len(with_actions):,} with at least one action, {helped:,} get a what-if")
    print(f"baseline job (build_profiles + grade, whole city): {t_job:.2f} s (median of {args.repeats})")
    print(f"what-if (batched, all subjects worse than A): {t_whatif:.2f} s (median of {args.repeats})")
    print(f"ratio what-if / baseline job: {t_whatif / t_job:.2f}×")
    print(f"naive single-action profiles, one build_profiles each: {t_naive_each * 1000:.0f} ms per profile "
          f"→ ≈ {t_naive_each * n_single:.0f} s for the {n_single:,} single-action profiles alone "
          f"({t_naive_each * n_single / t_whatif:.0f}× the batched what-if)")


if __name__ == "__main__":
    main()
