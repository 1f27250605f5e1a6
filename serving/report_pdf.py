"""The credit report's PDF (公共信用信息报告): render, sign (PAdES) and verify offline.

Pure functions: the content, the font, the key and the certificate are arguments; nothing here
reads settings or the database (``serving.services.credit_reports`` does). The PDF is written by
fpdf2 with a TrueType Chinese font embedded as a subset (found with ``fc-match``; WenQuanYi Zen Hei from
fonts-wqy-zenhei, see :func:`find_cjk_font`), the QR code
is drawn as vector squares (segno), and the file is signed by pyhanko as a PAdES baseline B-B
signature (CMS with the signing certificate attribute, SHA-256) over the whole file.

Verification needs no network: the signature must be intact, made with the certificate given
(the service's report certificate is the only trust anchor), cover the whole file (an appended
revision, even a signed one, fails), and the report's own fields (serial, subject, valid-until,
kept in the signed document's metadata, read from the signed revision only) must be readable; the
day of the check must lie between the signing day and the valid-until day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess  # fc-match only: a fixed program, fixed arguments
from dataclasses import dataclass, field
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

from serving.labels import BEIJING, beijing_minute

REPORT_SCHEME = "tiers-credit-report-v1"
TITLE = "公共信用信息报告"


class ReportFontMissing(RuntimeError):
    """No installed font covers Chinese: the report cannot be rendered."""


@dataclass(frozen=True)
class ReportRow:
    """One record as the report prints it."""

    record_id: str
    kind: str  # its Chinese name
    severity: str
    decision_date: str
    end_date: str
    department: str
    document_no: str


@dataclass(frozen=True)
class CommitmentRow:
    """One 信用承诺 as the report names it: the matter promised and by when it is checked."""

    matter: str
    status: str  # 信用承诺 (signed) / 履行承诺 / 违背承诺
    signed_on: str
    due_on: str
    department: str
    document_no: str


@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows. Never a grade, a score or a probability: they are not public."""

    serial: str
    uscc: str
    name: str
    issued_at: dt.datetime
    valid_until: dt.date
    verify_url: str
    subject_lines: tuple[tuple[str, str], ...]  # (label, value) of the subject's registration
    records: tuple[ReportRow, ...] = ()
    lists: tuple[ReportRow, ...] = ()
    commitments: tuple[CommitmentRow, ...] = ()
    notes: tuple[str, ...] = field(default=())
    valid_from: dt.date | None = None  # the issuing day in China (None: the signing day)


