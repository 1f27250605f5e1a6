"""The logged grade read under load, two versions of the code on one database in one run
(issue 22: the query log's commits on PostgreSQL).

Builds (or, with ``--reuse``, keeps) a city of ``--subjects`` as ``benchmarks/city_scale.py``
does (SQLite in ``--db-dir``, or the throw-away PostgreSQL database of ``--postgres``), then, for
``--rounds`` rounds, serves it with each ``--code LABEL=DIR`` in turn (a checkout of the
project: its ``serving`` package is the one imported) under uvicorn with 2 workers and sends the
single logged grade read at ``--rate`` req/s for ``--duration`` s (open loop: ``api.run_phase``).
Alternating the versions spreads the machine's noise over both. On PostgreSQL the backends'
wait events are sampled every 20 ms during each phase. The log's chain is checked at the end.

Usage: PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/querylog_ab.py --subjects 20000 --db-dir /tmp/ab-pg \
           --postgres 'postgresql+psycopg://…' --build-only        # once, outside the lock
       PYTHONPATH=. flock /tmp/bench.lock timeout 1500 .venv/bin/python benchmarks/querylog_ab.py \
           --subjects 20000 --db-dir /tmp/ab-pg --postgres 'postgresql+psycopg://…' \
           --reuse --code before=/tmp/base-checkout --code after=. [--rate 500] [--duration 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api import drain, free_port, machine_facts, measured_phase, service_env, stop_uvicorn, wait_healthy
from city_scale import _codes, prepare, write_scheduler_data


def start_server(root: Path, port: int, env: dict, log_path: Path) -> subprocess.Popen:
    """uvicorn with 2 workers serving the app of the checkout ``root`` (as ``api.start_uvicorn``)."""
    cmd = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
           "--http", "httptools", "--timeout-worker-healthcheck", "300"]
    return subprocess.Popen(cmd, env={**env, "PYTHONPATH": str(root)}, cwd=root, stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def sample_waits(url: str, stop: threading.Event) -> collections.Counter:
    """Wait events of the service's backends running a query-log statement, every 20 ms."""
    from sqlalchemy import create_engine, text

    seen: collections.Counter = collections.Counter()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    query = text("SELECT coalesce(wait_event_type || ': ' || wait_event, 'CPU'), left(query, 40) FROM pg_stat_activity "
                 "WHERE pid <> pg_backend_pid() AND state = 'active' AND datname = current_database()")
    with engine.connect() as conn:
        while not stop.wait(0.02):
            seen["samples"] += 1
            for wait, sql in conn.execute(query):
                seen[f"{wait} | {sql}"] += 1
    engine.dispose()
    return seen


def _sample_into(into: collections.Counter, url: str, stop: threading.Event) -> None:
    into.update(sample_waits(url, stop))


def main(args: argparse.Namespace) -> None:
    from _users import bearer_for

    from serving.db.session import dispose_engine, iter_session
    from serving.security import Principal
    from serving.services.querylog import LogKeys, use_keys
    from serving.services.querylog_check import check_chain

    print(machine_facts() + f"  database={'PostgreSQL' if args.postgres else 'SQLite'}", flush=True)
    codes_by_label = dict(c.split("=", 1) for c in args.code)
    tmp, url, _built, _log, settings = prepare(args.subjects, args)
    if args.build_only:
        return
    dispose_engine(url)
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    write_scheduler_data(tmp / "data")
    env = service_env(url, tmp / "data", settings)
    codes = list(_codes(args.subjects))
    paths = [f"/api/v1/subjects/{c}/grade?purpose=benchmark" for c in codes[:: max(1, len(codes) // 5000)]]
    results: dict[str, list[dict]] = {label: [] for label in codes_by_label}
    for rnd in range(args.rounds):
        for label, root in codes_by_label.items():
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_server(Path(root).resolve(), port, env, tmp / f"server-{label}.log")
            stop, waits = threading.Event(), collections.Counter()
            sampler = None
            try:
                wait_healthy(base, server)
                if args.postgres:
                    sampler = threading.Thread(target=_sample_into, args=(waits, url, stop),
                                               daemon=True)
                    sampler.start()
                read = measured_phase({"base": base, "headers": headers, "rate": args.rate,
                                       "duration": args.duration, "warmup": 3, "paths": paths},
                                      tmp, f"grade-{label}", server.pid)
                drain(base)
            finally:
                stop.set()
                if sampler is not None:
                    sampler.join(10)
                stop_uvicorn(server)
            results[label].append(read)
            print(f"round {rnd + 1} {label:8}: p50 {read['p50']:7.1f} ms  p99 {read['p99']:8.1f} ms  "
                  f"max {read['max']:8.1f} ms  errors {read['errors']}  cpu {read['cpu_ms']:.2f} ms/req", flush=True)
            if waits:
                samples = waits.pop("samples")
                for what, n in waits.most_common(6):
                    print(f"    {n / samples:6.2f} backends on average  {what}")
    print(f"\n{'code':8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  (median over {args.rounds} rounds; p99 of each)")
    for label, reads in results.items():
        print(f"{label:8} {statistics.median(r['p50'] for r in reads):8.1f} "
              f"{statistics.median(r['p99'] for r in reads):8.1f} {sum(sum(r['errors'].values()) for r in reads):7d}  "
              f"p99s {[round(r['p99'], 1) for r in reads]}")
    use_keys(url, LogKeys.of(settings))
    session = next(iter_session(url))
    chain = check_chain(session)
    session.close()
    print(f"log: {chain.entries:,} entries, chain ok: {chain.ok}")
    print(f"loadavg after: {os.getloadavg()}  ({time.strftime('%H:%M:%S')})")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subjects", type=int, default=20_000)
    p.add_argument("--as-of", type=int, default=3)
    p.add_argument("--log-entries", type=int, default=20_000)
    p.add_argument("--day-entries", type=int, default=2_000)
    p.add_argument("--checkpoint-every", type=int, default=5000)
    p.add_argument("--history-group", type=int, default=50)
    p.add_argument("--batch-rows", type=int, default=50_000)
    p.add_argument("--distinct-reasons", action="store_true")
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--db-dir", required=True, help="keeps the city (SQLite's file, or PostgreSQL's build marks)")
    p.add_argument("--reuse", action="store_true", help="keep a city built in --db-dir before")
    p.add_argument("--postgres", default=None, help="a throw-away PostgreSQL database URL (emptied first)")
    p.add_argument("--build-only", action="store_true", help="build the city in --db-dir and stop")
    p.add_argument("--code", action="append", default=[], help="LABEL=DIR: a checkout to serve (repeatable)")
    ns = p.parse_args()
    ns.skip_log = False
    return ns


if __name__ == "__main__":
    main(parse())
