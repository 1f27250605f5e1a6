"""A small synthetic labelled dataset for the training tests (fast, no simulator needed).

In sector H complaints and utility arrears matter much more than elsewhere, as in the simulator.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from models.meta import FeatureMeta

TRAIN_AS_OF = (date(2022, 6, 30), date(2022, 12, 31), date(2023, 6, 30))
VALIDATE_AS_OF = date(2024, 6, 30)

FEATURES: tuple[FeatureMeta, ...] = (
    FeatureMeta("penalties_general", "一般行政处罚次数", "general penalties", monotone=1),
    FeatureMeta("penalties_serious", "严重行政处罚次数", "serious penalties", monotone=1),
    FeatureMeta("abnormal_list", "列入经营异常名录", "on abnormal-operation list", monotone=1),
    FeatureMeta("complaints", "投诉举报次数", "complaints", monotone=1),
    FeatureMeta("utility_arrears", "水电气欠费次数", "utility arrears", monotone=1),
    FeatureMeta("tax_arrears", "欠税次数", "tax arrears", monotone=1),
    FeatureMeta("inspection_problems", "抽查发现问题次数", "inspection problems", monotone=1),
    FeatureMeta("rewards", "行政奖励次数", "rewards", monotone=-1),
    FeatureMeta("years_registered", "成立年限", "years registered", monotone=-1),
)


def make_dataset(n_subjects: int = 2500, *, seed: int = 7, h_share: float = 0.3) -> pd.DataFrame:
    """Labelled profiles with a known risk; in sector H complaints and utility arrears matter much more."""
    rng = np.random.default_rng(seed)
    sections = np.array(list("CEFGHIKM"))
    industry = np.where(rng.random(n_subjects) < h_share, "H", rng.choice(sections[sections != "H"], n_subjects))
    latent = rng.normal(0, 1, n_subjects)
    registered = pd.to_datetime("2005-01-01") + pd.to_timedelta(rng.integers(0, 6500, n_subjects), unit="D")
    employees = rng.lognormal(2.5, 1.2, n_subjects).astype(int)
    districts = rng.choice(["320102", "320104", "320105", "320106"], n_subjects)
    uscc = [f"91320100{i:09d}X" for i in range(n_subjects)]
    rows = []
    for d in (*TRAIN_AS_OF, date(2023, 12, 31), VALIDATE_AS_OF):
        lam = np.exp(0.6 * latent - 0.5)
        frame = pd.DataFrame(
            {
                "uscc": uscc,
                "as_of": d,
                "penalties_general": rng.poisson(lam),
                "penalties_serious": rng.poisson(0.2 * lam),
                "abnormal_list": (rng.random(n_subjects) < 0.05 * lam).astype(int),
                "complaints": rng.poisson(0.8 * np.exp(0.3 * latent)),
                "utility_arrears": rng.poisson(0.5 * np.exp(0.3 * latent)),
                "tax_arrears": rng.poisson(0.3 * lam),
                "inspection_problems": rng.poisson(0.4 * lam),
                "rewards": rng.poisson(0.5 * np.exp(-0.4 * latent)),
                "years_registered": (pd.Timestamp(d) - registered).days / 365.25,
                "industry": industry,
                "district_code": districts,
                "size_band": np.where(employees < 10, "micro", np.where(employees < 100, "small", "medium")),
                "age_band": "3-10y",
                "thin_file": rng.random(n_subjects) < 0.1,
            }
        )
        h = (industry == "H").astype(float)
        logit = (
            -3.0
            + 0.5 * frame["penalties_general"]
            + 0.9 * frame["penalties_serious"]
            + 1.2 * frame["abnormal_list"]
            + (0.15 + 0.9 * h) * frame["complaints"]
            + (0.1 + 1.1 * h) * frame["utility_arrears"]
            + 0.4 * frame["tax_arrears"]
            + 0.5 * frame["inspection_problems"]
            - 0.3 * frame["rewards"]
            - 0.03 * frame["years_registered"]
            + 0.5 * latent
        )
        p = 1 / (1 + np.exp(-logit))
        frame["p_true"] = p
        frame["label"] = (rng.random(n_subjects) < p).astype(int)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)
