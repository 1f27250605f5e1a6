"""Independent checks used by the simulation tests (they do not reuse the generator's code)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from stdnum.cn import ric, uscc

USCC_ALPHABET = set("0123456789ABCDEFGHJKLMNPQRTUWXY")

# every record kind the simulator writes, written out here rather than read from the generator
RECORD_KINDS = {
    "admin_license", "admin_penalty", "admin_enforcement", "admin_confirmation", "admin_levy", "admin_payment",
    "admin_adjudication", "admin_compensation", "admin_reward", "admin_check", "list_serious_dishonesty",
    "list_key_attention", "list_abnormal_operation", "list_dishonest_debtor", "commitment_made", "commitment_kept",
    "commitment_broken", "self_declared", "arrears", "inspection", "complaint", "repair", "revocation",
}


def uscc_is_valid(code: str) -> bool:
    """python-stdnum's USCC check, widened to registering authorities A, N and Y.

    stdnum requires the first 8 characters to be digits, so it rejects valid codes of the
    军队 (A), 农业 (N) and other (Y) registering authorities; for those the check character is
    still computed by stdnum.
    """
    if not isinstance(code, str) or len(code) != 18:
        return False
    if code[0] in "ANY":
        return (
            code[1:8].isdigit()
            and all(c in USCC_ALPHABET for c in code[8:])
            and uscc.calc_check_digit(code[:17]) == code[17]
        )
    return uscc.is_valid(code)


def resident_id_is_valid(number: str) -> bool:
    """python-stdnum's resident ID check (check digit, birth date, birth place for that year)."""
    return ric.is_valid(number)


def read(city: Path, table: str) -> pd.DataFrame:
    """A table of a generated city, CSV or Parquet, all columns as strings (invalid UTF-8 replaced)."""
    if (city / f"{table}.parquet").exists():
        return pd.read_parquet(city / f"{table}.parquet").astype("string")
    return pd.read_csv(city / f"{table}.csv", dtype=str, keep_default_na=False, na_values=[""],
                       encoding_errors="replace").astype("string")
