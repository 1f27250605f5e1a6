"""What every risk model of this package shares: log-odds output, probabilities, contributions.

All models are binary classifiers of an adverse outcome (target 1 = bad). `decision_function`
returns the raw log-odds; `contributions` splits it exactly into per-feature terms plus a base
value, so `base_value + contributions.sum(axis=1) == decision_function(X)`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted


@dataclass(frozen=True)
class Contributions:
    """Exact additive split of a model's log-odds output for each subject.

    `values[i, j]` is the log-odds added by feature j for subject i (positive = raises the
    risk); `base_value` is the log-odds of the reference subject (a float or an array of n).
    A model with declared pairwise terms adds `pair_values[i, k]`, the log-odds added by the
    pair `pairs[k]` = (feature a, feature b) jointly, beyond what each adds alone.
    """

    values: np.ndarray
    base_value: float | np.ndarray
    feature_names: list[str]
    pair_values: np.ndarray | None = None
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n_pairs = 0 if self.pair_values is None else self.pair_values.shape[1]
        if n_pairs != len(self.pairs):
            raise ValueError(f"{n_pairs} pair columns for {len(self.pairs)} declared pairs")

    def total(self) -> np.ndarray:
        """The model output these contributions explain (log-odds)."""
        out = self.base_value + self.values.sum(axis=1)
        return out + self.pair_values.sum(axis=1) if self.pairs else out

    def terms(self) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """Every term's contributions (features, then pairs) and each term's features."""
        names: list[tuple[str, ...]] = [(n,) for n in self.feature_names]
        if not self.pairs:
            return self.values, names
        return np.hstack([self.values, self.pair_values]), names + [tuple(p) for p in self.pairs]

    def frame(self) -> pd.DataFrame:
        """One column per feature, then one per pair (named ``a × b``)."""
        values, names = self.terms()
        return pd.DataFrame(values, columns=[" × ".join(t) for t in names])

    @staticmethod
    def combine(parts: Sequence[Contributions], weights: Sequence[float], feature_names: Sequence[str]) -> Contributions:
        """Σ_k w_k · parts[k], aligned by feature name (``feature_names`` order) and by pair:
        still exact for a model whose log-odds is the same weighted sum of the parts'."""
        names = list(feature_names)
        n = len(parts[0].values) if parts else 0
        values = np.zeros((n, len(names)))
        pairs: list[tuple[str, str]] = []
        pair_cols: list[np.ndarray] = []
        base: float | np.ndarray = 0.0
        for part, w in zip(parts, weights, strict=True):
            values[:, [names.index(f) for f in part.feature_names]] += w * part.values
            base = base + w * part.base_value
            for k, pair in enumerate(part.pairs):
                if tuple(pair) not in pairs:
                    pairs.append(tuple(pair))
                    pair_cols.append(np.zeros(n))
                pair_cols[pairs.index(tuple(pair))] += w * part.pair_values[:, k]
        pair_values = np.column_stack(pair_cols) if pairs else None
        return Contributions(values, base, names, pair_values, pairs)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic 1 / (1 + e^−z), quiet on extreme log-odds: below z ≈ −709 e^−z overflows to inf and
    the result is 0.0 (the true value is under 1e−308), without numpy's overflow warning. Not
    `scipy.special.expit`: it differs in the last bit on ordinary z, and scores must not move."""
    with np.errstate(over="ignore"):
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


def learn_categories(frame: pd.DataFrame, categorical: Sequence[str] | None) -> dict[str, list[str]]:
    """Categories of the declared categorical columns and of every non-numeric (or bool) one,
    sorted as text: the codes a model's `encode_columns` gives them."""
    chosen = {str(c) for c in categorical or ()}
    chosen |= {str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
               or pd.api.types.is_bool_dtype(frame[c])}
    return {str(c): sorted(frame[c].dropna().astype(str).unique().tolist()) for c in frame.columns if str(c) in chosen}


def encode_columns(frame: pd.DataFrame, names: Iterable[str], categories: Mapping[str, list[str]]) -> np.ndarray:
    """Float matrix of ``frame``'s columns in order: numbers as they are, categories as their
    codes; missing values and categories unseen in training become NaN."""
    cols = []
    for j, name in enumerate(names):
        col = frame.iloc[:, j]
        cats = categories.get(name)
        if cats is None:
            cols.append(pd.to_numeric(col, errors="raise").to_numpy(dtype=float))
        else:
            codes = pd.Categorical(col.astype(str).where(col.notna(), None), categories=cats).codes
            cols.append(np.where(codes < 0, np.nan, codes).astype(float))
    return np.column_stack(cols) if cols else np.empty((len(frame), 0))


