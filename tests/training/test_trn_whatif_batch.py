"""The batched what-if pieces give what their one-subject counterparts give: candidate actions
from one status pass, hypothetical profiles from one build, the search on pre-graded profiles."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from test_trn_whatif import AS_OF, RiskByCounts, city  # noqa: F401 (city is a fixture)

from features.actions import apply_actions, apply_scenarios, candidate_actions, candidate_actions_by_subject
from features.profiles import build_profiles
from models.whatif import Action, search, what_if


def test_candidate_actions_by_subject_equals_one_subject_at_a_time(city) -> None:  # noqa: F811
    records, _ = city
    batched = candidate_actions_by_subject(records, AS_OF)
    for uscc in records["uscc"].unique():
        assert batched.get(uscc, []) == candidate_actions(records, uscc, AS_OF)
    assert batched, "the fixture has subjects with actions"


def test_scenario_profiles_equal_applying_each_scenario_alone(city) -> None:  # noqa: F811
    records, subjects = city
    scenarios = []
    for uscc, actions in candidate_actions_by_subject(records, AS_OF).items():
        for k in range(len(actions) + 1):
            for subset in itertools.combinations(actions, k):
                scenarios.append((f"{uscc}~{len(scenarios)}", uscc, subset))
    keyed_subjects = pd.concat([subjects.loc[subjects["uscc"] == u].assign(uscc=key) for key, u, _ in scenarios])
    batched = build_profiles(apply_scenarios(records, scenarios, AS_OF), keyed_subjects, as_of=AS_OF)
    batched = batched.set_index("uscc")
    features = [c for c in batched.columns if c not in ("as_of", "profile_hash")]
    for key, uscc, subset in scenarios:
        alone = build_profiles(apply_actions(records, list(subset), AS_OF), subjects, as_of=AS_OF)
        alone = alone.set_index("uscc").loc[uscc]
        pd.testing.assert_series_equal(batched.loc[key, features], alone[features], check_names=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-2.0, 0.5), min_size=1, max_size=6), st.floats(-1.0, 2.0), st.integers(1, 3))
def test_search_on_pre_graded_subsets_equals_what_if(effects, base, max_actions) -> None:
    """Same result whether the search grades each subset's profile or looks pre-graded ones up."""
    model = RiskByCounts()
    actions = [Action(f"a{i}", f"动作{i}", f"action {i}") for i in range(len(effects))]
    effect = dict(zip([a.id for a in actions], effects, strict=True))

    def apply(chosen) -> pd.DataFrame:
        z = base + sum(effect[a.id] for a in chosen)
        return pd.DataFrame({"n_penalty_36m": [max(z, 0.0)], "n_arrears_unsettled": [0.0]})

    def score(subsets):
        profiles = pd.concat([apply(list(s)) for s in subsets], ignore_index=True)
        p = model.predict_proba(profiles)[:, 1]
        return np.asarray(model.grader.grade(p, profiles).codes), p

    assert search(actions, score, max_actions=max_actions) == what_if(model, model.grader, actions, apply,
                                                                       max_actions=max_actions)
