"""The grade reads' own functions (no HTTP, no query log) of different checkouts in turn, on one
graded database: each tree's code in a child process of its own (``PYTHONPATH`` = the tree),
alternating tree by tree for ``--rounds``; per run the single read (``grades.latest_grade_values``
and the body ``grade_json`` answers, ``--singles`` random subjects: median and p99 µs) and the
batch read (``grades.latest_grades``, ``--batches`` reads of 1,000 random subjects: median
subjects/s), on one connection, after one warm-up read of each. The database is only read, so every
tree reads the same rows (a tree's schema must be the database's: same Alembic head).

Usage: PYTHONPATH=. flock /tmp/bench.lock timeout 900 .venv/bin/python benchmarks/grade_reads_in_process.py \
           --url 'postgresql+psycopg://tiers@/bench?host=/tmp&port=55441' --trees BASELINE_CHECKOUT,. --rounds 4
(a database graded by ``bulk_load.py`` or ``city_scale.py --build-only``; ``--url sqlite:///DIR/N/city.db``)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = r'''
import json, random, sys, time
from serving.db.session import engine_for
from serving.presenters import grade_json
from serving.services.grades import latest_grade_values, latest_grades

url, singles, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
engine = engine_for(url)
with engine.connect() as conn:
    codes = [r[0] for r in conn.exec_driver_sql("SELECT uscc FROM current_grades ORDER BY uscc").all()]
    conn.rollback()
rng = random.Random(7)  # the same subjects for every tree
with engine.connect() as conn:
    latest_grades(conn, codes[:1000])
    grade_json(latest_grade_values(conn, codes[0]))
    batch = []
    for _ in range(batches):
        pick = rng.sample(codes, min(1000, len(codes)))
        t = time.perf_counter()
        latest_grades(conn, pick)
        batch.append(len(pick) / (time.perf_counter() - t))
    single = []
    for code in rng.choices(codes, k=singles):
        t = time.perf_counter()
        grade_json(latest_grade_values(conn, code))
        single.append((time.perf_counter() - t) * 1e6)
single.sort()
print(json.dumps({"median_us": single[len(single) // 2], "p99_us": single[int(len(single) * 0.99)],
                  "batch_per_s": sorted(batch)[len(batch) // 2]}))
'''


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="a graded database (only read)")
    p.add_argument("--trees", required=True, help="checkouts, comma-separated, the first the baseline")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--singles", type=int, default=2000)
    p.add_argument("--batches", type=int, default=10)
    args = p.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees.split(",")]
    print(f"loadavg {os.getloadavg()}  nproc {os.cpu_count()}  {args.url.split(':')[0]}", flush=True)
    runs: dict[str, list[dict]] = {t: [] for t in trees}
    for r in range(args.rounds):
        for tree in trees:
            done = subprocess.run([sys.executable, "-c", _CHILD, args.url, str(args.singles), str(args.batches)],
                                  env={**os.environ, "PYTHONPATH": tree}, cwd=tree, capture_output=True, text=True,
                                  timeout=600, check=False)
            if done.returncode:
                raise SystemExit(f"{tree}: exit {done.returncode}\n{done.stderr[-3000:]}")
            run = json.loads(done.stdout.strip().splitlines()[-1])
            runs[tree].append(run)
            print(f"[{r + 1}] {tree}: single median {run['median_us']:,.0f} µs, p99 {run['p99_us']:,.0f} µs; "
                  f"batch {run['batch_per_s']:,.0f} subjects/s", flush=True)
    base = trees[0]
    for tree in trees:
        median = statistics.median(run["median_us"] for run in runs[tree])
        batch = statistics.median(run["batch_per_s"] for run in runs[tree])
        ratio = median / statistics.median(run["median_us"] for run in runs[base])
        print(f"{tree}: single median of rounds {median:,.0f} µs ({ratio:.2f}× baseline), batch {batch:,.0f} "
              f"subjects/s ({batch / statistics.median(run['batch_per_s'] for run in runs[base]):.2f}×)", flush=True)


if __name__ == "__main__":
    main()
