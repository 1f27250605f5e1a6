"""Inspection plans and their verifiable draws, as stored by the service.

The draw itself is computed by ``supervision/``; this module loads its inputs and persists what it
returns: a plan and its draw are written in one transaction (no plan without its commitment).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from serving.db.tables import (
    Draw,
    Grade,
    InspectionResult,
    Plan,
    Record,
    Subject,
)
from serving.errors import Conflict, InvalidInput, NotAllowed, NotFound, ServiceError
from serving.gc_pause import collections_paused
from serving.schemas import RecordIn
from serving.security import Principal
from serving.services.subjects import store_records

if TYPE_CHECKING:
    from supervision.inspection_policy import InspectionPolicy
    from supervision.plan import InspectionPlan, PlanCreate, PlanInputs, PlanVerification, PreparedPools
    from supervision.ratios import InspectionRatiosOut

_RECORD_IN_FIELDS = frozenset(RecordIn.model_fields)


# --------------------------------------------------------------------------- scheduler wiring
#
# The draw is computed by ``supervision/``; what follows loads its inputs (subjects and grades
# from the DB; items, inspectors and conflicts from the simulator's files in
# ``settings.data_dir``), stores a committed-then-drawn plan in one transaction, and turns
# results into ``inspection`` records.

SCHEDULER_FILES = ("items", "inspectors", "conflicts")
SUFFIXES = (".csv", ".parquet", ".jsonl")


class PlanDataUnavailable(ServiceError):
    """The scheduler's input files (items, inspectors, conflicts) are missing or unreadable."""

    status_code = 503
    code = "plan_data_unavailable"


def load_scheduler_tables(data_dir: str | Path) -> dict[str, pd.DataFrame]:
    """``items``, ``inspectors`` and (optional) ``conflicts`` from ``data_dir`` as the simulator
    writes them (``<name>.csv|parquet|jsonl``, docs/data-contract.md)."""
    from supervision.tables import TableError, read_table

    base = Path(data_dir)
    tables: dict[str, pd.DataFrame] = {}
    for name in SCHEDULER_FILES:
        path = next((base / f"{name}{s}" for s in SUFFIXES if (base / f"{name}{s}").is_file()), None)
        if path is None:
            if name == "conflicts":  # no declared conflicts is a valid state
                continue
            raise PlanDataUnavailable(f"{name}: no {name}.csv/.parquet/.jsonl in the data directory "
                                      f"{base}; rule: run `tiers simulate --out` there or copy the file",
                                      field=name)
        try:
            tables[name] = read_table(path, name)
        except TableError as exc:
            raise PlanDataUnavailable(str(exc), field=name) from exc
    return tables


def subjects_frame(session: Session, readable_by: Sequence[Principal] = ()) -> pd.DataFrame:
    """Every subject in the DB with the columns the scheduler reads; with ``readable_by``, only
    the subjects every one of those principals may read (``access.coverage_clause``)."""
    from serving.services.access import coverage_clause

    # Core execution on the session's connection: plain tuples, no ORM row loading (5× faster
    # for the whole subjects table; the plan never needs ORM objects here).
    columns = ["uscc", "name", "legal_form", "industry", "district_code", "district_name", "status"]
    result = session.connection().execute(select(Subject.uscc, Subject.name, Subject.legal_form, Subject.industry,
                                                 Subject.district_code, Subject.district_name, Subject.status)
                                          .where(*(coverage_clause(p) for p in readable_by)))
    return _frame_in_chunks(result, columns).fillna("")


def _frame_in_chunks(result: Any, columns: Sequence[str], chunk: int = 50_000) -> pd.DataFrame:
    """The rows of ``result`` as a frame of object columns, built a chunk at a time: a city's two
    million rows never exist as row objects all at once, and no single call holds the interpreter
    for long (uvicorn's supervisor kills a worker that does not answer its ping within 5 s, and
    the ping needs the GIL). Repeated values (grades, models, districts) share one string."""
    parts: list[list[np.ndarray]] = [[] for _ in columns]
    shared: dict[Any, Any] = {}
    while rows := result.fetchmany(chunk):
        for i, values in enumerate(zip(*rows, strict=True)):
            if i:  # every column but the key: mostly repeated values
                values = [shared.setdefault(v, v) for v in values]
            part = np.empty(len(rows), dtype=object)
            part[:] = values
            parts[i].append(part)
    data = {name: (np.concatenate(part) if part else np.empty(0, dtype=object)) for name, part in zip(columns, parts,
                                                                                                      strict=True)}
    return pd.DataFrame(data, columns=list(columns), copy=False)


def grades_frame(session: Session, as_of: dt.date) -> pd.DataFrame:
    """Grades of ``as_of`` (uscc, grade, as_of, model_version): per subject the one stored last, the
    rule of the current grade (``grades.stored_last_of_day``: a regrade or a model's grade stored
    again supersedes). Read in chunks into columns, the repeated grade and model strings shared: a
    city's two million rows never exist as row objects all at once."""
    from serving.services.grades import stored_last_of_day

    result = session.connection().execute(stored_last_of_day(session, as_of))
    frame = _frame_in_chunks(result, ["uscc", "grade", "model_version"])
    frame.insert(2, "as_of", str(as_of))
    return frame


def district_names(session: Session) -> dict[str, str]:
    """District code → name as the subjects carry them (for forms that take either)."""
    rows = session.execute(select(Subject.district_code, Subject.district_name).distinct()).all()
    names: dict[str, str] = {}
    for code, name in rows:  # a subject that names its district over one that does not
        if code and (name or code not in names):
            names[code] = name or code
    return names


def district_choices(session: Session) -> list[tuple[str, str]]:
    """The districts the subjects carry, (code, name) by code, for the pages' district selects: read
    once per generation of the list totals (``list_counts``: advanced whenever subjects change), not
    on every page (a distinct over every subject)."""
    from serving.services.list_counts import kept_while_unchanged

    return kept_while_unchanged(session, "district_choices", lambda: sorted(district_names(session).items()))


def latest_grade_dates(session: Session, limit: int = 5) -> list[dt.date]:
    return list(session.scalars(select(Grade.as_of).distinct().order_by(Grade.as_of.desc()).limit(limit)))


def check_grades_exist(session: Session, as_of: dt.date) -> None:
    """``plan_inputs``' refusal of a date without grades, by one indexed look-up (before a plan is
    queued: the inputs are read by the job)."""
    if session.scalars(select(Grade.id).where(Grade.as_of == as_of).limit(1)).first() is None:
        raise _no_grades(session, as_of)


def _no_grades(session: Session, as_of: dt.date) -> InvalidInput:
    latest = [str(d) for d in latest_grade_dates(session)]
    return InvalidInput(f"as_of={as_of}: no grades with that date in the service; latest available "
                        f"{latest}", field="as_of",
                        zh=f"等级基准日 {as_of} 没有信用等级；可选的基准日：{'、'.join(latest) or '暂无'}。")


