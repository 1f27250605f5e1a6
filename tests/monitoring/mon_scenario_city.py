"""Scenario harness shared by the scenario tests and benchmarks/monitor_false_alarms.py.

simulate a city (``simulation``) → ingest it (``features.ingest``) → point-in-time profiles
(``features.profiles.build_profiles``) → a simple scorer fitted on an older cohort whose labels
have matured (``features.labels.build_labels``) → month-over-month ``monitoring.run.monitor``.

The scorer is a stopgap on purpose: a log1p + logistic regression with ``models.Grader`` share
cut-offs, so the scenario checks do not depend on the training pipeline's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.inputs import frames_at
from monitoring.run import MonitoringResult, monitor

SCENARIO_DATE = date(2026, 1, 1)


def month_ends(first: date, n: int) -> list[date]:
    """``n`` consecutive month ends starting with the month of ``first``."""
    return [d.date() for d in pd.date_range(pd.Timestamp(first), periods=n, freq="ME")]


def simulate_store(workdir: Path, *, scenario: str, seed: int, n_subjects: int = 3000) -> Path:
    """Simulate and ingest one city; returns the store directory."""
    from features.ingest import ingest
    from simulation.config import SimulationConfig
    from simulation.generate import generate

    city = workdir / f"city_{scenario}_{seed}"
    generate(SimulationConfig(n_subjects=n_subjects, seed=seed, scenario=scenario, scenario_date=SCENARIO_DATE), city)
    store = workdir / f"store_{scenario}_{seed}"
    ingest(store=store, subjects=city / "subjects.csv", records=city / "records.csv")
    return store


@dataclass
class ScenarioCity:
    """Profiles, a fitted stopgap scorer and the records of one ingested city."""

    store: Path
    train_as_of: date
    _profiles: dict[date, pd.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from sklearn.linear_model import LogisticRegression

        from features.labels import build_labels
        from features.store import read_latest
        from models import Grader

        self.records = read_latest(self.store, "records")
        train = self.profiles(self.train_as_of)
        labels = build_labels(self.store, self.train_as_of)
        y = train[["uscc"]].merge(labels[["uscc", "label"]], on="uscc", how="left")["label"].fillna(0).to_numpy()
        self.features = [c for c in train.columns
                         if c not in ("uscc", "as_of", "profile_hash", "industry", "district_code")]
        self.model = LogisticRegression(C=0.5, max_iter=500).fit(self._matrix(train), y)
        self.grader = Grader().fit(self.model.predict_proba(self._matrix(train))[:, 1])

    def _matrix(self, profiles: pd.DataFrame) -> np.ndarray:
        x = profiles[self.features].astype(float).fillna(0.0).to_numpy()
        return np.sign(x) * np.log1p(np.abs(x))  # counts and amounts are heavy-tailed

    def profiles(self, as_of: date) -> pd.DataFrame:
        from features.profiles import build_profiles

        if as_of not in self._profiles:
            self._profiles[as_of] = build_profiles(self.store, as_of=as_of)
        return self._profiles[as_of]

    def scores(self, as_of: date) -> pd.DataFrame:
        from training.bundle import probability_to_score

        profiles = self.profiles(as_of)
        p = self.model.predict_proba(self._matrix(profiles))[:, 1]
        return pd.DataFrame({"uscc": profiles["uscc"], "p_adverse_12m": p, "score": probability_to_score(p),
                             "grade": self.grader.predict(p)})

    def run(self, reference_as_of: date, current_as_of: date, **kwargs) -> MonitoringResult:
        """One monitoring run of ``current_as_of`` against ``reference_as_of``."""
        ref = frames_at(reference_as_of, profiles=self.profiles(reference_as_of), scores=self.scores(reference_as_of))
        cur = frames_at(current_as_of, profiles=self.profiles(current_as_of), scores=self.scores(current_as_of),
                        records=self.records)
        return monitor(ref, cur, **kwargs)
