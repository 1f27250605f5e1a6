"""Interpretable, calibrated risk models: scorecard and glass-box GBM, A–D grading with
direct-grading overrides, exact reason codes (zh/en) and what-if. Pure: no I/O, no settings.

Heavy libraries (optbinning, lightgbm) are imported inside `fit`, so importing this package is cheap.
"""

from models.base import Contributions
from models.blend import AdditiveBlend, default_blend
from models.calibration import (
    CalibratedModel,
    brier_score,
    expected_calibration_error,
    fit_calibrator,
    reliability_table,
)
from models.explain import BulkExplanation, ReasonCode, explain_bulk, reason_codes, top_k
from models.gam import BoostedGAM, PairFunction
from models.gbm import MonotoneGBM, ShapeFunction, plot_shape_functions
from models.grading import DEFAULT_SHARES, Grader, GradeResult, OverrideRule
from models.meta import GRADE_LABELS_EN, GRADE_LABELS_ZH, GRADES, Evidence, FeatureMeta, monotone_map
from models.ontop import OnTopModel
from models.scorecard import ScorecardModel
from models.whatif import Action, WhatIfResult, what_if

__all__ = [
    "DEFAULT_SHARES", "GRADES", "GRADE_LABELS_EN", "GRADE_LABELS_ZH", "Action", "AdditiveBlend", "BoostedGAM", "BulkExplanation", "CalibratedModel", "Contributions",
    "Evidence", "FeatureMeta", "GradeResult", "Grader", "MonotoneGBM", "OnTopModel", "OverrideRule", "PairFunction", "ReasonCode",
    "ScorecardModel", "ShapeFunction", "WhatIfResult", "brier_score", "default_blend", "expected_calibration_error",
    "explain_bulk", "fit_calibrator", "monotone_map", "plot_shape_functions", "reason_codes", "reliability_table", "top_k",
    "what_if",
]