def plan_inputs(session: Session, data_dir: str | Path, as_of: dt.date, *,
                district_codes: Sequence[str] | None = None, industries: Sequence[str] | None = None,
                with_inspectors: bool = True, readable_by: Sequence[Principal] = ()) -> PlanInputs:
    """The scheduler's tables: subjects (optionally filtered) and grades from the DB, the rest
    from ``data_dir``. Raises ``InvalidInput`` when there are no grades of ``as_of``.

    ``readable_by``: the pool holds only subjects each of these principals may read through the
    subject endpoints (a plan's departments: a department never draws, sees or records a result
    for a subject it does not cover)."""
    from supervision.plan import PlanInputs

    grades = grades_frame(session, as_of)
    if grades.empty:
        raise _no_grades(session, as_of)
    tables = load_scheduler_tables(data_dir) if with_inspectors else {
        "items": load_scheduler_tables(data_dir)["items"]}
    subjects = subjects_frame(session, readable_by)
    if district_codes:
        subjects = subjects[subjects["district_code"].isin(list(district_codes))]
    if industries:
        subjects = subjects[subjects["industry"].isin(list(industries))]
    if (district_codes or industries) and subjects.empty:  # a filter that matches nothing: no 0-draw plan
        field = "district_codes" if district_codes else "industries"
        chosen = "、".join(district_codes or industries or ())
        raise InvalidInput(f"pool_filter.{field}={list(district_codes or industries or ())}: no subject the plan's "
                           "departments cover matches; rule: the filtered pool must not be empty", field=field,
                           zh=f"限定的{'区县' if district_codes else '行业门类'}（{chosen}）内没有可抽查的主体，"
                              "请检查代码或取消限定。")
    inspectors = tables.get("inspectors", pd.DataFrame(columns=list(_INSPECTOR_COLUMNS)))
    return PlanInputs(subjects=subjects.reset_index(drop=True), grades=grades, items=tables["items"],
                      inspectors=inspectors, conflicts=tables.get("conflicts"),
                      leads=leads_frame(session), history=history_frame(session))


# Record kinds that are a lead lifting the A grade's 无事不扰 shield (DOMAIN §5: complaints and
# reports; data-monitoring leads and referrals arrive as the same kind of record when a feed
# provides them; a broken commitment makes the subject a focus of supervision after the event,
# 宁政办发〔2020〕49号 task 1, for the department it was signed to: `services.commitments`).
LEAD_KINDS = ("complaint", "commitment_broken")


def leads_frame(session: Session) -> pd.DataFrame:
    """Leads in the service's records: each current, unrevoked complaint (uscc, lead_type,
    lead_date, department); the scheduler decides which are open for a task."""
    rows = session.connection().execute(
        select(Record.uscc, Record.kind, Record.decision_date, Record.department)
        .where(Record.kind.in_(LEAD_KINDS), Record.is_current.is_(True), Record.revoked.is_(False))).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=["uscc", "lead_type", "lead_date", "department"])


def history_frame(session: Session) -> pd.DataFrame:
    """Past inspections (uscc, department, inspection_item, inspected_on, inspector_ids): the
    service's recorded results with their teams, and the inspection records it holds from the
    store. They drive the frequency limit, the recusal of the last team and answered leads."""
    results = [r for r in session.scalars(select(InspectionResult)).all()
               if not (r.payload or {}).get("superseded_by")]  # a correction is the same visit
    from_results = [(r.uscc, (r.payload or {}).get("department", ""), r.inspection_item, r.inspected_on,
                     ";".join((r.payload or {}).get("inspector_ids", []))) for r in results]
    mirrored = {(r.payload or {}).get("record_id") for r in results}
    records = session.connection().execute(
        select(Record.record_id, Record.uscc, Record.department, Record.decision_date)
        .where(Record.kind == "inspection", Record.is_current.is_(True), Record.revoked.is_(False))).all()
    from_records = [(uscc, dept, "", on, "") for rid, uscc, dept, on in records if rid not in mirrored]
    return pd.DataFrame(from_results + from_records,
                        columns=["uscc", "department", "inspection_item", "inspected_on", "inspector_ids"])


_INSPECTOR_COLUMNS = ("inspector_id", "name", "department", "district_code", "qualified_items", "capacity")


def _scheduler_error(exc: Exception) -> ServiceError:
    """Translate a scheduler error into the service's hierarchy (field = the table it names)."""
    message = str(exc)
    field = message.split(":", 1)[0].split()[0] if ":" in message else None
    return InvalidInput(message, field=field)


def inspection_ratios(session: Session, data_dir: str | Path, policy: InspectionPolicy, *, department: str,
                      item: str, as_of: dt.date) -> InspectionRatiosOut:
    """The ratio feed over the same pool a plan of (department, item) would draw from (the
    subjects the department may read)."""
    from supervision.plan import PlanInputError
    from supervision.service import inspection_ratios_for

    inputs = plan_inputs(session, data_dir, as_of, with_inspectors=False,
                         readable_by=department_principals([department]))
    try:
        return inspection_ratios_for(inputs, policy, department=department, item=item, as_of=as_of)
    except PlanInputError as exc:
        raise _scheduler_error(exc) from exc


def load_named_policy(name: str) -> InspectionPolicy:
    """A bundled policy by name (never a path: callers of the API must not pick files)."""
    from supervision.inspection_policy import PolicyError, load_policy

    try:
        return load_policy(name)
    except PolicyError as exc:
        raise InvalidInput(f"policy={name!r}: {exc}", field="policy") from exc


def draw_plan(request: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy, seed: bytes, *,
              prepared: PreparedPools | None = None, feed: Any = None, progress: Any = None) -> InspectionPlan:
    """The scheduler's tiers-draw-v1 draw, the API's and `tiers plan create --algorithm v1`'s (a seam:
    tests make it fail after drawing). ``feed``: ratios from elsewhere (default: the pools' own);
    ``progress(done, total)`` after each task."""
    from supervision.plan import create_plan as scheduler_create_plan

    return scheduler_create_plan(request, inputs, policy, seed, prepared=prepared, feed=feed, progress=progress)


def fix_commitment_v2(request: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy, *, salt_source: str,
                      salt_pattern: str, committed_at: dt.datetime, seed: bytes | None = None,
                      feed: Any = None, prepared: PreparedPools | None = None) -> tuple[Any, bytes, bytes]:
    """A tiers-draw-v2 commitment with its secrets, the API's (`commit_v2_plan`) and `tiers plan
    commit`'s: (commitment, seed, nonce key). The seed is fresh from the OS CSPRNG unless given (a
    task file may fix one); the nonce key is always fresh. Raises the scheduler's errors."""
    from supervision.draw_v2 import new_nonce_key
    from supervision.plan_v2 import commit_v2

    seed = secrets.token_bytes(32) if seed is None else seed
    nonce_key = new_nonce_key()
    commitment = commit_v2(request, inputs, policy, seed=seed, nonce_key=nonce_key, salt_source=salt_source,
                           salt_pattern=salt_pattern, committed_at=committed_at, feed=feed, prepared=prepared)
    return commitment, seed, nonce_key


def draw_plan_v2(request: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy, *, seed: bytes,
                 nonce_key: bytes, commitment: Any, salt: Any, drawn_at: dt.datetime, feed: Any = None,
                 prepared: PreparedPools | None = None, progress: Any = None) -> InspectionPlan:
    """The tiers-draw-v2 draw once the public salt is known, the API's (`enter_salt_v2`) and `tiers
    plan create`'s: refused unless seed, policy, pools and ratios reproduce ``commitment``."""
    from supervision.plan_v2 import create_plan_v2

    return create_plan_v2(request, inputs, policy, seed=seed, nonce_key=nonce_key, commitment=commitment, salt=salt,
                          drawn_at=drawn_at, feed=feed, prepared=prepared, progress=progress)


