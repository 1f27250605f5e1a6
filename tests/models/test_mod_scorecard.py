"""Scorecard: points against a hand computation, exact scaling, readable table, missing/special bins."""

import math

import numpy as np
import pandas as pd
import pytest
from mod_fixtures import MONOTONE, fitted_models, make_credit_frame

from models import ScorecardModel


def _hand_bin(model: ScorecardModel, name: str, value) -> int:
    """Find the bin of one value by reading the fitted splits, without the model's own lookup."""
    fb = model.bins_[name]
    k = fb.n_regular
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return k + 1
    if fb.categorical:
        for b, group in enumerate(fb.groups):
            if str(value) in group:
                return b
        return k + 2
    if value in fb.special_codes:
        return k
    b = 0
    for split in fb.splits:  # bins are [a, b): a value equal to a split belongs to the bin on its right
        if value >= split:
            b += 1
    return b


def test_points_match_hand_computation_from_woe_and_coefficients():
    model = fitted_models()["scorecard"]
    X, _ = make_credit_frame(n=40, seed=5)
    pts = model.points(X)
    p = len(model.bins_)
    for i in range(len(X)):
        for j, name in enumerate(model.bins_):
            b = _hand_bin(model, name, X.iloc[i][name])
            woe = model.woe_[name][b]
            expected = -model.factor_ * (model.coef_[j] * woe + model.intercept_ / p) + model.offset_ / p
            assert pts.iloc[i][name] == pytest.approx(expected, abs=1e-9)


def test_sum_of_points_is_the_score_and_the_score_is_the_configured_scaling_of_log_odds():
    model = ScorecardModel(monotone=MONOTONE, base_score=500, base_odds=20, pdo=40).fit(*make_credit_frame(800, 1))
    X, _ = make_credit_frame(n=300, seed=2)
    score = model.score_points(X)
    assert np.allclose(model.points(X).sum(axis=1), score)
    log_odds_bad = model.decision_function(X)
    factor = 40 / math.log(2)
    assert np.allclose(score, 500 - factor * math.log(20) - factor * log_odds_bad)
    # pdo: 40 more points ⇔ twice the good:bad odds
    good_bad_odds = np.exp(-log_odds_bad)
    assert np.allclose(np.log2(good_bad_odds[0] / good_bad_odds[1:]), (score[0] - score[1:]) / 40)
    assert np.allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-log_odds_bad)))


def test_points_table_is_readable_and_consistent_with_the_bins():
    model = fitted_models()["scorecard"]
    table = model.points_table()
    assert list(table.columns) == ["feature", "bin", "count", "event_rate", "woe", "coef", "points"]
    assert set(table["feature"]) == set(model.feature_names_in_)
    for _name, block in table.groupby("feature"):
        assert {"Special", "Missing"} <= set(block["bin"])
        assert block["count"].sum() == 1500
    # arrears has missing values in training: they are counted in their own Missing bin, not dropped
    arrears = table[table["feature"] == "arrears_amount"].set_index("bin")
    assert arrears.loc["Missing", "count"] > 0
    text = model.points_table_text()
    assert "penalties_12m" in text and "Missing" in text
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(model.rich_table())
    assert "WoE" in console.export_text()


def test_declared_directions_shape_the_bins():
    model = fitted_models()["scorecard"]
    table = model.points_table()
    regular = table[~table["bin"].isin(["Special", "Missing", "Unknown"]) & (table["count"] > 0)]
    pen = regular[regular["feature"] == "penalties_12m"]["points"].to_numpy()
    years = regular[regular["feature"] == "years_registered"]["points"].to_numpy()
    assert np.all(np.diff(pen) <= 1e-9), "more penalties must never earn points"
    assert np.all(np.diff(years) >= -1e-9), "older firms must never lose points"


def test_special_codes_and_unseen_categories_get_their_own_bins():
    X, y = make_credit_frame(900, 3)
    X.loc[X.index[:60], "years_registered"] = -1.0  # -1 = "not reported" code, not an age
    model = ScorecardModel(monotone=MONOTONE, special_codes={"years_registered": [-1.0]}).fit(X, y)
    rows = model.points_table().set_index(["feature", "bin"])
    assert rows.loc[("years_registered", "Special"), "count"] == 60
    unseen = X.iloc[:1].assign(sector="Z")
    idx = model.bins_["sector"].index(unseen["sector"])
    assert model.bins_["sector"].labels[idx[0]] == "Unknown"
    assert model.woe_["sector"][idx[0]] == 0.0  # no evidence either way


def test_fit_refuses_bad_input_with_a_clear_message():
    X, y = make_credit_frame(200, 4)
    with pytest.raises(ValueError, match="0/1"):
        ScorecardModel().fit(X, np.where(y == 1, 2, 0))
    with pytest.raises(ValueError, match="categorical"):
        ScorecardModel(monotone={"sector": 1}).fit(X, y)
    with pytest.raises(ValueError, match="not columns"):
        ScorecardModel(monotone={"nope": 1}).fit(X, y)
    with pytest.raises(ValueError, match="missing the fitted feature"):
        fitted_models()["scorecard"].predict_proba(pd.DataFrame({"noise": [0.0]}))
