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
of objects is not, and both read as the same list of objects (``expand``).

Labels are only added (``label_ids``: INSERT … ON CONFLICT DO NOTHING), never changed or deleted,
so a read may keep them: each engine made by ``serving.db.session.make_engine`` has a bounded
``LabelCache`` (on PostgreSQL the labels' query was most of a warm single read: 220 → 534 µs).
An id in the cache must name the same text as in the table, so a label is kept only when

- it is committed: read by a transaction that has written nothing (an SQLite id rolled back is
  given again to the next label; PostgreSQL's sequence never gives one twice, but a transaction's
  own labels may still be rolled back; asked of PostgreSQL ≥ 13: ``pg_current_xact_id_if_assigned``);
- under the table's generation (``labels_generation``), read with the grade row that names the
  ids: on PostgreSQL the table's file node and the server's start time, which change on
  ``TRUNCATE`` (the tests' ``RESTART IDENTITY`` gives ids again), on the table re-created (a
  logical restore, ``pg_restore --clean``) and on a restart (a physical restore); a read whose
  generation is not the cache's queries, and the first label of a new generation empties it.
  On SQLite the generation is constant: labels are never deleted there, and a database file
  replaced under running workers is not supported (``serving.db.session.loop_connection``:
  stop them first). Resetting a PostgreSQL sequence by hand (``setval``) is not detected.

Two service processes on one database each keep their own cache, both right: the labels are
append-only and an id names one text. A miss (a label not yet read, or dropped) queries.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # (C: a str as JSON, non-ASCII kept)
from threading import Lock
from typing import Any

from sqlalchemy import Connection, Engine, Integer, String, bindparam, column, select, table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

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


def expand(connection: Connection, many: Sequence[Any], generation: str | None = None) -> list[Any]:
    """Stored reasons lists, each as a list of dicts (``ReasonOut``'s fields): compact ones with
    their labels read (one query for all of them), others (stored before, or empty) as they are.
    ``generation``: the ``labels_generation`` read with the rows in ``connection``'s transaction;
    with it, labels the engine's ``LabelCache`` holds for that generation are not queried."""
    wanted = {r[0] for reasons in many if is_compact(reasons) for r in reasons}
    if not wanted:
        return list(many)
    cache = label_cache(connection) if generation is not None else None
    labels = cache.get(generation, wanted) if cache is not None else {}
    if len(labels) < len(wanted):
        labels = {**labels, **labels_by_id(connection, wanted - labels.keys(), cache)}
    return [[unpack(r, labels) for r in reasons] if is_compact(reasons) else reasons for reasons in many]


def labels_by_id(connection: Connection, ids: Iterable[int], cache: LabelCache | None = None) -> dict[int, Label]:
    """The labels of ``ids`` (an id not in ``reason_labels`` is an error: rows never outlive theirs),
    kept in ``cache`` when committed (see the module's docstring).
    On the driver's cursor (``serving.db.driver``): a read's one more statement, its cost kept to
    the database's (one statement per power of two of ids, each compiled once)."""
    wanted = sorted(set(ids))
    labels: dict[int, Label] = {}
    keep = cache is not None and not _wrote_in_transaction(connection)
    generations: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        size = 1 << max(0, len(chunk) - 1).bit_length()
        statement = compiled_for(_labels_in(size), connection.dialect)
        # padded to the bucket's size by repeating an id: an id twice in IN (…) is one row
        rows = statement.rows(connection, {f"i{k}": chunk[min(k, len(chunk) - 1)] for k in range(size)})
        for i, c, zh, en, generation, clean in rows:
            labels[i] = (c, zh, en)
            generations.add(generation)
            keep = keep and bool(clean)
    if len(labels) < len(wanted):
        raise LookupError(f"reason labels {sorted(set(wanted) - set(labels))[:10]} are not in reason_labels")
    if keep and cache is not None and len(generations) == 1:
        cache.add(generations.pop(), labels)
    return labels


def _wrote_in_transaction(connection: Connection) -> bool:
    """Whether ``connection``'s transaction may hold uncommitted rows of its own (SQLite: pysqlite
    begins a transaction only before a write). PostgreSQL's reads tell it themselves
    (``_Unwritten``)."""
    if connection.dialect.name != "sqlite":
        return False
    return bool(connection.connection.driver_connection.in_transaction)


class _Generation(ColumnElement[str]):
    """``reason_labels``' generation as the database states it (see the module's docstring)."""

    type = String()
    inherit_cache = True


@compiles(_Generation)
def _generation_constant(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "'sqlite'"


@compiles(_Generation, "postgresql")
def _generation_postgresql(_element: Any, _compiler: Any, **_kw: Any) -> str:
    # the file node changes on TRUNCATE and with the table re-created; the start time on a restart.
    # A scalar subquery: computed once per statement (an InitPlan), not once per row of a batch
    return ("(SELECT CAST(pg_relation_filenode(to_regclass('reason_labels')) AS text) || '@' || "
            "CAST(pg_postmaster_start_time() AS text))")


class _Unwritten(ColumnElement[bool]):
    """Whether the statement's transaction has written nothing: every row it sees is committed."""

    type = Integer()
    inherit_cache = True


@compiles(_Unwritten)
def _unwritten_sqlite(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "1"  # told by the driver (``_wrote_in_transaction``)


@compiles(_Unwritten, "postgresql")
def _unwritten_postgresql(_element: Any, _compiler: Any, **_kw: Any) -> str:
    return "CAST(pg_current_xact_id_if_assigned() IS NULL AS integer)"


def labels_generation() -> Any:
    """The column ``labels_generation``: a read of grade rows selects it beside them, and hands it
    to ``expand`` (which then reads cached labels of that generation)."""
    return _Generation().label("labels_generation")


# labels kept per engine: each label's texts are bounded by their columns (code 80, labels 200
# characters: ≤ 2.5 KB a label in Python, ≈ 0.5 KB for ordinary sentences), so ≤ ≈ 20 MB an engine
LABEL_CACHE_CAPACITY = 8192


class LabelCache:
    """Labels by id, of one generation of ``reason_labels`` (see the module's docstring), at most
    ``capacity`` of them (the first added dropped first). Readers take no lock (a dict's single
    reads are atomic); writers take one."""

    def __init__(self, capacity: int = LABEL_CACHE_CAPACITY) -> None:
        self.capacity = capacity
        self._state: tuple[str | None, dict[int, Label]] = (None, {})
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._state[1])

    def get(self, generation: str, ids: Iterable[int]) -> dict[int, Label]:
        """The labels of ``ids`` this cache holds for ``generation`` (those it lacks are left out)."""
        held, labels = self._state
        if held != generation:
            return {}
        found = {}
        for i in ids:
            label = labels.get(i)
            if label is not None:
                found[i] = label
        return found

    def add(self, generation: str, labels: Mapping[int, Label]) -> None:
        """Keep ``labels`` (committed, read under ``generation``); another generation's are dropped."""
        with self._lock:
            held, kept = self._state
            if held != generation:
                kept = {}
                self._state = (generation, kept)
            for i, label in labels.items():
                if i not in kept and len(kept) >= self.capacity:
                    del kept[next(iter(kept))]
                kept[i] = label


def label_cache(bind: Connection | Engine) -> LabelCache | None:
    """The engine's ``LabelCache`` (an execution option ``make_engine`` sets), or None."""
    return bind.get_execution_options().get("reason_labels")


@lru_cache(maxsize=16)
def _labels_in(size: int) -> Any:
    return (select(_LABELS.c.id, _LABELS.c.code, _LABELS.c.label_zh, _LABELS.c.label_en, labels_generation(),
                   _Unwritten().label("unwritten"))
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
    for r in reasons:  # a bulk load makes five per grade
        labels.append((r["code"], r["label_zh"], r.get("label_en")))
        rests.append(_packed_rest(r["contribution"], r.get("value"), r.get("record_ids") or [], bool(r.get("override"))))
    return tuple(labels), tuple(rests)


def models_template(reasons: Sequence[Any]) -> Template:
    """``reasons_template`` of validated reasons (``ReasonOut`` objects) read from their fields,
    without dumping them to dicts first: the same template as ``reasons_template`` of their JSON-mode
    dump (their fields are JSON's own types, which the dump keeps as they are), at a bulk load's
    rate of five per grade."""
    labels, rests = [], []
    for r in reasons:
        labels.append((r.code, r.label_zh, r.label_en))
        rests.append(_packed_rest(r.contribution, r.value, r.record_ids, r.override))
    return tuple(labels), tuple(rests)


def _packed_rest(contribution: Any, value: Any, record_ids: list[str], override: bool) -> str:
    """A packed reason after its label id, as JSON text without the brackets: ``pack``'s items
    (its defaults left out from the end: no records and no override, then no value) written as
    ``json.dumps`` writes them (`_json_item`)."""
    rest = _json_item(contribution)
    if override or record_ids or value is not None:
        rest += "," + _json_item(value)
        if override or record_ids:
            rest += "," + _json_item(record_ids) + (",true" if override else "")
    return rest


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
    if type(value) is int:  # a count (a model input's value): not a bool, which json writes as true/false
        return int.__repr__(value)
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
