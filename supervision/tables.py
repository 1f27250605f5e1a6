"""Reading the contract's input tables (CSV, Parquet, JSON Lines) for the scheduler."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# Columns the scheduler needs from each contract table (docs/data-contract.md).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "subjects": ("uscc", "name", "industry", "district_code", "district_name", "status"),
    "grades": ("uscc", "grade", "as_of", "model_version"),
    "inspectors": ("inspector_id", "name", "department", "district_code", "qualified_items", "capacity"),
    "conflicts": ("inspector_id", "uscc"),
    "items": ("item_code", "department", "name_zh", "key_item", "industries"),
    "leads": ("uscc", "lead_type", "lead_date"),
    "history": ("uscc", "department", "inspection_item", "inspected_on"),
}


class TableError(ValueError):
    """An input table is missing, unreadable or lacks a required column."""


def read_table(path: str | Path, kind: str) -> pd.DataFrame:
    """Read one contract table by suffix (.csv, .parquet, .jsonl) as strings; check its columns."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{kind} file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            # Undecodable bytes (GBK dirt) become U+FFFD instead of losing the whole file.
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, encoding="utf-8", encoding_errors="replace"
            )
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            raise TableError(f"{kind} file {path}: suffix {suffix!r} not one of .csv, .parquet, .jsonl")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, TableError):
            raise
        raise TableError(f"{kind} file {path}: cannot read ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS.get(kind, ()) if c not in frame.columns]
    if missing:
        raise TableError(
            f"{kind} file {path}: missing columns {missing}; required {list(REQUIRED_COLUMNS[kind])}"
        )
    return frame


def as_bool(values: pd.Series) -> pd.Series:
    """Contract booleans: true/1/yes (any case) → True; anything else → False."""
    return values.astype(str).str.strip().str.lower().isin({"true", "1", "yes", "t", "y"})


def split_codes(value: object) -> list[str]:
    """A ``;``-separated code list (empty → [])."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    return [part.strip() for part in str(value).split(";") if part.strip()]
