"""A sector model fitted on top of the general one (通用＋专用): general log-odds + a boosted residual.

`log_odds(x) = base(x) + delta(x)`: the fitted general model gives every subject its log-odds,
and a LightGBM is boosted on the sector's own rows starting from them (LightGBM `init_score`),
so it learns only what the sector adds — e.g. utility arrears that matter only in section H —
while the general model's estimates, fitted on all sectors' data, stay the starting point.
Both parts are exactly explained, so their per-feature contributions simply add up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import clone

from models.base import (
    BaseEstimator,
    Contributions,
    RiskModelMixin,
    as_frame,
    check_is_fitted,
    frame_and_target,
    set_fitted_inputs,
)


class OnTopModel(RiskModelMixin, BaseEstimator):
    """A fitted ``base`` model plus a ``delta`` estimator boosted on its residual.

    base: a fitted risk model (``decision_function``, ``contributions``, ``feature_names_in_``);
    it is not refitted. delta: an unfitted estimator whose ``fit`` accepts ``init_score``
    (``MonotoneGBM``). delta_features: the columns the delta may use (default: all of X). X must
    hold the base's features and the delta's.
    """

    def __init__(self, *, base=None, delta=None, delta_features: Sequence[str] | None = None) -> None:
        self.base = base
        self.delta = delta
        self.delta_features = delta_features

    def _parts(self, X):
        frame = as_frame(X, list(self.feature_names_in_) if not hasattr(X, "columns") else None)
        return frame.loc[:, list(self.base.feature_names_in_)], frame.loc[:, list(self.delta_features_)]

    def fit(self, X, y) -> OnTopModel:
        """Boost the delta on (X, y) starting from the base model's log-odds."""
        if self.base is None or self.delta is None:
            raise ValueError("OnTopModel needs a fitted base model and a delta estimator")
        check_is_fitted(self.base)
        frame, y_arr = frame_and_target(X, y)
        columns = [str(c) for c in frame.columns]
        self.delta_features_ = list(self.delta_features) if self.delta_features is not None else columns
        needed = set(map(str, self.base.feature_names_in_)) | set(self.delta_features_)
        missing = sorted(needed - set(columns))
        if missing:
            raise ValueError(f"X lacks columns {missing} of the base model or the delta")
        set_fitted_inputs(self, frame)
        frame = frame.set_axis(columns, axis=1)
        xb, xd = self._parts(frame)
        self.delta_ = clone(self.delta).fit(xd, y_arr, init_score=self.base.decision_function(xb))
        return self

    def decision_function(self, X) -> np.ndarray:
        """Log-odds: the base model's plus the sector's residual."""
        check_is_fitted(self, "delta_")
        xb, xd = self._parts(X)
        return self.base.decision_function(xb) + self.delta_.decision_function(xd)

    def contributions(self, X) -> Contributions:
        """Exact: the base's and the delta's contributions added per feature (X's column order)
        and per declared pair."""
        check_is_fitted(self, "delta_")
        xb, xd = self._parts(X)
        parts = [self.base.contributions(xb), self.delta_.contributions(xd)]
        return Contributions.combine(parts, [1.0, 1.0], list(self.feature_names_in_))
