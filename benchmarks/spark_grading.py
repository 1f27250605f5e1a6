"""Benchmark: profiles and bulk grading on local Spark, the cost per 1 M subjects, against DuckDB.

    flock /tmp/bench.lock .venv/bin/python benchmarks/spark_grading.py                     # 200 k subjects, ~4 M records
    flock /tmp/bench.lock .venv/bin/python benchmarks/spark_grading.py --subjects 50000    # quick run

Data: the synthetic store of benchmarks/profiles.py (cached under /tmp/tiers-bench-profiles/) and
a general model trained on a 2,000-subject simulated city (``--candidates gbm_additive``, the
kind training prefers). Measured in this run, as of 2026-06-30:

* Spark, ``local[2]`` (the machine's 2 cores, 4 GB driver): the profiles from the published history
  (``spark_profiles``, current state included) written as Parquet; then profiles and grading
  (``grade_spark``: ``mapInPandas``, model broadcast, profile hash per row; with ``--evidence``
  each reason cites its records: ``spark_records``) written as Parquet;
* DuckDB baseline (2 threads): ``build_profiles`` on the materialised current state and
  ``grade_routed`` in the same process (what ``tiers grade`` does, without the what-if; with
  ``--evidence`` also the records behind the reasons, ``evidence_index``, which costs ≈ 12 ms per
  subject: run it on a few thousand subjects);
* the grades of both engines compared subject by subject; the sizes of what a run stores.

Prints seconds and core-seconds per 1 M subjects: the figures docs/spark.md scales to a national run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from external import cpu_seconds  # sibling scripts
from profiles import _machine, add_store_options, cached_store

AS_OF = date(2026, 6, 30)
SCRATCH = Path("/tmp/tiers-bench-spark")


def train_general(root: Path):
    """A general model trained on a small simulated city (minutes, not the point of the benchmark)."""
    from features.ingest import ingest
    from features.specs import FEATURE_SPECS
    from simulation import SimulationConfig, generate
    from training.data import load_dataset
    from training.pipeline import TrainingConfig, feature_metas_from_specs, train_model

    generate(SimulationConfig(n_subjects=2000, seed=3), root / "city")
    ingest(store=root / "city-store", subjects=root / "city" / "subjects.csv", records=root / "city" / "records.csv",
           ingested_at=datetime(2026, 11, 1, tzinfo=UTC))
    config = TrainingConfig(train_as_of=(date(2023, 6, 30),), validate_as_of=date(2024, 6, 30),
                            candidates=("gbm_additive",), n_boot=20)
    dataset = load_dataset(root / "city-store", (*config.train_as_of, config.validate_as_of))
    return train_model(dataset, feature_metas_from_specs(FEATURE_SPECS), config=config).model


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_options(ap, subjects=200_000)
    ap.add_argument("--partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    ap.add_argument("--evidence", action="store_true", help="reasons cite their records (tiers grade's default)")
    args = ap.parse_args()
    import pandas as pd

    from features.profiles import build_profiles, spark_profiles, spark_records
    from features.specs import model_features
    from features.store import compact, read_latest, snapshot
    from training.grade import evidence_index, grade_routed, grade_spark

    print(f"machine: {_machine()}", flush=True)
    cache = cached_store(args.subjects, args.records_per_subject, args.seed)
    if not snapshot(cache).has_current:
        compact(cache)  # the DuckDB build reads the materialised current state, as after ingestion
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        routes = {None: (train_general(SCRATCH), "tiers-general", 1)}
        print(f"model trained on a simulated city in {time.perf_counter() - t0:.0f} s (not part of the figures)",
              flush=True)

        # DuckDB: profiles, then grades, in one process
        c0, t0 = time.process_time(), time.perf_counter()
        profiles = build_profiles(cache, as_of=AS_OF, threads=2)
        t_prof = time.perf_counter() - t0
        cited = None
        if args.evidence:
            index = evidence_index(read_latest(cache, "records"), AS_OF, model_features())

            def cited(part: pd.DataFrame) -> list:
                return [index.get(str(u), {}) for u in part["uscc"]]

        duck = grade_routed(routes, profiles, evidence=cited)
        duck_wall, duck_cpu = time.perf_counter() - t0, time.process_time() - c0
        n = len(duck)
        profiles.to_parquet(SCRATCH / "profiles.parquet", index=False)
        duck.to_parquet(SCRATCH / "grades.parquet", index=False)

        # Spark, local[2]
        os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run this interpreter
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").appName("tiers-bench")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .config("spark.driver.memory", "4g")
                 .config("spark.sql.shuffle.partitions", str(args.partitions))
                 .config("spark.sql.session.timeZone", "UTC")
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .config("spark.local.dir", str(SCRATCH / "spark-tmp")).getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        # JVM up and its code compiled before the clock starts: one untimed run of the profile query
        spark_profiles(cache, as_of=AS_OF, spark=spark).count()
        c0, t0 = cpu_seconds(), time.perf_counter()
        spark_profiles(cache, as_of=AS_OF, spark=spark).write.mode("overwrite").parquet(str(SCRATCH / "sp-profiles"))
        sp_prof_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        graded = grade_spark(spark_profiles(cache, as_of=AS_OF, spark=spark), routes,
                             records=spark_records(cache, spark=spark) if args.evidence else None)
        graded.write.mode("overwrite").parquet(str(SCRATCH / "sp-grades"))
        sp_wall = time.perf_counter() - t0
        sp_cpu = cpu_seconds() - c0  # both Spark jobs: driver, JVM, Python workers
        spark.stop()
        sprk = pd.read_parquet(SCRATCH / "sp-grades").sort_values("uscc", kind="stable").reset_index(drop=True)
        same = sprk[list(duck.columns)].equals(duck.astype({"model_registry_version": "int64"})) \
            if len(sprk) == n else False

        per_m = 1e6 / n
        print(f"subjects graded: {n:,}" + (" (reasons citing their records)" if args.evidence else ""))
        print(f"DuckDB (2 thr): profiles {t_prof:.1f} s, profiles + grades {duck_wall:.1f} s wall, "
              f"{duck_cpu:.1f} s CPU → per 1 M subjects {duck_wall * per_m:.1f} s wall, {duck_cpu * per_m:.1f} core-s")
        print(f"Spark local[2]: profiles {sp_prof_wall:.1f} s; profiles + grades {sp_wall:.1f} s wall "
              f"→ per 1 M subjects: profiles {sp_prof_wall * per_m:.1f} s, profiles + grades {sp_wall * per_m:.1f} s "
              f"wall ({2 * sp_wall * per_m / 3600:.3f} core-hours at 2 cores); CPU of both Spark jobs "
              f"{sp_cpu:.1f} s ({sp_cpu * per_m:.1f} core-s per 1 M)")
        print(f"ratio Spark / DuckDB (profiles + grades, wall) = {sp_wall / duck_wall:.1f}×")
        print(f"Spark grades == DuckDB grades (every column, every subject): {same}")
        hist = sum(_size(cache / f) for f in snapshot(cache).files("records"))
        records = sum(s.records for s in snapshot(cache).segments)
        cur = sum(_size(snapshot(cache).segment_path(s, "records")) for s in snapshot(cache).segments)
        print(f"storage: history {hist / records:.1f} B/record, current state {cur / records:.1f} B/record "
              f"({records:,} records); profiles {_size(SCRATCH / 'sp-profiles') / n:.1f} B/subject, "
              f"grades {_size(SCRATCH / 'sp-grades') / n:.1f} B/subject (Spark's Parquet)")
        print(f"machine after: {_machine()}")
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
