"""Load the pipeline's outputs (store, grades) into the service database for `tiers demo`.

Subjects and records come from the feature store, so only rows that passed ingestion are
loaded (`serving.services.subjects.load_from_store`: repair and revocation records set the flags
of the records they refer to). Grades come from the grading job's Parquet file. The load is idempotent: rows already present are skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import sessionmaker

from serving.db.migrate import upgrade
from serving.db.session import engine_for
from serving.demo import seed_demo_users
from serving.services.grades import store_grades
from serving.services.subjects import load_from_store, plain_value
from serving.settings import Settings

START_PAGES = {"enterprise": "/credit/{scope}", "regulator": "/regulator", "sector": "/sector",
               "analyst": "/analyst", "admin": "/"}


@dataclass
class Loaded:
    """What the load did: counts, demo accounts with their start pages, and the plan."""

    summary: dict[str, Any] = field(default_factory=dict)
    accounts: list[tuple[str, str, str, str | None, str]] = field(default_factory=list)
    plan_note: str = "not created"


def load_demo(settings: Settings, *, city: Path, store: Path, grades: Path, as_of: str, seed: int,
              sector_section: str | None = None) -> Loaded:
    """Migrate the database, load subjects, records and grades, seed the demo accounts (the sector
    account for ``sector_section``, else the enterprise account's section)."""
    from features.store import read_latest

    upgrade(settings.database_url)
    session_factory = sessionmaker(engine_for(settings.database_url), expire_on_commit=False)
    as_of_date = dt.date.fromisoformat(as_of)
    loaded = Loaded()
    subjects = read_latest(store, "subjects")
    records = read_latest(store, "records")
    graded = pd.read_parquet(grades)
    with session_factory() as session:
        n_subjects = load_from_store(session, subjects, records, as_of=as_of_date)

        grade_rows = []
        for row in graded.to_dict("records"):
            row = {k: plain_value(v) for k, v in row.items()}
            for key in ("reasons", "what_if"):
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
            grade_rows.append(row)
        n_grades = store_grades(session, grade_rows)

        # The enterprise demo account gets a subject whose page has something to explain.
        # (preferably one with a what-if, so the page shows what the enterprise can do about it)
        has_what_if = graded["what_if"].astype(str).ne("[]") if "what_if" in graded else False
        worst = graded.assign(has_what_if=has_what_if).sort_values(
            ["has_what_if", "grade", "probability"], ascending=[False, False, False])
        enterprise_uscc = str(worst["uscc"].iloc[0]) if len(worst) else None
        accounts = seed_demo_users(session, settings, enterprise_uscc=enterprise_uscc, sector_section=sector_section)
        loaded.accounts = [(u, p, role, scope, START_PAGES[role].format(scope=scope))
                           for u, p, role, scope in accounts]
        loaded.plan_note = _demo_plan(session, settings, city=city, as_of=as_of_date, seed=seed)
    loaded.summary = {"subjects": n_subjects, "records": len(records), "graded": n_grades,
                      "grade_shares": graded["grade"].value_counts(normalize=True).round(3).to_dict()}
    return loaded


def _demo_plan(session: Any, settings: Settings, *, city: Path, as_of: dt.date, seed: int) -> str:
    """Create one committed, verifiable inspection plan for market supervision, if the service has one."""
    try:
        from serving.services.plans import create_demo_plan
    except ImportError:
        return "not created (the plan service is not available)"
    return create_demo_plan(session, settings, city=city, as_of=as_of, seed=seed)
