"""Small seeded synthetic credit data shared by the models tests (imported by basename)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from models import FeatureMeta

METAS = [
    FeatureMeta("penalties_12m", "近12个月一般及以上行政处罚数", "general-or-worse penalties in the last 12 months",
                monotone=1, reason="more penalties, more risk", actionable=True,
                template_zh="近12个月有{value}条一般及以上行政处罚",
                template_en="{value} general-or-worse penalties in the last 12 months"),
    FeatureMeta("arrears_amount", "欠缴金额（元）", "arrears owed (CNY)", monotone=1, reason="unpaid dues", actionable=True),
    FeatureMeta("years_registered", "成立年限", "years since registration", monotone=-1, reason="older firms fail less"),
    FeatureMeta("abnormal_listed", "列入经营异常名录", "on the abnormal-operation list", monotone=1,
                reason="listing signals trouble", actionable=True),
    FeatureMeta("sector", "行业门类", "industry section", categorical=True),
    FeatureMeta("noise", "噪声", "noise"),
]
MONOTONE = {m.name: m.monotone for m in METAS if m.monotone}


def make_credit_frame(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Profiles with a known logistic risk: penalties, arrears (some missing), age, listing, sector."""
    rng = np.random.default_rng(seed)
    penalties = rng.poisson(0.6, n).astype(float)
    arrears = np.where(rng.random(n) < 0.7, 0.0, rng.gamma(2.0, 5000.0, n))
    arrears[rng.random(n) < 0.08] = np.nan  # not reported: its own Missing bin
    years = rng.uniform(0, 30, n)
    listed = (rng.random(n) < 0.1).astype(float)
    sector = rng.choice(list("CFGIK"), n, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    noise = rng.normal(size=n)
    logit = (-1.6 + 0.8 * penalties + 0.00006 * np.nan_to_num(arrears, nan=8000) - 0.05 * years + 1.2 * listed
             + np.where(sector == "F", 0.6, 0.0))
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"penalties_12m": penalties, "arrears_amount": arrears, "years_registered": years,
                      "abnormal_listed": listed, "sector": sector, "noise": noise})
    return X, y


@functools.cache
def fitted_models() -> dict:
    """Each model family fitted once per test session (module-level cache: hypothesis-safe)."""
    from models import BoostedGAM, CalibratedModel, MonotoneGBM, ScorecardModel, default_blend

    X, y = make_credit_frame()
    return {
        "scorecard": ScorecardModel(monotone=MONOTONE).fit(X, y),
        "gbm": MonotoneGBM(monotone=MONOTONE, n_estimators=150).fit(X, y),
        "gbm_deep": MonotoneGBM(monotone=MONOTONE, additive=False, n_estimators=60, num_leaves=7).fit(X, y),
        "blend": default_blend(monotone=MONOTONE).fit(X, y),
        "calibrated": CalibratedModel(estimator=MonotoneGBM(monotone=MONOTONE, n_estimators=150), cv=3).fit(X, y),
        "gam": BoostedGAM(monotone=MONOTONE, interactions=6, n_bags=3).fit(X, y),
    }
