"""Sector policy TOML: valid files load, wrong ones name the field, the value and the rule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.sector_policy import PolicyFileError, load_training_policy

VALID = """
sector = "H"
min_positives = 50
exclude_features = ["n_complaint_12m"]

[target_shares]
A = 0.6
B = 0.3
C = 0.08
D = 0.02

[[direct_grading]]
rule_id = "serious_dishonesty"
column = "on_list_serious_dishonesty"
op = "truthy"
grade = "D"
reason_zh = "列入严重失信主体名单"
"""


def test_valid_policy_loads_and_builds_override_rules(tmp_path: Path) -> None:
    path = tmp_path / "h.toml"
    path.write_text(VALID, encoding="utf-8")
    policy = load_training_policy(path)
    assert policy.sector == "H"
    assert policy.exclude_features == ("n_complaint_12m",)
    (rule,) = policy.rules()
    hit = rule.mask(pd.DataFrame({"on_list_serious_dishonesty": [True, False, None]}))
    assert hit.tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (('sector = "H"', 'sector = "Z"'), "sector"),
        (("A = 0.6", "A = 0.7"), "sum to"),
        (('grade = "D"', 'grade = "E"'), "grade"),
        (('grade = "D"', 'grade = "D"\nmin_grade = "C"'), "exactly one"),
        (("min_positives = 50", "min_positives = 0"), "min_positives"),
    ],
)
def test_invalid_policy_names_field_and_rule(tmp_path: Path, change: tuple[str, str], fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(VALID.replace(*change), encoding="utf-8")
    with pytest.raises(PolicyFileError) as err:
        load_training_policy(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


def test_missing_and_malformed_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="does not exist"):
        load_training_policy(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("sector = ", encoding="utf-8")
    with pytest.raises(PolicyFileError, match="not valid TOML"):
        load_training_policy(broken)
