"""A monthly monitoring run on a city of N subjects (default 1 M) with ~40 features.

Prints the time of `monitoring.run.monitor` (with and without Evidently), the time of our decile
PSI alone over the same features and the score (the baseline, same run), their ratio, and the
peak RSS. Medians of --repeats runs.

    .venv/bin/python benchmarks/monitor.py [--subjects 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
from datetime import date

import numpy as np
import pandas as pd
from _timing import timed

from monitoring.run import MonitoringFrames, monitor
from stability.psi import decile_psi

SECTORS = list("ABCDEFGHIJKLMNOPQRST")
DISTRICTS = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116",
             "320117", "320118"]
DEPARTMENTS = ["samr", "tax", "ecology", "hrss", "fire", "health", "court", "ndrc"]


def synthetic_side(n: int, *, as_of: date, seed: int, n_count: int = 24, n_amount: int = 14) -> MonitoringFrames:
    """Profiles with count features (mostly zero), amounts, two segments; a score and grades."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {"uscc": np.char.add("U", np.arange(n).astype(str)).astype(object)}
    cols["industry"] = rng.choice(SECTORS, size=n)
    cols["district_code"] = rng.choice(DISTRICTS, size=n)
    risk = rng.normal(size=n)
    for j in range(n_count):
        cols[f"n_feature_{j:02d}"] = rng.poisson(np.exp(-2.0 + 0.4 * risk + 0.05 * j))
    for j in range(n_amount):
        amount = rng.lognormal(6 + 0.3 * risk, 1.5)
        cols[f"amount_{j:02d}"] = np.where(rng.random(n) < 0.2, np.nan, amount)
    profiles = pd.DataFrame(cols)
    p = 1 / (1 + np.exp(-(risk - 2.5)))
    score = 600 + 20 / np.log(2) * (np.log((1 - p) / p) - np.log(50))
    grade = np.select([p < 0.05, p < 0.12, p < 0.3], ["A", "B", "C"], "D")
    scores = pd.DataFrame({"uscc": profiles["uscc"], "score": score, "grade": grade, "p_adverse_12m": p})
    return MonitoringFrames(as_of=as_of, profiles=profiles, scores=scores)


def synthetic_records(n: int, *, as_of: date, seed: int) -> pd.DataFrame:
    """About 1.5 negative records per subject a year over the 13 months up to ``as_of``."""
    rng = np.random.default_rng(seed)
    k = int(n * 1.5 * 13 / 12)
    end = pd.Timestamp(as_of)
    days = rng.integers(0, 395, size=k)
    return pd.DataFrame({
        "record_id": np.arange(k),
        "uscc": np.char.add("U", rng.integers(0, n, size=k).astype(str)).astype(object),
        "kind": rng.choice(["admin_penalty", "complaint", "arrears", "inspection"], size=k, p=[0.4, 0.3, 0.2, 0.1]),
        "subkind": rng.choice(["corrected", "no_problem", ""], size=k),
        "severity": rng.choice(["minor", "general", "serious"], size=k, p=[0.5, 0.43, 0.07]),
        "department": rng.choice(DEPARTMENTS, size=k),
        "decision_date": end - pd.to_timedelta(days, unit="D"),
    })



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: nproc={os.cpu_count()}, RAM={ram:.1f} GiB; subjects={args.subjects:,}, repeats={args.repeats}")
    reference = synthetic_side(args.subjects, as_of=date(2026, 5, 31), seed=1)
    current = synthetic_side(args.subjects, as_of=date(2026, 6, 30), seed=2)
    records = synthetic_records(args.subjects, as_of=date(2026, 6, 30), seed=3)
    volume = (records.assign(month=records["decision_date"].dt.to_period("M"))
              .groupby(["department", "month"]).size().rename("records").reset_index())
    current = MonitoringFrames(as_of=current.as_of, profiles=current.profiles, scores=current.scores,
                               records=records, volume=volume)
    features = [c for c in reference.profiles.columns if c != "uscc"]
    print(f"features={len(features)}, records={len(records):,}")

    def psi_only():
        out = {f: decile_psi(reference.profiles[f], current.profiles[f]).psi for f in features}
        out["score"] = decile_psi(reference.scores["score"], current.scores["score"]).psi
        return out

    t_psi, _ = timed(psi_only, args.repeats)
    print(f"decile PSI alone ({len(features) + 1} columns): {t_psi:.2f} s", flush=True)
    t_plain, result = timed(lambda: monitor(reference, current, run_evidently=False), args.repeats)
    print(f"monitor() without Evidently: {t_plain:.2f} s  (ratio to PSI alone {t_plain / t_psi:.1f}×); "
          f"alerts in the synthetic run: {len(result.alerts)}", flush=True)
    import evidently  # noqa: F401  (its import takes seconds; keep it out of the timed runs)

    t_full, _ = timed(lambda: monitor(reference, current, run_evidently=True), args.repeats)
    print(f"monitor() with Evidently on its default 50k sample per side: {t_full:.2f} s  (ratio {t_full / t_psi:.1f}×)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux → GiB
    print(f"peak RSS of the process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
