"""The demo's sector challenger passes the promotion gate honestly: on the demo's own city
(``serving.cli.demo``'s subjects and seed), trained as the demo trains it, the largest section has
a model of its own (not the general one recalibrated, which made the challenger the champion
again) and the challenger passes every check of the unchanged gate, grade monotonicity included."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from serving.cli import demo
from serving.cli.main import app

# a simulated city trained with every candidate: about a minute and a half on one core
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("demo_challenger")]


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, (args[0], result.stdout, result.exception)
    return result.stdout


def test_the_demos_sector_challenger_passes_the_promotion_gate(tmp_path):
    from training.promotion import gate_against_champion
    from training.registry import ModelRegistry

    city, store, tracking = tmp_path / "city", tmp_path / "store", f"sqlite:///{tmp_path / 'mlflow.db'}"
    _run(demo.simulate_args(demo.DEMO_SUBJECTS, demo.DEMO_SEED, city))
    section = demo.demo_section(city / "subjects.csv")
    _run(demo.ingest_args(city, store))
    trained = json.loads(_run(demo.train_args(store, demo.DEMO_SEED, section, tracking, tmp_path / "art")))
    name = f"tiers-sector-{section}"
    versions = [m for m in trained["models"] if m["model"] == name]
    assert [(m["version"], m["aliases"], m["kind"]) for m in versions] == [
        (1, ["champion"], "sector"), (2, ["challenger"], "sector")], versions
    _, gate = gate_against_champion(ModelRegistry(tracking), name, 2)
    assert gate.passed, gate.summary()
    assert gate.n_bads >= 100, gate.n_bads  # enough adverse outcomes out of time to judge monotonicity
