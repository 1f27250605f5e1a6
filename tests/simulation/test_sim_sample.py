"""data_samples/city is exactly what its documented command generates (never edited by hand)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from simulation import SimulationConfig, generate

SAMPLE = Path(__file__).resolve().parents[2] / "data_samples" / "city"


@pytest.mark.slow
def test_committed_sample_matches_the_regenerate_command(tmp_path):
    readme = (SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    command = re.search(r"tiers simulate --subjects (\d+) --seed (\d+) --out data_samples/city --format csv", readme)
    assert command, "README must show the command that regenerates the sample"
    committed = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
    generate(SimulationConfig(n_subjects=int(command[1]), seed=int(command[2]), file_format="csv"), tmp_path)
    for name in ("subjects.csv", "records.csv", "inspectors.csv", "truth/dirt.csv"):
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == committed["sha256"][name], name
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == committed["sha256"][name], name
