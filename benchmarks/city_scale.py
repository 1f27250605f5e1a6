"""The service at city scale (issue 22): every figure at ``--subjects`` N and at 2,000 subjects in
the same run, with their ratio (a figure that holds at any size has a ratio near 1).

Per size, on a fresh database (SQLite in a temporary directory, or PostgreSQL with
``--postgres URL``, a throw-away database: its tables are dropped first):

1. bulk load (``serving.services.bulk``): N subjects, then ``--as-of`` monthly grade files of N
   rows each (5 reasons per grade), rows/s of the grades;
2. query log: ``--log-entries`` keyed entries, a signed checkpoint, then ``--day-entries`` more
   (a day's reads); the incremental check (from the checkpoint) and the full check, seconds;
3. a real uvicorn (2 workers) on it: the single logged grade read at ``--rate`` req/s for
   ``--duration`` s (open loop, latency from the scheduled time: ``benchmarks/api.py``), the
   batch read (1,000 subjects per request), and list pages (first, deep by cursor, filtered by
   district and grade, search by name prefix), median and worst of ``--page-repeats``.

Usage: flock /tmp/bench.lock timeout 1800 .venv/bin/python benchmarks/city_scale.py --subjects 200000
       [--as-of 3] [--log-entries 200000] [--day-entries 20000] [--rate 200] [--duration 20]
       [--postgres postgresql+psycopg://tiers@/tiers_bench?host=/tmp&port=55432] [--bulk-only]
       [--distinct-reasons]
Targets (issue 22, at 2 M × 12 as-of): read p99 ≤ 15 ms at 500 req/s, batch ≥ 10,000 subjects/s,
every list page ≤ 100 ms, bulk ≥ 50,000 grades/s, incremental check of a day ≤ 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# the open-loop generator and uvicorn handling of the API benchmark
from api import (
    PURPOSE,
    batch_throughput,
    drain,
    free_port,
    machine_facts,
    measured_phase,
    service_env,
    start_uvicorn,
    stop_uvicorn,
    wait_healthy,
)

DISTRICTS = ["320102", "320104", "320105", "320106", "320111", "320113", "320114", "320115", "320116", "320117",
             "320118"]
SECTIONS = list("ACEFGHIKLMS")


def _codes(n: int):
    import numpy as np

    from simulation.codes import make_uscc

    return make_uscc(np.array(["91"] * n), np.full(n, 320100), np.arange(n)).astype(str)


def build(url: str, n: int, as_of_count: int, batch_rows: int, distinct_reasons: bool = False) -> dict:
    """Subjects and grades through the bulk path; returns the codes and the load figures. The
    grades share one reasons text, or (``distinct_reasons``) each has its own, as real ones do."""
    import numpy as np
    import pandas as pd

    from serving.db.migrate import upgrade
    from serving.db.session import engine_for
    from serving.services.bulk import load_grades, load_subjects

    upgrade(url)
    engine = engine_for(url)
    rng = np.random.default_rng(22)
    codes = _codes(n)
    subjects = pd.DataFrame({"uscc": codes, "name": [f"南京{SECTIONS[i % 11]}企业{i:07d}" for i in range(n)],
                             "industry": rng.choice(SECTIONS, n), "district_code": rng.choice(DISTRICTS, n),
                             "district_name": "区", "registered_on": "2015-01-01"})
    t = time.perf_counter()
    load_subjects(engine, (subjects.iloc[i:i + batch_rows] for i in range(0, n, batch_rows)), load_id="subjects")
    subjects_s = time.perf_counter() - t
    reasons = json.dumps([{"code": f"reason_{k}", "label_zh": f"原因{k}", "label_en": f"reason {k}",
                           "contribution": -4.0 * k, "value": k, "record_ids": [f"R{k}"]} for k in range(5)],
                         ensure_ascii=False)
    if distinct_reasons:  # each grade's own records and contributions
        reasons = [json.dumps([{"code": f"reason_{k}", "label_zh": f"原因{k}", "label_en": f"reason {k}",
                                "contribution": -4.0 * k - (i % 1000) / 100, "value": k,
                                "record_ids": [f"R{i}-{k}"]} for k in range(5)], ensure_ascii=False) for i in range(n)]
    grade_rows, grade_s = 0, 0.0
    for month in range(as_of_count):
        as_of = (dt.date(2026, 1, 1) + pd.DateOffset(months=month + 1) - dt.timedelta(days=1)).date()
        scores = rng.normal(650, 60, n).round(1)
        grades = pd.DataFrame({"uscc": codes, "as_of": as_of, "score": scores,
                               "grade": np.select([scores < 560, scores < 620, scores < 700], ["D", "C", "B"], "A"),
                               "probability": rng.random(n).round(4), "model_version": "city-bench",
                               "profile_hash": "p2" + "0" * 62, "base_score": 620.0, "reasons": reasons,
                               "what_if": "[]"})
        t = time.perf_counter()
        report = load_grades(engine, (grades.iloc[i:i + batch_rows] for i in range(0, n, batch_rows)),
                             load_id=f"grades-{as_of}")
        grade_s += time.perf_counter() - t
        grade_rows += report.stored
        print(f"  [{n:,}] grades as of {as_of}: {report.stored / (time.perf_counter() - t):,.0f} rows/s", flush=True)
    engine.dispose()
    return {"codes": list(codes), "subjects_per_s": n / subjects_s, "grades_per_s": grade_rows / grade_s,
            "grade_rows": grade_rows}


def fill_log(url: str, settings, codes: list[str], entries: int, day_entries: int) -> dict:
    """``entries`` logged reads, a checkpoint, ``day_entries`` more; then both checks, timed."""
    from serving.db.session import iter_session
    from serving.security import Principal
    from serving.services.querylog import LogKeys, anchor_now, append_entries, use_keys
    from serving.services.querylog_check import check_chain

    use_keys(url, LogKeys.of(settings))
    reader = Principal(username="bench_regulator", role="regulator", department="samr")
    session = next(iter_session(url))

    def append(count: int) -> None:
        for start in range(0, count, 1000):
            reads = [(codes[(start + i) % len(codes)], "allowed") for i in range(min(1000, count - start))]
            append_entries(session, principal=reader, reads=reads, purpose=PURPOSE, endpoint="bench", commit=False)
            session.commit()

    append(entries)
    anchor_now(session)
    append(day_entries)
    t = time.perf_counter()
    incremental = check_chain(session, incremental=True)
    incremental_s = time.perf_counter() - t
    t = time.perf_counter()
    full = check_chain(session)
    full_s = time.perf_counter() - t
    session.close()
    assert incremental.ok and full.ok, (incremental.problem, full.problem)
    return {"incremental_s": incremental_s, "incremental_entries": incremental.entries, "full_s": full_s,
            "full_entries": full.entries}


def list_pages(base: str, headers: dict, url: str, repeats: int) -> dict:
    """Latency (ms, median and worst) of list pages through the API."""
    import httpx

    from serving.db.session import iter_session
    from serving.security import Principal
    from serving.services.subject_lists import ListFilter, subject_page

    session = next(iter_session(url))
    admin = Principal(username="bench", role="admin")
    # a deep page: the cursor the list gives after ~90 % of the population (walked in the
    # database, once: through the API this would log every subject on the way)
    page = subject_page(session, admin, ListFilter(grade="A"), limit=1)
    total_a = page.total
    from sqlalchemy import select

    from serving.db.models import CurrentGrade
    row = session.execute(select(CurrentGrade.score, CurrentGrade.uscc).where(CurrentGrade.grade == "A")
                          .order_by(CurrentGrade.score, CurrentGrade.uscc).offset(int(total_a * 0.9)).limit(1)).first()
    from serving.services.subject_lists import _encode
    deep_cursor = _encode(["g", "A", row.score, row.uscc, 0])
    session.close()
    wanted = {
        "first": {},
        "deep (cursor, 90 % through)": {"after": deep_cursor},
        "district + grade": {"district": DISTRICTS[3], "grade": "C"},
        "industry": {"industry": "F"},
        "search name prefix": {"search": "南京F企业00"},
        "search USCC prefix": {"search": "9132010000"},
    }
    out: dict[str, dict] = {}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for name, params in wanted.items():
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                r = http.get("/api/v1/regulator/subjects", params={"purpose": PURPOSE, "limit": 50, **params})
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text[:300]
            out[name] = {"median_ms": statistics.median(times), "max_ms": max(times), "items": len(r.json()["items"])}
    return out


def measure(size: int, args: argparse.Namespace) -> dict:
    import httpx
    from _users import bearer_for

    from serving.db.session import dispose_engine
    from serving.keys import with_keys
    from serving.security import Principal
    from serving.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix=f"tiers-city-{size}-"))
    url = args.postgres or f"sqlite:///{tmp / 'city.db'}"
    if args.postgres:
        _drop_all(url)
    t = time.perf_counter()
    built = build(url, size, args.as_of, args.batch_rows)
    print(f"[{size:,}] built in {time.perf_counter() - t:.0f} s: grades {built['grades_per_s']:,.0f} rows/s "
          f"({built['grade_rows']:,} rows), subjects {built['subjects_per_s']:,.0f} rows/s", flush=True)
    settings = with_keys(Settings(database_url=url, keys_dir=tmp / "keys", data_dir=tmp))
    log = fill_log(url, settings, built["codes"], args.log_entries if size > 2000 else min(args.log_entries, 20_000),
                   args.day_entries)
    print(f"[{size:,}] log: incremental {log['incremental_s']:.2f} s ({log['incremental_entries']:,} entries), "
          f"full {log['full_s']:.2f} s ({log['full_entries']:,} entries)", flush=True)
    dispose_engine(url)
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    env = service_env(url, tmp, settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_uvicorn("serving.app:create_app", port, 2, env, tmp / "server.log")
    try:
        wait_healthy(base, server)
        for _ in range(20):
            httpx.get(f"{base}/api/v1/auth/me", headers=headers)
        codes = built["codes"]
        step = max(1, len(codes) // 5000)
        paths = [f"/api/v1/subjects/{c}/grade?purpose=benchmark" for c in codes[::step]]
        read = measured_phase({"base": base, "headers": headers, "rate": args.rate, "duration": args.duration,
                               "warmup": 3, "paths": paths}, tmp, "grade", server.pid)
        print(f"[{size:,}] single logged read at {args.rate} req/s: p50 {read['p50']:.1f} ms, p99 {read['p99']:.1f} ms, "
              f"errors {read['errors']}", flush=True)
        drain(base)
        sample = [codes[i] for i in range(0, len(codes), max(1, len(codes) // 1000))][:1000]
        batch = batch_throughput(base, headers, sample, 3, 1)
        print(f"[{size:,}] batch: {batch:,.0f} subjects/s", flush=True)
        pages = list_pages(base, headers, url, args.page_repeats)
        for name, page in pages.items():
            print(f"[{size:,}] list page {name}: median {page['median_ms']:.1f} ms, worst {page['max_ms']:.1f} ms "
                  f"({page['items']} items)", flush=True)
    finally:
        stop_uvicorn(server)
    return {"size": size, **{k: v for k, v in built.items() if k != "codes"}, **log, "read_p99_ms": read["p99"],
            "read_p50_ms": read["p50"], "read_errors": read["errors"], "batch_per_s": batch,
            **{f"page {k} ms": v["median_ms"] for k, v in pages.items()},
            **{f"page {k} worst ms": v["max_ms"] for k, v in pages.items()}}


def _drop_all(url: str) -> None:
    from sqlalchemy import text

    from serving.db.session import dispose_engine, engine_for

    with engine_for(url).begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    dispose_engine(url)


def bulk_only(size: int, args: argparse.Namespace) -> dict:
    """Step 1 alone (the bulk loads), on a fresh database."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tiers-bulk-{size}-"))
    url = args.postgres or f"sqlite:///{tmp / 'city.db'}"
    if args.postgres:
        _drop_all(url)
    built = build(url, size, args.as_of, args.batch_rows, args.distinct_reasons)
    print(f"[{size:,}] grades {built['grades_per_s']:,.0f} rows/s ({built['grade_rows']:,} rows), "
          f"subjects {built['subjects_per_s']:,.0f} rows/s", flush=True)
    return {k: v for k, v in built.items() if k != "codes"}


