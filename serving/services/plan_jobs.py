"""An inspection plan made in the background (issue 22: a whole-city pool, 2 M subjects, took
143 s inside its request and held the worker's GIL for seconds at a time).

Every check a request can fail (rate, departments, the body, a unique plan id, an open period,
grades of the date, the policy) runs at once, before anything is queued, with the same refusals
as before (``checked_request``). The rest — reading the pool, building it, the commitment, the
draw, storing the plan — runs as a job (``serving.services.jobs``, kind ``plan``) in a process of
its own, its stage and progress in the job's row; it ends with the plan's id, or failed with its
reason (the plan's transaction rolled back: no half plan).

``POST /plans`` keeps its contract: a city of at most ``Settings.plan_inline_subjects`` subjects
is planned inside the request; a bigger one through the same job, the request waiting for it
without holding the worker (``wait``), so no worker timeout needs raising.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.db.tables import Draw, Job, Plan, Subject
from serving.errors import Conflict, NotAllowed, NotFound, ServiceError, human_message
from serving.i18n import page_text
from serving.schemas import PlanCommitIn, PlanCreateIn
from serving.security import Principal
from serving.services import jobs
from serving.services import plans as plan_service
from serving.services.access import CITY_WIDE_DEPARTMENTS

logger = logging.getLogger(__name__)

KIND = "plan"
FORMS = {"v1": PlanCreateIn, "v2": PlanCommitIn}  # drawn at once (POST /plans), or committed (POST /plans/v2)
# the job's stages as ``progress`` reports them, with the share of the work done when each starts
STAGES = ("queued", "reading", "pools", "commitment", "drawing", "storing", "finished")
RUN_IN_PROCESS = True  # tests of the job's bookkeeping may run it in a thread (no process start)
_READ_SHARE = 0.3  # of the job: reading the subjects and grades (measured: ≈ a third at 250 k)


def check_departments(principal: Principal, body: Any) -> None:
    """A department plans its own items; market supervision (city-wide) also coordinates joint plans."""
    departments = {t.department for t in body.tasks}
    own = principal.department
    if own not in departments or (own not in CITY_WIDE_DEPARTMENTS and departments != {own}):
        raise NotAllowed(f"tasks name departments {sorted(departments)}; a regulator of {own!r} may plan only "
                         "its own items (joint plans are coordinated by market supervision)", field="tasks")


def check_unique(session: Session, plan_id: str, department: str, job_id: int | None = None) -> None:
    """A plan id is unique per department: among its plans and its plan jobs under way (other
    than ``job_id``: the job asking)."""
    existing = session.query(Plan).filter(Plan.name == plan_id, Plan.department == department).first()
    if existing is not None:
        raise Conflict(f"plan_id {plan_id!r} already exists in department {department!r} "
                       f"(plan #{existing.id}); rule: unique per department", field="plan_id")
    for job in session.scalars(select(Job).where(Job.kind == KIND, Job.department == department,
                                                 Job.status.in_(jobs.ACTIVE))):
        if job.id != job_id and (job.request or {}).get("body", {}).get("plan_id") == plan_id and not jobs.stale(job):
            raise Conflict(f"plan_id {plan_id!r} is being made in department {department!r} (job {job.id}); "
                           "rule: unique per department", field="plan_id")


def checked_request(session: Session, settings: Any, principal: Principal, body: PlanCreateIn,
                    today: dt.date) -> None:
    """Every check a new plan passes before its pool is read (each a refusal of its own, at once)."""
    from supervision.plan import PlanCreate

    plan_service.check_plan_rate(session, principal, settings.plans_per_hour)  # first: failing requests count too
    check_departments(principal, body)
    request = PlanCreate.model_validate(body.model_dump(exclude={"pool_filter", "salt_source", "salt_pattern",
                                                                 "policy"}))
    check_unique(session, body.plan_id, principal.department or "")
    plan_service.check_period_open(request, today)
    plan_service.check_grades_exist(session, body.as_of)
    plan_service.load_named_policy(body.policy)
    plan_service.load_scheduler_tables(settings.data_dir)  # small files: a missing one is a 503 now, not a job's


def make_plan(session: Session, settings: Any, principal: Principal, body: PlanCreateIn, today: dt.date,
              progress: Callable[[str, float], None] | None = None, job_id: int | None = None
              ) -> tuple[Plan, Draw]:
    """Read the pool and make the plan ``body`` asks for (drawn, or a v2 commitment), in one
    transaction; ``progress(stage, fraction of the whole)``; ``job_id``: the job making it."""
    from supervision.plan import PlanCreate

    say = progress or (lambda stage, fraction: None)
    say("reading", 0.02)
    request = PlanCreate.model_validate(body.model_dump(exclude={"pool_filter", "salt_source", "salt_pattern",
                                                                 "policy"}))
    pool_filter = body.pool_filter.model_dump(exclude_none=True) if body.pool_filter else {}
    # the pool: subjects every department of the plan may read (never more than they could
    # read through the subject endpoints)
    inputs = plan_service.plan_inputs(session, settings.data_dir, body.as_of,
                                      district_codes=pool_filter.get("district_codes"),
                                      industries=pool_filter.get("industries"),
                                      readable_by=plan_service.department_principals(
                                          t.department for t in body.tasks))
    check_unique(session, body.plan_id, principal.department or "", job_id)  # again: another may have been made

    def stage(name: str, fraction: float) -> None:
        say(name, _READ_SHARE + (1 - _READ_SHARE) * fraction)

    common = {"department": principal.department or "", "created_by": principal.username,
              "pool_filter": pool_filter, "created_on": today, "progress": stage}
    if isinstance(body, PlanCommitIn):
        return plan_service.commit_v2_plan(session, request, inputs, body.policy, salt_source=body.salt_source,
                                           salt_pattern=body.salt_pattern or plan_service.TYPED_SALT_PATTERN,
                                           **common)
    return plan_service.create_drawn_plan(session, request, inputs, plan_service.load_named_policy(body.policy),
                                          **common)


def runs_inline(session: Session, settings: Any) -> bool:
    """Whether a plan is small enough to make inside its request: the city (an upper bound of any
    pool) holds at most ``plan_inline_subjects`` subjects."""
    return session.scalar(select(func.count()).select_from(Subject)) <= settings.plan_inline_subjects


def start(session: Session, settings: Any, principal: Principal, body: PlanCreateIn, today: dt.date) -> Job:
    """Queue the plan ``body`` asks for (its checks passed: ``checked_request``) and start it in a
    process of its own; one plan job per department at a time (409 while one runs: a city's
    plan holds ≈ 2 GB at 2 M subjects)."""
    busy = [j for j in session.scalars(select(Job).where(Job.kind == KIND, Job.department == principal.department,
                                                         Job.status.in_(jobs.ACTIVE))) if not jobs.stale(j)]
    if busy:
        raise Conflict(f"a plan of department {principal.department!r} is being made (job {busy[0].id}); rule: one "
                       "plan job per department at a time", field="plan_id",
                       zh=f"本部门已有计划正在生成（任务 #{busy[0].id}），请等待其完成后再提交。")
    form = "v2" if isinstance(body, PlanCommitIn) else "v1"
    job = jobs.queue(session, kind=KIND, requested_by=principal.username, department=principal.department,
                     request={"form": form, "body": body.model_dump(mode="json"), "today": today.isoformat()})
    if RUN_IN_PROCESS:
        jobs.run_in_process(settings, job.id, f"{__name__}:run")
    else:
        jobs.run_job_in_thread(settings, job.id, run, name=f"plan-job-{job.id}")
    return job


def run(settings: Any, job_id: int) -> None:
    """The job: the plan, or failed with the reason (a refusal's own Chinese sentence)."""
    from serving.deps import new_session

    session = new_session(settings)
    try:
        job = session.get(Job, job_id)
        report = jobs.Progress(session, job)
        body = FORMS[job.request["form"]].model_validate(job.request["body"])
        principal = Principal(username=job.requested_by, role="regulator", department=job.department)
        today = dt.date.fromisoformat(job.request["today"])
        plan_row, _ = make_plan(session, settings, principal, body, today, progress=report, job_id=job_id)
        jobs.end(session, job_id, "succeeded", plan_id=plan_row.id)
    except ServiceError as exc:
        jobs.end(session, job_id, "failed", human_message(exc.code, exc.message, status=exc.status_code, zh=exc.zh),
                 result={"error": {"code": exc.code, "status": exc.status_code, "message": exc.message,
                                   "field": exc.field, "zh": exc.zh}})
    except Exception as exc:  # the job must end, whatever happened
        logger.exception("plan job %s failed", job_id)
        jobs.end(session, job_id, "failed", f"internal error: {type(exc).__name__}")
    finally:
        session.close()


def wait(settings: Any, job_id: int, every_s: float = 0.25) -> Job:
    """The job once it has ended (polled on sessions of its own: the waiting thread holds no
    connection or GIL between looks)."""
    from serving.deps import new_session

    while True:
        session = new_session(settings)
        try:
            job = session.get(Job, job_id)
            if job is None or job.status not in jobs.ACTIVE or jobs.stale(job):
                session.expunge_all()
                return job
        finally:
            session.close()
        time.sleep(every_s)


def error_of(job: Job) -> ServiceError:
    """The refusal a failed job ended with, as the error it was (same status, code, field and
    Chinese sentence); an internal failure as a 500's."""
    stored = (job.result or {}).get("error")
    if not stored:
        return _InternalJobError(f"plan job {job.id} failed: {job.message or 'interrupted'}")
    kind = next((c for c in _error_classes() if c.code == stored["code"] and c.status_code == stored["status"]),
                ServiceError)
    error = kind(stored["message"], field=stored.get("field"), zh=stored.get("zh"))
    if kind is ServiceError:
        error.status_code, error.code = stored["status"], stored["code"]
    return error


class _InternalJobError(ServiceError):
    status_code = 500
    code = "internal_error"


def _error_classes() -> list[type[ServiceError]]:
    found, todo = [], [ServiceError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def get_job(session: Session, principal: Principal, job_id: int) -> Job:
    """A plan job of the principal's department (a regulator's); any other answers 404, as a
    plan of another department does (no existence oracle)."""
    job = session.get(Job, job_id)
    if job is None or job.kind != KIND or principal.role != "regulator" or job.department != principal.department:
        raise NotFound(f"no plan job {job_id} of your department", field="job_id")
    return job


def job_view(job: Job, lang: str = "zh", now: dt.datetime | None = None) -> dict[str, Any]:
    """What the API answers and the progress page shows of a job, its words in ``lang``."""
    status = jobs.shown_status(job, now)
    say = lambda key: page_text("plan_jobs", key, lang)  # noqa: E731
    stage = job.stage if job.stage in STAGES else "queued"
    out: dict[str, Any] = {"job_id": job.id, "status": status, "status_text": say(f"status_{status}"),
                           "progress": job.progress, "percent": round(100 * job.progress),
                           "stage": say(f"stage_{stage}"), "plan_name": (job.request or {}).get("body", {}).get(
                               "plan_id", ""),
                           "done": status in jobs.ENDED, "created_at": job.created_at.isoformat(),
                           "updated_at": job.updated_at.isoformat(), "plan_id": None, "plan_url": None,
                           "api_plan_url": None, "message": None}
    if status == "succeeded" and job.plan_id:
        out.update(plan_id=job.plan_id, plan_url=f"/regulator/plans/{job.plan_id}",
                   api_plan_url=f"/api/v1/plans/{job.plan_id}")
    if status == "failed":
        internal = (job.message or "").startswith("internal error")
        out["message"] = say("failed_because").format(message=say("internal") if internal else job.message or "")
    if status == "interrupted":
        out["message"] = say("interrupted")
    return out
