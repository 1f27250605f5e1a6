"""Grade shares and the migration matrix between two as-of dates."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring.grades import GRADES, grade_migration, grade_shares

grade_lists = st.lists(st.sampled_from(GRADES), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(grade_lists, grade_lists, st.integers(0, 60))
def test_migration_rows_sum_to_the_cohort(ref_grades, cur_grades, offset):
    reference = pd.DataFrame({"uscc": [f"S{i}" for i in range(len(ref_grades))], "grade": ref_grades})
    current = pd.DataFrame({"uscc": [f"S{i + offset}" for i in range(len(cur_grades))], "grade": cur_grades})
    m = grade_migration(reference, current)
    counts = np.array(m.counts)
    stayers = set(reference["uscc"]) & set(current["uscc"])
    assert counts.sum() == m.cohort_size == len(stayers)
    # row i = the stayers graded GRADES[i] at the reference
    ref_of_stayers = reference[reference["uscc"].isin(stayers)]["grade"].value_counts()
    assert counts.sum(axis=1).tolist() == [int(ref_of_stayers.get(g, 0)) for g in GRADES]
    for row, share_row in zip(counts, m.row_shares, strict=True):
        assert sum(share_row) == pytest.approx(1.0 if row.sum() else 0.0, abs=1e-5)
    assert m.entering == len(current) - len(stayers) == sum(m.entering_by_grade.values())
    assert m.leaving == len(reference) - len(stayers) == sum(m.leaving_by_grade.values())


def test_migration_counts_a_known_move():
    reference = pd.DataFrame({"uscc": ["a", "b", "c"], "grade": ["A", "B", "B"]})
    current = pd.DataFrame({"uscc": ["a", "b", "d"], "grade": ["A", "D", "C"]})
    m = grade_migration(reference, current)
    assert m.counts[1][3] == 1 and m.counts[0][0] == 1
    assert (m.entering_by_grade["C"], m.leaving_by_grade["B"]) == (1, 1)


def test_migration_rejects_duplicate_subjects_and_unknown_grades():
    ok = pd.DataFrame({"uscc": ["a"], "grade": ["A"]})
    with pytest.raises(ValueError, match="uscc a twice"):
        grade_migration(pd.DataFrame({"uscc": ["a", "a"], "grade": ["A", "B"]}), ok)
    with pytest.raises(ValueError, match=r"grade values \['E'\]"):
        grade_migration(ok, pd.DataFrame({"uscc": ["a"], "grade": ["E"]}))


@settings(max_examples=40, deadline=None)
@given(grade_lists, grade_lists)
def test_grade_shares_sum_to_one_and_points_to_zero(ref_grades, cur_grades):
    shares = grade_shares(pd.Series(ref_grades), pd.Series(cur_grades))
    assert sum(shares.reference.values()) == pytest.approx(1.0)
    assert sum(shares.current.values()) == pytest.approx(1.0)
    assert sum(shares.points_moved.values()) == pytest.approx(0.0, abs=1e-9)
