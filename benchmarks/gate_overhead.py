"""Ingest time of one large batch with and without the data-quality gates, in the same run.

A simulated city (no dirt): the records decided before its last ``--batch-months`` months are
published first (no gate); the rest is one batch, ingested into two copies of that store: without
gates, then with the packaged rules (features/quality.toml); the order alternates over --repeats.
Prints the medians, the gates' share of the ingest time, the batch's record count and the store's,
and the check's own time inside the gated ingests (timed around ``features.gates.check_batch``): on
a shared machine the difference of two whole ingests moves with the load, the check's own time
against the plain ingest less so.

The city is either generated here (``--subjects``, three years, in memory: up to a few hundred
thousand subjects) or read from ``--city``, a directory ``tiers simulate --format parquet`` wrote
(millions of subjects: generate once with ``--workers 2``, reuse for every size). ``--fraction``
keeps that share of the city's subjects (by a hash of their code) with their records: one city,
several batch sizes. ``--history-months`` bounds the store of earlier months (the gates read its
last ``history.trailing_months``; the rest only makes the copies slower). ``--work`` keeps the
split files and the base store between runs (a second run with the same options skips both).
The split is done by DuckDB from Parquet, so the memory of preparing a 20 M-record batch stays
bounded (pandas held every record as Python strings).

Run from the repository root with it on the path (``PYTHONPATH=.``): otherwise the shared venv's
editable install may import another checkout's ``features``.

    .venv/bin/python benchmarks/gate_overhead.py [--subjects 40000] [--batch-months 12] [--repeats 2]
    .venv/bin/python benchmarks/gate_overhead.py --city /tmp/city3m --fraction 0.25 --history-months 12 \\
        --work /tmp/g21-025 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

import features.ingest as ingest_module
from features.ingest import ingest
from features.quality import load_quality_config
from simulation import SimulationConfig, generate

END = date(2026, 9, 30)
# the contract's CSV writes whole amounts without a decimal point, as the simulator's CSV does
_AMOUNT = ("CASE WHEN a IS NULL THEN NULL WHEN a = round(a) THEN CAST(CAST(a AS BIGINT) AS VARCHAR) "
           "ELSE CAST(a AS VARCHAR) END AS amount").replace("a ", "TRY_CAST(amount AS DOUBLE) ").replace("a)", "TRY_CAST(amount AS DOUBLE))")


def _source(city: Path, name: str) -> str:
    parquet, csv = city / f"{name}.parquet", city / f"{name}.csv"
    return f"read_parquet('{parquet}')" if parquet.exists() else f"read_csv('{csv}', all_varchar = true)"


def split(city: Path, out: Path, *, cut: str, history_from: str | None, fraction: float) -> dict[str, int]:
    """Write ``out``/subjects.csv, history.csv and batch.csv from ``city``; returns their row counts."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        con.execute("SET memory_limit = '2GB'")
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"SET temp_directory = '{out / '_spill'}'")
        keep = "true" if fraction >= 1 else f"hash(uscc) % 100000 < {round(fraction * 100000)}"
        con.execute(f"CREATE TEMP TABLE kept AS SELECT uscc FROM {_source(city, 'subjects')} WHERE {keep}")
        con.execute(f"COPY (SELECT * FROM {_source(city, 'subjects')} WHERE {keep}) TO '{out / 'subjects.csv'}' "
                    "(HEADER)")
        columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_source(city, 'records')}").fetchall()]
        select = ", ".join(_AMOUNT if c == "amount" else c for c in columns)
        records = f"(SELECT {select} FROM {_source(city, 'records')} SEMI JOIN kept USING (uscc))"
        lower = f"AND decision_date >= '{history_from}'" if history_from else ""
        con.execute(f"COPY (SELECT * FROM {records} WHERE decision_date < '{cut}' {lower}) "
                    f"TO '{out / 'history.csv'}' (HEADER)")
        con.execute(f"COPY (SELECT * FROM {records} WHERE decision_date >= '{cut}') TO '{out / 'batch.csv'}' (HEADER)")
        counts = {name: con.execute(f"SELECT count(*) FROM read_csv('{out / name}.csv', all_varchar = true)")
                  .fetchone()[0] for name in ("subjects", "history", "batch")}
    finally:
        con.close()
    shutil.rmtree(out / "_spill", ignore_errors=True)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=40_000, help="generate a city of this size (no --city)")
    parser.add_argument("--city", type=Path, help="a city `tiers simulate` wrote (ending 2026-09-30, clean)")
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the city's subjects kept")
    parser.add_argument("--batch-months", type=int, default=12)
    parser.add_argument("--history-months", type=int, help="months of the store before the batch (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", type=Path, help="keep the split and the base store here (reused when present)")
    parser.add_argument("--profile", action="store_true", help="cProfile the check of the first gated ingest")
    parser.add_argument("--only", choices=("plain", "gated"), help="run one kind of ingest only (profiling)")
    args = parser.parse_args()
    config = load_quality_config()
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="gate-overhead-")
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    try:
        _run(args, config, work)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(args: argparse.Namespace, config, work: Path) -> None:
    period = (END.year * 12 + END.month - 1) - args.batch_months + 1
    cut = date(period // 12, period % 12 + 1, 1).isoformat()
    history_from = None
    if args.history_months:
        first = period - args.history_months
        history_from = date(first // 12, first % 12 + 1, 1).isoformat()
    meta = work / "split.json"
    started = time.perf_counter()
    if not meta.exists():
        city = args.city
        if city is None:
            city = work / "city"
            generate(SimulationConfig(n_subjects=args.subjects, seed=3, dirt=False, years=3, end=END), city)
        counts = split(city, work, cut=cut, history_from=history_from, fraction=args.fraction)
        meta.write_text(json.dumps(counts))
        print(f"split in {time.perf_counter() - started:.0f} s: {counts}", flush=True)
    counts = json.loads(meta.read_text())
    base = work / "base"
    if not (base / ".done").exists():
        shutil.rmtree(base, ignore_errors=True)
        started = time.perf_counter()
        ingest(store=base, subjects=work / "subjects.csv", records=work / "history.csv",
               ingested_at=datetime(2026, 1, 1, tzinfo=UTC) if cut > "2026-01-01" else datetime(2025, 10, 1, tzinfo=UTC))
        (base / ".done").write_text("")
        print(f"base store in {time.perf_counter() - started:.0f} s", flush=True)
    at = datetime(2026, 10, 1, tzinfo=UTC)
    times: dict[str, list[float]] = {"plain": [], "gated": [], "check": []}
    check_batch = ingest_module.check_batch
    profiled = []

    def timed_check(*a, **k):
        started = time.perf_counter()
        profiler = cProfile.Profile() if args.profile and not profiled else None
        try:
            if profiler:
                profiler.enable()
            return check_batch(*a, **k)
        finally:
            if profiler:
                profiler.disable()
                profiled.append(profiler)
            times["check"].append(time.perf_counter() - started)

    ingest_module.check_batch = timed_check
    findings = None
    kinds = (args.only,) if args.only else ("plain", "gated")
    for i in range(args.repeats):
        for name in (kinds if i % 2 == 0 else kinds[::-1]):
            store = work / f"{name}-{i}"
            shutil.rmtree(store, ignore_errors=True)
            shutil.copytree(base, store)
            started = time.perf_counter()
            s = ingest(store=store, records=work / "batch.csv", ingested_at=at,
                       gates=config if name == "gated" else None)
            times[name].append(time.perf_counter() - started)
            if name == "gated":
                findings = len(s.findings)
            shutil.rmtree(store)
            print(f"{name} {i}: {times[name][-1]:.1f} s" + (f" (check {times['check'][-1]:.1f} s)"
                                                            if name == "gated" else ""), flush=True)
    print(f"batch {counts['batch']:,} records into a store of {counts['history']:,} "
          f"({counts['subjects']:,} subjects); repeats {args.repeats}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    if times["plain"] and times["gated"]:
        plain, gated = statistics.median(times["plain"]), statistics.median(times["gated"])
        print(f"ingest without gates {plain:.1f} s, with gates {gated:.1f} s "
              f"(gates {gated - plain:+.1f} s = {(gated - plain) / plain:+.1%} of the ingest); findings {findings}")
        least_plain, least_gated = min(times["plain"]), min(times["gated"])
        print(f"least-disturbed runs (the minimum of each): without gates {least_plain:.1f} s, with gates "
              f"{least_gated:.1f} s ({(least_gated - least_plain) / least_plain:+.1%})")
        check = statistics.median(times["check"])
        print(f"the check alone inside the gated ingests: {check:.1f} s = {check / plain:+.1%} of the plain ingest "
              f"({check / gated:.1%} of the gated one)")
    print(f"runs: plain {times['plain']}, gated {times['gated']}, check {times['check']}; findings {findings}")
    if profiled:
        out = io.StringIO()
        pstats.Stats(profiled[0], stream=out).sort_stats("cumulative").print_stats(r"features/quality|gates", 30)
        print(out.getvalue())


if __name__ == "__main__":
    main()