def create_drawn_plan(session: Session, request: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy, *,
                      department: str, created_by: str, pool_filter: Mapping[str, Any] | None = None,
                      seed: bytes | None = None, created_on: dt.date | None = None,
                      progress: Callable[[str, float], None] | None = None) -> tuple[Plan, Draw]:
    """Commit, draw, assign and store a plan — all in ONE transaction. ``progress(stage, fraction)``
    hears of each stage as it starts (``plan_jobs.STAGES``; fraction: of this call's work).

    The commitment (SHA-256 of the secret seed, policy hash, pool hashes) is fixed and
    timestamped (``committed_at``) before the draw runs, and the draw must reproduce exactly
    that commitment. Plan and draw are written in one commit: if anything fails, nothing is
    stored (no plan without its draw, no draw without its commitment).
    """
    from supervision.plan import PlanInputError, prepare_pools, publish_commitment
    from supervision.tables import TableError

    say = progress or (lambda stage, fraction: None)
    seed = secrets.token_bytes(32) if seed is None else seed
    check_period_open(request, created_on or dt.datetime.now(dt.UTC).date())
    with _plan_transaction(session, PlanInputError, TableError), collections_paused():  # (a city's pool: see serving.gc_pause)
        # The pools are built (and their codes checked) once; the commitment is fixed from them
        # before the draw runs, and the draw reuses them.
        say("pools", 0.0)
        prepared = prepare_pools(request, inputs, policy)
        say("commitment", 0.35)
        commitment = publish_commitment(request, inputs, policy, seed, prepared=prepared)
        committed = commitment.model_dump(mode="json")
        committed_at = dt.datetime.now(dt.UTC)
        say("drawing", 0.45)
        drawn = draw_plan(request, inputs, policy, seed, prepared=prepared)
        # Both come from the same prepared pools, so this guards the draw code itself (seed,
        # policy and pool hashes carried through unchanged), not changes of the inputs; anyone
        # can check the inputs afterwards with `tiers plan verify`, which rebuilds the pools.
        if drawn.commitment.model_dump(mode="json") != committed:
            raise Conflict("the draw does not reproduce the published commitment")
        say("storing", 0.9)
        # Rows are written only after the (slow) draw, so the write lock is held for milliseconds;
        # the commitment's timestamp is the one taken before the draw ran.
        # created_on: the service's date of the plan (results may not predate it)
        plan_row = Plan(name=request.plan_id, department=department, created_by=created_by, status="drawn",
                        payload={"request": request.model_dump(mode="json", exclude={"seed_hex"}),
                                 "pool_filter": dict(pool_filter or {}), "commitment": committed,
                                 "created_on": (created_on or committed_at.date()).isoformat()})
        session.add(plan_row)
        session.flush()
        draw = Draw(plan_id=plan_row.id, draw_seed_commitment=commitment.draw_seed_commitment,
                    inputs_hash=hashlib.sha256(json.dumps(committed, sort_keys=True).encode()).hexdigest(),
                    payload=(payload := {"commitment": committed, "plan": plan_json(drawn)}), head=head_of(payload),
                    committed_at=committed_at, draw_seed=seed.hex(), revealed_at=dt.datetime.now(dt.UTC))
        session.add(draw)
        session.commit()
    return plan_row, draw


def plan_json(plan: InspectionPlan) -> dict[str, Any]:
    """``plan.model_dump(mode="json")``, key for key and in order, its long lists (each task's pool
    and exclusions, the visits) dumped an element at a time: one dump of a city's pool (two million
    rows) held the GIL for a minute, and uvicorn's supervisor kills a worker that does not answer
    its ping within 5 s."""
    tasks = [_fields_in_order(task, task.model_dump(mode="json", exclude={"pool", "excluded"}),
                              {"pool": [[uscc, grade, lead] for uscc, grade, lead in task.pool],
                               "excluded": [e.model_dump(mode="json") for e in task.excluded]})
             for task in plan.tasks]
    return _fields_in_order(plan, plan.model_dump(mode="json", exclude={"tasks", "visits"}),
                            {"tasks": tasks, "visits": [v.model_dump(mode="json") for v in plan.visits]})


def _fields_in_order(model: Any, dumped: dict[str, Any], long: dict[str, Any]) -> dict[str, Any]:
    """``dumped`` (the model's dump less the ``long`` fields) with them put back at their places."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        if name in long:
            out[name] = long[name]
        elif name in dumped:
            out[name] = dumped[name]
    return out | dumped


def check_period_open(request: Any, created_on: dt.date) -> None:
    """A plan's period must not have ended before the plan is made: results are dated within the
    period and never before the plan (``record_results``; a visit is drawn before it is made), so
    such a plan could never take one."""
    if request.period_end < created_on:
        raise InvalidInput(f"period_end {request.period_end} is before the plan is made on {created_on}; rule: a "
                           "plan's results are dated within its period and not before the plan, so the period "
                           "must not have ended", field="period_end",
                           zh=f"检查期结束（{request.period_end}）早于今天（{created_on}）：检查结果只能录入计划制定之后、"
                              "检查期之内的检查，请把检查期定在今天或之后。")


@contextmanager
def _plan_transaction(session: Session, *scheduler_errors: type[Exception]) -> Iterator[None]:
    """Roll back on any error; the scheduler's own errors leave as ``InvalidInput`` (422)."""
    try:
        yield
    except scheduler_errors as exc:
        session.rollback()
        raise _scheduler_error(exc) from exc
    except Exception:
        session.rollback()
        raise


def plan_departments(plan_row: Plan) -> set[str]:
    """The creating department and every department with a task in the plan."""
    tasks = plan_row.payload.get("request", {}).get("tasks", [])
    return {plan_row.department, *(t["department"] for t in tasks)}


def get_plan(session: Session, plan_db_id: int, principal: Principal) -> tuple[Plan, Draw]:
    """The plan and its draw, if ``principal`` is a regulator of a department taking part; else the
    same 404 as for a plan that does not exist (no existence oracle)."""
    plan_row = session.get(Plan, plan_db_id)
    draw = None if plan_row is None else session.scalars(select(Draw).where(Draw.plan_id == plan_row.id)).first()
    if (plan_row is None or draw is None or principal.role != "regulator"
            or principal.department not in plan_departments(plan_row)):
        raise NotFound(f"no inspection plan #{plan_db_id} of your department", field="plan_id")
    return plan_row, draw


def department_principals(plan_row_or_departments: Plan | Iterable[str]) -> list[Principal]:
    """A regulator of each department (of a plan): whose coverage a plan's pool must respect."""
    departments = (plan_departments(plan_row_or_departments) if isinstance(plan_row_or_departments, Plan)
                   else set(plan_row_or_departments))
    return [Principal(username="", role="regulator", department=d) for d in sorted(departments)]


def created_on(plan_row: Plan) -> dt.date:
    """The service's date of the plan's creation (plans from before it was stored: their row's
    creation date, in China)."""
    stored = plan_row.payload.get("created_on")
    if stored:
        return dt.date.fromisoformat(stored)
    from serving.labels import BEIJING

    return plan_row.created_at.astimezone(BEIJING).date()


def check_plan_rate(session: Session, principal: Principal, per_hour: int, now: dt.datetime | None = None) -> None:
    """At most ``per_hour`` plan requests per user per hour, failed ones included (each draw costs
    seconds of CPU, and a burst of plans is a way to read many subjects' grades): counted before
    the request's checks, `TooManyAttempts` with ``Retry-After`` past the limit
    (``serving.services.rates``)."""
    from serving.services.rates import spend

    spend(session, action="plan_create", actor=principal.username, per_hour=per_hour,
          what="计划请求 (plan requests)", field="plan_id", now=now)


def list_plans(session: Session, principal: Principal) -> list[tuple[Plan, Draw]]:
    """Plans the principal's department takes part in, newest first."""
    rows = session.execute(select(Plan, Draw).join(Draw, Draw.plan_id == Plan.id).order_by(Plan.id.desc())).all()
    return [(p, d) for p, d in rows if principal.department in plan_departments(p)]


