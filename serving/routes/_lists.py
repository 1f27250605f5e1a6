"""Shared by the regulator and sector routers: a logged page of covered subjects with grades."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

import pandas as pd
from fastapi import Depends, Query
from sqlalchemy.orm import Session

from serving.db.tables import Grade, Subject
from serving.deps import ReadLog
from serving.errors import InvalidInput
from serving.i18n import TEXTS
from serving.labels import industry_name
from serving.schemas import SubjectGradeRow, SubjectPage
from serving.security import Principal, shown_name
from serving.services.grades import covered_subjects
from serving.services.subject_lists import ListFilter, offset_page, previous_cursor, subject_page
from serving.validation import PURPOSE_LENGTH, NoControlChars, list_search


@dataclass(frozen=True)
class SubjectListQuery:
    """The query of a list of covered subjects: why (logged), which filters, which page (``after``:
    the previous page's ``next`` cursor; ``offset`` kept for existing clients, grade filter only)."""

    purpose: str
    grade: str | None = None
    offset: int = 0
    limit: int = 50
    district: str | None = None
    industry: str | None = None
    search: str | None = None
    after: str | None = None
    sort: str = "risk"

    @property
    def filters(self) -> ListFilter:
        """The filters as the list reads them: the search normalised (``validation.list_search``),
        here, where every list query (API and pages) becomes filters."""
        return ListFilter(grade=self.grade, district=self.district, industry=self.industry,
                          search=list_search(self.search))


async def subject_list_query(
        purpose: Annotated[str, Query(**PURPOSE_LENGTH), NoControlChars],
        grade: Literal["A", "B", "C", "D"] | None = None,
        district: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="district code (6 digits)")] = None,
        industry: Annotated[str | None, Query(pattern=r"^[A-T]$", description="GB/T 4754 section")] = None,
        search: Annotated[str | None, Query(min_length=1, max_length=60, description="USCC prefix or name prefix"),
                          NoControlChars] = None,
        after: Annotated[str | None, Query(max_length=400, description="the `next` cursor of the previous page")] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip (grade filter only; prefer "
                                     "`after`)")] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        sort: Annotated[Literal["risk", "uscc", "name"], Query(
            description="riskiest first, or by USCC or name (a search sorted by a key orders by the key it "
                        "searches)")] = "risk",
) -> SubjectListQuery:
    return SubjectListQuery(purpose, grade, offset, limit, district, industry, search, after, sort)


SubjectListDep = Annotated[SubjectListQuery, Depends(subject_list_query)]


def previous_after(session: Session, principal: Principal, query: SubjectListQuery) -> str | None:
    """The ``after`` of the page before ``query``'s (None: the first page, or ``query`` is the first)."""
    if not query.after:
        return None
    return previous_cursor(session, principal, query.filters, query.after, limit=query.limit, order=query.sort)


def logged_subject_page(log: ReadLog, principal: Principal, query: SubjectListQuery) -> SubjectPage:
    """A page of covered subjects; each subject whose grade is shown is a logged read. Paged by key
    (``after``: every page costs the same, ``serving.services.subject_lists``); ``offset`` reads
    the rows before it."""
    filters = query.filters
    if query.offset:
        if query.after or filters != ListFilter(grade=query.grade) or query.sort != "risk":
            raise InvalidInput("offset pages take only the grade filter and the riskiest-first sort; page with "
                               "`after`", field="offset",
                               zh="offset 分页只能与信用等级筛选和默认的风险排序同用；使用其他筛选、搜索或排序时，"
                                  "请按返回的 next 游标以 after 参数翻页")
        paged = offset_page(log.session, principal, filters, query.offset, query.limit)  # by the tallies
        total, rows = paged if paged is not None else covered_subjects(
            log.session, principal, grade=query.grade, offset=query.offset, limit=query.limit)
        cursor = None
    else:
        page = subject_page(log.session, principal, filters, after=query.after, limit=query.limit, order=query.sort)
        total, rows, cursor = page.total, page.rows, page.next
    log.shown(principal, query.purpose, [subject.uscc for subject, _grade in rows])
    return SubjectPage(total=total, items=[_row(s, g) for s, g in rows], next=cursor,
                       changed=not query.offset and page.changed)


def _row(s: Subject, g: Grade | None) -> SubjectGradeRow:
    return SubjectGradeRow(uscc=s.uscc, name=shown_name(s.name, s.legal_form), industry=s.industry,
                           district_name=s.district_name, grade=g.grade if g else None,
                           score=g.score if g else None, as_of=g.as_of if g else None,
                           stale=g.stale if g else None)


CSV_CHUNK = 1000  # subjects read, logged and written at a time: the download's memory bound
CSV_COLUMNS = {key: TEXTS[key]["zh"] for key in ("uscc", "name", "district", "industry", "grade", "score")}
CSV_COLUMNS["as_of"] = "评价基准日"
CSV_CHANGED = "列表在下载期间已更新（信用等级有变化），本文件不完整：请重新下载"


def subject_list_csv(log: ReadLog, principal: Principal, query: SubjectListQuery) -> Iterator[bytes]:
    """The whole list of ``query`` (its filters and order, every page) as CSV (UTF-8 with a BOM,
    Chinese headers, cells neutralised: ``supervision.export.csv_stream``), read by key a chunk at
    a time with the pages' own paging, so memory stays bounded whatever the list's length. Each
    chunk's subjects are logged (durably: ``ReadLog.shown``) before its rows are written: nothing
    is sent unlogged. A riskiest-first list whose grades change while it is written ends with a
    row saying so (the pages' rule: never a subject twice, never one missed unsaid)."""
    from supervision.export import csv_stream

    def frames() -> Iterator[pd.DataFrame]:
        after = None
        while True:
            page = subject_page(log.session, principal, query.filters, after=after, limit=CSV_CHUNK,
                                order=query.sort)
            if page.changed:
                yield pd.DataFrame([[CSV_CHANGED] + [None] * (len(CSV_COLUMNS) - 1)],
                                   columns=list(CSV_COLUMNS.values()))
                return
            log.shown(principal, query.purpose, [subject.uscc for subject, _grade in page.rows])
            rows = [_row(s, g) for s, g in page.rows]
            yield pd.DataFrame([[r.uscc, r.name, r.district_name, industry_name(r.industry) if r.industry else None,
                                 r.grade, None if r.score is None else round(r.score), r.as_of] for r in rows],
                               columns=list(CSV_COLUMNS.values()))
            if page.next is None:
                return
            after = page.next

    return csv_stream(list(CSV_COLUMNS.values()), frames())
