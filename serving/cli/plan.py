"""`tiers plan …`: commit, salt, create, publish, open, verify and export double-random inspection plans.

tiers-draw-v2 (the default): commit → (salt, once public) → create → publish / opening → verify.
tiers-draw-v1 (``--algorithm v1``): commit → create → verify, as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail, parse_datetime

plan_app = typer.Typer(
    help="Double-random inspection plans (双随机): commit, draw, verify, export.", no_args_is_help=True
)
app.add_typer(plan_app, name="plan")


def _load(task_path: Path):
    from serving.workflows import WorkflowError
    from serving.workflows.plan import load_task_files

    try:
        return load_task_files(task_path)
    except WorkflowError as exc:
        fail(exc.message)


def _seed(task, seed_file: Path | None) -> bytes:
    from serving.workflows.plan import task_seed

    if seed_file is not None:
        text = seed_file.read_text(encoding="utf-8").strip()
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            seed = b""
        if len(seed) != 32:
            fail(f"--seed-file {seed_file}: content must be 64 hexadecimal characters (32 bytes)")
        return seed
    return task_seed(task)


ALGORITHMS = ("v2", "v1")


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        fail(f"--algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)} (v2: tiers-draw-v2, the default)")


def _read_json_file(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{what} {path}: cannot be read as JSON ({exc})")
    if not isinstance(data, dict):
        fail(f"{what} {path}: must be a JSON object")
    return data


def _document(path: Path, model, what: str):
    """Read a JSON document into a pydantic model (straight from the bytes: a 10 M-subject plan
    is hundreds of MB), exit 2 naming the first bad field."""
    from pydantic import ValidationError

    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"{what} {path}: cannot be read ({exc})")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        fail(f"{what} {path}: {'.'.join(str(x) for x in error['loc'])}: {error['msg']}")


def _format_of(path: Path) -> str | None:
    """The ``format`` field of a JSON document, read without building the rest of it."""
    from pydantic import BaseModel, ConfigDict

    class Kind(BaseModel):
        model_config = ConfigDict(extra="ignore")
        format: str | None = None

    return _document(path, Kind, "file").format


def _now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _write_secret(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


@plan_app.command("commit")
def commit(
    task_path: Path = typer.Option(..., "--task", help="task file (TOML or JSON)"),
    algorithm: str = typer.Option("v2", "--algorithm", help="v2 (tiers-draw-v2, default) or v1"),
    secret_out: Path | None = typer.Option(
        None, "--secret-out", help="v2: where to keep the secret seed and nonce key (never publish it)"
    ),
    salt_source: str | None = typer.Option(
        None, "--salt-source", help="v2: the public source the salt will come from, e.g. a named lottery draw"
    ),
    salt_pattern: str | None = typer.Option(
        None,
        "--salt-pattern",
        help="v2: the salt value's exact format, a full-match pattern (docs §16.1), e.g. '\\d \\d \\d' "
        "for a 3-digit lottery result written with single spaces",
    ),
    out: Path | None = typer.Option(None, "--out", help="v2: write the commitment to publish to this file"),
    seed_out: Path | None = typer.Option(None, "--seed-out", help="v1: where to keep the secret seed"),
    ratio_feed_url: str | None = typer.Option(
        None, "--ratio-feed-url", help="v2: read ratios from a tiers API"
    ),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """Publish the commitment before the draw (v2: seed and policy hashes, salt source, pool roots and
    per-stratum counts; v1: seed, pool and policy hashes)."""
    _check_algorithm(algorithm)
    task, inputs, policy = _load(task_path)
    if algorithm == "v1":
        _commit_v1(task, inputs, policy, seed_out, as_json)
        return
    from serving.workflows import WorkflowError
    from serving.workflows.plan import commit_v2

    if secret_out is None or not salt_source or not salt_pattern:
        fail(
            "tiers-draw-v2 (the default) commit needs --secret-out FILE, --salt-source TEXT (where the "
            "public salt will come from) and --salt-pattern PATTERN (how its value is written); "
            "for a tiers-draw-v1 plan (--seed-out) add --algorithm v1"
        )
    try:
        commitment, secrets = commit_v2(task, inputs, policy, salt_source=salt_source, salt_pattern=salt_pattern,
                                        committed_at=_now(), ratio_feed_url=ratio_feed_url)
    except WorkflowError as exc:
        fail(exc.message)
    _write_secret(secret_out, json.dumps(secrets, indent=1) + "\n")
    text = commitment.model_dump_json(indent=1)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        typer.echo(text)
        return
    typer.echo(f"commitment {commitment.digest()} of plan {commitment.plan_id} at {commitment.committed_at}")
    for t in commitment.tasks:
        typer.echo(
            f"  {t.key:<16} pool {t.pool_size:>8}  root {t.pool_root[:16]}…  draw {sum(s.draw for s in t.strata)}"
        )
    typer.echo(
        f"publish {out or 'the commitment (--out/--json)'} now; then wait for the salt from: {salt_source}"
    )
    typer.echo(f"secret seed and nonce key kept in {secret_out} (never publish it)")


def _commit_v1(task, inputs, policy, seed_out: Path | None, as_json: bool) -> None:
    from serving.workflows import WorkflowError
    from serving.workflows.plan import commit_v1

    if seed_out is None:
        fail("v1 commit needs --seed-out FILE")
    try:
        commitment, seed = commit_v1(task, inputs, policy)
    except WorkflowError as exc:
        fail(exc.message)
    _write_secret(seed_out, seed.hex() + "\n")
    if as_json:
        typer.echo(commitment.model_dump_json(indent=2))
    else:
        typer.echo(f"draw_seed_commitment {commitment.draw_seed_commitment}")
        typer.echo(f"policy_hash          {commitment.policy_hash}")
        for key, value in commitment.pool_hashes.items():
            typer.echo(f"pool_hash {key:<10} {value}")
        typer.echo(f"secret seed kept in {seed_out} (reveal it only after the draw)")


@plan_app.command("salt")
def salt(
    commitment_path: Path = typer.Option(
        ..., "--commitment", help="the commitment published by `tiers plan commit`"
    ),
    value: str = typer.Option(..., "--value", help="the public value exactly as the source published it"),
    source: str = typer.Option(..., "--source", help="must be the source named in the commitment"),
    entered_by: str = typer.Option(
        ..., "--entered-by", help="who enters it (a second person, not the planner)"
    ),
    known_at: str | None = typer.Option(
        None, "--known-at", help="when the value became public (ISO time with zone; default: now)"
    ),
    out: Path = typer.Option(..., "--out", help="salt file for `tiers plan create --salt-file`"),
) -> None:
    """Record the public salt, which must have become known after the commitment was published."""

    from serving.workflows import WorkflowError
    from serving.workflows.plan import record_salt
    from supervision.bundle import DrawCommitmentV2

    commitment = _document(commitment_path, DrawCommitmentV2, "commitment")
    now = _now()
    known = now if known_at is None else parse_datetime("--known-at", known_at)
    if known > now:
        fail(f"--known-at {known_at}: in the future; rule: a salt is entered only once it is public")
    try:
        accepted = record_salt(
            commitment, value=value, source=source, known_at=known, entered_at=now, entered_by=entered_by
        )
    except WorkflowError as exc:
        fail(exc.message)
    out.write_text(accepted.model_dump_json(indent=1) + "\n", encoding="utf-8")
    typer.echo(f"salt recorded in {out} (known at {accepted.known_at}, entered at {accepted.entered_at})")


@plan_app.command("create")
def create(
    task_path: Path = typer.Option(..., "--task", help="task file (TOML or JSON)"),
    out: Path = typer.Option(
        Path("plan.json"), "--out", help="plan JSON (commitment, seed, pools, draws, visits)"
    ),
    algorithm: str = typer.Option("v2", "--algorithm", help="v2 (tiers-draw-v2, default) or v1"),
    secret_file: Path | None = typer.Option(
        None, "--secret-file", help="v2: secrets kept by `tiers plan commit`"
    ),
    commitment_path: Path | None = typer.Option(None, "--commitment", help="v2: the published commitment"),
    salt_file: Path | None = typer.Option(
        None, "--salt-file", help="v2: the salt recorded by `tiers plan salt`"
    ),
    seed_file: Path | None = typer.Option(None, "--seed-file", help="v1: seed kept by `tiers plan commit`"),
    csv_path: Path | None = typer.Option(None, "--csv", help="also write the visit list as CSV"),
    xlsx_path: Path | None = typer.Option(None, "--xlsx", help="also write the visit list as Excel"),
    ratio_feed_url: str | None = typer.Option(None, "--ratio-feed-url", help="read ratios from a tiers API"),
    as_json: bool = typer.Option(False, "--json", help="print only a JSON summary"),
) -> None:
    """Draw subjects per grade stratum, assign inspectors, merge joint visits, write the plan."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from serving.workflows import WorkflowError
    from serving.workflows.plan import create as draw_plan
    from serving.workflows.plan import export as export_plan
    from serving.workflows.plan import plan_summary

    _check_algorithm(algorithm)
    task, inputs, policy = _load(task_path)
    if algorithm == "v2":
        draw = _v2_draw_inputs(secret_file, commitment_path, salt_file)
    else:
        draw = {"seed": _seed(task, seed_file)}
    console = Console(stderr=True, quiet=as_json)
    try:
        with Progress(console=console, transient=True) as progress:
            bar = progress.add_task("drawing", total=len(task.tasks))
            on_step = lambda done, _total: progress.update(bar, completed=done)  # noqa: E731
            plan = draw_plan(task, inputs, policy, draw=draw, drawn_at=_now(), algorithm=algorithm,
                             ratio_feed_url=ratio_feed_url, progress=on_step)
    except WorkflowError as exc:
        fail(exc.message)
    out.write_text(plan.model_dump_json(indent=1), encoding="utf-8")
    export_plan(plan, csv_path=csv_path, xlsx_path=xlsx_path)
    summary = plan_summary(plan, out)
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


