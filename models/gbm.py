"""Glass-box gradient boosting: LightGBM with declared monotone constraints.

In **additive mode** (the default) every tree has one split (`max_depth=1`), so the model is
a sum of per-feature step functions, `log_odds(x) = const + Σ_f g_f(x_f)`, like an EBM without
interactions. The step functions are read from the booster itself (`shape_functions()`), and
exact per-feature contributions become a table lookup (`searchsorted`) — the same numbers as
LightGBM's TreeSHAP `pred_contrib`, at less than the cost of a raw predict. This is why
grading millions of subjects with reasons uses the additive mode: measured on 1 M subjects ×
60 features (`benchmarks/grading.py`), grade + top-5 reasons by lookup costs ≈4.3 CPU-s, a raw
predict of the same model ≈5.9 CPU-s, while TreeSHAP on a 300-tree 15-leaf model costs
≈660 CPU-s (≈150× more). With `additive=False` the trees are deeper and contributions come
from `pred_contrib` (exact TreeSHAP, slow).

Categorical columns are encoded to integer codes learned in `fit`; a category unseen in
training and a missing value both go where LightGBM sends missing values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.base import (
    BaseEstimator,
    Contributions,
    RiskModelMixin,
    check_is_fitted,
    encoded,
    lightgbm_params,
    start_fit,
)


@dataclass(frozen=True)
class ShapeFunction:
    """g_f of an additive model, centred on the training population (mean contribution 0).

    Numeric: `values[i]` applies to x in (edges[i-1], edges[i]] (values[-1] above the last
    edge). Categorical: `values[c]` applies to `categories[c]`. `missing_value` applies to NaN
    (and to unseen categories).
    """

    name: str
    categorical: bool
    edges: np.ndarray
    values: np.ndarray
    missing_value: float
    categories: list[str] | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Contribution of every (encoded) value x: categorical codes or numbers, NaN = missing."""
        x = np.asarray(x, dtype=float)
        nan = np.isnan(x)
        if self.categorical:
            idx = np.where(nan, 0, x).astype(np.int64)
            out = self.values[np.clip(idx, 0, len(self.values) - 1)]
        else:
            out = self.values[np.searchsorted(self.edges, x, side="left")]
        return np.where(nan, self.missing_value, out) if nan.any() else out

    def frame(self) -> pd.DataFrame:
        """Readable table: the value range (or category) and its contribution in log-odds."""
        if self.categorical:
            rows = [{"value": c, "contribution": v} for c, v in zip(self.categories or [], self.values, strict=False)]
        else:
            lo = [-np.inf, *self.edges.tolist()]
            hi = [*self.edges.tolist(), np.inf]
            rows = [{"x_low": a, "x_high": b, "contribution": v} for a, b, v in zip(lo, hi, self.values, strict=True)]
        rows.append({"value" if self.categorical else "x_low": "missing", "contribution": self.missing_value})
        return pd.DataFrame(rows)


