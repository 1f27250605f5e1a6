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
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_SUFFIXES = (".csv", ".jsonl")
EXCEL_SUFFIXES = (".xlsx", ".xls")
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl", *EXCEL_SUFFIXES)
MAX_SPAN_LINES = 64  # how many physical lines one quoted field may span
_SAMPLE_BYTES = 1 << 20


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


# --------------------------------------------------------------------------------------------
# encoding
# --------------------------------------------------------------------------------------------
def detect_encoding(path: Path) -> tuple[str, str]:
    """(codec, how it was decided) for a text file: BOM, clean UTF-8, or charset-normalizer.

    A file whose sample is UTF-8 except for a few lines stays UTF-8: those lines are quarantined
    under ``text_encoding`` instead of the whole file being read as mojibake.
    """
    with path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "BOM"
    lines = [ln for ln in sample.split(b"\n")[:-1] or [sample] if any(b > 0x7F for b in ln)]
    if not lines:
        return "utf-8", "ASCII only"
    bad = 0
    for ln in lines:
        try:
            ln.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
    # a GB18030 file fails UTF-8 on nearly every non-ASCII line; a UTF-8 file with a few bad rows on few
    if bad <= max(1, len(lines) // 10):
        return "utf-8", f"UTF-8 ({bad} of {len(lines)} non-ASCII lines in the sample not UTF-8)"
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
def _sniff_delimiter(header_line: str) -> str:
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


def _parse_many(lines: list[str], delimiter: str) -> list[list[str] | None]:
    """Fields per one-line record; the whole batch through the C parser when it is clean."""
    try:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        rows = list(reader)
        if len(rows) == len(lines) and reader.line_num == len(lines):
            return rows
    except csv.Error:
        pass
    return [_parse_one(ln, delimiter) for ln in lines]


class TableReader:
    """Iterate a file's rows in chunks; see the module docstring for what is promised."""

    def __init__(self, path: Path, chunk_rows: int = 200_000, max_span_lines: int = MAX_SPAN_LINES) -> None:
        self.path = path
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
            if control > max(8, len(head) // 50):
                raise ReadError(f"{control} control bytes (NUL …) in its first {len(head)} bytes — binary data, "
                                f"not {suffix[1:]} text")
        self.info = TableInfo(format=suffix[1:])
        self._open()

    # -- opening: find the header -------------------------------------------------------------
    def _open(self) -> None:
        if self.suffix == ".csv":
            self.info.encoding, self.info.encoding_detected_by = detect_encoding(self.path)
            self._fh = self.path.open("r", encoding=self.info.encoding, errors="surrogateescape", newline="")
            for line in self._fh:
                self.info.physical_lines += 1
                if not line.strip():
                    self.info.blank_lines += 1
                    continue
                self.info.header_line = self.info.physical_lines
                self.info.delimiter = _sniff_delimiter(line)
                header = _parse_one(line.rstrip("\r\n"), self.info.delimiter)
                if header is None:
                    raise ReadError(f"line {self.info.physical_lines}: the header cannot be split into columns")
                self.info.header = header
                break
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

    def _open_excel(self) -> None:
        from python_calamine import CalamineWorkbook

        try:
            book = CalamineWorkbook.from_path(str(self.path))
            sheet = book.get_sheet_by_index(0)
            self._sheet_rows = sheet.iter_rows()
        except Exception as exc:  # calamine raises its own error types for garbage
            raise ReadError(f"cannot be read as {self.suffix[1:]}: {exc}") from exc
        for cells in self._sheet_rows:
            self.info.physical_lines += 1
            texts = [_cell_text(c) for c in cells]
            if not any(texts):
                self.info.blank_lines += 1
                continue
            self.info.header_line = self.info.physical_lines
            while texts and not texts[-1]:
                texts.pop()
            self.info.header = [t or "" for t in texts]
            break

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
        delimiter, width, columns = self.info.delimiter or ",", len(self.info.header), self.info.header
        quote = '"'
        records: list[list[str]] = []
        rows: list[int] = []
        lines: list[int] = []
        bad: list[BadRow] = []
        pending: list[str] = []  # one-line candidates not yet parsed
        pending_at: list[tuple[int, int]] = []  # (row, line)
        row_no = 0
        queue: list[tuple[int, str]] = []  # lines handed back after a failed multi-line candidate
        it = iter(self._fh)

        def next_line() -> tuple[int, str] | None:
            if queue:
                return queue.pop(0)
            line = next(it, None)
            if line is None:
                return None
            self.info.physical_lines += 1
            return self.info.physical_lines, line

        def accept(fields: list[str] | None, row: int, line: int, text: str, span: int) -> None:
            if fields is None:
                bad.append(BadRow(row, line, "row_malformed",
                                  f"第 {line} 行无法拆分为字段（引号不成对或闭合引号后有多余字符）",
                                  f"line {line} cannot be split into fields (unbalanced quote or text after a "
                                  "closing quote)", text))
            elif len(fields) != width:
                more = "多" if len(fields) > width else "少"
                bad.append(BadRow(row, line, "field_count",
                                  f"第 {line} 行有 {len(fields)} 个字段，表头有 {width} 个（{more}了）",
                                  f"line {line} has {len(fields)} fields, the header has {width} "
                                  f"({'too many' if len(fields) > width else 'too few'})", text))
            else:
                records.append(fields)
                rows.append(row)
                lines.append(line)
                self.info.lines_in_rows += span
                return
            self.info.lines_in_rows += 1

        def flush_pending() -> None:
            if not pending:
                return
            for fields, (row, line), text in zip(_parse_many(pending, delimiter), pending_at, pending, strict=True):
                accept(fields, row, line, text, 1)
            pending.clear()
            pending_at.clear()

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
            if quote not in body or body.count(quote) % 2 == 0:
                pending.append(body)
                pending_at.append((row_no, line_no))
            else:
                flush_pending()
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
                    accept(fields, row_no, line_no, body, len(span))
                else:
                    # re-split: the first line alone (a literal stray quote is fine), the rest read again
                    queue[:0] = span[1:]
                    accept(_parse_one(body, delimiter), row_no, line_no, body, 1)
            if len(pending) >= self.chunk_rows:
                flush_pending()
            if len(records) + len(bad) >= self.chunk_rows:
                flush_pending()
                yield self._emit(records, rows, lines, bad, columns)
                records, rows, lines, bad = [], [], [], []
        flush_pending()
        self._fh.close()
        yield self._emit(records, rows, lines, bad, columns)

    def _excel_chunks(self) -> Iterator[Chunk]:
        columns, width = self.info.header, len(self.info.header)
        records: list[list[str]] = []
        rows: list[int] = []
        lines: list[int] = []
        bad: list[BadRow] = []
        row_no = 0
        for cells in self._sheet_rows:
            self.info.physical_lines += 1
            line = self.info.physical_lines
            texts = [_cell_text(c) for c in cells]
            if not any(texts):
                self.info.blank_lines += 1
                continue
            row_no += 1
            self.info.lines_in_rows += 1
            extra = [t for t in texts[width:] if t]
            if extra:
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
        counted = header + self.info.blank_lines + self.info.lines_in_rows
        if counted != self.info.physical_lines:
            raise AssertionError(f"{self.path.name}: {self.info.physical_lines} physical lines but {counted} "
                                 "accounted for (header + blank + in rows): the reader lost a line")


def open_table(path: str | Path, chunk_rows: int = 200_000, max_span_lines: int = MAX_SPAN_LINES) -> TableReader:
    """A :class:`TableReader` over ``path``; raises :class:`ReadError` if the file cannot be read at all."""
    return TableReader(Path(path), chunk_rows=chunk_rows, max_span_lines=max_span_lines)


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
