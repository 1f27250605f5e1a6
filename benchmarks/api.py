"""API under load (issue 7 acceptance): a real ``uvicorn`` with 2 workers on a seeded temporary
SQLite database, driven by an open-loop load generator in a separate process.

The generator sends requests at a constant arrival rate (request i is due at ``t0 + i / rate``)
and measures latency from the *due* time, so a stalled server cannot hide its queue
(no coordinated omission). Phases, each at the same rate and for the same duration:

0. reference: a minimal FastAPI app (no auth, no database) returning a grade and five
   contributions from memory, served by the same uvicorn setup: what this machine can do at all;
1. baseline: ``GET /api/v1/auth/me`` — JWT-authenticated, no DB write, same server;
2. ``GET /api/v1/subjects/{uscc}/grade?purpose=…`` — regulator JWT, coverage check,
   hash-chained query-log append (group commit: one SQLite transaction, and with FULL one fsync,
   per group of concurrent reads in a worker, under a cross-worker lock), grade with 5 reasons.

Each phase also reports the server's CPU time per request (all worker processes, from
/proc), which stays meaningful when other jobs share the cores. Then a closed-loop capacity
run, the batch endpoint (1,000 subjects per request) and a query-log chain check.

Usage: .venv/bin/python benchmarks/api.py [--duration 60] [--rate 500] [--workers 2] [--subjects 2000]
       [--sqlite-synchronous FULL|NORMAL]   (FULL, the default, keeps every logged read durable)
Target: p99 <= 15 ms at 500 req/s with 2 workers and 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PURPOSE = "benchmark 压力测试"


def machine_facts() -> str:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"nproc={os.cpu_count()} ram={ram:.1f} GiB loadavg(1,5,15)={load} python={sys.version.split()[0]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- load generator (child process)

async def _open_loop(base: str, paths: list[str], headers: dict[str, str], rate: float,
                     duration: float, warmup: float) -> dict:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=512, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout, headers=headers) as http:
        async def one(path: str, due: float, measured: bool) -> None:
            try:
                async with http.get(path) as response:
                    await response.read()
                    status = response.status
            except Exception as exc:  # a refused or timed-out request is an error, not a crash
                status = type(exc).__name__
            done = time.perf_counter()
            if not measured:
                return
            if status == 200:
                latencies.append(done - due)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1

        loop_start = time.perf_counter()
        total = int((warmup + duration) * rate)
        n_warm = int(warmup * rate)
        tasks = []
        for i in range(total):
            due = loop_start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == n_warm:
                measure_start = time.perf_counter()
            tasks.append(asyncio.create_task(one(paths[i % len(paths)], due, i >= n_warm)))
        sent_end = time.perf_counter()
        await asyncio.gather(*tasks)
    sent = total - n_warm
    return {"sent": sent, "ok": len(latencies), "errors": errors,
            "achieved_rate": sent / (sent_end - measure_start),
            "latencies_ms": [x * 1000 for x in latencies]}


async def _closed_loop(base: str, paths: list[str], headers: dict[str, str], concurrency: int,
                       duration: float) -> dict:
    """Capacity: ``concurrency`` clients back to back for ``duration`` seconds (not a latency figure)."""
    import aiohttp

    done = errors = 0
    stop = time.perf_counter() + duration
    async with aiohttp.ClientSession(base, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as http:
        async def client(k: int) -> None:
            nonlocal done, errors
            i = k
            while time.perf_counter() < stop:
                try:
                    async with http.get(paths[i % len(paths)]) as response:
                        await response.read()
                        ok = response.status == 200
                except Exception:  # counted, the run goes on
                    ok = False
                done, errors, i = done + ok, errors + (not ok), i + concurrency

        start = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(concurrency)))
    return {"rate": done / (time.perf_counter() - start), "errors": errors}


def loadgen_main(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.spec).read_text())
    try:
        import uvloop
        uvloop.install()
    except ImportError:  # plain asyncio works, it is only slower
        pass
    if spec.get("concurrency"):
        result = asyncio.run(_closed_loop(spec["base"], spec["paths"], spec["headers"], spec["concurrency"],
                                          spec["duration"]))
    else:
        result = asyncio.run(_open_loop(spec["base"], spec["paths"], spec["headers"], spec["rate"],
                                        spec["duration"], spec["warmup"]))
    # a file, not stdout: a minute of latencies is megabytes of JSON
    Path(spec["out"]).write_text(json.dumps(result))


def run_phase(spec: dict, tmp: Path, name: str) -> dict:
    """Run one open-loop phase in a separate process and return its summary."""
    spec_path = tmp / f"{name}.json"
    out_path = tmp / f"{name}.out.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out_path)}))
    subprocess.run([sys.executable, __file__, "_loadgen", "--spec", str(spec_path)], check=True)
    result = json.loads(out_path.read_text())
    if "latencies_ms" not in result:
        return result
    lat = sorted(result.pop("latencies_ms"))
    if lat:
        q = statistics.quantiles(lat, n=100, method="inclusive")
        result.update(p50=q[49], p90=q[89], p95=q[94], p99=q[98], max=lat[-1])
    else:
        result.update(p50=float("nan"), p90=float("nan"), p95=float("nan"), p99=float("nan"), max=float("nan"))
    return result


# ---------------------------------------------------------------- orchestration (parent process)

def seed(url: str, n_subjects: int) -> list[str]:
    """``n_subjects`` subjects, one penalty each, one grade each with 5 reasons."""
    import pandas as pd
    from stdnum.cn import uscc as stdnum_uscc

    from serving.db.migrate import upgrade
    from serving.db.session import dispose_engine, iter_session
    from serving.services.bulk import load_subjects
    from serving.services.grades import store_grades
    from serving.services.subjects import store_records

    upgrade(url)
    codes = [(b := f"913201{i:011d}") + stdnum_uscc.calc_check_digit(b) for i in range(n_subjects)]
    session = next(iter_session(url))
    load_subjects(session.get_bind(), [pd.DataFrame({"uscc": codes, "name": [f"企业{i}" for i in range(len(codes))],
                                                     "industry": "C", "district_code": "320102",
                                                     "registered_on": "2015-01-01"})], load_id="bench-subjects")
    store_records(session, [{"record_id": f"R{i}", "uscc": c, "kind": "admin_penalty", "severity": "general",
                             "decision_date": "2026-03-01", "publicity_end": "2027-03-01", "amount": 5000,
                             "department": "samr", "document_no": f"宁市监罚〔2026〕{i}号"}
                            for i, c in enumerate(codes)])
    store_grades(session, [{
        "uscc": c, "as_of": "2026-09-30", "score": 600.0, "grade": "B", "probability": 0.1,
        "model_version": "bench", "profile_hash": "0" * 64, "base_score": 620.0,
        "reasons": [{"code": f"reason_{k}", "label_zh": f"原因{k}", "label_en": f"reason {k}",
                     "contribution": -4.0 * k, "value": k, "record_ids": [f"R{i}"]} for k in range(5)],
    } for i, c in enumerate(codes)])
    session.close()
    dispose_engine(url)
    return codes


def wait_healthy(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited early with code {server.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"uvicorn did not answer /health within {timeout:.0f} s")


def drain(base: str, timeout: float = 60) -> None:
    """Wait until the server has worked off any queue left by an overloaded phase."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{base}/health", timeout=30)
        if time.perf_counter() - start < 0.05:
            return
        time.sleep(0.5)


