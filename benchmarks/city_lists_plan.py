"""Issue 22, the parts of a city-scale run that are not the served figures (``city_scale.py``):

``pages URL``: on a database built by ``city_scale.py`` (migrated to head), each list's first page
just after a load (the kept totals forgotten, as any store does) with its total read from the tallies
(``list_counts.tallied_total``), against counting it (the same page's rows plus ``count_subjects``);
then offset pages (``subject_lists.offset_page``) at the start, middle and end. Median of
``--repeats`` (worst in brackets), ms.

``plan N DATA_DIR``: a whole-city plan's stages on N synthetic subjects in memory (no database:
the frames ``plans.plan_inputs`` would read), each stage's seconds, the peak RSS and the longest
time a sleeping thread waited to run (uvicorn's supervisor kills a worker whose ping thread does
not answer in 5 s). Cyclic GC is off as in ``plans.create_drawn_plan``.

``plan-page N DATA_DIR``: the same, then what a plan page's view costs: the stored payload parsed
back, the whole plan validated, the verification.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/city_lists_plan.py pages sqlite:///DIR/300000/city.db
       PYTHONPATH=. .venv/bin/python benchmarks/city_lists_plan.py plan 2000000 /tmp/plan-data
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import resource
import secrets
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pages(url: str, repeats: int = 5) -> None:
    from serving.db.session import iter_session
    from serving.security import Principal
    from serving.services import subject_lists as sl
    from serving.services.list_counts import forget_counts

    session = next(iter_session(url))
    who = Principal(username="bench", role="regulator", department="samr")
    cases = {"first": sl.ListFilter(), "grade C": sl.ListFilter(grade="C"),
             "district + grade": sl.ListFilter(district="320106", grade="C"), "industry": sl.ListFilter(industry="F")}

    def timed(run) -> tuple[float, float]:
        out = []
        for _ in range(repeats):
            forget_counts(session)  # a load just committed: nothing kept
            session.commit()
            t = time.perf_counter()
            run()
            out.append((time.perf_counter() - t) * 1000)
        return statistics.median(out), max(out)

    for name, f in cases.items():
        tallied = timed(lambda f=f: sl.subject_page(session, who, f, limit=50))
        counted = timed(lambda f=f: (sl.count_subjects(session, who, f), sl._ranked_rows(session, who, f, None, 50)))
        print(f"{name:18} first page after a load: tallied {tallied[0]:7.1f} ({tallied[1]:7.1f}) ms, "
              f"counted {counted[0]:7.1f} ({counted[1]:7.1f}) ms", flush=True)
    total = sl.offset_page(session, who, sl.ListFilter(), 0, 1)[0]
    for offset in (0, total // 2, total - 10):
        med, worst = timed(lambda o=offset: sl.offset_page(session, who, sl.ListFilter(), o, 50))
        print(f"offset page at {offset:>10,}: {med:7.1f} ({worst:7.1f}) ms", flush=True)


def plan(n: int, data: Path, page_views: bool = False) -> None:
    import numpy as np
    import pandas as pd
    from city_scale import DISTRICTS, SECTIONS, _codes, write_scheduler_data

    from serving.services import plans as ps
    from supervision.plan import PlanCreate, PlanInputs, prepare_pools, publish_commitment

    waited = [0.0]

    def watch() -> None:
        last = time.perf_counter()
        while True:
            time.sleep(0.01)
            now = time.perf_counter()
            waited[0], last = max(waited[0], now - last - 0.01), now

    threading.Thread(target=watch, daemon=True).start()
    t0 = time.perf_counter()

    def mark(name: str) -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:30} {time.perf_counter() - t0:7.2f} s  peak {peak:7.0f} MB  longest wait {waited[0]:5.2f} s",
              flush=True)
        waited[0] = 0.0

    rng = np.random.default_rng(1)
    codes = np.array(list(_codes(n)), dtype=object)
    subjects = pd.DataFrame({"uscc": codes, "name": [f"企业{i}" for i in range(n)], "legal_form": "有限责任公司",
                             "industry": np.array(SECTIONS, dtype=object)[rng.integers(len(SECTIONS), size=n)],
                             "district_code": np.array(DISTRICTS, dtype=object)[rng.integers(len(DISTRICTS), size=n)],
                             "district_name": "区", "status": "active"})
    as_of = dt.date(2026, 2, 28)
    grades = pd.DataFrame({"uscc": codes, "grade": np.array(list("ABCD"), dtype=object)[rng.integers(4, size=n)],
                           "as_of": str(as_of), "model_version": "city-bench"})
    write_scheduler_data(data)
    tables = ps.load_scheduler_tables(data)
    inputs = PlanInputs(subjects=subjects, grades=grades, items=tables["items"], inspectors=tables["inspectors"],
                        conflicts=None, leads=pd.DataFrame(columns=["uscc", "lead_type", "lead_date", "department"]),
                        history=pd.DataFrame(columns=["uscc", "department", "inspection_item", "inspected_on",
                                                      "inspector_ids"]))
    mark(f"inputs ({n:,})")
    start = dt.date(2027, 1, 1)
    request = PlanCreate.model_validate({"plan_id": "bench", "period_start": str(start),
                                         "period_end": str(start + dt.timedelta(days=89)), "as_of": str(as_of),
                                         "tasks": [{"department": "samr", "item": "SAMR-03"}]})
    policy = ps.load_named_policy("default")
    gc.disable()  # as create_drawn_plan
    prepared = prepare_pools(request, inputs, policy)
    mark("prepare_pools")
    seed = secrets.token_bytes(32)
    publish_commitment(request, inputs, policy, seed, prepared=prepared)
    mark("publish_commitment")
    drawn = ps.draw_plan(request, inputs, policy, seed, prepared=prepared)
    mark(f"draw ({sum(len(t.drawn) for t in drawn.tasks):,} drawn)")
    stored = ps.plan_json(drawn)
    mark("plan_json")
    text = json.dumps(stored)
    mark(f"json.dumps ({len(text) / 1e6:.0f} MB)")
    ps.plan_summary(stored)
    mark("plan_summary")
    if not page_views:
        return
    # what a plan page view costs (issue 22): the stored payload parsed back (json.loads), the
    # whole plan validated (stored_plan), only its visits (the visit list), the verification
    from supervision.plan import DrawCommitment, InspectionPlan, verify_plan

    gc.enable()
    loaded = json.loads(text)
    mark("page: json.loads")
    whole = InspectionPlan.model_validate(loaded)
    mark("page: stored_plan (whole)")
    verify_plan(whole, DrawCommitment.model_validate(stored["commitment"]))
    mark("page: verify_plan")


if __name__ == "__main__":
    if sys.argv[1] == "pages":
        pages(sys.argv[2])
    else:
        plan(int(sys.argv[2]), Path(sys.argv[3]), page_views=sys.argv[1] == "plan-page")
