"""The sector-calibration notebook runs top to bottom on the sample city (so it never rots)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "calibrate_sector_model.ipynb"


@pytest.mark.slow
@pytest.mark.xdist_group("trn_notebook")
def test_calibrate_sector_model_notebook_executes(tmp_path, monkeypatch) -> None:
    # the kernel inherits TMPDIR: the notebook's working directory (tempfile.mkdtemp) is then
    # pytest's, removed with it, not left in /tmp by every run
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "general_recalibrated" in outputs  # the sample's section H is below the minimum
    assert "重新校准" in outputs
    assert "[PASS] auc" in outputs or "[FAIL] auc" in outputs  # the gate ran and printed its checks
