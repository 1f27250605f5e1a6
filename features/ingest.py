"""Ingestion: validate subject and record files at the boundary, store valid rows, quarantine the rest.

``ingest`` is the one function in ``features`` whose job is I/O. It promises:

* every data row is either accepted or quarantined (``read = accepted + quarantined``), with exactly
  one rule per rejected row, the first failing one in :data:`features.schema.RULES` order; the
  reader accounts for every physical line apart from the CSV parser (:mod:`features.reading`), and a
  row it cannot split is quarantined on its own with its line number;
* a rejected row never blocks a valid one; a file is refused whole with :class:`MalformedFileError`
  (and nothing is written) only when it cannot be read at all: unknown format, binary garbage, a
  header that matches no layout, no data rows;
* the field limits are the record schema's (:mod:`features.schema`), the same the service enforces;
* files are read in chunks, so memory is bounded by the chunk size, not the file size; rows are
  staged on disk and the batch is written to a temporary directory, then published in one step;
* re-ingesting a row whose content is already stored adds nothing; a changed row (same key,
  different content) is stored as a new ``version``, history is kept;
* national 双公示 files are recognised by their header (:mod:`features.national`) and mapped onto
  the contract's records before the same checks.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import hashlib
import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.catalogue import SEVERITIES, Policy, default_policy
from features.gates import QUARANTINE_FEEDS, check_batch, held_batches, held_behind_finding, record_gate
from features.held_queue import dependent_records, held_subjects, park, waiting_path
from features.national import Layout, Mapping, recognise
from features.quality import QualityConfig, blocking
from features.reading import ReadError, TableInfo, TableReader, open_table
from features.schema import (
    FIELD_LABELS_ZH,
    PERSONAL_FIELDS,
    QUARANTINE_COLUMNS,
    RECORD_COLUMNS,
    RECORD_DATE_COLUMNS,
    RECORD_FIELDS,
    RULE_TEXT,
    RULES,
    SEVERITY_NAMES_ZH,
    SEVERITY_VALUES,
    SUBJECT_COLUMNS,
    SUBJECT_DATE_COLUMNS,
    SUBJECT_FIELDS,
    FieldRule,
    Verdict,
    control_pattern,
)
from features.store import (
    BATCHES_DIR,
    StoreError,
    discard,
    has_table,
    publish,
    scan_sql,
    snapshot,
    sql_file_list,
    stage_batch,
)
from uscc import normalise_uscc, valid_uscc_mask, why_invalid

# phase boundaries at DEBUG ("phase: …"): benchmarks/ingest_stream.py attributes peak memory to them
logger = logging.getLogger(__name__)
_VALUE_SHOWN = 200  # characters of a rejected value kept in the quarantine file
# DuckDB's share of ingestion's memory (it spills beyond): with ~0.9 GB of Python, pandas and a chunk,
# a file of any size stays under 2 GB (benchmarks/ingest_stream.py)
_DUCKDB_MEMORY = "768MB"
_PARTITION_FLUSH_ROWS = 65_536  # rows a thread buffers before a partitioned write flushes (see ingest)


def _store_select(columns: tuple[str, ...], types: dict[str, str], extra: tuple[str, ...] = ()) -> str:
    """Explicit store types: an all-empty date column must still be DATE, and timestamps are
    microseconds (Spark cannot read Parquet TIMESTAMP(NANOS))."""
    cols = [f'CAST("{c}" AS {types.get(c, "VARCHAR")}) AS "{c}"' for c in columns]
    cols += ['CAST(version AS INTEGER) AS version', "content_hash", "CAST(ingested_at AS TIMESTAMP) AS ingested_at",
             "batch_id", "source_file", "CAST(source_row AS BIGINT) AS source_row", *extra]
    return ", ".join(cols)


_RECORD_TYPES = {"decision_date": "DATE", "end_date": "DATE", "publicity_end": "DATE", "verified_on": "DATE",
                 "amount": "DOUBLE", "verified": "BOOLEAN"}
_SUBJECT_TYPES = {"registered_on": "DATE", "status_date": "DATE", "registered_capital": "DOUBLE",
                  "employees": "BIGINT"}
_BAD_TEXT = re.compile("[\udc80-\udcff\ufffd]")
_TRUE = frozenset({"true", "1", "yes", "t"})
_FALSE = frozenset({"false", "0", "no", "f"})
_NON_FINITE = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})


class IngestError(ValueError):
    """Ingestion could not start (bad arguments)."""


class MalformedFileError(IngestError):
    """A whole input file is refused: wrong format, a header matching no layout, binary garbage or empty."""


@dataclass
class FileSummary:
    """Counts for one input file (``read == accepted + quarantined`` always) and how it was read."""

    file: str
    table: str
    read: int
    accepted: int
    quarantined: int
    new: int
    new_versions: int
    unchanged: int
    by_rule: dict[str, int] = field(default_factory=dict)
    format: str = ""
    encoding: str | None = None
    encoding_detected_by: str | None = None
    layout: str = "contract"
    layout_title: str = ""
    columns: list[dict[str, str | None]] = field(default_factory=list)
    physical_lines: int = 0
    blank_lines: int = 0
    header_line: int = 1
    skipped_lines: int = 0  # non-blank rows above the header (titles, 填报单位, group headers): not records
    sheet: str | None = None
    sheets: list[dict] = field(default_factory=list)


@dataclass
class IngestSummary:
    """What one ingestion batch did, and where it wrote."""

    batch_id: str
    ingested_at: str
    store: str
    batch_dir: str
    quarantine_path: str
    files: list[FileSummary]
    # "published", or "held" by a data-quality gate (features.gates: staged, invisible until released)
    status: str = "published"
    findings: list[dict] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(read=self.read, accepted=self.accepted, quarantined=self.quarantined)
        return out


# --------------------------------------------------------------------------------------------
# reading (whole-frame helper kept for callers that validate a small file in memory)
# --------------------------------------------------------------------------------------------
def read_table(path: str | Path, expected: tuple[str, ...]) -> pd.DataFrame:
    """Read a whole contract file into a frame of strings (None = missing); raises :class:`MalformedFileError`.

    Rows the reader cannot split are dropped here; :func:`ingest` quarantines them instead.
    """
    path = Path(path)
    reader = _open(path)
    _check_contract_header(path, reader.info.header, expected, reader)
    frames = [c.frame for c in reader.chunks()]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(expected))
    if len(frame) == 0:
        raise MalformedFileError(f"文件 {path.name}：只有表头，没有数据行（has a header but no data rows）")
    return frame[list(expected)].reset_index(drop=True)


def _open(path: Path, chunk_rows: int = 200_000, header_fits=None) -> TableReader:
    try:
        return open_table(path, chunk_rows=chunk_rows, header_fits=header_fits)
    except ReadError as exc:
        raise MalformedFileError(f"file {path.name}: {exc}") from exc


def _check_contract_header(path: Path, header: list[str], expected: tuple[str, ...], reader: TableReader) -> None:
    if reader.suffix == ".jsonl":
        return  # JSON Lines carries its keys per line; missing keys are empty fields
    missing = [c for c in expected if c not in header]
    unknown = [c for c in header if c not in expected]
    if missing or unknown:
        raise MalformedFileError(
            f"文件 {path.name}：列名既不符合数据契约，也不符合任何全国双公示格式；缺少 {missing}，"
            f"无法识别 {unknown[:10]}（columns do not match the data contract and no national layout matches）"
        )


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
_Verdict = Verdict


def _present(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy()


def _parse_dates(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(parsed dates, mask of present-but-impossible values such as 2023-02-30)."""
    parsed = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    invalid = _present(s) & parsed.isna().to_numpy()
    return parsed, invalid


