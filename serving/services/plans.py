"""Inspection plans and their verifiable draws, as stored by the service.

The draw itself is computed by ``supervision/``; this module only persists what it returns:
a plan and its draw are written in one transaction (no plan without its commitment), and the
seed is revealed later, checked against the commitment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.db.models import (
    Alert,
    Draw,
    Grade,
    InspectionResult,
    MonitoringResult,
    Plan,
    PromotionAudit,
    Record,
    Subject,
)
from serving.errors import Conflict, InvalidInput, NotAllowed, NotFound, ServiceError
from serving.schemas import RecordIn
from serving.security import Principal
from serving.services.subjects import store_records

if TYPE_CHECKING:
    from supervision.inspection_policy import InspectionPolicy
    from supervision.plan import InspectionPlan, PlanCreate, PlanInputs, PlanVerification, PreparedPools
    from supervision.ratios import InspectionRatiosOut

_RECORD_IN_FIELDS = frozenset(RecordIn.model_fields)




def create_plan(session: Session, *, name: str, department: str, created_by: str, payload: Mapping[str, Any],
                draw_seed_commitment: str, inputs_hash: str | None = None,
                draw_payload: Mapping[str, Any] | None = None) -> tuple[Plan, Draw]:
    """Store a plan and its committed (not yet revealed) draw in one transaction."""
    if len(draw_seed_commitment) != 64 or any(c not in "0123456789abcdef" for c in draw_seed_commitment):
        raise InvalidInput(f"draw_seed_commitment={draw_seed_commitment!r}: must be a lowercase sha256 hex "
                           "digest (64 characters)", field="draw_seed_commitment")
    try:
        plan = Plan(name=name, department=department, created_by=created_by, payload=dict(payload),
                    status="committed")
        session.add(plan)
        session.flush()
        draw = Draw(plan_id=plan.id, draw_seed_commitment=draw_seed_commitment, inputs_hash=inputs_hash,
                    payload=dict(draw_payload or {}))
        session.add(draw)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return plan, draw


def reveal_draw(session: Session, draw_id: int, draw_seed: str, draw_payload: Mapping[str, Any]) -> Draw:
    """Record the revealed seed and the drawn result; the seed must match the commitment."""
    draw = session.get(Draw, draw_id)
    if draw is None:
        raise NotFound(f"no draw #{draw_id}", field="draw_id")
    if draw.draw_seed is not None:
        raise Conflict(f"draw #{draw_id} was already revealed")
    from supervision.draw import seed_commitment

    try:
        committed = seed_commitment(bytes.fromhex(draw_seed))
    except ValueError as exc:  # not hex, or not 32 bytes (DrawInputError)
        raise InvalidInput(f"draw_seed: must be 64 hexadecimal characters (32 bytes) ({exc})", field="draw_seed") from exc
    if committed != draw.draw_seed_commitment:
        raise InvalidInput(f"draw_seed does not match the commitment of draw #{draw_id}", field="draw_seed")
    draw.draw_seed, draw.payload = draw_seed, dict(draw_payload)
    draw.revealed_at = dt.datetime.now(dt.UTC)
    plan = session.get(Plan, draw.plan_id)
    if plan is not None:
        plan.status = "drawn"
    session.commit()
    return draw


def store_inspection_results(session: Session, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store inspection results (uscc, inspection_item, outcome, inspected_on, …); one transaction."""
    count = 0
    for row in rows:
        values = dict(row)
        payload = {k: values.pop(k) for k in list(values) if k not in
                   {"draw_id", "uscc", "inspection_item", "outcome", "inspected_on", "published_on"}}
        session.add(InspectionResult(**values, payload=payload))
        count += 1
    session.commit()
    return count


def store_monitoring(session: Session, results: Iterable[Mapping[str, Any]] = (),
                     alerts: Iterable[Mapping[str, Any]] = ()) -> tuple[int, int]:
    """Store monitoring results (kind, as_of, model_version?, payload) and alerts
    (severity, code, message, model_version?, payload?); one transaction."""
    n_results = n_alerts = 0
    for row in results:
        session.add(MonitoringResult(**dict(row)))
        n_results += 1
    for row in alerts:
        session.add(Alert(**dict(row)))
        n_alerts += 1
    session.commit()
    return n_results, n_alerts