def _v2_draw_inputs(secret_file: Path | None, commitment_path: Path | None, salt_file: Path | None) -> dict:
    """Seed, nonce key, commitment and salt for a v2 draw, read and cross-checked."""
    from serving.workflows import WorkflowError
    from serving.workflows.plan import secrets_of
    from supervision.bundle import DrawCommitmentV2, PublicSalt

    if secret_file is None or commitment_path is None:
        fail(
            "tiers-draw-v2 (the default) create needs --secret-file and --commitment from `tiers plan commit`; "
            "for a tiers-draw-v1 plan (--seed-file) add --algorithm v1"
        )
    if salt_file is None:
        fail(
            "the draw needs the public salt: record it with `tiers plan salt` once it is public, "
            "then pass --salt-file (rule: the salt must become known after the commitment)"
        )
    commitment = _document(commitment_path, DrawCommitmentV2, "commitment")
    salt_value = _document(salt_file, PublicSalt, "salt")
    secrets = _read_json_file(secret_file, "secret file")
    try:
        seed, nonce_key = secrets_of(secrets, commitment)
    except WorkflowError as exc:
        if exc.field == "commitment":
            fail(f"secret file {secret_file} {exc.message} than {commitment_path}")
        fail(f"secret file {secret_file}: {exc.message}")
    return {"seed": seed, "nonce_key": nonce_key, "commitment": commitment, "salt": salt_value}


