"""Reading input files row by row, in bounded memory, without losing a row to the parser.

:func:`open_table` opens a CSV (UTF-8 with or without BOM, or GB18030: detected), Excel (.xlsx,
.xls through calamine), Parquet or JSON Lines file and yields chunks of rows as frames of strings.
It promises:

* every physical line of a text file is accounted for: header, blank, part of a row, or part of a
  row that could not be split (``TableInfo.physical_lines`` is counted by the line iterator, apart
  from the CSV parser, and :meth:`TableReader.check_conservation` proves the sum);
* a row that cannot be split (an unbalanced quote, text after a closing quote, too many or too few
  fields) is returned as a :class:`BadRow` with its line number, on its own: it never swallows the
  rows after it and never fails the file. A quoted field may span at most ``max_span_lines`` lines;
  a longer candidate is re-split, its first line set aside, and reading resumes on the next line;
* undecodable bytes survive as lone surrogates (``surrogateescape``) so the row can be quarantined
  under ``text_encoding``.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_SUFFIXES = (".csv", ".jsonl")
EXCEL_SUFFIXES = (".xlsx", ".xls")
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl", *EXCEL_SUFFIXES)
MAX_SPAN_LINES = 64  # how many physical lines one quoted field may span
_BAD_SURROGATES = re.compile("[\udc80-\udcff]")
# any C0 (the line break aside), DEL or C1 control character, a lone surrogate or U+FFFD
_CONTROL_OR_BAD = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\udc80-\udcff\ufffd]")
_SAMPLE_BYTES = 1 << 20
HEADER_SEARCH_ROWS = 20  # how many non-blank rows above the data may hold titles, units, group headers
# a totals row: its first non-empty cell says 合计/小计/总计 (spaces and a leading quote allowed)
_TOTALS = re.compile(r"^[\s\"',;|\t]*(合\s*计|小\s*计|总\s*计)")


class ReadError(ValueError):
    """The whole file cannot be read (wrong format, binary data, no header)."""


@dataclass
class TableInfo:
    """How a file was read: what the ingest report shows per file."""

    format: str
    encoding: str | None = None
    encoding_detected_by: str | None = None
    delimiter: str | None = None
    header: list[str] = field(default_factory=list)
    header_line: int = 1
    physical_lines: int = 0
    blank_lines: int = 0
    rows: int = 0
    bad_rows: int = 0
    lines_in_rows: int = 0
    skipped_lines: int = 0  # non-blank lines above the header (titles, 填报单位, group headers)
    sheet: str | None = None  # the Excel sheet read
    sheets: list[dict] = field(default_factory=list)  # every sheet of a workbook and what became of it


@dataclass
class BadRow:
    """A row the reader could not split into the header's fields."""

    row: int  # 1-based data row number (header excluded)
    line: int  # 1-based physical line (or sheet row) where it starts
    rule: str  # row_malformed | field_count
    detail_zh: str
    detail_en: str
    text: str  # the raw text of its first line (for the quarantine, cut there)


@dataclass
class Chunk:
    """Up to ``chunk_rows`` rows: strings (None = empty), their row numbers and first lines."""

    frame: pd.DataFrame
    rows: np.ndarray
    lines: np.ndarray
    bad: list[BadRow]
    # per row: may a value hold a control character or undecodable text? None: unknown (every row is
    # scanned). Known for CSV, where the reader saw the raw text; validation scans only these rows.
    suspect: np.ndarray | None = None


def _count_error(row: int, line: int, got: int, width: int, text: str) -> BadRow:
    more = "多" if got > width else "少"
    return BadRow(row, line, "field_count", f"第 {line} 行有 {got} 个字段，表头有 {width} 个（{more}了）",
                  f"line {line} has {got} fields, the header has {width} "
                  f"({'too many' if got > width else 'too few'})", text)


