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
