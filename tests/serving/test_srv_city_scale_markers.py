"""benchmarks/city_scale.py --db-dir --reuse with --postgres: the data is in the server, the markers
in the directory; a marker counts only for the database it was made for."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _city_scale():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("city_scale_bench", ROOT / "benchmarks" / "city_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_step_done_for_one_database_is_not_done_for_another(tmp_path):
    bench = _city_scale()
    one = "postgresql+psycopg://tiers@/tiers_city?host=/tmp&port=55432"
    other = "postgresql+psycopg://tiers@/tiers_other?host=/tmp&port=55432"
    assert bench._done(tmp_path, "build", one) is None
    bench._mark(tmp_path, "build", {"grades_per_s": 1.0}, one)
    assert bench._done(tmp_path, "build", one) == {"grades_per_s": 1.0}
    assert bench._done(tmp_path, "build", other) is None
