"""Every text field a person fills in with a minimum length counts what can be seen: a value of
zero-width or other invisible format characters only (U+200B, U+2060, U+FEFF…) is refused, as
blanks are (the outside review of issue 20 found a 依据 of four zero-width spaces accepted)."""

from __future__ import annotations

import inspect
from typing import Annotated

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from serving import schemas

INVISIBLE = "\u200b\u2060\ufeff\u200d"
# what is not prose: the ingest contract (derived from features.schema, which ingest shares: the
# record-schema property keeps the two equal), secrets and identifiers (a password keeps what was
# typed; an invisible id matches nothing and is refused as unknown), and answers
NOT_PROSE = {"RecordIn", "SubjectIn", "GradeIn", "UserCreate.password", "ApiKeyCreate.username",
             "ObjectionCreate.record_id", "RepairCreate.record_id",
             # the draw's texts are committed and hashed byte for byte (supervision.bundle.Text, checked
             # by the independent verifier), and an inspection item is a catalogue code (records contract)
             "PlanCommitIn.salt_source", "SaltIn.value", "ResultIn.inspection_item"}


def _text_fields():
    for name, model in inspect.getmembers(schemas, inspect.isclass):
        if not (issubclass(model, BaseModel) and model.__module__ == schemas.__name__) or name.endswith("Out") \
                or name in NOT_PROSE:
            continue
        for field_name, field in model.model_fields.items():
            if f"{name}.{field_name}" in NOT_PROSE:
                continue
            min_length = next((m.min_length for m in field.metadata if getattr(m, "min_length", None)), None)
            if min_length and str in _str_types(field.annotation):
                yield pytest.param(field, min_length, id=f"{name}.{field_name}")


def _str_types(annotation) -> set:
    args = getattr(annotation, "__args__", None)
    if annotation is str or getattr(annotation, "__origin__", None) is Annotated:
        return {str}
    return {a for a in args or () if a is str or getattr(a, "__origin__", None) is Annotated}


@pytest.mark.parametrize(("field", "min_length"), list(_text_fields()))
def test_invisible_characters_do_not_fill_a_text_field(field, min_length):
    adapter = TypeAdapter(Annotated[field.annotation, *field.metadata])
    with pytest.raises(ValidationError):
        adapter.validate_python((INVISIBLE * min_length)[: max(min_length, 4) * 2])


def test_an_optional_reason_is_empty_or_visible():
    """Optional prose (a correction reason): empty stays empty, whitespace is nothing written, and
    invisible characters alone are refused, never stored as if they were a reason."""
    from serving.validation import OptionalVisibleText

    field = TypeAdapter(OptionalVisibleText)
    assert field.validate_python("") == ""
    assert field.validate_python("  ") == ""
    assert field.validate_python("\u200b 文书号有误 \u200b") == "文书号有误"
    with pytest.raises(ValidationError):
        field.validate_python("\u200b\u2060\ufeff")
