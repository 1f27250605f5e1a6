"""Bulk grade loads (issue 22): rows/s of ``serving.services.bulk`` for two source trees in the same
run, back to back, with their ratio (so a shared, busy machine affects both alike).

Each tree runs in its own child process (``PYTHONPATH`` = the tree, so it imports that tree's
code and migrates with that tree's Alembic scripts) on a fresh database: ``--subjects`` N
subjects, then ``--as-of`` monthly grade loads of N rows each (5 reasons per grade; the first is
a first load, the others regrade every subject). Printed per tree: rows/s of each grade load and
of all of them, the seconds per phase where the tree's ``LoadReport`` reports them
(``phases``), and on SQLite the WAL's largest size after a batch (its growth during a load); then
the bytes per grade row (the grades table's, without indexes, and the whole database's) and the
batch read's subjects/s (``grades.latest_grades`` in process, 1,000 random subjects a read).

Usage: flock /tmp/bench.lock timeout 900 .venv/bin/python benchmarks/bulk_load.py --subjects 200000 --as-of 2
       --trees BASELINE_CHECKOUT,. [--batch-rows 50000] [--distinct-reasons] [--sentences] [--repeats 1] [--cpu-phases]
       [--postgres 'postgresql+psycopg://tiers@/bench?host=/tmp&port=55441']
Target (issue 22): ≥ 50,000 grades/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _grade_frames import bench_reasons, grade_load_options, month_grades


def _child(args: argparse.Namespace) -> dict:
    """One tree's loads (runs in the child: imports come from its PYTHONPATH)."""

    import numpy as np
    import pandas as pd
    from sqlalchemy import text

    from serving.db.migrate import upgrade
    from serving.db.session import dispose_engine, engine_for
    from serving.services.bulk import load_grades, load_subjects
    from simulation.codes import make_uscc

    n, rows = args.subjects, args.batch_rows
    tmp = Path(tempfile.mkdtemp(prefix="tiers-bulk-load-"))
    url = args.postgres or f"sqlite:///{tmp / 'bulk.db'}"
    if args.postgres:
        with engine_for(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        dispose_engine(url)
    upgrade(url)
    engine = engine_for(url)
    statements = _cpu_phases() if args.cpu_phases else None
    rng = np.random.default_rng(22)
    codes = make_uscc(np.array(["91"] * n), np.full(n, 320100), np.arange(n)).astype(str)
    sections = list("ACEFGHIKLMS")
    subjects = pd.DataFrame({"uscc": codes, "name": [f"南京{sections[i % 11]}企业{i:07d}" for i in range(n)],
                             "industry": rng.choice(sections, n), "district_code": rng.choice(["320102", "320104"], n),
                             "district_name": "区", "registered_on": "2015-01-01"})
    t = time.perf_counter()
    load_subjects(engine, (subjects.iloc[i:i + rows] for i in range(0, n, rows)), load_id="subjects")
    out: dict = {"subjects_per_s": n / (time.perf_counter() - t), "loads": []}

    reasons = ([bench_reasons(i, sentences=args.sentences) for i in range(n)] if args.distinct_reasons
               else bench_reasons(sentences=args.sentences))
    wal = tmp / "bulk.db-wal"
    if statements is not None:
        statements.clear()  # (the grade loads' statements only)
    for month in range(args.as_of):
        as_of, grades = month_grades(codes, month, reasons, rng)
        wal_peak = [0]

        def progress(_report, peak=wal_peak) -> None:  # the WAL's size after each batch (SQLite)
            peak[0] = max(peak[0], wal.stat().st_size if wal.exists() else 0)

        t, cpu = time.perf_counter(), time.process_time()
        report = load_grades(engine, (grades.iloc[i:i + rows] for i in range(0, n, rows)), load_id=f"grades-{as_of}",
                             progress=progress)
        seconds = time.perf_counter() - t
        phases = dict(getattr(report, "phases", {}) or {})
        if statements is not None:  # (CPU laps: the first, "start", began on the wall clock)
            phases.pop("start", None)
        out["loads"].append({"as_of": str(as_of), "rows": report.stored, "seconds": seconds,
                             "cpu": time.process_time() - cpu, "phases": phases, "wal_peak": wal_peak[0]})
    if statements is not None:  # CPU µs per grade of each statement family, over the grade loads
        out["statements"] = {k: v * 1e6 / (n * args.as_of) for k, v in statements.most_common(12)}
    out["storage"] = _storage(engine, n * args.as_of)
    out["batch_reads"] = _batch_reads(engine, codes, args.read_batches, rng)
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)  # (the disk is shared)
    return out


