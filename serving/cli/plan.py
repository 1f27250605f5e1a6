"""`tiers plan …`: commit, create, verify and export double-random inspection plans."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app

TEMPLATE_INFO_COLUMNS = ("visit_order", "name", "inspectors")

plan_app = typer.Typer(
    help="Double-random inspection plans (双随机): commit, draw, verify, export.", no_args_is_help=True
)
app.add_typer(plan_app, name="plan")


def _fail(message: str) -> None:
    """Bad input: say what and why on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _load(task_path: Path):
    from supervision.inspection_policy import PolicyError
    from supervision.plan import PlanInputError, load_plan_inputs, load_task, resolve_policy
    from supervision.tables import TableError

    try:
        task = load_task(task_path)
        inputs = load_plan_inputs(task, task_path.parent)
        policy = resolve_policy(task, task_path.parent)
    except (PlanInputError, PolicyError, TableError) as exc:
        _fail(str(exc))
    return task, inputs, policy


def _seed(task, seed_file: Path | None) -> bytes:
    from supervision.draw import new_draw_seed

    if seed_file is not None:
        text = seed_file.read_text(encoding="utf-8").strip()
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            seed = b""
        if len(seed) != 32:
            _fail(f"--seed-file {seed_file}: content must be 64 hexadecimal characters (32 bytes)")
        return seed
    if task.seed_hex:
        return bytes.fromhex(task.seed_hex)
    return new_draw_seed()


