"""Monotonicity: more of a +1 feature (less of a -1 feature) never lowers the risk nor improves the grade."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from mod_fixtures import fitted_models, make_credit_frame

from models import Grader

FAMILIES = ["scorecard", "gbm", "gbm_deep", "blend", "calibrated"]


def _grader(model) -> Grader:
    X, _ = make_credit_frame(500, 11)
    return Grader().fit(model.predict_proba(X)[:, 1])


@settings(max_examples=40, deadline=None)
@given(
    family=st.sampled_from(FAMILIES),
    row=st.integers(0, 299),
    feature=st.sampled_from(["penalties_12m", "arrears_amount", "abnormal_listed", "years_registered"]),
    step=st.floats(0.0, 50_000.0, allow_nan=False),
)
def test_raising_a_risk_feature_never_lowers_probability_nor_improves_grade(family, row, feature, step):
    model = fitted_models()[family]
    grader = _grader(model)
    X, _ = make_credit_frame(300, 12)
    base = X.iloc[[row]].copy()
    if feature == "arrears_amount" and np.isnan(base[feature].iloc[0]):
        base[feature] = 0.0  # monotonicity is about amounts; "not reported" is its own bin
    worse = base.copy()
    # +1 features go up, the -1 feature (years since registration) goes down
    worse[feature] = worse[feature] - step if feature == "years_registered" else worse[feature] + step
    p0 = model.predict_proba(base)[0, 1]
    p1 = model.predict_proba(worse)[0, 1]
    assert p1 >= p0 - 1e-12
    assert grader.grade([p1], worse).codes[0] >= grader.grade([p0], base).codes[0]