def validate_monotone(monotone: Mapping[str, int] | None, columns: Iterable[str]) -> dict[str, int]:
    """The declared directions, refused if they name a column X lacks or are not −1, 0, +1."""
    directions = dict(monotone or {})
    unknown = sorted(set(directions) - {str(c) for c in columns})
    if unknown:
        raise ValueError(f"monotone names features {unknown} that are not columns of X")
    bad = {k: v for k, v in directions.items() if v not in (-1, 0, 1)}
    if bad:
        raise ValueError(f"monotone directions {bad} must be -1, 0 or +1")
    return directions


def frame_and_target(X, y) -> tuple[pd.DataFrame, np.ndarray]:
    """X as a frame (``as_frame``) and y as 0/1 (``check_binary_target``); refused unless they have
    as many rows."""
    frame = as_frame(X)
    y_arr = check_binary_target(y)
    if len(frame) != len(y_arr):
        raise ValueError(f"X has {len(frame)} rows but y has {len(y_arr)}")
    return frame, y_arr


def set_fitted_inputs(model, frame: pd.DataFrame) -> None:
    """The fitted attributes of the inputs: ``feature_names_in_`` (the columns' names as text),
    ``n_features_in_`` and ``classes_`` (0, 1)."""
    model.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
    model.n_features_in_ = frame.shape[1]
    model.classes_ = np.array([0, 1])


def start_fit(model, X, y, init_score=None) -> tuple[pd.DataFrame, np.ndarray, dict[str, int], np.ndarray | None]:
    """The checks and fitted attributes every LightGBM-based model starts its ``fit`` with.

    Sets ``feature_names_in_``, ``n_features_in_``, ``classes_`` and ``categories_`` (from
    ``model.categorical_features``) on ``model``; returns X as a frame with text column names, y
    as 0/1, the declared monotone directions (``model.monotone``, refused on a categorical
    feature) and ``init_score`` as floats of y's shape (or None).
    """
    frame, y_arr = frame_and_target(X, y)
    monotone = validate_monotone(model.monotone, map(str, frame.columns))
    set_fitted_inputs(model, frame)
    frame = frame.set_axis(list(model.feature_names_in_), axis=1)
    model.categories_ = learn_categories(frame, model.categorical_features)
    for c in model.categories_:
        if monotone.get(c, 0):
            raise ValueError(f"feature {c!r} is categorical; monotone={monotone[c]} needs an ordered feature")
    if init_score is not None:
        init_score = np.asarray(init_score, dtype=float)
        if init_score.shape != y_arr.shape:
            raise ValueError(f"init_score has shape {init_score.shape}, expected {y_arr.shape}")
    return frame, y_arr, monotone, init_score


def lightgbm_params(model, *, seed: int) -> dict:
    """The LightGBM settings every LightGBM-based model trains with: binary log-loss, deterministic
    and row-wise (a refit on the same data is bit-identical), and the estimator's shared parameters
    under LightGBM's names (``n_jobs``, ``learning_rate``, ``min_child_samples`` as the least rows of
    a leaf and of a category group, ``reg_lambda``, ``max_bin``, ``cat_smooth``). A model adds its
    own settings (trees, constraints) over these."""
    return {
        "objective": "binary", "verbosity": -1, "deterministic": True, "force_row_wise": True,
        "num_threads": model.n_jobs, "seed": seed, "learning_rate": model.learning_rate,
        "min_data_in_leaf": model.min_child_samples, "min_data_per_group": model.min_child_samples,
        "lambda_l2": model.reg_lambda, "max_bin": model.max_bin, "cat_smooth": model.cat_smooth,
    }


def fitted_frame(model, X) -> pd.DataFrame:
    """X as a frame of ``model``'s fitted features: a DataFrame's columns by name (extra columns
    ignored), an array's by position (refused unless it has as many columns)."""
    frame = as_frame(X, list(model.feature_names_in_) if isinstance(X, pd.DataFrame) else None)
    if frame.shape[1] != model.n_features_in_:
        raise ValueError(f"X has {frame.shape[1]} features, but the model was fitted with {model.n_features_in_}")
    return frame


def encoded(model, X) -> np.ndarray:
    """X encoded as at ``model``'s fit (see `encode_columns`), checked against its features."""
    return encode_columns(fitted_frame(model, X), model.feature_names_in_, model.categories_)


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
           "check_is_fitted", "encode_columns", "encoded", "learn_categories", "lightgbm_params", "sigmoid",
           "start_fit",
           "validate_monotone"]