def find_cjk_font() -> tuple[Path, int]:
    """The file and collection index of an installed TrueType font covering Simplified Chinese
    (fc-match); raises ``ReportFontMissing`` naming the package to install.

    TrueType, not CFF: fpdf2 embeds Noto Sans CJK's CFF outlines too, but with a custom encoding
    from which pypdf (and so some readers' search and copy) cannot recover the text; a TrueType
    font is written as Identity-H with a ToUnicode map that every reader reads."""
    fc_match = shutil.which("fc-match")
    hint = ("未找到可嵌入的 TrueType 中文字体，无法生成信用报告：请安装 fonts-wqy-zenhei（scripts/system-deps.sh）；"
            "no TrueType font covering Chinese is installed (fc-match ':lang=zh-cn:fontformat=TrueType'): "
            "install fonts-wqy-zenhei (scripts/system-deps.sh)")
    if fc_match is None:
        raise ReportFontMissing(hint)
    out = subprocess.run([fc_match, "-f", "%{file}\t%{index}\t%{fontformat}\t%{lang}",  # noqa: S603  (fc-match from PATH, fixed arguments, no shell)
                          ":lang=zh-cn:fontformat=TrueType"], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    path, index, fontformat, langs = ([*out.split("\t"), "", "", ""])[:4]
    if not path or fontformat != "TrueType" or "zh-cn" not in langs.split("|") or not Path(path).is_file():
        raise ReportFontMissing(hint)
    return Path(path), int(index or 0)


# --- rendering -------------------------------------------------------------------------------------

# the department column holds a department's full name (南京市市场监督管理局, 13 characters on one line)
_COLUMNS = (("记录编号", 26), ("类别", 26), ("严重程度", 14), ("决定日期", 20), ("公示截止/期限", 20),
            ("作出部门", 42), ("文书号", 42))


def render_pdf(content: ReportContent, font: tuple[Path, int]) -> bytes:
    """The unsigned report (A4, Chinese, the QR code of ``content.verify_url``)."""
    import logging

    import segno
    from fpdf import FPDF

    # WenQuanYi carries bitmap strikes (BDF) that the subsetter drops, warning on every report
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

    class _Report(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("cjk", size=8)
            self.set_text_color(90)
            self.cell(0, 6, f"报告编号 {content.serial}    第 {self.page_no()} 页 / 共 {{nb}} 页", align="C")

    pdf = _Report(format="A4", unit="mm")
    pdf.set_compression(True)
    _add_parsed_font(pdf, "cjk", font)
    pdf.set_title(f"{TITLE} {content.name}")
    pdf.set_subject(content.uscc)
    pdf.set_creator("tiered-supervision")
    pdf.set_keywords(f"{REPORT_SCHEME} serial={content.serial} uscc={content.uscc} "
                     f"valid_until={content.valid_until.isoformat()}"
                     + (f" valid_from={content.valid_from.isoformat()}" if content.valid_from else ""))
    pdf.set_creation_date(content.issued_at)
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()

    # the QR code, top right: the service's verification page for this serial
    qr = segno.make(content.verify_url, error="m")
    modules = qr.matrix
    size = 30.0
    step = size / (len(modules) + 8)  # a quiet zone of 4 modules each side
    left, top = pdf.w - 15 - size, 12.0
    pdf.set_fill_color(0)
    for r, row in enumerate(modules):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(left + (c + 4) * step, top + (r + 4) * step, step, step, style="F")
    pdf.set_xy(left - 4, top + size)
    pdf.set_font("cjk", size=7)
    pdf.cell(size + 8, 4, "扫码核验报告", align="C")

    pdf.set_xy(15, 18)
    pdf.set_font("cjk", size=20)
    pdf.cell(pdf.w - 30 - size - 4, 12, TITLE, align="C")
    pdf.ln(14)
    pdf.set_font("cjk", size=10)
    for label, value in (("报告编号", content.serial), ("出具时间", f"{beijing_minute(content.issued_at)} 北京时间"),
                         ("有效期至", content.valid_until.isoformat())):
        pdf.cell(22, 6, label)
        pdf.cell(0, 6, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    _heading(pdf, "一、主体基本信息")
    pdf.set_font("cjk", size=10)
    for label, value in (("主体名称", content.name), ("统一社会信用代码", content.uscc), *content.subject_lines):
        pdf.cell(36, 6.5, label, border=1)
        pdf.cell(0, 6.5, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for title, rows, empty in (("二、公共信用记录（公示期内、有效）", content.records, "无在公示期内的公共信用记录。"),
                               ("三、名单信息", content.lists, "未被列入严重失信主体名单、经营异常名录等名单。")):
        _heading(pdf, title)
        _table(pdf, rows, empty)
        pdf.ln(4)
    _heading(pdf, "四、信用承诺")
    _table(pdf, content.commitments, "无信用承诺记录。", _COMMITMENT_COLUMNS)
    pdf.ln(4)

    _heading(pdf, "说明")
    pdf.set_font("cjk", size=9)
    notes = (*content.notes,
             "本报告依据公共信用信息目录，列示截至出具时在公示期内的公共信用信息；已修复、已撤销的记录不予列示。",
             f"本报告附有电子签名（PAdES）。核验方法：以 PDF 阅读器查看签名，或运行 tiers credit-report verify 文件名.pdf，"
             f"或扫描二维码访问 {content.verify_url} 核对报告编号与文件 SHA-256。文件经任何改动，签名即失效。")
    for note in notes:
        pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    return bytes(pdf.output())


# Attributes of fpdf2's TTFFont computed from the file and never changed by a document (the same
# ones its own ``TTFFont.__deepcopy__`` shares or copies): parsed once per process.
_FONT_SHARED = ("type", "ttffile", "fontkey", "scale", "name", "up", "ut", "sp", "ss", "emphasis", "is_compressed",
                "is_cff", "is_cid_keyed", "is_symbol", "cff_ros", "collection_font_number", "cmap", "desc", "cw",
                "glyph_ids", "palette_index")


@lru_cache(maxsize=4)
def _parsed_font(path: str, index: int, family: str) -> Any:
    """fpdf2's parsed font (``TTFFont``) of ``path``: its character map, widths and glyph ids
    (a CJK font's tens of thousands of them), which ``FPDF.add_font`` computes again on every call,
    ≈ 0.25 s of the ≈ 0.3 s a report took."""
    from fpdf import FPDF

    template = FPDF()
    template.add_font(family, "", path, collection_font_number=index)
    return template.fonts[family]


def _add_parsed_font(pdf: Any, family: str, font: tuple[Path, int]) -> None:
    """``pdf.add_font(family, "", font)`` from the process's parsed font: the document gets its
    own fontTools font (opened lazily: fpdf2 subsets it in place when the document is written)
    and its own subset, and shares what was parsed from the file. A font fpdf2 renders as a colour
    font, or an fpdf2 whose font object has other fields, takes the plain ``add_font``."""
    from fontTools import ttLib
    from fpdf.fonts import SubsetMap, TTFFont

    template = _parsed_font(str(font[0]), font[1], family)
    slots = set(getattr(TTFFont, "__slots__", ()))
    own = {"i", "ttfont", "subset", "missing_glyphs", "biggest_size_pt", "_hbfont", "color_font", "unicode_range"}
    if template.color_font is not None or slots != set(_FONT_SHARED) | own:
        pdf.add_font(family, "", str(font[0]), collection_font_number=font[1])
        return
    parsed = TTFFont.__new__(TTFFont)
    for name in _FONT_SHARED:
        setattr(parsed, name, getattr(template, name))
    parsed.i = len(pdf.fonts) + 1
    parsed.ttfont = ttLib.TTFont(template.ttffile, recalcTimestamp=False, fontNumber=font[1], lazy=True)
    parsed.missing_glyphs = []
    parsed.biggest_size_pt = 0
    parsed._hbfont = None
    parsed.color_font = None
    parsed.subset = SubsetMap(parsed)
    pdf.fonts[template.fontkey] = parsed


def _heading(pdf, text: str) -> None:
    pdf.set_font("cjk", size=13)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")


_COMMITMENT_COLUMNS = (("承诺事项", 56), ("状态", 18), ("签署日期", 20), ("核查期限", 20), ("承诺部门", 40),
                       ("文书号", 36))


def _table(pdf, rows: tuple[Any, ...], empty: str, columns: tuple[tuple[str, int], ...] = _COLUMNS) -> None:
    """A table of ``rows`` (dataclasses whose fields are ``columns``, in order)."""
    from dataclasses import astuple

    from fpdf.fonts import FontFace

    pdf.set_font("cjk", size=8)
    if not rows:
        pdf.cell(0, 6, empty, new_x="LMARGIN", new_y="NEXT")
        return
    with pdf.table(col_widths=tuple(w for _, w in columns), line_height=4.5, first_row_as_headings=True,
                   headings_style=FontFace(emphasis="", fill_color=(232, 236, 241)), text_align="LEFT") as table:
        header = table.row()
        for name, _ in columns:
            header.cell(name)
        for rec in rows:
            row = table.row()
            for value in astuple(rec):
                row.cell(value or "—")


# --- signing and verification ----------------------------------------------------------------------

def sign_pdf(pdf: bytes, key_pem: str, cert_pem: str, *, reason: str = TITLE) -> bytes:
    """``pdf`` signed with ``key_pem`` (PAdES B-B, SHA-256) by the holder of ``cert_pem``."""
    from pyhanko.keys import load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    cert = _cert(cert_pem)
    key = load_private_key_from_pemder_data(key_pem.encode("ascii"), passphrase=None)
    signer = signers.SimpleSigner(signing_cert=cert, signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs([cert]))
    meta = signers.PdfSignatureMetadata(field_name="TiersReportSignature", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES, reason=reason,
                                        location="tiered-supervision", certify=True,
                                        docmdp_permissions=fields.MDPPerm.NO_CHANGES)
    out = _off_the_event_loop(signers.sign_pdf, IncrementalPdfFileWriter(BytesIO(pdf)), meta, signer=signer)
    return out.getvalue()


def _off_the_event_loop(function, *args, **kwargs):
    """``function(*args, **kwargs)``, in a worker thread when this thread runs an event loop:
    pyhanko's synchronous API calls ``asyncio.run``, which a running loop refuses (a coroutine
    route, Playwright's sync API, a notebook)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def _cert(cert_pem: str):
    from asn1crypto import pem, x509

    data = cert_pem.encode("ascii")
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


@dataclass(frozen=True)
class Verdict:
    """What an offline check of a report file found. ``valid``: signed by the certificate's key,
    unchanged since, covering the whole file, and not expired on ``checked_on``."""

    sha256: str
    signed: bool = False
    intact: bool = False
    trusted: bool = False
    whole_file: bool = False
    serial: str | None = None
    uscc: str | None = None
    valid_until: dt.date | None = None
    signed_at: str | None = None
    checked_on: dt.date | None = None
    problems: tuple[str, ...] = ()
    valid_from: dt.date | None = None  # the issuing day in China (the calendar of valid_until)

    @property
    def signature_ok(self) -> bool:
        return self.signed and self.intact and self.trusted and self.whole_file and self.serial is not None

    @property
    def expired(self) -> bool:
        return self.valid_until is not None and self.checked_on is not None and self.checked_on > self.valid_until

    @property
    def not_yet_valid(self) -> bool:
        """Checked on a day before the report was issued (a clock, or a ``--today``, in the past)."""
        return self.valid_from is not None and self.checked_on is not None and self.checked_on < self.valid_from

    @property
    def valid(self) -> bool:
        return self.signature_ok and not self.expired and not self.not_yet_valid

    def as_dict(self) -> dict:
        return {"valid": self.valid, "signature_ok": self.signature_ok, "expired": self.expired,
                "not_yet_valid": self.not_yet_valid,
                "intact": self.intact, "trusted": self.trusted, "whole_file": self.whole_file,
                "serial": self.serial, "uscc": self.uscc,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "signed_at": self.signed_at, "checked_on": self.checked_on.isoformat() if self.checked_on else None,
                "sha256": self.sha256, "problems": list(self.problems)}


def verify_pdf(data: bytes, cert_pem: str, today: dt.date) -> Verdict:
    """Check a report file offline against the service's report certificate ``cert_pem``."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    digest = hashlib.sha256(data).hexdigest()
    base = {"sha256": digest, "checked_on": today}
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # any file at all may arrive here: whatever the reader trips on, it is no report
        return Verdict(**base, problems=(f"not a readable PDF: {type(exc).__name__}: {exc}",))
    if len(signatures) != 1:
        return Verdict(**base, problems=(f"expected one signature, found {len(signatures)}",))
    context = ValidationContext(trust_roots=[_cert(cert_pem)], allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = _off_the_event_loop(validate_pdf_signature, signatures[0], context)
    except Exception as exc:  # a malformed signature dictionary or CMS blob: not a valid signature
        return Verdict(**base, signed=True, problems=(f"the signature cannot be validated: {type(exc).__name__}: {exc}",))
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    problems = []
    if not status.intact:
        problems.append("the file was changed after it was signed (digest mismatch)")
    if not status.valid:
        problems.append("the signature does not verify with the signer's key")
    if not status.trusted:
        problems.append("the signer is not the service's report certificate")
    if not whole:
        problems.append(f"the signature does not cover the whole file ({status.coverage.name}): "
                        "something was appended after signing")
    serial = uscc = None
    valid_until = None
    keywords = _signed_keywords(reader, signatures[0])
    fields_ = dict(part.split("=", 1) for part in keywords.split() if "=" in part)
    if keywords.startswith(REPORT_SCHEME):
        serial, uscc = fields_.get("serial"), fields_.get("uscc")
        try:
            valid_until = dt.date.fromisoformat(fields_.get("valid_until", ""))
        except ValueError:
            problems.append("the report's valid-until date is unreadable")
    else:
        problems.append(f"not a {REPORT_SCHEME} document")
    signed_at = status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
    signed_on = status.signer_reported_dt.astimezone(BEIJING).date() if status.signer_reported_dt else None
    try:  # valid from the issuing day the signed document states (older reports: the signing day)
        valid_from = dt.date.fromisoformat(fields_["valid_from"]) if "valid_from" in fields_ else signed_on
    except ValueError:
        valid_from = None
        problems.append("the report's valid-from date is unreadable")
    if valid_until is not None and today > valid_until:
        problems.append(f"the report expired on {valid_until.isoformat()}")
    if valid_from is not None and today < valid_from:
        problems.append(f"the report is not yet valid on {today.isoformat()}: it is valid from "
                        f"{valid_from.isoformat()} (its issuing day in China)")
    return Verdict(**base, signed=True, intact=bool(status.intact and status.valid), trusted=bool(status.trusted),
                   whole_file=whole, serial=serial, uscc=uscc, valid_until=valid_until, signed_at=signed_at,
                   valid_from=valid_from, problems=tuple(problems))


def _signed_keywords(reader, signature) -> str:
    """The report's fields (the Info dictionary's Keywords) as the signature covers them: read in
    the signed revision, so an unsigned revision appended later cannot change the serial or the
    valid-until a check reports (it fails the whole-file check, and reports the signed values)."""
    from pyhanko.pdf_utils.generic import IndirectObject

    try:
        signed = reader.get_historical_resolver(signature.signed_revision)
        info = signed.trailer_view.raw_get("/Info") if "/Info" in signed.trailer_view else None
        if isinstance(info, IndirectObject):
            # resolved in the signed revision: the trailer view's own lookup reads the newest one
            info = signed.get_object(info)
        return str(info.get("/Keywords", "")) if info is not None else ""
    except Exception:  # an unreadable Info dictionary or revision: no report fields
        return ""
