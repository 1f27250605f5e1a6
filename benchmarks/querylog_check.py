"""The query-log check alone, on a database ``city_scale.py`` built (issue 22: "incremental log
check of a day's entries ≤ 1 s"), this checkout's code against another's, interleaved.

Each run is a fresh process (``PYTHONPATH`` = the checkout) that opens the database read-only in
practice (the check writes nothing), runs the incremental check from the day-start copy of the
checkpoints (``city_scale.day_start_checkpoints``) and, with ``--full``, the full check, and
prints the seconds, CPU seconds, entries walked and its peak RSS. ``--against DIR`` runs the same
in a sibling checkout (e.g. ``git archive main | tar -x -C DIR``), alternating run by run, so a
changing load falls on both alike; the ratio is of the medians.

Usage: PYTHONPATH=. flock /tmp/bench.lock timeout 900 .venv/bin/python benchmarks/querylog_check.py
       --db-dir DIR/20000 [--url postgresql+psycopg://…] [--against OTHER_CHECKOUT] [--repeats 3]
       [--full] [--profile OUT.prof]
``--db-dir`` is one size's directory of ``city_scale.py --db-dir`` (``city.db`` and ``keys/``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from serving.db.session import iter_session
from serving.keys import with_keys
from serving.services.querylog import LogKeys, use_keys
from serving.services.querylog_check import check_chain
from serving.settings import Settings

tmp, url, full, profile = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4]
settings = with_keys(Settings(database_url=url, keys_dir=tmp / "keys", data_dir=tmp))
use_keys(url, LogKeys.of(settings))
copy = settings.checkpoint_path.with_name("checkpoints-day-start.jsonl")
out = {}
def timed(name, **kw):
    session = next(iter_session(url))
    t, c = time.perf_counter(), time.process_time()
    if profile and name == "incremental":
        import cProfile
        prof = cProfile.Profile()
        result = prof.runcall(check_chain, session, checkpoint_file=copy, **kw)
        prof.dump_stats(profile)
    else:
        result = check_chain(session, checkpoint_file=copy, **kw)
    out[name + "_s"], out[name + "_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    out[name + "_entries"], out[name + "_ok"] = result.entries, result.ok
    out[name + "_problem"] = result.problem
    session.close()
timed("incremental", incremental=True)
if full:
    timed("full")
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run(tree: Path, db_dir: Path, url: str, full: bool, profile: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(db_dir), url, "1" if full else "0", profile],
                          env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db-dir", type=Path, required=True)
    parser.add_argument("--url", help="the database (default: sqlite of DB_DIR/city.db)")
    parser.add_argument("--against", type=Path, help="another checkout, run alternately with this one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the full check too (and its peak RSS)")
    parser.add_argument("--profile", default="", help="cProfile of this checkout's incremental check into FILE")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{args.db_dir / 'city.db'}"
    trees = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}
    with open("/proc/loadavg") as f:
        print(f"nproc={os.cpu_count()} load={f.read().split()[:3]}", flush=True)
    figures: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(args.repeats):
        for name, tree in trees.items():
            got = run(tree, args.db_dir, url, args.full, args.profile if name == "this" and r == 0 else "")
            figures[name].append(got)
            print(f"{name} #{r + 1}: {json.dumps(got)}", flush=True)
    for key in ("incremental_s", "incremental_cpu_s", "full_s", "full_cpu_s", "peak_rss_mb"):
        medians = {name: statistics.median(g[key] for g in runs) for name, runs in figures.items() if key in runs[0]}
        if medians:
            ratio = f", this / against {medians['this'] / medians['against']:.3f}" if len(medians) == 2 else ""
            print(f"median {key}: " + ", ".join(f"{n} {v:.3f}" for n, v in medians.items()) + ratio)
    with open("/proc/loadavg") as f:
        print(f"load after={f.read().split()[:3]}")


if __name__ == "__main__":
    main()
