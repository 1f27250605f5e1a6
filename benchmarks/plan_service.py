"""Benchmark: a 双随机 plan created, read and verified through the service vs the scheduler alone.

Times, as medians of repeats in the same run, on a temporary SQLite database:
  service  = ``POST /api/v1/plans`` (load subjects + grades from the DB, data files, commit,
             draw, assign, store plan + draw in one transaction) through the ASGI app
  baseline = ``supervision.plan.create_plan`` on the same in-memory tables (the scheduler alone)
and ``GET /api/v1/plans/{id}/verify`` against ``supervision.plan.verify_plan`` in memory.

tiers-draw-v2 through the service (same world): commit (``POST /api/v1/plans/v2``), a second
user's salt and the draw (``POST /api/v1/plans/{id}/salt``), the public bundle, the public page,
and one enterprise's openings (``GET /api/v1/subjects/{uscc}/draw-openings``, which computes the
opening of every v2 plan whose pool holds it: one pass over each pool's tree), against the v1
create above.

    .venv/bin/python benchmarks/plan_service.py [--subjects 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _timing import timed as timed_run
from _users import bearer_for
from fastapi.testclient import TestClient
from sqlalchemy import insert
from stdnum.cn import uscc as stdnum_uscc

from serving.app import create_app
from serving.db.migrate import upgrade
from serving.db.session import iter_session
from serving.db.tables import Grade, Subject
from serving.keys import with_keys
from serving.security import Principal
from serving.services import plans as plan_service
from serving.settings import Settings
from supervision.plan import PlanCreate, create_plan, verify_plan

AS_OF = dt.date(2026, 9, 30)
GRADE_SHARES = {"A": 0.654, "B": 0.253, "C": 0.077, "D": 0.016}  # Dandong 2023 mix (docs/domain.md §3)
DISTRICTS = ["320102", "320104", "320105", "320106", "320111"]



def _median(fn, repeats: int) -> float:
    return timed_run(fn, repeats)[0]


def machine_facts() -> str:
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"nproc={os.cpu_count()} RAM={ram_gb:.1f} GiB load={os.getloadavg()[0]:.1f}"



def build_world(base: Path, n_subjects: int) -> Settings:
    rng = np.random.default_rng(7)
    url = f"sqlite:///{base / 'tiers.db'}"
    upgrade(url)
    bodies = [f"9132{d[2:]}MA{n:07d}" for n, d in zip(range(n_subjects), rng.choice(DISTRICTS, n_subjects),
                                                       strict=True)]
    codes = [b + stdnum_uscc.calc_check_digit(b) for b in bodies]
    grades = rng.choice(list(GRADE_SHARES), n_subjects, p=list(GRADE_SHARES.values()))
    session = next(iter_session(url))
    session.execute(insert(Subject), [dict(uscc=c, name=f"企业{n}", industry="C", district_code=c[2:8],
                                           district_name="区", status="active") for n, c in enumerate(codes)])
    session.execute(insert(Grade), [dict(uscc=c, as_of=AS_OF, score=700.0, grade=g, probability=0.05,
                                         model_version="bench-v1", profile_hash="0" * 64)
                                    for c, g in zip(codes, grades, strict=True)])
    session.commit()
    session.close()
    data = base / "data"
    data.mkdir()
    (data / "items.csv").write_text("item_code,department,name_zh,name_en,key_item,industries\n"
                                    "SAMR-03,samr,企业信息公示,Annual report,false,\n"
                                    "SAMR-02,samr,产品质量,Product quality,true,C\n", encoding="utf-8")
    inspectors = "".join(f"I{n:05d},员{n},samr,{DISTRICTS[n % 5]},SAMR-02;SAMR-03,40\n"
                         for n in range(max(50, n_subjects // 100)))
    (data / "inspectors.csv").write_text("inspector_id,name,department,district_code,qualified_items,capacity\n"
                                         + inspectors, encoding="utf-8")
    return with_keys(Settings(database_url=url, data_dir=data, run_migrations_on_startup=False,
                              keys_dir=data / "keys"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_facts())
    with tempfile.TemporaryDirectory() as tmp:
        settings = build_world(Path(tmp), args.subjects)
        client = TestClient(create_app(settings))
        headers = bearer_for(settings.database_url, Principal(username="bench", role="regulator", department="samr"),
                             settings.jwt_key)
        counter = iter(range(10**6))
        # the service's clock: a plan's period may not have ended before the plan is made
        start = max(dt.datetime.now(dt.UTC).date(), dt.date(2026, 12, 1))
        body = {"period_start": start.isoformat(), "period_end": (start + dt.timedelta(days=30)).isoformat(),
                "as_of": AS_OF.isoformat(),
                "tasks": [{"department": "samr", "item": "SAMR-03"}, {"department": "samr", "item": "SAMR-02"}]}
        created: list[int] = []

        def service_create() -> None:
            r = client.post("/api/v1/plans", json={**body, "plan_id": f"bench-{next(counter)}"}, headers=headers)
            assert r.status_code == 201, r.text
            created.append(r.json()["id"])

        session = next(iter_session(settings.database_url))
        inputs = plan_service.plan_inputs(session, settings.data_dir, AS_OF)
        policy = plan_service.load_named_policy("default")
        request = PlanCreate.model_validate({**body, "plan_id": "baseline"})
        plan = create_plan(request, inputs, policy, os.urandom(32))

        t_service = _median(service_create, args.repeats)
        t_base = _median(lambda: create_plan(request, inputs, policy, os.urandom(32)), args.repeats)
        t_verify = _median(lambda: client.get(f"/api/v1/plans/{created[0]}/verify", headers=headers).raise_for_status(),
                           args.repeats)
        t_verify_base = _median(lambda: verify_plan(plan), args.repeats)
        session.close()
        v2 = _v2_times(client, settings, body, headers, counter, args.repeats)
    print(f"subjects={args.subjects} draws={plan.draws_total} visits={len(plan.visits)} repeats={args.repeats}")
    print(f"create: service {t_service * 1000:.0f} ms, scheduler alone {t_base * 1000:.0f} ms, "
          f"ratio {t_service / t_base:.2f}x")
    print(f"verify: service {t_verify * 1000:.0f} ms, scheduler alone {t_verify_base * 1000:.0f} ms, "
          f"ratio {t_verify / t_verify_base:.2f}x")
    print(f"v2: commit {v2['commit'] * 1000:.0f} ms + salt and draw {v2['draw'] * 1000:.0f} ms "
          f"= {(v2['commit'] + v2['draw']) / t_service:.2f}x the v1 create; bundle {v2['bundle'] * 1000:.0f} ms, "
          f"public page {v2['public'] * 1000:.0f} ms")
    print(f"v2: one enterprise's openings ({v2['plans']} plans holding it) {v2['openings'] * 1000:.0f} ms, "
          f"{v2['openings'] / v2['plans'] * 1000:.0f} ms per plan = {v2['openings'] / v2['plans'] / t_verify:.2f}x "
          "the v1 verify of one plan")


def _v2_times(client: TestClient, settings: Settings, body: dict, headers: dict, counter, repeats: int) -> dict:
    second = bearer_for(settings.database_url, Principal(username="bench2", role="regulator", department="samr"),
                        settings.jwt_key)
    ids: list[int] = []
    commit_times, draw_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        r = client.post("/api/v1/plans/v2", json={**body, "plan_id": f"v2-{next(counter)}", "salt_source": "bench",
                                                  "salt_pattern": r"\d \d \d"},
                        headers=headers)
        assert r.status_code == 201, r.text
        commit_times.append(time.perf_counter() - start)
        ids.append(r.json()["id"])
        start = time.perf_counter()
        r = client.post(f"/api/v1/plans/{ids[-1]}/salt", json={"value": "5 8 1"}, headers=second)
        assert r.status_code == 200, r.text
        draw_times.append(time.perf_counter() - start)
    t_bundle = _median(lambda: client.get(f"/api/v1/plans/{ids[0]}/bundle.json", headers=headers).raise_for_status(),
                       repeats)
    t_public = _median(lambda: client.get("/public/samr").raise_for_status(), repeats)
    uscc = client.get(f"/api/v1/plans/{ids[0]}/bundle.json", headers=headers).json()["tasks"][0]["drawn"][0]
    enterprise = bearer_for(settings.database_url, Principal(username="bench-ent", role="enterprise", uscc=uscc),
                            settings.jwt_key)
    opened = client.get(f"/api/v1/subjects/{uscc}/draw-openings", headers=enterprise)
    opened.raise_for_status()
    t_open = _median(lambda: client.get(f"/api/v1/subjects/{uscc}/draw-openings",
                                        headers=enterprise).raise_for_status(), repeats)
    return {"commit": statistics.median(commit_times), "draw": statistics.median(draw_times), "bundle": t_bundle,
            "public": t_public, "openings": t_open, "plans": len(opened.json())}


if __name__ == "__main__":
    main()