def _check_fields(frame: pd.DataFrame, rules: dict[str, FieldRule], v: _Verdict, *,
                  skip_allowed: tuple[str, ...] = (), suspect: np.ndarray | None = None) -> dict[str, pd.Series]:
    """The schema's limits of every column (features.schema); returns the parsed numbers."""
    numbers: dict[str, pd.Series] = {}
    for name, rule in rules.items():
        s = frame[name]
        present = _present(s)
        if rule.required:
            v.add("field_missing", ~present, name, f"{name} is required", f"{name} 为必填字段，不能为空")
        if not present.any():
            continue
        if rule.kind in ("text", "uscc"):
            has_control = _matches(s, control_pattern(rule.multiline), suspect)
            v.add("control_character", has_control, name, f"{name} contains a control character",
                  f"{name} 含控制字符")
            if rule.max_length is not None:
                too_long = (s.str.len() > rule.max_length).to_numpy()
                v.add("text_too_long", too_long, name, f"{name} is longer than {rule.max_length} characters",
                      f"{name} 超过 {rule.max_length} 个字符")
            if rule.allowed is not None and name not in skip_allowed:
                v.add("value_invalid", present & ~s.isin(rule.allowed).to_numpy(), name,
                      f"{name} must be one of {list(rule.allowed)}", f"{name} 只能取 {'、'.join(rule.allowed)}")
            if rule.pattern is not None:
                v.add("value_invalid", present & ~s.str.fullmatch(rule.pattern.strip("^$"), na=False).to_numpy(),
                      name, f"{name} must match {rule.pattern}", f"{name} 格式应为 {rule.pattern}")
        elif rule.kind in ("number", "integer"):
            text = s.str.strip().str.lower()
            parsed = pd.to_numeric(s, errors="coerce")
            non_finite = text.isin(_NON_FINITE).to_numpy() | (present & np.isinf(parsed.to_numpy(dtype="float64")))
            garbage = present & parsed.isna().to_numpy() & ~non_finite
            with_unit = garbage & text.str.contains("[万元千百]", na=False).to_numpy()
            v.add("value_invalid", with_unit, name, f"{name} must be a plain number in the field's unit",
                  f"{name} 须为不带单位的数字（按元填写：0.3万元应填 3000）" if name == "amount"
                  else f"{name} 须为不带单位的数字（单位见列名）")
            v.add("value_invalid", garbage, name, f"{name} is not a number", f"{name} 不是数字")
            v.add("amount_negative", (parsed < 0).to_numpy(), name, f"{name} must be ≥ 0", f"{name} 不能为负")
            out_of_range = non_finite | (parsed > rule.maximum).to_numpy()
            v.add("amount_out_of_range", out_of_range, name,
                  f"{name} must be a finite number ≤ {rule.maximum:g}", f"{name} 须为有限的数字，且不超过 {rule.maximum:,.0f}")
            parsed = parsed.where(~out_of_range)
            if rule.kind == "integer":
                not_int = (parsed.notna() & (parsed != parsed.round())).to_numpy()
                v.add("value_invalid", not_int, name, f"{name} must be a whole number", f"{name} 须为整数")
            numbers[name] = parsed
    return numbers


