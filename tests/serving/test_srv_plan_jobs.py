"""Issue 22: a plan made in the background (``serving.services.plan_jobs`` on the one job runner,
``serving.services.jobs``): every refusal at once before anything is queued, 202 and a job to
poll, the plan or the reason (nothing stored), the page's progress bar, access as the plans',
``POST /plans`` unchanged for its callers at any size, and the plan listing without payloads."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from test_srv_plans_flow import AS_OF, city, settings  # noqa: F401  (fixtures: data dir and graded city)

from serving.db.session import engine_for
from serving.db.tables import Draw, Job, Plan
from serving.services import plan_jobs
from serving.services import plans as plan_service


def _task(plan_id="2026Q4-job", items=("SAMR-03",), department="samr", **extra) -> dict:
    return {"plan_id": plan_id, "period_start": "2026-12-01", "period_end": "2026-12-31", "as_of": AS_OF,
            "tasks": [{"department": department, "item": i} for i in items], **extra}


def _ended(client, auth, location: str, user: str = "reg_samr", timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(location, headers=auth(user))
        assert job.status_code == 200, job.text
        if job.json()["done"]:
            return job.json()
        time.sleep(0.1)
    raise AssertionError(f"job {location} did not end in {timeout_s} s")


def _counts(session) -> tuple[int, int, int]:
    session.expire_all()
    return (session.scalar(select(func.count(Plan.id))), session.scalar(select(func.count(Draw.id))),
            session.scalar(select(func.count(Job.id)).where(Job.kind == plan_jobs.KIND)))


@pytest.fixture
def in_thread(monkeypatch):
    """The job's bookkeeping without a process start (the process itself: the first test)."""
    monkeypatch.setattr(plan_jobs, "RUN_IN_PROCESS", False)


def test_a_plan_job_answers_202_then_the_plan_made_in_its_own_process(client, auth, city, session):  # noqa: F811
    started = client.post("/api/v1/plan-jobs", json=_task(), headers=auth("reg_samr"))
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert location == f"/api/v1/plan-jobs/{started.json()['job_id']}" and not started.json()["done"]
    job = _ended(client, auth, location)
    assert job["status"] == "succeeded" and job["status_text"] == "已完成" and job["stage"] == "完成", job
    assert job["progress"] == 1.0 and job["percent"] == 100 and job["message"] is None
    plan = client.get(job["api_plan_url"], headers=auth("reg_samr"))
    assert plan.status_code == 200 and plan.json()["plan_id"] == "2026Q4-job"
    assert plan.json()["plan"]["visits"] == len(plan.json()["visits"]) > 0
    assert client.get(f"/api/v1/plans/{job['plan_id']}/verify", headers=auth("reg_samr")).json()["match"]
    assert job["plan_url"] == f"/regulator/plans/{job['plan_id']}"
    # the state is the database's: another worker (another app on the same database) reads the same job
    from srv_fixtures import app_on

    assert TestClient(app_on(client.app.state.settings)).get(location, headers=auth("reg_samr")).json() == job


@pytest.mark.usefixtures("in_thread")
def test_every_refusal_comes_back_at_once_and_queues_nothing(client, auth, city, session, settings):  # noqa: F811
    client.post("/api/v1/plans", json=_task(plan_id="taken"), headers=auth("reg_samr"))
    before = _counts(session)
    cases = [
        (_task(plan_id="eco"), "reg_eco", 403, "tasks"),
        (_task(plan_id="taken"), "reg_samr", 409, "plan_id"),
        (_task(period_end="2026-11-01", period_start="2026-10-01"), "reg_samr", 422, "period_end"),
        (_task(as_of="2026-08-31"), "reg_samr", 422, "as_of"),
        (_task(policy="no-such-policy"), "reg_samr", 422, None),
        (_task(seed_hex="0" * 64), "reg_samr", 422, None),
    ]
    for body, user, status, field in cases:
        refused = client.post("/api/v1/plan-jobs", json=body, headers=auth(user))
        assert refused.status_code == status, (body, refused.text)
        if field:
            assert refused.json()["error"]["field"] == field
    no_grades = client.post("/api/v1/plan-jobs", json=_task(as_of="2026-08-31"), headers=auth("reg_samr"))
    assert "没有信用等级" in no_grades.json()["error"].get("message_zh", no_grades.text)
    (settings.data_dir / "inspectors.csv").unlink()
    missing = client.post("/api/v1/plan-jobs", json=_task(), headers=auth("reg_samr"))
    assert missing.status_code == 503 and missing.json()["error"]["field"] == "inspectors"
    assert _counts(session) == before  # no job queued, no plan
    # one plan job per department at a time
    from serving.services import jobs

    (settings.data_dir / "inspectors.csv").write_text(
        "inspector_id,name,department,district_code,qualified_items,capacity\nINS000001,检查员,samr,320102,SAMR-03,20\n",
        encoding="utf-8")
    running = jobs.queue(session, kind=plan_jobs.KIND, requested_by="reg_samr2", department="samr")
    busy = client.post("/api/v1/plan-jobs", json=_task(plan_id="second"), headers=auth("reg_samr"))
    assert busy.status_code == 409 and f"任务 #{running.id}" in busy.json()["error"]["message_zh"]
    other = client.post("/api/v1/plan-jobs", json=_task(plan_id="eco2", items=("ECO-01",), department="ecology"),
                        headers=auth("reg_eco"))
    assert other.status_code == 202  # another department's may run
    _ended(client, auth, other.headers["location"], user="reg_eco")


