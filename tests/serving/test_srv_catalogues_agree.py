"""The catalogues the service reads name the same departments: a matter of the joint-check measures
open to a department the department catalogue does not have could never be checked, since no user of
that department can be created (found when the joint-check benchmark's finance key was refused)."""

from __future__ import annotations

from serving.labels import department_names
from serving.measures import load_measures


def test_every_department_a_matter_is_open_to_is_in_the_department_catalogue():
    known = set(department_names())
    named = {d for matter in load_measures().matters.values() for d in matter.departments if d != "*"}
    assert named <= known, sorted(named - known)
