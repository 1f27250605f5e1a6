"""Results: publication deadlines, the public table, and records that follow the data contract."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from supervision.results import (
    RECORD_COLUMNS,
    CalendarFallbackWarning,
    InspectionResult,
    publication_deadline,
    publication_status,
    publish_results,
    results_to_records,
    write_public_results_csv,
)
from uscc import is_valid_uscc


def _valid(base: str = "91320102MA1XXXXX0") -> str:
    from stdnum.cn import uscc

    return base + uscc.calc_check_digit(base)


def _result(**kw) -> InspectionResult:
    data = dict(
        plan_id="P1",
        uscc=_valid(),
        department="market",
        inspection_item="MKT-01",
        inspected_on=dt.date(2026, 9, 25),
        outcome="corrected",
        document_no="宁市监检〔2026〕1号",
    )
    data.update(kw)
    return InspectionResult(**data)


@given(day=st.dates(dt.date(2020, 1, 1), dt.date(2026, 11, 1)))
@settings(max_examples=60, deadline=None)
def test_deadlines_natural_and_working(day: dt.date) -> None:
    natural = publication_deadline(day, days=20, basis="natural")
    assert natural == day + dt.timedelta(days=20)
    working = publication_deadline(day, days=20, basis="working")
    assert working >= natural  # 20 working days always span ≥ 28 calendar days


def test_working_days_follow_the_statutory_calendar() -> None:
    # National Day week 2026 (Oct 1–7) is not working: the deadline moves past it.
    assert publication_deadline(dt.date(2026, 9, 30), days=1, basis="working") > dt.date(2026, 10, 7)


def test_calendar_fallback_warns_beyond_covered_years() -> None:
    with pytest.warns(CalendarFallbackWarning, match="2027"):
        deadline = publication_deadline(dt.date(2026, 12, 28), days=20, basis="working")
    assert deadline.weekday() < 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        publication_deadline(dt.date(2026, 12, 28), days=20, basis="natural")


def test_publication_status() -> None:
    r = _result(inspected_on=dt.date(2026, 10, 1))
    assert publication_status(r, today=dt.date(2026, 10, 21)) == "pending"
    assert publication_status(r, today=dt.date(2026, 10, 22)) == "overdue"
    assert (
        publication_status(
            _result(inspected_on=dt.date(2026, 10, 1), published_on=dt.date(2026, 10, 21)),
            today=dt.date(2026, 11, 22),
        )
        == "published"
    )
    assert (
        publication_status(
            _result(inspected_on=dt.date(2026, 10, 1), published_on=dt.date(2026, 10, 30)),
            today=dt.date(2026, 11, 22),
        )
        == "published_late"
    )


def test_bad_results_are_rejected_with_the_field() -> None:
    with pytest.raises(ValidationError, match="uscc"):
        _result(uscc="913201020000000000")
    with pytest.raises(ValidationError, match="outcome"):
        _result(outcome="fine")
    with pytest.raises(ValidationError, match="published_on"):
        _result(published_on=dt.date(2026, 9, 1))


def test_results_become_contract_inspection_records() -> None:
    results = [
        _result(uscc=_valid("91320102MA1XXXXX1"), outcome="no_problem"),
        _result(uscc=_valid("91320102MA1XXXXX2"), outcome="case_opened"),
        _result(uscc=_valid("A1320102MA1XXXXX3"), outcome="corrected", inspection_item="MKT-02"),
    ]
    records = results_to_records(results)
    assert tuple(records.columns) == RECORD_COLUMNS
    assert (records["kind"] == "inspection").all()
    assert set(records["subkind"]) <= {"no_problem", "corrected", "case_opened"}
    assert records["record_id"].is_unique and records["record_id"].str.fullmatch(r"RI[0-9A-F]{12}").all()
    assert records["uscc"].map(is_valid_uscc).all()
    assert (records["inspection_item"] != "").all()
    assert pd.to_datetime(records["decision_date"], format="%Y-%m-%d").notna().all()
    assert (records["description"].str.len() > 0).all()
    # Fields the contract restricts to other kinds stay empty
    for column in ("severity", "amount", "publicity_end", "verified", "exemption", "ref_record_id"):
        assert (records[column] == "").all()
    # Stable ids: the same result recorded again gets the same id (and a duplicate is refused)
    assert results_to_records(results)["record_id"].tolist() == records["record_id"].tolist()
    with pytest.raises(ValueError, match="twice"):
        results_to_records([results[0], results[0]])


def test_public_table_hides_grades_and_unpublished(tmp_path: Path) -> None:
    published = _result(published_on=dt.date(2026, 10, 10))
    pending = _result(uscc=_valid("91320102MA1XXXXX7"))
    table = publish_results([published, pending], names={published.uscc: "某某公司"})
    assert len(table) == 1 and table.loc[0, "name"] == "某某公司"
    assert not {"grade", "score"} & set(table.columns)
    csv = pd.read_csv(
        write_public_results_csv([published], tmp_path / "public.csv"), encoding="utf-8-sig", dtype=str
    )
    assert csv.loc[0, "outcome_zh"] == "发现问题已责令改正"


def test_records_pass_the_ingestion_validator(tmp_path: Path) -> None:
    """Cross-package contract check: what results_to_records writes, features' ingestion accepts."""
    ingest = pytest.importorskip("features.ingest")
    policy_module = pytest.importorskip("features.catalogue")
    results = [
        _result(uscc=_valid("91320102MA1XXXXX1"), outcome="no_problem"),
        _result(uscc=_valid("A1320102MA1XXXXX3"), outcome="case_opened", description="发现问题，已立案"),
    ]
    path = tmp_path / "records.csv"
    results_to_records(results).to_csv(path, index=False)
    try:
        frame = ingest.read_table(path, RECORD_COLUMNS)
        _, verdict = ingest.validate_records(
            frame,
            known_uscc={r.uscc for r in results},
            ingested_on=dt.date(2026, 11, 22),
            policy=policy_module.default_policy(),
        )
    except (AttributeError, TypeError) as exc:  # the ingestion API moved: fail loudly, not silently
        pytest.fail(f"features ingestion API changed: {exc}")
    assert not verdict.rejected.any(), list(zip(verdict.field, verdict.message, strict=True))
