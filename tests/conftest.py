"""Settings for every test: Hypothesis keeps its files outside the checkout (the tests write
nothing into the repository) and saves no example database between runs (runs are reproducible
from the code alone)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import configuration, settings

configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tiers-hypothesis")
settings.register_profile("tiers", database=None)
settings.load_profile("tiers")
