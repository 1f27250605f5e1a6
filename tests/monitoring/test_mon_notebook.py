"""The drift-monitoring notebook runs top to bottom on the sample city (so it never rots)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "monitor_drift.ipynb"


@pytest.mark.slow
@pytest.mark.xdist_group("mon_notebook")
def test_monitor_drift_notebook_executes(tmp_path, monkeypatch) -> None:
    # the kernel inherits TMPDIR: the notebook's working directory (tempfile.mkdtemp) is then
    # pytest's, removed with it, not left in /tmp by every run
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    # the notebook's own asserts ran; its printed evidence shows the planted recoding was caught
    assert "recoded as serious" in outputs
    assert "severity_mix" in outputs