def _uscc_reasons(codes: pd.Series, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, what is wrong with the code (English, Chinese), computed for the refused rows only."""
    en = np.full(len(codes), "not a valid unified social credit code (GB 32100-2015)", dtype=object)
    zh = np.full(len(codes), "不是有效的统一社会信用代码（GB 32100-2015）", dtype=object)
    for i in np.flatnonzero(bad):
        reason = why_invalid(codes.iloc[i])
        if reason is not None:
            zh[i] = f"不是有效的统一社会信用代码：{reason[0]}"
            en[i] = f"not a valid unified social credit code: {reason[1]}"
    return en, zh


def _matches(s: pd.Series, pattern: str | re.Pattern, suspect: np.ndarray | None) -> np.ndarray:
    """Rows whose value contains ``pattern``, scanning only the ``suspect`` rows when the reader knows them."""
    if suspect is None:
        return s.str.contains(pattern, regex=True, na=False).to_numpy(dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if suspect.any():
        out[suspect] = s[suspect].str.contains(pattern, regex=True, na=False).to_numpy(dtype=bool)
    return out


def _text_columns_bad(frame: pd.DataFrame, verdict: _Verdict, suspect: np.ndarray | None = None) -> None:
    if suspect is not None and not suspect.any():
        return
    for col in frame.columns:
        s = frame[col]
        if s.isna().all():
            continue
        bad = _matches(s, _BAD_TEXT, suspect)
        if bad.any():
            verdict.add("text_encoding", bad, col, f"{col} is not valid text in the file's encoding (bad bytes or U+FFFD)",
                        f"{col} 含无法识别的字节或替换字符（编码错误）")


def _file_has_bad_text(path: Path, encoding: str | None) -> bool:
    """True if a JSON Lines file's bytes do not decode in ``encoding`` or contain U+FFFD anywhere.

    Most files are clean, and then the per-value scan for bad text is skipped; the file is read
    in 64 MiB chunks so a large file is never held in memory.
    """
    if path.suffix.lower() != ".jsonl":
        # Excel and Parquet strings are decoded already (the per-value U+FFFD scan decides); the CSV reader
        # marks the rows whose raw text holds undecodable bytes, and only those are scanned
        return True
    decoder = codecs.getincrementaldecoder(encoding or "utf-8")(errors="strict")
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(64 * 2**20):
                if "\ufffd" in decoder.decode(chunk):
                    return True
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return True
    return False


def validate_subjects(
    frame: pd.DataFrame, *, ingested_on: date, check_text: bool = True, verdict: _Verdict | None = None,
    suspect: np.ndarray | None = None,
) -> tuple[pd.DataFrame, _Verdict]:
    """Typed subjects and the per-row verdict (see :data:`features.schema.RULES`).

    Repeated codes within ``frame`` are rejected here; across chunks, :func:`ingest` finds them.
    """
    v = verdict or _Verdict(len(frame))
    if check_text:
        _text_columns_bad(frame, v, suspect)
    frame["uscc"] = uscc = normalise_uscc(frame["uscc"])  # as records files are read: one normalisation
    v.add("duplicate_record_id", uscc.duplicated(keep="first") & uscc.notna(), "uscc",
          "uscc already appeared in an earlier row of this file", "统一社会信用代码在本文件前面已出现")
    bad = _present(uscc) & ~valid_uscc_mask(uscc)
    v.add("uscc_invalid", bad, "uscc", *_uscc_reasons(uscc, bad))
    numbers = _check_fields(frame, SUBJECT_FIELDS, v, suspect=suspect)
    typed = pd.DataFrame({c: frame[c] for c in SUBJECT_COLUMNS})
    for col in SUBJECT_DATE_COLUMNS:
        parsed, invalid = _parse_dates(frame[col])
        v.add("date_invalid", invalid, col, f"{col} is not a real calendar date YYYY-MM-DD",
              f"{col} 不是有效日期（YYYY-MM-DD）")
        typed[col] = parsed.dt.date
    reg = pd.to_datetime(typed["registered_on"])
    v.add("date_in_future", (reg > pd.Timestamp(ingested_on)).to_numpy(), "registered_on",
          f"registered_on is after the ingestion date {ingested_on}", f"registered_on 晚于入库日期 {ingested_on}")
    status_date = pd.to_datetime(typed["status_date"])
    v.add("date_order", (status_date < reg).to_numpy(), "status_date", "status_date is before registered_on",
          "status_date 早于 registered_on")
    typed["registered_capital"] = numbers.get("registered_capital", pd.Series(np.nan, index=frame.index))
    employees = numbers.get("employees", pd.Series(np.nan, index=frame.index))
    typed["employees"] = employees.where(employees == employees.round()).round().astype("Int64")
    return typed, v


def validate_records(
    frame: pd.DataFrame,
    *,
    known_uscc: set[str] | pd.Index,
    ingested_on: date,
    policy: Policy,
    check_text: bool = True,
    verdict: _Verdict | None = None,
    suspect: np.ndarray | None = None,
) -> tuple[pd.DataFrame, _Verdict]:
    """Typed records and the per-row verdict (see :data:`features.schema.RULES`)."""
    v = verdict or _Verdict(len(frame))
    if check_text:
        _text_columns_bad(frame, v, suspect)
    rid = frame["record_id"]
    v.add("duplicate_record_id", (rid.duplicated(keep="first") & rid.notna()).to_numpy(), "record_id",
          "record_id already appeared in an earlier row of this file", "record_id 在本文件前面已出现")
    frame["uscc"] = uscc = normalise_uscc(frame["uscc"])
    known = pd.Index(known_uscc) if not isinstance(known_uscc, pd.Index) else known_uscc
    is_known = uscc.isin(known).to_numpy()
    # known subjects' codes were validated when their subject row was accepted: check only the rest
    valid_code = is_known.copy()
    valid_code[~is_known] = valid_uscc_mask(uscc[~is_known])
    bad = _present(uscc) & ~valid_code
    v.add("uscc_invalid", bad, "uscc", *_uscc_reasons(uscc, bad))
    v.add("unknown_subject", valid_code & ~is_known, "uscc",
          "no such subject in this batch's accepted subjects or in the store", "该主体不在本批已接收的主体或库中")
    kind = frame["kind"]
    v.add("kind_unknown", _present(kind) & ~kind.isin(list(policy.kinds)).to_numpy(), "kind",
          f"kind is not in the catalogue of policy {policy.version}", f"记录类别不在目录（{policy.version}）中")
    severity = frame["severity"]
    severity_kinds = [k for k, r in policy.kinds.items() if r.severity_required]
    bad_sev = (kind.isin(severity_kinds) & ~severity.isin(SEVERITIES)) | (severity.notna() & ~severity.isin(SEVERITIES))
    v.add("severity_invalid", bad_sev.to_numpy(), "severity",
          f"severity must be one of {list(SEVERITIES)} (required on {severity_kinds})",
          "情节等级须为" + "、".join(f"{SEVERITY_NAMES_ZH[s]}（{s}）" for s in SEVERITY_VALUES)
          + f"之一（{'、'.join(severity_kinds)} 类记录必填）")
    numbers = _check_fields(frame, RECORD_FIELDS, v, skip_allowed=("severity",), suspect=suspect)
    typed = pd.DataFrame({c: frame[c] for c in RECORD_COLUMNS})
    parsed_dates = {}
    for col in RECORD_DATE_COLUMNS:
        parsed, invalid = _parse_dates(frame[col])
        v.add("date_invalid", invalid, col, f"{col} is not a real calendar date YYYY-MM-DD",
              f"{col} 不是有效日期（YYYY-MM-DD）")
        parsed_dates[col] = parsed
        typed[col] = parsed.dt.date
    decision = parsed_dates["decision_date"]
    v.add("date_in_future", (decision > pd.Timestamp(ingested_on)).to_numpy(), "decision_date",
          f"decision_date is after the ingestion date {ingested_on}", f"决定日期晚于入库日期 {ingested_on}")
    v.add("date_order", (parsed_dates["publicity_end"] < decision).to_numpy(), "publicity_end",
          "publicity_end is before decision_date", "公示截止日期早于决定日期")
    v.add("date_order", (parsed_dates["end_date"] < decision).to_numpy(), "end_date",
          "end_date (list exit, validity end) is before decision_date", "结束日期（移出日期、有效期至）早于决定日期")
    typed["amount"] = numbers.get("amount", pd.Series(np.nan, index=frame.index)).astype("float64")
    v.add("legal_basis_missing", (kind.isin(sorted(policy.legal_basis_kinds)) & frame["document_no"].isna()).to_numpy(),
          "document_no", "the catalogue requires a legal-basis document number for this kind",
          "目录要求此类记录有法律依据文书号")
    verified_text = frame["verified"].astype("string").str.lower()
    verified = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    verified[verified_text.isin(_TRUE)] = True
    verified[verified_text.isin(_FALSE)] = False
    v.add("value_invalid", (frame["verified"].notna() & verified.isna()).to_numpy(), "verified",
          "verified must be true or false", "verified 须为 true 或 false")
    typed["verified"] = verified
    exemption = frame["exemption"]
    v.add("value_invalid", (exemption.notna() & ~exemption.isin(list(policy.exemption_reasons))).to_numpy(),
          "exemption", f"exemption must be empty or one of {list(policy.exemption_reasons)}",
          f"exemption 须为空或 {'、'.join(policy.exemption_reasons)}")
    return typed, v


# --------------------------------------------------------------------------------------------
# storing
# --------------------------------------------------------------------------------------------
def _content_hash_sql(columns: tuple[str, ...]) -> str:
    """sha256 of a row's contract columns as DuckDB SQL, independent of the source format (the typed
    frame's values cast to text, missing as ␀)."""
    parts = ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '\u2400')" for c in columns)
    return f"sha256(concat_ws(chr(31), {parts}))"


