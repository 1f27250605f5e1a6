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