@plan_app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="a public bundle (`tiers plan publish`) or a full plan (auditors)"),
    commitment_path: Path | None = typer.Option(
        None, "--commitment", help="the commitment JSON published before the draw"
    ),
    subject: str | None = typer.Option(
        None, "--subject", help="with --opening: check this subject's treatment"
    ),
    opening_path: Path | None = typer.Option(None, "--opening", help="the subject's private opening (JSON)"),
    bundle_path: Path | None = typer.Option(
        None, "--bundle", help="auditors: also check that this published bundle is the plan's"
    ),
    register_path: Path | None = typer.Option(
        None,
        "--register",
        help="auditors: a task file naming the register (subjects, grades snapshot, items, leads) the "
        "pools must be rebuilt from: no eligible subject left out, none invented",
    ),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """MATCH (exit 0) or MISMATCH and the first difference (exit 1).

    A bundle: the public check (commitment, seed, policy bytes, counts, salt times, drawn lists);
    with --subject and --opening, that subject's own treatment too. A full plan (v1 or v2): the
    auditor's check, recomputing every draw."""
    from supervision.bundle import BUNDLE_FORMAT, PublicBundle, SubjectOpening
    from supervision.plan import InspectionPlan

    kind = _format_of(path)
    published = _published_commitment(commitment_path)
    if (subject is None) != (opening_path is None):
        fail("--subject and --opening go together")
    from serving.workflows.plan import audit, verify_bundle

    if kind == BUNDLE_FORMAT:
        if bundle_path is not None or register_path is not None:
            fail("--bundle and --register check a full plan; give the plan as the argument")
        bundle = _document(path, PublicBundle, "bundle")
        if subject is not None:
            proof = _document(opening_path, SubjectOpening, "opening")
            result = verify_bundle(bundle, published, subject=subject, opening=proof)
        else:
            result = verify_bundle(bundle, published)
    else:
        if subject is not None:
            fail("--subject/--opening check a subject against the public bundle; give the bundle")
        plan = _document(path, InspectionPlan, "plan")
        if bundle_path is not None and plan.draw_v2 is None:
            fail("--bundle: this is a tiers-draw-v1 plan, which has no bundle")
        bundle = None if bundle_path is None else _document(bundle_path, PublicBundle, "bundle")
        if register_path is not None and plan.draw_v2 is None:
            fail("--register: this is a tiers-draw-v1 plan; the register check covers tiers-draw-v2")
        from serving.workflows import WorkflowError

        try:
            result = audit(plan, published, bundle, register_path)
        except WorkflowError as exc:
            fail(exc.message)
    if as_json:
        typer.echo(result.model_dump_json())
    else:
        typer.echo(result.verdict if result.match else f"MISMATCH: {result.first_difference}")
        if result.match and subject is not None:
            drawn = {t.key: set(t.drawn) for t in bundle.tasks}
            for entry in proof.tasks:
                outcome = "drawn" if subject in drawn[entry.key] else "not drawn"
                typer.echo(
                    f"{entry.key}: in the committed pool, stratum {entry.stratum}, {outcome} as the rule says"
                )
        elif result.match and kind == BUNDLE_FORMAT:
            typer.echo(
                "public check only: who was drawn is checked by each subject with its opening, "
                "and by auditors with the full plan",
                err=True,
            )
    if not result.match:
        raise typer.Exit(code=1)