class MonotoneGBM(RiskModelMixin, BaseEstimator):
    """LightGBM binary classifier with monotone constraints and an additive (depth-1) mode.

    monotone: feature → +1 / -1 / 0 (by name; DataFrame input) — passed to LightGBM's
    `monotone_constraints`. categorical_features: columns treated as categories (default: the
    non-numeric columns). main_effect_only: features that enter only as main effects — no tree
    combines one of them with any other feature (LightGBM `interaction_constraints`); names
    that are not columns of X are ignored, so one setting serves the general model (with
    `industry`) and a sector model (without it). The other parameters are LightGBM's.
    """

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        categorical_features: Sequence[str] | None = None,
        main_effect_only: Sequence[str] | None = None,
        additive: bool = True,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 20,
        reg_lambda: float = 0.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        max_bin: int = 255,
        cat_smooth: float = 10.0,
        random_state: int | None = 0,
        n_jobs: int = 1,
    ) -> None:
        self.monotone = monotone
        self.categorical_features = categorical_features
        self.main_effect_only = main_effect_only
        self.additive = additive
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.max_bin = max_bin
        self.cat_smooth = cat_smooth
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ encoding
    def _encode(self, X) -> np.ndarray:
        return encoded(self, X)

    # ------------------------------------------------------------------- fitting
    def fit(self, X, y, *, init_score: np.ndarray | None = None) -> MonotoneGBM:
        """Encode categories, train the booster; in additive mode, extract the shape functions.

        init_score: log-odds to boost from (e.g. a general model's); the fitted model's output
        is then what it adds to them (see `models.ontop.OnTopModel`).
        """
        import lightgbm as lgb

        if self.n_estimators < 1 or self.learning_rate <= 0:
            raise ValueError(f"n_estimators={self.n_estimators} must be ≥ 1 and learning_rate={self.learning_rate} > 0")
        frame, y_arr, monotone, init_score = start_fit(self, X, y, init_score)
        Xe = self._encode(frame)
        params = {
            **lightgbm_params(self, seed=self.random_state or 0),
            "bagging_fraction": self.subsample, "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "monotone_constraints": [int(monotone.get(c, 0)) for c in self.feature_names_in_],
            "num_leaves": 2 if self.additive else self.num_leaves, "max_depth": 1 if self.additive else -1,
            "max_cat_to_onehot": 8,
        }
        constraints = self._interaction_constraints()
        if constraints:
            params["interaction_constraints"] = constraints
        cat_idx = [j for j, c in enumerate(self.feature_names_in_) if c in self.categories_]
        data = lgb.Dataset(Xe, label=y_arr, init_score=init_score, categorical_feature=cat_idx or "auto",
                           feature_name=[f"f{j}" for j in range(Xe.shape[1])], free_raw_data=True)
        self.booster_ = lgb.train(params, data, num_boost_round=self.n_estimators)
        if self.additive:
            self.shape_functions_, self.base_value_ = self._extract_shapes()
        return self

    def _interaction_constraints(self) -> list[list[int]]:
        """[[j] for each main-effect-only feature] + [all other features], or [] (unconstrained)."""
        isolated = [j for j, c in enumerate(self.feature_names_in_) if c in set(self.main_effect_only or ())]
        if not isolated or self.additive:  # depth-1 trees combine nothing anyway
            return []
        rest = [j for j in range(self.n_features_in_) if j not in isolated]
        return [[j] for j in isolated] + ([rest] if rest else [])

    def _extract_shapes(self) -> tuple[list[ShapeFunction], float]:
        """Sum the depth-1 trees per feature into step functions, centred by training cover."""
        dump = self.booster_.dump_model()
        const = 0.0
        splits: dict[int, list[dict]] = {j: [] for j in range(self.n_features_in_)}
        for tree in dump["tree_info"]:
            node = tree["tree_structure"]
            if "split_feature" not in node:
                const += node.get("leaf_value", 0.0)
                continue
            left, right = node["left_child"], node["right_child"]
            if "split_feature" in left or "split_feature" in right:
                raise RuntimeError("additive mode expects depth-1 trees")
            splits[node["split_feature"]].append(node)
        shapes = []
        for j, name in enumerate(self.feature_names_in_):
            nodes = splits[j]
            expected = sum(
                (n["left_child"]["leaf_count"] * n["left_child"]["leaf_value"]
                 + n["right_child"]["leaf_count"] * n["right_child"]["leaf_value"])
                / max(n["left_child"]["leaf_count"] + n["right_child"]["leaf_count"], 1)
                for n in nodes
            )
            const += expected
            if name in self.categories_:
                k = len(self.categories_[name])
                values = np.zeros(max(k, 1))
                missing = 0.0
                for n in nodes:
                    lv, rv = n["left_child"]["leaf_value"], n["right_child"]["leaf_value"]
                    left_set = {int(v) for v in str(n["threshold"]).split("||")}
                    goes_left = np.array([c in left_set for c in range(len(values))])
                    values += np.where(goes_left, lv, rv)
                    # LightGBM: NaN goes right when the feature had NaN in training, else acts as code 0.
                    missing += rv if n["missing_type"] == "NaN" else (lv if 0 in left_set else rv)
                shapes.append(ShapeFunction(name, True, np.empty(0), values - expected, missing - expected,
                                            list(self.categories_[name])))
                continue
            edges = np.unique(np.array([float(n["threshold"]) for n in nodes], dtype=float))
            values = np.zeros(len(edges) + 1)
            missing = 0.0
            for n in nodes:
                if n["missing_type"] == "Zero":
                    raise RuntimeError("zero_as_missing is not supported by the shape-function lookup")
                lv, rv = n["left_child"]["leaf_value"], n["right_child"]["leaf_value"]
                t = float(n["threshold"])
                pos = int(np.searchsorted(edges, t))  # regions 0..pos satisfy x <= t
                values[: pos + 1] += lv
                values[pos + 1:] += rv
                if n["missing_type"] == "NaN":
                    missing += lv if n["default_left"] else rv
                else:  # no NaN seen in training: LightGBM treats NaN as 0.0
                    missing += lv if t >= 0.0 else rv
            shapes.append(ShapeFunction(name, False, edges, values - expected, missing - expected))
        return shapes, const

    # ---------------------------------------------------------------- prediction
    def decision_function(self, X) -> np.ndarray:
        """Log-odds of the adverse outcome (LightGBM raw score)."""
        check_is_fitted(self, "booster_")
        return self.booster_.predict(self._encode(X), raw_score=True, num_threads=self.n_jobs)

    def contributions(self, X, *, method: str = "auto") -> Contributions:
        """Exact per-feature log-odds contributions (sum + base value = decision_function).

        method="lookup" (additive mode only: shape functions, fast), "treeshap" (LightGBM
        pred_contrib), "auto" = lookup when additive.
        """
        check_is_fitted(self, "booster_")
        Xe = self._encode(X)
        if method == "auto":
            method = "lookup" if self.additive else "treeshap"
        if method == "lookup":
            if not self.additive:
                raise ValueError("method='lookup' needs additive=True (depth-1 trees)")
            values = np.empty_like(Xe)
            for j, shape in enumerate(self.shape_functions_):
                values[:, j] = shape(Xe[:, j])
            return Contributions(values, float(self.base_value_), list(self.feature_names_in_))
        if method != "treeshap":
            raise ValueError(f"method={method!r} must be 'auto', 'lookup' or 'treeshap'")
        out = self.booster_.predict(Xe, pred_contrib=True, num_threads=self.n_jobs)
        return Contributions(out[:, :-1], float(out[0, -1]) if len(out) else 0.0, list(self.feature_names_in_))

    def shape_functions(self) -> dict[str, ShapeFunction]:
        """Per-feature step functions of the additive model (log-odds, centred)."""
        check_is_fitted(self, "booster_")
        if not self.additive:
            raise ValueError("shape functions exist only in additive mode (additive=True)")
        return {s.name: s for s in self.shape_functions_}


def plot_shape_functions(shapes: Mapping[str, ShapeFunction] | Sequence[ShapeFunction], *, ncols: int = 3,
                         labels: Mapping[str, str] | None = None):
    """A matplotlib Figure with one panel per shape function (x → log-odds contribution)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    items = list(shapes.values()) if isinstance(shapes, Mapping) else list(shapes)
    nrows = max(1, -(-len(items) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3 * nrows), squeeze=False)
    for ax, shape in zip(axes.flat, items, strict=False):
        if shape.categorical:
            ax.bar(range(len(shape.values)), shape.values)
            ax.set_xticks(range(len(shape.values)), shape.categories or [], rotation=45, ha="right", fontsize=7)
        elif len(shape.edges):
            span = shape.edges[-1] - shape.edges[0] or 1.0
            xs = np.concatenate([[shape.edges[0] - 0.05 * span], shape.edges, [shape.edges[-1] + 0.05 * span]])
            ax.step(xs, np.concatenate([shape.values[:1], shape.values]), where="pre")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_title((labels or {}).get(shape.name, shape.name), fontsize=9)
        ax.set_ylabel("log-odds")
    for ax in list(axes.flat)[len(items):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig
