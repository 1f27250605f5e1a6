"""Seed data and helpers of the service tests (a uniquely named module: several test packages
have a `conftest.py`, so tests must not `import conftest`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from uuid import uuid4

import httpx
import pandas as pd
from stdnum.cn import uscc as stdnum_uscc

from serving.db.session import iter_session
from serving.db.tables import User
from serving.schemas import UserCreate
from serving.security import Principal, hash_password
from serving.services.bulk import load_subjects
from serving.services.grades import store_grades
from serving.services.subjects import store_records

TODAY = dt.date(2026, 11, 23)  # a Monday
PASSWORD = "correct-horse-battery"


@lru_cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


def add_subjects(session, rows: list[dict]) -> int:
    """Store subject rows as the service loads subjects (``serving.services.bulk.load_subjects``), on
    the session's database; every row must be accepted. Returns how many were stored.

    The session's pending writes are committed first (the load writes on a connection of its own)
    and its objects expired after, so it reads what the load wrote."""
    session.commit()
    report = load_subjects(session.get_bind(), [pd.DataFrame(rows)], load_id=f"test-subjects:{uuid4().hex}")
    assert report.rejected == 0, dict(report.reasons)
    session.expire_all()
    return report.stored


def make_uscc(body: str) -> str:
    """A valid USCC from its first 17 characters."""
    return body + stdnum_uscc.calc_check_digit(body)


ENT1 = make_uscc("91320102MA1AAAAA1")  # manufacturing (C), records from samr and tax
ENT2 = make_uscc("91320104MA1BBBBB2")  # construction (F), records from ecology
ENT3 = make_uscc("A1320105MA1CCCCC3")  # first char A: stdnum rejects it, we must not


@dataclass(frozen=True)
class World:
    ent1: str = ENT1
    ent2: str = ENT2
    ent3: str = ENT3


USERS = {
    "ent1": dict(role="enterprise", uscc=ENT1),
    "ent2": dict(role="enterprise", uscc=ENT2),
    "reg_samr": dict(role="regulator", department="samr"),
    "reg_samr2": dict(role="regulator", department="samr"),
    "reg_tax": dict(role="regulator", department="tax"),
    "reg_eco": dict(role="regulator", department="ecology"),
    "sector_c": dict(role="sector", section="C"),
    "analyst": dict(role="analyst"),
    "admin": dict(role="admin"),
}


def _subjects() -> list[dict]:
    return [
        dict(uscc=ENT1, name="南京甲制造有限公司", industry="C", district_code="320102", district_name="玄武区", registered_on="2015-03-01",
             legal_rep_name="张三丰", legal_rep_id="320102198001011234"),
        dict(uscc=ENT2, name="南京乙建筑有限公司", industry="F", district_code="320104", district_name="秦淮区", registered_on="2016-04-01",
             legal_rep_name="李四", legal_rep_id="320104199002023456"),
        dict(uscc=ENT3, name="南京丙社会组织", industry="S", district_code="320105", district_name="建邺区", registered_on="2010-05-01",
             legal_rep_name="王五", legal_rep_id="32010519850303789X"),
    ]


def _records() -> list[dict]:
    return [
        dict(record_id="R1", uscc=ENT1, kind="admin_penalty", severity="general", decision_date="2026-03-10",
             publicity_end="2027-03-10", amount=5000, department="samr", document_no="宁市监罚〔2026〕12号",
             description="未按规定公示年度报告"),
        dict(record_id="R2", uscc=ENT1, kind="admin_penalty", severity="serious", decision_date="2026-06-01",
             publicity_end="2029-06-01", amount=200000, department="samr", document_no="宁市监罚〔2026〕88号"),
        dict(record_id="R3", uscc=ENT1, kind="arrears", subkind="tax", decision_date="2026-02-01", amount=1200,
             department="tax"),
        dict(record_id="R4", uscc=ENT2, kind="admin_penalty", severity="general", decision_date="2025-01-05",
             publicity_end="2026-01-05", amount=3000, department="ecology", document_no="宁环罚〔2025〕3号"),
    ]


def _grades() -> list[dict]:
    reasons = [
        dict(code="penalty_serious_12m", label_zh="近12个月严重行政处罚", label_en="Serious penalty, last 12 months",
             contribution=-60.0, value=1, record_ids=["R2"]),
        dict(code="penalty_general_12m", label_zh="近12个月一般行政处罚", label_en="General penalty, last 12 months",
             contribution=-25.0, value=1, record_ids=["R1"]),
        dict(code="tax_arrears", label_zh="欠缴税款", label_en="Tax arrears", contribution=-10.0, value=1200,
             record_ids=["R3"]),
        dict(code="age", label_zh="成立年限", label_en="Years since registration", contribution=15.0, value=8),
    ]
    what_if = [dict(action="repair", label_zh="修复记录 R1 后", label_en="After repairing R1", record_id="R1",
                    score=665.0, grade="B")]
    return [
        dict(uscc=ENT1, as_of="2026-09-30", score=640.0, grade="C", probability=0.21, model_version="general-v3",
             profile_hash="a" * 64, base_score=720.0, reasons=reasons, what_if=what_if),
        dict(uscc=ENT2, as_of="2026-09-30", score=760.0, grade="A", probability=0.02, model_version="general-v3",
             profile_hash="b" * 64, base_score=720.0, reasons=[]),
    ]


def seed(database_url: str) -> None:
    session = next(iter_session(database_url))
    try:
        add_subjects(session, _subjects())
        store_records(session, _records())
        store_grades(session, _grades())
        # one argon2 hash shared by every seeded user keeps per-test seeding fast (PostgreSQL mode)
        for username, scope in USERS.items():
            UserCreate(username=username, password=PASSWORD, **scope)  # same validation as create_user
            session.add(User(username=username, password_hash=_password_hash(), active=True, **scope))
        session.commit()
    finally:
        session.close()


def seeded_template(directory: Path) -> Path:
    """``directory/template.db``: an SQLite database migrated to head and seeded (tests copy it)."""
    from serving.db.migrate import upgrade
    from serving.db.session import dispose_engine

    path = directory / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    seed(url)
    dispose_engine(url)
    return path


def app_on(settings):
    """The service on ``settings`` with the tests' calendar: today is ``TODAY``."""
    from serving.app import create_app
    from serving.deps import get_today

    application = create_app(settings)
    application.dependency_overrides[get_today] = lambda: TODAY
    return application


