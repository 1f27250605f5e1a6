"""`tiers plan`: double-random inspection plans from a task file and the files it names.

The draws are the service's (`serving.services.plans`: `fix_commitment_v2`, `draw_plan_v2`,
`draw_plan`), run here on a task file's tables instead of the database; what is checked and
published comes from `supervision/`. Bad input is a `WorkflowError` whose message is the rule broken;
nothing is printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from serving.workflows import WorkflowError

Progress = Callable[[int, int], None]


def load_task_files(task_path: Path) -> tuple[Any, Any, Any]:
    """(task, inputs, policy) of a task file (TOML or JSON): its tables and policy are read relative
    to the file."""
    from supervision.inspection_policy import PolicyError
    from supervision.plan import PlanInputError, load_plan_inputs, load_task, resolve_policy
    from supervision.tables import TableError

    try:
        task = load_task(task_path)
        inputs = load_plan_inputs(task, task_path.parent)
        policy = resolve_policy(task, task_path.parent)
    except (PlanInputError, PolicyError, TableError) as exc:
        raise WorkflowError("task", str(exc)) from exc
    return task, inputs, policy


def task_seed(task: Any) -> bytes:
    """The seed a task file fixes (``seed_hex``), else a fresh secret one."""
    from supervision.draw import new_draw_seed

    return bytes.fromhex(task.seed_hex) if task.seed_hex else new_draw_seed()


def _ratio_feed(url: str | None) -> Any:
    from supervision.ratios import HttpRatioFeed

    return HttpRatioFeed(base_url=url) if url else None


def commit_v1(task: Any, inputs: Any, policy: Any) -> tuple[Any, bytes]:
    """The tiers-draw-v1 commitment (seed, pool and policy hashes) and the secret seed."""
    from supervision.plan import PlanInputError, publish_commitment

    seed = task_seed(task)
    try:
        return publish_commitment(task, inputs, policy, seed), seed
    except (PlanInputError, ValueError) as exc:
        raise WorkflowError("task", str(exc)) from exc


def commit_v2(task: Any, inputs: Any, policy: Any, *, salt_source: str, salt_pattern: str,
              committed_at: dt.datetime, ratio_feed_url: str | None = None) -> tuple[Any, dict[str, str]]:
    """The tiers-draw-v2 commitment to publish and the secrets to keep (format
    ``tiers-draw-v2/secrets``: plan id, the commitment's digest, seed and nonce key in hex)."""
    from serving.services.plans import fix_commitment_v2
    from supervision.plan import PlanInputError
    from supervision.plan_v2 import DrawV2Error

    try:
        commitment, seed, nonce_key = fix_commitment_v2(
            task, inputs, policy, salt_source=salt_source, salt_pattern=salt_pattern, committed_at=committed_at,
            seed=task_seed(task), feed=_ratio_feed(ratio_feed_url))
    except (PlanInputError, DrawV2Error, ValueError, KeyError, ConnectionError) as exc:
        raise WorkflowError("task", str(exc)) from exc
    secrets = {"format": "tiers-draw-v2/secrets", "plan_id": commitment.plan_id,
               "commitment_digest": commitment.digest(), "seed": seed.hex(), "nonce_key": nonce_key.hex()}
    return commitment, secrets


def record_salt(commitment: Any, *, value: str, source: str, known_at: dt.datetime, entered_at: dt.datetime,
                entered_by: str) -> Any:
    """The public salt, accepted only if it follows the commitment's source, format and timeline."""
    from supervision.plan_v2 import DrawV2Error, accept_salt

    try:
        return accept_salt(commitment, value=value, source=source, known_at=known_at, entered_at=entered_at,
                           entered_by=entered_by)
    except DrawV2Error as exc:
        raise WorkflowError("value", str(exc)) from exc


def secrets_of(secrets: dict[str, Any], commitment: Any) -> tuple[bytes, bytes]:
    """(seed, nonce key) of a secret file written by `commit_v2`, checked to belong to ``commitment``.
    ``WorkflowError`` fields: ``format``, ``commitment`` or ``secrets`` (the CLI names its file)."""
    if secrets.get("format") != "tiers-draw-v2/secrets":
        raise WorkflowError("format", "not a tiers-draw-v2 secret file (from `tiers plan commit`)")
    if secrets.get("commitment_digest") != commitment.digest():
        raise WorkflowError("commitment", "belongs to another commitment")
    try:
        return bytes.fromhex(secrets["seed"]), bytes.fromhex(secrets["nonce_key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkflowError("secrets", "seed and nonce_key must be hexadecimal") from exc


def create(task: Any, inputs: Any, policy: Any, *, draw: dict[str, Any], drawn_at: dt.datetime,
           algorithm: str = "v2", ratio_feed_url: str | None = None, progress: Progress | None = None) -> Any:
    """Draw the plan: v2 with ``draw`` = seed, nonce_key, commitment, salt; v1 with ``draw`` = seed."""
    from serving.services.plans import draw_plan, draw_plan_v2
    from supervision.inspection_policy import PolicyError
    from supervision.plan import PlanInputError

    feed = _ratio_feed(ratio_feed_url)
    try:
        if algorithm == "v2":
            return draw_plan_v2(task, inputs, policy, **draw, drawn_at=drawn_at, feed=feed, progress=progress)
        return draw_plan(task, inputs, policy, draw["seed"], feed=feed, progress=progress)
    except (PlanInputError, PolicyError, ValueError, KeyError, ConnectionError) as exc:
        raise WorkflowError("task", str(exc)) from exc


def plan_summary(plan: Any, out: Path) -> dict[str, Any]:
    """What `tiers plan create --json` prints of a drawn plan written to ``out``."""
    return {
        "plan_id": plan.plan_id,
        "plan_file": str(out),
        "draw_seed_commitment": plan.commitment.draw_seed_commitment,
        "draws_total": plan.draws_total,
        "visits": len(plan.visits),
        "visits_saved": plan.visits_saved,
        "joint_visits": plan.joint_visits,
        "unstaffed": sum(bool(v.unstaffed) for v in plan.visits),
        "per_grade": [s.model_dump() for s in plan.summary],
    }


def export(plan: Any, *, csv_path: Path | None = None, xlsx_path: Path | None = None,
           results_template_path: Path | None = None) -> None:
    """Write the plan's visit list as CSV and/or Excel, and the results template (one row per visit item)."""
    from supervision.export import results_template, write_csv, write_plan_csv, write_plan_excel

    if csv_path:
        write_plan_csv(plan, csv_path)
    if xlsx_path:
        write_plan_excel(plan, xlsx_path)
    if results_template_path:
        write_csv(results_template(plan), results_template_path)


def verify_bundle(bundle: Any, published: Any, *, subject: str | None = None, opening: Any = None) -> Any:
    """The public check of a bundle against the published commitment; with ``subject`` and its
    ``opening``, that subject's treatment too."""
    from supervision.verify_v2 import verify_bundle as check_bundle
    from supervision.verify_v2 import verify_opening

    if subject is not None:
        return verify_opening(bundle, opening, subject, published)
    return check_bundle(bundle, published)


def audit(plan: Any, published: Any, bundle: Any = None, register_path: Path | None = None) -> Any:
    """The auditor's check of a full plan (v1 or v2), recomputing every draw; with ``bundle``, that it
    is the plan's; with ``register_path`` (a task file), that the pools are the register's."""
    from supervision.verify_v2 import audit_plan

    register = None
    if register_path is not None:
        register_task, register_inputs, _ = load_task_files(register_path)
        register = (register_task, register_inputs)
    return audit_plan(plan, published, bundle, register)


def publish(plan_parts: Any) -> Any:
    """The public bundle of a drawn v2 plan (no grade, no undrawn subject)."""
    from supervision.plan_v2 import DrawV2Error, publish_bundle

    try:
        return publish_bundle(plan_parts)
    except DrawV2Error as exc:
        raise WorkflowError("plan", str(exc)) from exc


def opening(plan: Any, subject: str) -> Any:
    """A subject's private opening of a drawn v2 plan."""
    from supervision.plan_v2 import DrawV2Error, subject_opening

    try:
        return subject_opening(plan, subject)
    except DrawV2Error as exc:
        raise WorkflowError("subject", str(exc)) from exc


def ratios(task: Any, inputs: Any, policy: Any) -> list[Any]:
    """The ratio feed of every department/item of the task: ratio, pool and expected inspections per stratum."""
    from supervision.plan import PlanInputError
    from supervision.service import ratio_feed_for

    try:
        feed = ratio_feed_for(task, inputs, policy)
    except PlanInputError as exc:
        raise WorkflowError("task", str(exc)) from exc
    return [feed.inspection_ratios(department=t.department, item=t.item, as_of=task.as_of) for t in task.tasks]


def publication_rules(policy_name: str) -> Any:
    """The publication-deadline rules (days, basis) of a policy by name or TOML path."""
    from supervision.inspection_policy import PolicyError, load_policy

    try:
        return load_policy(policy_name).defaults
    except PolicyError as exc:
        raise WorkflowError("policy", str(exc)) from exc


TEMPLATE_INFO_COLUMNS = ("visit_order", "name", "inspectors")  # the results template's, not a result's


def read_results(path: Path) -> list[Any]:
    """The inspection results of a results CSV (the template `export` writes, filled in); a bad row
    is a `WorkflowError` naming the file, the row, the field, the value and the rule."""
    import pandas as pd
    from pydantic import ValidationError

    from supervision.results import InspectionResult

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    parsed = []
    for row_no, row in enumerate(frame.to_dict("records"), start=1):
        data = {k: v for k, v in row.items() if v != "" and k not in TEMPLATE_INFO_COLUMNS}
        try:
            parsed.append(InspectionResult.model_validate(data))
        except ValidationError as exc:
            error = exc.errors()[0]
            raise WorkflowError("results", f"{path} row {row_no}: {error['loc']} = {error.get('input')!r}: "
                                           f"{error['msg']}") from exc
    return parsed


def record_results(results: Sequence[Any], *, records_out: Path, public_out: Path | None, rules: Any,
                   today: dt.date) -> dict[str, int]:
    """Write the results as contract records (kind inspection) and, with ``public_out``, the public
    table; returns how many results stand in each publication status as of ``today``."""
    import pandas as pd

    from supervision.results import publication_status, results_to_records, write_public_results_csv

    results_to_records(results).to_csv(records_out, index=False)
    if public_out:
        write_public_results_csv(results, public_out)
    statuses = [publication_status(r, today=today, days=rules.publication_days, basis=rules.publication_day_basis)
                for r in results]
    return pd.Series(statuses, dtype=str).value_counts().to_dict()
