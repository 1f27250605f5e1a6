"""What a logged read waits for in the query log, flush interval 0 against W, in process.

Issue 20's joint check waits for its log entry; with ``TIERS_QUERYLOG_FLUSH_MS=0`` that is the
group commit *and* its fsync, with W > 0 the commit only (``serving.services.querylog_flush``).
Over HTTP on a loaded 2-core machine the CPU contention hides the difference; this measures the
wait alone: an open-loop schedule of single-entry appends (``append_entry_durably``, the group
writer every read uses) at ``--rate`` from a thread pool, latency from the scheduled time, on one
SQLite file, the two settings alternating per round (a fresh engine, so a fresh writer, per phase).

Usage: PYTHONPATH=. flock /tmp/bench.lock timeout 600 .venv/bin/python benchmarks/querylog_flush_ab.py
       [--rate 500] [--duration 10] [--rounds 3] [--flush-ms 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def phase(url: str, keys, flush_ms: int, rate: float, duration: float) -> dict:
    from serving.db.session import dispose_engine, engine_for
    from serving.security import Principal
    from serving.services.querylog import append_entry_durably, group_writer, use_keys

    use_keys(url, dataclasses.replace(keys, flush_interval_s=flush_ms / 1000))
    dispose_engine(url)
    engine = engine_for(url, pool_size=65, max_overflow=0)
    who = Principal(username="bench", role="regulator", department="samr")
    waits: list[float] = []
    lock = threading.Lock()

    def one(i: int, due: float) -> None:
        append_entry_durably(engine, principal=who, uscc=f"91320100MA1B{i % 9973:06d}", purpose="基准",
                             endpoint="GET /bench")
        done = time.perf_counter() - due
        with lock:
            waits.append(done)

    n = int(rate * duration)
    cpu = time.process_time()
    with ThreadPoolExecutor(64) as pool:
        start = time.perf_counter() + 0.05
        for i in range(n):
            due = start + i / rate
            if (ahead := due - time.perf_counter()) > 0:
                time.sleep(ahead)
            pool.submit(one, i, due)
    cpu = time.process_time() - cpu
    writer = group_writer(engine)
    flusher = writer._flusher
    fsyncs = flusher.fsyncs if flusher is not None else 0
    if flusher is not None:
        flusher.flush()
    waits.sort()
    q = statistics.quantiles(waits, n=1000)
    return {"p50": q[499] * 1000, "p99": q[989] * 1000, "p999": q[998] * 1000, "max": waits[-1] * 1000,
            "n": len(waits), "fsyncs": fsyncs, "cpu_ms": cpu * 1000 / len(waits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flush-ms", type=int, default=10)
    args = parser.parse_args()

    from api import keyed_database

    from serving.db.migrate import upgrade
    from serving.db.session import iter_session
    from serving.services.querylog import LogKeys
    from serving.services.querylog_check import check_chain

    tmp, url, settings = keyed_database("tiers-flushab-")
    upgrade(url)
    keys = LogKeys.of(settings)
    print(f"nproc={os.cpu_count()} load={os.getloadavg()[0]:.1f}; {args.rate:.0f} appends/s, {args.duration:.0f} s "
          f"per phase, flush 0 vs {args.flush_ms} ms, db {tmp}", flush=True)
    results: dict[int, list[dict]] = {0: [], args.flush_ms: []}
    for round_no in range(args.rounds):
        for flush_ms in ((0, args.flush_ms) if round_no % 2 == 0 else (args.flush_ms, 0)):
            r = phase(url, keys, flush_ms, args.rate, args.duration)
            r["load"] = os.getloadavg()[0]
            results[flush_ms].append(r)
            print(f"round {round_no + 1} flush {flush_ms:>3} ms: wait p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms  "
                  f"p99.9 {r['p999']:.2f} ms  max {r['max']:.1f} ms  n {r['n']}  flusher fsyncs {r['fsyncs']}  "
                  f"CPU {r['cpu_ms']:.3f} ms/append  load {r['load']:.1f}", flush=True)
    zero, w = results[0], results[args.flush_ms]
    for name, runs in results.items():
        print(f"flush {name} ms: median p50 {statistics.median(r['p50'] for r in runs):.2f} ms, "
              f"median p99 {statistics.median(r['p99'] for r in runs):.2f} ms")
    print("flush 0 / flush W per round: p99 " + ", ".join(f"{a['p99'] / b['p99']:.2f}x" for a, b in zip(zero, w, strict=True))
          + "; p50 " + ", ".join(f"{a['p50'] / b['p50']:.2f}x" for a, b in zip(zero, w, strict=True)))
    session = next(iter_session(url))
    from serving.services.querylog import use_keys

    use_keys(url, keys)
    chain = check_chain(session)
    session.close()
    print(f"query-log chain: {'ok' if chain.ok else 'BROKEN ' + str(chain.problem)}, {chain.entries} entries")


if __name__ == "__main__":
    main()
