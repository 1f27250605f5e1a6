"""What every risk model of this package shares: log-odds output, probabilities, contributions.

All models are binary classifiers of an adverse outcome (target 1 = bad). `decision_function`
returns the raw log-odds; `contributions` splits it exactly into per-feature terms plus a base
value, so `base_value + contributions.sum(axis=1) == decision_function(X)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted


@dataclass(frozen=True)
class Contributions:
    """Exact additive split of a model's log-odds output for each subject.

    `values[i, j]` is the log-odds added by feature j for subject i (positive = raises the
    risk); `base_value` is the log-odds of the reference subject (a float or an array of n).
    """

    values: np.ndarray
    base_value: float | np.ndarray
    feature_names: list[str]

    def total(self) -> np.ndarray:
        """The model output these contributions explain (log-odds)."""
        return self.base_value + self.values.sum(axis=1)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.feature_names)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def as_frame(X, feature_names: list[str] | None = None) -> pd.DataFrame:
    """Accept a DataFrame (columns by name) or a 2-D array (columns by position)."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("sparse input is not supported: pass a dense DataFrame or array (profiles are dense)")
    if isinstance(X, pd.DataFrame):
        if feature_names is None:
            return X
        missing = [c for c in feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"X is missing the fitted feature columns {missing}")
        return X[feature_names]
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (subjects × features), got shape {arr.shape}. "
                         "Reshape your data with X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one subject.")
    names = feature_names or [f"x{j}" for j in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise ValueError(f"X has {arr.shape[1]} features, but the model was fitted with {len(names)}")
    return pd.DataFrame(arr, columns=names)


def check_binary_target(y) -> np.ndarray:
    """The target must be 0/1 with 1 = adverse outcome; anything else is refused."""
    if y is None:
        raise ValueError("this estimator requires y to be passed, but the target y is None")
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y_arr.shape}")
    try:
        values = set(pd.unique(y_arr).tolist())
    except TypeError as exc:
        raise ValueError("y must be 0/1 (1 = adverse outcome)") from exc
    # 0 == 0.0 == False and 1 == 1.0 == True in Python sets: {0, 1} admits all of them.
    if len(values) > 2:
        raise ValueError(f"Only binary classification is supported. y has {len(values)} classes; "
                         "it must be 0/1 (1 = adverse outcome)")
    if not values <= {0, 1}:
        bad = sorted(map(str, values - {0, 1}))[:5]
        raise ValueError(f"y must be 0/1 (1 = adverse outcome); found values {bad}")
    if len(values) < 2:
        raise ValueError(f"y has only one class {sorted(map(str, values))}; need both 0 and 1")
    return y_arr.astype(int)


class RiskModelMixin(ClassifierMixin):
    """predict_proba / predict from `decision_function` (log-odds of the adverse outcome)."""

    def predict_proba(self, X) -> np.ndarray:
        p = sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


__all__ = ["BaseEstimator", "Contributions", "RiskModelMixin", "as_frame", "check_binary_target",
           "check_is_fitted", "sigmoid"]