def _printable(value: object, limit: int = _VALUE_SHOWN) -> str | None:
    """A value as the quarantine shows it: undecodable bytes as \\xNN, control characters as \\uNNNN,
    cut after ``limit`` characters (the length is said), so the quarantine file stays valid, readable UTF-8."""
    if value is None:
        return None
    text = str(value)
    n = len(text)
    text = text[:limit].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = re.sub(control_pattern(False), lambda m: f"\\u{ord(m.group()):04x}", text)
    return text if n <= limit else f"{text}…（共 {n} 字 / {n} characters）"


def _messages(rows: np.ndarray, lines: np.ndarray, fields: np.ndarray, zh: np.ndarray, en: np.ndarray,
              rules: list[str]) -> tuple[list[str], list[str]]:
    out_zh, out_en = [], []
    for r, ln, f, z, e, rule in zip(rows, lines, fields, zh, en, rules, strict=True):
        label = FIELD_LABELS_ZH.get(f, f)
        out_zh.append(f"第 {ln} 行（数据第 {r} 行）{label}（{f}）：{z}（规则 {rule}：{RULE_TEXT[rule][0]}）")
        out_en.append(f"line {ln} (data row {r}), field {f}: {e} (rule {rule}: {RULE_TEXT[rule][1]})")
    return out_zh, out_en


@dataclass
class _Staged:
    """One input file's rows after validation, on disk under the batch's staging directory."""

    name: str
    table: str
    key: str
    info: TableInfo
    layout: Layout | None
    mapping: Mapping | None
    stage: Path
    read: int = 0
    chunks: int = 0


