"""False alarms and detection of `tiers monitor` on simulated cities.

Baseline: SEEDS seeds × 6 month-over-month runs (2026-01 … 2026-06) → every alert is a false alarm.
Scenarios (change on 2026-01-01): is the alert naming the cause raised in the first run (2026-01-31)?

    .venv/bin/python benchmarks/monitor_false_alarms.py [--seeds 5] [--subjects 10000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

# the scenario harness is shared with tests/monitoring/test_mon_scenarios.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "monitoring"))

from mon_scenario_city import ScenarioCity, month_ends, simulate_store

CAUSE = {
    "sector_shock": lambda s: ({"segment_flow", "segment_psi"}, f"sector {s['affected_sector']}"),
    "silent_feed": lambda s: ({"silent_feed"}, f"department {s['affected_department']}"),
    "severity_recoding": lambda s: ({"severity_mix", "feature_psi"}, f"severity coding of department {s['affected_department']}"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()}, RAM={os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB")
    started = time.perf_counter()
    months = month_ends(date(2025, 12, 1), 7)  # 2025-12-31 … 2026-06-30: six monthly runs
    false_alarms: Counter[str] = Counter()
    n_runs = 0
    detected: Counter[str] = Counter()
    collateral: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in range(1, args.seeds + 1):
            city = ScenarioCity(simulate_store(work, scenario="baseline", seed=seed, n_subjects=args.subjects),
                                train_as_of=date(2024, 12, 31))
            for ref, cur in itertools.pairwise(months):
                result = city.run(ref, cur, run_evidently=False)
                n_runs += 1
                for a in result.alerts:
                    false_alarms[f"{a.rule}: {a.subject_of_alert}"] += 1
            for scenario, cause in CAUSE.items():
                store = simulate_store(work, scenario=scenario, seed=seed, n_subjects=args.subjects)
                manifest = json.loads((work / f"city_{scenario}_{seed}" / "manifest.json").read_text(encoding="utf-8"))
                rules, subject = cause(manifest["scenario"])
                result = ScenarioCity(store, train_as_of=date(2024, 12, 31)).run(months[0], months[1], run_evidently=False)
                hits = [a for a in result.alerts if a.rule in rules and a.subject_of_alert == subject]
                detected[scenario] += bool(hits)
                for a in result.alerts:
                    if a not in hits:
                        collateral[f"{scenario} → {a.rule}: {a.subject_of_alert}"] += 1
            print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", flush=True)
    total = sum(false_alarms.values())
    print(f"baseline: {total} false alarms in {n_runs} monthly runs ({args.seeds} seeds × 6 months, "
          f"{args.subjects} subjects)")
    for what, n in false_alarms.most_common():
        print(f"  {n} × {what}")
    for scenario in CAUSE:
        print(f"{scenario}: cause named in the first monthly run for {detected[scenario]}/{args.seeds} seeds")
    if collateral:
        print("other alerts in the scenario runs:")
        for what, n in collateral.most_common():
            print(f"  {n} × {what}")
    print(f"wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
