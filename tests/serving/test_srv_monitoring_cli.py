"""`tiers monitor --save` and `run_and_store`: a run computed from files lands in the service DB."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from serving.cli.monitor import monitor_command
from serving.services import monitoring as mon
from serving.settings import Settings, get_settings

app = typer.Typer()
app.callback()(lambda: None)
app.command("monitor")(monitor_command)

REF, CUR = "2026-05-31", "2026-06-30"


@pytest.fixture
def tables(tmp_path):
    rng = np.random.default_rng(5)
    frames, grades = [], []
    for as_of, shift in ((REF, 0.0), (CUR, 1.5)):
        n = 400
        uscc = [f"U{i:07d}" for i in range(n)]
        frames.append(pd.DataFrame({"uscc": uscc, "as_of": as_of, "industry": rng.choice(list("CF"), size=n),
                                    "district_code": rng.choice(["320102", "320104"], size=n), "penalty_general_12m": rng.poisson(0.4 + shift, n)}))
        score = 600 + 50 * rng.normal(size=n) - 60 * shift
        grades.append(pd.DataFrame({"uscc": uscc, "as_of": as_of, "score": score,
                                    "grade": np.select([score >= 620, score >= 570, score >= 520], list("ABC"), "D")}))
    pd.concat(frames).to_csv(tmp_path / "profiles.csv", index=False)
    pd.concat(grades).to_csv(tmp_path / "grades.csv", index=False)
    return tmp_path / "profiles.csv", tmp_path / "grades.csv"


@pytest.fixture
def env_settings(database_url, tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("TIERS_DATABASE_URL", database_url)
    monkeypatch.setenv("TIERS_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_save_stores_run_alerts_and_report(tables, env_settings, session):
    profiles, grades = tables
    result = CliRunner().invoke(app, ["monitor", "--reference", REF, "--current", CUR, "--profiles", str(profiles),
                                      "--scores", str(grades), "--save", "--json"])
    assert result.exit_code == 1, result.output  # the drift fires alerts
    runs = mon.list_runs(session)
    assert len(runs) == 1 and runs[0].payload["summary"]["current_as_of"] == CUR
    assert mon.report_path(runs[0]) is not None
    assert mon.report_path(runs[0]).is_relative_to(env_settings.data_dir.resolve())
    alerts = mon.run_alerts(session, runs[0].id)
    assert alerts and all({"observed", "threshold"} <= set(a.payload["evidence"]) for a in alerts)


def test_run_and_store_is_one_call_for_the_demo(tables, session, tmp_path):
    profiles, grades = tables
    settings = Settings(database_url="sqlite://", data_dir=tmp_path / "data")
    run_id = mon.run_and_store(session, settings, reference=date.fromisoformat(REF), current=date.fromisoformat(CUR),
                               grades_files=[grades], profiles_files=[profiles], run_evidently=False)
    run = mon.get_run(session, run_id)
    assert run is not None and run.payload["summary"]["n_current"] == 400
    assert mon.report_path(run) is None  # Evidently skipped: no report


def test_run_and_store_names_the_bad_input(tables, session, tmp_path):
    profiles, grades = tables
    settings = Settings(database_url="sqlite://", data_dir=tmp_path)
    with pytest.raises(ValueError, match="grades_files: no rows with as_of 2026-07-31"):
        mon.run_and_store(session, settings, reference=date.fromisoformat(REF), current=date(2026, 7, 31),
                          grades_files=[grades], profiles_files=[profiles], run_evidently=False)


@pytest.mark.slow
def test_log_to_mlflow_records_metrics_and_result(tmp_path):
    from monitoring.inputs import frames_at
    from monitoring.run import monitor

    rng = np.random.default_rng(0)

    def frames(as_of: str, shift: float):
        profiles = pd.DataFrame({"uscc": [f"U{i:05d}" for i in range(300)], "x": rng.normal(shift, 1, 300)})
        score = 600 + 50 * rng.normal(size=300) - 60 * shift
        scores = pd.DataFrame({"uscc": profiles["uscc"], "score": score,
                               "grade": np.select([score >= 620, score >= 570, score >= 520], list("ABC"), "D")})
        return frames_at(date.fromisoformat(as_of), profiles=profiles, scores=scores)

    import mlflow

    result = monitor(frames(REF, 0.0), frames(CUR, 1.0), run_evidently=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = mon.log_to_mlflow(uri, result, model="tiers-general@champion", monitoring_id=7)
    logged = mlflow.MlflowClient(uri).get_run(run_id)
    assert logged.data.metrics["score_psi"] == pytest.approx(result.score_psi.psi)
    assert logged.data.metrics["n_alerts"] == len(result.alerts)
    assert logged.data.tags["model"] == "tiers-general@champion" and logged.data.tags["monitoring_id"] == "7"
    # artifacts next to the SQLite store, as the registry's: never in ./mlruns of the working directory
    assert logged.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())
