"""Issue 22 through a real uvicorn worker: while a plan job for a city of 5,000 graded subjects
runs, the same worker keeps answering ``/health`` (the plan is made in a process of its own). At
this size a plan inside the worker would not stall it either: that the job's process leaves the
worker's GIL free whatever the work does is `test_srv_plan_jobs`' GIL-holding job."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from srv_fixtures import principal, uvicorn_server
from test_srv_plans_flow import write_scheduler_data

from serving.db.session import dispose_engine, engine_for
from serving.security import create_access_token
from serving.services.bulk import load_grades, load_subjects
from simulation.codes import make_uscc

pytestmark = pytest.mark.slow  # a 5 k city and a uvicorn process (~20–40 s)

JWT_SECRET = "plan-jobs-http-test-secret-0123456789abcdef"
SUBJECTS = 5_000
AS_OF = dt.date(2026, 9, 30)


def _city(database_url: str) -> None:
    rng = np.random.default_rng(22)
    codes = make_uscc(np.array(["91"] * SUBJECTS), np.full(SUBJECTS, 320100), np.arange(SUBJECTS) + 10**6).astype(str)
    engine = engine_for(database_url)
    load_subjects(engine, [pd.DataFrame({"uscc": codes, "name": [f"南京企业{i:06d}" for i in range(SUBJECTS)],
                                         "industry": rng.choice(list("CFG"), SUBJECTS),
                                         "district_code": rng.choice(["320102", "320104"], SUBJECTS),
                                         "district_name": "区", "registered_on": "2015-01-01"})], load_id="city")
    scores = rng.normal(650, 60, SUBJECTS).round(1)
    load_grades(engine, [pd.DataFrame({"uscc": codes, "as_of": AS_OF, "score": scores,
                                       "grade": np.select([scores < 560, scores < 620, scores < 700], ["D", "C", "B"],
                                                          "A"),
                                       "probability": 0.05, "model_version": "general-v3",
                                       "profile_hash": "c" * 64, "base_score": 620.0, "reasons": "[]",
                                       "what_if": "[]"})], load_id="grades")
    dispose_engine(database_url)


def test_the_worker_answers_health_while_a_city_plan_job_runs(database_url, tmp_path) -> None:
    _city(database_url)
    data_dir = write_scheduler_data(tmp_path / "data")
    token, _ = create_access_token(principal("reg_samr"), JWT_SECRET, 30)
    headers = {"Authorization": f"Bearer {token}"}
    today = dt.date.today()
    body = {"plan_id": "city-job", "period_start": str(today), "period_end": str(today + dt.timedelta(days=60)),
            "as_of": str(AS_OF), "tasks": [{"department": "samr", "item": "SAMR-03"}]}
    latencies: list[float] = []
    stop = threading.Event()

    with uvicorn_server(tmp_path, database_url, TIERS_DATA_DIR=str(data_dir), TIERS_JWT_SECRET=JWT_SECRET) as base:
        def probe() -> None:
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    t = time.perf_counter()
                    assert client.get(f"{base}/health").status_code == 200
                    latencies.append(time.perf_counter() - t)
                    stop.wait(0.05)

        started = httpx.post(f"{base}/api/v1/plan-jobs", json=body, headers=headers, timeout=30)
        assert started.status_code == 202, started.text
        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        deadline = time.monotonic() + 240
        while not (job := httpx.get(base + started.headers["location"], headers=headers, timeout=30).json())["done"]:
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        stop.set()
        prober.join(timeout=30)
        plan = httpx.get(f"{base}/api/v1/plans/{job['plan_id']}", headers=headers, timeout=60)
    assert job["status"] == "succeeded", job
    assert plan.status_code == 200 and len(plan.json()["visits"]) > 0
    assert len(latencies) >= 10  # the job ran long enough to be watched
    # a plan made inside the worker would hold its GIL for the pools' and the draw's array work;
    # in its own process the worker stays free (a generous bound for a loaded CI machine)
    assert max(latencies) < 1.0, sorted(latencies)[-5:]
