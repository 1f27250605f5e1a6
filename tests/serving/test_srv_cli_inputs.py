"""Review 16 (report-only findings): one rule for a 0/1 target, read alike by `tiers fit` and the
sector page's upload; one CLI parser for date-times, which refuses a time without its zone."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
import typer
from srv_fixtures import ENT1
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ["0", "1", "1.0", "0.0", "1e0", " 1", "2", "-1", "0.5", "yes", "是", "nan", "inf", ""]


def _cli_reads(value: str) -> int | None:
    from serving.workflows import WorkflowError
    from serving.workflows.fit import _check_target

    frame = pd.DataFrame({"bad": [value, "0", "1"]}, dtype=object)  # a CSV read as text
    try:
        return int(_check_target(frame, "bad", 1)[0])
    except WorkflowError:
        return None


def _upload_reads(value: str) -> int | None:
    from serving.errors import InvalidInput
    from serving.services.sector_fit import _row

    shown = {"uscc": "uscc", "as_of": "as_of", "label": "label"}
    try:
        return _row({"uscc": ENT1, "as_of": "2026-06-30", "label": value.strip()}, {}, "C", 2, "zh", shown)["label"]
    except InvalidInput:
        return None


@pytest.mark.parametrize("value", TARGETS)
def test_the_cli_and_the_sector_upload_read_a_target_alike(value):
    """The same cell gives the same target (or the same refusal) in `tiers fit` and the upload; the
    cells are stripped by the upload's reader, as pandas' to_numeric ignores outer spaces."""
    assert _cli_reads(value) == _upload_reads(value), value


def test_one_parser_takes_a_date_time_with_its_zone_only():
    from serving.cli.options import parse_datetime

    assert parse_datetime("--at", "2026-11-20T21:15:00+08:00") == dt.datetime(2026, 11, 20, 13, 15, tzinfo=dt.UTC)
    for zoneless in ("2026-11-20T21:15:00", "2026-11-20 21:15", "2026-11-20"):
        with pytest.raises(typer.Exit):
            parse_datetime("--at", zoneless)  # Beijing or UTC? eight hours apart: say it
    with pytest.raises(typer.Exit):
        parse_datetime("--at", "yesterday")
    # where an option documents a bare date, it is that day's start in UTC
    assert parse_datetime("--at", "2026-11-22", date_alone=True) == dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    with pytest.raises(typer.Exit):
        parse_datetime("--at", "2026-11-22T08:00", date_alone=True)


def test_ingest_refuses_a_time_without_its_zone(tmp_path):
    from serving.cli.main import app

    records = tmp_path / "records.csv"
    records.write_text("record_id\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", "--records", str(records), "--store", str(tmp_path / "store"),
                                      "--ingested-at", "2026-11-22T10:00"])
    assert result.exit_code == 2 and "--ingested-at" in result.output and "zone" in result.output, result.output
    assert not (tmp_path / "store").exists()


def test_the_cli_parses_date_times_in_one_place():
    parsing = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "serving" / "cli").glob("*.py")
                     if p.name != "options.py" and re.search(r"datetime\.fromisoformat\(", p.read_text(encoding="utf-8")))
    assert not parsing, parsing