def _totals(row: int, line: int, text: str) -> BadRow:
    return BadRow(row, line, "totals_row", f"第 {line} 行是合计行（以「合计/小计/总计」开头），不是一条记录",
                  f"line {line} is a totals row (starts with 合计/小计/总计), not a record", text)


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------
def detect_encoding(path: Path) -> tuple[str, str]:
    """(codec, how it was decided) for a text file, by these rules in order:

    1. a BOM decides (UTF-8, UTF-16 LE/BE);
    2. a sample of ASCII only is UTF-8;
    3. the non-ASCII lines of the sample are tried as UTF-8 one by one: if at least as many decode as
       not (the header is one of them), the file is UTF-8 and the lines that are not become
       ``text_encoding`` quarantines, instead of the whole file being read as mojibake;
    4. else GB18030 when every non-ASCII line decodes as GB18030 (a superset of GBK and GB2312);
    5. else charset-normalizer decides, GB18030 if it finds nothing.

    A header that is the only non-ASCII line is decided like any other line: GB18030 is never read
    as UTF-8 because it is the only one.
    """
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "BOM"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "BOM (UTF-16)"
    whole = len(sample) < _SAMPLE_BYTES
    parts = sample.split(b"\n")
    if not whole and len(parts) > 1:
        parts = parts[:-1]  # the last line of a cut sample may end mid-character
    lines = [ln for ln in parts if any(b > 0x7F for b in ln)]
    if not lines:
        return "utf-8", "ASCII only"
    bad = []
    for ln in lines:
        try:
            ln.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(ln)
    good = len(lines) - len(bad)
    if not bad:
        return "utf-8", "UTF-8 (every non-ASCII line in the sample decodes)"
    if good >= len(bad):
        return "utf-8", f"UTF-8 ({len(bad)} of {len(lines)} non-ASCII lines in the sample not UTF-8)"
    try:
        for ln in bad:
            ln.decode("gb18030")
    except UnicodeDecodeError:
        pass
    else:
        return "gb18030", f"GB18030 ({len(bad)} of {len(lines)} non-ASCII lines in the sample not UTF-8, all GB18030)"
    from charset_normalizer import from_bytes

    best = from_bytes(sample, cp_isolation=["utf_8", "gb18030", "big5"]).best()
    if best is None:
        return "gb18030", "charset-normalizer found none; GB18030 assumed (a superset of GBK and GB2312)"
    name = {"utf_8": "utf-8", "gb18030": "gb18030", "big5": "big5"}.get(best.encoding, best.encoding)
    if name in ("gb2312", "gbk"):
        name = "gb18030"  # a superset: never narrower than the file
    return name, f"charset-normalizer ({best.encoding})"


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------
def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a delimited text file from its header line: the most frequent of , tab ; | (a
    comma when none is there)."""
    counts = {d: header_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _parse_one(text: str, delimiter: str) -> list[str] | None:
    """The fields of one complete record, or None if it cannot be split (strict RFC 4180 quoting)."""
    reader = csv.reader([text], delimiter=delimiter, strict=True)
    try:
        fields = next(reader)
        if next(reader, None) is not None:
            return None
    except (csv.Error, StopIteration):
        return None
    return fields


class TableReader:
    """Iterate a file's rows in chunks; see the module docstring for what is promised."""

    def __init__(self, path: Path, chunk_rows: int = 200_000, max_span_lines: int = MAX_SPAN_LINES,
                 header_fits: Callable[[list[str]], bool] | None = None,
                 header_search_rows: int = HEADER_SEARCH_ROWS) -> None:
        self.path = path
        self.header_fits = header_fits
        self.header_search_rows = header_search_rows
        self._pending: list = []
        self.chunk_rows = chunk_rows
        self.max_span_lines = max_span_lines
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise ReadError(f"suffix {suffix!r} is not one of {SUPPORTED_SUFFIXES}")
        if not path.is_file():
            raise ReadError("does not exist")
        if path.stat().st_size == 0:
            raise ReadError("is empty (0 bytes)")
        self.suffix = suffix
        if suffix in TEXT_SUFFIXES:
            with path.open("rb") as fh:
                head = fh.read(65536)
            # binary data, not a text file with a stray control character (that row is quarantined)
            control = sum(head.count(bytes([b])) for b in range(32) if b not in (9, 10, 13))
            utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # NUL bytes are its ASCII
            if control > max(8, len(head) // 50) and not utf16:
                raise ReadError(f"{control} control bytes (NUL …) in its first {len(head)} bytes — binary data, "
                                f"not {suffix[1:]} text")
        self.info = TableInfo(format=suffix[1:])
        self._open()

    # -- opening: find the header -------------------------------------------------------------
    def _open(self) -> None:
        if self.suffix == ".csv":
            self.info.encoding, self.info.encoding_detected_by = detect_encoding(self.path)
            self._fh = self.path.open("r", encoding=self.info.encoding, errors="surrogateescape", newline="")
            buffered: list[str] = []
            candidates: list[tuple[int, list[str] | None, str]] = []
            chosen = None
            for line in self._fh:
                buffered.append(line)
                if not line.strip():
                    continue
                delimiter = sniff_delimiter(line)
                fields = _parse_one(line.rstrip("\r\n"), delimiter)
                candidates.append((len(buffered) - 1, fields, delimiter))
                if self._fits(fields):
                    chosen = candidates[-1]
                    break
                if len(candidates) >= self.header_search_rows:
                    break
            if chosen is None and candidates:
                chosen = candidates[0]  # no row fits: the first one is the header, and its error says why
            if chosen is not None:
                at, fields, self.info.delimiter = chosen
                self._place_header(at, [ln.strip() != "" for ln in buffered[:at]])
                self._pending = buffered[at + 1:]
                if fields is None:
                    raise ReadError(f"第 {at + 1} 行（表头）无法拆分为列")
                self.info.header = fields
                if any(_BAD_SURROGATES.search(h) for h in fields):
                    raise ReadError(f"第 {at + 1} 行（表头）按 {self.info.encoding} 无法解读：文件编码无法确定"
                                    "（支持 UTF-8、GB18030、UTF-16）")
        elif self.suffix == ".jsonl":
            self.info.encoding, self.info.encoding_detected_by = detect_encoding(self.path)
            self.info.header = []  # keys are found per line; see _jsonl_chunks
        elif self.suffix in EXCEL_SUFFIXES:
            self._open_excel()
        else:
            import pyarrow.parquet as pq

            try:
                self._parquet = pq.ParquetFile(self.path)
            except Exception as exc:  # pyarrow raises several types for garbage
                raise ReadError(f"cannot be parsed as parquet: {exc}") from exc
            self.info.header = list(self._parquet.schema_arrow.names)
        if self.suffix != ".jsonl" and not self.info.header:
            raise ReadError("has no header row")
        self.info.header = _unique(self.info.header)

    def _fits(self, fields: list[str] | None) -> bool:
        """Is this row the header? Without ``header_fits``, the first non-blank row is."""
        if fields is None:
            return False
        return self.header_fits is None or self.header_fits(_unique([f or "" for f in fields]))

    def _place_header(self, at: int, nonblank_above: list[bool]) -> None:
        """The header is the row at index ``at`` of what was read so far: count what lies above it."""
        self.info.header_line = self.info.physical_lines = at + 1
        self.info.skipped_lines = sum(nonblank_above)
        self.info.blank_lines = len(nonblank_above) - self.info.skipped_lines

    def _open_excel(self) -> None:
        """The header is searched in every visible sheet's first ``header_search_rows`` non-blank rows;
        hidden sheets are skipped, and the report names every sheet and what became of it. Several
        visible sheets with a fitting header refuse the file (one table per file: nothing read silently
        from one sheet and not another)."""
        from python_calamine import CalamineWorkbook, SheetVisibleEnum

        try:
            book = CalamineWorkbook.from_path(str(self.path))
            metas = list(book.sheets_metadata)
        except Exception as exc:  # calamine raises its own error types for garbage
            raise ReadError(f"无法按 {self.suffix[1:]} 读取：{exc}") from exc
        chosen = None
        first_nonblank = None
        sheets = self.info.sheets
        for meta in metas:
            if meta.visible != SheetVisibleEnum.Visible:
                sheets.append({"sheet": meta.name, "status": "hidden_skipped", "status_zh": "隐藏工作表，未读取"})
                continue
            if chosen is not None and self.header_fits is None:
                sheets.append({"sheet": meta.name, "status": "not_read", "status_zh": "未读取"})
                continue
            try:
                rows = book.get_sheet_by_name(meta.name).iter_rows()
            except Exception as exc:  # a chart sheet or a broken one
                sheets.append({"sheet": meta.name, "status": "unreadable", "status_zh": f"无法读取：{exc}"})
                continue
            buffered: list[list[str]] = []
            found = None
            nonblank = 0
            for cells in rows:
                texts = [_cell_text(c) for c in cells]
                buffered.append(texts)
                if not any(texts):
                    continue
                nonblank += 1
                while texts and not texts[-1]:
                    texts.pop()
                if first_nonblank is None:
                    first_nonblank = (meta.name, rows, list(buffered), len(buffered) - 1, texts)
                if self._fits(texts):
                    found = (meta.name, rows, buffered, len(buffered) - 1, texts)
                    break
                if nonblank >= self.header_search_rows:
                    break
            if found is None:
                status = ("empty", "空工作表") if nonblank == 0 else (
                    "no_matching_header", f"前 {self.header_search_rows} 行中没有符合任何格式的表头，未读取")
                sheets.append({"sheet": meta.name, "status": status[0], "status_zh": status[1]})
            elif chosen is None:
                chosen = found
                sheets.append({"sheet": meta.name, "status": "read", "status_zh": "已读取"})
            else:
                sheets.append({"sheet": meta.name, "status": "also_matches", "status_zh": "表头也符合格式"})
        also = [s["sheet"] for s in sheets if s["status"] == "also_matches"]
        if also:
            raise ReadError(f"工作簿中有多个工作表的表头符合格式（{'、'.join([chosen[0], *also])}）："
                            "请每个工作表另存为一个文件分别导入")
        chosen = chosen or first_nonblank  # no sheet fits: the first non-blank row is the header, its error says why
        if chosen is None:
            raise ReadError("没有可读取的工作表：" + "；".join(f"{s['sheet']}（{s['status_zh']}）" for s in sheets))
        name, rows, buffered, at, texts = chosen
        self.info.sheet = name
        self._place_header(at, [any(t) for t in buffered[:at]])
        self._pending = buffered[at + 1:]
        self._sheet_rows = rows
        self.info.header = [t or "" for t in texts]

    def sheets_summary_zh(self) -> str:
        """Every sheet of a workbook and what became of it, for a refusal message ('' for other formats)."""
        return "；".join(f"工作表「{s['sheet']}」：{s['status_zh']}" for s in self.info.sheets)

    # -- chunks --------------------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        if self.suffix == ".csv":
            yield from self._csv_chunks()
        elif self.suffix in EXCEL_SUFFIXES:
            yield from self._excel_chunks()
        elif self.suffix == ".jsonl":
            yield from self._jsonl_chunks()
        else:
            yield from self._parquet_chunks()

    def _emit(self, records: list[list[str]], rows: list[int], lines: list[int], bad: list[BadRow],
              columns: list[str]) -> Chunk:
        n = len(columns)
        if records:
            cols = list(zip(*records, strict=True)) if n else []
            frame = pd.DataFrame({c: pd.array(v, dtype=object) for c, v in zip(columns, cols, strict=True)})
            frame = frame.replace({"": None})
        else:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        self.info.rows += len(records)
        self.info.bad_rows += len(bad)
        return Chunk(frame, np.asarray(rows, dtype=np.int64), np.asarray(lines, dtype=np.int64), bad)

    def _csv_chunks(self) -> Iterator[Chunk]:
        """Quote-free lines (nearly all) are split by pyarrow without quoting after their field count is
        checked; lines with quotes go through the csv module in strict mode, one record each, and a quoted
        field may continue over at most ``max_span_lines`` lines."""
        delimiter, width, columns = self.info.delimiter or ",", len(self.info.header), self.info.header
        quote = '"'
        plain: list[str] = []  # quote-free one-line rows with the right field count
        plain_at: list[tuple[int, int]] = []
        quoted: list[list[str]] = []  # rows split by the csv module
        quoted_at: list[tuple[int, int]] = []
        bad: list[BadRow] = []
        row_no = 0
        queue: list[tuple[int, str]] = []  # lines handed back after a failed multi-line candidate
        it = itertools.chain(self._pending, self._fh)
        separators = width - 1

        def next_line() -> tuple[int, str] | None:
            if queue:
                return queue.pop(0)
            line = next(it, None)
            if line is None:
                return None
            self.info.physical_lines += 1
            return self.info.physical_lines, line

        def judge(fields: list[str] | None, row: int, line: int, text: str, span: int) -> None:
            if fields is None:
                bad.append(BadRow(row, line, "row_malformed",
                                  f"第 {line} 行无法拆分为字段（引号不成对或闭合引号后有多余字符）",
                                  f"line {line} cannot be split into fields (unbalanced quote or text after a "
                                  "closing quote)", text))
            elif len(fields) != width:
                bad.append(_count_error(row, line, len(fields), width, text))
            else:
                quoted.append(fields)
                quoted_at.append((row, line))
                self.info.lines_in_rows += span
                return
            self.info.lines_in_rows += 1

        def emit() -> Chunk:
            chunk = self._csv_emit(plain, plain_at, quoted, quoted_at, bad, columns, delimiter)
            plain.clear(), plain_at.clear(), quoted.clear(), quoted_at.clear()
            return chunk

        while True:
            got = next_line()
            if got is None:
                break
            line_no, line = got
            body = line.rstrip("\r\n")
            if not body.strip():
                self.info.blank_lines += 1
                continue
            row_no += 1
            if "计" in body and _TOTALS.match(body):
                bad.append(_totals(row_no, line_no, body))
                self.info.lines_in_rows += 1
            elif quote not in body:
                if body.count(delimiter) == separators:
                    plain.append(body)
                    plain_at.append((row_no, line_no))
                    self.info.lines_in_rows += 1
                else:
                    bad.append(_count_error(row_no, line_no, body.count(delimiter) + 1, width, body))
                    self.info.lines_in_rows += 1
            elif body.count(quote) % 2 == 0:
                judge(_parse_one(body, delimiter), row_no, line_no, body, 1)
            else:
                # an odd number of quotes: a quoted field continues on the next lines, or a stray quote
                span = [(line_no, line)]
                quotes = body.count(quote)
                while quotes % 2 and len(span) < self.max_span_lines:
                    more = next_line()
                    if more is None:
                        break
                    span.append(more)
                    quotes += more[1].count(quote)
                fields = _parse_one("".join(t for _, t in span).rstrip("\r\n"), delimiter) if quotes % 2 == 0 else None
                if fields is not None and len(fields) == width:
                    judge(fields, row_no, line_no, body, len(span))
                else:
                    # re-split: the first line alone (a literal stray quote is fine), the rest read again
                    queue[:0] = span[1:]
                    judge(_parse_one(body, delimiter), row_no, line_no, body, 1)
            if len(plain) + len(quoted) + len(bad) >= self.chunk_rows:
                yield emit()
        self._fh.close()
        yield emit()

    def _csv_emit(self, plain: list[str], plain_at: list[tuple[int, int]], quoted: list[list[str]],
                  quoted_at: list[tuple[int, int]], bad: list[BadRow], columns: list[str], delimiter: str) -> Chunk:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        names = [f"c{i}" for i in range(len(columns))]
        parts = []
        text = "\n".join(plain)
        if plain:
            # undecodable bytes (lone surrogates) cannot enter Arrow: they become U+FFFD, which the
            # text_encoding rule finds like any other replacement character
            data = _BAD_SURROGATES.sub("\ufffd", text).encode("utf-8")
            parts.append(pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 26),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False, newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                     strings_can_be_null=True, null_values=[""],
                                                     quoted_strings_can_be_null=False)))
        if quoted:
            cols = list(zip(*quoted, strict=True))
            parts.append(pa.table({n: pa.array([_BAD_SURROGATES.sub("\ufffd", v) or None for v in c], pa.string())
                                   for n, c in zip(names, cols, strict=True)}))
        at = plain_at + quoted_at
        rows = np.asarray([r for r, _ in at], dtype=np.int64)
        lines = np.asarray([ln for _, ln in at], dtype=np.int64)
        if parts:
            table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            order = np.argsort(rows, kind="stable")
            if quoted:
                table, rows, lines = table.take(pa.array(order)), rows[order], lines[order]
            frame = table.to_pandas()
            frame.columns = columns
        else:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        # which rows' raw text holds a control character or undecodable text: only those are scanned per value
        suspect = np.zeros(len(plain) + len(quoted), dtype=bool)
        if plain:
            hits = [m.start() for m in _CONTROL_OR_BAD.finditer(text)]
            if hits:
                starts = np.cumsum([0] + [len(t) + 1 for t in plain[:-1]])
                suspect[np.searchsorted(starts, hits, side="right") - 1] = True
        for i, fields in enumerate(quoted):
            suspect[len(plain) + i] = any(_CONTROL_OR_BAD.search(v) for v in fields if v)
        if quoted and parts:
            suspect = suspect[order]
        self.info.rows += len(frame)
        self.info.bad_rows += len(bad)
        chunk = Chunk(frame, rows, lines, list(bad), suspect=suspect)
        bad.clear()
        return chunk

    def _excel_chunks(self) -> Iterator[Chunk]:
        columns, width = self.info.header, len(self.info.header)
        records: list[list[str]] = []
        rows: list[int] = []
        lines: list[int] = []
        bad: list[BadRow] = []
        row_no = 0
        rest = ([_cell_text(c) for c in cells] for cells in self._sheet_rows)
        for texts in itertools.chain(self._pending, rest):
            self.info.physical_lines += 1
            line = self.info.physical_lines
            if not any(texts):
                self.info.blank_lines += 1
                continue
            row_no += 1
            self.info.lines_in_rows += 1
            extra = [t for t in texts[width:] if t]
            first = next((t for t in texts if t), "")
            if "计" in first and _TOTALS.match(unicodedata.normalize("NFKC", first)):
                bad.append(_totals(row_no, line, "\t".join(texts)[:300]))
            elif extra:
                bad.append(BadRow(row_no, line, "field_count", f"第 {line} 行在表头之外还有 {len(extra)} 个非空单元格",
                                  f"row {line} has {len(extra)} non-empty cells beyond the header",
                                  "\t".join(texts)[:300]))
            else:
                records.append((texts + [""] * width)[:width])
                rows.append(row_no)
                lines.append(line)
            if len(records) + len(bad) >= self.chunk_rows:
                yield self._emit(records, rows, lines, bad, columns)
                records, rows, lines, bad = [], [], [], []
        yield self._emit(records, rows, lines, bad, columns)

    def _jsonl_chunks(self) -> Iterator[Chunk]:
        records: list[dict] = []
        rows: list[int] = []
        lines: list[int] = []
        bad: list[BadRow] = []
        row_no = 0
        with self.path.open("r", encoding=self.info.encoding or "utf-8", errors="surrogateescape",
                            newline="\n") as fh:
            for line in fh:
                self.info.physical_lines += 1
                line_no = self.info.physical_lines
                if not line.strip():
                    self.info.blank_lines += 1
                    continue
                row_no += 1
                self.info.lines_in_rows += 1
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    obj = exc
                if not isinstance(obj, dict):
                    bad.append(BadRow(row_no, line_no, "row_malformed", f"第 {line_no} 行不是 JSON 对象",
                                      f"line {line_no} is not a JSON object", line.rstrip("\n")))
                else:
                    records.append(obj)
                    rows.append(row_no)
                    lines.append(line_no)
                if len(records) + len(bad) >= self.chunk_rows:
                    yield self._jsonl_emit(records, rows, lines, bad)
                    records, rows, lines, bad = [], [], [], []
        yield self._jsonl_emit(records, rows, lines, bad)

    def _jsonl_emit(self, records, rows, lines, bad) -> Chunk:
        frame = _stringify(pd.DataFrame.from_records(records)) if records else pd.DataFrame()
        for key in frame.columns:
            if key not in self.info.header:
                self.info.header.append(str(key))
        frame = frame.reindex(columns=self.info.header)
        self.info.rows += len(records)
        self.info.bad_rows += len(bad)
        return Chunk(frame, np.asarray(rows, dtype=np.int64), np.asarray(lines, dtype=np.int64), bad)

    def _parquet_chunks(self) -> Iterator[Chunk]:
        row_no = 0
        for batch in self._parquet.iter_batches(batch_size=self.chunk_rows):
            frame = _stringify(batch.to_pandas(date_as_object=True))
            n = len(frame)
            numbers = np.arange(row_no + 1, row_no + n + 1, dtype=np.int64)
            row_no += n
            self.info.rows += n
            self.info.physical_lines += n
            self.info.lines_in_rows += n
            yield Chunk(frame.reset_index(drop=True), numbers, numbers + 1, [])

    def check_conservation(self) -> None:
        """Every physical line is header, blank or in a row: raises if the reader lost one (a bug)."""
        if self.suffix == ".parquet":
            return
        header = 1 if self.info.header and self.suffix != ".jsonl" else 0
        counted = header + self.info.blank_lines + self.info.skipped_lines + self.info.lines_in_rows
        if counted != self.info.physical_lines:
            raise AssertionError(f"{self.path.name}: {self.info.physical_lines} physical lines but {counted} "
                                 "accounted for (header + blank + in rows): the reader lost a line")


