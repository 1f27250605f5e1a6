"""Training pipeline on a small synthetic dataset: windows, choice, calibration, sectors, determinism."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
from trn_synthetic import TRAIN_AS_OF, VALIDATE_AS_OF

from training import evaluation as ev
from training.bundle import model_matrix
from training.pipeline import TrainingConfig, train_model
from training.sector_policy import TrainingPolicy

pytestmark = pytest.mark.xdist_group("trn_pipeline")  # the module's general model is trained once
FAST = TrainingConfig(train_as_of=TRAIN_AS_OF, validate_as_of=VALIDATE_AS_OF, candidates=("gbm_additive",),
                      min_sector_positives=200, n_boot=50)


@pytest.fixture(scope="module")
def general(synthetic_dataset, feature_metas):
    return train_model(synthetic_dataset, feature_metas, config=FAST)


def test_label_windows_may_not_overlap_validation() -> None:
    config = replace(FAST, validate_as_of=date(2024, 3, 31))  # last train 2023-06-30 + 12 m > 2024-03-31
    with pytest.raises(ValueError, match="labels would overlap"):
        config.check()


def test_general_model_ranks_and_grades_out_of_time(general) -> None:
    val = general.validation
    assert set(val["as_of"]) == {VALIDATE_AS_OF}
    auc = ev.auc(val["label"], val["p_adverse_12m"])
    oracle = ev.auc(val["label"], val["p_true"])
    assert auc > 0.9 * oracle
    table = ev.grade_table(val["label"], val["grade"])
    assert ev.grades_monotone(table, strict=True)
    assert general.report.content["grades"]["monotone"] is True


def test_calibration_brings_mean_prediction_near_observed_rate(general) -> None:
    cal = general.report.content["calibration"]
    assert abs(cal["mean_predicted"] - cal["observed_rate"]) < 0.03
    assert cal["ece"] < 0.05


def test_grade_shares_follow_target_shares_on_the_cutoff_population(general, synthetic_dataset) -> None:
    latest = synthetic_dataset.loc[synthetic_dataset["as_of"] == max(TRAIN_AS_OF)]
    shares = pd.Series(general.model.predict(latest)).value_counts(normalize=True)
    for grade, target in general.policy.target_shares.items():
        assert abs(shares.get(grade, 0.0) - target) < 0.02


def test_declared_monotone_directions_hold_in_the_fitted_model(general) -> None:
    checks = general.report.content["monotonicity"]
    assert checks and all(c["ok"] for c in checks)


def test_report_has_every_section_in_both_languages(general) -> None:
    content = general.report.content
    for key in ("discrimination", "calibration", "grades", "stability", "monotonicity", "fairness", "champion_comparison"):
        assert key in content
    html = general.report.html
    for heading in ("区分能力 / Discrimination", "校准 / Calibration", "等级表 / Grade table",
                    "稳定性 / Stability", "过惩相当与公平性 / Proportionality and fairness"):
        assert heading in html
    assert {d["dimension"] for d in content["fairness"]} >= {"size_band", "district_code", "thin_file"}


def test_same_data_and_seed_give_identical_model_and_report(general, synthetic_dataset, feature_metas) -> None:
    again = train_model(synthetic_dataset.sample(frac=1.0, random_state=3), feature_metas, config=FAST)
    assert again.report.sha256 == general.report.sha256
    assert again.data_hash == general.data_hash
    np.testing.assert_array_equal(again.model.predict_proba(general.validation), general.model.predict_proba(general.validation))


def test_different_seed_changes_the_report_hash(general, synthetic_dataset, feature_metas) -> None:
    other = train_model(synthetic_dataset, feature_metas, config=replace(FAST, seed=7))
    assert other.report.sha256 != general.report.sha256


def test_sector_model_beats_general_model_on_planted_sector(general, synthetic_dataset, feature_metas) -> None:
    from models.ontop import OnTopModel

    sector = train_model(synthetic_dataset, feature_metas, config=FAST, sector="H", general=general.model)
    assert sector.model.kind == "sector" and "在通用模型基础上" in sector.notes[0]
    val = sector.validation
    diff = ev.paired_auc_difference(val["label"], val["p_adverse_12m"], general.model.predict_proba(val)[:, 1],
                                    n_boot=100, seed=0)
    assert diff.value > 0 and diff.low > -0.005
    raw = sector.model.estimator.estimator_
    assert isinstance(raw, OnTopModel) and raw.base is general.model.estimator.estimator_
    x = val.loc[:, list(sector.model.features)]
    assert np.allclose(raw.contributions(x).total(), raw.decision_function(x), atol=1e-9)
    alone = train_model(synthetic_dataset, feature_metas, config=replace(FAST, sector_on_general=False), sector="H",
                        general=general.model)
    assert not alone.notes and not isinstance(alone.model.estimator.estimator_, OnTopModel)


def test_sector_below_minimum_falls_back_to_recalibrated_general(general, synthetic_dataset, feature_metas) -> None:
    sector = train_model(synthetic_dataset, feature_metas, config=FAST, sector="C", general=general.model)
    assert sector.model.kind == "general_recalibrated"
    assert "recalibrated" in sector.notes[0] and "重新校准" in sector.notes[0]
    assert "below the minimum 200" in sector.report.html and "重新校准" in sector.report.html
    # the ranking is the general model's: same order of raw scores on the sector's subjects
    val = sector.validation
    np.testing.assert_allclose(sector.model.raw_proba(val), general.model.raw_proba(val))


def test_fallback_without_general_model_is_refused(synthetic_dataset, feature_metas) -> None:
    with pytest.raises(ValueError, match="no general model"):
        train_model(synthetic_dataset, feature_metas, config=FAST, sector="C")


def test_policy_exclusions_and_direct_grading_apply(synthetic_dataset, feature_metas) -> None:
    policy = TrainingPolicy(
        exclude_features=("complaints",),
        direct_grading=[{"rule_id": "abnormal", "column": "abnormal_list", "op": ">", "value": 0, "grade": "D",
                         "reason_zh": "列入经营异常名录"}],
    )
    result = train_model(synthetic_dataset, feature_metas, config=FAST, policy=policy)
    assert "complaints" not in result.model.features
    val = result.validation
    assert (val.loc[val["abnormal_list"] > 0, "grade"] == "D").all()
    reasons = result.model.reasons(val.loc[val["abnormal_list"] > 0].head(3))
    assert all(r[0]["override"] and r[0]["code"] == "abnormal" for r in reasons)


def test_unknown_excluded_feature_is_refused(synthetic_dataset, feature_metas) -> None:
    with pytest.raises(ValueError, match="not features"):
        train_model(synthetic_dataset, feature_metas, config=FAST, policy=TrainingPolicy(exclude_features=("nope",)))



def test_general_interaction_candidate_keeps_sector_out_of_every_interaction(synthetic_dataset, feature_metas) -> None:
    """通用＋专用: the general model shifts a sector's risk but leaves sector-specific shapes to the
    sector model (the behaviour itself is tested in tests/models/test_mod_gbm.py)."""
    from models.meta import FeatureMeta
    from training.bundle import model_matrix
    from training.candidates import CANDIDATES

    feature_metas = (*feature_metas, FeatureMeta("industry", "行业门类", "industry section", categorical=True))
    names = [m.name for m in feature_metas]
    rows = synthetic_dataset.loc[pd.to_datetime(synthetic_dataset["as_of"]).dt.date.isin(TRAIN_AS_OF).to_numpy()]
    x = model_matrix(rows, names, feature_metas)
    model = CANDIDATES["gbm"]({m.name: m.monotone for m in feature_metas}, 0).fit(x, rows["label"].to_numpy())
    j = names.index("industry")
    groups = [g for g in model._interaction_constraints() if j in g]
    assert groups == [[j]]
    probe = x.iloc[:400]
    gap = model.decision_function(probe.assign(industry="H")) - model.decision_function(probe.assign(industry="C"))
    assert np.ptp(gap) < 1e-9
    # a sector model has no `industry` column: the same candidate then runs unconstrained
    sector_model = CANDIDATES["gbm"]({}, 0).fit(x.drop(columns="industry"), rows["label"].to_numpy())
    assert sector_model._interaction_constraints() == []


def test_a_model_with_interactions_must_beat_the_best_additive_one_by_the_margin():
    from training.pipeline import _select

    config = TrainingConfig(train_as_of=(date(2022, 9, 30),), validate_as_of=date(2024, 9, 30),
                            interaction_margin_auc=0.005)
    notes: list[str] = []
    close = {"scorecard": {"oot_auc": 0.720}, "gbm_additive": {"oot_auc": 0.724}, "gbm": {"oot_auc": 0.728}}
    assert _select(config, close, notes, None) == "gbm_additive" and "margin" in notes[-1]
    clear = {**close, "gbm": {"oot_auc": 0.730}}
    assert _select(config, clear, [], "C") == "gbm"
    tie = {"scorecard": {"oot_auc": 0.73}, "gbm_additive": {"oot_auc": 0.73}, "gbm": {"oot_auc": 0.70}}
    assert _select(config, tie, [], None) == "scorecard"  # ties go to the earlier, simpler candidate


def test_the_gam_candidate_trains_general_and_sector_models_with_exact_reasons(synthetic_dataset, feature_metas):
    from models.ontop import OnTopModel

    config = replace(FAST, candidates=("gbm_additive", "gam"))
    general = train_model(synthetic_dataset, feature_metas, config=config)
    assert set(general.candidate_metrics) == {"gbm_additive", "gam"}
    forced = train_model(synthetic_dataset, feature_metas, config=replace(FAST, candidates=("gam",)))
    sector = train_model(synthetic_dataset, feature_metas, config=replace(FAST, candidates=("gam",)), sector="H",
                         general=forced.model)
    assert forced.model.candidate == sector.model.candidate == "gam"
    assert isinstance(sector.model.estimator.estimator_, OnTopModel)
    for result in (forced, sector):
        val = result.validation.head(300)
        contrib = result.model.contributions(val)
        z = result.model.estimator.decision_function(model_matrix(val, result.model.features, result.model.metas))
        base = result.model.estimator.contributions(model_matrix(val, result.model.features,
                                                                 result.model.metas)).base_value
        assert np.allclose(contrib.sum(axis=1).to_numpy() + base, z, atol=1e-9)  # features + declared pairs
        reasons = result.model.reasons(val.head(20), top=5)
        assert all(r["label_zh"] for rows in reasons for r in rows)
    gam = forced.model.estimator.estimator_
    assert gam.main_effect_only == ("industry",)  # the sector, where it is a feature, enters alone
