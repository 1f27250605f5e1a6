"""`tiers train`, `tiers promote`, `tiers promotions`, `tiers report`, `tiers grade`: models from the
feature store to the MLflow registry, through the promotion gate (audited in the service
database), to a grade table the service loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail, parse_date

# how the workflows' messages name each input: by these commands' options
OPTION_OF = {"store": "--store", "horizon": "--horizon", "min_positives": "--min-positives",
             "dates": "--as-of/--validate-as-of/--candidates:", "validate_as_of": "--validate-as-of",
             "as_of": "--as-of", "what_if_grades": "--what-if-grades", "policy": "--policy"}


def _fail_with(exc) -> None:
    """A workflow's bad-input error, said with the option the user typed."""
    fail(f"{OPTION_OF.get(exc.field, exc.field)} {exc.message}")


def _registry(tracking_uri: str | None, artifacts: Path | None):
    """The registry the CLI uses: settings' MLflow URI unless --tracking-uri is given; its artifacts
    where the service keeps them (beside a SQLite store) unless --artifacts is given."""
    from serving.services.model_registry import artifacts_dir_for
    from serving.settings import get_settings
    from serving.workflows.training import open_registry

    uri = tracking_uri or get_settings().mlflow_tracking_uri
    return open_registry(uri, artifacts or artifacts_dir_for(uri))


def _check_sector(option: str, value: str) -> str:
    from serving.workflows.training import SECTIONS

    if value not in SECTIONS:
        fail(f"{option} {value!r}: not a GB/T 4754-2017 section (rule: one letter A–T)")
    return value


TRACKING = typer.Option(None, "--tracking-uri", help="MLflow tracking/registry URI (default: settings, sqlite:///var/mlflow.db).")
ARTIFACTS = typer.Option(None, "--artifacts", help="Artifact directory of a SQLite registry (default: mlartifacts "
                                                    "beside its mlflow.db, where the service looks).")


