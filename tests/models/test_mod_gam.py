"""BoostedGAM: exact per-feature + declared-pair contributions, FAST pairs, monotone, purified."""

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mod_fixtures import METAS, MONOTONE, make_credit_frame
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from models import BoostedGAM, Grader, explain_bulk, plot_shape_functions
from models.base import encode_columns
from models.calibration import cross_fitted_platt_brier, platt_coefficients


def interaction_frame(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Risk with a planted interaction: arrears raise the risk in sectors F and G only (arrears
    are declared monotone, so never lower it); penalties add alone."""
    X, _ = make_credit_frame(n, seed)
    rng = np.random.default_rng(seed + 100)
    arrears = np.nan_to_num(X["arrears_amount"].to_numpy(), nan=0.0) > 0
    logit = -2.0 + 0.7 * X["penalties_12m"].to_numpy() + np.where(X["sector"].isin(["F", "G"]), 2.5, 0.0) * arrears
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@functools.cache
def fitted() -> tuple[BoostedGAM, list]:
    """One fitted model, and the boosters it was read from (captured for the exactness test)."""
    captured = []
    original = BoostedGAM._read_tables

    def capture(self, Xe, mains, inter, pairs, local, *args):
        captured.append((mains, inter, local))
        return original(self, Xe, mains, inter, pairs, local, *args)

    BoostedGAM._read_tables = capture
    try:
        X, y = interaction_frame()
        X.loc[X.index[::7], "arrears_amount"] = np.nan
        model = BoostedGAM(monotone=MONOTONE, interactions=4, n_bags=3, main_effect_only=["noise"]).fit(X, y)
    finally:
        BoostedGAM._read_tables = original
    return model, captured[0]


def probe_frame(n: int = 600, seed: int = 5) -> pd.DataFrame:
    X, _ = make_credit_frame(n, seed)
    X.loc[X.index[::5], "arrears_amount"] = np.nan
    X.loc[X.index[::11], "sector"] = "unseen"
    X.loc[X.index[::13], "sector"] = None
    X.loc[X.index[::17], "years_registered"] = np.nan  # never missing in training
    return X


def test_score_is_the_exact_sum_of_feature_and_declared_pair_contributions():
    model, (mains, inter, local) = fitted()
    X = probe_frame()
    c = model.contributions(X)
    assert c.values.shape == (len(X), X.shape[1])
    assert c.pair_values.shape == (len(X), len(model.pairs_)) and c.pairs == [
        (model.feature_names_in_[a], model.feature_names_in_[b]) for a, b in model.pairs_]
    assert np.array_equal(c.total(), model.decision_function(X))
    # the lookup tables are the boosters themselves, missing values and unseen categories included
    Xe = encode_columns(X, model.feature_names_in_, model.categories_)
    f_mains = np.mean([b.predict(Xe, raw_score=True, num_iteration=k) for b, k in mains], axis=0)
    f_pairs = np.mean([b.predict(Xe[:, local], raw_score=True, num_iteration=k) for b, k in inter], axis=0)
    cal = model.calibration_ or {"mains": 1.0, "pairs": 1.0, "intercept": 0.0}  # the map folded in
    assert np.allclose(c.total(), cal["mains"] * f_mains + cal["pairs"] * f_pairs + cal["intercept"], atol=1e-9)


@functools.cache
def raw_and_platt() -> tuple[BoostedGAM, BoostedGAM]:
    """The same fit (same bags, same boosters) without and with the Platt map."""
    X, y = interaction_frame(3000, 1)
    kw = {"monotone": MONOTONE, "interactions": 4, "n_bags": 3, "random_state": 2}
    return BoostedGAM(calibration=None, **kw).fit(X, y), BoostedGAM(calibration="platt", **kw).fit(X, y)


def test_platt_map_keeps_the_ranking_and_the_exact_sum_of_contributions():
    raw, platt = raw_and_platt()
    a, b = platt.calibration_["mains"], platt.calibration_["intercept"]
    assert a > 0 and platt.calibration_["pairs"] == a and raw.calibration_ is None
    X, y = interaction_frame(2000, 4)
    z_raw, z = raw.decision_function(X), platt.decision_function(X)
    assert np.allclose(z, a * z_raw + b, atol=1e-9)
    # the same order: only float rounding may split scores that were exactly tied (≈ 1e-16)
    assert np.all(np.diff(z[np.argsort(z_raw, kind="stable")]) >= -1e-9)
    assert roc_auc_score(y, z) == pytest.approx(roc_auc_score(y, z_raw), abs=1e-4)
    c = platt.contributions(probe_frame())
    assert np.array_equal(c.total(), platt.decision_function(probe_frame()))
    c_raw = raw.contributions(probe_frame())
    assert np.allclose(c.values, a * c_raw.values) and np.allclose(c.pair_values, a * c_raw.pair_values)
    # shapes scale with a > 0: still monotone in the declared directions, still centred
    for name, shape in platt.shape_functions().items():
        assert np.allclose(shape.values, a * raw.shape_functions()[name].values)


def test_calibration_is_fitted_on_out_of_bag_log_odds_only():
    model, (mains, inter, local) = fitted()
    X, y = interaction_frame()
    X.loc[X.index[::7], "arrears_amount"] = np.nan
    Xe = encode_columns(X, model.feature_names_in_, model.categories_)
    bags = model._bags(y)  # seeded: the bags the fit used
    total, count = np.zeros((len(y), 2)), np.zeros(len(y))
    for (tr, _stop, va), (bm, km), (bi, ki) in zip(bags, mains, inter, strict=True):
        assert not np.isin(va, tr).any()
        total[va, 0] += bm.predict(Xe[va], raw_score=True, num_iteration=km)
        total[va, 1] += bi.predict(Xe[va][:, local], raw_score=True, num_iteration=ki)
        count[va] += 1
    held = count > 0
    # every row's calibration scores come from bags that neither trained nor stopped on it; the
    # others are NaN (3 bags holding out half of 15 % each: about 1 − 0.925³ ≈ 21 % of the rows)
    oob = model.oob_log_odds_
    assert np.array_equal(np.isnan(oob).any(axis=1), ~held) and held.mean() > 0.15
    assert np.allclose(oob[held], total[held] / count[held, None], atol=1e-9)
    # "auto" compared Briers cross-fitted on those rows alone; the kept map is the lowest
    z = oob[held].sum(axis=1)
    folds = StratifiedKFold(5, shuffle=True, random_state=model.random_state).split(z[:, None], y[held])
    raw, platt = cross_fitted_platt_brier(z, y[held], folds)
    if model.calibration_ is not None:
        briers = model.calibration_["brier"]
        assert (briers["raw"], briers["platt"]) == (raw, platt)
        assert briers[model.calibration_["kind"]] < raw
        if model.calibration_["kind"] == "platt":
            a, b = platt_coefficients(z, y[held])
            assert (model.calibration_["mains"], model.calibration_["intercept"]) == (a, b)


def test_each_bag_stops_on_rows_it_neither_trains_on_nor_scores_out_of_bag():
    """Early stopping picks the round that fits its rows best: scored on those same rows the
    out-of-bag log-odds would flatter the bag, and the map fitted on them would be off."""
    import lightgbm as lgb

    model, (mains, _inter, _local) = fitted()
    X, y = interaction_frame()
    X.loc[X.index[::7], "arrears_amount"] = np.nan
    bags = model._bags(y)
    assert len(bags) == 3
    for tr, stop, oob in bags:
        assert len(stop) and len(oob) and len(np.intersect1d(stop, oob)) == 0
        assert not np.isin(stop, tr).any() and not np.isin(oob, tr).any()
        assert len(np.union1d(np.union1d(tr, stop), oob)) == len(y)
        for rows in (stop, oob):  # both classes in each (stratified)
            assert 0 < y[rows].mean() < 1
    # the rounds kept are those early stopping chose on the stop rows (mains of the first bag)
    Xe = encode_columns(X, model.feature_names_in_, model.categories_)
    cat_idx = [j for j, n in enumerate(model.feature_names_in_) if n in model.categories_]
    mono = [int(MONOTONE.get(n, 0)) for n in model.feature_names_in_]
    params = model._params(leaves=model.num_leaves, max_bin=model.max_bin, monotone=mono,
                           groups=[[j] for j in range(Xe.shape[1])], seed=0)
    data = lgb.Dataset(Xe, label=y, categorical_feature=cat_idx, free_raw_data=False, params=params)
    tr, stop, _oob = bags[0]
    booster = lgb.train(params, data.subset(tr).construct(), num_boost_round=model.max_rounds,
                        valid_sets=[data.subset(stop).construct()],
                        callbacks=[lgb.early_stopping(model.early_stopping_rounds, verbose=False)])
    assert mains[0][1] == max(booster.best_iteration, 1)


def test_a_map_kept_on_out_of_bag_rows_lowers_the_brier_of_fresh_data():
    # the planted pair is under-fitted by the pair boosting (its slope ≈ 2.5): the two-slope map
    X, y = interaction_frame(6000, 1)
    kw = {"monotone": MONOTONE, "interactions": 4, "n_bags": 3, "random_state": 2}
    raw, auto = BoostedGAM(calibration=None, **kw).fit(X, y), BoostedGAM(**kw).fit(X, y)
    briers = auto.calibration_["brier"]
    assert briers[auto.calibration_["kind"]] < briers["raw"]
    Xt, yt = interaction_frame(4000, 9)
    assert np.array_equal(auto.contributions(Xt).total(), auto.decision_function(Xt))
    p_raw, p = raw.predict_proba(Xt)[:, 1], auto.predict_proba(Xt)[:, 1]
    assert np.mean((p - yt) ** 2) < np.mean((p_raw - yt) ** 2)
    # boosting on top of another model's log-odds: never rescaled (a would rescale those too)
    on_top = BoostedGAM(interactions=0, n_bags=2, calibration="platt").fit(X, y, init_score=np.full(len(y), 0.5))
    assert on_top.calibration_ is None


@settings(max_examples=40, deadline=None)
@given(row=st.integers(0, 599), a=st.integers(0, 5), b=st.integers(0, 5), other=st.integers(0, 599))
def test_features_outside_a_declared_pair_never_interact(row, a, b, other):
    model, _ = fitted()
    if a == b or (min(a, b), max(a, b)) in model.pairs_:
        return
    X = probe_frame()
    base, donor = X.iloc[[row]], X.iloc[[other]]

    def with_(*cols):
        out = base.copy()
        for j in cols:
            out.iloc[0, j] = donor.iloc[0, j]
        return model.decision_function(out)[0]

    # f(a', b') − f(a', b) − f(a, b') + f(a, b) = 0 for an additive pair of features
    assert with_(a, b) - with_(a) - with_(b) + with_() == pytest.approx(0.0, abs=1e-9)


def test_fast_finds_the_planted_pair_and_it_pays():
    model, _ = fitted()
    names = list(model.feature_names_in_)
    pair = (names.index("arrears_amount"), names.index("sector"))
    assert pair in model.pairs_
    assert all(names.index("noise") not in p for p in model.pairs_)  # main_effect_only
    from sklearn.metrics import roc_auc_score

    X, y = interaction_frame(4000, 1)
    additive = BoostedGAM(monotone=MONOTONE, interactions=0, n_bags=3).fit(*interaction_frame())
    assert roc_auc_score(y, model.decision_function(X)) > roc_auc_score(y, additive.decision_function(X)) + 0.005


def test_pairs_are_purified_and_mains_centred_on_the_training_population():
    model, _ = fitted()
    X, _ = interaction_frame()
    X.loc[X.index[::7], "arrears_amount"] = np.nan
    c = model.contributions(X)
    assert np.allclose(c.values.mean(axis=0), 0.0, atol=1e-9)
    for k, (fn, table) in enumerate(zip(model.pair_functions().values(), model.pair_tables_, strict=True)):
        assert fn.frame().shape == table.shape
        a, b = model.pairs_[k]
        ma, mb = model.pair_maps_[k]
        idx = model._regions_of(X)
        wa = np.bincount(ma[idx[:, a]], minlength=table.shape[0]) / len(X)
        wb = np.bincount(mb[idx[:, b]], minlength=table.shape[1]) / len(X)
        assert np.allclose(table @ wb, 0.0, atol=1e-9) and np.allclose(wa @ table, 0.0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(row=st.integers(0, 599), step=st.floats(0.1, 20.0))
def test_score_and_main_shapes_respect_the_declared_directions(row, step):
    model, _ = fitted()
    X = probe_frame().iloc[[row]]
    for name, direction in MONOTONE.items():
        if pd.isna(X[name].iloc[0]):
            continue
        moved = X.copy()
        moved[name] = X[name] + step
        delta = model.decision_function(moved)[0] - model.decision_function(X)[0]
        assert direction * delta >= -1e-9, name
    shapes = model.shape_functions()
    assert np.all(np.diff(shapes["penalties_12m"].values) >= -1e-12)
    assert np.all(np.diff(shapes["years_registered"].values) <= 1e-12)
    import matplotlib.pyplot as plt

    plt.close(plot_shape_functions(shapes))


def test_on_top_of_a_general_log_odds_it_learns_only_the_difference():
    X, y = interaction_frame(3000, 2)
    offset = np.full(len(y), 1.5)
    on_top = BoostedGAM(interactions=0, n_bags=2).fit(X, y, init_score=offset)
    plain = BoostedGAM(interactions=0, n_bags=2).fit(X, y)
    # starting 1.5 too high, the delta's level is ≈ 1.5 lower; the shapes agree
    assert on_top.intercept_ == pytest.approx(plain.intercept_ - 1.5, abs=0.2)
    with pytest.raises(ValueError, match="init_score"):
        BoostedGAM(n_bags=1).fit(X, y, init_score=offset[:10])


def test_bad_parameters_and_categorical_monotone_are_refused():
    X, y = make_credit_frame(300, 3)
    with pytest.raises(ValueError, match="learning_rate"):
        BoostedGAM(learning_rate=0).fit(X, y)
    with pytest.raises(ValueError, match="categorical"):
        BoostedGAM(monotone={"sector": 1}).fit(X, y)
    with pytest.raises(ValueError, match="not columns"):
        BoostedGAM(monotone={"nope": 1}).fit(X, y)


def test_a_reason_from_a_pair_names_both_features_in_chinese_and_english():
    model, _ = fitted()
    X, _ = interaction_frame(2000, 3)
    grader = Grader().fit(model.predict_proba(X)[:, 1])
    bulk = explain_bulk(model, grader, X, k=5)
    p = X.shape[1]
    hits = np.flatnonzero((bulk.top_index >= p).any(axis=1))
    assert len(hits) > 0, "no subject has a pair among its top reasons"
    i = int(hits[0])
    metas = {m.name: m for m in METAS}
    reasons = bulk.reasons(i, X.iloc[i].to_dict(), metas=METAS,
                           evidence={"arrears_amount": [{"record_id": "R1", "kind": "arrears"}],
                                     "sector": [{"record_id": "R2", "kind": "registration"}]})
    pair_reasons = [r for r in reasons if r.kind == "pair"]
    assert pair_reasons
    r = pair_reasons[0]
    a, b = r.code.split("*")
    assert metas[a].label_zh in r.text_zh and metas[b].label_zh in r.text_zh
    assert metas[a].label_en in r.text_en and metas[b].label_en in r.text_en
    assert "提高了信用风险" in r.text_zh and "raises" in r.text_en
    if {a, b} == {"arrears_amount", "sector"}:
        assert {e.record_id for e in r.evidence} == {"R1", "R2"}


def test_a_region_next_to_zero_is_read_where_lightgbm_reads_it():
    """LightGBM cuts a feature that crosses zero at ±1e-35 and reads any |x| ≤ 1e-35 as 0: a
    region's representative must sit strictly inside it, or the table holds its neighbour's value
    (the sign of a small balance change, an income trend near flat)."""
    import lightgbm as lgb

    from models.gam import _regions, _representatives, _tree_splits

    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 1, 3000), np.zeros(300), -rng.uniform(0, 1e-3, 300)]
    y = ((x < 0) ^ (rng.random(len(x)) < 0.2)).astype(float)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 2, "min_data_in_leaf": 5,
                         "deterministic": True, "seed": 0}, lgb.Dataset(x[:, None], label=y), num_boost_round=30)
    edges = np.unique([t for tree in _tree_splits(booster, 30) for _, t in tree])
    assert np.any(np.abs(edges) < 1e-30)  # the zero cuts are there
    reps = _representatives(edges, None)
    probe = np.r_[x, edges, -1e-35, 1e-35, -1e-36, 0.0, np.nan]
    region = _regions(probe, edges, None)
    assert np.array_equal(_regions(reps, edges, None), np.arange(len(reps)))  # one inside each region
    at_rep = booster.predict(reps[:, None], raw_score=True)[region]
    assert np.allclose(booster.predict(probe[:, None], raw_score=True), at_rep, atol=1e-12)


def test_a_map_is_kept_only_when_clearly_better_than_the_raw_scores():
    """Out-of-bag rows are few (each bag keeps 7.5 % of the rows out of bag) and scored by one
    bag each, noisier than the average the map is applied to: a Platt map on any cross-fitted
    gain shrinks a well-calibrated model as often as it mends one, so every map needs the same
    clear (one standard error) gain over the raw scores."""
    from models.calibration import clearly_lower, cross_fitted_platt

    model = BoostedGAM(random_state=0)
    kept = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        z = rng.normal(-1.5, 1.2, 800)  # well-calibrated scores: σ(z) is the true risk
        y = (rng.random(800) < 1 / (1 + np.exp(-z))).astype(int)
        model.oob_log_odds_ = np.column_stack([z, np.zeros_like(z)])
        model.pairs_ = []
        model._parts = ([np.zeros(2)], 0.0, [np.zeros(2)], 0.0, [])
        model.calibration_ = None  # as fit leaves it before calibrating
        model._calibrate(y)
        folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(z[:, None], y))
        raw = (1 / (1 + np.exp(-z)) - y) ** 2
        platt = (cross_fitted_platt(z, y, folds) - y) ** 2
        assert (model.calibration_ is not None) == clearly_lower(platt, raw)
        kept += model.calibration_ is not None
    assert kept <= 3  # scores already calibrated: rarely a clear gain