def record_promotion(session: Session, *, model_name: str, from_version: str | None, to_version: str,
                     decided_by: str, decision: str, evidence: Mapping[str, Any]) -> PromotionAudit:
    """Audit one champion/challenger decision."""
    row = PromotionAudit(model_name=model_name, from_version=from_version, to_version=to_version,
                         decided_by=decided_by, decision=decision, evidence=dict(evidence))
    session.add(row)
    session.commit()
    return row


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
    rows = session.connection().execute(select(Subject.uscc, Subject.name, Subject.legal_form, Subject.industry,
                                               Subject.district_code, Subject.district_name, Subject.status)
                                        .where(*(coverage_clause(p) for p in readable_by))).all()
    columns = ["uscc", "name", "legal_form", "industry", "district_code", "district_name", "status"]
    return pd.DataFrame([tuple(r) for r in rows], columns=columns).fillna("")


def grades_frame(session: Session, as_of: dt.date) -> pd.DataFrame:
    """Grades of ``as_of``: the last stored version per subject (a regrade supersedes)."""
    last = (select(func.max(Grade.id)).where(Grade.as_of == as_of).group_by(Grade.uscc)).scalar_subquery()
    rows = session.connection().execute(select(Grade.uscc, Grade.grade, Grade.as_of, Grade.model_version)
                                        .where(Grade.id.in_(last))).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["uscc", "grade", "as_of", "model_version"])
    frame["as_of"] = frame["as_of"].astype(str)
    return frame


def latest_grade_dates(session: Session, limit: int = 5) -> list[dt.date]:
    return list(session.scalars(select(Grade.as_of).distinct().order_by(Grade.as_of.desc()).limit(limit)))


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
        raise InvalidInput(f"as_of={as_of}: no grades with that date in the service; latest available "
                           f"{[str(d) for d in latest_grade_dates(session)]}", field="as_of")
    tables = load_scheduler_tables(data_dir) if with_inspectors else {
        "items": load_scheduler_tables(data_dir)["items"]}
    subjects = subjects_frame(session, readable_by)
    if district_codes:
        subjects = subjects[subjects["district_code"].isin(list(district_codes))]
    if industries:
        subjects = subjects[subjects["industry"].isin(list(industries))]
    inspectors = tables.get("inspectors", pd.DataFrame(columns=list(_INSPECTOR_COLUMNS)))
    return PlanInputs(subjects=subjects.reset_index(drop=True), grades=grades, items=tables["items"],
                      inspectors=inspectors, conflicts=tables.get("conflicts"),
                      leads=leads_frame(session), history=history_frame(session))


# Record kinds that are a lead lifting the A grade's 无事不扰 shield (DOMAIN §5: complaints and
# reports; data-monitoring leads and referrals arrive as the same kind of record when a feed
# provides them).
LEAD_KINDS = ("complaint",)


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
    results = session.scalars(select(InspectionResult)).all()
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
              prepared: PreparedPools | None = None) -> InspectionPlan:
    """The scheduler's draw (a seam: tests make it fail after drawing)."""
    from supervision.plan import create_plan as scheduler_create_plan

    return scheduler_create_plan(request, inputs, policy, seed, prepared=prepared)


def create_drawn_plan(session: Session, request: PlanCreate, inputs: PlanInputs, policy: InspectionPolicy, *,
                      department: str, created_by: str, pool_filter: Mapping[str, Any] | None = None,
                      seed: bytes | None = None, created_on: dt.date | None = None) -> tuple[Plan, Draw]:
    """Commit, draw, assign and store a plan — all in ONE transaction.

    The commitment (SHA-256 of the secret seed, policy hash, pool hashes) is fixed and
    timestamped (``committed_at``) before the draw runs, and the draw must reproduce exactly
    that commitment. Plan and draw are written in one commit: if anything fails, nothing is
    stored (no plan without its draw, no draw without its commitment).
    """
    from supervision.plan import PlanInputError, prepare_pools, publish_commitment
    from supervision.tables import TableError

    seed = secrets.token_bytes(32) if seed is None else seed
    try:
        # The pools are built (and their codes checked) once; the commitment is fixed from them
        # before the draw runs, and the draw reuses them.
        prepared = prepare_pools(request, inputs, policy)
        commitment = publish_commitment(request, inputs, policy, seed, prepared=prepared)
        committed = commitment.model_dump(mode="json")
        committed_at = dt.datetime.now(dt.UTC)
        drawn = draw_plan(request, inputs, policy, seed, prepared=prepared)
        # Both come from the same prepared pools, so this guards the draw code itself (seed,
        # policy and pool hashes carried through unchanged), not changes of the inputs; anyone
        # can check the inputs afterwards with `tiers plan verify`, which rebuilds the pools.
        if drawn.commitment.model_dump(mode="json") != committed:
            raise Conflict("the draw does not reproduce the published commitment")
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
                    payload={"commitment": committed, "plan": drawn.model_dump(mode="json")},
                    committed_at=committed_at, draw_seed=seed.hex(), revealed_at=dt.datetime.now(dt.UTC))
        session.add(draw)
        session.commit()
    except (PlanInputError, TableError) as exc:
        session.rollback()
        raise _scheduler_error(exc) from exc
    except Exception:
        session.rollback()
        raise
    return plan_row, draw


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
    from zoneinfo import ZoneInfo

    return plan_row.created_at.astimezone(ZoneInfo("Asia/Shanghai")).date()


