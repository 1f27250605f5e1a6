"""Background jobs (table ``fit_jobs``, class ``Job``): work that outlives its request — a sector
department's model fit (``sector_fit``), a whole-city inspection plan (``plan_jobs``) — run after
its request has answered, its progress kept in the job's row so that a page or client polls it
from any worker (the state is the database's, not a process's).

Two ways to run: in a thread of the worker (work that lets the GIL go), or in a process of its own
(``run_in_process``: work that holds the GIL for seconds at a time, like a city's draw — in a
thread it would starve the worker's event loop and the ping thread uvicorn's supervisor watches).
Either way the job ends ``succeeded`` or ``failed`` with its message. While the work runs, the
process that runs it beats on the job's row every ``HEARTBEAT_S`` (``heartbeat``: its
``updated_at``), whether the work reports progress or not; a job not heard of for ``STALE_AFTER``
died with its process (shown as interrupted, and its department may start another). A worker
killed together with its job's process (nothing left to mark the job failed) so frees the
department after ``STALE_AFTER``, not after the 15 minutes a job once had to go without progress.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from serving.db.tables import Job

logger = logging.getLogger(__name__)

HEARTBEAT_S = 15.0  # how often the process running a job beats on its row
# a job not heard of for this long died with its process: eight beats, so a beat may wait for a
# GIL-holding stage (a 2 M-subject draw held a sleeping thread up to 33 s) or an SQLite write lock
# (the job's own storing transaction) without the job being taken for dead
STALE_AFTER = dt.timedelta(minutes=2)
ACTIVE = ("queued", "running")
ENDED = ("succeeded", "failed", "interrupted")


def queue(session: Session, **fields: Any) -> Job:
    """A new job row (``queued``, progress 0), committed: its id is what a poller asks for."""
    now = dt.datetime.now(dt.UTC)
    job = Job(status="queued", progress=0.0, stage="queued", created_at=now, updated_at=now, **fields)
    session.add(job)
    session.commit()
    return job


def stale(job: Job, now: dt.datetime | None = None) -> bool:
    """Queued or running, but not heard of for ``STALE_AFTER``: its process died."""
    now = now or dt.datetime.now(dt.UTC)
    return job.status in ACTIVE and now - job.updated_at > STALE_AFTER


def shown_status(job: Job, now: dt.datetime | None = None) -> str:
    """The status a reader is told: ``interrupted`` for a stale job."""
    return "interrupted" if stale(job, now) else job.status


class Progress:
    """``progress(stage, fraction)``: the job's stage and progress (clamped to 0–1), committed at
    once on the job's own session so that pollers see it."""

    def __init__(self, session: Session, job: Job) -> None:
        self.session, self.job = session, job

    def __call__(self, stage: str, fraction: float) -> None:
        job = self.job
        job.stage, job.progress = stage[:200], round(min(max(fraction, 0.0), 1.0), 3)
        job.status, job.updated_at = "running", dt.datetime.now(dt.UTC)
        self.session.commit()


def end(session: Session, job_id: int, status: str, message: str | None = None, **fields: Any) -> None:
    """End the job ``status`` (``succeeded``/``failed``) with ``message`` and ``fields``, after
    rolling back whatever the failed work left in the session."""
    session.rollback()
    job = session.get(Job, job_id)
    if job is None:
        return
    job.status, job.updated_at = status, dt.datetime.now(dt.UTC)
    if status == "succeeded":
        job.progress, job.stage = 1.0, "finished"
    if message is not None:
        job.message = message[:4000]
    for name, value in fields.items():
        setattr(job, name, value)
    session.commit()


def run_in_thread(target: Callable[..., Any], *args: Any, name: str) -> threading.Thread:
    """Run ``target(*args)`` in a daemon thread of this process (the target ends its job)."""
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def run_job_in_thread(settings: Any, job_id: int, target: Callable[..., Any], *args: Any, name: str,
                      heartbeat_s: float = HEARTBEAT_S) -> threading.Thread:
    """Run the job ``job_id``'s work, ``target(settings, job_id, *args)`` (which ends its job), in a
    daemon thread of this process, its ``heartbeat`` beside it while the thread runs."""
    thread = run_in_thread(target, settings, job_id, *args, name=name)
    heartbeat(settings, job_id, heartbeat_s, alive=thread.is_alive)
    return thread


def run_in_process(settings: Any, job_id: int, target: str, heartbeat_s: float = HEARTBEAT_S) -> threading.Thread:
    """Run ``target`` (``"module:function"``, called as ``function(settings, job_id)``) in a fresh
    process (spawned: no copy of the worker's threads, locks or connections) that beats on the
    job's row (``heartbeat``), watched by a thread of this process that only waits for it. A
    process that dies without ending its job (killed, out of memory) leaves the job failed, not
    running; killed with this process, the job is stale ``STALE_AFTER`` after its last beat."""
    process = multiprocessing.get_context("spawn").Process(
        target=_process_main, args=(target, settings, job_id, heartbeat_s), name=f"job-{job_id}", daemon=True)
    process.start()
    return run_in_thread(_watch, settings, job_id, process, name=f"job-{job_id}-watch")


def _process_main(target: str, settings: Any, job_id: int, heartbeat_s: float = HEARTBEAT_S) -> None:
    module, function = target.split(":")
    heartbeat(settings, job_id, heartbeat_s)  # a daemon thread: it ends with this process
    getattr(importlib.import_module(module), function)(settings, job_id)


def heartbeat(settings: Any, job_id: int, every_s: float = HEARTBEAT_S,
              alive: Callable[[], bool] = lambda: True) -> threading.Thread:
    """Beat on the job's row (its ``updated_at``) every ``every_s`` from a daemon thread of this
    process, until the job has ended or ``alive()`` is false (its work's thread ended). A beat
    that fails (an SQLite write lock held past its timeout, a connection lost) is logged and the
    next one tried: a job is taken for dead only after ``STALE_AFTER`` without one."""
    from sqlalchemy import update

    def beat() -> None:
        from serving.deps import new_session

        while True:
            time.sleep(every_s)
            if not alive():
                return
            session = new_session(settings)
            try:
                beaten = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE))
                                         .values(updated_at=dt.datetime.now(dt.UTC))
                                         .execution_options(synchronize_session=False)).rowcount
                session.commit()
            except Exception:  # the next beat may pass; the job itself is not this thread's
                logger.warning("job %s: a heartbeat failed", job_id, exc_info=True)
                beaten = 1
            finally:
                session.close()
            if not beaten:  # the job has ended
                return

    return run_in_thread(beat, name=f"job-{job_id}-heartbeat")


def _watch(settings: Any, job_id: int, process: Any) -> None:
    from serving.deps import new_session

    process.join()
    session = new_session(settings)
    try:
        job = session.get(Job, job_id)
        if job is not None and job.status in ACTIVE:
            logger.error("job %s: its process ended (exit code %s) without ending the job", job_id, process.exitcode)
            end(session, job_id, "failed", f"internal error: the job's process ended (exit code {process.exitcode})")
    finally:
        session.close()