class _Batch:
    """Stages every file of one batch under ``tmp_dir/_stage``, then writes the batch's tables."""

    def __init__(self, store: Path, tmp_dir: Path, batch_id: str, stamp: pd.Timestamp, con) -> None:
        self.store, self.tmp_dir, self.batch_id, self.stamp, self.con = store, tmp_dir, batch_id, stamp, con
        self.stage_root = tmp_dir / "_stage"
        self.stage_root.mkdir()
        self.files: list[_Staged] = []
        self.summaries: list[FileSummary] = []
        self.quarantined_feeds: list[pd.DataFrame] = []  # department, kind, rule, id of quarantined record rows

    def stage_file(self, path: Path, table: str, reader: TableReader, *, layout: Layout | None,
                   mapping: Mapping | None, validate) -> _Staged:
        """Validate ``path`` chunk by chunk; accepted rows, quarantined rows and keys go to Parquet parts."""
        key = "record_id" if table == "records" else "uscc"
        columns = RECORD_COLUMNS if table == "records" else SUBJECT_COLUMNS
        staged = _Staged(path.name, table, key, reader.info, layout, mapping,
                         self.stage_root / f"{len(self.files)}-{table}")
        for sub in ("accepted", "quarantine", "keys"):
            (staged.stage / sub).mkdir(parents=True)
        logger.debug("phase: stage %s", path.name)
        for chunk in reader.chunks():
            if mapping is not None:
                frame, verdict = mapping.to_records(chunk.frame)
            else:
                frame = chunk.frame.reindex(columns=list(columns))
                verdict = _Verdict(len(frame))
            typed, verdict = validate(frame, verdict, chunk.suspect)
            self._write_chunk(staged, chunk, frame, typed, verdict, columns)
            staged.read += len(frame) + len(chunk.bad)
            staged.chunks += 1
            # a chunk's frames sit in reference cycles (pandas): without a collection per chunk they pile up
            # until the cyclic GC happens to run, and memory grows with the file (measured: ~67 MB a chunk)
            del frame, typed, verdict, chunk
            gc.collect()
        reader.check_conservation()
        if staged.read == 0:
            raise MalformedFileError(f"文件 {path.name}：只有表头，没有数据行（has a header but no data rows）")
        self.files.append(staged)
        return staged

    def _write_chunk(self, staged: _Staged, chunk, frame: pd.DataFrame, typed: pd.DataFrame, verdict: _Verdict,
                     columns: tuple[str, ...]) -> None:
        part = f"part-{staged.chunks:05d}.parquet"
        key = staged.key
        ok = ~verdict.rejected
        accepted = typed.loc[ok].copy()
        accepted["source_row"] = chunk.rows[ok]
        accepted["source_line"] = chunk.lines[ok]
        if len(accepted):
            self.con.register("_chunk", accepted)
            types = _RECORD_TYPES if staged.table == "records" else _SUBJECT_TYPES
            cols = ", ".join([f'CAST("{c}" AS {types.get(c, "VARCHAR")}) AS "{c}"' for c in columns]
                             + [f"{_content_hash_sql(columns)} AS content_hash", "CAST(source_row AS BIGINT) AS source_row",
                                "CAST(source_line AS BIGINT) AS source_line"])
            self.con.execute(f"COPY (SELECT {cols} FROM _chunk) TO '{staged.stage / 'accepted' / part}' (FORMAT parquet)")
            self.con.unregister("_chunk")
        # every row's key (even rejected rows: a repeated key is a duplicate whatever its content)
        keys = pd.DataFrame({"k": frame[key].to_numpy(dtype=object), "row": chunk.rows,
                             "rank": verdict.rank.astype("int32")})
        keys = keys[keys["k"].notna()]
        if len(keys):
            keys.to_parquet(staged.stage / "keys" / part, index=False)
        idx = np.flatnonzero(verdict.rejected)
        rules = [RULES[r] for r in verdict.rank[idx]]
        fields = verdict.field[idx]
        natural = np.array([r == "natural_person" for r in rules], dtype=bool)
        values = [None if nat or f in PERSONAL_FIELDS or f not in frame.columns
                  else _printable(frame.iat[i, frame.columns.get_loc(f)])
                  for i, f, nat in zip(idx, fields, natural, strict=True)]
        keys_shown = [None if nat else _printable(k, 60) for k, nat in
                      zip(frame[key].to_numpy(dtype=object)[idx], natural, strict=True)]
        zh, en = _messages(chunk.rows[idx], chunk.lines[idx], fields, verdict.message_zh[idx], verdict.message[idx],
                           rules)
        if staged.table == "records" and len(idx):
            future = np.array([r == "date_in_future" for r in rules], dtype=bool)
            self.quarantined_feeds.append(pd.DataFrame({
                "department": [_printable(x, 60) for x in frame["department"].to_numpy(dtype=object)[idx]],
                "kind": [_printable(x, 60) for x in frame["kind"].to_numpy(dtype=object)[idx]],
                "rule": rules, "id": keys_shown,
                # the dates of rows refused as future: a day/month swap sends part of a feed there (gates)
                "date": [_printable(x, 20) if f else None for x, f in
                         zip(frame["decision_date"].to_numpy(dtype=object)[idx], future, strict=True)]}))
        bad = chunk.bad
        q = pd.DataFrame({
            "file": staged.name,
            "row": np.concatenate([chunk.rows[idx], np.array([b.row for b in bad], dtype=np.int64)]),
            "line": np.concatenate([chunk.lines[idx], np.array([b.line for b in bad], dtype=np.int64)]),
            "key": keys_shown + [None] * len(bad),
            "field": list(fields) + [None] * len(bad),
            # the raw line is shown only for contract record files: a subject's or a national file's line
            # may carry personal data (legal representatives, natural persons)
            "value": values + [_printable(b.text) if staged.mapping is None and staged.table == "records" else None
                               for b in bad],
            "rule": rules + [b.rule for b in bad],
            "message": zh + [f"{b.detail_zh}（规则 {b.rule}：{RULE_TEXT[b.rule][0]}）" for b in bad],
            "message_en": en + [f"{b.detail_en} (rule {b.rule}: {RULE_TEXT[b.rule][1]})" for b in bad],
        }, columns=list(QUARANTINE_COLUMNS))
        if len(q):
            q.astype({c: "string" for c in QUARANTINE_COLUMNS if c not in ("row", "line")}).to_parquet(
                staged.stage / "quarantine" / part, index=False)

    # -- the whole file: duplicates across chunks, versions against the store, quarantine ------------
    def finish_file(self, staged: _Staged) -> tuple[FileSummary, pd.Index | None]:
        con, stage, key = self.con, staged.stage, staged.key
        dup_rank = RULES.index("duplicate_record_id")
        logger.debug("phase: duplicates %s", staged.name)
        glob = lambda sub: f"read_parquet('{stage / sub}/*.parquet')"  # noqa: E731
        has = lambda sub: any((stage / sub).glob("*.parquet"))  # noqa: E731
        # a row repeating a key seen in an earlier row is a duplicate, unless it broke a rule ranked higher
        if has("keys"):
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _dups AS
                SELECT row, first_row FROM (
                    SELECT row, rank, MIN(row) OVER (PARTITION BY k) AS first_row FROM {glob('keys')})
                WHERE row > first_row AND rank > {dup_rank}""")
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE _dups (row BIGINT, first_row BIGINT)")
        columns = RECORD_COLUMNS if staged.table == "records" else SUBJECT_COLUMNS
        types = _RECORD_TYPES if staged.table == "records" else _SUBJECT_TYPES
        con.execute("CREATE OR REPLACE TEMP TABLE _refbad (row BIGINT)")
        if has("accepted"):
            refs = self._foreign_refs(staged, glob("accepted")) if staged.table == "records" else None
            # views, not tables: a province-size file stays on disk (Parquet) and is streamed by each query
            con.execute(f"CREATE OR REPLACE TEMP VIEW _acc AS SELECT a.* FROM {glob('accepted')} a "
                        "ANTI JOIN _dups d ON a.source_row = d.row ANTI JOIN _refbad r ON a.source_row = r.row")
            dup_quarantine = con.sql(f"""SELECT a.source_row AS row, a.source_line AS line, a."{key}" AS k, d.first_row
                FROM {glob('accepted')} a JOIN _dups d ON a.source_row = d.row""").df()
        else:
            refs = None
            con.execute("CREATE OR REPLACE TEMP VIEW _acc AS SELECT "
                        + ", ".join(f'CAST(NULL AS {types.get(c, "VARCHAR")}) AS "{c}"' for c in columns)
                        + ", CAST(NULL AS VARCHAR) AS content_hash, CAST(NULL AS BIGINT) AS source_row, "
                        "CAST(NULL AS BIGINT) AS source_line WHERE false")
            dup_quarantine = pd.DataFrame(columns=["row", "line", "k", "first_row"])
        accepted = int(con.execute("SELECT COUNT(*) FROM _acc").fetchall()[0][0])
        logger.debug("phase: versions %s", staged.name)
        n_new, n_ver, n_same = self._write_versions(staged, columns, types)
        logger.debug("phase: quarantine %s", staged.name)
        q = self._quarantine(staged, dup_quarantine)
        if refs is not None and len(refs):
            q = pd.concat([q, refs], ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
        target = self.tmp_dir / "quarantine.csv"
        q.to_csv(target, mode="a" if target.exists() else "w", header=not target.exists(), index=False,
                 encoding="utf-8")
        by_rule = {str(k): int(c) for k, c in q["rule"].value_counts().items()} if len(q) else {}
        info = staged.info
        summary = FileSummary(
            file=staged.name, table=staged.table, read=staged.read, accepted=accepted, quarantined=len(q),
            new=n_new, new_versions=n_ver, unchanged=n_same, by_rule=by_rule, format=info.format,
            encoding=info.encoding, encoding_detected_by=info.encoding_detected_by,
            layout=staged.layout.name if staged.layout else "contract",
            layout_title=staged.layout.title_zh if staged.layout else "数据契约格式 (docs/data-contract.md)",
            columns=(staged.mapping.report() if staged.mapping else [{"column": c, "mapped_to": c} for c in info.header]),
            physical_lines=info.physical_lines, blank_lines=info.blank_lines, header_line=info.header_line,
            skipped_lines=info.skipped_lines, sheet=info.sheet, sheets=list(info.sheets),
        )
        if summary.read != summary.accepted + summary.quarantined:
            raise AssertionError(f"{staged.name}: read {summary.read} ≠ accepted {summary.accepted} + quarantined "
                                 f"{summary.quarantined}")
        self.summaries.append(summary)
        known = None
        if staged.table == "subjects":
            known = pd.Index(con.sql("SELECT DISTINCT uscc FROM _acc").df()["uscc"])
        return summary, known

    def _foreign_refs(self, staged: _Staged, accepted: str) -> pd.DataFrame | None:
        """Table ``_refbad`` (row) and the quarantine rows of accepted records whose ``ref_record_id``
        names a record (in the store, this batch or this file) none of whose versions is the row's own
        subject: a repair or revocation of another subject's record (rule ref_other_subject)."""
        con = self.con
        if not con.execute(f"SELECT count(*) FROM {accepted} WHERE ref_record_id IS NOT NULL").fetchone()[0]:
            return None
        owners = [f"SELECT record_id, uscc FROM {accepted}"]
        if has_table(self.store, "records"):
            owners.append(f"SELECT record_id, uscc FROM {scan_sql(self.store, 'records')}")
        written = sorted(str(p) for p in (self.tmp_dir / "records").rglob("*.parquet"))
        if written:
            owners.append(f"SELECT record_id, uscc FROM read_parquet({sql_file_list(written)}, union_by_name = true)")
        bad = con.execute(f"""
            SELECT a.source_row AS row, a.source_line AS line, a.record_id AS k, a.ref_record_id AS ref,
                   any_value(o.uscc) AS owner
            FROM {accepted} a JOIN ({" UNION ALL ".join(owners)}) o ON o.record_id = a.ref_record_id
            WHERE a.ref_record_id IS NOT NULL AND a.source_row NOT IN (SELECT row FROM _dups)
            GROUP BY a.source_row, a.source_line, a.record_id, a.ref_record_id, a.uscc
            HAVING NOT bool_or(o.uscc = a.uscc)""").df()
        if not len(bad):
            return None
        con.register("_refbad_df", bad[["row"]])
        con.execute("INSERT INTO _refbad SELECT row FROM _refbad_df")
        con.unregister("_refbad_df")
        return pd.DataFrame({
            "file": staged.name, "row": bad["row"].astype("int64"), "line": bad["line"].astype("int64"),
            "key": [_printable(k, 60) for k in bad["k"]], "field": "ref_record_id",
            "value": [_printable(r, 60) for r in bad["ref"]], "rule": "ref_other_subject",
            "message": [f"第 {ln} 行（数据第 {r} 行）字段 ref_record_id：关联记录 {ref} 属于另一主体"
                        f"（规则 ref_other_subject：{RULE_TEXT['ref_other_subject'][0]}）"
                        for ln, r, ref in zip(bad["line"], bad["row"], bad["ref"], strict=True)],
            "message_en": [f"line {ln} (data row {r}), field ref_record_id: record {ref} belongs to another "
                           f"subject (rule ref_other_subject: {RULE_TEXT['ref_other_subject'][1]})"
                           for ln, r, ref in zip(bad["line"], bad["row"], bad["ref"], strict=True)],
        }, columns=list(QUARANTINE_COLUMNS))

    def write_quarantined_feeds(self) -> None:
        """The quarantined record rows per feed and rule (gates' rules feed_quarantined and date_swap read
        it): their count, up to 5 ids, and the raw decision dates of the rows refused as future."""
        if not self.quarantined_feeds:
            return
        q = pd.concat(self.quarantined_feeds, ignore_index=True)
        q[["department", "kind"]] = q[["department", "kind"]].astype(object)
        agg = q.groupby(["department", "kind", "rule"], dropna=False).agg(
            n=("rule", "size"), ids=("id", lambda s: sorted(x for x in s if x is not None)[:5]),
            dates=("date", lambda s: [x for x in s if isinstance(x, str)])).reset_index()
        agg.to_parquet(self.tmp_dir / QUARANTINE_FEEDS, index=False)

    def _write_versions(self, staged: _Staged, columns: tuple[str, ...], types: dict[str, str]) -> tuple[int, int, int]:
        """Keep rows whose content is new; number their version after the stored ones (in DuckDB, so the
        store's history is never loaded into pandas)."""
        con, key, table = self.con, staged.key, staged.table
        # the stored versions, and those this batch's earlier files wrote: a row repeated in a later file
        # of the batch adds nothing, a changed one is the next version (one row per key and version)
        known = [f'SELECT "{key}", version, content_hash FROM {scan_sql(self.store, table)}'] \
            if has_table(self.store, table) else []
        written = sorted(str(p) for p in (self.tmp_dir / table).rglob("*.parquet"))
        if written:
            known.append(f'SELECT "{key}", version, content_hash FROM read_parquet({sql_file_list(written)}, union_by_name = true)')
        if known:
            # one pass over the accepted rows: each joined to the known versions of its key
            status = f"""WITH existing AS (SELECT "{key}" AS k, version, content_hash AS h
                                  FROM ({" UNION ALL ".join(known)}) WHERE "{key}" IN (SELECT "{key}" FROM _acc)),
                     latest AS (SELECT k, MAX(version) AS max_version FROM existing GROUP BY k),
                     seen AS (SELECT DISTINCT k, h FROM existing)
                SELECT a.*, s.k IS NOT NULL AS _unchanged, l.max_version AS _max_version
                FROM _acc a LEFT JOIN seen s ON a."{key}" = s.k AND a.content_hash = s.h
                            LEFT JOIN latest l ON a."{key}" = l.k"""
        else:
            status = "SELECT a.*, false AS _unchanged, CAST(NULL AS INTEGER) AS _max_version FROM _acc a"
        con.execute(f"CREATE OR REPLACE TEMP TABLE _counts AS SELECT COUNT(*) FILTER (WHERE _unchanged) AS same, "
                    "COUNT(*) FILTER (WHERE NOT _unchanged AND _max_version IS NOT NULL) AS ver, "
                    f"COUNT(*) FILTER (WHERE NOT _unchanged AND _max_version IS NULL) AS new FROM ({status})")
        n_same, n_ver, n_new = con.execute("SELECT same, ver, new FROM _counts").fetchall()[0]
        if n_new + n_ver:
            stamp = self.stamp.isoformat(sep=" ")
            fresh = (f"""SELECT * EXCLUDE (_unchanged, _max_version), COALESCE(_max_version, 0) + 1 AS version,
                        TIMESTAMP '{stamp}' AS ingested_at, '{self.batch_id}' AS batch_id,
                        '{staged.name.replace("'", "''")}' AS source_file
                     FROM ({status}) WHERE NOT _unchanged""")
            select = _store_select(columns, types)
            out = self.tmp_dir / table
            if table == "records":
                con.execute(f"COPY (SELECT {select}, CAST(year(decision_date) AS INTEGER) AS decision_year "
                            f"FROM ({fresh})) TO '{out}' "
                            "(FORMAT parquet, PARTITION_BY (decision_year), FILENAME_PATTERN "
                            f"'part-{len(self.summaries)}-{{i}}', OVERWRITE_OR_IGNORE)")
            else:
                out.mkdir(exist_ok=True)
                con.execute(f"COPY (SELECT {select} FROM ({fresh})) "
                            f"TO '{out / f'part-{len(self.summaries)}.parquet'}' (FORMAT parquet)")
        return int(n_new), int(n_ver), int(n_same)

    def _quarantine(self, staged: _Staged, dups: pd.DataFrame) -> pd.DataFrame:
        """The file's quarantine: rows rejected per chunk (a duplicate's rule where it outranks theirs) and
        accepted rows that repeat an earlier key."""
        con, stage, key = self.con, staged.stage, staged.key
        parts = sorted((stage / "quarantine").glob("*.parquet"))
        q = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else \
            pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
        dup_rows = con.sql("SELECT row, first_row FROM _dups").df()
        if len(q) and len(dup_rows):
            first = dict(zip(dup_rows["row"], dup_rows["first_row"], strict=True))
            repeat = q["row"].isin(first.keys()) & q["rule"].map(lambda r: RULES.index(r) > RULES.index("duplicate_record_id"))
            if repeat.any():
                firsts = q.loc[repeat, "row"].map(first)
                q.loc[repeat, "field"] = key
                q.loc[repeat, "value"] = q.loc[repeat, "key"]
                q.loc[repeat, "rule"] = "duplicate_record_id"
                zh, en = _repeat_messages(key, q.loc[repeat, "line"], q.loc[repeat, "row"], firsts)
                q.loc[repeat, "message"], q.loc[repeat, "message_en"] = zh, en
        if len(dups):
            zh, en = _repeat_messages(key, dups["line"], dups["row"], dups["first_row"])
            extra = pd.DataFrame({
                "file": staged.name, "row": dups["row"].astype("int64"), "line": dups["line"].astype("int64"),
                "key": [_printable(k, 60) for k in dups["k"]], "field": key,
                "value": [_printable(k, 60) for k in dups["k"]], "rule": "duplicate_record_id",
                "message": zh, "message_en": en,
            })
            q = pd.concat([q, extra], ignore_index=True)
        return q.sort_values("row", kind="stable").reset_index(drop=True)


