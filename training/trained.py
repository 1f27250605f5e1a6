"""The training stage's output before its report: the validated model (`TrainedModel`). The report
stage (`training.report.build_report`) takes it; `training.result.TrainingResult` joins the two."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from training.bundle import GradingModel
from training.config import TrainingConfig
from training.sector_policy import TrainingPolicy


@dataclass(frozen=True)
class TrainedModel:
    """A trained, calibrated, graded model with its out-of-time validation."""

    name: str
    model: GradingModel
    config: TrainingConfig
    policy: TrainingPolicy
    candidate_metrics: dict[str, dict[str, float]]
    validation: pd.DataFrame  # OOT rows: ids, features, label, groups, p_adverse_12m, grade
    scored: pd.DataFrame  # every row of every as-of date with p_adverse_12m and grade (stability)
    data_hash: str
    notes: list[str]

    def params(self) -> dict[str, Any]:
        """Run parameters as logged to MLflow."""
        return {
            "model_name": self.name,
            "kind": self.model.kind,
            "sector": self.model.sector or "",
            "candidate": self.model.candidate,
            "train_as_of": ",".join(d.isoformat() for d in self.config.train_as_of),
            "validate_as_of": self.config.validate_as_of.isoformat(),
            "horizon_months": self.config.horizon_months,
            "seed": self.config.seed,
            "min_sector_positives": self.config.min_sector_positives,
            "candidates": ",".join(self.config.candidates),
            "features": ",".join(self.model.features),
            "cutoffs": ",".join(f"{c:.6g}" for c in self.model.cutoffs),
            "target_shares": json.dumps(self.policy.target_shares, sort_keys=True),
            "exclude_features": ",".join(self.policy.exclude_features),
            "direct_grading": ",".join(r.rule_id for r in self.policy.direct_grading),
            "data_sha256": self.data_hash,
        }
