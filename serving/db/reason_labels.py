"""A grade's reasons stored compactly (issue 22): each reason's labels once in ``reason_labels``,
each grade row only its reasons' codes and numbers.

A reason (``serving.schemas.ReasonOut``) is stored as the array ``[label, contribution, value,
record_ids, override]`` — ``label`` the id of its (code, label_zh, label_en) in ``reason_labels``,
trailing items left out where they are the defaults (``value`` None, no ``record_ids``, not
``override``) — where it was a JSON object holding both languages' sentences (about 1 KB a grade
with five reasons; 24 M grade rows at city scale). The labels are the ones given when the grade
was stored, whatever their source (a model's rendered sentences, a sector model's, a test's): the
database that holds the rows holds their labels, whatever model version made them and after any
restart; reading them is one indexed query per read, never a network call.

A row stored before (a list of objects) reads as it always did: a list of arrays is compact, a list
of objects is not, and both read as the same list of objects (``expand``). Labels are never
changed or deleted, and not cached across reads: an id read in a transaction names the label
committed with it (a cache could outlive a rolled-back label, or a table emptied and refilled).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # (C: a str as JSON, non-ASCII kept)
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, column, select, table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from serving.db.driver import compiled_for

Label = tuple[str, str, str | None]  # (code, label_zh, label_en)

_LABELS = table("reason_labels", column("id", Integer), column("digest", String), column("code", String),
                column("label_zh", String), column("label_en", String))
_CHUNK = 512  # stay under SQL parameter limits


def label_of(reason: Mapping[str, Any]) -> Label:
    return reason["code"], reason["label_zh"], reason.get("label_en")


def digest(label: Label) -> str:
    """The label's key in ``reason_labels``: 128 bits of BLAKE2b of its three texts (the unique key
    of three texts, one of them optional, on both dialects: NULLs never conflict in a unique index)."""
    return hashlib.blake2b(json.dumps(label, ensure_ascii=False).encode(), digest_size=16).hexdigest()


def is_compact(reasons: Any) -> bool:
    """Whether stored reasons are in the compact form (a list of arrays); ``[]`` is both."""
    return isinstance(reasons, list) and bool(reasons) and isinstance(reasons[0], list)


def label_ids(connection: Connection, labels: Iterable[Label]) -> dict[Label, int]:
    """The id of each label in ``reason_labels``, those not there yet added (in the caller's
    transaction; a label another transaction adds meanwhile is taken, not added twice)."""
    keyed = {digest(label): label for label in set(labels)}
    found = _ids_of(connection, keyed)
    missing = [d for d in keyed if d not in found]
    if missing:
        insert = (postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert)(_LABELS)
        for start in range(0, len(missing), _CHUNK):
            connection.execute(insert.on_conflict_do_nothing(index_elements=["digest"]), [
                {"digest": d, "code": keyed[d][0], "label_zh": keyed[d][1], "label_en": keyed[d][2]}
                for d in missing[start:start + _CHUNK]])
        found |= _ids_of(connection, {d: keyed[d] for d in missing})
    return {keyed[d]: label_id for d, label_id in found.items()}


def _ids_of(connection: Connection, keyed: Mapping[str, Label]) -> dict[str, int]:
    digests = list(keyed)
    found: dict[str, int] = {}
    for start in range(0, len(digests), _CHUNK):
        found.update(connection.execute(select(_LABELS.c.digest, _LABELS.c.id)
                                        .where(_LABELS.c.digest.in_(digests[start:start + _CHUNK]))).tuples().all())
    return found


def pack(reason: Mapping[str, Any], label_id: int) -> list[Any]:
    """One reason (a dict as ``ReasonOut`` dumps it, in JSON mode) as its compact array."""
    packed = [label_id, reason["contribution"], reason.get("value"), reason.get("record_ids") or []]
    if reason.get("override"):
        return [*packed, True]
    if not packed[3]:  # the defaults left out from the end: no records, then no value
        packed.pop()
        if packed[2] is None:
            packed.pop()
    return packed


def compact(connection: Connection, many: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[list[Any]]]:
    """Reasons lists (each reason a dict as ``ReasonOut`` dumps it) in the compact form, their
    labels added to ``reason_labels`` where new; one lookup for all of them."""
    ids = label_ids(connection, (label_of(r) for reasons in many for r in reasons))
    return [[pack(r, ids[label_of(r)]) for r in reasons] for reasons in many]


def expand(connection: Connection, many: Sequence[Any]) -> list[Any]:
    """Stored reasons lists, each as a list of dicts (``ReasonOut``'s fields): compact ones with
    their labels read (one query for all of them), others (stored before, or empty) as they are."""
    wanted = {r[0] for reasons in many if is_compact(reasons) for r in reasons}
    if not wanted:
        return list(many)
    labels = labels_by_id(connection, wanted)
    return [[unpack(r, labels) for r in reasons] if is_compact(reasons) else reasons for reasons in many]


def labels_by_id(connection: Connection, ids: Iterable[int]) -> dict[int, Label]:
    """The labels of ``ids`` (an id not in ``reason_labels`` is an error: rows never outlive theirs).
    On the driver's cursor (``serving.db.driver``): a read's one more statement, its cost kept to
    the database's (one statement per power of two of ids, each compiled once)."""
    wanted = sorted(set(ids))
    labels: dict[int, Label] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        size = 1 << max(0, len(chunk) - 1).bit_length()
        statement = compiled_for(_labels_in(size), connection.dialect)
        # padded to the bucket's size by repeating an id: an id twice in IN (…) is one row
        rows = statement.rows(connection, {f"i{k}": chunk[min(k, len(chunk) - 1)] for k in range(size)})
        labels.update((i, (c, zh, en)) for i, c, zh, en in rows)
    if len(labels) < len(wanted):
        raise LookupError(f"reason labels {sorted(set(wanted) - set(labels))[:10]} are not in reason_labels")
    return labels


@lru_cache(maxsize=16)
def _labels_in(size: int) -> Any:
    return (select(_LABELS.c.id, _LABELS.c.code, _LABELS.c.label_zh, _LABELS.c.label_en)
            .where(_LABELS.c.id.in_([bindparam(f"i{k}") for k in range(size)])))


def unpack(packed: Sequence[Any], labels: Mapping[int, Label]) -> dict[str, Any]:
    """A compact reason as the dict ``ReasonOut`` dumps (its fields in their order)."""
    code, zh, en = labels[packed[0]]
    n = len(packed)
    return {"code": code, "label_zh": zh, "label_en": en, "contribution": packed[1],
            "value": packed[2] if n > 2 else None, "record_ids": packed[3] if n > 3 else [],
            "override": packed[4] if n > 4 else False}


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
# reasons in the compact form but for their labels' ids: the labels, and each reason's array after
# its id as JSON text (strings and tuples only: a bulk load holds one per grade, and the collector
# need not go through them)
Template = tuple[tuple[Label, ...], tuple[str, ...]]


def reasons_template(reasons: Sequence[Mapping[str, Any]]) -> Template:
    """Reasons (dicts as ``ReasonOut`` dumps them) as a ``Template``: what the bulk load's
    validation keeps of each distinct reasons text, to be stored by ``compact_texts``."""
    labels, rests = [], []
    for r in reasons:  # ``pack`` written out (a bulk load makes five per grade): the same items, as text
        labels.append((r["code"], r["label_zh"], r.get("label_en")))
        value, record_ids, override = r.get("value"), r.get("record_ids") or [], bool(r.get("override"))
        rest = _json_item(r["contribution"])
        if override or record_ids or value is not None:
            rest += "," + _json_item(value)
            if override or record_ids:
                rest += "," + _json_item(record_ids) + (",true" if override else "")
        rests.append(rest)
    return tuple(labels), tuple(rests)


def models_template(reasons: Sequence[Any]) -> Template:
    """``reasons_template`` of validated reasons (``ReasonOut`` objects) read from their fields,
    without dumping them to dicts first: the same template as ``reasons_template`` of their JSON-mode
    dump (their fields are JSON's own types, which the dump keeps as they are), at a bulk load's
    rate of five per grade."""
    labels, rests = [], []
    for r in reasons:
        labels.append((r.code, r.label_zh, r.label_en))
        contribution, value, record_ids, override = r.contribution, r.value, r.record_ids, r.override
        rest = float.__repr__(contribution) if math.isfinite(contribution) else _json_item(contribution)
        if override or record_ids or value is not None:
            rest += "," + (float.__repr__(value) if type(value) is float and math.isfinite(value)
                           else _json_item(value))
            if override or record_ids:
                rest += ",[" + ",".join(map(encode_basestring, record_ids)) + "]" + (",true" if override else "")
        rests.append(rest)
    return tuple(labels), tuple(rests)


def template_reasons(template: Template) -> list[dict[str, Any]]:
    """A template's reasons as dicts with their labels and numbers (the ids' places empty)."""
    labels, rests = template
    if len(labels) != len(rests):
        raise ValueError("a reasons template's labels and numbers differ in count")
    numbers = json.loads("[[" + "],[".join(rests) + "]]") if rests else []  # one parse per grade, not per reason
    return [unpack([0, *rest], {0: label}) for label, rest in zip(labels, numbers, strict=True)]


def _json_item(value: Any) -> str:
    """An item of a packed reason as JSON text, as ``json.dumps`` writes it (without its Python
    layers: a bulk load writes five per grade)."""
    if isinstance(value, str):
        return encode_basestring(value)
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):  # record ids
        return "[" + ",".join(map(encode_basestring, value)) + "]"
    return _DUMPS(value)  # None, booleans, and whatever else as json writes it


