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

   Then a plan for the whole city through ``POST /plans`` (one task, every subject in the pool).

The log is written straight into the database (the service's chaining on the driver's cursor,
not through HTTP), a signed checkpoint every ``--checkpoint-every`` entries; the day's entries
follow a checkpoint copied aside (a second party's copy), from which the incremental check runs.

A big database is built once and kept: ``--db-dir DIR`` keeps each size in ``DIR/<size>``,
``--build-only`` stops after building it (subjects, grades, log; ``--skip-log``: not the log),
``--reuse`` keeps the steps done there (their figures are those of the run that did them).

Usage: flock /tmp/bench.lock timeout 1800 .venv/bin/python benchmarks/city_scale.py --subjects 200000
       [--as-of 3] [--log-entries 200000] [--day-entries 20000] [--rate 200] [--duration 20]
       [--postgres postgresql+psycopg://tiers@/tiers_bench?host=/tmp&port=55432] [--bulk-only]
       [--distinct-reasons] [--db-dir DIR [--reuse] [--build-only [--skip-log]]] [--no-full-check]
City scale (2 M × 12, 50 M log entries, a day of 137 k): build once outside the lock, then measure:
       PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/city_scale.py --subjects 2000000 --as-of 12 \
           --db-dir /tmp/scale-sqlite --reuse --build-only --log-entries 50000000 --day-entries 137000
       PYTHONPATH=. flock /tmp/bench.lock timeout 3000 .venv/bin/python benchmarks/city_scale.py \
           --subjects 2000000 --as-of 12 --db-dir /tmp/scale-sqlite --reuse --log-entries 50000000 \
           --day-entries 137000 --rate 500 --duration 30 --no-full-check
(with ``--postgres URL`` and ``--db-dir``, the 2,000-subject database is URL's database + ``_2000``)
Targets (issue 22, at 2 M × 12 as-of): read p99 ≤ 15 ms at 500 req/s, batch ≥ 10,000 subjects/s,
every list page ≤ 100 ms, bulk ≥ 50,000 grades/s, incremental check of a day ≤ 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _grade_frames import bench_reasons, grade_load_options, month_grades

# the open-loop generator and uvicorn handling of the API benchmark
from api import (
    PURPOSE,
    batch_throughput,
    drain,
    free_port,
    machine_facts,
    measured_phase,
    service_env,
    service_settings,
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


def build(url: str, n: int, as_of_count: int, batch_rows: int, distinct_reasons: bool = False,
          stop_file: str | None = None) -> dict:
    """Subjects and grades through the bulk path; returns the codes and the load figures. The
    grades share one reasons text, or (``distinct_reasons``) each has its own, as real ones do.
    With ``stop_file``: no further month is begun once that file exists (a build that cannot
    finish in time stops between months; ``as_of`` in the figures says how many were loaded)."""
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
    reasons = [bench_reasons(i) for i in range(n)] if distinct_reasons else bench_reasons()
    grade_rows, grade_s, months = 0, 0.0, 0
    for month in range(as_of_count):
        if month and stop_file and Path(stop_file).exists():
            print(f"  [{n:,}] {stop_file} exists: stopped after {month} months", flush=True)
            break
        months += 1
        as_of, grades = month_grades(codes, month, reasons, rng)
        t = time.perf_counter()
        report = load_grades(engine, (grades.iloc[i:i + batch_rows] for i in range(0, n, batch_rows)),
                             load_id=f"grades-{as_of}")
        grade_s += time.perf_counter() - t
        grade_rows += report.stored
        print(f"  [{n:,}] grades as of {as_of}: {report.stored / (time.perf_counter() - t):,.0f} rows/s", flush=True)
    engine.dispose()
    return {"codes": list(codes), "subjects_per_s": n / subjects_s, "grades_per_s": grade_rows / grade_s,
            "grade_rows": grade_rows, "as_of": months}


def fill_log(url: str, settings, codes: list[str], entries: int, day_entries: int, checkpoint_every: int,
             history_group: int = 1) -> dict:
    """``entries`` keyed entries written straight into the log (the service's own chaining,
    ``querylog._chain_on_cursor``, in chunks on the driver's cursor: not through HTTP), a signed
    checkpoint every ``checkpoint_every`` entries (the service's interval at 500 reads/s), one at
    the head; then ``day_entries`` more without a checkpoint (a day's reads, which the daily
    incremental check walks). Each of the day's entries has its own time (single reads); the
    history's entries share one time by runs of ``history_group`` (batch reads: the chaining
    serialises a run's shared fields once, so a long history fills faster; the incremental check
    never walks it). The log's two secondary indexes are dropped during the fill and made again
    after it."""
    from sqlalchemy import text

    from serving.db.session import dispose_engine, engine_for
    from serving.services.checkpoints import append_checkpoint, sign_checkpoint
    from serving.services.querylog import LoggedRead, LogKeys, _chain_on_cursor, _driver_statements, use_keys

    keys = LogKeys.of(settings)
    use_keys(url, keys)
    engine = engine_for(url)
    sql = _driver_statements(engine.dialect)
    now = dt.datetime.now(dt.UTC)
    start, step = now - dt.timedelta(days=365), dt.timedelta(days=364) / max(entries, 1)
    day_start, day_step = now - dt.timedelta(days=1), dt.timedelta(hours=20) / max(day_entries, 1)
    keys.checkpoints.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            conn.exec_driver_sql("PRAGMA cache_size=-1000000")
        for name in ("ix_query_log_actor", "ix_query_log_uscc"):
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        conn.commit()
        raw = conn.connection.dbapi_connection
        signed: list[str] = []

        def write(count: int, first_at: dt.datetime, gap: dt.timedelta, anchor_every: int | None,
                  group: int = 1) -> None:
            chunk = min(anchor_every or 50_000, 50_000)
            done = 0
            while done < count:
                n = min(chunk, count - done)
                batch = [LoggedRead(first_at + gap * ((done + i) // group * group), "bench_regulator", "regulator", "person",
                                    codes[(done + i) % len(codes)], PURPOSE, "/api/v1/subjects/{uscc}/grade",
                                    "allowed", False) for i in range(n)]
                cursor = raw.cursor()
                seq, last_hash, keyed_from = _chain_on_cursor(cursor, sql, batch, keys.mac_key)
                cursor.close()
                raw.commit()
                done += n
                if anchor_every and done % anchor_every == 0:
                    checkpoint = sign_checkpoint(keys.signing_key, seq, last_hash, keyed_from, at=batch[-1].at)
                    if not signed:  # records the keyed chain's start beside the file, as the service does
                        append_checkpoint(keys.checkpoints, checkpoint)
                    signed.append(checkpoint.line())
                if done % 1_000_000 < n:
                    print(f"    log: {done:,} entries, {done / (time.perf_counter() - t0):,.0f}/s", flush=True)

        write(entries, start, step, checkpoint_every, history_group)
        with keys.checkpoints.open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in signed[1:])
        fill_s = time.perf_counter() - t0
        conn.execute(text("CREATE INDEX ix_query_log_actor ON query_log (actor)"))
        conn.execute(text("CREATE INDEX ix_query_log_uscc ON query_log (uscc)"))
        conn.commit()
        index_s = time.perf_counter() - t0 - fill_s
    session_url = url
    from serving.db.session import iter_session
    from serving.services.querylog import anchor_now

    session = next(iter_session(session_url))
    anchor_now(session)  # the head before the day (if the fill did not end on a checkpoint)
    session.close()
    # the copy a second party keeps at the start of the day: the day's check starts at its last
    # checkpoint even after the service (an earlier run on this database) signed later ones
    shutil.copyfile(keys.checkpoints, day_start_checkpoints(keys.checkpoints))
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        write(day_entries, day_start, day_step, None)
    dispose_engine(url)
    print(f"    log: {entries + day_entries:,} entries in {fill_s:.0f} s + indexes {index_s:.0f} s, "
          f"{len(signed):,} checkpoints", flush=True)
    return {"entries": entries, "day_entries": day_entries, "log_fill_per_s": entries / max(fill_s, 1e-9),
            "checkpoints": len(signed) + 1}


def day_start_checkpoints(checkpoints: Path) -> Path:
    return checkpoints.with_name("checkpoints-day-start.jsonl")


def check_log_now(url: str, settings, log: dict, full: bool = True) -> dict:
    """The incremental check (from the latest checkpoint: the day's entries) and, with ``full``,
    the full check, timed."""
    from serving.db.session import iter_session
    from serving.services.querylog import LogKeys, use_keys
    from serving.services.querylog_check import check_chain

    use_keys(url, LogKeys.of(settings))
    session = next(iter_session(url))
    t = time.perf_counter()
    copy = day_start_checkpoints(settings.checkpoint_path)
    incremental = check_chain(session, incremental=True, checkpoint_file=copy)
    incremental_s = time.perf_counter() - t
    session.rollback()
    assert incremental.ok, incremental.problem
    out = {"log_entries": log["entries"] + log["day_entries"], "incremental_s": incremental_s,
           "incremental_entries": incremental.entries}
    if full:
        t = time.perf_counter()
        whole = check_chain(session, checkpoint_file=copy)
        out["full_s"] = time.perf_counter() - t
        out["full_entries"] = whole.entries
        assert whole.ok, whole.problem
    session.close()
    return out


def list_pages(base: str, headers: dict, url: str, repeats: int) -> dict:
    """Latency (ms, median and worst) of list pages through the API."""
    import httpx

    from serving.db.session import iter_session

    session = next(iter_session(url))
    cursors = list_cursors(session)
    session.close()
    wanted = {
        "first": {},
        "deep (cursor, 90 % through)": {"after": cursors["deep"]},
        "last (cursor, 10 rows before the end)": {"after": cursors["last"]},
        "district + grade": {"district": DISTRICTS[3], "grade": "C"},
        "industry": {"industry": "F"},
        "search name prefix": {"search": "南京F企业00"},
        "search USCC prefix": {"search": "9132010000"},
        # searches of other densities (at 2 M: 9 %, 4.5 %, 909 and 91 matches; USCC 0.1 %), and a deep page
        "search name prefix 南京F": {"search": "南京F"},
        "search name prefix 南京F企业0": {"search": "南京F企业0"},
        "search name prefix 南京F企业000": {"search": "南京F企业000"},
        "search name prefix 南京F企业0000": {"search": "南京F企业0000"},
        "search USCC prefix 91320100123": {"search": "91320100123"},
        "search name prefix, page 11": {"search": "南京F企业00", "after": cursors["search_deep"]},
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


def list_cursors(session) -> dict[str, str]:
    """Cursors into grade A's part of the riskiest-first list: ``deep``, after ~90 % of it (found in
    the database, once: through the API this would log every subject on the way), and ``last``, ten
    rows before its end (the least risky A), where the list turns to the subjects without a grade.
    Made under the list's current generation (``list_counts.generation``), as the list's own
    cursors are: under another one the list answers "changed" with no rows."""
    from sqlalchemy import select

    from serving.db.tables import CurrentGrade
    from serving.security import Principal
    from serving.services.list_counts import generation
    from serving.services.subject_lists import ListFilter, _encode, subject_page

    now = generation(session)
    total_a = subject_page(session, Principal(username="bench", role="admin"), ListFilter(grade="A"), limit=1).total
    deep = session.execute(select(CurrentGrade.score, CurrentGrade.uscc).where(CurrentGrade.grade == "A")
                           .order_by(CurrentGrade.score, CurrentGrade.uscc).offset(int(total_a * 0.9)).limit(1)).first()
    end = session.execute(select(CurrentGrade.score, CurrentGrade.uscc).where(CurrentGrade.grade == "A")
                          .order_by(CurrentGrade.score.desc(), CurrentGrade.uscc.desc()).offset(10).limit(1)).first()
    # the 11th page of a search riskiest first by its own cursors (at 2,000 subjects: its last, the 4th)
    search, after = ListFilter(search="南京F企业00"), None
    page = subject_page(session, Principal(username="bench", role="admin"), search, limit=50)
    for _ in range(10):
        if page.next is None:
            break
        after = page.next
        page = subject_page(session, Principal(username="bench", role="admin"), search, after=after, limit=50)
    return {"deep": _encode(["g", "A", deep.score, deep.uscc, now]), "last": _encode(["g", "A", end.score, end.uscc, now]),
            "search_deep": after}


def _place(size: int, args: argparse.Namespace, prefix: str) -> tuple[Path, str]:
    """Where one size's database lives: ``--db-dir``/``<size>`` (kept, reusable with ``--reuse``)
    or a fresh temporary directory; its URL (``--postgres``: one database per size, by name)."""
    if args.db_dir:
        tmp = Path(args.db_dir) / str(size)
        tmp.mkdir(parents=True, exist_ok=True)
    else:
        tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-{size}-"))
    if args.postgres:
        return tmp, args.postgres if size != 2000 or not args.db_dir else _pg_database(args.postgres, "_2000")
    return tmp, f"sqlite:///{tmp / 'city.db'}"


def _pg_database(url: str, suffix: str) -> str:
    from sqlalchemy.engine import make_url

    made = make_url(url)
    return made.set(database=f"{made.database}{suffix}").render_as_string(hide_password=False)


def _done(tmp: Path, step: str, url: str) -> dict | None:
    """The figures of ``step`` done in ``tmp`` for the database at ``url``; None if not done, or
    done for another database (``--postgres`` keeps the data in the server, not in ``tmp``: a
    directory reused with another database's URL would otherwise skip the build of an empty one)."""
    marker = tmp / f"{step}.done.json"
    if not marker.exists():
        return None
    figures = json.loads(marker.read_text())
    return figures if figures.pop("database", url) == url else None


def _mark(tmp: Path, step: str, figures: dict, url: str) -> None:
    (tmp / f"{step}.done.json").write_text(json.dumps({**figures, "database": url}))


def prepare(size: int, args: argparse.Namespace) -> tuple[Path, str, dict, dict | None, object]:
    """The database of one size: built (bulk path) and its log filled, or, with ``--reuse``, the
    steps already done in ``--db-dir`` kept (their figures are those of the run that did them).
    Returns (directory, url, build figures, log figures, the ``service_settings`` on it)."""
    tmp, url = _place(size, args, "tiers-city")
    built = _done(tmp, "build", url) if args.reuse else None
    if built is None:
        if args.postgres:
            _drop_all(url)
        t = time.perf_counter()
        built = build(url, size, args.as_of, args.batch_rows, args.distinct_reasons, args.stop_file)
        built.pop("codes")
        built["build_s"] = time.perf_counter() - t
        _mark(tmp, "build", built, url)
        (tmp / "log.done.json").unlink(missing_ok=True)
    print(f"[{size:,}] built in {built['build_s']:.0f} s: grades {built['grades_per_s']:,.0f} rows/s "
          f"({built['grade_rows']:,} rows), subjects {built['subjects_per_s']:,.0f} rows/s", flush=True)
    settings = service_settings(tmp, url)
    if args.skip_log:
        return tmp, url, built, None, settings
    entries = args.log_entries if size > 2000 else min(args.log_entries, 20_000)
    log = _done(tmp, "log", url) if args.reuse else None
    if log is None or log.get("entries") != entries:
        log = fill_log(url, settings, list(_codes(size)), entries, args.day_entries, args.checkpoint_every,
                       args.history_group)
        _mark(tmp, "log", log, url)
    return tmp, url, built, log, settings


def write_scheduler_data(data_dir: Path, inspectors: int = 2000) -> None:
    """The scheduler's tables a plan needs: one SAMR item, ``inspectors`` inspectors spread over
    the districts (capacity 100 each)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "items.csv").write_text("item_code,department,name_zh,name_en,key_item,industries\n"
                                        "SAMR-03,samr,企业信息公示情况检查,Annual-report publicity,false,\n",
                                        encoding="utf-8")
    (data_dir / "inspectors.csv").write_text(
        "inspector_id,name,department,district_code,qualified_items,capacity\n"
        + "".join(f"INS{n:06d},检查员{n},samr,{DISTRICTS[n % len(DISTRICTS)]},SAMR-03,100\n" for n in range(inspectors)),
        encoding="utf-8")


def create_plan(base: str, headers: dict, as_of: dt.date, name: str) -> dict:
    """``POST /plans`` for the whole city as one pool (every subject the department covers), timed."""
    import httpx

    start = max(as_of + dt.timedelta(days=1), dt.date.today())  # a period not over when the plan is made
    body = {"plan_id": name, "period_start": str(start), "period_end": str(start + dt.timedelta(days=89)),
            "as_of": str(as_of), "tasks": [{"department": "samr", "item": "SAMR-03"}]}
    t = time.perf_counter()
    r = httpx.post(f"{base}/api/v1/plans", json=body, headers=headers, timeout=1800)
    seconds = time.perf_counter() - t
    assert r.status_code == 201, r.text[:500]
    return {"plan_s": seconds, "plan": r.json()}


def last_as_of(as_of_count: int) -> dt.date:
    import pandas as pd

    return (dt.date(2026, 1, 1) + pd.DateOffset(months=as_of_count) - dt.timedelta(days=1)).date()


def measure(size: int, args: argparse.Namespace) -> dict:
    import httpx
    from _users import bearer_for

    from serving.db.session import dispose_engine
    from serving.security import Principal

    tmp, url, built, log, settings = prepare(size, args)
    if args.build_only:
        return {"size": size, **built, **(log or {})}
    log = check_log_now(url, settings, log, full=not args.no_full_check)
    print(f"[{size:,}] log of {log['log_entries']:,}: incremental {log['incremental_s']:.2f} s "
          f"({log['incremental_entries']:,} entries), full {log.get('full_s', float('nan')):.2f} s", flush=True)
    dispose_engine(url)
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    write_scheduler_data(tmp / "data")
    env = service_env(url, tmp / "data", settings, TIERS_PLANS_PER_HOUR="1000")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_uvicorn("serving.app:create_app", port, 2, env, tmp / "server.log")
    try:
        wait_healthy(base, server)
        for _ in range(20):
            httpx.get(f"{base}/api/v1/auth/me", headers=headers)
        codes = list(_codes(size))
        step = max(1, len(codes) // 5000)
        paths = [f"/api/v1/subjects/{c}/grade?purpose=benchmark" for c in codes[::step]]
        read = measured_phase({"base": base, "headers": headers, "rate": args.rate, "duration": args.duration,
                               "warmup": 3, "paths": paths}, tmp, "grade", server.pid)
        print(f"[{size:,}] single logged read at {args.rate} req/s: p50 {read['p50']:.1f} ms, p99 {read['p99']:.1f} ms, "
              f"errors {read['errors']}", flush=True)
        drain(base)
        import random

        pick = random.Random(size)  # noqa: S311 - a sample of subjects, not a secret
        # each request its own 1,000 subjects drawn from the whole city (not one warm sample)
        batch = statistics.median(batch_throughput(base, headers, pick.sample(codes, 1000), 1, 1)
                                  for _ in range(args.batch_repeats))
        print(f"[{size:,}] batch: {batch:,.0f} subjects/s (median of {args.batch_repeats} requests of 1,000)",
              flush=True)
        pages = list_pages(base, headers, url, args.page_repeats)
        for name, page in pages.items():
            print(f"[{size:,}] list page {name}: median {page['median_ms']:.1f} ms, worst {page['max_ms']:.1f} ms "
                  f"({page['items']} items)", flush=True)
        plan = {"plan_s": float("nan")}
        if not args.skip_plan:
            plan = create_plan(base, headers, last_as_of(args.as_of), f"city-{size}-{int(time.time())}")
            print(f"[{size:,}] plan for the whole city: {plan['plan_s']:.1f} s ({json.dumps(plan['plan'])[:300]})",
                  flush=True)
    finally:
        stop_uvicorn(server)
    return {"size": size, **built, **log, "plan_s": plan["plan_s"], "read_p99_ms": read["p99"],
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
    grade_load_options(p, as_of=3)
    p.add_argument("--log-entries", type=int, default=200_000)
    p.add_argument("--day-entries", type=int, default=20_000, help="entries after the checkpoint (a day's reads)")
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--page-repeats", type=int, default=15)
    p.add_argument("--batch-repeats", type=int, default=5, help="batch requests (each 1,000 other subjects)")
    p.add_argument("--bulk-only", action="store_true", help="only step 1, the bulk loads (subjects, grades)")
    p.add_argument("--checkpoint-every", type=int, default=5000,
                   help="a signed checkpoint every N log entries of the fill (the service's 10 s at 500 reads/s)")
    p.add_argument("--history-group", type=int, default=50,
                   help="log history entries sharing one time (batch reads); the day's entries each their own")
    p.add_argument("--skip-plan", action="store_true",
                   help="no plan for the whole city (minutes at 2 M on PostgreSQL; not one of the targets)")
    p.add_argument("--no-full-check", action="store_true", help="skip the full walk of the log")
    p.add_argument("--db-dir", default=None, help="keep each size's database in DIR/<size> (else a temporary directory)")
    p.add_argument("--reuse", action="store_true", help="with --db-dir: keep the steps already done there")
    p.add_argument("--build-only", action="store_true", help="build (grades, log) and stop: no service, no figures")
    p.add_argument("--skip-log", action="store_true", help="do not fill the log (a build in two steps)")
    p.add_argument("--stop-file", default=None,
                   help="begin no further month of grades once this file exists (then measure with --as-of = the months loaded)")
    p.add_argument("--postgres", default=None, help="a throw-away PostgreSQL database URL (emptied first)")
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse())
