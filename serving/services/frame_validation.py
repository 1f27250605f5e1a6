"""A frame validated column by column by a pydantic model's own field definitions (issue 22).

For a model whose rules are all per field (no model or field validators declared on the model,
checked when a validator is made), validating each row is the same as validating each column's
values by the field's type and constraints. Here a column's *distinct* values are validated in
one call into pydantic-core (``TypeAdapter`` over a list, built from the model's ``FieldInfo``:
the model is the one place of the rules), and the rows take their value's result; a text field
holding JSON (``reasons``) is parsed, validated and serialised once per distinct text. So every
row is validated by the model's rules, at the cost of the distinct values, without a Python object
per row and field. A JSON field whose values a caller takes (``json_values``) is validated into
plain dicts: each model in its type replaced by a ``TypedDict`` of that model's own fields (their
types and constraints), the same rules without a model instance per item (a grade's five reasons:
2–5× cheaper); a text so refused is validated again by the model itself, whose verdict and words
are the ones given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, NotRequired, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import TypedDict

# A vectorised form of a field's rule: the column → (mask of valid rows, the problem of one invalid value).
Vectorised = tuple[Callable[[pd.Series], np.ndarray], Callable[[Any], str]]


@dataclass(frozen=True)
class FrameCheck:
    """The columns of ``model`` as stored (validated, normalised: one object array per field, JSON
    fields as the model's serialised JSON text), and the problem of each rejected row (position →
    ``field: rule``; a row's first problem, in the model's field order)."""

    columns: dict[str, np.ndarray]
    problems: dict[int, str]
    # the fields of ``json_values``: each row's validated value (models as dicts of their fields'
    # values, as ``dump_python`` gives them; a field left to its default may be left out) as that field's function makes it from it (one object
    # per distinct text), so a caller needs not parse the text again; their ``columns`` hold no
    # text then (empty)
    values: dict[str, np.ndarray] = field(default_factory=dict)


class ColumnValidator:
    """``model``'s fields as column validators. ``json_fields`` hold JSON text (or lists); their
    normalised text is ``TypeAdapter.dump_json`` of the validated value (what the model dumps).
    ``vectorised`` replaces a field's per-value rule by its vectorised form (same rule)."""

    def __init__(self, model: type[BaseModel], *, json_fields: Iterable[str] = (),
                 json_values: dict[str, Callable[[Any], Any]] | None = None,
                 vectorised: dict[str, Vectorised] | None = None) -> None:
        decorators = model.__pydantic_decorators__
        if decorators.model_validators or decorators.field_validators or decorators.root_validators:
            raise TypeError(f"{model.__name__} has model-level validators: rows cannot be validated by column")
        self.model = model
        self.json_fields = frozenset(json_fields)
        self.json_values = dict(json_values or {})
        self.vectorised = dict(vectorised or {})
        self._adapters: dict[str, TypeAdapter[Any]] = {}
        self._as_dicts: dict[str, TypeAdapter[Any]] = {}  # json_values' fields validated into dicts
        for name, info in model.model_fields.items():
            field_type = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
            self._adapters[name] = TypeAdapter(field_type if name in self.json_fields else list[field_type])
            shaped = _dict_shaped(info.annotation) if name in self.json_values else None
            if shaped is not None:
                self._as_dicts[name] = TypeAdapter(Annotated[(shaped, *info.metadata)] if info.metadata else shaped)

    def validate(self, frame: pd.DataFrame) -> FrameCheck:
        n = len(frame)
        problems: dict[int, str] = {}
        columns: dict[str, np.ndarray] = {}
        values: dict[str, np.ndarray] = {}
        for name, info in self.model.model_fields.items():
            if name not in frame:
                if info.is_required():
                    for i in range(n):
                        problems.setdefault(i, f"{name}: Field required")
                    columns[name] = np.full(n, None, dtype=object)
                else:  # the model's default, as validation would apply it
                    default = info.get_default(call_default_factory=True)
                    value = self._adapters[name].dump_json(default).decode() if name in self.json_fields else default
                    columns[name] = np.full(n, value, dtype=object)
                    if name in self.json_values:
                        values[name] = np.empty(n, dtype=object)
                        made = self.json_values[name](self._values(name, self._adapters[name].validate_python(default)))
                        for i in range(n):
                            values[name][i] = made
                continue
            column = frame[name].reset_index(drop=True)
            if name in self.vectorised:
                columns[name], bad = self._vectorised(name, column)
            elif name in self.json_fields:
                columns[name], bad, dumped = self._json(name, column)
                if name in self.json_values:
                    values[name] = dumped
            else:
                columns[name], bad = self._scalar(name, column)
            for i in sorted(bad):
                problems.setdefault(i, bad[i])
        return FrameCheck(columns, problems, values)

    def _vectorised(self, name: str, column: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
        valid, problem = self.vectorised[name]
        values = column.to_numpy(dtype=object)
        ok = valid(column)
        return values, {int(i): f"{name}: {problem(values[i])}" for i in np.flatnonzero(~ok)}

    def _json(self, name: str, column: pd.Series) -> tuple[np.ndarray, dict[int, str], np.ndarray]:
        import json

        texts = [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) if v is not None else "null"
                 for v in column.tolist()]
        # each distinct text numbered in order of appearance (as pd.factorize, which took 4 µs a
        # text of a kilobyte here against 1 µs for a dict)
        index: dict[str, int] = {}
        codes = np.fromiter((index.setdefault(text, len(index)) for text in texts), dtype=np.intp, count=len(texts))
        uniques = list(index)
        adapter = self._adapters[name]
        out: list[str | None] = []
        dumped: list[Any] = []
        keep = self.json_values.get(name)
        bad_uniques: dict[int, str] = {}
        as_dicts = self._as_dicts.get(name)
        for k, text in enumerate(uniques):  # once per distinct text: parse, validate, serialise
            try:
                if as_dicts is not None:
                    try:
                        validated = as_dicts.validate_json(text)
                    except ValidationError:  # the model's own verdict and words
                        validated = self._values(name, adapter.validate_json(text))
                else:
                    validated = adapter.validate_json(text)
                if keep:  # (its text not written: the caller stores what ``keep`` made)
                    out.append("")
                    dumped.append(keep(validated))
                else:
                    out.append(adapter.dump_json(validated).decode())
                    dumped.append(None)
            except ValidationError as exc:
                out.append(None)
                dumped.append(None)
                bad_uniques[k] = _problem(name, exc.errors(include_url=False, include_input=False)[0]["loc"],
                                          exc.errors(include_url=False, include_input=False)[0]["msg"])
        texts_out, bad = _spread(np.array(out, dtype=object), codes, bad_uniques)
        objects = np.empty(len(dumped), dtype=object)
        for k, value in enumerate(dumped):  # (one by one: numpy would take nested sequences for dimensions)
            objects[k] = value
        return texts_out, bad, objects[codes]

    def _values(self, name: str, validated: Any) -> Any:
        """A json_values field's value validated by the model, as its dict-shaped validation gives it."""
        return self._adapters[name].dump_python(validated) if name in self._as_dicts else validated

    def _scalar(self, name: str, column: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)  # missing values: code -1
        values = [_plain(v) for v in uniques.tolist()] + [None]  # the last one: a missing value
        codes = np.where(codes < 0, len(values) - 1, codes)
        adapter = self._adapters[name]
        bad_uniques: dict[int, str] = {}
        try:
            validated = adapter.validate_python(values)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                k, *where = error["loc"]
                bad_uniques.setdefault(int(k), _problem(name, tuple(where), error["msg"]))
            good = [k for k in range(len(values)) if k not in bad_uniques]
            fixed = adapter.validate_python([values[k] for k in good]) if good else []
            validated = [None] * len(values)
            for k, v in zip(good, fixed, strict=True):
                validated[k] = v
        out = np.empty(len(values), dtype=object)
        out[:] = validated
        return _spread(out, codes, bad_uniques)