@pytest.mark.usefixtures("in_thread")
def test_a_failed_job_leaves_no_plan_and_says_why_in_chinese(client, auth, city, session, monkeypatch):  # noqa: F811
    real_draw = plan_service.draw_plan

    def draw_then_die(*args, **kwargs):
        real_draw(*args, **kwargs)
        raise RuntimeError("the process died after the draw")

    monkeypatch.setattr(plan_service, "draw_plan", draw_then_die)
    died = _ended(client, auth, client.post("/api/v1/plan-jobs", json=_task(), headers=auth("reg_samr"))
                  .headers["location"])
    assert died["status"] == "failed" and died["plan_id"] is None
    assert died["message"] == "计划未生成（未保存任何内容）：系统内部错误，已记录，请联系管理员"
    monkeypatch.setattr(plan_service, "draw_plan", real_draw)
    # a refusal only the pool's read can find: its own Chinese sentence
    empty = _ended(client, auth, client.post("/api/v1/plan-jobs", json=_task(
        plan_id="empty", pool_filter={"district_codes": ["320199"]}), headers=auth("reg_samr")).headers["location"])
    assert empty["status"] == "failed" and "限定的区县（320199）内没有可抽查的主体" in empty["message"]
    assert _counts(session)[:2] == (0, 0)
    english = client.get(f"/api/v1/plan-jobs/{empty['job_id']}", params={"lang": "en"}, headers=auth("reg_samr"))
    assert english.json()["status_text"] == "failed"


@pytest.mark.usefixtures("in_thread")
def test_only_the_departments_regulators_read_a_plan_job(client, auth, city, session):  # noqa: F811
    location = client.post("/api/v1/plan-jobs", json=_task(), headers=auth("reg_samr")).headers["location"]
    _ended(client, auth, location)
    assert client.get(location, headers=auth("reg_tax")).status_code == 404  # another department: as if absent
    for user in ("ent1", "analyst", "admin"):
        assert client.get(location, headers=auth(user)).status_code == 403
        assert client.post("/api/v1/plan-jobs", json=_task(plan_id=user), headers=auth(user)).status_code == 403
    assert client.get("/api/v1/plan-jobs/999999", headers=auth("reg_samr")).status_code == 404
    assert client.get(location).status_code == 401
    assert _counts(session)[2] == 1


@pytest.mark.usefixtures("in_thread")
def test_post_plans_keeps_its_contract_for_a_city_above_the_inline_size(app, auth, city, session):  # noqa: F811
    app.state.settings.plan_inline_subjects = 0  # every city is "big": the request waits for a job
    client = TestClient(app)
    made = client.post("/api/v1/plans", json=_task(), headers=auth("reg_samr"))
    assert made.status_code == 201, made.text
    job = session.scalars(select(Job).where(Job.kind == plan_jobs.KIND)).one()
    assert job.plan_id == made.json()["id"] and made.json()["plan"]["visits"] > 0
    empty = client.post("/api/v1/plans", json=_task(plan_id="empty", pool_filter={"district_codes": ["320199"]}),
                        headers=auth("reg_samr"))
    assert empty.status_code == 422 and empty.json()["error"]["field"] == "district_codes"  # the job's refusal


