"""What a training run is asked to do: `TrainingConfig` (dates, candidates, calibration, seed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta

from training.candidates import CANDIDATES


@dataclass(frozen=True)
class TrainingConfig:
    """What to train on and how. Dates are the as-of dates of the profiles."""

    train_as_of: tuple[date, ...]
    validate_as_of: date
    horizon_months: int = 12
    seed: int = 42
    min_sector_positives: int = 300
    candidates: tuple[str, ...] = ("scorecard", "gbm_additive", "gbm", "gam")
    calibration_share: float = 0.3
    calibration_method: str = "sigmoid"  # Platt keeps the ranking; isotonic ties subjects
    # 通用＋专用: a sector's gradient-boosting candidates boost from the general model's log-odds
    # (they learn only what the sector adds); False fits them on the sector's rows alone.
    sector_on_general: bool = True
    # Glass box first: a candidate whose exact reasons need TreeSHAP ("gbm": ≈ 15× the cost of
    # grading 1 M subjects with top-5 reasons, benchmarks/grading.py, and no shape to print) is
    # chosen only if it beats the best glass-box candidate (exact reasons by table lookup: the
    # scorecard, the additive GBM, the GA²M "gam") out of time by at least this much AUC.
    interaction_margin_auc: float = 0.005
    n_boot: int = 200

    def check(self) -> None:
        """Refuse configurations that would leak label windows into the validation."""
        if not self.train_as_of:
            raise ValueError("train_as_of is empty; give at least one past as-of date")
        last = max(self.train_as_of)
        label_end = last + relativedelta(months=self.horizon_months)
        if label_end > self.validate_as_of:
            raise ValueError(
                f"validate_as_of {self.validate_as_of} is before {label_end}, the end of the "
                f"{self.horizon_months}-month label window of train as-of {last}; labels would overlap"
            )
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown:
            raise ValueError(f"candidates {unknown} are not among {sorted(CANDIDATES)}")
        if not 0 < self.calibration_share < 1:
            raise ValueError(f"calibration_share {self.calibration_share} must be in (0, 1)")