def _repeat_messages(key: str, lines, rows, firsts) -> tuple[list[str], list[str]]:
    """The quarantine messages of rows repeating an earlier row's key (Chinese, English)."""
    triples = list(zip(lines, rows, firsts, strict=True))
    return ([f"第 {ln} 行（数据第 {r} 行）字段 {key}：与数据第 {f} 行重复（规则 duplicate_record_id）" for ln, r, f in triples],
            [f"line {ln} (data row {r}), field {key}: repeats data row {f} (rule duplicate_record_id)"
             for ln, r, f in triples])


def _batch_id(ingested_at: datetime, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.name.encode())
        digest.update(str(p.stat().st_size).encode())
    return f"{ingested_at.strftime('%Y%m%dT%H%M%S%fZ')}-{digest.hexdigest()[:8]}"


def _publish_batch(store: Path, tmp_dir: Path, final_dir: Path, *, as_of: date,
                   gates: QualityConfig | None, pending: dict[str, str] | None = None) -> tuple[str, list[dict]]:
    """Make the written batch part of the store in one step, or hold it, or leave the store exactly as it was.

    The one place a batch becomes part of the store, for every ingest path (features.store owns
    how): staged under ``batches/`` with the current state it implies, checked by the data-quality
    gates (features.gates; skipped when ``gates`` is None), then published by one manifest replace,
    or, if a gate holds it, left staged for a person to release or reject. If any step fails the
    staged batch is discarded and :class:`StoreError` says why. Returns the status and the findings.
    """
    logger.debug("phase: publish")
    n_waiting, examples, behind = dependent_records(tmp_dir, pending or {})
    if n_waiting:  # records of subjects only a held batch brings: wait behind it (features.held_queue)
        park(store, tmp_dir, final_dir.name, None if gates is None else gates.model_dump(mode="json"))
        finding = held_behind_finding(n_waiting, examples, behind)
        record_gate(store, final_dir.name, [finding], as_of=as_of, published=False)
        return "held", [finding.to_dict()]
    staged = stage_batch(store, tmp_dir, batch_id=final_dir.name, memory_limit=_DUCKDB_MEMORY)
    try:
        findings = [] if gates is None else check_batch(store, staged.batch_id, as_of=as_of, config=gates,
                                                        memory_limit=_DUCKDB_MEMORY)
        held = bool(blocking(findings))
        if not held:
            publish(store, staged, memory_limit=_DUCKDB_MEMORY)  # ingestion's memory bound
        if gates is not None:
            record_gate(store, staged.batch_id, findings, as_of=as_of, published=not held)
    except BaseException:
        if staged.batch_id not in snapshot(store).batch_ids:
            with contextlib.suppress(StoreError):  # the original error says why; the store is as before
                discard(store, staged)
        raise
    return ("held" if held else "published"), [f.to_dict() for f in findings]


