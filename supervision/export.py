"""Plan outputs a regulator can use: the visit list (CSV, Excel) and the per-grade summary.

The list is internal: it shows grades, which are never published (docs/domain.md §3).

Every spreadsheet cell written from data goes through ``neutralise_cell`` (OWASP CSV injection):
a text beginning with ``= + - @``, a tab or a carriage return is prefixed with ``'``, so a
subject named ``=HYPERLINK(…)`` stays text in Excel, WPS and LibreOffice. The workbook is written
cell by cell with every text typed as a string, so openpyxl never stores a formula from data.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from supervision.plan import InspectionPlan

# what makes a spreadsheet read a cell as a formula (or hide where one starts)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# full-width signs a spreadsheet (or an IME-typed text) may read as their ASCII forms
_FULL_WIDTH_SIGNS = str.maketrans({"＝": "=", "＋": "+", "－": "-", "＠": "@"})
# what may stand before a formula sign and still leave it a formula: blanks (ASCII, NBSP, U+3000 …)
# and invisible characters (zero-width space/joiners, BOM)
_LEADING_BLANKS = re.compile("^[\\s\u200b\u200c\u200d\u2060\ufeff]+")


def neutralise_cell(value: Any) -> Any:
    """``value`` safe to put in a CSV or Excel cell: a text that a spreadsheet would take for a
    formula gets a leading ``'``; numbers, dates and other texts are returned as they are. A
    formula sign counts after leading blanks and invisible characters, and in its full-width form."""
    if not isinstance(value, str) or value[:1].isalnum():
        # a letter or digit first (Chinese included) is neither a sign, a blank nor invisible:
        # the common case, answered without the checks below (a download neutralises millions)
        return value
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    head = _LEADING_BLANKS.sub("", value)
    if head.translate(_FULL_WIDTH_SIGNS).startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every cell and column name passed through ``neutralise_cell``."""
    safe = frame.map(neutralise_cell) if len(frame) else frame.copy()
    safe.columns = [neutralise_cell(str(c)) for c in frame.columns]
    return safe


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV with a BOM (so Excel reads the Chinese), every cell neutralised.
    Lines end in CRLF (RFC 4180, as Excel writes them), so a cell holding a carriage return or a
    line feed is quoted (with ``\\n`` alone, Python's csv writer leaves a bare CR unquoted, and a
    spreadsheet starts a new row there)."""
    return neutralise_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def csv_pieces(header: Sequence[Any], chunks: Iterable[Iterable[Sequence[Any]]]) -> Iterator[bytes]:
    """What ``csv_bytes`` writes of a frame of ``header`` and the rows of ``chunks``, one piece of
    bytes per chunk, the header (with the BOM) first: a download of any length streamed in memory
    bounded by one chunk. Cells neutralised, lines ending in CRLF, as ``csv_bytes``; a None or
    NaN cell is empty, as pandas writes it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def piece(rows: Iterable[Sequence[Any]]) -> bytes:
        writer.writerows([["" if v is None or (isinstance(v, float) and v != v) else neutralise_cell(v) for v in row]
                          for row in rows])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    yield "\ufeff".encode() + piece([[str(h) for h in header]])
    for rows in chunks:
        yield piece(rows)


def csv_stream(columns: Sequence[str], frames: Iterable[pd.DataFrame]) -> Iterator[bytes]:
    """:func:`csv_pieces` of frames whose columns are ``columns``: each frame read only as it is
    written, so a long list is written in bounded memory."""
    return csv_pieces(columns, (frame[list(columns)].itertuples(index=False, name=None) for frame in frames))


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """``csv_bytes(frame)`` written to ``path``."""
    path = Path(path)
    path.write_bytes(csv_bytes(frame))
    return path


#: the summary's shares (``GradeSummary``): fractions, read as percentages in a spreadsheet
RATIO_COLUMNS = ("configured_ratio", "realised_ratio")
PERCENT = "0.0%"