def check_plan_rate(session: Session, principal: Principal, per_hour: int, now: dt.datetime | None = None) -> None:
    """At most ``per_hour`` plans per user per hour (each draw costs seconds of CPU, and a burst of
    plans is a way to read many subjects' grades): `TooManyAttempts` with ``Retry-After``."""
    import math

    from serving.errors import TooManyAttempts

    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=1)
    recent = session.execute(select(func.count(), func.min(Plan.created_at)).where(
        Plan.created_by == principal.username, Plan.created_at > since)).one()
    if recent[0] >= per_hour:
        oldest = recent[1] if recent[1].tzinfo else recent[1].replace(tzinfo=dt.UTC)
        wait = max(1, math.ceil((oldest + dt.timedelta(hours=1) - now).total_seconds()))
        raise TooManyAttempts(f"{principal.username!r} created {recent[0]} plans in the last hour (at most "
                              f"{per_hour}); retry in {wait} s", field="plan_id", headers={"Retry-After": str(wait)})


def list_plans(session: Session, principal: Principal) -> list[tuple[Plan, Draw]]:
    """Plans the principal's department takes part in, newest first."""
    rows = session.execute(select(Plan, Draw).join(Draw, Draw.plan_id == Plan.id).order_by(Plan.id.desc())).all()
    return [(p, d) for p, d in rows if principal.department in plan_departments(p)]


def stored_plan(draw: Draw) -> InspectionPlan:
    from supervision.plan import InspectionPlan

    return InspectionPlan.model_validate(draw.payload["plan"])


def verify_stored_plan(plan_row: Plan, draw: Draw) -> PlanVerification:
    """Recompute the draw from the stored (published) inputs against the commitment published
    before the draw: MATCH or MISMATCH with the first difference."""
    from pydantic import ValidationError

    from supervision.plan import DrawCommitment, PlanVerification, VerificationCheck, verify_plan

    published = DrawCommitment.model_validate(plan_row.payload["commitment"])
    try:
        plan = stored_plan(draw)
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


def record_results(session: Session, plan_row: Plan, draw: Draw, principal: Principal,
                   rows: Sequence[Mapping[str, Any]], today: dt.date) -> list[InspectionResult]:
    """Store results of the plan's visits and mirror them as ``inspection`` records; one transaction.

    Each (uscc, inspection_item) must be in the plan and readable by the caller (a result never
    widens what a department may read: an unreadable subject is answered as one not drawn), the
    caller's department must own the item, and ``inspected_on`` must fall in the plan's period,
    not before the plan was created and not after ``today``. Posting the same (uscc, item) again
    updates the result (e.g. its ``published_on``).
    """
    from serving.services.access import readable_subset
    from supervision.inspection_policy import policy_from_dict
    from supervision.results import OUTCOME_ZH, publication_deadline, results_to_records
    from supervision.results import InspectionResult as ResultModel

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
                               f"#{plan_row.id}; rule: results only for the plan's visits", field="uscc")
        if owner[key] != principal.department:
            raise NotAllowed(f"results[{n}]: item {key[1]!r} belongs to department {owner[key]!r}, not "
                             f"{principal.department!r}", field="inspection_item")
        if row["inspected_on"] > today:
            raise InvalidInput(f"results[{n}]: inspected_on {row['inspected_on']} is after today {today}",
                               field="inspected_on")
        if not earliest <= row["inspected_on"] <= plan.period_end:
            raise InvalidInput(f"results[{n}]: inspected_on {row['inspected_on']} is outside the plan: rule: from "
                               f"{earliest} (the period's start, and never before the plan was made on "
                               f"{created_on(plan_row)}) to {plan.period_end}", field="inspected_on")
        values = dict(row)
        # the records table has no item column (RecordIn): the description keeps which item it was
        values["description"] = values.get("description") or f"双随机抽查 {key[1]}：{OUTCOME_ZH[row['outcome']]}"
        models.append(ResultModel(plan_id=plan.plan_id, department=owner[key], **values))
    records = results_to_records(models)
    try:
        stored = []
        for model, record_id in zip(models, records["record_id"], strict=True):
            existing = session.scalars(select(InspectionResult).where(
                InspectionResult.draw_id == draw.id, InspectionResult.uscc == model.uscc,
                InspectionResult.inspection_item == model.inspection_item)).first()
            result = existing or InspectionResult(draw_id=draw.id, uscc=model.uscc,
                                                  inspection_item=model.inspection_item)
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
                              "inspector_ids": team.get(model.uscc, []), "recorded_by": principal.username}
            session.add(result)
            stored.append(result)
        record_rows = [{k: v for k, v in r.items() if v != "" and k in _RECORD_IN_FIELDS}
                       for r in records.to_dict("records")]
        # store_records commits: the results above and the records land in the same commit.
        store_records(session, record_rows)
    except Exception:
        session.rollback()
        raise
    return stored


