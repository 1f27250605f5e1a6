"""Record-flow drift: a jump in one sector's negative records, a department's severity recoding."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import poisson

from monitoring.flow import _upper_tail, segment_flow, severity_mix

MONTHS = pd.period_range("2025-01", "2026-01", freq="M")  # 12 trailing months + the evaluated one


def _records(rng, *, jump_sector=None, jump=1.0, recode_dept=None):
    subjects = pd.DataFrame({"uscc": [f"S{i}" for i in range(3000)],
                             "industry": rng.choice(list("CFGK"), size=3000, p=[0.4, 0.3, 0.2, 0.1])})
    rows = []
    for m in MONTHS:
        lam = np.full(3000, 0.05)
        if m == MONTHS[-1] and jump_sector:
            lam = np.where(subjects["industry"] == jump_sector, lam * jump, lam)
        n = rng.poisson(lam)
        uscc = np.repeat(subjects["uscc"].to_numpy(), n)
        days = rng.integers(0, m.days_in_month, size=len(uscc))
        dept = rng.choice(["samr", "tax"], size=len(uscc), p=[0.7, 0.3])
        sev = rng.choice(["minor", "general", "serious"], size=len(uscc), p=[0.5, 0.45, 0.05])
        if m == MONTHS[-1] and recode_dept:
            sev = np.where((dept == recode_dept) & (sev == "general"), "serious", sev)
        rows.append(pd.DataFrame({"uscc": uscc, "kind": "admin_penalty", "subkind": None, "severity": sev,
                                  "department": dept, "decision_date": m.start_time + pd.to_timedelta(days, "D")}))
    return pd.concat(rows, ignore_index=True), subjects


def test_a_jump_in_one_sector_is_flagged_and_only_there():
    records, subjects = _records(np.random.default_rng(0), jump_sector="K", jump=2.5)
    flows = segment_flow(records, subjects, as_of=date(2026, 1, 31), segment_columns=["industry"])
    assert {f.segment for f in flows if f.significant} == {"K"}
    k = next(f for f in flows if f.segment == "K")
    assert k.ratio > 1.5 and k.month == "2026-01"


def test_no_jump_no_flag():
    records, subjects = _records(np.random.default_rng(1))
    flows = segment_flow(records, subjects, as_of=date(2026, 1, 31), segment_columns=["industry"])
    assert len(flows) == 4 and not any(f.significant for f in flows)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 400), st.floats(1, 100), st.floats(1.01, 20))
def test_overdispersed_tail_is_never_thinner_than_poisson(observed, mean, dispersion):
    # in the region where a jump is flagged (well above the mean), a segment whose months already
    # vary a lot needs a bigger jump to be significant; near the mean the two tails cross
    if observed >= mean + 3 * np.sqrt(mean * dispersion):
        assert _upper_tail(observed, mean, mean * dispersion) >= float(poisson.sf(observed - 1, mean)) - 1e-12


def test_severity_recoding_is_flagged_for_that_department():
    records, _ = _records(np.random.default_rng(2), recode_dept="samr")
    mixes = {m.department: m for m in severity_mix(records, as_of=date(2026, 1, 31))}
    assert mixes["samr"].significant and not mixes["tax"].significant
    assert mixes["samr"].points_moved["serious"] > 30
    assert mixes["samr"].current_shares["general"] == 0.0
    assert sum(mixes["samr"].trailing_shares.values()) == pytest.approx(1.0)


def test_small_department_is_reported_but_not_flagged():
    records, _ = _records(np.random.default_rng(3), recode_dept="tax")
    last = records["decision_date"] >= "2026-01-01"
    keep = ~last | (records["department"] != "tax") | (np.arange(len(records)) % 10 == 0)
    mixes = {m.department: m for m in severity_mix(records[keep], as_of=date(2026, 1, 31), min_records=15)}
    assert mixes["tax"].n_current < 15 and not mixes["tax"].significant