def _cpu_phases():
    """The tree's ``LoadReport`` laps in CPU seconds of this process (its module's clock replaced),
    and a counter of CPU seconds per statement family (its first 70 characters; the caller empties
    it before the grade loads), from SQLAlchemy's cursor events (SQLite's work is in this process;
    the driver-level inserts are not statements there, they are in the phases)."""
    import collections
    import re
    import types

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import serving.services.bulk as bulk

    bulk.time = types.SimpleNamespace(perf_counter=time.process_time)  # (the laps' clock only: rates stay wall)
    spent: collections.Counter[str] = collections.Counter()
    started: list[float] = [0.0]

    @event.listens_for(Engine, "before_cursor_execute")
    def _before(*_args) -> None:
        started[0] = time.process_time()

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(_conn, _cursor, statement, *_args) -> None:
        spent[re.sub(r"\s+", " ", statement)[:70]] += time.process_time() - started[0]

    return spent


def _storage(engine, grades: int) -> dict:
    """Bytes of the grades table (its rows, without indexes) and of the whole database, per grade
    row: ``dbstat`` on SQLite, the relation sizes on PostgreSQL (after a VACUUM ANALYZE)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            sizes = dict(conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all())
            total = sum(sizes.values())
        else:
            conn.connection.driver_connection.autocommit = True
            conn.exec_driver_sql("VACUUM ANALYZE")
            sizes = dict(conn.exec_driver_sql(
                "SELECT relname, pg_table_size(oid) FROM pg_class WHERE relname IN ('grades', 'reason_labels')").all())
            total = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
    return {"grade_rows": grades, "grades_table": sizes.get("grades", 0), "reason_labels": sizes.get("reason_labels", 0),
            "database": total}


def _batch_reads(engine, codes, batches: int, rng) -> dict:
    """The batch read's own function (``grades.latest_grades``, no HTTP): ``batches`` reads of
    1,000 random subjects, subjects/s (the database just loaded: its pages mostly cached)."""
    from serving.services.grades import latest_grades

    picks = [rng.choice(codes, 1000, replace=False).tolist() for _ in range(batches + 1)]
    with engine.connect() as conn:
        latest_grades(conn, picks[0])  # (statements compiled)
        t = time.perf_counter()
        read = sum(len(latest_grades(conn, pick)) for pick in picks[1:])
        seconds = time.perf_counter() - t
        single = _single_reads(conn, rng.choice(codes, 50 * batches).tolist())
    return {"subjects": read, "seconds": seconds, "single_us": single}


def _single_reads(conn, codes) -> list[float]:
    """The single read's own function (``grades.latest_grade_values`` and the body it answers,
    no HTTP, no query log): µs of each read."""
    from serving.presenters import grade_json
    from serving.services.grades import latest_grade_values

    took = []
    for code in codes:
        t = time.perf_counter()
        grade_json(latest_grade_values(conn, code))
        took.append((time.perf_counter() - t) * 1e6)
    return took


def _run_tree(tree: Path, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--subjects", str(args.subjects),
           "--as-of", str(args.as_of), "--batch-rows", str(args.batch_rows)]
    if args.distinct_reasons:
        cmd.append("--distinct-reasons")
    if args.sentences:
        cmd.append("--sentences")
    cmd += ["--read-batches", str(args.read_batches)]
    if args.cpu_phases:
        cmd.append("--cpu-phases")
    if args.postgres:
        cmd += ["--postgres", args.postgres]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, timeout=args.timeout, check=False)
    if done.returncode:
        raise SystemExit(f"{tree}: exit {done.returncode}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(name: str, result: dict) -> float:
    rows = sum(load["rows"] for load in result["loads"])
    seconds = sum(load["seconds"] for load in result["loads"])
    per_load = ", ".join(f"{load['as_of']} {load['rows'] / load['seconds']:,.0f}" for load in result["loads"])
    cpu = sum(load.get("cpu", 0.0) for load in result["loads"])
    print(f"  {name}: grades {rows / seconds:,.0f} rows/s ({per_load}); subjects {result['subjects_per_s']:,.0f} rows/s",
          flush=True)
    if cpu:  # the loading process's own CPU (SQLite's work included; PostgreSQL's server not): less load-bound
        per_cpu = ", ".join(f"{load['as_of']} {load['rows'] / load['cpu']:,.0f}" for load in result["loads"])
        print(f"    per CPU-second of the loading process: {rows / cpu:,.0f} rows ({per_cpu})", flush=True)
    if any(load.get("wal_peak") for load in result["loads"]):  # SQLite: the WAL's largest size seen after a batch
        print("    WAL peak (MB): " + ", ".join(f"{load['as_of']} {load.get('wal_peak', 0) / 2**20:,.0f}"
                                          for load in result["loads"]), flush=True)
    for load in result["loads"]:
        if load["phases"]:
            phases = ", ".join(f"{k} {v:.2f}" for k, v in sorted(load["phases"].items(), key=lambda kv: -kv[1]))
            unit = "CPU s" if result.get("statements") is not None else "s"
            print(f"    {load['as_of']} phases ({unit} of {load['seconds']:.2f} s): {phases}", flush=True)
    for statement, us in (result.get("statements") or {}).items():
        print(f"    statement CPU µs per grade {us:6.2f}  {statement}", flush=True)
    storage = result.get("storage")
    if storage:
        rows_n = storage["grade_rows"]
        print(f"    bytes per grade row: grades table {storage['grades_table'] / rows_n:,.0f}, reason_labels "
              f"{storage['reason_labels'] / rows_n:,.1f}, whole database {storage['database'] / rows_n:,.0f} "
              f"({storage['database'] / 2**20:,.0f} MB)", flush=True)
    reads = result.get("batch_reads")
    if reads and reads["seconds"]:
        print(f"    batch read (latest_grades, 1,000 random subjects): {reads['subjects'] / reads['seconds']:,.0f} "
              "subjects/s", flush=True)
    if reads and reads.get("single_us"):
        took = sorted(reads["single_us"])
        print(f"    single read (latest_grade_values + grade_json, {len(took)} random subjects): median "
              f"{took[len(took) // 2]:,.0f} µs, p99 {took[int(len(took) * 0.99)]:,.0f} µs", flush=True)
    return rows / seconds


def main(args: argparse.Namespace) -> None:
    if args.child:
        print(json.dumps(_child(args)))
        return
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    print(f"loadavg {os.getloadavg()}  nproc {os.cpu_count()}  database {'PostgreSQL' if args.postgres else 'SQLite'}  "
          f"subjects {args.subjects:,} × as-of {args.as_of}, batch {args.batch_rows:,}, "
          f"{'distinct' if args.distinct_reasons else 'shared'} reasons", flush=True)
    rates: dict[Path, list[float]] = {t: [] for t in trees}
    for r in range(args.repeats):
        for tree in trees:
            print(f"[{r + 1}] {tree}", flush=True)
            rates[tree].append(_summary(str(tree), _run_tree(tree, args)))
    base = max(rates[trees[0]])
    for tree in trees[1:]:
        print(f"best {tree}: {max(rates[tree]):,.0f} rows/s = {max(rates[tree]) / base:.2f} × {trees[0]} "
              f"({base:,.0f} rows/s)")
    print(f"loadavg {os.getloadavg()}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    grade_load_options(p, as_of=2)
    p.add_argument("--sentences", action="store_true", help="the model's own reason sentences as labels (as stored "
                   "by the pipeline) instead of short tags")
    p.add_argument("--read-batches", type=int, default=20, help="batch reads of 1,000 subjects after the loads")
    p.add_argument("--postgres", default=None, help="a throw-away PostgreSQL database URL (emptied first)")
    p.add_argument("--trees", default=".", help="source trees to compare, comma-separated, the first the baseline "
                   "(e.g. a checkout of main, then this one)")
    p.add_argument("--cpu-phases", action="store_true", help="phases in CPU seconds of the loading process "
                   "(LoadReport's laps by time.process_time) and each statement family's CPU (SQLAlchemy's cursor "
                   "events: the driver-level inserts are in the phases)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1200)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse())