def ingest(
    *,
    store: str | Path,
    subjects: str | Path | None = None,
    records: str | Path | list[str | Path] | tuple[str | Path, ...] | None = None,
    ingested_at: datetime | None = None,
    policy: Policy | None = None,
    source: str | None = None,
    layouts_dir: str | Path | None = None,
    chunk_rows: int = 100_000,
    gates: QualityConfig | None = None,
) -> IngestSummary:
    """Validate ``subjects`` and/or ``records`` files and add a batch to ``store``.

    ``records`` may be several files, each in the contract's layout or a national 双公示 layout
    recognised by its header (``source`` forces one by name; ``layouts_dir`` adds a city's own
    mapping files). Subjects are validated first, so records may refer to subjects of the same
    batch. Raises :class:`MalformedFileError` (nothing written) when a file is refused whole.
    ``gates``: the data-quality rules (features.quality) run on the staged batch against the
    store's history; a batch that trips a holding rule is kept staged (``summary.status == "held"``)
    until released or rejected (features.gates). None: no gate (the batch is published as checked).
    """
    if subjects is None and not records:
        raise IngestError("nothing to ingest: give --subjects and/or --records")
    record_paths = [Path(p) for p in ([records] if isinstance(records, (str, Path)) else (records or []))]
    policy = policy or default_policy()
    ingested_at = ingested_at or datetime.now(UTC)
    if ingested_at.tzinfo is None:
        ingested_at = ingested_at.replace(tzinfo=UTC)
    ingested_on = ingested_at.date()
    store = Path(store)

    # Open every file (header, layout) before writing anything: an unreadable file refuses the batch.
    sub_reader = None
    if subjects is not None:
        sub_reader = _open(Path(subjects), chunk_rows)
        _check_contract_header(Path(subjects), sub_reader.info.header, SUBJECT_COLUMNS, sub_reader)
    rec_readers = []
    def fits(header: list[str]) -> bool:  # is this row a header the contract or a layout knows?
        try:
            recognise(header, source=source, layouts_dir=layouts_dir, policy=policy, contract_columns=RECORD_COLUMNS)
        except ValueError:
            return False
        return True

    for path in record_paths:
        reader = _open(path, chunk_rows, header_fits=fits)
        try:
            layout, mapping = recognise(reader.info.header, source=source, layouts_dir=layouts_dir,
                                        policy=policy, contract_columns=RECORD_COLUMNS,
                                        jsonl=reader.suffix == ".jsonl")
        except ValueError as exc:
            sheets = reader.sheets_summary_zh()
            raise MalformedFileError(f"file {path.name}: {sheets + '；' if sheets else ''}{exc}") from exc
        rec_readers.append((path, reader, layout, mapping))

    all_paths = ([Path(subjects)] if subjects is not None else []) + record_paths
    batch_id = _batch_id(ingested_at, all_paths)
    store.mkdir(parents=True, exist_ok=True)
    tmp_dir = store / f".tmp-{batch_id}"
    final_dir = store / BATCHES_DIR / batch_id
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET memory_limit = '{_DUCKDB_MEMORY}'")
    # rows carry source_row: no need to keep insertion order, which made the final partitioned COPY of a
    # 5 GB file (33 M rows) run out of its memory instead of streaming
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{tmp_dir / '_spill'}'")
    # the partitioned COPY of the records buffers up to this many rows per thread before writing them out,
    # in memory that does not spill: DuckDB's default (524,288) at ~0.5 kB a record row overran the memory
    # limit on a 5 GB file; below it the buffers stay small and the write stays streamed
    con.execute(f"SET partitioned_write_flush_threshold = {_PARTITION_FLUSH_ROWS}")
    stamp = pd.Timestamp(ingested_at).tz_convert("UTC").tz_localize(None)
    try:
        batch = _Batch(store, tmp_dir, batch_id, stamp, con)
        known = pd.Index(
            con.sql(f"SELECT DISTINCT uscc FROM {scan_sql(store, 'subjects')}").df()["uscc"]
            if has_table(store, "subjects") else []
        )
        # subjects of batches held for a person's decision: their records are not unknown, they wait
        pending = held_subjects(store, [r.batch_id for r in held_batches(store)])
        known = known.union(pd.Index(list(pending)))
        if sub_reader is not None:
            path = Path(subjects)
            check_text = _file_has_bad_text(path, sub_reader.info.encoding)

            def check_subjects(frame, verdict, suspect):
                return validate_subjects(frame, ingested_on=ingested_on, check_text=check_text, verdict=verdict,
                                         suspect=suspect)

            staged = batch.stage_file(path, "subjects", sub_reader, layout=None, mapping=None,
                                      validate=check_subjects)
            _, accepted_codes = batch.finish_file(staged)
            known = known.union(accepted_codes)
        for path, reader, layout, mapping in rec_readers:
            check_text = _file_has_bad_text(path, reader.info.encoding)

            def check_records(frame, verdict, suspect, check_text=check_text):
                return validate_records(frame, known_uscc=known, ingested_on=ingested_on, policy=policy,
                                        check_text=check_text, verdict=verdict, suspect=suspect)

            staged = batch.stage_file(path, "records", reader, layout=layout, mapping=mapping, validate=check_records)
            batch.finish_file(staged)
        batch.write_quarantined_feeds()
        if not (tmp_dir / "quarantine.csv").exists():
            pd.DataFrame(columns=list(QUARANTINE_COLUMNS)).to_csv(tmp_dir / "quarantine.csv", index=False)
        shutil.rmtree(batch.stage_root, ignore_errors=True)
        shutil.rmtree(tmp_dir / "_spill", ignore_errors=True)
        summary = IngestSummary(
            batch_id=batch_id,
            ingested_at=ingested_at.isoformat(),
            store=str(store),
            batch_dir=str(final_dir),
            quarantine_path=str(final_dir / "quarantine.csv"),
            files=batch.summaries,
        )
        (tmp_dir / "summary.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2),
                                              encoding="utf-8")
        con.close()
        summary.status, summary.findings = _publish_batch(store, tmp_dir, final_dir, as_of=ingested_on, gates=gates,
                                                                 pending=pending)
        parked = waiting_path(store, batch_id)
        if parked.is_dir():  # waiting behind a held batch: its files are there, not under batches/
            summary.batch_dir, summary.quarantine_path = str(parked), str(parked / "quarantine.csv")
    except BaseException:
        con.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return summary
