"""Issue 22: a whole-city plan through a real uvicorn worker, inside the request (the old path:
``POST /plans`` with ``TIERS_PLAN_INLINE_SUBJECTS`` above the city) against a plan job
(``POST /plan-jobs``, made in a process of its own), and how long the same worker takes to answer
``/health`` meanwhile (polled every 50 ms: its worst and 99th percentile; with one worker, each
answer comes from the worker making or waiting for the plan). Then the costs of reading the plan:
the listing (``GET /plans``) and the plan with its visits (``GET /plans/{id}``).

The database: ``city_scale.build`` (bulk path, one as-of date), kept in ``--db-dir`` for reuse.

Usage: PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/plan_jobs.py --subjects 200000 --db-dir DIR --build-only
       PYTHONPATH=. flock /tmp/bench.lock timeout 1800 .venv/bin/python benchmarks/plan_jobs.py --subjects 200000 --db-dir DIR
       … plan_jobs.py --subjects 200000 --db-dir DIR --reads-against /path/to/main  (the reads, main's code vs this)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


class HealthProbe:
    """``/health`` every ``every_s`` in a thread: each answer's latency (s), or the failure."""

    def __init__(self, base: str, every_s: float = 0.05) -> None:
        self.base, self.every_s = base, every_s
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=300) as client:
            while not self._stop.is_set():
                t = time.perf_counter()
                try:
                    ok = client.get(f"{self.base}/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    self.latencies.append(time.perf_counter() - t)
                else:
                    self.failures += 1
                self._stop.wait(self.every_s)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=310)

    def figures(self) -> dict:
        lat = sorted(self.latencies) or [float("nan")]
        return {"health_n": len(self.latencies), "health_failures": self.failures,
                "health_p50_ms": 1000 * statistics.median(lat), "health_p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
                "health_worst_ms": 1000 * lat[-1]}

    def summary(self) -> str:
        """:meth:`figures` to 0.1, as JSON (for a printed line)."""
        return json.dumps({k: round(v, 1) for k, v in self.figures().items()})


def _body(as_of: dt.date, name: str) -> dict:
    start = max(as_of + dt.timedelta(days=1), dt.date.today())
    return {"plan_id": name, "period_start": str(start), "period_end": str(start + dt.timedelta(days=89)),
            "as_of": str(as_of), "tasks": [{"department": "samr", "item": "SAMR-03"}]}


def _post_plan(base: str, headers: dict, body: dict) -> tuple[dict, float, str]:
    """``POST /plans`` with ``body`` while ``/health`` is probed (from a second before): the plan
    made (201), the seconds the request took and the probe's :meth:`HealthProbe.summary`."""
    import httpx

    with HealthProbe(base) as probe:
        time.sleep(1)
        t = time.perf_counter()
        r = httpx.post(f"{base}/api/v1/plans", json=body, headers=headers, timeout=1800)
        seconds = time.perf_counter() - t
    assert r.status_code == 201, r.text[:300]
    return r.json(), seconds, probe.summary()


def _serve(tmp: Path, url: str, settings, inline: int, name: str, tree: Path | None = None):
    from api import free_port, service_env, start_uvicorn, wait_healthy

    env = service_env(url, tmp / "data", settings, TIERS_PLANS_PER_HOUR="1000", TIERS_PLAN_INLINE_SUBJECTS=str(inline))
    port = free_port()
    server = start_uvicorn("serving.app:create_app", port, 1, env, tmp / f"server-{name}.log", app_dir=tree)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, server, timeout=120)
    return server, base


def baseline_reads(size: int, tmp: Path, url: str, tree: Path) -> None:
    """The same reads of the plans already made, served by the code in ``tree`` (e.g. main's)."""
    from _users import bearer_for
    from api import service_settings, stop_uvicorn

    from serving.db.session import iter_session
    from serving.db.tables import Plan
    from serving.security import Principal

    settings = service_settings(tmp, url)
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    session = next(iter_session(url))
    plan_id = max(session.query(Plan.id).all())[0]
    session.close()
    for label, where in ((f" [{tree}]", tree), (" [this tree]", None)):
        server, base = _serve(tmp, url, settings, 20_000, "baseline" if where else "branch", tree=where)
        try:
            reads(base, headers, plan_id, size, label=label)
        finally:
            stop_uvicorn(server)