@plan_app.command("commit")
def commit(
    task_path: Path = typer.Option(..., "--task", help="task file (TOML or JSON)"),
    seed_out: Path = typer.Option(..., "--seed-out", help="where to keep the secret seed until the draw"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Publish the commitment before the draw: SHA-256 of a fresh secret seed, pool and policy hashes."""
    from supervision.plan import PlanInputError, publish_commitment

    task, inputs, policy = _load(task_path)
    seed = _seed(task, None)
    try:
        commitment = publish_commitment(task, inputs, policy, seed)
    except (PlanInputError, ValueError) as exc:
        _fail(str(exc))
    seed_out.write_text(seed.hex() + "\n", encoding="utf-8")
    seed_out.chmod(0o600)
    if as_json:
        typer.echo(commitment.model_dump_json(indent=2))
    else:
        typer.echo(f"draw_seed_commitment {commitment.draw_seed_commitment}")
        typer.echo(f"policy_hash          {commitment.policy_hash}")
        for key, value in commitment.pool_hashes.items():
            typer.echo(f"pool_hash {key:<10} {value}")
        typer.echo(f"secret seed kept in {seed_out} (reveal it only after the draw)")


@plan_app.command("create")
def create(
    task_path: Path = typer.Option(..., "--task", help="task file (TOML or JSON)"),
    out: Path = typer.Option(
        Path("plan.json"), "--out", help="plan JSON (commitment, seed, pools, draws, visits)"
    ),
    seed_file: Path | None = typer.Option(None, "--seed-file", help="seed kept by `tiers plan commit`"),
    csv_path: Path | None = typer.Option(None, "--csv", help="also write the visit list as CSV"),
    xlsx_path: Path | None = typer.Option(None, "--xlsx", help="also write the visit list as Excel"),
    ratio_feed_url: str | None = typer.Option(None, "--ratio-feed-url", help="read ratios from a tiers API"),
    as_json: bool = typer.Option(False, "--json", help="print only a JSON summary"),
) -> None:
    """Draw subjects per grade stratum, assign inspectors, merge joint visits, write the plan."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from supervision.export import write_plan_csv, write_plan_excel
    from supervision.inspection_policy import PolicyError
    from supervision.plan import PlanInputError, create_plan
    from supervision.ratios import HttpRatioFeed

    task, inputs, policy = _load(task_path)
    seed = _seed(task, seed_file)
    feed = HttpRatioFeed(base_url=ratio_feed_url) if ratio_feed_url else None
    console = Console(stderr=True, quiet=as_json)
    try:
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("drawing", total=len(task.tasks))
            plan = create_plan(
                task,
                inputs,
                policy,
                seed,
                feed=feed,
                progress=lambda done, _total: progress.update(bar, completed=done),
            )
    except (PlanInputError, PolicyError, ValueError, KeyError, ConnectionError) as exc:
        _fail(str(exc))
    out.write_text(plan.model_dump_json(indent=1), encoding="utf-8")
    if csv_path:
        write_plan_csv(plan, csv_path)
    if xlsx_path:
        write_plan_excel(plan, xlsx_path)
    summary = {
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
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    table = Table(
        title=f"plan {plan.plan_id}: {len(plan.visits)} visits ({plan.visits_saved} saved by joint visits)"
    )
    for column in ("grade", "pool", "drawn", "expected", "configured_ratio", "realised_ratio"):
        table.add_column(column, justify="right")
    for s in plan.summary:
        table.add_row(
            s.grade,
            str(s.pool),
            str(s.drawn),
            f"{s.expected:.1f}",
            f"{s.configured_ratio:.2%}",
            f"{s.realised_ratio:.2%}",
        )
    Console().print(table)
    typer.echo(f"plan written to {out}; unstaffed visits: {summary['unstaffed']}")


@plan_app.command("verify")
def verify(
    plan_path: Path = typer.Argument(..., help="plan JSON written by `tiers plan create`"),
    commitment_path: Path | None = typer.Option(
        None, "--commitment", help="commitment JSON published before the draw"
    ),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Recompute the draw from the published inputs: MATCH (exit 0) or MISMATCH and the first difference (exit 1)."""
    from pydantic import ValidationError

    from supervision.plan import DrawCommitment, InspectionPlan, verify_plan

    try:
        plan = InspectionPlan.model_validate_json(plan_path.read_text(encoding="utf-8"))
        published = (
            DrawCommitment.model_validate_json(commitment_path.read_text(encoding="utf-8"))
            if commitment_path
            else None
        )
    except (OSError, ValidationError) as exc:
        _fail(f"cannot read plan/commitment: {exc}")
    result = verify_plan(plan, published)
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        typer.echo(result.verdict if result.match else f"MISMATCH: {result.first_difference}")
    if not result.match:
        raise typer.Exit(code=1)


@plan_app.command("ratios")
def ratios(
    task_path: Path = typer.Option(..., "--task", help="task file (TOML or JSON)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """The ratio feed for each department/item of a task: ratio, pool and expected inspections per stratum."""
    from supervision.plan import PlanInputError
    from supervision.service import ratio_feed_for

    task, inputs, policy = _load(task_path)
    try:
        feed = ratio_feed_for(task, inputs, policy)
    except PlanInputError as exc:
        _fail(str(exc))
    out = [feed.inspection_ratios(department=t.department, item=t.item, as_of=task.as_of) for t in task.tasks]
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in out], ensure_ascii=False))
        return
    for r in out:
        typer.echo(f"{r.department}/{r.item} (key_item={r.key_item}, cap_applied={r.cap_applied}):")
        for s in r.strata:
            typer.echo(
                f"  {s.stratum:<7} pool {s.pool_size:>8}  ratio {s.ratio:7.2%}  expected {s.expected_inspections}"
            )


@plan_app.command("export")
def export(
    plan_path: Path = typer.Argument(..., help="plan JSON"),
    csv_path: Path | None = typer.Option(None, "--csv"),
    xlsx_path: Path | None = typer.Option(None, "--xlsx"),
    results_template_path: Path | None = typer.Option(
        None, "--results-template", help="CSV with one row per visit item for recording results"
    ),
) -> None:
    """Write a plan's visit list (subject, district, grade, items, inspectors, order) as CSV and/or Excel."""
    from supervision.export import results_template, write_plan_csv, write_plan_excel
    from supervision.plan import InspectionPlan

    if not (csv_path or xlsx_path or results_template_path):
        _fail("export needs --csv, --xlsx and/or --results-template")
    plan = InspectionPlan.model_validate_json(plan_path.read_text(encoding="utf-8"))
    if csv_path:
        write_plan_csv(plan, csv_path)
    if xlsx_path:
        write_plan_excel(plan, xlsx_path)
    if results_template_path:
        results_template(plan).to_csv(results_template_path, index=False, encoding="utf-8")


@plan_app.command("results")
def results(
    results_path: Path = typer.Argument(
        ...,
        help="results CSV: plan_id, uscc, department, inspection_item, inspected_on, outcome[, document_no, description, published_on]",
    ),
    records_out: Path = typer.Option(..., "--records-out", help="contract `records` CSV of kind inspection"),
    public_out: Path | None = typer.Option(None, "--public-out", help="public table (一公开) CSV"),
    policy_name: str = typer.Option(
        "default", "--policy", help="policy name or TOML path (publication deadline rule)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Turn inspection results into contract records and the public table; report publication deadlines."""
    import datetime as dt

    import pandas as pd
    from pydantic import ValidationError

    from supervision.inspection_policy import PolicyError, load_policy
    from supervision.results import (
        InspectionResult,
        publication_status,
        results_to_records,
        write_public_results_csv,
    )

    try:
        rules = load_policy(policy_name).defaults
    except PolicyError as exc:
        _fail(str(exc))
    frame = pd.read_csv(results_path, dtype=str, keep_default_na=False)
    parsed = []
    for row_no, row in enumerate(frame.to_dict("records"), start=1):
        # informational columns of the results template are not part of a result
        data = {k: v for k, v in row.items() if v != "" and k not in TEMPLATE_INFO_COLUMNS}
        try:
            parsed.append(InspectionResult.model_validate(data))
        except ValidationError as exc:
            _fail(
                f"{results_path} row {row_no}: {exc.errors()[0]['loc']} = {exc.errors()[0].get('input')!r}: {exc.errors()[0]['msg']}"
            )
    results_to_records(parsed).to_csv(records_out, index=False)
    if public_out:
        write_public_results_csv(parsed, public_out)
    today = dt.date.today()
    status = (
        pd.Series(
            [
                publication_status(
                    r, today=today, days=rules.publication_days, basis=rules.publication_day_basis
                )
                for r in parsed
            ],
            dtype=str,
        )
        .value_counts()
        .to_dict()
    )
    if as_json:
        typer.echo(json.dumps({"records": len(parsed), "publication_status": status}))
    else:
        typer.echo(f"{len(parsed)} records written to {records_out}; publication status: {status}")
