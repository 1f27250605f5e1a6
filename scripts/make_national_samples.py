"""Write data_samples/national/: small files in every national layout and format (never edit them by hand).

    .venv/bin/python scripts/make_national_samples.py [--out data_samples/national] [--city data_samples/city]

The subjects are the first clean subjects of the sample city, so the files ingest together with it:

    .venv/bin/tiers ingest --subjects data_samples/city/subjects.csv \
        --records data_samples/national/penalty_current.gb18030.csv --store var/store

Each layout is written as CSV in GB18030, CSV in UTF-8 with BOM, .xlsx and .xls (xlwt, a dev
dependency), with ``<layout>.truth.csv``: what ingestion must make of every row (accepted with its
severity and amount in yuan, or the rule that quarantines it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from simulation.national import FORMATS, LAYOUTS, national_table, write_table

N_SUBJECTS = 18
SUFFIX = {"csv-gb18030": "gb18030", "csv-utf8-bom": "utf8-bom", "xlsx": "excel", "xls": "excel97"}


def sample_subjects(city: Path, n: int = N_SUBJECTS) -> list[tuple[str, str]]:
    subjects = pd.read_csv(city / "subjects.csv", dtype=str, encoding_errors="replace")
    dirt = pd.read_csv(city / "truth" / "dirt.csv", dtype={"row": "int64"})
    dirty_rows = set(dirt.loc[dirt["file"] == "subjects.csv", "row"])
    clean = subjects[[i + 1 not in dirty_rows for i in range(len(subjects))]]
    return list(clean[["uscc", "name"]].head(n).itertuples(index=False, name=None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data_samples/national"))
    parser.add_argument("--city", type=Path, default=Path("data_samples/city"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    subjects = sample_subjects(args.city)
    for layout in LAYOUTS:
        frame, truth = national_table(layout, subjects, seed=20261122)
        for fmt in FORMATS:
            path = write_table(frame, args.out / f"{layout}.{SUFFIX[fmt]}", fmt)
            print(path)
        truth.to_csv(args.out / f"{layout}.truth.csv", index=False)


if __name__ == "__main__":
    main()
