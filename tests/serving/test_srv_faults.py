"""Crash faults on a real ``uvicorn`` process: SIGKILL in the middle of a write leaves no partial state.

A small app factory (written to ``tmp_path``) stalls the operation at its most dangerous point —
inside the open transaction, after some rows are already written — and signals it through a
marker file; the test then SIGKILLs the server and reads the database left behind.

(Editing a query-log entry is detected by ``test_srv_querylog.test_chain_detects_an_edited_entry``.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from srv_fixtures import add_subjects, make_uscc, principal

from serving.db.session import dispose_engine, iter_session
from serving.db.tables import Draw, Grade, Objection, Plan, Record
from serving.security import create_access_token
from serving.services.grades import store_grades

pytestmark = pytest.mark.slow

SECRET = "fault-test-secret-" + "k" * 32

# Stalls (after writing marker) at the points where a crash would hurt most:
# - plan creation: the Plan row is flushed inside the transaction, its Draw not yet;
# - objection decision: the revoked record version and the stale grades are flushed, the
#   objection's status not yet.
FACTORY = '''
import os, time
from pathlib import Path
from sqlalchemy import event
from sqlalchemy.orm import Session
from serving.app import create_app as _create_app
from serving.db.tables import Plan
from serving.services.grades import mark_grades_stale

MARKER = Path(os.environ["FAULT_MARKER"])

def _stall(what):
    MARKER.write_text(what)
    time.sleep(600)

@event.listens_for(Session, "after_flush")
def _stall_after_plan_row(session, _context):
    if any(isinstance(obj, Plan) for obj in session.new):
        _stall("plan row written, draw not yet")

def _slow_regrader(session, uscc, reason):
    mark_grades_stale(session, uscc, reason)
    session.flush()
    _stall("record version and regrade written, decision not yet")

def create_app():
    return _create_app(regrader=_slow_regrader)
'''

ITEMS = ("item_code,department,name_zh,name_en,key_item,industries\n"
         "SAMR-03,samr,企业信息公示情况检查,Annual-report publicity,false,\n")
INSPECTORS = "inspector_id,name,department,district_code,qualified_items,capacity\n" + "".join(
    f"INS{n:06d},检查员{n},samr,32010{2 + n % 2},SAMR-03,20\n" for n in range(4))
AS_OF = "2026-09-30"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _token(username: str) -> dict[str, str]:
    token, _ = create_access_token(principal(username), SECRET, 30)
    return {"Authorization": f"Bearer {token}"}


class Server:
    """One uvicorn worker on the test database, running the stalling factory."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        (tmp_path / "fault_app.py").write_text(FACTORY, encoding="utf-8")
        self.marker = tmp_path / "stalled.txt"
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TIERS_DATABASE_URL": database_url, "TIERS_JWT_SECRET": SECRET,
               "TIERS_RUN_MIGRATIONS_ON_STARTUP": "false", "TIERS_DATA_DIR": str(tmp_path / "data"),
               "FAULT_MARKER": str(self.marker),
               "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fault_app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"], env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"uvicorn exited with {self.process.returncode}"
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError("uvicorn did not start within 60 s")

    def kill_when_stalled(self, send) -> str:
        """Start ``send()`` in the background, SIGKILL the server once it stalls mid-transaction."""
        import threading

        outcome: list[object] = []
        thread = threading.Thread(target=lambda: outcome.append(_swallow(send)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not self.marker.exists():
            assert time.monotonic() < deadline, f"the operation never reached its stall point: {outcome}"
            assert thread.is_alive() or self.marker.exists(), f"finished without stalling: {outcome}"
            time.sleep(0.05)
        stalled_at = self.marker.read_text()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        thread.join(timeout=10)
        assert outcome and isinstance(outcome[0], httpx.HTTPError), f"the client got an answer: {outcome}"
        return stalled_at

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def _reopened(database_url: str):
    """A new session on what the killed server left (the test's own session was closed before it started)."""
    after = next(iter_session(database_url))
    try:
        yield after
    finally:
        after.close()


def _swallow(send):
    try:
        return send()
    except httpx.HTTPError as exc:
        return exc


def _count(session, column) -> int:
    session.expire_all()
    return session.scalar(select(func.count(column))) or 0


def test_kill_during_plan_creation_stores_no_plan_and_no_draw(database_url, tmp_path, session):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "items.csv").write_text(ITEMS, encoding="utf-8")
    (data_dir / "inspectors.csv").write_text(INSPECTORS, encoding="utf-8")
    (data_dir / "conflicts.csv").write_text("inspector_id,uscc,reason\n", encoding="utf-8")
    subjects = [dict(uscc=make_uscc(f"91320102MA{n:07d}"), name=f"南京测试{n}有限公司", industry="C",
                     district_code="320102", district_name="玄武区", registered_on="2015-03-01") for n in range(12)]
    add_subjects(session, subjects)
    store_grades(session, [dict(uscc=s["uscc"], as_of=AS_OF, score=700.0, grade="ABCD"[n % 4], probability=0.05,
                                model_version="general-v3", profile_hash="c" * 64) for n, s in enumerate(subjects)])
    session.close()
    dispose_engine(database_url)
    # the server's own clock: a plan's period may not have ended before the plan is made
    start = max(dt.datetime.now(dt.UTC).date(), dt.date(2026, 12, 1))
    task = {"plan_id": "2026Q4-crash", "period_start": start.isoformat(),
            "period_end": (start + dt.timedelta(days=30)).isoformat(), "as_of": AS_OF,
            "tasks": [{"department": "samr", "item": "SAMR-03"}]}

    with Server(database_url, tmp_path) as srv:
        stalled_at = srv.kill_when_stalled(
            lambda: httpx.post(f"{srv.base}/api/v1/plans", json=task, headers=_token("reg_samr"), timeout=60))

    assert stalled_at.startswith("plan row written")
    with _reopened(database_url) as after:
        # all or nothing: the flushed plan row died with its transaction
        assert _count(after, Plan.id) == 0 and _count(after, Draw.id) == 0


def test_kill_during_objection_decision_changes_nothing(database_url, tmp_path, session, world):
    (tmp_path / "data").mkdir()
    session.close()
    dispose_engine(database_url)
    with Server(database_url, tmp_path) as srv:
        filed = httpx.post(f"{srv.base}/api/v1/subjects/{world.ent1}/objections", headers=_token("ent1"),
                           json={"record_id": "R1", "reason": "处罚决定已被法院撤销, 请更正"}, timeout=30)
        assert filed.status_code == 201, filed.text
        objection_id = filed.json()["id"]
        stalled_at = srv.kill_when_stalled(lambda: httpx.post(
            f"{srv.base}/api/v1/regulator/objections/{objection_id}/decision", headers=_token("reg_samr"),
            json={"decision": "upheld", "reason": "法院已撤销"}, timeout=60))

    assert stalled_at.startswith("record version and regrade written")
    with _reopened(database_url) as after:
        objection = after.get(Objection, objection_id)
        assert objection.status == "pending" and objection.decided_by is None
        versions = after.scalars(select(Record).where(Record.record_id == "R1")).all()
        assert len(versions) == 1 and versions[0].is_current  # no revoked version was kept
        assert not any(g.stale for g in after.scalars(select(Grade).where(Grade.uscc == world.ent1)))


def test_service_restarts_on_the_killed_database(database_url, tmp_path, session, world):
    """After a SIGKILL the database opens cleanly and the next server serves grades again."""
    (tmp_path / "data").mkdir()
    session.close()
    dispose_engine(database_url)
    first = Server(database_url, tmp_path)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    with Server(database_url, tmp_path) as second:
        r = httpx.get(f"{second.base}/api/v1/subjects/{world.ent1}/grade", params={"purpose": "复核"},
                      headers=_token("reg_samr"), timeout=30)
        assert r.status_code == 200 and r.json()["grade"] == "C"
        assert httpx.get(f"{second.base}/health", timeout=30).json()["status"] == "ok"
