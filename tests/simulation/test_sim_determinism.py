"""Same seed and options → byte-identical files; another seed → another city."""

from __future__ import annotations

import json

import pytest

from simulation import SimulationConfig, generate


def _files(path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_same_seed_gives_byte_identical_files(tmp_path, file_format):
    config = SimulationConfig(n_subjects=400, seed=99, file_format=file_format, chunk_size=150)
    first, second = _files(_run(config, tmp_path / "a")), _files(_run(config, tmp_path / "b"))
    assert first == second
    assert {"subjects", "records", "inspectors", "conflicts", "items", "departments"} <= {
        name.split(".")[0] for name in first
    }
    assert {"truth/true_risk.parquet", "truth/dirt.csv", "manifest.json"} <= set(first)
    manifest = json.loads(first["manifest.json"])
    assert set(manifest["sha256"]) == set(first) - {"manifest.json"}


def test_different_seed_gives_a_different_city(tmp_path):
    a = _files(_run(SimulationConfig(n_subjects=300, seed=1), tmp_path / "a"))
    b = _files(_run(SimulationConfig(n_subjects=300, seed=2), tmp_path / "b"))
    assert a["records.csv"] != b["records.csv"] and a["subjects.csv"] != b["subjects.csv"]


def test_chunks_do_not_depend_on_the_number_of_chunks(tmp_path):
    # the first chunk of a bigger city is the whole of a one-chunk city with the same seed and chunk size
    small = _run(SimulationConfig(n_subjects=200, seed=5, chunk_size=200, dirt=False), tmp_path / "s")
    big = _run(SimulationConfig(n_subjects=400, seed=5, chunk_size=200, dirt=False), tmp_path / "b")
    small_lines = (small / "subjects.csv").read_text().splitlines()
    big_lines = (big / "subjects.csv").read_text().splitlines()
    assert big_lines[: len(small_lines)] == small_lines


def test_rerun_into_the_same_directory_replaces_old_outputs(tmp_path):
    _run(SimulationConfig(n_subjects=200, seed=1, file_format="parquet"), tmp_path)
    _run(SimulationConfig(n_subjects=200, seed=1, file_format="csv"), tmp_path)
    assert not list(tmp_path.glob("*.parquet"))


def _run(config, out):
    generate(config, out)
    return out


@pytest.mark.slow
def test_parallel_workers_write_the_same_files(tmp_path):
    config = SimulationConfig(n_subjects=200, seed=8, chunk_size=100)
    generate(config, tmp_path / "one")
    generate(config, tmp_path / "two", workers=2)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
