"""Service latency: a logged subject read (auth + coverage + hash-chained query-log append +
grade) against an authenticated read that logs nothing (``/api/v1/auth/me``), in-process.

Usage: .venv/bin/python benchmarks/serving_api.py [--subjects 2000] [--requests 200] [--repeats 5]
Prints machine facts, medians of the repeats, and ratios to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

from api import machine_facts, seed, seeded_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from _users import bearer_for
    from fastapi.testclient import TestClient

    from serving.app import create_app
    from serving.db.session import iter_session
    from serving.security import Principal
    from serving.services.querylog_check import check_chain

    _tmp, url, codes, settings = seeded_database("tiers-bench-", seed, args.subjects)
    session = next(iter_session(url))
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
