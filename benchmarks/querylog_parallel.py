"""Query-log appends from several processes at once, without HTTP (issue 22): each process (a
uvicorn worker's stand-in) runs ``THREADS`` threads appending one entry at a time through its
group writer for ``SECONDS``; appends per second, latency p50/p99/max, and the chain checked.

The ``serving`` package on ``PYTHONPATH`` is the code measured, so two checkouts compare in one
run. The database's log is emptied first (a throw-away database: only its log tables are used).
A slow disk can be simulated on a throw-away PostgreSQL cluster with ``commit_delay`` (each WAL
flush waits that long, holding the WAL write lock, as a disk with that fsync latency would):
``ALTER SYSTEM SET commit_delay = 10000; ALTER SYSTEM SET commit_siblings = 0`` and a reload.

Usage: LABEL=after PYTHONPATH=. flock /tmp/bench.lock timeout 120 .venv/bin/python \
           benchmarks/querylog_parallel.py URL [THREADS=4] [SECONDS=5] [PROCESSES=2]
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import threading
import time
from pathlib import Path


def _keys():
    from serving.services.querylog import LogKeys

    return LogKeys("k" * 64, "1" * 64, Path("/tmp/querylog-parallel-checkpoints.jsonl"), 3600.0)


def _worker(url: str, w: int, threads: int, seconds: float, out: multiprocessing.Queue) -> None:
    from sqlalchemy import create_engine

    from serving.security import Principal
    from serving.services.querylog import append_entry_durably, use_keys

    use_keys(url, _keys())
    engine = create_engine(url, pool_size=threads + 2)
    who = Principal(username=f"w{w}", role="regulator", department="samr")
    latencies: list[float] = []
    end = time.monotonic() + seconds

    def run(k: int) -> None:
        i = 0
        while time.monotonic() < end:
            start = time.perf_counter()
            append_entry_durably(engine, principal=who, uscc=f"9132{w:02d}{k:04d}{i:08d}", purpose="bench",
                                 endpoint="GET /bench")
            latencies.append((time.perf_counter() - start) * 1000)
            i += 1

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(latencies)


def main(url: str, threads: int, seconds: float, processes: int) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from serving.db.tables import QueryLogEntry, QueryLogHead
    from serving.services.querylog import use_keys
    from serving.services.querylog_check import check_chain

    engine = create_engine(url)
    QueryLogEntry.__table__.create(engine, checkfirst=True)
    QueryLogHead.__table__.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM query_log"))
        conn.execute(text("DELETE FROM query_log_head"))
        conn.execute(text("INSERT INTO query_log_head (id, seq, last_hash, keyed_from) VALUES (1, 0, :h, 1)"),
                     {"h": "0" * 64})
    ctx = multiprocessing.get_context("spawn")  # as uvicorn's workers
    out = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(url, w, threads, seconds, out)) for w in range(processes)]
    for p in workers:
        p.start()
    latencies = [x for _ in workers for x in out.get()]
    for p in workers:
        p.join()
    q = statistics.quantiles(latencies, n=100)
    use_keys(url, _keys())
    with Session(engine) as session:
        chain = check_chain(session)
    engine.dispose()
    print(f"{os.environ.get('LABEL', '?'):8} {len(latencies) / seconds:6.0f} appends/s  p50 {q[49]:6.1f} ms  "
          f"p99 {q[98]:6.1f} ms  max {max(latencies):6.1f} ms  chain ok {chain.ok} ({chain.entries} entries)",
          flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], int(args[1]) if len(args) > 1 else 4, float(args[2]) if len(args) > 2 else 5.0,
         int(args[3]) if len(args) > 3 else 2)
