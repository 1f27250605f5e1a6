"""Ingestion: validate subject and record files at the boundary, store valid rows, quarantine the rest.

``ingest`` is the one function in ``features`` whose job is I/O. It promises:

* every data row is either accepted or quarantined (``read = accepted + quarantined``), with exactly
  one rule per rejected row, the first failing one in :data:`features.schema.RULES` order;
* a rejected row never blocks a valid one; a malformed file (unknown format, missing or unknown
  columns, binary garbage, no data rows) is refused whole with :class:`MalformedFileError` and
  nothing is written;
* a batch is written to a temporary directory and renamed into the store in one step;
* re-ingesting a row whose content is already stored adds nothing; a changed row (same key,
  different content) is stored as a new ``version``, history is kept.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from features.policy import GBT4754_SECTIONS as GBT_SECTIONS
from features.policy import SEVERITIES, Policy, default_policy
from features.schema import (
    LEGAL_FORMS,
    QUARANTINE_COLUMNS,
    RECORD_COLUMNS,
    RECORD_DATE_COLUMNS,
    RULES,
    SUBJECT_COLUMNS,
    SUBJECT_DATE_COLUMNS,
    SUBJECT_STATUSES,
)
from features.store import BATCHES_DIR, add_batch, has_table, scan_sql
from uscc import valid_uscc_mask

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")


def _store_select(columns: tuple[str, ...], types: dict[str, str], extra: tuple[str, ...] = ()) -> str:
    """Explicit store types: an all-empty date column must still be DATE, and timestamps are
    microseconds (Spark cannot read Parquet TIMESTAMP(NANOS))."""
    cols = [f'CAST("{c}" AS {types.get(c, "VARCHAR")}) AS "{c}"' for c in columns]
    cols += ['CAST(version AS INTEGER) AS version', "content_hash", "CAST(ingested_at AS TIMESTAMP) AS ingested_at",
             "batch_id", "source_file", "CAST(source_row AS BIGINT) AS source_row", *extra]
    return f"SELECT {', '.join(cols)} FROM _fresh"


_RECORD_TYPES = {"decision_date": "DATE", "end_date": "DATE", "publicity_end": "DATE", "verified_on": "DATE",
                 "amount": "DOUBLE", "verified": "BOOLEAN"}
_SUBJECT_TYPES = {"registered_on": "DATE", "status_date": "DATE", "registered_capital": "DOUBLE",
                  "employees": "BIGINT"}
_BAD_TEXT = re.compile("[\udc80-\udcff\ufffd]")
_TRUE = frozenset({"true", "1", "yes", "t"})
_FALSE = frozenset({"false", "0", "no", "f"})


class IngestError(ValueError):
    """Ingestion could not start (bad arguments)."""


class MalformedFileError(IngestError):
    """A whole input file is refused: wrong format, wrong columns, binary garbage or empty."""


@dataclass
class FileSummary:
    """Counts for one input file. ``read == accepted + quarantined`` always."""

    file: str
    table: str
    read: int
    accepted: int
    quarantined: int
    new: int
    new_versions: int
    unchanged: int
    by_rule: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestSummary:
    """What one ingestion batch did, and where it wrote."""

    batch_id: str
    ingested_at: str
    store: str
    batch_dir: str
    quarantine_path: str
    files: list[FileSummary]

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
# reading
# --------------------------------------------------------------------------------------------
def read_table(path: str | Path, expected: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV, Parquet or JSON Lines file into a frame of strings (None = missing).

    Invalid UTF-8 bytes survive as lone surrogates (CSV/JSONL) so the row can be quarantined
    under ``text_encoding`` instead of failing the file. Raises :class:`MalformedFileError`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise MalformedFileError(f"file {path.name}: suffix {suffix!r} is not one of {SUPPORTED_SUFFIXES}")
    if not path.is_file():
        raise MalformedFileError(f"file {path}: does not exist")
    if path.stat().st_size == 0:
        raise MalformedFileError(f"file {path.name}: is empty (0 bytes)")
    try:
        if suffix == ".parquet":
            frame = _read_parquet(path)
        else:
            with path.open("rb") as fh:
                head = fh.read(65536)
            if b"\x00" in head:
                raise MalformedFileError(f"file {path.name}: contains NUL bytes — binary data, not {suffix[1:]} text")
            if suffix == ".csv":
                frame = pd.read_csv(
                    path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8",
                    encoding_errors="surrogateescape", skip_blank_lines=True,
                )
                frame = frame.replace({"": None})
            else:
                frame = _stringify(_read_jsonl(path))
    except MalformedFileError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for garbage input
        raise MalformedFileError(f"file {path.name}: cannot be parsed as {suffix[1:]}: {exc}") from exc
    columns = [str(c) for c in frame.columns]
    missing = [c for c in expected if c not in columns]
    unknown = [c for c in columns if c not in expected]
    if missing or unknown:
        raise MalformedFileError(
            f"file {path.name}: columns do not match the data contract; missing {missing}, unknown {unknown[:10]}"
        )
    if len(frame) == 0:
        raise MalformedFileError(f"file {path.name}: has a header but no data rows")
    return frame[list(expected)].reset_index(drop=True)


def _read_jsonl(path: Path) -> pd.DataFrame:
    # pandas' JSON reader cannot keep undecodable bytes; the stdlib parser can (as surrogates).
    rows = []
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MalformedFileError(f"file {path.name}: line {number} is not JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise MalformedFileError(f"file {path.name}: line {number} is not a JSON object")
            rows.append(row)
    return pd.DataFrame.from_records(rows)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    frame = table.to_pandas(types_mapper=None, date_as_object=True)
    return _stringify(frame)


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
            out[col] = strs.where(~mask, None)
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


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
class _Verdict:
    """First failing rule per row, in RULES priority order (rules may be added in any order)."""

    def __init__(self, n: int) -> None:
        self.rank = np.full(n, len(RULES), dtype=np.int16)
        self.field = np.empty(n, dtype=object)
        self.message = np.empty(n, dtype=object)

    def add(self, rule: str, mask: np.ndarray | pd.Series, field_name: str | np.ndarray, message: str | np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        rank = RULES.index(rule)
        take = mask & (rank < self.rank)
        if not take.any():
            return
        self.rank[take] = rank
        self.field[take] = field_name if isinstance(field_name, str) else np.asarray(field_name)[take]
        self.message[take] = message if isinstance(message, str) else np.asarray(message)[take]

    @property
    def rejected(self) -> np.ndarray:
        return self.rank < len(RULES)


def _present(s: pd.Series) -> np.ndarray:
    return s.notna().to_numpy()


def _parse_dates(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """(parsed dates, mask of present-but-impossible values such as 2023-02-30)."""
    parsed = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    invalid = _present(s) & parsed.isna().to_numpy()
    return parsed, invalid


def _parse_numbers(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    parsed = pd.to_numeric(s, errors="coerce")
    invalid = _present(s) & parsed.isna().to_numpy()
    return parsed, invalid


def _text_columns_bad(frame: pd.DataFrame, verdict: _Verdict) -> None:
    for col in frame.columns:
        s = frame[col]
        if s.isna().all():
            continue
        bad = s.str.contains(_BAD_TEXT, na=False).to_numpy()
        if bad.any():
            verdict.add("text_encoding", bad, col, f"{col} is not valid UTF-8 text (GBK bytes or U+FFFD)")


def _file_has_bad_text(path: Path) -> bool:
    """True if the file's bytes are not clean UTF-8 (CSV/JSONL) or contain U+FFFD anywhere.

    Most files are clean, and then the per-value scan for bad text is skipped; the file is read
    in 64 MiB chunks so a 20 M-row file is never held in memory twice.
    """
    if path.suffix.lower() == ".parquet":
        return True  # Parquet strings are decoded already; the per-value U+FFFD scan decides
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
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
    frame: pd.DataFrame, *, ingested_on: date, check_text: bool = True
) -> tuple[pd.DataFrame, _Verdict]:
    """Typed subjects and the per-row verdict (see :data:`features.schema.RULES`)."""
    n = len(frame)
    v = _Verdict(n)
    if check_text:
        _text_columns_bad(frame, v)
    uscc = frame["uscc"]
    v.add("duplicate_record_id", uscc.duplicated(keep="first") & uscc.notna(), "uscc",
          "uscc already appeared in an earlier row of this file")
    v.add("uscc_invalid", ~valid_uscc_mask(uscc), "uscc",
          "not an 18-character GB 32100-2015 code with a valid check character")
    typed = pd.DataFrame({c: frame[c] for c in SUBJECT_COLUMNS})
    for col in SUBJECT_DATE_COLUMNS:
        parsed, invalid = _parse_dates(frame[col])
        v.add("date_invalid", invalid, col, f"{col} is not a real calendar date YYYY-MM-DD")
        typed[col] = parsed.dt.date
    reg = pd.to_datetime(typed["registered_on"])
    v.add("date_in_future", (reg > pd.Timestamp(ingested_on)).to_numpy(), "registered_on",
          f"registered_on is after the ingestion date {ingested_on}")
    status_date = pd.to_datetime(typed["status_date"])
    v.add("date_order", (status_date < reg).to_numpy(), "status_date", "status_date is before registered_on")
    for col, as_int in (("registered_capital", False), ("employees", True)):
        parsed, invalid = _parse_numbers(frame[col])
        v.add("value_invalid", invalid, col, f"{col} is not a number")
        v.add("amount_negative", (parsed < 0).to_numpy(), col, f"{col} must be ≥ 0")
        if as_int:
            not_int = (parsed.notna() & (parsed != parsed.round())).to_numpy()
            v.add("value_invalid", not_int, col, f"{col} must be a whole number")
            parsed = parsed.round().astype("Int64")
        typed[col] = parsed
    for col in ("name", "industry", "registered_on"):
        v.add("field_missing", ~_present(frame[col]), col, f"{col} is required")
    v.add("value_invalid", (frame["industry"].notna() & ~frame["industry"].isin(GBT_SECTIONS)).to_numpy(),
          "industry", "industry must be a GB/T 4754-2017 section A–T")
    v.add("value_invalid", (frame["legal_form"].notna() & ~frame["legal_form"].isin(LEGAL_FORMS)).to_numpy(),
          "legal_form", f"legal_form must be one of {sorted(LEGAL_FORMS)}")
    v.add("value_invalid", (frame["status"].notna() & ~frame["status"].isin(SUBJECT_STATUSES)).to_numpy(),
          "status", f"status must be one of {sorted(SUBJECT_STATUSES)}")
    return typed, v


def validate_records(
    frame: pd.DataFrame,
    *,
    known_uscc: set[str] | pd.Index,
    ingested_on: date,
    policy: Policy,
    check_text: bool = True,
) -> tuple[pd.DataFrame, _Verdict]:
    """Typed records and the per-row verdict (see :data:`features.schema.RULES`)."""
    n = len(frame)
    v = _Verdict(n)
    if check_text:
        _text_columns_bad(frame, v)
    rid = frame["record_id"]
    v.add("duplicate_record_id", (rid.duplicated(keep="first") & rid.notna()).to_numpy(), "record_id",
          "record_id already appeared in an earlier row of this file")
    v.add("field_missing", ~_present(rid), "record_id", "record_id is required")
    uscc = frame["uscc"]
    known = pd.Index(known_uscc) if not isinstance(known_uscc, pd.Index) else known_uscc
    is_known = uscc.isin(known).to_numpy()
    # known subjects' codes were validated when their subject row was accepted: check only the rest
    valid_code = is_known.copy()
    valid_code[~is_known] = valid_uscc_mask(uscc[~is_known])
    v.add("uscc_invalid", ~valid_code, "uscc", "not an 18-character GB 32100-2015 code with a valid check character")
    v.add("unknown_subject", valid_code & ~is_known, "uscc",
          "no such subject in this batch's accepted subjects or in the store")
    kind = frame["kind"]
    v.add("kind_unknown", ~kind.isin(list(policy.kinds)).to_numpy(), "kind",
          f"kind is not in the catalogue of policy {policy.version}")
    severity = frame["severity"]
    severity_kinds = [k for k, r in policy.kinds.items() if r.severity_required]
    bad_sev = (kind.isin(severity_kinds) & ~severity.isin(SEVERITIES)) | (severity.notna() & ~severity.isin(SEVERITIES))
    v.add("severity_invalid", bad_sev.to_numpy(), "severity",
          f"severity must be one of {list(SEVERITIES)} (required on {severity_kinds})")
    typed = pd.DataFrame({c: frame[c] for c in RECORD_COLUMNS})
    parsed_dates = {}
    for col in RECORD_DATE_COLUMNS:
        parsed, invalid = _parse_dates(frame[col])
        v.add("date_invalid", invalid, col, f"{col} is not a real calendar date YYYY-MM-DD")
        parsed_dates[col] = parsed
        typed[col] = parsed.dt.date
    v.add("field_missing", ~_present(frame["decision_date"]), "decision_date", "decision_date is required")
    decision = parsed_dates["decision_date"]
    v.add("date_in_future", (decision > pd.Timestamp(ingested_on)).to_numpy(), "decision_date",
          f"decision_date is after the ingestion date {ingested_on}")
    v.add("date_order", (parsed_dates["publicity_end"] < decision).to_numpy(), "publicity_end",
          "publicity_end is before decision_date")
    amount, bad_amount = _parse_numbers(frame["amount"])
    v.add("value_invalid", bad_amount, "amount", "amount is not a number")
    v.add("amount_negative", (amount < 0).to_numpy(), "amount", "amount must be ≥ 0 (CNY)")
    typed["amount"] = amount.astype("float64")
    v.add("legal_basis_missing", (kind.isin(sorted(policy.legal_basis_kinds)) & frame["document_no"].isna()).to_numpy(),
          "document_no", "the catalogue requires a legal-basis document number for this kind")
    verified_text = frame["verified"].str.lower()
    verified = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    verified[verified_text.isin(_TRUE)] = True
    verified[verified_text.isin(_FALSE)] = False
    v.add("value_invalid", (frame["verified"].notna() & verified.isna()).to_numpy(), "verified",
          "verified must be true or false")
    typed["verified"] = verified
    exemption = frame["exemption"]
    v.add("value_invalid", (exemption.notna() & ~exemption.isin(list(policy.exemption_reasons))).to_numpy(),
          "exemption", f"exemption must be empty or one of {list(policy.exemption_reasons)}")
    return typed, v


# --------------------------------------------------------------------------------------------
# storing
# --------------------------------------------------------------------------------------------
def _content_hash(con: duckdb.DuckDBPyConnection, typed: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """sha256 of a row's contract columns, independent of the source format (CSV/Parquet/JSONL)."""
    parts = ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '\u2400')" for c in columns)
    con.register("_typed", typed)
    hashes = con.sql(f"SELECT sha256(concat_ws(chr(31), {parts})) AS h FROM _typed").fetchnumpy()["h"]
    con.unregister("_typed")
    return np.asarray(hashes, dtype=object)


