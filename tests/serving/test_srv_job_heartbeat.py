"""A job's heartbeat (``serving.services.jobs``): a worker killed together with its plan job's
process left the job ``running``, and the department could start no other plan until the job
was 15 minutes old without progress. The process that runs a job now beats on its row while the
work runs, whether the work reports progress or not, so a job not heard of for ``STALE_AFTER``
(a few beats) died with its process."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import time

from serving.db.tables import Job
from serving.services import jobs, plan_jobs


def silent_for_a_while(service_settings, job_id: int) -> None:
    """A job whose work reports no progress for 60 s (a long stage of a city's plan)."""
    time.sleep(60)


def _job_row(session, job_id: int) -> Job:
    session.expire_all()
    return session.get(Job, job_id)


def _beats(session, job_id: int, since: dt.datetime, timeout_s: float = 90) -> dt.datetime:
    """The job's ``updated_at`` once it is later than ``since`` (the job's process started and beat)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = _job_row(session, job_id).updated_at
        if seen > since:
            return seen
        session.rollback()
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not beat in {timeout_s} s")


def test_a_plan_jobs_process_killed_with_its_worker_frees_the_department_within_minutes(settings, session):
    assert dt.timedelta(minutes=3) >= jobs.STALE_AFTER and 4 * dt.timedelta(seconds=jobs.HEARTBEAT_S) <= jobs.STALE_AFTER
    job = jobs.queue(session, kind=plan_jobs.KIND, requested_by="reg_samr", department="samr",
                     request={"body": {"plan_id": "p"}})
    queued = job.updated_at
    # the job's process as ``run_in_process`` starts it, without the worker's thread that watches it
    # (the worker is killed with it), beating every 0.2 s
    process = multiprocessing.get_context("spawn").Process(
        target=jobs._process_main, args=(f"{__name__}:silent_for_a_while", settings, job.id, 0.2), daemon=True)
    process.start()
    try:
        first = _beats(session, job.id, queued)
        second = _beats(session, job.id, first, timeout_s=10)  # it keeps beating with no progress reported
        assert not jobs.stale(_job_row(session, job.id), now=second + dt.timedelta(seconds=1))
    finally:
        process.kill()
        process.join()
    last = _job_row(session, job.id)
    assert last.status == "running" or last.status == "queued"
    # not heard of for STALE_AFTER: interrupted, and the department may plan again
    later = last.updated_at + jobs.STALE_AFTER + dt.timedelta(seconds=1)
    assert jobs.stale(last, now=later) and jobs.shown_status(last, later) == "interrupted"


def test_a_job_in_a_thread_beats_until_it_ends_and_then_stops(settings, session):
    job = jobs.queue(session, kind=plan_jobs.KIND, requested_by="reg_samr", department="samr")
    release = threading.Event()

    def work(service_settings, job_id: int) -> None:
        from serving.deps import new_session

        release.wait(30)
        s = new_session(service_settings)
        try:
            jobs.end(s, job_id, "succeeded")
        finally:
            s.close()

    thread = jobs.run_job_in_thread(settings, job.id, work, name="silent", heartbeat_s=0.1)
    first = _beats(session, job.id, job.updated_at, timeout_s=10)
    _beats(session, job.id, first, timeout_s=10)
    release.set()
    thread.join(10)
    time.sleep(0.5)  # beats after the end would move updated_at
    ended = _job_row(session, job.id)
    assert ended.status == "succeeded"
    time.sleep(0.5)
    assert _job_row(session, job.id).updated_at == ended.updated_at
    assert not [t for t in threading.enumerate() if t.name == f"job-{job.id}-heartbeat"]
