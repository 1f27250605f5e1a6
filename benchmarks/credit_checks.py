"""Joint checks (联合奖惩, issue 20 item 2) under load: a real ``uvicorn`` with 2 workers on a seeded
temporary SQLite database, driven by the open-loop generator of ``benchmarks/api.py`` (latency from
the scheduled send time, so no coordinated omission), a machine client with an API key of the
finance department checking ``government_procurement``.

Phases at the same rate and duration:

0. reference: the minimal FastAPI app of ``api.py`` (no auth, no database), same uvicorn setup;
1. baseline: ``GET /api/v1/auth/me`` with the same API key (authenticated, no database write);
2. ``GET /api/v1/credit-checks/{uscc}?matter=government_procurement`` — key, matter check, keyed
   query-log append (group commit), the subject's stored basis (one indexed read), measures.

Then batches of 10,000 codes (``POST /api/v1/credit-checks/batch``): one *cold* batch first
(every basis recomputed by the catalogue's rule inside the request), then warm ones, with 1 and
2 concurrent clients. The bases of the other subjects are computed before the warm phases by
``credit_checks.refresh_all`` (the nightly job), whose rate is printed too.

Usage: .venv/bin/python benchmarks/credit_checks.py [--duration 20] [--rate 500] [--subjects 20000]
       … --against /path/to/other/checkout [--rounds 3]: only the single-subject check, served by
       this checkout's code and the other's in turn (same database, same machine minutes), so that
       a change is judged against its baseline on a shared machine
       … --synchronous-ab [--rounds 3]: the same, this checkout served with SQLite's
       ``synchronous=FULL`` (the default) and ``NORMAL`` in turn (what the log's fsync costs;
       the log's flush interval 0 in both, so each commit runs at the setting measured)
       … --flush-ab [--flush-ms 10] [--rounds 3]: the same, this checkout served with the query
       log's flush interval 0 (every commit waits for its fsync) and ``--flush-ms`` in turn
       (``TIERS_QUERYLOG_FLUSH_MS``: a read waits for its commit, the WAL is fsynced within it)
Targets: p99 <= 5 ms for one subject at 500 req/s with 2 workers; >= 20,000 subjects/s in batches.
Run under ``flock /tmp/bench.lock timeout 600``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api

MATTER = "government_procurement"


def seed(url: str, n_subjects: int) -> list[str]:
    """``n_subjects`` subjects; every one a general penalty in its publicity period, every 10th a
    serious one, every 50th on the abnormal operation list, every 100th on the serious dishonesty
    list, every 5th a reward, every 20th an expired penalty (not counted)."""
    from sqlalchemy import insert
    from stdnum.cn import uscc as stdnum_uscc

    from serving.db.migrate import upgrade
    from serving.db.session import dispose_engine, iter_session
    from serving.db.tables import Record, Subject

    upgrade(url)
    codes = [(b := f"913201{i:011d}") + stdnum_uscc.calc_check_digit(b) for i in range(n_subjects)]
    now = dt.datetime.now(dt.UTC)
    subjects = [{"uscc": c, "name": f"企业{i}", "industry": "CFGHI"[i % 5], "district_code": "320102",
                 "registered_on": dt.date(2015, 1, 1), "status": "active", "updated_at": now}
                for i, c in enumerate(codes)]
    records = []

    def add(i: int, c: str, suffix: str, **values: object) -> None:
        records.append({"record_id": f"R{i}-{suffix}", "uscc": c, "version": 1, "is_current": True,
                        "department": "samr", "document_no": f"宁市监〔2026〕{i}-{suffix}号", "repaired": False,
                        "revoked": False, "created_at": now, "subkind": None, "severity": None, "end_date": None,
                        "publicity_end": None, "amount": None, "description": None, "repaired_on": None,
                        "revoked_on": None, "change_reason": "seeded", **values})

    for i, c in enumerate(codes):
        add(i, c, "g", kind="admin_penalty", severity="general", decision_date=dt.date(2026, 6, 1), amount=5000.0)
        if i % 10 == 0:
            add(i, c, "s", kind="admin_penalty", severity="serious", decision_date=dt.date(2026, 3, 1), amount=2e5)
        if i % 50 == 0:
            add(i, c, "a", kind="list_abnormal_operation", decision_date=dt.date(2026, 1, 1))
        if i % 100 == 0:
            add(i, c, "d", kind="list_serious_dishonesty", decision_date=dt.date(2025, 12, 1), department="court")
        if i % 5 == 0:
            add(i, c, "w", kind="admin_reward", decision_date=dt.date(2026, 2, 1))
        if i % 20 == 0:
            add(i, c, "x", kind="admin_penalty", severity="general", decision_date=dt.date(2023, 1, 1))
    session = next(iter_session(url))
    for start in range(0, len(subjects), 5000):
        session.execute(insert(Subject), subjects[start:start + 5000])
    for start in range(0, len(records), 5000):
        session.execute(insert(Record), records[start:start + 5000])
    session.commit()
    session.close()
    dispose_engine(url)
    return codes


def machine_key(url: str, username: str = "finance-procurement", department: str = "finance") -> str:
    """An API key of a machine user of ``department`` (政府采购 is open to finance)."""
    from serving.db.session import dispose_engine, iter_session
    from serving.schemas import UserCreate
    from serving.services.users import create_api_key, create_user

    session = next(iter_session(url))
    try:
        create_user(session, UserCreate(username=username, password=secrets.token_urlsafe(18),
                                        role="regulator", department=department))
        _, key = create_api_key(session, username, "benchmark 系统")
    finally:
        session.close()
        dispose_engine(url)
    return key


def batch_rate(base: str, headers: dict, codes: list[str], repeats: int, concurrency: int,
               server_pid: int | None = None) -> list[tuple[float, float]]:
    """Per repeat: subjects per second of ``concurrency`` concurrent batches of ``len(codes)``, and
    the server's CPU µs per subject meanwhile (all its processes, from /proc; 0 without its pid):
    the rate is what this machine gave now, the CPU what a batch costs whatever else runs."""
    import asyncio

    import httpx

    body = {"matter": MATTER, "usccs": codes, "purpose": "benchmark 批量核查"}

    async def run() -> tuple[float, float]:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as http:
            async def one() -> None:
                r = await http.post("/api/v1/credit-checks/batch", json=body)
                assert r.status_code == 200 and len(r.json()["results"]) == len(codes), r.text[:300]

            cpu0 = sum(api.process_tree_cpu(server_pid)) if server_pid else 0.0
            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(concurrency)))
            elapsed = time.perf_counter() - start
            cpu = sum(api.process_tree_cpu(server_pid)) - cpu0 if server_pid else 0.0
            return concurrency * len(codes) / elapsed, cpu * 1e6 / (concurrency * len(codes))

    return [asyncio.run(run()) for _ in range(repeats)]


def main(args: argparse.Namespace) -> float:
    """The phases above; returns the server's CPU µs per subject of a warm batch (1 client)."""
    import httpx

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` must still stop the workers

    from serving.db.session import dispose_engine, iter_session
    from serving.deps import get_today
    from serving.services.credit_checks import refresh_all
    from serving.services.querylog import LogKeys, use_keys
    from serving.services.querylog_check import check_chain

    tmp, url, codes, settings = api.seeded_database("tiers-checkbench-", seed, args.subjects,
                                                    "subjects with their records")
    headers = {"X-API-Key": machine_key(url)}
    samr_key = machine_key(url, "samr-reader", "samr")
    env = api.service_env(url, tmp, settings)
    print(api.machine_facts() + f"  (before the run; uvicorn workers={args.workers}, uvloop+httptools, SQLite FULL)")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    reference = None
    if not args.batch_only:
        reference = api.reference_phase(args, tmp)
        print(api.fmt("reference: minimal app, from memory", reference), flush=True)
    port = api.free_port()
    base = f"http://127.0.0.1:{port}"
    server = api.start_uvicorn("serving.app:create_app", port, args.workers, env, tmp / "server.log")
    cold_codes, warm_codes = codes[:args.batch], codes[-args.batch:]
    try:
        api.wait_healthy(base, server)
        for _ in range(20):
            httpx.get(f"{base}/api/v1/auth/me", headers=headers)
        cold = batch_rate(base, headers, cold_codes, 1, 1)[0][0]
        print(f"cold batch (every basis recomputed in the request): {len(cold_codes):,} subjects, "
              f"{cold:,.0f} subjects/s", flush=True)
        session = next(iter_session(url))
        t = time.perf_counter()
        refreshed = refresh_all(session, get_today())
        refresh_s = time.perf_counter() - t
        session.close()
        dispose_engine(url)
        print(f"refresh_all (the nightly job, in this process): {refreshed:,} subjects in {refresh_s:.1f} s, "
              f"{refreshed / refresh_s:,.0f} subjects/s", flush=True)
        common = {"base": base, "headers": headers, "rate": args.rate, "duration": args.duration,
                  "warmup": args.warmup}
        paths = [f"/api/v1/credit-checks/{c}?matter={MATTER}" for c in warm_codes]
        baseline = checked = None
        if not args.batch_only:
            baseline = api.measured_phase({**common, "paths": ["/api/v1/auth/me"]}, tmp, "baseline", server.pid)
            print(api.fmt("baseline GET /api/v1/auth/me (API key)", baseline), flush=True)
            api.drain(base)
            checked = api.measured_phase({**common, "paths": paths}, tmp, "check", server.pid)
            print(api.fmt("GET /api/v1/credit-checks/{uscc} (logged)", checked), flush=True)
        low = {}
        if args.low_rate and not args.batch_only:  # the same two phases below saturation: their CPU per request compares on a shared machine
            # and an existing logged read (GET /api/v1/subjects/{uscc}: coverage check, the same query-log
            # append), by market supervision's key: what the log itself costs on this machine now
            samr = {"X-API-Key": samr_key}
            reads = [f"/api/v1/subjects/{c}?purpose=benchmark" for c in warm_codes]
            for name, phase_paths, phase_headers in (("baseline", ["/api/v1/auth/me"], headers),
                                                     ("logged subject read", reads, samr), ("check", paths, headers)):
                api.drain(base)
                low[name] = api.measured_phase({**common, "rate": args.low_rate, "paths": phase_paths,
                                                "headers": phase_headers}, tmp, f"low-{name}", server.pid)
                print(api.fmt(f"at {args.low_rate:.0f} req/s: {name}", low[name]), flush=True)
        api.drain(base)
        warm1 = batch_rate(base, headers, warm_codes, args.batch_repeats, 1, server.pid)
        warm2 = batch_rate(base, headers, warm_codes, args.batch_repeats, args.workers, server.pid)
        load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        api.stop_uvicorn(server)
    server_errors = (tmp / "server.log").read_text(errors="replace").count("Traceback")
    use_keys(url, LogKeys.of(settings))
    session = next(iter_session(url))
    chain = check_chain(session)
    session.close()

    if checked is not None:
        print(f"ratio check/baseline: p50 {checked['p50'] / baseline['p50']:.2f}x  p99 {checked['p99'] / baseline['p99']:.2f}x"
              f"  server CPU {checked['cpu_ms'] / baseline['cpu_ms']:.2f}x")
        print(f"ratio check/reference: p50 {checked['p50'] / reference['p50']:.2f}x  "
              f"p99 {checked['p99'] / reference['p99']:.2f}x  server CPU {checked['cpu_ms'] / reference['cpu_ms']:.2f}x")
    if low:
        print(f"at {args.low_rate:.0f} req/s, ratio check/baseline: p50 {low['check']['p50'] / low['baseline']['p50']:.2f}x"
              f"  p99 {low['check']['p99'] / low['baseline']['p99']:.2f}x  server CPU "
              f"{low['check']['cpu_ms'] / low['baseline']['cpu_ms']:.2f}x; check/logged subject read: p50 "
              f"{low['check']['p50'] / low['logged subject read']['p50']:.2f}x  p99 "
              f"{low['check']['p99'] / low['logged subject read']['p99']:.2f}x  server CPU "
              f"{low['check']['cpu_ms'] / low['logged subject read']['cpu_ms']:.2f}x")
    if checked is not None:
        single_met = checked["p99"] <= 5 and not checked["errors"] and checked["achieved_rate"] >= 0.98 * args.rate
        print(f"target p99 <= 5 ms at {args.rate:.0f} req/s, 0 errors: {'MET' if single_met else 'NOT MET'}")
    m1, m2 = statistics.median(r for r, _ in warm1), statistics.median(r for r, _ in warm2)
    c1, c2 = statistics.median(c for _, c in warm1), statistics.median(c for _, c in warm2)
    print(f"warm batch of {len(warm_codes):,} (median of {args.batch_repeats}): {m1:,.0f} subjects/s with 1 client "
          f"(runs {', '.join(f'{r:,.0f}' for r, _ in warm1)}), {m2:,.0f} subjects/s with {args.workers} concurrent "
          f"clients (runs {', '.join(f'{r:,.0f}' for r, _ in warm2)}); cold {cold:,.0f} subjects/s; "
          f"warm/cold {m1 / cold:.1f}x")
    print(f"server CPU per subject of a warm batch (all workers, HTTP included): {c1:.1f} µs with 1 client, "
          f"{c2:.1f} µs with {args.workers}: {1e6 / c1:,.0f} subjects/s per core busy with nothing else")
    print(f"target >= 20,000 subjects/s in batches: {'MET' if max(m1, m2) >= 20_000 else 'NOT MET'}")
    print(f"query-log chain: {'ok' if chain.ok else 'BROKEN ' + str(chain.problem)}, {chain.entries} entries")
    print(f"server tracebacks: {server_errors} (log: {tmp / 'server.log'})")
    print(f"loadavg after the run: {load_after}")
    return c1


def served_from(tree: Path) -> tuple[dict[str, str], Path]:
    """The environment and app directory that make uvicorn (and its spawned workers) import the
    service from ``tree``: first on the path, ahead of this checkout and the venv's editable install."""
    return {"PYTHONPATH": str(tree)}, tree


def against(args: argparse.Namespace) -> None:
    """The single-subject check at ``args.rate`` with ``args.workers`` workers, served by this
    checkout and by ``args.against`` alternately, ``args.rounds`` times each, on one seeded
    database (bases warmed first, as in ``main``); a fresh server per phase."""
    import httpx

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from serving.db.session import dispose_engine, iter_session
    from serving.deps import get_today
    from serving.services.credit_checks import refresh_all
    from serving.services.querylog import LogKeys, use_keys
    from serving.services.querylog_check import check_chain

    this_tree = Path(__file__).resolve().parents[1]
    ab_env: dict[str, dict[str, str]] = {}  # per phase name: the TIERS_* settings it is served with
    if args.synchronous_ab:  # one checkout, the two durability settings (never NORMAL by default)
        trees = {"FULL": this_tree, "NORMAL": this_tree}
        ab_env = {name: {"TIERS_SQLITE_SYNCHRONOUS": name, "TIERS_QUERYLOG_FLUSH_MS": "0"} for name in trees}
    elif args.flush_ab:  # one checkout, the log's flush interval 0 and W
        flushed = f"flush{args.flush_ms}"
        trees = {"flush0": this_tree, flushed: this_tree}
        ab_env = {"flush0": {"TIERS_QUERYLOG_FLUSH_MS": "0"}, flushed: {"TIERS_QUERYLOG_FLUSH_MS": str(args.flush_ms)}}
    else:
        trees = {"this": this_tree, "against": Path(args.against).resolve()}
    tmp, url, codes, settings = api.seeded_database("tiers-checkab-", seed, args.subjects)
    headers = {"X-API-Key": machine_key(url)}
    session = next(iter_session(url))
    refresh_all(session, get_today())
    session.close()
    dispose_engine(url)
    paths = [f"/api/v1/credit-checks/{c}?matter={MATTER}" for c in codes[-args.batch:]]
    print(f"{api.machine_facts()}; {' vs '.join(f'{k}={v}' for k, v in trees.items())}; {args.rate:.0f} req/s, "
          f"{args.workers} workers, {args.duration:.0f} s per phase (+{args.warmup:.0f} s warm-up)", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for round_no in range(args.rounds):
        order = list(trees) if round_no % 2 == 0 else list(trees)[::-1]
        for name in order:
            extra, app_dir = served_from(trees[name])
            extra = {**extra, **ab_env.get(name, {})}
            port = api.free_port()
            base = f"http://127.0.0.1:{port}"
            server = api.start_uvicorn("serving.app:create_app", port, args.workers,
                                       {**api.service_env(url, tmp, settings), **extra},
                                       tmp / f"server-{name}-{round_no}.log", app_dir=app_dir)
            try:
                api.wait_healthy(base, server)
                first = next(iter(httpx.get(f"{base}/openapi.json").json()["paths"]))
                for _ in range(20):
                    httpx.get(f"{base}{paths[0]}", headers=headers)
                r = api.measured_phase({"base": base, "headers": headers, "rate": args.rate, "duration": args.duration,
                                        "warmup": args.warmup, "paths": paths}, tmp, f"{name}-{round_no}", server.pid)
            finally:
                api.stop_uvicorn(server)
            r["load"] = os.getloadavg()[0]
            results[name].append(r)
            print(api.fmt(f"round {round_no + 1} {name}", r) + f"  load {r['load']:.1f}  (first path {first})",
                  flush=True)
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "cpu_ms")}
        errors = sum(sum(r["errors"].values()) for r in runs)
        per_round = ", ".join(f"{r['p99']:.1f}" for r in runs)
        print(f"{name}: median of {len(runs)} rounds p50 {med['p50']:.2f} ms  p99 {med['p99']:.2f} ms  "
              f"server CPU {med['cpu_ms']:.2f} ms/check  errors {errors}  (p99 per round {per_round})")
    first, second = trees
    this, other = results[first], results[second]
    print(f"{first}/{second} per round: p99 " + ", ".join(f"{a['p99'] / b['p99']:.2f}x" for a, b in zip(this, other, strict=True))
          + "; CPU " + ", ".join(f"{a['cpu_ms'] / b['cpu_ms']:.2f}x" for a, b in zip(this, other, strict=True)))
    use_keys(url, LogKeys.of(settings))
    session = next(iter_session(url))
    chain = check_chain(session)
    session.close()
    print(f"query-log chain: {'ok' if chain.ok else 'BROKEN ' + str(chain.problem)}, {chain.entries} entries")


def breakdown(args: argparse.Namespace) -> float:
    """Where a warm batch's CPU goes, in process and without HTTP: each stage of
    ``POST /credit-checks/batch`` on ``args.batch`` codes, CPU µs per subject (best of 3; the
    query log's writer thread is counted, as ``process_time`` is the process's)."""
    import json

    from serving.db.session import iter_session
    from serving.measures import load_measures
    from serving.schemas import CreditCheckBatchIn
    from serving.security import Principal
    from serving.services import credit_checks
    from serving.services.querylog import LogKeys, append_entries, use_keys

    _tmp, url, codes, settings = api.seeded_database("tiers-checkbreakdown-", seed, args.batch)
    use_keys(url, LogKeys.of(settings))
    today = dt.date.today()
    session = next(iter_session(url))
    credit_checks.refresh_all(session, today)
    catalogue, caller = load_measures(), Principal(username="bench", role="admin", kind="machine")
    body = json.dumps({"matter": MATTER, "usccs": codes, "purpose": "benchmark"})
    state: dict = {}

    stages: list[float] = []

    def stage(name: str, work) -> None:
        best = min(_cpu(work, state) for _ in range(3))
        stages.append(best * 1e6 / len(codes))
        print(f"  {name:<44} {best * 1e6 / len(codes):6.1f} µs CPU per subject", flush=True)

    print(f"CPU breakdown of a warm batch of {len(codes):,} ({api.machine_facts()}):")
    stage("validate the body (CreditCheckBatchIn)", lambda: CreditCheckBatchIn.model_validate_json(body))
    stage("query log: one entry per code, one commit", lambda: append_entries(
        session, principal=caller, reads=[(u, "allowed") for u in codes], purpose="p", endpoint="POST /x"))
    stage("stored bases (one indexed read per 500)", lambda: state.update(found=credit_checks.bases(session, codes, today)))
    stage("measures per subject", lambda: state.update(results=[
        credit_checks.check_result(catalogue, MATTER, today, state["found"][u]) for u in codes]))
    stage("JSON of the answer", lambda: json.dumps({"results": state["results"]}, ensure_ascii=False))
    session.close()
    print(f"  {'total':<44} {sum(stages):6.1f} µs CPU per subject", flush=True)
    return sum(stages)


def _cpu(work, state: dict) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    api.load_options(parser, duration=20, subjects=20_000, batch_repeats=3)
    parser.add_argument("--batch", type=int, default=10_000, help="codes per batch request")
    parser.add_argument("--low-rate", type=float, default=100,
                        help="also measure the baseline and the check at this rate (0: not)")
    parser.add_argument("--batch-only", action="store_true",
                        help="skip the single-subject phases (reference and cold batch still run)")
    parser.add_argument("--breakdown-only", action="store_true",
                        help="only the in-process CPU breakdown of a warm batch (no server)")
    parser.add_argument("--against", help="another checkout: only the single-subject check, served by this "
                                          "checkout's code and that one's in turn")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: phases per checkout")
    parser.add_argument("--synchronous-ab", action="store_true",
                        help="like --against, but this checkout with synchronous=FULL and NORMAL in turn")
    parser.add_argument("--flush-ab", action="store_true",
                        help="like --against, but this checkout with the query log's flush interval 0 and "
                             "--flush-ms in turn")
    parser.add_argument("--flush-ms", type=int, default=10, help="with --flush-ab: the interval measured against 0")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    if arguments.against or arguments.synchronous_ab or arguments.flush_ab:
        against(arguments)
    elif arguments.breakdown_only:
        breakdown(arguments)
    else:
        served = main(arguments)
        in_process = breakdown(arguments)
        print(f"ratio of a warm batch's server CPU over HTTP to its stages in process (same run): "
              f"{served / in_process:.2f}x")
