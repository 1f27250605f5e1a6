"""Glass-box GBM: shape-function lookup = pred_contrib = shap.TreeExplainer; plots; deep mode."""

import numpy as np
import pytest
from mod_fixtures import MONOTONE, fitted_models, make_credit_frame

from models import MonotoneGBM, plot_shape_functions


def test_additive_lookup_equals_treeshap_and_shap_on_the_raw_log_odds_scale():
    import shap

    model = fitted_models()["gbm"]
    X, _ = make_credit_frame(400, 7)
    lookup = model.contributions(X, method="lookup")
    treeshap = model.contributions(X, method="treeshap")
    assert np.allclose(lookup.values, treeshap.values, atol=1e-9)
    assert lookup.base_value == pytest.approx(treeshap.base_value, abs=1e-9)
    explainer = shap.TreeExplainer(model.booster_)
    reference = explainer.shap_values(model._encode(X))
    assert np.allclose(lookup.values, reference, atol=1e-6)
    assert np.allclose(lookup.total(), model.decision_function(X), atol=1e-9)


def test_deep_mode_contributions_are_treeshap_and_sum_to_the_output():
    import shap

    model = fitted_models()["gbm_deep"]
    X, _ = make_credit_frame(200, 8)
    c = model.contributions(X)
    assert np.allclose(c.total(), model.decision_function(X), atol=1e-9)
    reference = shap.TreeExplainer(model.booster_).shap_values(model._encode(X))
    assert np.allclose(c.values, reference, atol=1e-6)
    with pytest.raises(ValueError, match="additive"):
        model.contributions(X, method="lookup")


def test_lookup_handles_missing_values_and_unseen_categories_like_lightgbm():
    X, y = make_credit_frame(800, 9)
    X.loc[X.index[::9], "penalties_12m"] = np.nan
    model = MonotoneGBM(monotone=MONOTONE, n_estimators=80).fit(X, y)
    probe = X.iloc[:50].copy()
    probe.loc[probe.index[:10], "sector"] = "unseen"
    probe.loc[probe.index[10:20], "years_registered"] = np.nan  # no NaN in training for this one
    c = model.contributions(probe)
    assert np.allclose(c.total(), model.decision_function(probe), atol=1e-9)


def test_shape_functions_are_centred_monotone_and_plottable():
    from matplotlib.figure import Figure

    model = fitted_models()["gbm"]
    X, _ = make_credit_frame()
    shapes = model.shape_functions()
    assert set(shapes) == set(model.feature_names_in_)
    enc = model._encode(X)
    for j, name in enumerate(model.feature_names_in_):
        assert shapes[name](enc[:, j]).mean() == pytest.approx(0.0, abs=1e-9)  # centred on training data
    assert np.all(np.diff(shapes["penalties_12m"].values) >= -1e-12)
    assert np.all(np.diff(shapes["years_registered"].values) <= 1e-12)
    table = shapes["sector"].frame()
    assert "missing" in table["value"].tolist()
    fig = plot_shape_functions(shapes, labels={"penalties_12m": "penalties"})
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.get_visible()]) == len(shapes)


def _sector_gap(model: MonotoneGBM, X, a: str, b: str) -> np.ndarray:
    """Log-odds of every row placed in sector a minus the same row placed in sector b."""
    return model.decision_function(X.assign(sector=a)) - model.decision_function(X.assign(sector=b))


def test_main_effect_only_feature_never_interacts_so_its_effect_is_the_same_shift_for_every_row():
    X, y = make_credit_frame(3000, 11)
    # Plant a sector-specific driver: arrears matter only in sector F (what a sector model is for).
    rng = np.random.default_rng(11)
    logit = -1.5 + np.where(X["sector"] == "F", 0.0002 * np.nan_to_num(X["arrears_amount"], nan=0.0), 0.0)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = dict(monotone=MONOTONE, additive=False, n_estimators=120, num_leaves=4, min_child_samples=30)
    constrained = MonotoneGBM(main_effect_only=["sector", "not_a_column"], **params).fit(X, y)
    free = MonotoneGBM(**params).fit(X, y)
    probe = X.iloc[:300]
    gap = _sector_gap(constrained, probe, "F", "C")
    assert np.ptp(gap) < 1e-9  # a pure main effect: one shift, whatever the other features
    assert np.ptp(_sector_gap(free, probe, "F", "C")) > 0.1  # the unconstrained trees learn sector × arrears
    for tree in constrained.booster_.dump_model()["tree_info"]:
        used, stack = set(), [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                used.add(node["split_feature"])
                stack += [node["left_child"], node["right_child"]]
        assert 4 not in used or used == {4}  # column 4 is `sector`
    c = constrained.contributions(probe)
    assert np.allclose(c.total(), constrained.decision_function(probe), atol=1e-9)


def test_on_top_model_boosts_the_sector_residual_from_the_general_log_odds():
    from models import OnTopModel
    from models.calibration import brier_score

    X, _ = make_credit_frame(4000, 12)
    rng = np.random.default_rng(12)
    arrears = np.nan_to_num(X["arrears_amount"], nan=0.0)
    logit = -1.6 + 0.8 * X["penalties_12m"] + np.where(X["sector"] == "F", 0.0003 * arrears, 0.0)
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    general = MonotoneGBM(monotone=MONOTONE, main_effect_only=["sector"], additive=False, n_estimators=80,
                          num_leaves=4).fit(X, y)
    in_f = (X["sector"] == "F").to_numpy()
    sector_cols = [c for c in X.columns if c != "sector"]
    fit, test = np.flatnonzero(in_f)[::2], np.flatnonzero(in_f)[1::2]
    model = OnTopModel(base=general, delta=MonotoneGBM(monotone=MONOTONE, n_estimators=60),
                       delta_features=sector_cols).fit(X.iloc[fit], y[fit])
    xt = X.iloc[test]
    assert np.allclose(model.decision_function(xt),
                       general.decision_function(xt) + model.delta_.decision_function(xt[sector_cols]), atol=1e-12)
    c = model.contributions(xt)
    assert c.feature_names == list(X.columns)
    assert np.allclose(c.total(), model.decision_function(xt), atol=1e-9)
    # the residual learns F's own arrears effect, which the general model could not give F alone
    assert brier_score(y[test], model.predict_proba(xt)[:, 1]) < brier_score(y[test], general.predict_proba(xt)[:, 1])
    with pytest.raises(ValueError, match="lacks columns"):
        OnTopModel(base=general, delta=MonotoneGBM(), delta_features=sector_cols).fit(X.iloc[fit, :3], y[fit])