@app.command("train")
def train(
    store: Path = typer.Option(..., "--store", help="Feature store directory written by `tiers ingest`."),
    sector: list[str] = typer.Option([], "--sector", help="Also train this sector's model (GB/T 4754 section; repeatable)."),
    all_sectors: bool = typer.Option(False, "--all-sectors", help="Train a model for every sector present."),
    challenger: list[str] = typer.Option([], "--challenger", help="Train this sector's model twice (the second with seed + 1), so it has a challenger to promote (repeatable)."),
    as_of: list[str] = typer.Option([], "--as-of", help="Training as-of date (repeatable; default: 3 dates 6 months apart)."),
    validate_as_of: str | None = typer.Option(None, "--validate-as-of", help="Out-of-time validation as-of date."),
    horizon: int = typer.Option(12, "--horizon", help="Label horizon in months."),
    seed: int = typer.Option(42, "--seed", help="Seed of the split, the models and the bootstraps."),
    min_positives: int = typer.Option(300, "--min-positives", help="Adverse outcomes a sector needs for its own model."),
    policy_file: Path | None = typer.Option(None, "--policy", help="Sector policy TOML (exclusions, direct grading, target shares)."),
    candidates: str = typer.Option("scorecard,gbm_additive,gbm", "--candidates",
                                   help="Comma-separated candidates compared out of time (scorecard, gbm_additive, gbm, blend, gam)."),
    tracking_uri: str | None = TRACKING,
    artifacts: Path | None = ARTIFACTS,
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Train the general model (and sector models), validate out of time, register as challenger.

    The first version of a model name becomes champion; later ones are challengers until
    `tiers promote` passes them through the gate.
    """
    sectors = [_check_sector("--sector", s) for s in sector]
    challengers = [_check_sector("--challenger", s) for s in challenger]
    train_dates = tuple(parse_date("--as-of", d) for d in as_of)
    valid_date = parse_date("--validate-as-of", validate_as_of) if validate_as_of else None

    from rich.progress import Progress

    from serving.workflows import WorkflowError
    from serving.workflows.training import train_all, training_config, training_policy

    try:
        policy = None if policy_file is None else training_policy(policy_file)
        config = training_config(store, train_as_of=train_dates, validate_as_of=valid_date, horizon=horizon,
                                 seed=seed, min_positives=min_positives,
                                 candidates=[c.strip() for c in candidates.split(",") if c.strip()])
        registry = _registry(tracking_uri, artifacts)
        with Progress(disable=json_out, transient=True) as progress:
            task = progress.add_task("training", total=None)
            summary = train_all(store, config, registry, sectors=sectors, all_sectors=all_sectors, policy=policy,
                                challengers=challengers, progress=lambda step: progress.update(task, description=step))
    except WorkflowError as exc:
        _fail_with(exc)
    results = summary["models"]
    if json_out:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trained on {', '.join(summary['train_as_of'])}; validated out of time on {summary['validate_as_of']}")
    for col in ("model", "version", "aliases", "kind", "candidate", "OOT AUC", "Brier", "note"):
        table.add_column(col)
    for r in results:
        if "skipped" in r:
            table.add_row(r["model"], "—", "", "skipped", "", "", "", r["skipped"])
            continue
        m = r["metrics"]
        table.add_row(r["model"], str(r["version"]), ",".join(r["aliases"]), r["kind"], r["candidate"],
                      f"{m['oot_auc']:.4f} [{m['oot_auc_low']:.3f}, {m['oot_auc_high']:.3f}]", f"{m['oot_brier']:.4f}",
                      "; ".join(r["notes"]))
    Console().print(table)


@app.command("promote")
def promote(
    model: str = typer.Argument(..., help="Registered model name, e.g. tiers-general or tiers-sector-H."),
    version: int = typer.Argument(..., help="Version to make champion."),
    force: bool = typer.Option(False, "--force", help="Promote even if the gate fails (admin; audited)."),
    reason: str = typer.Option("", "--reason", help="Why (required with --force)."),
    user: str = typer.Option("", "--user", help="Who asks (default: the OS user)."),
    auc_tolerance: float = typer.Option(0.01, "--auc-tolerance", help="Largest AUC drop the gate accepts."),
    grade_psi_limit: float = typer.Option(0.1, "--grade-psi-limit", help="Largest grade-share PSI the gate accepts."),
    tracking_uri: str | None = TRACKING,
    artifacts: Path | None = ARTIFACTS,
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Make VERSION the champion if it is at least as good as the current one on the same OOT data.

    Every attempt, refused or not, is audited in the service database (TIERS_DATABASE_URL), with
    the promotions made on the pages and through the API; `tiers promotions` lists them.
    Exit code 0: promoted; 1: refused by the gate (the failed checks are printed); 2: bad input.
    """
    if force and not reason.strip():
        fail("--reason '': a forced promotion must say why (rule: --force needs --reason TEXT)")
    if version < 1:
        fail(f"VERSION {version}: must be ≥ 1")
    if not 0 <= auc_tolerance < 0.5:
        fail(f"--auc-tolerance {auc_tolerance}: must be in [0, 0.5)")
    if grade_psi_limit < 0:
        fail(f"--grade-psi-limit {grade_psi_limit}: must be ≥ 0")
    registry = _registry(tracking_uri, artifacts)
    from mlflow.exceptions import MlflowException

    from serving.cli.admin import settings_or_exit
    from serving.workflows.promotion import promote_audited
    from training.gate import GateThresholds
    from training.promotion import PromotionRefused

    who = user or os.environ.get("USER", "") or "unknown"
    settings = settings_or_exit()  # checked before the gate runs
    try:
        outcome = promote_audited(settings, registry, model, version, user=who, reason=reason, force=force,
                                  thresholds=GateThresholds(auc_tolerance=auc_tolerance,
                                                            grade_psi_limit=grade_psi_limit))
    except PromotionRefused as exc:
        if json_out:
            typer.echo(json.dumps({"promoted": False, "model": model, "version": version, "gate": exc.gate.as_dict()},
                                  ensure_ascii=False))
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc
    except MlflowException as exc:
        fail(f"MODEL {model!r} VERSION {version}: not in the registry {registry.tracking_uri} ({exc.message})")
    except ValueError as exc:
        fail(f"MODEL {model!r} VERSION {version}: {exc}")
    event = outcome.event
    if json_out:
        typer.echo(json.dumps({"promoted": True, **event.as_dict()}, ensure_ascii=False))
        return
    typer.echo(
        f"{model}: champion {event.from_version} → {event.to_version}"
        f"{' (FORCED past a failed gate)' if event.forced else ''}; audited (tiers promotions)"
    )
    if outcome.gate is not None:
        typer.echo(outcome.gate.summary())


@app.command("promotions")
def promotions(
    model: str | None = typer.Option(None, "--model", help="Only this registered model."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """The promotion audit (newest first): every attempt from `tiers promote`, the pages and the API."""
    from serving.cli.admin import settings_or_exit
    from serving.workflows.promotion import promotion_entries

    entries = promotion_entries(settings_or_exit(), model=model, limit=limit)
    if json_out:
        typer.echo(json.dumps(entries, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="promotion audit (newest first)")
    for col in ("at", "model", "from", "to", "decision", "by", "reason"):
        table.add_column(col)
    for e in entries:
        table.add_row(str(e["at"]), e["model"], str(e["from_version"] or "—"), e["to_version"], e["decision"],
                      e["decided_by"], e["reason"])
    Console(width=200).print(table)


@app.command("report")
def report(
    model: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument("champion", help="Version number or alias (champion, challenger)."),
    out: Path = typer.Option(Path("var/reports"), "--out", help="Directory to write the HTML and JSON report into."),
    tracking_uri: str | None = TRACKING,
    artifacts: Path | None = ARTIFACTS,
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Write a registered version's validation report (HTML + JSON, 中文/English) to --out."""
    registry = _registry(tracking_uri, artifacts)
    from mlflow.exceptions import MlflowException

    try:
        mv = registry.resolve(model, version)
        html = registry.load_text(model, mv.version, "report/validation_report.html")
        content = registry.load_text(model, mv.version, "report/validation_report.json")
    except (LookupError, MlflowException) as exc:
        fail(f"MODEL {model!r} VERSION {version!r}: not found in {registry.tracking_uri} ({exc})")
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{model}-v{mv.version}"
    stem.with_suffix(".html").write_text(html, encoding="utf-8")
    stem.with_suffix(".json").write_text(content, encoding="utf-8")
    summary = {"model": model, "version": mv.version, "aliases": list(mv.aliases), "html": str(stem.with_suffix(".html")),
               "json": str(stem.with_suffix(".json")), "report_sha256": mv.tags.get("report_sha256", "")}
    typer.echo(json.dumps(summary, ensure_ascii=False) if json_out else f"wrote {summary['html']} and {summary['json']}")


def _into_service(path: Path) -> dict:
    """Bulk-load a grade file into the service database; exits 1 if rows were rejected."""
    from serving.cli.admin import settings_or_exit
    from serving.db.session import engine_for
    from serving.services.bulk import frames_of, load_grades, load_id_of

    settings = settings_or_exit()
    report = load_grades(engine_for(settings.database_url), frames_of(path), load_id=load_id_of("grades", path))
    if report.rejected:
        fail(f"{path}: {report.rejected} grades rejected by the service ({dict(report.reasons)}); "
              f"`tiers db load grades {path} --quarantine FILE` keeps them with their reasons")
    return report.as_json()


@app.command("grade")
def grade(
    store: Path = typer.Option(..., "--store", help="Feature store directory written by `tiers ingest`."),
    as_of: str = typer.Option(..., "--as-of", help="Grade every subject as of this date (YYYY-MM-DD)."),
    out: Path | None = typer.Option(None, "--out", help="Parquet file (default var/grades/grades_<as-of>.parquet)."),
    tracking_uri: str | None = TRACKING,
    artifacts: Path | None = ARTIFACTS,
    what_if: bool = typer.Option(False, "--what-if/--no-what-if",
                                 help="Also search each subject's smallest set of actionable changes to a better grade "
                                      "(≈0.07 s per searched subject; see --what-if-grades)."),
    what_if_grades: str = typer.Option("B,C,D", "--what-if-grades",
                                       help="Grades whose subjects get a what-if search, comma-separated."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
    into_service: bool = typer.Option(False, "--into-service/--no-into-service",
                                      help="Also bulk-load the grades into the service database (TIERS_DATABASE_URL; "
                                           "`tiers db load grades`, resumable)."),
) -> None:
    """Grade every subject with its sector's champion (else the general champion) into Parquet."""
    day = parse_date("--as-of", as_of)
    wanted = ()
    if what_if:
        wanted = tuple(g.strip() for g in what_if_grades.split(",") if g.strip())
        if not wanted:
            fail(f"--what-if-grades {what_if_grades!r}: must list grades among A, B, C, D")
    from rich.progress import Progress

    from serving.workflows import WorkflowError
    from serving.workflows.training import grade_store, require_store

    try:
        require_store(store)
        registry = _registry(tracking_uri, artifacts)
        with Progress(disable=json_out, transient=True) as progress:
            task = progress.add_task(f"profiles as of {day}", total=None)
            summary = grade_store(store, day, registry, out=out, what_if_grades=wanted,
                                  progress=lambda step: progress.update(task, description=step))
    except WorkflowError as exc:
        _fail_with(exc)
    if into_service:
        summary["service_load"] = _into_service(Path(summary["out"]))
    typer.echo(json.dumps(summary, ensure_ascii=False) if json_out else
               f"graded {summary['subjects']} subjects as of {day} → {summary['out']}; shares {summary['grade_shares']}")
