"""Ingest time of one large batch with and without the data-quality gates, in the same run.

A simulated city (no dirt) of --subjects subjects: the records decided before its last
``--batch-months`` months are published first (no gate); the rest is one batch, ingested into two
copies of that store: without gates, then with the packaged rules (features/quality.toml); the
order alternates over --repeats. Prints the medians, the gates' share of the ingest time, the
batch's record count and the store's, and the check's own time inside the gated ingests (timed
around ``features.gates.check_batch``): on a shared machine the difference of two whole ingests moves
with the load, the check's own time against the plain ingest less so.

Run from the repository root with it on the path (``PYTHONPATH=.``): otherwise the shared venv's
editable install may import another checkout's ``features``.

    .venv/bin/python benchmarks/gate_overhead.py [--subjects 40000] [--batch-months 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

import features.ingest as ingest_module
from features.ingest import ingest
from features.quality import load_quality_config
from simulation import SimulationConfig, generate

END = date(2026, 9, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40_000)
    parser.add_argument("--batch-months", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    config = load_quality_config()
    with tempfile.TemporaryDirectory(prefix="gate-overhead-") as tmp:
        work = Path(tmp)
        generate(SimulationConfig(n_subjects=args.subjects, seed=3, dirt=False, years=3, end=END), work / "city")
        records = pd.read_csv(work / "city" / "records.csv", dtype=str, keep_default_na=False)
        cut = (pd.Period(END, "M") - args.batch_months + 1).start_time.strftime("%Y-%m-%d")
        records[records["decision_date"] < cut].to_csv(work / "history.csv", index=False)
        batch = records[records["decision_date"] >= cut]
        batch.to_csv(work / "batch.csv", index=False)
        base = work / "base"
        ingest(store=base, subjects=work / "city" / "subjects.csv", records=work / "history.csv",
               ingested_at=datetime(2026, 1, 1, tzinfo=UTC) if cut > "2026-01-01" else datetime(2025, 10, 1, tzinfo=UTC))
        at = datetime(2026, 10, 1, tzinfo=UTC)
        times: dict[str, list[float]] = {"plain": [], "gated": [], "check": []}
        check_batch = ingest_module.check_batch

        def timed_check(*a, **k):
            started = time.perf_counter()
            try:
                return check_batch(*a, **k)
            finally:
                times["check"].append(time.perf_counter() - started)

        ingest_module.check_batch = timed_check
        for i in range(args.repeats):
            for name in (("plain", "gated") if i % 2 == 0 else ("gated", "plain")):
                store = work / f"{name}-{i}"
                shutil.copytree(base, store)
                started = time.perf_counter()
                s = ingest(store=store, records=work / "batch.csv", ingested_at=at,
                           gates=config if name == "gated" else None)
                times[name].append(time.perf_counter() - started)
                if name == "gated":
                    findings = len(s.findings)
                shutil.rmtree(store)
        plain, gated = statistics.median(times["plain"]), statistics.median(times["gated"])
        print(f"batch {len(batch):,} records into a store of {len(records) - len(batch):,}; "
              f"{args.subjects:,} subjects; repeats {args.repeats}")
        print(f"ingest without gates {plain:.1f} s, with gates {gated:.1f} s "
              f"(gates {gated - plain:+.1f} s = {(gated - plain) / plain:+.1%} of the ingest); findings {findings}")
        least_plain, least_gated = min(times["plain"]), min(times["gated"])
        print(f"least-disturbed runs (the minimum of each): without gates {least_plain:.1f} s, with gates "
              f"{least_gated:.1f} s ({(least_gated - least_plain) / least_plain:+.1%})")
        check = statistics.median(times["check"])
        print(f"the check alone inside the gated ingests: {check:.1f} s = {check / plain:+.1%} of the plain ingest "
              f"({check / gated:.1%} of the gated one); runs: plain {times['plain']}, gated {times['gated']}, "
              f"check {times['check']}")


if __name__ == "__main__":
    main()
