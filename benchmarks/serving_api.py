"""Service latency: a logged subject read (auth + coverage + hash-chained query-log append +
grade) against an authenticated read that logs nothing (``/api/v1/auth/me``), in-process.

Usage: .venv/bin/python benchmarks/serving_api.py [--subjects 2000] [--requests 200] [--repeats 5]
Prints machine facts, medians of the repeats, and ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from api import machine_facts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import pandas as pd
    from _users import bearer_for
    from fastapi.testclient import TestClient
    from stdnum.cn import uscc as stdnum_uscc

    from serving.app import create_app
    from serving.db.migrate import upgrade
    from serving.db.session import iter_session
    from serving.keys import with_keys
    from serving.security import Principal
    from serving.services.bulk import load_subjects
    from serving.services.grades import store_grades
    from serving.services.querylog_check import check_chain
    from serving.services.subjects import store_records
    from serving.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="tiers-bench-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    codes = [(b := f"913201{i:011d}") + stdnum_uscc.calc_check_digit(b) for i in range(args.subjects)]
    session = next(iter_session(url))
    load_subjects(session.get_bind(), [pd.DataFrame({"uscc": codes, "name": [f"企业{i}" for i in range(len(codes))],
                                                     "industry": "C", "registered_on": "2015-01-01"})],
                  load_id="bench-subjects")
    store_records(session, [{"record_id": f"R{i}", "uscc": c, "kind": "admin_penalty", "severity": "general",
                             "decision_date": "2026-03-01", "department": "samr"} for i, c in enumerate(codes)])
    reasons = [{"code": f"f{k}", "label_zh": f"原因{k}", "contribution": -k, "record_ids": ["R1"]} for k in range(5)]
    store_grades(session, [{"uscc": c, "as_of": "2026-09-30", "score": 600, "grade": "B", "probability": 0.1,
                            "model_version": "bench", "profile_hash": "0" * 64, "reasons": reasons} for c in codes])
    settings = with_keys(Settings(database_url=url, run_migrations_on_startup=False, keys_dir=tmp / "keys"))
    client = TestClient(create_app(settings))
    headers = bearer_for(url, Principal(username="bench", role="regulator", department="samr"),
                         settings.jwt_key)

    def timed(path: str, params: dict | None = None) -> float:
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for i in range(args.requests):
                r = client.get(path.format(uscc=codes[i % len(codes)]), params=params, headers=headers)
                assert r.status_code == 200, r.text
            runs.append((time.perf_counter() - start) / args.requests * 1000)
        return statistics.median(runs)

    timed("/api/v1/auth/me")  # warm-up
    baseline = timed("/api/v1/auth/me")
    logged = timed("/api/v1/subjects/{uscc}/grade", {"purpose": "benchmark"})
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        r = client.post("/api/v1/regulator/grades/batch", headers=headers,
                        json={"usccs": codes[:1000], "purpose": "benchmark"})
        assert r.status_code == 200 and len(r.json()["grades"]) == min(1000, len(codes))
        runs.append(time.perf_counter() - start)
    batch = statistics.median(runs)
    start = time.perf_counter()
    result = check_chain(session)
    chain_s = time.perf_counter() - start
    assert result.ok
    print(machine_facts())
    print(f"baseline GET /api/v1/auth/me (JWT, no DB write): {baseline:.2f} ms/request (median of {args.repeats})")
    print(f"logged GET /api/v1/subjects/{{uscc}}/grade:          {logged:.2f} ms/request  ratio {logged / baseline:.2f}x")
    print(f"batch of 1000 grades (1000 log entries, 1 commit):  {batch * 1000:.0f} ms  "
          f"ratio {batch * 1000 / baseline:.0f}x one baseline request")
    print(f"query-log chain check: {result.entries} entries in {chain_s:.2f} s "
          f"({result.entries / chain_s:,.0f} entries/s)")


if __name__ == "__main__":
    main()