def batch_throughput(base: str, headers: dict, codes: list[str], repeats: int, concurrency: int) -> float:
    """Subjects per second through ``POST /regulator/grades/batch`` (1,000 per request), median."""
    import httpx

    body = {"usccs": codes[:1000], "purpose": PURPOSE}

    async def run() -> float:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            async def one() -> None:
                r = await http.post("/api/v1/regulator/grades/batch", json=body)
                assert r.status_code == 200 and len(r.json()["grades"]) == len(body["usccs"]), r.text[:200]

            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(concurrency)))
            return concurrency * len(body["usccs"]) / (time.perf_counter() - start)

    return statistics.median(asyncio.run(run()) for _ in range(repeats))


def fmt(name: str, r: dict) -> str:
    errs = sum(r["errors"].values())
    cpu = f"  server CPU {r['cpu_ms']:.2f} ms/req (system {r['cpu_sys_ms']:.2f})" if "cpu_ms" in r else ""
    return (f"{name:<44} p50 {r['p50']:6.2f} ms  p90 {r['p90']:6.2f} ms  p95 {r['p95']:6.2f} ms  "
            f"p99 {r['p99']:7.2f} ms  "
            f"max {r['max']:7.1f} ms  rate {r['achieved_rate']:6.1f}/s  ok {r['ok']}  errors {errs}"
            + (f" {r['errors']}" if errs else "") + cpu)