def _versions(
    con: duckdb.DuckDBPyConnection, typed: pd.DataFrame, key: str, store: Path, table: str
) -> tuple[pd.DataFrame, int, int, int]:
    """Keep rows whose content is new; number their version after the stored ones.

    The comparison runs in DuckDB against the stored Parquet (key, version, content_hash), so
    the store's history is never loaded into pandas.
    """
    if not has_table(store, table) or typed.empty:
        out = typed.assign(version=np.int32(1))
        return out, len(out), 0, 0
    con.register("_incoming", pd.DataFrame({"k": typed[key].to_numpy(), "h": typed["content_hash"].to_numpy(),
                                            "pos": np.arange(len(typed))}))
    status = con.sql(
        f"""WITH existing AS (SELECT "{key}" AS k, version, content_hash AS h FROM {scan_sql(store, table)}
                              WHERE "{key}" IN (SELECT k FROM _incoming)),
                 latest AS (SELECT k, MAX(version) AS max_version FROM existing GROUP BY k),
                 seen AS (SELECT DISTINCT k, h FROM existing)
            SELECT i.pos, s.k IS NOT NULL AS unchanged, l.max_version
            FROM _incoming i LEFT JOIN seen s ON i.k = s.k AND i.h = s.h LEFT JOIN latest l ON i.k = l.k
            ORDER BY i.pos"""
    ).df()
    con.unregister("_incoming")
    unchanged = status["unchanged"].to_numpy(dtype=bool)
    prior = status["max_version"].to_numpy(dtype="float64")
    fresh = typed.loc[~unchanged]
    prior_fresh = prior[~unchanged]
    out = fresh.assign(version=(np.nan_to_num(prior_fresh, nan=0.0) + 1).astype("int32"))
    new_versions = int((~np.isnan(prior_fresh)).sum())
    return out, len(out) - new_versions, new_versions, int(unchanged.sum())