def plan_summary(stored: Mapping[str, Any]) -> Any:
    """``supervision.service.plan_out`` of a stored plan (``plan_json``), read from the stored form
    without validating its pools and visits as models: a city's plan is two million pool rows, and
    a summary (every POST /plans response, every plan in a listing) needs none of them."""
    from supervision.plan import PlanHeader
    from supervision.service import PlanOut

    visits = stored["visits"]
    return PlanOut(**{name: stored[name] for name in PlanHeader.model_fields if name in stored},
                   draws_total=stored["draws_total"], visits=len(visits), visits_saved=stored["visits_saved"],
                   joint_visits=stored["joint_visits"], unstaffed_visits=sum(bool(v.get("unstaffed")) for v in visits),
                   per_grade=stored["summary"])


def stored_plan(draw: Draw, payload: Mapping[str, Any] | None = None) -> InspectionPlan:
    """The drawn plan of ``draw`` (of ``payload``, its stored payload already read) as a model."""
    from supervision.plan import InspectionPlan

    return InspectionPlan.model_validate((draw.payload if payload is None else payload)["plan"])


def verify_stored_plan(plan_row: Plan, draw: Draw, payload: Mapping[str, Any] | None = None) -> PlanVerification:
    """Recompute the draw from the stored (published) inputs against the commitment published
    before the draw: MATCH or MISMATCH with the first difference (``payload``: the draw's stored
    payload, already read)."""
    from pydantic import ValidationError

    from supervision.plan import DrawCommitment, PlanVerification, VerificationCheck, verify_plan

    payload = draw.payload if payload is None else payload
    if is_v2(draw):
        from supervision.verify_v2 import audit_plan

        if "plan" not in payload:
            return PlanVerification(plan_id=plan_row.name, match=False, first_difference="draw: not drawn yet",
                                    checks=[VerificationCheck(name="draw", ok=False, detail="not drawn yet")])
        return audit_plan(stored_plan(draw, payload), commitment_v2(draw))
    published = DrawCommitment.model_validate(plan_row.payload["commitment"])
    try:
        plan = stored_plan(draw, payload)
    except ValidationError as exc:
        detail = f"the stored plan is not a valid plan: {exc.errors()[0]['msg']}"
        return PlanVerification(plan_id=published.plan_id, match=False, first_difference=f"plan: {detail}",
                                checks=[VerificationCheck(name="plan", ok=False, detail=detail)])
    result = verify_plan(plan, published)
    seed_ok = draw.draw_seed == plan.draw_seed_hex
    if not seed_ok and result.match:
        return result.model_copy(update={"match": False, "first_difference":
                                         "revealed_seed: the stored seed differs from the plan's"})
    return result


# (draw id, SHA-256 of its stored payload's text) → its visits and verification: ``plan_view``
_VIEWS: OrderedDict[tuple[int, str], tuple[list[Any], PlanVerification]] = OrderedDict()
_VIEWS_KEPT = 8
_views_lock = threading.Lock()


def plan_view(session: Session, plan_row: Plan, draw: Draw) -> tuple[list[Any], PlanVerification]:
    """A drawn plan's visits and its verification (``verify_stored_plan``) as a page or the API's
    plan shows them, computed once per stored payload: the payload's text is read and hashed on
    every view (a changed payload — the plan's seed, pools, anything — is parsed and verified
    anew), but the pools are not parsed again nor the draw re-run while it is unchanged (issue
    22: 3–4 s a view at 300 k subjects). The visits are shared: callers copy before changing."""
    from sqlalchemy import Text, cast

    text = session.scalar(select(cast(Draw.payload, Text)).where(Draw.id == draw.id)) or "{}"
    key = (draw.id, hashlib.sha256(text.encode()).hexdigest())
    with _views_lock:
        if key in _VIEWS:
            _VIEWS.move_to_end(key)
            return _VIEWS[key]
    payload = json.loads(text)
    view = (stored_plan(draw, payload).visits if "plan" in payload else [],
            verify_stored_plan(plan_row, draw, payload))
    with _views_lock:
        _VIEWS[key] = view
        while len(_VIEWS) > _VIEWS_KEPT:
            _VIEWS.popitem(last=False)
    return view


def record_results(session: Session, plan_row: Plan, draw: Draw, principal: Principal,
                   rows: Sequence[Mapping[str, Any]], today: dt.date) -> list[InspectionResult]:
    """Store results of the plan's visits and mirror them as ``inspection`` records; one transaction.

    Each (uscc, inspection_item) must be in the plan and readable by the caller (a result never
    widens what a department may read: an unreadable subject is answered as one not drawn), the
    caller's department must own the item, and ``inspected_on`` must fall in the plan's period,
    not before the plan was created and not after ``today``.

    A result is never overwritten. Posting the same (uscc, item) again with the same content only
    sets a missing ``published_on`` (publishing it); a different outcome, date or document needs a
    ``correction_reason`` and becomes a new version (``payload``: version, supersedes, first_id,
    reason, who), the earlier one kept as it was (a published one stays published) and marked
    ``superseded_by``; its inspection record is versioned with the reason. A published date is
    never changed.
    """
    from serving.services.access import readable_subset
    from supervision.inspection_policy import policy_from_dict
    from supervision.results import OUTCOME_ZH, publication_deadline, results_to_records
    from supervision.results import InspectionResult as ResultModel

    if "plan" not in draw.payload:
        raise InvalidInput(f"计划 #{plan_row.id} 尚未抽取，不能录入检查结果；plan #{plan_row.id} is not drawn yet: "
                           "no results before the draw", field="plan_id")
    plan = stored_plan(draw)
    policy = policy_from_dict(plan.policy)
    readable = readable_subset(session, principal, sorted({row["uscc"] for row in rows}))
    owner = {(u, td.item): td.department for td in plan.tasks for u in td.drawn if u in readable}
    earliest = max(plan.period_start, created_on(plan_row))
    team = {v.uscc: v.inspectors for v in plan.visits}  # recused from this subject's next plan
    models = []
    for n, row in enumerate(rows):
        key = (row["uscc"], row["inspection_item"])
        if key not in owner:
            raise InvalidInput(f"results[{n}]: uscc {key[0]} with item {key[1]!r} is not drawn in plan "
                               f"#{plan_row.id}; rule: results only for the plan's visits", field="uscc",
                               zh=f"{key[0]} 的抽查事项 {key[1]} 不在计划 #{plan_row.id} 的检查名单中。")
        if owner[key] != principal.department:
            raise NotAllowed(f"results[{n}]: item {key[1]!r} belongs to department {owner[key]!r}, not "
                             f"{principal.department!r}", field="inspection_item",
                             zh=f"抽查事项 {key[1]} 属于其他部门，本部门不能录入其结果。")
        if row["inspected_on"] > today:
            raise InvalidInput(f"results[{n}]: inspected_on {row['inspected_on']} is after today {today}",
                               field="inspected_on", zh=f"检查日期 {row['inspected_on']} 晚于今天（{today}）。")
        if row.get("published_on") is not None and row["published_on"] > today:
            raise InvalidInput(f"results[{n}]: published_on {row['published_on']} is after today {today}; rule: "
                               "a result is published on or before the day it is entered", field="published_on",
                               zh=f"公示日期 {row['published_on']} 晚于今天（{today}），只能录入已公示的日期。")
        if earliest > plan.period_end:  # made after its period ended (refused at creation since)
            raise InvalidInput(f"results[{n}]: plan #{plan_row.id}'s period ended on {plan.period_end}, before the "
                               f"plan was made on {created_on(plan_row)}: no result can be dated in it",
                               field="inspected_on",
                               zh=f"计划 #{plan_row.id} 的检查期已于 {plan.period_end} 结束，早于计划制定日 "
                                  f"{created_on(plan_row)}：本计划不能录入检查结果。")
        if not earliest <= row["inspected_on"] <= plan.period_end:
            raise InvalidInput(f"results[{n}]: inspected_on {row['inspected_on']} is outside the plan: rule: from "
                               f"{earliest} (the period's start, and never before the plan was made on "
                               f"{created_on(plan_row)}) to {plan.period_end}", field="inspected_on",
                               zh=f"检查日期 {row['inspected_on']} 不在可录入的范围内（{earliest} 至 {plan.period_end}："
                                  "检查期之内，且不早于计划制定日）。")
        values = {k: v for k, v in row.items() if k != "correction_reason"}
        # the records table has no item column (RecordIn): the description keeps which item it was
        values["description"] = values.get("description") or f"双随机抽查 {key[1]}：{OUTCOME_ZH[row['outcome']]}"
        models.append(ResultModel(plan_id=plan.plan_id, department=owner[key], **values))
    records = results_to_records(models)
    reasons: dict[str, str] = {}
    try:
        stored = []
        for n, (model, record_id) in enumerate(zip(models, records["record_id"], strict=True)):
            existing = current_result(session, draw.id, model.uscc, model.inspection_item)
            version = _result_version(existing, model, rows[n].get("correction_reason") or "", n)
            if version is None:  # same content: at most the publication date is set
                if existing.published_on is None and model.published_on is not None:
                    existing.published_on = model.published_on
                stored.append(existing)
                continue
            if existing is not None:
                # the first version's record id: the correction is a new version of the same record
                record_id = existing.payload.get("record_id", record_id)
                records.loc[n, "record_id"] = record_id
                reasons[record_id] = f"更正 correction: {version['correction_reason']}"
            result = InspectionResult(draw_id=draw.id, uscc=model.uscc, inspection_item=model.inspection_item)
            result.outcome, result.inspected_on, result.published_on = (model.outcome, model.inspected_on,
                                                                         model.published_on)
            rules = policy.rules_for(model.department, model.inspection_item,
                                     key_item=next(td.key_item for td in plan.tasks
                                                   if td.item == model.inspection_item))
            deadline = publication_deadline(model.inspected_on, days=rules.publication_days,
                                            basis=rules.publication_day_basis)
            result.payload = {"record_id": record_id, "department": model.department,
                              "publication_deadline": deadline.isoformat(),
                              "document_no": model.document_no, "description": model.description,
                              "inspector_ids": team.get(model.uscc, []), "recorded_by": principal.username,
                              **version}
            session.add(result)
            if existing is not None:
                session.flush()
                existing.payload = {**existing.payload, "superseded_by": result.id}
            stored.append(result)
        record_rows = [{k: v for k, v in r.items() if v != "" and k in _RECORD_IN_FIELDS}
                       for r in records.to_dict("records")]
        # store_records commits: the results above and the records land in the same commit.
        store_records(session, record_rows, change_reasons=reasons)
    except Exception:
        session.rollback()
        raise
    return stored


