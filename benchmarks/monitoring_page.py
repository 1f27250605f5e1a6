"""Analyst monitoring page: latency of the server-side SVG page vs the JSON API of the same run.

A real ``monitor(...)`` run (``--subjects`` per side, 8 features, data health over 6 departments)
is stored in a temporary migrated SQLite DB; then, in the same process with FastAPI's TestClient:

1. baseline: ``GET /api/v1/analyst/monitoring/{id}`` (the stored JSON, validated and serialised);
2. ``GET /analyst/monitoring/{id}`` (the page: PSI bars, grade shares, migration, volumes as SVG).

Medians of ``--repeats`` requests each; prints page/JSON latency ratio and the page size
(which must stay far below Evidently's multi-megabyte report).

Usage: .venv/bin/python benchmarks/monitoring_page.py [--subjects 20000] [--repeats 50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _timing import timed as timed_run
from api import machine_facts


def timed(fn, repeats: int) -> float:
    return timed_run(fn, repeats)[0]


def frames(as_of: date, n: int, seed: int, shift: float):
    import numpy as np
    import pandas as pd

    from monitoring.run import MonitoringFrames

    rng = np.random.default_rng(seed)
    profiles = pd.DataFrame({"uscc": [f"U{i:08d}" for i in range(n)],
                             "industry": rng.choice(list("CEFGIKLM"), size=n),
                             "district_code": rng.choice(["320102", "320104", "320105"], size=n),
                             **{f"f{k}": rng.normal(shift * (k % 3 == 0), 1, n) for k in range(8)}})
    score = 600 + 50 * rng.normal(size=n) - 30 * shift
    scores = pd.DataFrame({"uscc": profiles["uscc"], "score": score,
                           "grade": np.select([score >= 620, score >= 570, score >= 520], list("ABC"), "D")})
    months = pd.period_range(end=pd.Period(as_of, "M"), periods=13, freq="M").astype(str)
    volume = pd.DataFrame([{"department": d, "month": m, "records": int(rng.integers(50, 500))}
                           for d in ("samr", "tax", "ecology", "safety", "customs", "hr") for m in months])
    return MonitoringFrames(as_of=as_of, profiles=profiles, scores=scores, volume=volume)



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serving"))
    from _users import bearer_for
    from fastapi.testclient import TestClient

    from monitoring.run import monitor
    from serving.app import create_app
    from serving.db.migrate import upgrade
    from serving.db.session import iter_session
    from serving.deps import SESSION_COOKIE
    from serving.keys import with_keys
    from serving.security import Principal
    from serving.services.monitoring import store_result
    from serving.settings import Settings

    print(machine_facts())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        settings = with_keys(Settings(database_url=url, run_migrations_on_startup=False, data_dir=Path(tmp) / "data",
                                      keys_dir=Path(tmp) / "keys"))
        html = Path(tmp) / "report.html"
        t = time.perf_counter()
        result = monitor(frames(date(2026, 6, 30), args.subjects, 1, 0.0),
                         frames(date(2026, 9, 30), args.subjects, 2, 0.5), html_path=html)
        t_monitor = time.perf_counter() - t
        session = next(iter_session(url))
        t = time.perf_counter()
        run_id = store_result(session, result, report_html=html, artifact_dir=settings.data_dir)
        t_store = time.perf_counter() - t
        session.close()
        headers = bearer_for(url, Principal(username="analyst", role="analyst"), settings.jwt_key)
        client = TestClient(create_app(settings))
        client.cookies.set(SESSION_COOKIE, headers["Authorization"].removeprefix("Bearer "))
        api = lambda: client.get(f"/api/v1/analyst/monitoring/{run_id}", headers=headers).raise_for_status()  # noqa: E731
        page = lambda: client.get(f"/analyst/monitoring/{run_id}").raise_for_status()  # noqa: E731
        api(), page()  # warm-up (templates, imports)
        t_api, t_page = timed(api, args.repeats), timed(page, args.repeats)
        page_bytes = len(client.get(f"/analyst/monitoring/{run_id}").content)
        print(f"subjects/side={args.subjects} alerts={len(result.alerts)} monitor()={t_monitor:.2f}s "
              f"store_result={1000 * t_store:.1f} ms")
        print(f"JSON API median {1000 * t_api:.1f} ms (baseline); page median {1000 * t_page:.1f} ms; "
              f"ratio page/JSON {t_page / t_api:.2f}")
        print(f"page {page_bytes / 1024:.0f} KiB vs Evidently report {html.stat().st_size / 2**20:.1f} MiB "
              f"(ratio {page_bytes / html.stat().st_size:.3f})")


if __name__ == "__main__":
    main()