@pytest.mark.usefixtures("in_thread")
def test_the_page_shows_the_jobs_progress_then_the_plan(app, auth, city, session, settings):  # noqa: F811
    from srv_fixtures import form_login

    app.state.settings.plan_inline_subjects = 0
    client = TestClient(app)
    assert form_login(client, "reg_samr").status_code == 303
    page = client.get("/regulator/plans")
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    posted = client.post("/regulator/plans", data={"csrf_token": token, "plan_id": "page-job",
                                                   "period_start": "2026-12-01", "period_end": "2026-12-31",
                                                   "as_of": AS_OF, "items": ["SAMR-03"]}, follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"].startswith("/regulator/plan-jobs/"), posted.text
    shown = client.get(posted.headers["location"])
    assert shown.status_code == 200 and "<progress" in shown.text and "计划生成任务" in shown.text
    assert 'src="/static/job.js"' in shown.text
    deadline = time.monotonic() + 60
    while not (status := client.get(posted.headers["location"] + "/status").json())["done"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status["status"] == "succeeded" and status["plan_url"].startswith("/regulator/plans/")
    assert client.get(status["plan_url"]).status_code == 200
    assert 'id="job-plan"' in client.get(posted.headers["location"]).text  # the link, once done


def test_the_plan_listing_reads_no_draw_payload(client, auth, city, session, database_url):  # noqa: F811
    for n in range(2):
        made = client.post("/api/v1/plans", json=_task(plan_id=f"list-{n}"), headers=auth("reg_samr"))
        assert made.status_code == 201
    statements: list[str] = []
    engine = engine_for(database_url)

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        listed = client.get("/api/v1/plans", headers=auth("reg_samr"))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert listed.status_code == 200 and {p["plan_id"] for p in listed.json()} == {"list-0", "list-1"}
    assert all(p["plan"]["visits"] > 0 for p in listed.json())
    draws = [s for s in statements if "draws" in s]
    assert draws and not any("draws.payload" in s for s in draws), draws


def test_the_plan_page_reads_a_stored_plan_once_until_it_changes(app, auth, city, session, monkeypatch):  # noqa: F811
    from sqlalchemy import update
    from srv_fixtures import form_login

    client = TestClient(app)
    made = client.post("/api/v1/plans", json=_task(plan_id="viewed"), headers=auth("reg_samr")).json()
    assert form_login(client, "reg_samr").status_code == 303
    verified: list[int] = []
    real_verify = plan_service.verify_stored_plan
    monkeypatch.setattr(plan_service, "verify_stored_plan", lambda *a, **k: verified.append(1) or real_verify(*a, **k))
    pages = [client.get(f"/regulator/plans/{made['id']}", params=p) for p in ({}, {"v_sort": "uscc"}, {})]
    assert all(p.status_code == 200 and "MATCH" in p.text and "MISMATCH" not in p.text for p in pages)
    assert len(verified) == 1  # parsed and verified once for three views
    api = client.get(f"/api/v1/plans/{made['id']}", headers=auth("reg_samr"))
    assert api.status_code == 200 and len(api.json()["visits"]) == made["plan"]["visits"] and len(verified) == 1
    # a changed stored plan is read and verified anew: the page says MISMATCH at once
    draw = session.scalars(select(Draw).where(Draw.plan_id == made["id"])).one()
    payload = dict(draw.payload)
    payload["plan"] = {**payload["plan"], "draw_seed_hex": "00" * 32}
    session.execute(update(Draw).where(Draw.id == draw.id).values(payload=payload))
    session.commit()
    assert "MISMATCH" in client.get(f"/regulator/plans/{made['id']}").text
    assert len(verified) == 2  # the changed plan verified once more


def hold_the_gil(service_settings, job_id: int) -> None:
    """A job whose work holds the GIL throughout (one C call: no bytecode runs, no switch), then
    ends its job with how long that took."""
    from serving.deps import new_session
    from serving.services import jobs

    t = time.perf_counter()
    sum(range(150_000_000))
    held = time.perf_counter() - t
    session = new_session(service_settings)
    try:
        jobs.end(session, job_id, "succeeded", result={"held_s": held})
    finally:
        session.close()


def _longest_stall(service_settings, session, start) -> tuple[float, float]:
    """Start a GIL-holding job with ``start``; the longest a 10 ms sleep of this process overslept
    meanwhile, and how long the job held its GIL."""
    import threading

    from serving.services import jobs

    job = jobs.queue(session, kind=plan_jobs.KIND, requested_by="reg_samr", department="samr")
    stalls, done = [0.0], threading.Event()

    def watch() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.01)
            now = time.perf_counter()
            stalls[0], last = max(stalls[0], now - last - 0.01), now

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start(service_settings, job.id)
    ended = plan_jobs.wait(service_settings, job.id, every_s=0.05)
    done.set()
    watcher.join()
    assert ended.status == "succeeded", ended.message
    return stalls[0], ended.result["held_s"]


def test_a_job_in_its_own_process_leaves_this_ones_gil_free(settings, session):  # noqa: F811
    """What keeps a worker answering (its event loop, uvicorn's ping thread) while a city's plan
    runs: the same GIL-holding work stalls this process for as long as it runs in a thread, and
    not at all in a process of its own."""
    from serving.services import jobs

    stalled, held = _longest_stall(settings, session, lambda s, job_id: jobs.run_in_thread(
        hold_the_gil, s, job_id, name="hog"))
    assert stalled > 0.5 * held > 0.1, (stalled, held)  # the probe sees a stall when there is one
    stalled, held = _longest_stall(settings, session, lambda s, job_id: jobs.run_in_process(
        s, job_id, f"{__name__}:hold_the_gil"))
    assert held > 0.1 and stalled < 0.5 * held and stalled < 0.5, (stalled, held)
