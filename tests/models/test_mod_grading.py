"""Grading: policy cut-offs and direct-grading overrides that always win."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import Grader, OverrideRule

SERIOUS = OverrideRule("serious_dishonesty", "on_serious_list", "truthy", grade="D",
                       reason_zh="列入严重失信主体名单，直接判为D级", reason_en="on the serious dishonesty list: graded D")
ABNORMAL = OverrideRule("abnormal_operation", "on_abnormal_list", "truthy", min_grade="C",
                        reason_zh="列入经营异常名录，至少为C级", reason_en="on the abnormal-operation list: at least C")


def test_share_policy_reproduces_the_target_shares_on_the_reference():
    p = np.random.default_rng(0).beta(1, 8, 100_000)
    grader = Grader(shares={"A": 0.654, "B": 0.253, "C": 0.077, "D": 0.016}).fit(p)
    shares = pd.Series(grader.predict(p)).value_counts(normalize=True)
    for g, target in {"A": 0.654, "B": 0.253, "C": 0.077, "D": 0.016}.items():
        assert shares[g] == pytest.approx(target, abs=0.002)
    assert np.all(np.diff(grader.cutoffs_) >= 0)


def test_band_policy_uses_the_fixed_probabilities():
    grader = Grader(policy="bands", bands=[0.05, 0.2, 0.6]).fit()
    assert list(grader.predict([0.01, 0.05, 0.1, 0.3, 0.9])) == ["A", "A", "B", "C", "D"]
    with pytest.raises(ValueError, match="bands"):
        Grader(policy="bands", bands=[0.3, 0.2, 0.6]).fit()
    with pytest.raises(ValueError, match="sum to 1"):
        Grader(shares={"A": 0.5, "B": 0.2, "C": 0.1, "D": 0.1}).fit([0.1, 0.2])


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30),
    data=st.data(),
)
def test_overrides_always_win(p, data):
    n = len(p)
    serious = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    abnormal = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    profile = pd.DataFrame({"on_serious_list": serious, "on_abnormal_list": abnormal})
    grader = Grader(policy="bands", bands=[0.1, 0.3, 0.6], overrides=[ABNORMAL, SERIOUS]).fit()
    result = grader.grade(p, profile)
    for i in range(n):
        if serious[i]:
            assert result.grades[i] == "D"
            assert result.overrides_for(i)[0].rule_id == "serious_dishonesty"
        elif abnormal[i]:
            assert result.grades[i] >= "C"
            assert result.codes[i] >= result.model_codes[i]
        else:
            assert result.codes[i] == result.model_codes[i]


def test_an_exact_override_beats_a_min_grade_and_missing_flags_never_fire():
    lenient = OverrideRule("pilot_a", "pilot", "==", "yes", grade="B", reason_zh="试点企业直接判为B级")
    grader = Grader(policy="bands", bands=[0.1, 0.3, 0.6], overrides=[ABNORMAL, lenient]).fit()
    profile = pd.DataFrame({"on_abnormal_list": [1, 1, None], "pilot": ["yes", None, None]})
    assert list(grader.predict([0.9, 0.05, 0.05], profile)) == ["B", "C", "A"]
    with pytest.raises(ValueError, match="lacks"):
        grader.predict([0.1], pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="reason_zh"):
        OverrideRule("x", "c", grade="D")