def principal(username: str) -> Principal:
    scope = USERS[username]
    return Principal(username=username, role=scope["role"], department=scope.get("department"),
                     section=scope.get("section"), uscc=scope.get("uscc"))


@contextmanager
def uvicorn_server(log_dir: Path, database_url: str, **env: str) -> Iterator[str]:
    """A real uvicorn on a free loopback port, serving ``create_app`` on ``database_url``; yields
    its base URL. Waits up to ~60 s for /health: the app imports pandas and the scheduler, and CI
    machines are busy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # its own keys (and so its own query-log checkpoints) beside its log, never the checkout's var/keys:
    # servers of other modules on other databases wrote checkpoints there that this log cannot match
    full_env = {**os.environ, "TIERS_DATABASE_URL": database_url, "TIERS_RUN_MIGRATIONS_ON_STARTUP": "false",
                "TIERS_KEYS_DIR": str(log_dir / "keys"), **env}
    log_path = log_dir / "uvicorn.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory",
                                 "--host", "127.0.0.1", "--port", str(port)], env=full_env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/health", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("uvicorn did not start: " + log_path.read_text())
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def form_login(client, username: str, password: str = PASSWORD, **kwargs):
    """Log in through the login form as a browser does: fetch the form (its CSRF cookie and token),
    then post it. Returns the POST's response (303 to the start page on success)."""
    import re

    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=False, **kwargs)


def database_copy(template: Path | None, tmp_path_factory, name: str) -> tuple[Path, str]:
    """A directory of its own holding a copy of the seeded template database, and its URL
    (a module's world, browser tests among them, skips on other databases: the template is SQLite's)."""
    import shutil

    import pytest

    if template is None:
        pytest.skip("module-wide worlds (browser tests among them) run on a copy of the SQLite template")
    tmp_path = tmp_path_factory.mktemp(name)
    shutil.copy(template, tmp_path / "tiers.db")
    return tmp_path, f"sqlite:///{tmp_path / 'tiers.db'}"


def keyed_copy(template: Path | None, tmp_path_factory, name: str):
    """``database_copy`` with the service's settings for it (its own keys and MLflow store) and the
    query log's keys registered for its URL: a module's app and sessions on the seeded city.
    Returns (directory, url, settings)."""
    from serving.keys import with_keys
    from serving.services.querylog import LogKeys, use_keys
    from serving.settings import Settings

    tmp_path, url = database_copy(template, tmp_path_factory, name)
    settings = with_keys(Settings(database_url=url, run_migrations_on_startup=False, data_dir=url,
                                  mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", keys_dir=tmp_path / "keys"))
    use_keys(url, LogKeys.of(settings))
    return tmp_path, url, settings