def main(args: argparse.Namespace) -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(machine_facts() + f"  database={'PostgreSQL' if args.postgres else 'SQLite'}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    run = bulk_only if args.bulk_only else measure
    baseline = run(2000, args)
    city = run(args.subjects, args)
    print(f"\n{'figure':38} {'2,000':>12} {f'{args.subjects:,}':>12} {'ratio':>7}")
    for key, value in city.items():
        if key == "size" or not isinstance(value, int | float):
            continue
        base = baseline[key]
        ratio = value / base if base else float("nan")
        print(f"{key:38} {base:12,.2f} {value:12,.2f} {ratio:7.2f}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subjects", type=int, default=200_000)
    p.add_argument("--as-of", type=int, default=3, help="monthly as-of dates (grade rows = subjects × as-of)")
    p.add_argument("--log-entries", type=int, default=200_000)
    p.add_argument("--day-entries", type=int, default=20_000, help="entries after the checkpoint (a day's reads)")
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--page-repeats", type=int, default=15)
    p.add_argument("--batch-rows", type=int, default=50_000)
    p.add_argument("--bulk-only", action="store_true", help="only step 1, the bulk loads (subjects, grades)")
    p.add_argument("--distinct-reasons", action="store_true", help="each grade its own reasons text (as real ones)")
    p.add_argument("--postgres", default=None, help="a throw-away PostgreSQL database URL (emptied first)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse())
