"""Settings for every test: Hypothesis keeps its files outside the checkout (the tests write
nothing into the repository) and saves no example database between runs (runs are reproducible
from the code alone)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import configuration, settings

configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tiers-hypothesis")
settings.register_profile("tiers", database=None)
settings.load_profile("tiers")

# Keys the service generates for itself (JWT, query-log MAC and signing keys, demo passwords) go to
# a temporary directory, never into the checkout (tests that check the keys give their own).
os.environ.setdefault("TIERS_KEYS_DIR", tempfile.mkdtemp(prefix="tiers-test-keys-"))