def open_table(path: str | Path, chunk_rows: int = 200_000, max_span_lines: int = MAX_SPAN_LINES,
               header_fits: Callable[[list[str]], bool] | None = None) -> TableReader:
    """A :class:`TableReader` over ``path``; raises :class:`ReadError` if the file cannot be read at all.

    ``header_fits`` says whether a row is a header a layout knows: then the header is searched in the
    first ``HEADER_SEARCH_ROWS`` non-blank rows (and visible sheets) and the rows above it are counted
    as ``skipped_lines``; without it the first non-blank row is the header."""
    return TableReader(Path(path), chunk_rows=chunk_rows, max_span_lines=max_span_lines, header_fits=header_fits)


def _unique(names: list[str]) -> list[str]:
    """Header names made unique by position (a second "备注" becomes "备注#2"), so no column hides another."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


# --------------------------------------------------------------------------------------------
# values as text
# --------------------------------------------------------------------------------------------
def _cell_text(value: object) -> str:
    """An Excel cell as the text a CSV would carry: whole numbers without '.0', dates ISO."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _stringify(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as object strings with None for missing, so all formats validate alike."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%d").astype(object).where(s.notna(), None)
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.map({True: "true", False: "false"}).astype(object)
        elif pd.api.types.is_integer_dtype(s):
            out[col] = s.astype("Int64").astype(str).astype(object).where(s.notna(), None)
        else:
            mask = s.isna()
            strs = s.map(_to_text).astype(object)
            out[col] = strs.where(~mask & (strs != ""), None)  # empty means missing, in every format
    return pd.DataFrame(out, index=frame.index)


def _to_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    return str(value)
