"""What-if: only passed actions, smallest set first, promised grade = model + grader on the applied profile."""

import itertools

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from mod_fixtures import fitted_models, make_credit_frame

from models import Action, Grader, OverrideRule, what_if
from models.whatif import search, subset_count

ACTIONS = [
    Action("repair_penalty", "申请信用修复（一条行政处罚）", "repair one penalty record"),
    Action("settle_arrears", "缴清欠款", "settle the arrears"),
    Action("exit_abnormal_list", "申请移出经营异常名录", "apply to leave the abnormal-operation list"),
    Action("repair_penalty_2", "申请信用修复（另一条行政处罚）", "repair another penalty record"),
]
LISTING = OverrideRule("abnormal", "abnormal_listed", "truthy", min_grade="C", reason_zh="列入经营异常名录，至少为C级")


def _apply_for(profile: pd.DataFrame):
    def apply(actions):
        out = profile.copy()
        for a in actions:
            if a.id.startswith("repair_penalty"):
                out["penalties_12m"] = np.maximum(out["penalties_12m"] - 1, 0)
            elif a.id == "settle_arrears":
                out["arrears_amount"] = 0.0
            elif a.id == "exit_abnormal_list":
                out["abnormal_listed"] = 0.0
        return out.reset_index(drop=True)
    return apply


@settings(max_examples=25, deadline=None)
@given(row=st.integers(0, 199), n_actions=st.integers(0, 4), max_actions=st.integers(1, 3),
       max_subsets=st.sampled_from([2, 5000]))
def test_what_if_only_proposes_passed_actions_and_keeps_its_promise(row, n_actions, max_actions, max_subsets):
    model = fitted_models()["blend"]
    X, _ = make_credit_frame(200, 40)
    grader = Grader(overrides=[LISTING]).fit(model.predict_proba(X)[:, 1])
    profile = X.iloc[[row]].assign(penalties_12m=3.0, arrears_amount=20000.0)
    passed = ACTIONS[:n_actions]
    apply = _apply_for(profile)
    result = what_if(model, grader, passed, apply, max_actions=max_actions, max_subsets=max_subsets)
    assert all(a in passed for a in result.actions)
    assert len(result.actions) <= max_actions
    if result.found:
        applied = apply(list(result.actions))
        p = model.predict_proba(applied)[:, 1]
        assert result.grade_to == grader.predict(p, applied)[0]
        assert result.probability_to == p[0]
        assert result.grade_to < result.grade_from
        if result.method == "exhaustive":  # nothing smaller would have done
            for k in range(1, len(result.actions)):
                for subset in itertools.combinations(passed, k):
                    s = apply(list(subset))
                    assert grader.predict(model.predict_proba(s)[:, 1], s)[0] >= result.grade_from
    else:
        assert result.actions == () and result.grade_to == result.grade_from


def test_leaving_the_list_is_needed_when_the_override_binds():
    model = fitted_models()["scorecard"]
    X, _ = make_credit_frame(400, 41)
    grader = Grader(overrides=[LISTING]).fit(model.predict_proba(X)[:, 1])
    # a young-ish clean firm on the list: the override holds it at C until it leaves the list
    profile = X.iloc[[0]].assign(penalties_12m=0.0, arrears_amount=0.0, abnormal_listed=1.0, years_registered=25.0)
    result = what_if(model, grader, ACTIONS, _apply_for(profile))
    assert result.found and result.grade_from == "C"
    assert [a.id for a in result.actions] == ["exit_abnormal_list"]
    # without that action on offer, nothing helps and nothing else is invented
    result = what_if(model, grader, ACTIONS[:2], _apply_for(profile))
    assert not result.found and result.actions == ()


@settings(max_examples=30, deadline=None)
@given(n_actions=st.integers(1, 6), max_actions=st.integers(1, 4), max_subsets=st.integers(1, 60))
def test_subset_count_is_what_the_search_enumerates_before_it_turns_greedy(n_actions, max_actions, max_subsets):
    """`subset_count` counts the subsets an exhaustive search scores (callers trim their actions by
    it, `training.whatif`); the search stays exhaustive exactly when the count is within max_subsets."""
    actions = [Action(f"a{i}", f"a{i}", f"a{i}") for i in range(n_actions)]
    subsets = [s for k in range(1, max_actions + 1) for s in itertools.combinations(actions, k)]
    assert subset_count(n_actions, max_actions) == len(subsets)

    def never_better(batch):  # grade D (3) whatever is done: the search tries everything it may
        return np.full(len(batch), 3), np.full(len(batch), 0.5)

    result = search(actions, never_better, max_actions=max_actions, max_subsets=max_subsets)
    exhaustive = subset_count(n_actions, max_actions) <= max_subsets
    assert result.method == ("exhaustive" if exhaustive else "greedy")
    if exhaustive:
        assert result.searched == len(subsets)
