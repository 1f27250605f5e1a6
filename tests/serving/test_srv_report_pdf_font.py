"""The report's Chinese font is parsed once per process (issue 20 item 4): later renders share
fpdf2's parsed character map and widths, yet each document still embeds its own subset, so a
render after another is the same file fpdf2's own ``add_font`` writes, with its own text."""

from __future__ import annotations

import datetime as dt
from io import BytesIO

import pytest

from serving import report_pdf


def _content(name: str, document_nos: tuple[str, ...]) -> report_pdf.ReportContent:
    rows = tuple(report_pdf.ReportRow(f"R{i}", "行政处罚", "一般", "2026-01-01", "2027-01-01", "市场监管局", no)
                 for i, no in enumerate(document_nos))
    return report_pdf.ReportContent(
        serial="NJ-2026-000042", uscc="91320100MA1XXXXX9X", name=name,
        issued_at=dt.datetime(2026, 12, 7, 3, 0, tzinfo=dt.UTC), valid_until=dt.date(2027, 1, 6),
        verify_url="https://credit.example.gov.cn/verify/NJ-2026-000042",
        subject_lines=(("住所", "南京市玄武区"),), records=rows)


def _text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() or "" for page in PdfReader(BytesIO(pdf)).pages)


@pytest.fixture(scope="module")
def font():
    return report_pdf.find_cjk_font()


def test_the_font_is_parsed_once_and_each_render_is_the_file_fpdf2s_add_font_writes(font, monkeypatch):
    from fpdf.fonts import TTFFont

    parsed = []
    original = TTFFont.__init__

    def counting(self, *args, **kwargs):
        parsed.append(args[1])
        original(self, *args, **kwargs)

    monkeypatch.setattr(TTFFont, "__init__", counting)
    report_pdf._parsed_font.cache_clear()
    # different characters in each: the second document's subset must not be cut to the first's
    first = report_pdf.render_pdf(_content("南京甲制造有限公司", ("宁市监罚〔2026〕1号",)), font)
    content = _content("苏州乙贸易有限责任公司", ("苏市税罚〔2026〕77号", "锡环罚〔2025〕9号"))
    second = report_pdf.render_pdf(content, font)
    assert len(parsed) == 1
    assert "南京甲制造有限公司" in _text(first) and "宁市监罚〔2026〕1号" in _text(first)
    text = _text(second)
    assert "苏州乙贸易有限责任公司" in text and "苏市税罚〔2026〕77号" in text and "锡环罚〔2025〕9号" in text
    monkeypatch.setattr(report_pdf, "_add_parsed_font",
                        lambda pdf, family, f: pdf.add_font(family, "", str(f[0]), collection_font_number=f[1]))
    assert second == report_pdf.render_pdf(content, font)