def write_workbook(sheets: Iterable[tuple[str, pd.DataFrame]], path: str | Path, *,
                   number_formats: Mapping[str, str] | None = None) -> Path:
    """A workbook with one sheet per (name, frame): a header row, then the rows, each text
    neutralised and stored as a string (never a formula), numbers as numbers — in the format
    ``number_formats`` gives for their column's header (e.g. a share as a percentage)."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, frame in sheets:
        sheet = book.create_sheet(title=name)
        rows = [list(frame.columns), *frame.itertuples(index=False, name=None)]
        for r, values in enumerate(rows, 1):
            for c, value in enumerate(values, 1):
                cell = sheet.cell(row=r, column=c)
                cell.value = _excel_value(value)
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # a string whatever it looks like
                elif r > 1 and (number_format := (number_formats or {}).get(rows[0][c - 1])):
                    cell.number_format = number_format
        _fit_columns(sheet, rows)
    path = Path(path)
    book.save(path)
    return path


def display_width(text: str) -> int:
    """Columns ``text`` takes in a spreadsheet: a Chinese (full-width) character counts two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit_columns(sheet: Any, rows: list[Any], *, least: int = 6, most: int = 60) -> None:
    """Each column as wide as its widest cell (header included), within [least, most]; long texts
    wrap rather than stretch the column further."""
    from openpyxl.utils import get_column_letter

    widths: dict[int, int] = {}
    for values in rows[:2000]:  # enough rows to see the widths; a 100,000-row list is not scanned whole
        for c, value in enumerate(values, 1):
            if value is not None and not (not isinstance(value, str) and pd.isna(value)):
                widths[c] = max(widths.get(c, 0), display_width(str(value)))
    for c, width in widths.items():
        sheet.column_dimensions[get_column_letter(c)].width = min(max(width + 2, least), most)
    sheet.freeze_panes = "A2"  # the header stays in view


def _excel_value(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, bool | int | float):
        return value
    return neutralise_cell(str(value))


def plan_table(plan: InspectionPlan) -> pd.DataFrame:
    """The regulator's list (internal: it shows grades, which are never published)."""
    return pd.DataFrame(
        [
            {
                "visit_order": v.visit_order,
                "uscc": v.uscc,
                "name": v.name,
                "district_code": v.district_code,
                "district_name": v.district_name,
                "grade": v.grade,
                "items": ";".join(v.items),
                "departments": ";".join(v.departments),
                "inspectors": ";".join(v.inspectors),
                "unstaffed": ";".join(v.unstaffed),
            }
            for v in plan.visits
        ],
        columns=[
            "visit_order",
            "uscc",
            "name",
            "district_code",
            "district_name",
            "grade",
            "items",
            "departments",
            "inspectors",
            "unstaffed",
        ],
    )


def summary_table(plan: InspectionPlan) -> pd.DataFrame:
    return pd.DataFrame([s.model_dump() for s in plan.summary])


def write_plan_csv(plan: InspectionPlan, path: str | Path) -> Path:
    """UTF-8 with BOM so Excel opens the Chinese names correctly; cells neutralised."""
    return write_csv(plan_table(plan), path)


def write_plan_excel(plan: InspectionPlan, path: str | Path) -> Path:
    """Workbook with sheets 检查名单 (visits) and 汇总 (per-grade summary) and 承诺 (commitment)."""
    return write_workbook([("检查名单", plan_table(plan)), ("汇总", summary_table(plan)),
                           ("承诺", commitment_table(plan))], path,
                          number_formats=dict.fromkeys(RATIO_COLUMNS, PERCENT))


def commitment_table(plan: InspectionPlan) -> pd.DataFrame:
    """The commitment as (field, value) rows a person can read: one row per value, a mapping
    (``pool_hashes``) one row per entry as ``pool_hashes[department/item]``, never a Python dict."""
    rows: list[dict[str, str]] = []
    for key, value in plan.commitment.model_dump().items():
        if isinstance(value, dict):
            rows += [{"field": f"{key}[{k}]", "value": str(v)} for k, v in value.items()]
        elif isinstance(value, list | tuple):
            rows.append({"field": key, "value": "; ".join(map(str, value))})
        else:
            rows.append({"field": key, "value": "" if value is None else str(value)})
    rows += [{"field": "draw_seed_hex", "value": plan.draw_seed_hex or ""},
             {"field": "visits_saved", "value": str(plan.visits_saved)}]
    return pd.DataFrame(rows, columns=["field", "value"])


def results_template(plan: InspectionPlan) -> pd.DataFrame:
    """One row per (visit, item) for inspectors to fill in: the input of ``tiers plan results``.

    ``inspected_on``, ``outcome`` (no_problem / corrected / case_opened), ``document_no``,
    ``description`` and ``published_on`` are left empty.
    """
    department_of = {td.item: td.department for td in plan.tasks}
    rows = [
        {
            "plan_id": plan.plan_id,
            "visit_order": v.visit_order,
            "uscc": v.uscc,
            "name": v.name,
            "department": department_of[item],
            "inspection_item": item,
            "inspectors": ";".join(v.inspectors),
            "inspected_on": "",
            "outcome": "",
            "document_no": "",
            "description": "",
            "published_on": "",
        }
        for v in plan.visits
        for item in v.items
    ]
    return pd.DataFrame(rows)
