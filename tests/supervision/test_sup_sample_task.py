"""The example task file (data_samples/plan_task.toml) runs through `tiers plan commit`, `salt`,
`create`, `publish` and `verify` as the README says, on the sample city, from a copy of the
repository's layout."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from serving.cli.main import app

REPO = Path(__file__).resolve().parents[2]
TASK = REPO / "data_samples" / "plan_task.toml"


def _grades_of_the_sample_city(path: Path) -> None:
    """Grades as `tiers grade` writes them (uscc, as_of, grade, model_version), cut from the
    sample city's true risk at the usual mix; no model needed."""
    truth = pd.read_parquet(REPO / "data_samples" / "city" / "truth" / "true_risk.parquet")
    at = truth.loc[truth["as_of"].astype(str) == "2026-09-30"].reset_index(drop=True)
    cuts = np.quantile(at["p_adverse_12m"], [0.65, 0.90, 0.98])
    grade = np.array(list("ABCD"))[np.searchsorted(cuts, at["p_adverse_12m"], side="right")]
    path.parent.mkdir(parents=True)
    pd.DataFrame({"uscc": at["uscc"], "as_of": "2026-09-30", "grade": grade,
                  "model_version": "true-risk/1"}).to_parquet(path, index=False)


def test_the_example_task_commits_draws_and_verifies(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "data_samples").mkdir(parents=True)
    shutil.copy(TASK, root / "data_samples" / "plan_task.toml")
    (root / "data_samples" / "city").symlink_to(REPO / "data_samples" / "city", target_is_directory=True)
    _grades_of_the_sample_city(root / "var" / "grades" / "grades_2026-09-30.parquet")
    task, var = root / "data_samples" / "plan_task.toml", root / "var"

    def tiers(*args: str):
        return CliRunner().invoke(app, [str(a) for a in args])

    source = "福彩3D 第2026325期"
    committed = tiers("plan", "commit", "--task", task, "--secret-out", var / "secrets.json",
                      "--salt-source", source, "--salt-pattern", r"\d \d \d", "--out", var / "commitment.json",
                      "--json")
    assert committed.exit_code == 0, committed.output
    salted = tiers("plan", "salt", "--commitment", var / "commitment.json", "--value", "5 8 1", "--source", source,
                   "--entered-by", "李四", "--out", var / "salt.json")
    assert salted.exit_code == 0, salted.output
    created = tiers("plan", "create", "--task", task, "--secret-file", var / "secrets.json", "--commitment",
                    var / "commitment.json", "--salt-file", var / "salt.json", "--out", var / "plan.json",
                    "--xlsx", var / "plan.xlsx", "--json")
    assert created.exit_code == 0, created.output
    summary = json.loads(created.stdout)
    assert summary["draws_total"] > 0 and summary["visits_saved"] > 0  # SAMR-01 and SAMR-03 share subjects
    assert summary["draw_seed_commitment"] == json.loads(committed.stdout)["seed_commitment"]
    assert tiers("plan", "publish", var / "plan.json", "--out", var / "bundle.json").exit_code == 0
    for checked in (var / "bundle.json", var / "plan.json"):  # anyone, then auditors
        verified = tiers("plan", "verify", checked, "--commitment", var / "commitment.json")
        assert verified.exit_code == 0 and verified.stdout.strip() == "MATCH", verified.output
    plan = json.loads((var / "plan.json").read_text(encoding="utf-8"))
    excluded = {e["reason"] for t in plan["tasks"] for e in t["excluded"]}
    assert "uscc_invalid" in excluded  # the sample's dirty subject rows are listed, not dropped


def _readme_plan_commands() -> list[list[str]]:
    """The `$T plan commit/salt/create/publish` commands of README.md's pipeline, as written
    (continuation lines joined, comments dropped, ``$P`` the example task file)."""
    import shlex

    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    commands, current = [], None
    for line in lines:
        if current is None and re.match(r"\$T plan (commit|salt|create|publish) ", line):
            current = []
        if current is not None:
            body = line.split("  #")[0].rstrip()
            current += shlex.split(body.removesuffix("\\"), comments=True)
            if not body.endswith("\\"):
                commands.append([w.replace("$P", "data_samples/plan_task.toml") for w in current[1:]])
                current = None
    return commands


def test_the_readme_plan_pipeline_runs_on_any_day(tmp_path: Path, monkeypatch) -> None:
    """README.md's `tiers plan` commands, run as written from the repository root today (review 16:
    a --known-at date written into the README is refused once the commitment is made after it)."""
    root = tmp_path / "repo"
    (root / "data_samples").mkdir(parents=True)
    shutil.copy(TASK, root / "data_samples" / "plan_task.toml")
    (root / "data_samples" / "city").symlink_to(REPO / "data_samples" / "city", target_is_directory=True)
    _grades_of_the_sample_city(root / "var" / "grades" / "grades_2026-09-30.parquet")
    monkeypatch.chdir(root)
    commands = _readme_plan_commands()
    assert [c[:2] for c in commands] == [["plan", "commit"], ["plan", "salt"], ["plan", "create"],
                                         ["plan", "publish"]], commands
    for words in commands:
        result = CliRunner().invoke(app, words)
        assert result.exit_code == 0, (words, result.output)
    verified = CliRunner().invoke(app, ["plan", "verify", "var/bundle.json", "--commitment", "var/commitment.json"])
    assert verified.exit_code == 0 and verified.stdout.strip() == "MATCH", verified.output