def _dict_shaped(annotation: Any) -> Any:
    """``annotation`` (a model, or a list of one) with the model replaced by a ``TypedDict`` of the
    model's own fields (each field's type and constraints; a field with a default not required):
    validated by the same rules into a dict of the values the model would hold. None where that
    would not be the same rules: another shape, a model with validators or its own configuration,
    or a field with an alias."""
    if get_origin(annotation) is list:
        inner = _dict_shaped(get_args(annotation)[0])
        return None if inner is None else list[inner]
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return None
    decorators = annotation.__pydantic_decorators__
    if (decorators.model_validators or decorators.field_validators or decorators.root_validators
            or annotation.model_config or any(info.alias or info.validation_alias
                                             for info in annotation.model_fields.values())):
        return None
    fields = {}
    for name, info in annotation.model_fields.items():
        field_type = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = field_type if info.is_required() else NotRequired[field_type]
    return TypedDict(f"{annotation.__name__}Fields", fields)  # type: ignore[operator]


def _spread(values: np.ndarray, codes: np.ndarray, bad_uniques: dict[int, str]) -> tuple[np.ndarray, dict[int, str]]:
    """Each row's value from its distinct value's result; the rows of rejected values."""
    bad: dict[int, str] = {}
    if bad_uniques:
        rejected = np.isin(codes, list(bad_uniques))
        bad = {int(i): bad_uniques[int(codes[i])] for i in np.flatnonzero(rejected)}
    return values[codes], bad


def _problem(name: str, where: tuple[Any, ...], message: str) -> str:
    return f"{'.'.join(str(p) for p in (name, *where))}: {message}"


def _plain(value: Any) -> Any:
    """A frame's value as the row path gave it to pydantic: numpy scalars as Python ones, dates
    and timestamps as ISO dates (a Parquet date column arrives as objects)."""
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()[:10]
    return value