def plan_results(session: Session, draw: Draw) -> list[InspectionResult]:
    return list(session.scalars(select(InspectionResult).where(InspectionResult.draw_id == draw.id)
                                .order_by(InspectionResult.inspected_on, InspectionResult.uscc)))


def public_results_csv(session: Session, plan_row: Plan, draw: Draw) -> bytes:
    """The public table (一公开) of the plan's published results: no grades, no personal data."""
    from supervision.results import InspectionResult as ResultModel
    from supervision.results import publish_results

    results = [ResultModel(plan_id=plan_row.name, uscc=r.uscc, department=r.payload.get("department", ""),
                           inspection_item=r.inspection_item, inspected_on=r.inspected_on, outcome=r.outcome,
                           document_no=r.payload.get("document_no") or "", published_on=r.published_on)
               for r in plan_results(session, draw)]
    from supervision.export import csv_bytes

    names = dict(session.execute(select(Subject.uscc, Subject.name)
                                 .where(Subject.uscc.in_([r.uscc for r in results]))).tuples().all())
    return csv_bytes(publish_results(results, names=names))


def visible_plan(session: Session, draw: Draw, principal: Principal) -> InspectionPlan:
    """The stored plan as ``principal`` may see it: visits and results of subjects it may read
    through the subject endpoints only (for plans drawn before pools respected coverage, and for
    departments of a joint plan that do not cover every visit)."""
    plan = stored_plan(draw)
    from serving.services.access import readable_subset

    readable = readable_subset(session, principal, [v.uscc for v in plan.visits])
    if len(readable) == len(plan.visits):
        return plan
    return plan.model_copy(update={"visits": [v for v in plan.visits if v.uscc in readable]})


def plan_csv(plan: InspectionPlan) -> bytes:
    """The regulator's visit list (internal: it shows grades) as UTF-8 CSV with BOM, every cell
    neutralised against formula injection."""
    from supervision.export import csv_bytes, plan_table

    return csv_bytes(plan_table(plan))


def plan_xlsx(plan: InspectionPlan) -> bytes:
    """The workbook of ``supervision.export.write_plan_excel`` (visits, summary, commitment)."""
    import tempfile

    from supervision.export import write_plan_excel

    with tempfile.TemporaryDirectory() as tmp:
        return write_plan_excel(plan, Path(tmp) / "plan.xlsx").read_bytes()


def create_demo_plan(session: Session, settings: Any, *, city: str | Path, as_of: dt.date, seed: int) -> str:
    """One verifiable market-supervision plan over the demo city (``serving.demo_load``); returns a note.

    The seed is derived from the demo seed, so a rerun draws the same plan; real plans always
    draw a fresh secret seed (``create_drawn_plan``).
    """
    from supervision.plan import PlanCreate

    tables = load_scheduler_tables(city)
    items = tables["items"]
    samr_items = items.loc[items["department"] == "samr", "item_code"].astype(str).tolist()[:3]
    if not samr_items:
        return "not created (no market-supervision items in the demo city)"
    start = as_of + dt.timedelta(days=1)
    request = PlanCreate(plan_id=f"demo-{as_of.isoformat()}", period_start=start,
                         period_end=start + dt.timedelta(days=89), as_of=as_of,
                         tasks=[{"department": "samr", "item": i} for i in samr_items])
    inputs = plan_inputs(session, city, as_of)
    plan_row, draw = create_drawn_plan(session, request, inputs, load_named_policy("default"), department="samr",
                                       created_by="demo", seed=hashlib.sha256(f"demo-{seed}".encode()).digest())
    verdict = "MATCH" if verify_stored_plan(plan_row, draw).match else "MISMATCH"
    plan = stored_plan(draw)
    return (f"plan #{plan_row.id} {plan_row.name}: {plan.draws_total} draws in {len(plan.visits)} visits "
            f"({', '.join(samr_items)}); verify {verdict}; see /regulator/plans/{plan_row.id}")
