"""`tiers simulate`: JSON mode prints only JSON; bad input exits 2 naming the field, value and rule."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from serving.cli.main import app

runner = CliRunner()


def test_simulate_json_prints_only_the_manifest_summary(tmp_path):
    out = tmp_path / "city"
    result = runner.invoke(app, ["simulate", "--subjects", "150", "--seed", "4", "--out", str(out),
                                 "--scenario", "silent_feed", "--clean", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scenario"]["name"] == "silent_feed" and summary["dirt"]["enabled"] is False
    assert summary["rows"]["subjects.csv"] == 150
    assert (out / "records.csv").exists() and (out / "truth" / "true_risk.parquet").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--subjects", "0"], "--subjects 0"),
        (["--scenario", "flood"], "--scenario 'flood' must be one of baseline"),
        (["--end", "2026-02-30"], "--end '2026-02-30'"),
        (["--end", "2026-10-15"], "--end 2026-10-15 must be the last day of a month"),
        (["--scenario-date", "2019-01-01"], "--scenario-date 2019-01-01 must be after 2021-11-01"),
        (["--format", "xlsx"], "--format 'xlsx' must be csv or parquet"),
        (["--years", "0"], "--years 0 must be between 1 and 20"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, args, needle):
    base = {"--subjects": "10", "--seed": "1", "--out": str(tmp_path)}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = runner.invoke(app, ["simulate", *[x for kv in base.items() for x in kv]])
    assert result.exit_code == 2
    assert needle in result.output
    assert not (tmp_path / "records.csv").exists()