def current_result(session: Session, draw_id: int, uscc: str, item: str) -> InspectionResult | None:
    """The newest version of a visit's result (None before the first)."""
    return session.scalars(select(InspectionResult).where(
        InspectionResult.draw_id == draw_id, InspectionResult.uscc == uscc,
        InspectionResult.inspection_item == item).order_by(InspectionResult.id.desc())).first()


def _result_version(existing: InspectionResult | None, model: Any, reason: str, n: int) -> dict[str, Any] | None:
    """The version fields of a new result row, or None when ``model`` repeats ``existing``'s content."""
    if existing is None:
        return {"version": 1}
    old = existing.payload or {}
    same = (existing.outcome, existing.inspected_on, old.get("document_no") or "") == (
        model.outcome, model.inspected_on, model.document_no or "")
    if same:
        if existing.published_on is not None and model.published_on not in (None, existing.published_on):
            said = f"该结果已于 {existing.published_on} 公示，公示日期不能更改"
            raise Conflict(f"{said}；results[{n}]: the result was published on {existing.published_on}: a "
                           "publication date is never changed", field="published_on", zh=f"{said}。")
        return None
    if not reason.strip():
        said = f"{model.uscc} 的抽查事项 {model.inspection_item} 已有检查结果：录入不同的结果即为更正，须填写更正理由"
        raise InvalidInput(f"{said}；results[{n}]: a result already exists: a different result is a correction and "
                           "needs a reason (correction_reason)", field="correction_reason", zh=f"{said}。")
    return {"version": old.get("version", 1) + 1, "supersedes": existing.id,
            "first_id": old.get("first_id") or existing.id, "correction_reason": reason.strip()}


def plan_results(session: Session, draw: Draw) -> list[InspectionResult]:
    """A draw's results by inspection day and subject, a subject's versions in the order they were
    entered (the id: without it PostgreSQL gave a correction before the result it corrects)."""
    return list(session.scalars(select(InspectionResult).where(InspectionResult.draw_id == draw.id)
                                .order_by(InspectionResult.inspected_on, InspectionResult.uscc, InspectionResult.id)))


def visible_plan(session: Session, draw: Draw, principal: Principal) -> InspectionPlan:
    """The stored plan as ``principal`` may see it: visits and results of subjects it may read
    through the subject endpoints only (for plans drawn before pools respected coverage, and for
    departments of a joint plan that do not cover every visit)."""
    plan = stored_plan(draw)
    visits = visible_visits(session, plan.visits, principal)
    return plan if len(visits) == len(plan.visits) else plan.model_copy(update={"visits": visits})


def visible_visits(session: Session, visits: list[Any], principal: Principal) -> list[Any]:
    """The visits of subjects ``principal`` may read through the subject endpoints (``visible_plan``)."""
    from serving.services.access import readable_subset

    readable = readable_subset(session, principal, [v.uscc for v in visits])
    return list(visits) if len(readable) == len(visits) else [v for v in visits if v.uscc in readable]


# The downloads a person opens (the regulator's pages): headers and values in people's words.
# The API's downloads keep the machine columns (``supervision.export.plan_table``).
PLAN_COLUMNS: dict[str, tuple[str, str]] = {
    "visit_order": ("顺序", "Order"), "uscc": ("统一社会信用代码", "USCC"), "name": ("名称", "Name"),
    "district_code": ("区县代码", "District code"), "district_name": ("区县", "District"),
    "grade": ("信用等级（内部）", "Grade (internal)"), "items": ("抽查事项", "Inspection items"),
    "departments": ("检查部门", "Departments"), "inspectors": ("检查人员", "Inspectors"),
    "unstaffed": ("未配备检查人员的事项", "Items without inspectors"),
}
SUMMARY_COLUMNS: dict[str, tuple[str, str]] = {
    "grade": ("信用等级", "Grade"), "pool": ("名录库户数", "Pool"), "drawn": ("抽中户数", "Drawn"),
    "expected": ("按比例应抽（取整前）", "Expected (before rounding)"),
    "configured_ratio": ("规定抽查比例", "Configured ratio"), "realised_ratio": ("实际抽查比例", "Realised ratio"),
}
COMMITMENT_FIELDS: dict[str, tuple[str, str]] = {
    "plan_id": ("计划编号", "Plan id"), "draw_algorithm": ("抽取算法", "Draw algorithm"),
    "draw_seed_commitment": ("种子哈希 SHA-256", "Seed commitment SHA-256"),
    "policy_hash": ("比例政策哈希", "Policy hash"), "pool_hashes": ("名录库哈希", "Pool hash"),
    "public_salt": ("公开随机数", "Public salt"), "draw_seed_hex": ("公开的种子", "Revealed seed"),
    "visits_saved": ("合并检查节省的上门次数", "Visits saved by joint inspections"),
}


