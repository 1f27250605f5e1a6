"""`tiers monitor` on table inputs: JSON output, exit codes 0 / 1 / 2."""

import json
from datetime import date

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from serving.cli.monitor import monitor_command

# A group app holding only this command: the shared app's other stages are not under test here.
app = typer.Typer()
app.callback()(lambda: None)
app.command("monitor")(monitor_command)


@pytest.fixture
def tables(tmp_path, frames_factory):
    def write(shift: float = 0.0):
        ref = frames_factory(n=1500, as_of=date(2026, 5, 31), seed=1)
        cur = frames_factory(n=1500, as_of=date(2026, 6, 30), seed=2)
        profiles = pd.concat([ref.profiles.assign(as_of="2026-05-31"), cur.profiles.assign(as_of="2026-06-30")])
        cur_scores = cur.scores.assign(score=cur.scores["score"] + shift)
        scores = pd.concat([ref.scores.assign(as_of="2026-05-31"), cur_scores.assign(as_of="2026-06-30")])
        profiles.to_csv(tmp_path / "profiles.csv", index=False)
        scores.to_csv(tmp_path / "scores.csv", index=False)
        return tmp_path / "profiles.csv", tmp_path / "scores.csv"

    return write


def _run(*args):
    return CliRunner().invoke(app, ["monitor", *args])


def test_no_alert_exits_0_with_json_only(tables):
    profiles, scores = tables()
    result = _run("--reference", "2026-05-31", "--current", "2026-06-30", "--profiles", str(profiles),
                  "--scores", str(scores), "--json", "--no-evidently")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["alerts"] == [] and payload["current_as_of"] == "2026-06-30"


def test_alerts_exit_1_and_result_file(tables, tmp_path):
    profiles, scores = tables(shift=60.0)
    out = tmp_path / "result.json"
    result = _run("--reference", "2026-05-31", "--current", "2026-06-30", "--profiles", str(profiles),
                  "--scores", str(scores), "--no-evidently", "--out", str(out))
    assert result.exit_code == 1
    assert "score_psi" in result.output
    assert any(a["rule"] == "score_psi" for a in json.loads(out.read_text())["alerts"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reference", "2026-02-30"], "--reference '2026-02-30': not a date"),
        (["--current", "2026-05-31"], "--current 2026-05-31: must be after --reference 2026-05-31"),
        (["--current", "2026-07-31"], "--profiles: no rows with as_of 2026-07-31"),
    ],
)
def test_bad_input_exits_2_naming_the_option(tables, args, message):
    profiles, scores = tables()
    base = {"--reference": "2026-05-31", "--current": "2026-06-30"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in base.items() for x in kv]
    result = _run(*flat, "--profiles", str(profiles), "--scores", str(scores), "--no-evidently")
    assert result.exit_code == 2
    assert message in result.output


def test_bad_alert_config_exits_2(tables, tmp_path):
    profiles, scores = tables()
    bad = tmp_path / "alerts.toml"
    bad.write_text("[feature_psi]\nthreshold = 'high'\n", encoding="utf-8")
    result = _run("--reference", "2026-05-31", "--current", "2026-06-30", "--profiles", str(profiles),
                  "--scores", str(scores), "--config", str(bad))
    assert result.exit_code == 2
    assert "feature_psi.threshold = 'high'" in result.output


def test_one_grade_file_per_date_like_tiers_grade_writes(tables, tmp_path):
    profiles, scores = tables()
    table = pd.read_csv(scores, dtype={"uscc": str})
    paths = []
    for as_of, part in table.groupby("as_of"):
        paths += ["--scores", str(tmp_path / f"grades_{as_of}.parquet")]
        part.to_parquet(paths[-1])
    result = _run("--reference", "2026-05-31", "--current", "2026-06-30", "--profiles", str(profiles), *paths,
                  "--json", "--no-evidently")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_current"] == 1500