def process_tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) of ``pid`` and its children, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            user, system = user + int(fields[11]) / tick, system + int(fields[12]) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
    return user, system


def measured_phase(spec: dict, tmp: Path, name: str, server_pid: int) -> dict:
    """``run_phase`` plus the server's CPU milliseconds per request sent (warm-up included)."""
    user0, system0 = process_tree_cpu(server_pid)
    result = run_phase(spec, tmp, name)
    user1, system1 = process_tree_cpu(server_pid)
    sent = max(int((spec["warmup"] + spec["duration"]) * spec["rate"]), 1)
    result["cpu_ms"] = (user1 - user0 + system1 - system0) * 1000 / sent
    result["cpu_sys_ms"] = (system1 - system0) * 1000 / sent  # the kernel's part: sockets, fsyncs
    return result


# ---------------------------------------------------------------- the reference: a minimal app

def minimal_app():
    """The reference of the issue: FastAPI returning a grade and five contributions from memory
    (no auth, no database, no log). Served by uvicorn as ``api:minimal_app`` (factory)."""
    from fastapi import FastAPI

    app = FastAPI()
    reasons = [{"code": f"reason_{k}", "contribution": -4.0 * k, "value": k} for k in range(5)]

    @app.get("/grade/{uscc}")
    async def grade(uscc: str) -> dict:
        return {"uscc": uscc, "grade": "B", "score": 600.0, "reasons": reasons}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    return app


def service_settings(tmp: Path, url: str):
    """The settings of a service on a benchmark's database ``url`` kept in the directory ``tmp``:
    its data in ``tmp`` and its keys in ``tmp/keys``, made there as on a first start (development)
    when absent and read back after: the JWT key and the query log's MAC and checkpoint signing
    keys, so the keyed chain and its checkpoints are on, as served."""
    from serving.keys import with_keys
    from serving.settings import Settings

    return with_keys(Settings(database_url=url, keys_dir=tmp / "keys", data_dir=tmp))


