"""Grades name their profile by the same hash a build with the hash gives; scores that are never
stored (monitoring) need no full profile frame."""

from __future__ import annotations

import pandas as pd
import pytest
from test_trn_whatif import AS_OF, RiskByCounts, record, subject

from features.profiles import build_profiles
from training.grade import grade_with


class WithReasons(RiskByCounts):
    features = ("n_penalty_36m", "n_arrears_unsettled")

    def grade(self, frame: pd.DataFrame) -> pd.DataFrame:
        graded = super().grade(frame)
        return graded.assign(model_grade=graded["grade"], override=None)

    def reasons(self, frame: pd.DataFrame, top: int = 5, evidence=None) -> list[list[dict]]:
        return [[] for _ in range(len(frame))]


@pytest.fixture(scope="module")
def profiles() -> pd.DataFrame:
    subjects = pd.DataFrame([subject(i) for i in range(1, 4)])
    records = pd.DataFrame([record("R1", 1, "admin_penalty", "2025-01-10"),
                            record("R2", 2, "arrears", "2026-01-05", subkind="tax", amount=800.0)])
    return build_profiles(records, subjects, as_of=AS_OF, with_hash=True)


def test_a_grade_without_the_profiles_hash_gets_the_builds_hash(profiles):
    graded = grade_with(WithReasons(), profiles.drop(columns="profile_hash"), name="m", version=1)
    assert graded["profile_hash"].tolist() == profiles["profile_hash"].tolist()
    assert graded["profile_hash"].str.fullmatch(r"p2[0-9a-f]{62}").all()
    kept = grade_with(WithReasons(), profiles.assign(profile_hash="x" * 64), name="m", version=1)
    assert set(kept["profile_hash"]) == {"x" * 64}  # a hash the profile carries is kept


def test_scores_that_are_not_stored_need_only_the_models_features(profiles):
    trimmed = profiles[["uscc", "as_of", *WithReasons.features]]
    with pytest.raises(ValueError, match="not a profile frame"):
        grade_with(WithReasons(), trimmed, name="m", version=1)
    scored = grade_with(WithReasons(), trimmed, name="m", version=1, hash_profiles=False)
    assert scored["profile_hash"].isna().all()
    full = grade_with(WithReasons(), profiles, name="m", version=1)
    assert scored["grade"].tolist() == full["grade"].tolist() and scored["score"].tolist() == full["score"].tolist()
