"""Settings for every test: Hypothesis keeps its files outside the checkout (the tests write
nothing into the repository) and saves no example database between runs (runs are reproducible
from the code alone)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import configuration, settings

configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tiers-hypothesis")
settings.register_profile("tiers", database=None)
settings.load_profile("tiers")

# Keys the service generates for itself (JWT, query-log MAC and signing keys, demo passwords) go to
# a temporary directory, never into the checkout (tests that check the keys give their own).
os.environ.setdefault("TIERS_KEYS_DIR", tempfile.mkdtemp(prefix="tiers-test-keys-"))


@pytest.fixture
def run_notebook(tmp_path, monkeypatch):
    """Execute a notebook of ``notebooks/`` top to bottom; returns the text of its outputs."""

    def run(name: str, timeout: int) -> str:
        # the kernel inherits TMPDIR: the notebook's working directory (tempfile.mkdtemp) is then
        # pytest's, removed with it, not left in /tmp by every run
        monkeypatch.setenv("TMPDIR", str(tmp_path))
        import nbformat
        from nbclient import NotebookClient

        path = Path(__file__).resolve().parents[1] / "notebooks" / name
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                       for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))

    return run
