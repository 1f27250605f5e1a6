"""Benchmark `simulation.generate`: records written per second, against writing random Parquet.

    .venv/bin/python benchmarks/simulate.py                 # 100k subjects, 3 repeats
    .venv/bin/python benchmarks/simulate.py --million       # also 1M subjects (1 repeat, a few minutes)

Each run happens in a fresh subprocess so its peak RSS is its own. The baseline, measured in the same
run, streams an equally long random table (same column count and types) with pyarrow's ParquetWriter
in 1M-row pieces; ratio = simulator rows/s ÷ baseline rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child_simulate(n_subjects: int, out: str) -> None:
    sys.path.insert(0, str(ROOT))
    from simulation import SimulationConfig, generate

    start = time.perf_counter()
    manifest = generate(SimulationConfig(n_subjects=n_subjects, seed=20261122, file_format="parquet"), out)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "rows": manifest["rows"]["records.parquet"],
                      "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def _child_baseline(n_rows: int, out: str) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    piece = min(n_rows, 1_000_000)

    def strings(k: int, width: int) -> pa.Array:
        return pc.cast(pa.array(rng.integers(10 ** (width - 1), 10**width, k)), pa.string())

    # 17 columns like records: 14 strings, 1 float, 1 bool, plus 1 more string
    table = pa.table({**{f"s{i}": strings(piece, 10 + i % 8) for i in range(15)},
                      "amount": pa.array(rng.random(piece) * 1e5), "flag": pa.array(rng.random(piece) < 0.5)})
    start, cpu_start = time.perf_counter(), time.process_time()
    writer = pq.ParquetWriter(out, table.schema, compression="zstd", compression_level=3)
    written = 0
    while written < n_rows:
        k = min(piece, n_rows - written)
        writer.write_table(table.slice(0, k), row_group_size=1_000_000)
        written += k
    writer.close()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": n_rows, "cpu_seconds": time.process_time() - cpu_start,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run_child(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _machine() -> dict:
    import psutil

    return {"nproc": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, nargs="*", default=[100_000])
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 subjects (once)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [(n, args.repeats) for n in args.subjects] + ([(1_000_000, 1)] if args.million else [])
    print("machine:", json.dumps(_machine()))
    for n, repeats in sizes:
        sims, bases = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                sims.append(_run_child("--child-simulate", str(n), tmp))
            with tempfile.TemporaryDirectory() as tmp:
                bases.append(_run_child("--child-baseline", str(sims[-1]["rows"]), str(Path(tmp) / "b.parquet")))
        sim_rate = statistics.median(s["rows"] / s["seconds"] for s in sims)
        base_rate = statistics.median(b["rows"] / b["seconds"] for b in bases)
        print(json.dumps({
            "subjects": n, "repeats": repeats, "records": sims[-1]["rows"],
            "seconds_median": round(statistics.median(s["seconds"] for s in sims), 2),
            "records_per_s": round(sim_rate), "baseline_parquet_rows_per_s": round(base_rate),
            "ratio_to_baseline": round(sim_rate / base_rate, 4),
            "peak_rss_mb": round(max(s["peak_rss_mb"] for s in sims)),
            # CPU seconds (incl. imports for the simulator) are less sensitive to a busy machine than wall time
            "cpu_s_median": round(statistics.median(s["cpu_seconds"] for s in sims), 1),
            "baseline_cpu_s_median": round(statistics.median(b["cpu_seconds"] for b in bases), 1),
        }))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child-simulate":
        _child_simulate(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--child-baseline":
        _child_baseline(int(sys.argv[2]), sys.argv[3])
    else:
        main()