def _quarantine_rows(file_name: str, frame: pd.DataFrame, key: str, verdict: _Verdict) -> pd.DataFrame:
    idx = np.flatnonzero(verdict.rejected)
    if len(idx) == 0:
        return pd.DataFrame(columns=list(QUARANTINE_COLUMNS))
    fields = verdict.field[idx]
    values = [
        _printable(frame.iat[i, frame.columns.get_loc(f)]) if f in frame.columns else None
        for i, f in zip(idx, fields, strict=True)
    ]
    return pd.DataFrame(
        {
            "file": file_name,
            "row": idx + 1,
            "key": [_printable(x) for x in frame[key].to_numpy()[idx]],
            "field": fields,
            "value": values,
            "rule": [RULES[r] for r in verdict.rank[idx]],
            "message": verdict.message[idx],
        }
    )


def _printable(value: object) -> str | None:
    """Undecodable bytes shown as \\xNN escapes, so the quarantine file itself is valid UTF-8."""
    if value is None:
        return None
    text = str(value)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def ingest(
    *,
    store: str | Path,
    subjects: str | Path | None = None,
    records: str | Path | None = None,
    ingested_at: datetime | None = None,
    policy: Policy | None = None,
) -> IngestSummary:
    """Validate ``subjects`` and/or ``records`` files and add a batch to ``store``.

    Subjects are validated first, so records may refer to subjects of the same batch. Raises
    :class:`MalformedFileError` (nothing written) when a file is refused whole.
    """
    if subjects is None and records is None:
        raise IngestError("nothing to ingest: give --subjects and/or --records")
    policy = policy or default_policy()
    ingested_at = ingested_at or datetime.now(UTC)
    if ingested_at.tzinfo is None:
        ingested_at = ingested_at.replace(tzinfo=UTC)
    ingested_on = ingested_at.date()
    store = Path(store)

    # Read both files before writing anything: a malformed file refuses the whole batch.
    sub_frame = read_table(subjects, SUBJECT_COLUMNS) if subjects is not None else None
    rec_frame = read_table(records, RECORD_COLUMNS) if records is not None else None

    digest = hashlib.sha256()
    for p in (subjects, records):
        if p is not None:
            digest.update(Path(p).name.encode())
            digest.update(str(Path(p).stat().st_size).encode())
    batch_id = f"{ingested_at.strftime('%Y%m%dT%H%M%S%fZ')}-{digest.hexdigest()[:8]}"
    store.mkdir(parents=True, exist_ok=True)
    tmp_dir = store / f".tmp-{batch_id}"
    final_dir = store / BATCHES_DIR / batch_id
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    tmp_dir.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    summaries: list[FileSummary] = []
    quarantines: list[pd.DataFrame] = []
    stamp = pd.Timestamp(ingested_at).tz_convert("UTC").tz_localize(None)
    try:
        known = pd.Index(
            con.sql(f"SELECT DISTINCT uscc FROM {scan_sql(store, 'subjects')}").df()["uscc"]
            if has_table(store, "subjects") else []
        )
        if sub_frame is not None:
            name = Path(subjects).name
            typed, verdict = validate_subjects(
                sub_frame, ingested_on=ingested_on, check_text=_file_has_bad_text(Path(subjects))
            )
            ok = ~verdict.rejected
            accepted = typed.loc[ok].copy()
            accepted["content_hash"] = _content_hash(con, accepted, SUBJECT_COLUMNS)
            fresh, n_new, n_ver, n_same = _versions(con, accepted, "uscc", store, "subjects")
            fresh = fresh.assign(ingested_at=stamp, batch_id=batch_id, source_file=name,
                                 source_row=fresh.index.to_numpy() + 1)
            if len(fresh):
                (tmp_dir / "subjects").mkdir()
                con.register("_fresh", fresh)
                con.execute(f"COPY ({_store_select(SUBJECT_COLUMNS, _SUBJECT_TYPES)}) TO '{tmp_dir / 'subjects' / 'part-0.parquet'}' (FORMAT parquet)")
                con.unregister("_fresh")
            known = known.union(pd.Index(accepted["uscc"].unique()))
            q = _quarantine_rows(name, sub_frame, "uscc", verdict)
            quarantines.append(q)
            summaries.append(_summary(name, "subjects", len(sub_frame), int(ok.sum()), q, n_new, n_ver, n_same))
        if rec_frame is not None:
            name = Path(records).name
            typed, verdict = validate_records(
                rec_frame, known_uscc=known, ingested_on=ingested_on, policy=policy,
                check_text=_file_has_bad_text(Path(records)),
            )
            ok = ~verdict.rejected
            accepted = typed.loc[ok].copy()
            accepted["content_hash"] = _content_hash(con, accepted, RECORD_COLUMNS)
            fresh, n_new, n_ver, n_same = _versions(con, accepted, "record_id", store, "records")
            fresh = fresh.assign(
                ingested_at=stamp, batch_id=batch_id, source_file=name,
                source_row=fresh.index.to_numpy() + 1,
                decision_year=pd.to_datetime(fresh["decision_date"]).dt.year.astype("int32"),
            )
            if len(fresh):
                con.register("_fresh", fresh)
                con.execute(
                    f"COPY ({_store_select(RECORD_COLUMNS, _RECORD_TYPES, ('decision_year',))}) TO '{tmp_dir / 'records'}' "
                    "(FORMAT parquet, PARTITION_BY (decision_year))"
                )
                con.unregister("_fresh")
            q = _quarantine_rows(name, rec_frame, "record_id", verdict)
            quarantines.append(q)
            summaries.append(_summary(name, "records", len(rec_frame), int(ok.sum()), q, n_new, n_ver, n_same))
        quarantine = pd.concat(quarantines, ignore_index=True) if quarantines else pd.DataFrame(
            columns=list(QUARANTINE_COLUMNS))
        quarantine.to_csv(tmp_dir / "quarantine.csv", index=False, encoding="utf-8")
        summary = IngestSummary(
            batch_id=batch_id,
            ingested_at=ingested_at.isoformat(),
            store=str(store),
            batch_dir=str(final_dir),
            quarantine_path=str(final_dir / "quarantine.csv"),
            files=summaries,
        )
        (tmp_dir / "summary.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2),
                                              encoding="utf-8")
        # staged with the current state it implies, then made visible in one step (features.store)
        add_batch(store, tmp_dir, batch_id=batch_id)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    finally:
        con.close()
    return summary


def _summary(name: str, table: str, read: int, accepted: int, q: pd.DataFrame, n_new: int, n_ver: int,
             n_same: int) -> FileSummary:
    by_rule = {str(k): int(c) for k, c in q["rule"].value_counts().items()} if len(q) else {}
    return FileSummary(file=name, table=table, read=read, accepted=accepted, quarantined=len(q), new=n_new,
                       new_versions=n_ver, unchanged=n_same, by_rule=by_rule)