def keyed_database(prefix: str) -> tuple[Path, str, object]:
    """A throw-away SQLite database ``bench.db`` in a new directory ``prefix…`` (not migrated yet)
    and the :func:`service_settings` of a service on it. Returns (directory, url, settings)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    url = f"sqlite:///{tmp / 'bench.db'}"
    return tmp, url, service_settings(tmp, url)


def seeded_database(prefix: str, seed, n_subjects: int, what: str | None = None) -> tuple[Path, str, list[str], object]:
    """A :func:`keyed_database` filled by ``seed(url, n_subjects)`` (which migrates it and returns
    the subjects' codes). Prints the seeding time when ``what`` names what was seeded. Returns
    (directory, url, codes, settings)."""
    tmp, url, settings = keyed_database(prefix)
    t = time.perf_counter()
    codes = seed(url, n_subjects)
    if what is not None:
        print(f"seeded {len(codes)} {what} in {time.perf_counter() - t:.1f} s: {url}")
    return tmp, url, codes, settings


def load_options(parser: argparse.ArgumentParser, *, duration: float, subjects: int, batch_repeats: int) -> None:
    """The open-loop load options every served benchmark takes (``measured_phase``'s rate, duration
    and warm-up, the uvicorn workers, the seeded subjects, the batch repeats)."""
    parser.add_argument("--duration", type=float, default=duration, help="seconds measured per phase")
    parser.add_argument("--warmup", type=float, default=3, help="seconds sent before measuring, per phase")
    parser.add_argument("--rate", type=float, default=500, help="requests per second (open loop)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--subjects", type=int, default=subjects)
    parser.add_argument("--batch-repeats", type=int, default=batch_repeats)


def service_env(url: str, data_dir: Path, settings, **extra: str) -> dict[str, str]:
    """The environment a benchmark's served app runs with: this database, the keys made in
    ``settings`` (``serving.keys.with_keys``), ``data_dir``, and no migrations at start (the
    benchmark built the database); ``extra`` adds or overrides TIERS_* variables."""
    return {**os.environ, "TIERS_DATABASE_URL": url, "TIERS_KEYS_DIR": str(settings.keys_dir),
            "TIERS_RUN_MIGRATIONS_ON_STARTUP": "false", "TIERS_DATA_DIR": str(data_dir), **extra}


def start_uvicorn(target: str, port: int, workers: int, env: dict, log_path: Path,
                  app_dir: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log", "--log-level", "warning", "--loop", "uvloop",
           "--http", "httptools"]  # as `tiers serve` (serving/cli/serve.py): uvicorn's own 5 s worker ping
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    return subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parents[1], stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT,
                            start_new_session=True)  # one process group: master and workers stop together


def stop_uvicorn(server: subprocess.Popen) -> None:
    import signal

    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:  # graceful shutdown waits for a backlog: do not
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=15)


def reference_phase(args: argparse.Namespace, tmp: Path) -> dict:
    """The minimal app under the same open loop, then stopped (it never shares the cores with ours)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_uvicorn("api:minimal_app", port, args.workers, dict(os.environ), tmp / "reference.log",
                           app_dir=Path(__file__).resolve().parent)
    try:
        wait_healthy(base, server)
        spec = {"base": base, "headers": {}, "rate": args.rate, "duration": args.duration, "warmup": args.warmup,
                "paths": [f"/grade/91320100000000{i:04d}" for i in range(100)]}
        return measured_phase(spec, tmp, "reference", server.pid)
    finally:
        stop_uvicorn(server)


def main(args: argparse.Namespace) -> None:
    import signal

    import httpx

    # `timeout`/Ctrl-C must still stop the uvicorn workers (the `finally` below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from _users import bearer_for

    from serving.db.session import iter_session
    from serving.security import Principal
    from serving.services.querylog import LogKeys, use_keys
    from serving.services.querylog_check import check_chain

    tmp, url, codes, settings = seeded_database("tiers-apibench-", seed, args.subjects,
                                                "subjects + grades (5 reasons each)")
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    env = service_env(url, tmp, settings, TIERS_SQLITE_SYNCHRONOUS=args.sqlite_synchronous)
    print(machine_facts() + f"  (before the run; uvicorn workers={args.workers}, uvloop+httptools, "
          f"SQLite synchronous={args.sqlite_synchronous})")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"open loop at {args.rate:.0f} req/s for {args.duration:.0f} s per phase (after {args.warmup:.0f} s "
          f"warm-up); latency from the scheduled send time", flush=True)
    reference = reference_phase(args, tmp) if args.reference else None
    if reference is not None:
        print(fmt("reference: minimal app, grade from memory", reference), flush=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_uvicorn("serving.app:create_app", port, args.workers, env, tmp / "server.log")
    try:
        wait_healthy(base, server)
        # every worker answers before measuring (imports and engines are created lazily)
        for _ in range(20):
            httpx.get(f"{base}/api/v1/auth/me", headers=headers)
        common = {"base": base, "headers": headers, "rate": args.rate, "duration": args.duration,
                  "warmup": args.warmup}
        baseline = measured_phase({**common, "paths": ["/api/v1/auth/me"]}, tmp, "baseline", server.pid)
        print(fmt("baseline GET /api/v1/auth/me (no DB write)", baseline), flush=True)
        grade_paths = [f"/api/v1/subjects/{c}/grade?purpose=benchmark" for c in codes]
        drain(base)
        logged = measured_phase({**common, "paths": grade_paths}, tmp, "grade", server.pid)
        print(fmt("GET /api/v1/subjects/{uscc}/grade (logged)", logged), flush=True)
        drain(base)
        capacity = run_phase({**common, "paths": grade_paths, "concurrency": 16, "duration": min(10, args.duration)},
                             tmp, "capacity")
        print(f"capacity of the logged endpoint (16 clients back to back, closed loop): {capacity['rate']:.0f} "
              f"req/s, errors {capacity['errors']}", flush=True)
        drain(base)
        batch = batch_throughput(base, headers, codes, args.batch_repeats, 1)
        batch2 = batch_throughput(base, headers, codes, args.batch_repeats, args.workers)
        load_after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        stop_uvicorn(server)
    server_errors = (tmp / "server.log").read_text(errors="replace").count("unhandled error")

    use_keys(url, LogKeys.of(settings))
    session = next(iter_session(url))
    t = time.perf_counter()
    chain = check_chain(session)  # MACs, chain, head and the signed checkpoints the workers wrote
    chain_s = time.perf_counter() - t
    session.close()

    print(f"ratio logged/baseline: p50 {logged['p50'] / baseline['p50']:.2f}x  p99 {logged['p99'] / baseline['p99']:.2f}x"
          f"  server CPU {logged['cpu_ms'] / baseline['cpu_ms']:.2f}x")
    if reference is not None:
        print(f"ratio logged/reference: p50 {logged['p50'] / reference['p50']:.2f}x  "
              f"p99 {logged['p99'] / reference['p99']:.2f}x  server CPU {logged['cpu_ms'] / reference['cpu_ms']:.2f}x")
    print(f"server-side unhandled errors: {server_errors} (log: {tmp / 'server.log'})")
    target = logged["p99"] <= 15 and not logged["errors"] and logged["achieved_rate"] >= 0.98 * args.rate
    print(f"target p99 <= 15 ms at {args.rate:.0f} req/s, 0 errors: {'MET' if target else 'NOT MET'}")
    print(f"batch POST /api/v1/regulator/grades/batch (1,000 per request, median of {args.batch_repeats}): "
          f"{batch:,.0f} subjects/s with 1 client, {batch2:,.0f} subjects/s with {args.workers} concurrent clients")
    print(f"query-log chain (keyed): {'ok' if chain.ok else 'BROKEN ' + str(chain.problem)}, {chain.entries} entries, "
          f"{chain.checkpoints} signed checkpoints (latest at entry "
          f"{chain.checkpoint.seq if chain.checkpoint else None}), checked in {chain_s:.2f} s")
    print(f"loadavg after the run: {load_after}")
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_loadgen"]:
        sub = argparse.ArgumentParser()
        sub.add_argument("--spec", required=True)
        ns = sub.parse_args(argv[1:])
        ns.mode = "loadgen"
        return ns
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    load_options(parser, duration=60, subjects=2000, batch_repeats=5)
    parser.add_argument("--sqlite-synchronous", choices=("FULL", "NORMAL"), default="FULL",
                        help="SQLite durability (FULL: every logged read is on disk before the answer)")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="skip the minimal-app reference phase")
    ns = parser.parse_args(argv)
    ns.mode = "bench"
    return ns


if __name__ == "__main__":
    arguments = parse()
    if arguments.mode == "loadgen":
        loadgen_main(arguments)
    else:
        main(arguments)