def _words(mapping: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    names = mapping.get(key)
    return (names[1] if lang == "en" else names[0]) if names else key


def people_plan_tables(plan: InspectionPlan, lang: str, data_dir: str | Path | None
                       ) -> list[tuple[str, pd.DataFrame]]:
    """The workbook's sheets (visits, summary, commitment) with headers in ``lang`` and names for
    departments, inspectors and items; names of persons are masked as ``plan`` already shows them."""
    from serving.labels import department_name, inspector_label, inspector_names, item_label
    from supervision.export import commitment_table, plan_table, summary_table

    inspectors = inspector_names(data_dir)

    def item(code: str) -> str:
        return item_label(code, lang, data_dir)

    visits = plan_table(plan)
    if len(visits):
        visits["departments"] = [
            "；".join(department_name(d, lang, data_dir) for d in v.departments) for v in plan.visits]
        visits["inspectors"] = ["；".join(inspector_label(i, inspectors) for i in v.inspectors) for v in plan.visits]
        visits["items"] = ["；".join(item(i) for i in v.items) for v in plan.visits]
        visits["unstaffed"] = ["；".join(item(i) for i in v.unstaffed) for v in plan.visits]
    visits = visits.rename(columns={k: _words(PLAN_COLUMNS, k, lang) for k in visits.columns})
    summary = summary_table(plan)
    summary = summary.rename(columns={k: _words(SUMMARY_COLUMNS, k, lang) for k in summary.columns})
    commitment = commitment_table(plan)

    def field(name: str) -> str:
        key, _, entry = name.partition("[")
        label = _words(COMMITMENT_FIELDS, key, lang)
        if not entry:
            return label
        department, _, item_code = entry.rstrip("]").partition("/")
        return f"{label}：{department_name(department, lang, data_dir)} {item(item_code)}".strip()

    commitment["field"] = [field(f) for f in commitment["field"]]
    commitment.columns = ["项目", "内容"] if lang != "en" else ["Field", "Value"]
    sheet_names = ("检查名单", "汇总", "承诺") if lang != "en" else ("Visits", "Summary", "Commitment")
    return list(zip(sheet_names, (visits, summary, commitment), strict=True))


def plan_csv(plan: InspectionPlan, lang: str | None = None, data_dir: str | Path | None = None) -> bytes:
    """The regulator's visit list (internal: it shows grades) as UTF-8 CSV with BOM, every cell
    neutralised against formula injection; with ``lang``, in people's words (the pages' download)."""
    from supervision.export import csv_bytes, plan_table

    if lang is None:
        return csv_bytes(plan_table(plan))
    return csv_bytes(people_plan_tables(plan, lang, data_dir)[0][1])


def plan_xlsx(plan: InspectionPlan, lang: str | None = None, data_dir: str | Path | None = None) -> bytes:
    """The workbook of ``supervision.export.write_plan_excel`` (visits, summary, commitment); with
    ``lang``, headers and names in people's words."""
    import tempfile

    from supervision.export import PERCENT, RATIO_COLUMNS, write_plan_excel, write_workbook

    with tempfile.TemporaryDirectory() as tmp:
        if lang is None:
            return write_plan_excel(plan, Path(tmp) / "plan.xlsx").read_bytes()
        percentages = {_words(SUMMARY_COLUMNS, k, lang): PERCENT for k in RATIO_COLUMNS}
        return write_workbook(people_plan_tables(plan, lang, data_dir), Path(tmp) / "plan.xlsx",
                              number_formats=percentages).read_bytes()


def create_demo_plan(session: Session, settings: Any, *, city: str | Path, as_of: dt.date, seed: int,
                     today: dt.date | None = None) -> str:
    """One verifiable market-supervision plan over the demo city (``serving.demo_load``); returns a note.
    Its 90-day period begins the day after the grades' date, or today if that is later, so results
    can be entered in the demo (they are dated within the period and not before the plan).

    The seed is derived from the demo seed, so a rerun draws the same plan; real plans always
    draw a fresh secret seed (``create_drawn_plan``).
    """
    from supervision.plan import PlanCreate

    tables = load_scheduler_tables(city)
    items = tables["items"]
    samr_items = items.loc[items["department"] == "samr", "item_code"].astype(str).tolist()[:3]
    if not samr_items:
        return "not created (no market-supervision items in the demo city)"
    from serving.labels import china_today

    today = today or china_today()
    start = max(as_of + dt.timedelta(days=1), today)
    request = PlanCreate(plan_id=f"demo-{as_of.isoformat()}", period_start=start,
                         period_end=start + dt.timedelta(days=89), as_of=as_of,
                         tasks=[{"department": "samr", "item": i} for i in samr_items])
    inputs = plan_inputs(session, city, as_of)
    plan_row, draw = create_drawn_plan(session, request, inputs, load_named_policy("default"), department="samr",
                                       created_by="demo", seed=hashlib.sha256(f"demo-{seed}".encode()).digest(),
                                       created_on=today)
    verdict = "MATCH" if verify_stored_plan(plan_row, draw).match else "MISMATCH"
    plan = stored_plan(draw)
    return (f"plan #{plan_row.id} {plan_row.name}: {plan.draws_total} draws in {len(plan.visits)} visits "
            f"({', '.join(samr_items)}); verify {verdict}; see /regulator/plans/{plan_row.id}")


# --------------------------------------------------------------------------- tiers-draw-v2
#
# A v2 plan is stored in two steps (docs/draw-algorithm.md §12–§20): ``commit_v2_plan`` fixes and
# publishes the commitment (the secret seed, the nonce key and a snapshot of the committed pools
# stay in the draw's payload, never shown), then ``enter_salt_v2`` takes the public salt from a
# second person of the department and runs the draw on the snapshot. The draw's payload then
# holds the full plan (with the nonce key: auditors only); the public bundle is derived from it.

V2_SECRET, V2_SNAPSHOT = "v2_secret", "v2_snapshot"
# A typed salt is chosen by the second person, so its spelling gives the office no choice it does not
# already have: any printable ASCII, bounded. A named public source must commit its exact format.
TYPED_SALT_PATTERN = "[ -~]{1,64}"


def is_v2(draw: Draw) -> bool:
    return draw_head(draw)["v2"]


def head_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a draw's payload a plan's summary shows (``Draw.head``): whether it is v2, its
    v2 commitment and salt, whether it is drawn and the plan's summary (``plan_summary``). A
    city's payload is 100+ MB; this is a few kB."""
    return {"v2": "commitment_v2" in payload, "commitment_v2": payload.get("commitment_v2"),
            "salt": payload.get("salt"), "drawn": "plan" in payload,
            "plan": plan_summary(payload["plan"]).model_dump(mode="json") if "plan" in payload else None}


def draw_head(draw: Draw) -> dict[str, Any]:
    """``head_of`` the draw's payload, as stored with it (draws stored before it was: from the payload)."""
    return draw.head if draw.head is not None else head_of(draw.payload or {})


def _pool_snapshot(prepared: Any) -> dict[str, Any]:
    """The committed pools as JSON: the draw runs on exactly these rows even if grades, leads or
    subjects change between the commitment and the salt."""
    return {"model_version": prepared.model_version,
            "pools": [{"department": p.task.department, "item": p.task.item, "key_item": p.rules.key_item,
                       "pool": p.pool.to_dict("list"), "ungraded": list(p.ungraded),
                       "excluded": [e.model_dump() for e in p.excluded]} for p in prepared.pools]}


def _prepared_from_snapshot(snapshot: Mapping[str, Any], policy: InspectionPolicy) -> PreparedPools:
    from supervision.plan import ExcludedSubject, PreparedPools, TaskItem
    from supervision.plan.pools import TaskPool

    pools = []
    for p in snapshot["pools"]:
        frame = pd.DataFrame(p["pool"])
        if frame.empty:
            frame = pd.DataFrame(columns=["uscc", "name", "district_code", "district_name", "grade", "lead"])
        frame["lead"] = frame["lead"].astype(bool)
        pools.append(TaskPool(task=TaskItem(department=p["department"], item=p["item"]), pool=frame,
                              ungraded=list(p["ungraded"]),
                              excluded=[ExcludedSubject(**e) for e in p["excluded"]],
                              rules=policy.rules_for(p["department"], p["item"], key_item=p["key_item"])))
    return PreparedPools(pools=pools, model_version=snapshot["model_version"])


def commit_v2_plan(session: Session, request: PlanCreate, inputs: PlanInputs, policy_name: str, *,
                   department: str, created_by: str, salt_source: str, salt_pattern: str = TYPED_SALT_PATTERN,
                   pool_filter: Mapping[str, Any] | None = None, created_on: dt.date | None = None,
                   now: dt.datetime | None = None, progress: Callable[[str, float], None] | None = None
                   ) -> tuple[Plan, Draw]:
    """Fix and store a v2 commitment (public at once); the seed and nonce key are drawn here and
    kept in the draw's payload until the draw reveals the seed. Nothing is drawn yet.
    ``progress`` as ``create_drawn_plan``'s."""
    from supervision.plan import PlanInputError, prepare_pools
    from supervision.plan_v2 import DrawV2Error
    from supervision.tables import TableError

    policy = load_named_policy(policy_name)
    committed_at = now or dt.datetime.now(dt.UTC)
    check_period_open(request, created_on or committed_at.date())
    say = progress or (lambda stage, fraction: None)
    with _plan_transaction(session, PlanInputError, TableError, DrawV2Error):
        say("pools", 0.0)
        prepared = prepare_pools(request, inputs, policy)
        say("commitment", 0.6)
        commitment, seed, nonce_key = fix_commitment_v2(request, inputs, policy, salt_source=salt_source,
                                                        salt_pattern=salt_pattern, committed_at=committed_at,
                                                        prepared=prepared)
        say("storing", 0.9)
        plan_row = Plan(name=request.plan_id, department=department, created_by=created_by, status="committed",
                        payload={"request": request.model_dump(mode="json", exclude={"seed_hex"}),
                                 "policy": policy_name, "pool_filter": dict(pool_filter or {}),
                                 "created_on": (created_on or committed_at.date()).isoformat()})
        session.add(plan_row)
        session.flush()
        draw = Draw(plan_id=plan_row.id, draw_seed_commitment=commitment.seed_commitment,
                    inputs_hash=commitment.digest(), committed_at=committed_at,
                    payload=(payload := {"commitment_v2": commitment.model_dump(mode="json"),
                                         V2_SECRET: {"seed": seed.hex(), "nonce_key": nonce_key.hex()},
                                         V2_SNAPSHOT: _pool_snapshot(prepared)}), head=head_of(payload))
        session.add(draw)
        session.commit()
    return plan_row, draw


def commitment_v2(draw: Draw):
    from supervision.bundle import DrawCommitmentV2

    return DrawCommitmentV2.model_validate(draw_head(draw)["commitment_v2"])

def salt_not_allowed(plan_row: Any, principal: Principal) -> str | None:
    """Why ``principal`` may not enter the plan's public salt: ``creator`` (a second person of the
    department must), ``department`` (a regulator of the plan's department must), else None."""
    if principal.username == plan_row.created_by:
        return "creator"
    if principal.role != "regulator" or principal.department != plan_row.department:
        return "department"
    return None


def enter_salt_v2(session: Session, plan_row: Plan, draw: Draw, principal: Principal, data_dir: str | Path, *,
                  value: str, source: str | None = None, known_at: dt.datetime | None = None,
                  now: dt.datetime | None = None) -> tuple[Plan, Draw]:
    """Take the public salt and run the draw on the committed pools; one transaction.

    The salt is entered by a regulator of the plan's department other than its creator (so no one
    person both fixes the seed and picks the salt). ``known_at``: when the value became public
    (a named source's publication time; by default the moment it is typed in). The draw must
    reproduce the commitment; if anything fails nothing is stored and the plan stays committed.
    """
    from pydantic import ValidationError

    from supervision.plan import PlanCreate, PlanInputError
    from supervision.plan_v2 import DrawV2Error, accept_salt

    if not is_v2(draw) or draw.draw_seed is not None:
        raise Conflict(f"计划 #{plan_row.id} 已抽取或不是待录入随机数的计划；plan #{plan_row.id} is not a committed "
                       "tiers-draw-v2 plan waiting for its salt", field="plan_id")
    if salt_not_allowed(plan_row, principal) == "creator":
        raise NotAllowed("创建抽查计划的人员不能录入公开随机数，须由本部门另一名人员录入；the plan's creator may not "
                         "enter its public salt: a second person of the department must", field="salt")
    if salt_not_allowed(plan_row, principal) == "department":
        raise NotAllowed(f"公开随机数须由 {plan_row.department} 部门人员录入；the salt is entered by a regulator of "
                         f"department {plan_row.department!r}", field="salt")
    commitment = commitment_v2(draw)
    entered_at = now or dt.datetime.now(dt.UTC)
    policy = load_named_policy(plan_row.payload.get("policy", "default"))
    request = PlanCreate.model_validate(plan_row.payload["request"])
    try:
        salt = accept_salt(commitment, value=value, source=source or commitment.salt_source,
                           known_at=known_at or entered_at, entered_at=entered_at, entered_by=principal.username)
    except DrawV2Error as exc:
        session.rollback()
        raise salt_refusal(exc, commitment, value) from exc
    try:
        prepared = _prepared_from_snapshot(draw.payload[V2_SNAPSHOT], policy)
        pool_filter = plan_row.payload.get("pool_filter") or {}
        inputs = plan_inputs(session, data_dir, request.as_of, district_codes=pool_filter.get("district_codes"),
                             industries=pool_filter.get("industries"),
                             readable_by=department_principals(plan_row))
        secret = draw.payload[V2_SECRET]
        plan = draw_plan_v2(request, inputs, policy, seed=bytes.fromhex(secret["seed"]),
                            nonce_key=bytes.fromhex(secret["nonce_key"]), commitment=commitment, salt=salt,
                            drawn_at=max(entered_at, dt.datetime.now(dt.UTC)), prepared=prepared)
    except (DrawV2Error, PlanInputError, ValidationError) as exc:
        session.rollback()
        raise InvalidInput(f"无法抽取：{exc}", field="salt") from exc
    with _plan_transaction(session):
        # the secrets leave the payload: the seed is revealed, the nonce key is in the full plan.
        # Conditional on no seed yet: of two salts entered at once, exactly one draw is stored.
        payload = {"commitment_v2": draw.payload["commitment_v2"], "salt": salt.model_dump(mode="json"),
                   "plan": plan_json(plan)}
        stored = session.execute(update(Draw).where(Draw.id == draw.id, Draw.draw_seed.is_(None)).values(
            payload=payload, head=head_of(payload),
            draw_seed=plan.draw_seed_hex, revealed_at=dt.datetime.now(dt.UTC)))
        if stored.rowcount != 1:
            raise Conflict(f"计划 #{plan_row.id} 已由他人录入随机数并抽取；plan #{plan_row.id} was drawn meanwhile",
                           field="plan_id")
        plan_row.payload = {**plan_row.payload, "commitment": plan.commitment.model_dump(mode="json")}
        plan_row.status = "drawn"
        session.commit()
    session.refresh(draw)
    return plan_row, draw


def salt_refusal(exc: Exception, commitment, value: str) -> InvalidInput:
    """A refused public salt as the person who typed it reads it: the rule it broke in Chinese,
    naming the format in words (never the regular expression) and times in Beijing time, at the
    form's field to correct (``value`` or ``known_at``); the rule's English sentence for the API."""
    from serving.labels import beijing_minute, salt_format
    from supervision.bundle import canonical_salt

    rule = getattr(exc, "rule", None)
    field, zh = "value", "公开随机数不符合承诺时公布的规则，未抽取。"
    if rule == "salt_format":
        zh = (f"公开随机数「{canonical_salt(value)}」与承诺时确定的写法不符：应为"
              f"{salt_format(commitment.salt_pattern)}。请按公开来源公布的号码原样填写。")
    elif rule == "salt_source":
        zh = "公开随机数的来源不是承诺时指定的来源，未抽取。"
    elif rule == "salt_known_before_commitment":
        field, zh = "known_at", (f"随机数公布时间须晚于承诺公布时间（北京时间 {beijing_minute(commitment.committed_at)}）："
                                 "公开随机数须在承诺公布之后才产生。")
    elif rule == "salt_entered_before_known":
        field, zh = "known_at", "随机数公布时间晚于现在：公开随机数须在公布之后录入，请核对公布时间。"
    return InvalidInput(f"cannot draw: {exc}", field=field, zh=zh)


def plan_bundle(draw: Draw):
    """The public bundle (no grade, no undrawn subject) of a drawn v2 plan."""
    from supervision.plan_v2 import DrawV2Error, publish_bundle

    if "plan" not in draw.payload:
        raise NotFound("该计划尚未抽取，暂无公开包；the plan is not drawn yet: no bundle", field="plan_id")
    try:
        return publish_bundle(stored_plan(draw))
    except DrawV2Error as exc:
        raise NotFound(f"该计划按 tiers-draw-v1 抽取，无公开包；{exc}", field="plan_id") from exc


def verify_public_bundle(draw: Draw):
    """The public check of a drawn v2 plan's bundle against the commitment published before the draw."""
    from supervision.verify_v2 import verify_bundle

    return verify_bundle(plan_bundle(draw), commitment_v2(draw))


def subject_plan_openings(session: Session, uscc: str) -> list[tuple[Plan, Any]]:
    """The subject's private opening for every drawn v2 plan whose pool holds it (oldest first)."""
    from supervision.plan_v2 import subject_openings

    rows = session.execute(select(Plan, Draw).join(Draw, Draw.plan_id == Plan.id)
                           .where(Plan.status == "drawn").order_by(Plan.id)).all()
    found = []
    for plan_row, draw in rows:
        if not is_v2(draw) or "plan" not in draw.payload:
            continue
        plan = stored_plan(draw)
        if not any(uscc == row[0] for td in plan.tasks for row in td.pool):
            continue
        opening = subject_openings(plan, [uscc]).get(uscc)
        if opening is not None:
            found.append((plan_row, opening))
    return found



def public_plans(session: Session, department: str) -> list[tuple[Plan, Draw]]:
    """The department's tiers-draw-v2 plans (committed or drawn), newest first: what 一公开 lists."""
    rows = session.execute(select(Plan, Draw).join(Draw, Draw.plan_id == Plan.id)
                           .where(Plan.department == department).order_by(Plan.id.desc())).all()
    return [(p, d) for p, d in rows if is_v2(d)]


def public_plan(session: Session, plan_db_id: int) -> tuple[Plan, Draw]:
    """A tiers-draw-v2 plan by id, for the public pages (v1 plans have no public bundle: 404)."""
    plan_row = session.get(Plan, plan_db_id)
    draw = None if plan_row is None else session.scalars(select(Draw).where(Draw.plan_id == plan_row.id)).first()
    if plan_row is None or draw is None or not is_v2(draw):
        raise NotFound(f"没有编号为 {plan_db_id} 的公开抽查计划；no public plan #{plan_db_id}", field="plan_id")
    return plan_row, draw


PUBLIC_RESULT_COLUMNS = {"uscc": "统一社会信用代码", "name": "名称", "inspection_item": "抽查事项",
                         "inspected_on": "检查日期", "outcome_zh": "检查结果", "document_no": "文书号",
                         "published_on": "公示日期",
                         "correction": "更正说明", "plan": "抽查计划"}


def public_results(session: Session, today: dt.date, person_named_forms: frozenset[str], *,
                   department: str | None = None, draw_id: int | None = None) -> pd.DataFrame:
    """The published inspection results (一公开) of a department or of one plan's draw: subject, name
    (masked when it is a person's), item, date, outcome, publication date and any correction; never
    a grade. Only results published on or before ``today``; a corrected result is listed as its
    newest published version with the reason."""
    from serving.security import mask_name
    from supervision.results import OUTCOME_ZH

    rows = session.execute(select(InspectionResult, Plan.name).join(Draw, Draw.id == InspectionResult.draw_id)
                           .join(Plan, Plan.id == Draw.plan_id)
                           .where(InspectionResult.published_on.is_not(None), InspectionResult.published_on <= today,
                                  *([InspectionResult.draw_id == draw_id] if draw_id is not None else []))
                           .order_by(InspectionResult.inspected_on, InspectionResult.uscc, InspectionResult.id)).all()
    rows = [(r, plan) for r, plan in rows if department is None or (r.payload or {}).get("department") == department]
    newest = {}  # the first version's id → the newest published version's id
    for r, _ in rows:
        first = (r.payload or {}).get("first_id") or r.id
        newest[first] = max(newest.get(first, 0), r.id)
    superseded = {r.id for r, _ in rows} - set(newest.values())
    subjects = dict(((u, (n, f)) for u, n, f in session.execute(
        select(Subject.uscc, Subject.name, Subject.legal_form).where(Subject.uscc.in_([r.uscc for r, _ in rows])))))
    out = []
    for r, plan_name in rows:
        if r.id in superseded:  # a newer published version of this result is listed instead
            continue
        name, form = subjects.get(r.uscc, ("", ""))
        reason = (r.payload or {}).get("correction_reason")
        out.append({"uscc": r.uscc, "name": (mask_name(name) or "") if form in person_named_forms else name,
                    "inspection_item": r.inspection_item, "inspected_on": r.inspected_on.isoformat(),
                    "outcome_zh": OUTCOME_ZH[r.outcome], "document_no": (r.payload or {}).get("document_no") or "",
                    "published_on": r.published_on.isoformat(),
                    "correction": f"更正（第{r.payload.get('version')}版）：{reason}" if reason else "",
                    "plan": plan_name})
    return pd.DataFrame(out, columns=list(PUBLIC_RESULT_COLUMNS))


def public_results_table_csv(frame: pd.DataFrame) -> bytes:
    """The public table as CSV with Chinese headers, every cell neutralised (``supervision.export``)."""
    from supervision.export import csv_bytes

    return csv_bytes(frame.rename(columns=PUBLIC_RESULT_COLUMNS))