def _published_commitment(path: Path | None):
    """The commitment published before the draw: v2 (has a format) or v1."""
    if path is None:
        return None
    from supervision.bundle import COMMITMENT_FORMAT, DrawCommitmentV2
    from supervision.plan import DrawCommitment

    return _document(
        path, DrawCommitmentV2 if _format_of(path) == COMMITMENT_FORMAT else DrawCommitment, "commitment"
    )


def _load_plan(path: Path):
    from supervision.plan import InspectionPlan

    return _document(path, InspectionPlan, "plan")


@plan_app.command("publish")
def publish(
    plan_path: Path = typer.Argument(
        ..., help="full plan JSON (tiers-draw-v2) written by `tiers plan create`"
    ),
    out: Path = typer.Option(..., "--out", help="the public bundle: no grade, no undrawn subject"),
) -> None:
    """Write the public bundle anyone can check without seeing a grade (`tiers plan verify BUNDLE`)."""
    from serving.workflows import WorkflowError
    from serving.workflows.plan import publish as publish_bundle
    from supervision.plan_v2 import PlanParts

    try:
        bundle = publish_bundle(_document(plan_path, PlanParts, "plan"))
    except WorkflowError as exc:
        fail(exc.message)
    out.write_text(bundle.model_dump_json(indent=1) + "\n", encoding="utf-8")
    drawn = sum(len(t.drawn) for t in bundle.tasks)
    typer.echo(
        f"bundle of plan {bundle.commitment.plan_id} written to {out} ({drawn} draws, commitment {bundle.commitment.digest()[:16]}…)"
    )


@plan_app.command("opening")
def opening(
    plan_path: Path = typer.Argument(..., help="full plan JSON (tiers-draw-v2)"),
    subject: str = typer.Option(..., "--subject", help="USCC of the subject"),
    out: Path | None = typer.Option(None, "--out", help="write the opening here (default: print it)"),
) -> None:
    """A subject's private opening: give it only to that subject; it checks its treatment with
    `tiers plan verify BUNDLE --subject USCC --opening FILE`."""
    from serving.workflows import WorkflowError
    from serving.workflows.plan import opening as subject_opening

    try:
        found = subject_opening(_load_plan(plan_path), subject)
    except WorkflowError as exc:
        fail(exc.message)
    text = found.model_dump_json(indent=1)
    if out is None:
        typer.echo(text)
    else:
        _write_secret(out, text + "\n")
        typer.echo(f"opening of {subject} ({len(found.tasks)} task(s)) written to {out}")


@plan_app.command("ratios")
def ratios(
    task_path: Path = typer.Option(..., "--task", help="task file (TOML or JSON)"),
    as_json: bool = typer.Option(False, "--json", help="print only JSON"),
) -> None:
    """The ratio feed for each department/item of a task: ratio, pool and expected inspections per stratum."""
    from serving.workflows import WorkflowError
    from serving.workflows.plan import ratios as ratio_feed

    task, inputs, policy = _load(task_path)
    try:
        out = ratio_feed(task, inputs, policy)
    except WorkflowError as exc:
        fail(exc.message)
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
    from serving.workflows.plan import export as export_plan
    from supervision.plan import InspectionPlan

    if not (csv_path or xlsx_path or results_template_path):
        fail("export needs --csv, --xlsx and/or --results-template")
    plan = InspectionPlan.model_validate_json(plan_path.read_text(encoding="utf-8"))
    export_plan(plan, csv_path=csv_path, xlsx_path=xlsx_path, results_template_path=results_template_path)


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

    from serving.workflows import WorkflowError
    from serving.workflows.plan import publication_rules, read_results, record_results

    try:
        rules = publication_rules(policy_name)
        parsed = read_results(results_path)
    except WorkflowError as exc:
        fail(exc.message)
    status = record_results(parsed, records_out=records_out, public_out=public_out, rules=rules,
                            today=dt.date.today())
    if as_json:
        typer.echo(json.dumps({"records": len(parsed), "publication_status": status}))
    else:
        typer.echo(f"{len(parsed)} records written to {records_out}; publication status: {status}")