def measure(size: int, tmp: Path, url: str) -> None:
    import httpx
    from _users import bearer_for
    from api import service_settings, stop_uvicorn
    from city_scale import last_as_of

    from serving.security import Principal

    settings = service_settings(tmp, url)
    headers = bearer_for(url, Principal(username="bench_regulator", role="regulator", department="samr"),
                         settings.jwt_key)
    as_of, stamp = last_as_of(1), int(time.time())
    # the old path: the plan inside the request
    server, base = _serve(tmp, url, settings, 10**8, "inline")
    try:
        plan, inline_s, health = _post_plan(base, headers, _body(as_of, f"inline-{stamp}"))
        print(f"[{size:,}] POST /plans inside the request: {inline_s:.1f} s, {plan['plan']['visits']:,} visits; "
              f"health {health}", flush=True)
        reads(base, headers, plan["id"], size)
    finally:
        stop_uvicorn(server)
    # the new path: a job in a process of its own; and POST /plans above the inline size
    server, base = _serve(tmp, url, settings, 20_000, "job")
    try:
        with HealthProbe(base) as probe:
            time.sleep(1)
            t = time.perf_counter()
            r = httpx.post(f"{base}/api/v1/plan-jobs", json=_body(as_of, f"job-{stamp}"), headers=headers, timeout=60)
            assert r.status_code == 202, r.text[:300]
            accepted_ms = 1000 * (time.perf_counter() - t)
            stages = []
            while not (job := httpx.get(f"{base}{r.headers['location']}", headers=headers, timeout=60).json())["done"]:
                if not stages or stages[-1][1] != job["stage"]:
                    stages.append((round(time.perf_counter() - t, 1), job["stage"], job["percent"]))
                time.sleep(0.2)
            job_s = time.perf_counter() - t
        assert job["status"] == "succeeded", job
        print(f"[{size:,}] POST /plan-jobs: 202 in {accepted_ms:.0f} ms, plan made in {job_s:.1f} s; stages {stages}; "
              f"health {probe.summary()}", flush=True)
        _plan, waited_s, health = _post_plan(base, headers, _body(as_of, f"waited-{stamp}"))
        print(f"[{size:,}] POST /plans above the inline size (waits for a job): {waited_s:.1f} s; health {health}",
              flush=True)
        reads(base, headers, job["plan_id"], size)
    finally:
        stop_uvicorn(server)


def reads(base: str, headers: dict, plan_id: int, size: int, repeats: int = 3, label: str = "") -> None:
    """The listing, the plan page (its first page of visits), the API's plan (every visit, each
    logged) and its verification; median of ``repeats`` (worst), ms."""
    import httpx

    cookies = {"tiers_session": headers["Authorization"].removeprefix("Bearer ")}
    for name, path in (("GET /plans", "/api/v1/plans"), ("page /regulator/plans", "/regulator/plans"),
                       ("page /regulator/plans/{id}", f"/regulator/plans/{plan_id}"),
                       ("GET /plans/{id}", f"/api/v1/plans/{plan_id}"),
                       ("GET /plans/{id}/verify", f"/api/v1/plans/{plan_id}/verify")):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            page = path.startswith("/regulator")
            r = httpx.get(f"{base}{path}", headers={} if page else headers, cookies=cookies if page else None,
                          params={"purpose": "benchmark"}, timeout=600)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text[:300]
        print(f"[{size:,}]{label} {name}: median {1000 * statistics.median(times):,.0f} ms, worst {1000 * max(times):,.0f} ms "
              f"({len(r.content) / 1e6:.1f} MB)", flush=True)


def main(argv: list[str] | None = None) -> None:
    from city_scale import build, write_scheduler_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--db-dir", type=Path, required=True)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--reads-against", type=Path, help="only the reads, by this tree's code and this one's")
    args = parser.parse_args(argv)
    tmp = args.db_dir / str(args.subjects)
    tmp.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp / 'city.db'}"
    if not (tmp / "build.done").exists():
        t = time.perf_counter()
        build(url, args.subjects, 1, 50_000)
        (tmp / "build.done").write_text(f"{time.perf_counter() - t:.0f} s\n")
        write_scheduler_data(tmp / "data")
    if args.reads_against:
        baseline_reads(args.subjects, tmp, url, args.reads_against)
    elif not args.build_only:
        measure(args.subjects, tmp, url)


if __name__ == "__main__":
    main()
