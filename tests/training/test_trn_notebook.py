"""The sector-calibration notebook runs top to bottom on the sample city (so it never rots)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
@pytest.mark.xdist_group("trn_notebook")
def test_calibrate_sector_model_notebook_executes(run_notebook) -> None:
    outputs = run_notebook("calibrate_sector_model.ipynb", timeout=600)
    assert "general_recalibrated" in outputs  # the sample's section H is below the minimum
    assert "重新校准" in outputs
    assert "[PASS] auc" in outputs or "[FAIL] auc" in outputs  # the gate ran and printed its checks
