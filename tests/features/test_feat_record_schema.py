"""One record schema: a row ingestion accepts is a row the service's models accept, and the other way round.

The field limits live in ``features.schema``; ``serving.schemas.RecordIn``/``SubjectIn`` and ingestion's
vectorised checks both derive from them. Hypothesis draws values around every limit (lengths,
control characters, empty required fields, non-finite and huge numbers) and both sides must agree.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from feat_fixtures import INGESTED_AT, code, subject, subjects_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from features.ingest import ingest
from features.schema import RECORD_FIELDS, SUBJECT_FIELDS

RecordIn = pytest.importorskip("serving.schemas").RecordIn
SubjectIn = pytest.importorskip("serving.schemas").SubjectIn
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])

_CHARS = st.sampled_from([*"南京罚款R0-9 ,\"'", "\x00", "\x07", "\t", "\n", "\r", "\x7f", "\x85", "\u3000"])


def _text_around(limit: int | None) -> st.SearchStrategy[str | None]:
    sizes = [0, 1, 5] + ([limit - 1, limit, limit + 1] if limit else [300])
    return st.one_of(
        st.none(),
        st.builds(lambda n, c: c * n, st.sampled_from(sizes), st.sampled_from(["R", "号", "描"])),
        st.text(_CHARS, min_size=1, max_size=12),
    )


_AMOUNTS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0.0, -0.0, -1.0, 1e13, 1e13 + 1e4, 1e300, 5000.0]))


@st.composite
def record_rows(draw) -> dict:
    row = {"record_id": draw(_text_around(40)), "uscc": code(1), "kind": "admin_penalty",
           "severity": draw(st.sampled_from(["minor", "general", "serious"])), "decision_date": "2025-03-01",
           "amount": draw(_AMOUNTS), "department": draw(_text_around(40)),
           # never empty: the catalogue (not the schema) requires a legal basis on penalties
           "document_no": draw(_text_around(120).filter(bool)),
           "description": draw(_text_around(2000))}
    if draw(st.booleans()):
        row["subkind"] = draw(_text_around(40))
    return row


def _service_accepts(model, row: dict) -> bool:
    try:
        model.model_validate(row)
    except ValidationError:
        return False
    return True


def _ingest_accepts(tmp_path, table: str, rows: list[dict]) -> list[bool]:
    """Ingest ``rows`` (JSON Lines: exact values, no CSV quoting in the way) and say which were accepted."""
    store = tmp_path / "store"
    subjects = tmp_path / "subjects.csv"
    subjects_frame([subject(1)]).to_csv(subjects, index=False)
    path = tmp_path / f"{table}.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8",
                    newline="\n")
    kwargs = {"subjects": path} if table == "subjects" else {"subjects": subjects, "records": path}
    summary = ingest(store=store, ingested_at=INGESTED_AT, **kwargs)
    q = pd.read_csv(summary.quarantine_path, dtype={"row": "int64"})
    rejected = set(q.loc[q["file"] == path.name, "row"])
    return [i + 1 not in rejected for i in range(len(rows))]


@PROPERTY
@given(rows=st.lists(record_rows(), min_size=1, max_size=6, unique_by=lambda r: r["record_id"]))
def test_ingest_and_the_service_accept_the_same_records(tmp_path_factory, rows):
    tmp_path = tmp_path_factory.mktemp("schema")
    # JSON has no inf/nan: write them as the text a CSV would carry
    written = [{k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
               for r in rows]
    got = _ingest_accepts(tmp_path, "records", written)
    want = [_service_accepts(RecordIn, r) for r in rows]
    assert got == want, [(r, g, w) for r, g, w in zip(rows, got, want, strict=True) if g != w]


@st.composite
def subject_rows(draw) -> dict:
    row = subject(1)
    row.update(name=draw(_text_around(200)), district_name=draw(_text_around(40)),
               legal_rep_name=draw(_text_around(60)), legal_rep_id=draw(_text_around(18)),
               district_code=draw(st.sampled_from([None, "320102", "32010", "3201020", "３２０１０２"])),
               legal_form=draw(st.sampled_from([None, "llc", "LLC", "branch", "company"])),
               industry=draw(st.sampled_from(["C", "Z", "c", None])), registered_capital=None, employees=None)
    return row


@PROPERTY
@given(row=subject_rows())
def test_ingest_and_the_service_accept_the_same_subjects(tmp_path_factory, row):
    got = _ingest_accepts(tmp_path_factory.mktemp("schema"), "subjects", [row])
    service_row = {k: v for k, v in row.items() if k in SubjectIn.model_fields}
    assert got == [_service_accepts(SubjectIn, service_row)], row


def test_the_issue_rows_are_refused_on_both_sides(tmp_path):
    base = {"record_id": "R1", "uscc": code(1), "kind": "admin_penalty", "severity": "general",
            "decision_date": "2025-03-01", "amount": 100.0, "department": "samr", "document_no": "宁罚〔2025〕1号",
            "description": "测试"}
    cases = [{"record_id": "R" * 300}, {"description": "描" * 5000}, {"document_no": "号" * 100_000},
             {"department": ""}, {"description": "响铃\x07"}, {"amount": float("inf")}]
    rows = [base] + [{**base, **c, "record_id": c.get("record_id", f"R{i + 2}")} for i, c in enumerate(cases)]
    written = [{k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
               for r in rows]
    assert _ingest_accepts(tmp_path, "records", written) == [True] + [False] * len(cases)
    assert [_service_accepts(RecordIn, r) for r in rows] == [True] + [False] * len(cases)


def test_the_service_models_are_derived_from_the_schema():
    for name, field in RecordIn.model_fields.items():
        assert name in RECORD_FIELDS and field.is_required() == RECORD_FIELDS[name].required
    for name, field in SubjectIn.model_fields.items():
        assert name in SUBJECT_FIELDS and field.is_required() == SUBJECT_FIELDS[name].required
