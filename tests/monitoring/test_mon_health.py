"""Data health: silent feeds against a robust trailing median, quarantine share."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from monitoring.health import data_health, evaluated_month, monthly_volume


def _volume(current: dict[str, int]) -> pd.DataFrame:
    """14 months of history for four departments, then the evaluated month 2026-06."""
    rng = np.random.default_rng(0)
    months = pd.period_range("2025-04", "2026-05", freq="M")
    rows = []
    for m in months:
        rows += [("samr", str(m), int(rng.poisson(400))), ("tax", str(m), int(rng.poisson(150))),
                 ("tiny", str(m), int(rng.poisson(5)))]
        if m >= pd.Period("2026-04", "M"):
            rows.append(("newcomer", str(m), 80))  # only two months of history
    # a seasonal holiday month: half the volume, which is no silence
    rows = [(d, m, r // 2) if m == "2026-02" else (d, m, r) for d, m, r in rows]
    rows += [(dept, "2026-06", n) for dept, n in current.items()]
    return pd.DataFrame(rows, columns=["department", "month", "records"])


def test_silent_feed_is_flagged_and_only_it():
    volume = _volume({"samr": 12, "tax": 140, "tiny": 0, "newcomer": 0})
    health = data_health(volume, as_of=date(2026, 6, 30))
    silent = {f.department for f in health.feeds if f.silent}
    assert silent == {"samr"}  # tiny: median too small; newcomer: too little history
    samr = next(f for f in health.feeds if f.department == "samr")
    assert samr.records == 12 and samr.trailing_median > 300


def test_department_missing_entirely_in_the_month_is_silent():
    volume = _volume({"tax": 140})
    health = data_health(volume, as_of=date(2026, 6, 30))
    assert {f.department for f in health.feeds if f.silent} == {"samr"}


def test_a_halved_month_is_not_silent():
    volume = _volume({"samr": 190, "tax": 70})
    assert not [f for f in data_health(volume, as_of=date(2026, 6, 30)).feeds if f.silent]


def test_quarantine_share_per_month_and_department():
    volume = _volume({"samr": 400, "tax": 150})
    quarantine = pd.DataFrame({"department": ["samr"] * 30 + ["tax"] * 10 + ["samr"] * 99,
                               "month": ["2026-06"] * 40 + ["2026-05"] * 99})
    health = data_health(volume, as_of=date(2026, 6, 30), quarantine=quarantine)
    assert health.quarantined == 40
    assert health.quarantine_share == pytest.approx(40 / (40 + health.ingested))
    assert health.quarantine_share_by_department["tax"] == pytest.approx(10 / 160)


def test_evaluated_month_is_the_last_complete_month():
    assert str(evaluated_month(date(2026, 6, 30))) == "2026-06"
    assert str(evaluated_month(date(2026, 6, 15))) == "2026-05"


def test_monthly_volume_from_records():
    records = pd.DataFrame({"department": ["samr", "samr", "tax"],
                            "decision_date": ["2026-01-03", "2026-01-30", "2026-02-01"]})
    vol = monthly_volume(records)
    assert vol.set_index(["department", vol["month"].astype(str)])["records"].to_dict() == {
        ("samr", "2026-01"): 2, ("tax", "2026-02"): 1}