def compact_texts(connection: Connection, many: Sequence[str | Template]) -> list[str]:
    """Reasons (JSON text as ``ReasonOut`` dumps it, or ``reasons_template``'s: a bulk load's
    column) as the compact form's JSON text: each distinct one written once, the labels of all
    looked up at once."""
    from pydantic_core import from_json

    # a text by its value; a template by its identity (a bulk load's column holds one object per
    # distinct text, and a tuple's hash is not cached: rehashing its ten strings per row cost more
    # than the rest of the lookup); an equal template met as another object is only written twice
    index: dict[str | int, int] = {}
    distinct: list[Template] = []
    codes: list[int] = []
    for reasons in many:
        key = reasons if isinstance(reasons, str) else id(reasons)  # (``many`` holds the objects meanwhile)
        code = index.get(key)
        if code is None:
            code = index[key] = len(distinct)
            distinct.append(reasons_template(from_json(reasons)) if isinstance(reasons, str) else reasons)
        codes.append(code)
    ids = label_ids(connection, set().union(*(labels for labels, _ in distinct)))
    if any(len(labels) != len(rests) for labels, rests in distinct):
        raise ValueError("a reasons template's labels and numbers differ in count")
    written = ["[" + ",".join(map(_PACKED.format, map(ids.__getitem__, labels), rests)) + "]"
               for labels, rests in distinct]
    return [written[code] for code in codes]


_PACKED = "[{},{}]"  # a packed reason's text: its label's id, then the rest of its array
