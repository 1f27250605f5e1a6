"""The bulk load's reasons templates (issue 22): what its validation keeps of each distinct reasons
text, read from the validated models' fields, is the template of their JSON-mode dump (the form
the row path stores), and reads back as that dump (as the early warnings read it)."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from serving.db.reason_labels import models_template, reasons_template, template_reasons
from serving.schemas import ReasonOut

_REASONS_LIST = TypeAdapter(list[ReasonOut])
_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


@settings(max_examples=200, deadline=None)
@given(many=st.lists(st.fixed_dictionaries(
    {"code": st.just("a"), "label_zh": st.text(_TEXT, min_size=1, max_size=4),
     "contribution": st.floats(allow_nan=False) | st.integers(-3, 3)},
    optional={"label_en": st.none() | st.text(_TEXT, max_size=4),
              "value": st.none() | st.floats() | st.integers(-3, 3) | st.text(max_size=3) | st.booleans(),
              "record_ids": st.lists(st.text(max_size=4), max_size=2), "override": st.booleans()}), max_size=4))
@example(many=[{"code": "a", "label_zh": "甲", "contribution": 1e308 * 10, "value": 2}])
def test_the_bulk_loads_template_of_validated_reasons_is_the_one_of_their_json_dump(many):
    """For every value of every field (integers, infinities, NaN values, texts): ``models_template``
    of the validated reasons is ``reasons_template`` of their JSON-mode dump, or the same refusal,
    and ``template_reasons`` gives the dump back."""
    validated = _REASONS_LIST.validate_json(json.dumps(many, ensure_ascii=False))
    dumped = _REASONS_LIST.dump_python(validated, mode="json")
    try:
        expected = reasons_template(dumped)
    except ValueError as exc:
        with pytest.raises(type(exc)):
            models_template(validated)
        return
    assert models_template(validated) == expected
    assert template_reasons(expected) == dumped


_ANY = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(_TEXT, max_size=3) \
    | st.text("长", min_size=199, max_size=201) | st.lists(st.text(max_size=2) | st.integers(0, 2), max_size=2)


@settings(max_examples=300, deadline=None)
@given(reasons=st.lists(st.fixed_dictionaries({}, optional={
    name: _ANY for name in ("code", "label_zh", "label_en", "contribution", "value", "record_ids", "override", "extra")})
    | _ANY, max_size=3) | _ANY)
@example(reasons=[{"code": "a", "label_zh": "甲", "contribution": 1.0, "value": 2}])
@example(reasons=[3])
def test_the_bulk_validation_of_reasons_gives_the_models_verdict_words_and_values(reasons):
    """Issue 22: a bulk load validates a grade's reasons into plain dicts (a model instance per
    reason cost 2–5× the validation); for any input the verdict and the refusal's words are
    ``GradeIn``'s own, and an accepted text's value is the model's, as ``dump_python`` gives it."""
    import numpy as np
    import pandas as pd
    from pydantic import ValidationError

    from serving.schemas import GradeIn, ReasonOut
    from serving.services.frame_validation import ColumnValidator
    from simulation.codes import make_uscc

    code = str(make_uscc(np.array(["91"]), np.full(1, 320102), np.arange(1))[0])
    text = json.dumps(reasons, ensure_ascii=False)
    given = []
    check = ColumnValidator(GradeIn, json_fields=("reasons", "what_if"),
                            json_values={"reasons": lambda v: given.append(v) or len(given)})
    found = check.validate(pd.DataFrame({"uscc": [code], "as_of": ["2026-07-31"], "score": [600.0],
                                         "grade": ["B"], "probability": [0.1], "model_version": ["v"],
                                         "profile_hash": ["p"], "reasons": [text]}))
    problem = {k: v for k, v in found.problems.items() if v.startswith("reasons")}
    try:
        model = GradeIn.model_validate_json(json.dumps({
            "uscc": code, "as_of": "2026-07-31", "score": 600.0, "grade": "B", "probability": 0.1,
            "model_version": "v", "profile_hash": "p", "reasons": reasons}, ensure_ascii=False))
    except ValidationError as exc:
        first = next(e for e in exc.errors(include_url=False, include_input=False) if e["loc"][0] == "reasons")
        assert problem == {0: f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"}
        return
    assert not problem
    (values,) = given
    dumped = [r.model_dump() for r in model.reasons]
    assert [type(v) for v in values] == [dict] * len(dumped)
    for value, dump in zip(values, dumped, strict=True):  # the model's values; a field left out: its default
        assert {k: dump[k] for k in value} == value
        assert all(dump[k] == ReasonOut.model_fields[k].get_default(call_default_factory=True)
                   for k in set(dump) - set(value))
    assert reasons_template(values) == models_template(model.reasons)
