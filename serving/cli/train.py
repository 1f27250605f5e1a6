"""`tiers train`, `tiers promote`, `tiers promotions`, `tiers report`, `tiers grade`: models from the
feature store to the MLflow registry, through the promotion gate (audited in the service
database), to a grade table the service loads."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import typer

from serving.cli.app import app

SECTIONS = tuple("ABCDEFGHIJKLMNOPQRST")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=code)


def _parse_date(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r}: not a date (rule: ISO YYYY-MM-DD, e.g. 2025-06-30)")
    raise AssertionError  # unreachable: _fail raises


def _registry(tracking_uri: str | None, artifacts: Path):
    """The registry the CLI uses: settings' MLflow URI unless --tracking-uri is given."""
    # MLflow prints a tqdm bar for every artifact download; it is noise on a CLI.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from serving.settings import get_settings
    from training.registry import ModelRegistry

    uri = tracking_uri or get_settings().mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return ModelRegistry(uri, artifact_location=artifacts)


def _check_sector(option: str, value: str) -> str:
    if value not in SECTIONS:
        _fail(f"{option} {value!r}: not a GB/T 4754-2017 section (rule: one letter A–T)")
    return value


TRACKING = typer.Option(None, "--tracking-uri", help="MLflow tracking/registry URI (default: settings, sqlite:///var/mlflow.db).")
ARTIFACTS = typer.Option(Path("var/mlartifacts"), "--artifacts", help="Artifact directory of a SQLite registry.")


@app.command("train")
def train(
    store: Path = typer.Option(..., "--store", help="Feature store directory written by `tiers ingest`."),
    sector: list[str] = typer.Option([], "--sector", help="Also train this sector's model (GB/T 4754 section; repeatable)."),
    all_sectors: bool = typer.Option(False, "--all-sectors", help="Train a model for every sector present."),
    as_of: list[str] = typer.Option([], "--as-of", help="Training as-of date (repeatable; default: 3 dates 6 months apart)."),
    validate_as_of: str | None = typer.Option(None, "--validate-as-of", help="Out-of-time validation as-of date."),
    horizon: int = typer.Option(12, "--horizon", help="Label horizon in months."),
    seed: int = typer.Option(42, "--seed", help="Seed of the split, the models and the bootstraps."),
    min_positives: int = typer.Option(300, "--min-positives", help="Adverse outcomes a sector needs for its own model."),
    policy_file: Path | None = typer.Option(None, "--policy", help="Sector policy TOML (exclusions, direct grading, target shares)."),
    candidates: str = typer.Option("scorecard,gbm_additive,gbm", "--candidates",
                                   help="Comma-separated candidates compared out of time (scorecard, gbm_additive, gbm, blend, gam)."),
    tracking_uri: str | None = TRACKING,
    artifacts: Path = ARTIFACTS,
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Train the general model (and sector models), validate out of time, register as challenger.

    The first version of a model name becomes champion; later ones are challengers until
    `tiers promote` passes them through the gate.
    """
    if not store.is_dir():
        _fail(f"--store {store}: no such directory (rule: a feature store written by `tiers ingest`)")
    if horizon < 1:
        _fail(f"--horizon {horizon}: must be ≥ 1 month")
    if min_positives < 1:
        _fail(f"--min-positives {min_positives}: must be ≥ 1")
    sectors = [_check_sector("--sector", s) for s in sector]
    train_dates = tuple(sorted(_parse_date("--as-of", d) for d in as_of))
    valid_date = _parse_date("--validate-as-of", validate_as_of) if validate_as_of else None

    from rich.progress import Progress

    from features.specs import FEATURE_SPECS
    from training.data import default_dates, latest_record_date, load_dataset
    from training.pipeline import (
        TrainingConfig,
        feature_metas_from_specs,
        model_name,
        register_result,
        train_model,
    )
    from training.sector_policy import PolicyFileError, TrainingPolicy, load_training_policy

    policy = None
    if policy_file is not None:
        try:
            policy = load_training_policy(policy_file)
        except PolicyFileError as exc:
            _fail(f"--policy {exc}")
        if policy.sector and policy.sector not in sectors:
            sectors.append(policy.sector)
    try:
        data_end = latest_record_date(store)
    except ValueError as exc:
        _fail(f"--store {exc}")
    default_train, default_valid = default_dates(data_end, horizon_months=horizon)
    config = TrainingConfig(
        train_as_of=train_dates or default_train,
        validate_as_of=valid_date or default_valid,
        horizon_months=horizon,
        seed=seed,
        min_sector_positives=min_positives,
        candidates=tuple(c.strip() for c in candidates.split(",") if c.strip()),
    )
    try:
        config.check()
    except ValueError as exc:
        _fail(f"--as-of/--validate-as-of/--candidates: {exc}")
    if config.validate_as_of > data_end:
        _fail(f"--validate-as-of {config.validate_as_of}: after the latest record date {data_end} in the store")

    registry = _registry(tracking_uri, artifacts)
    metas = feature_metas_from_specs(FEATURE_SPECS)
    results = []
    with Progress(disable=json_out, transient=True) as progress:
        dates = (*config.train_as_of, config.validate_as_of)
        load_task = progress.add_task("building profiles and labels", total=len(dates))
        dataset = load_dataset(store, dates, horizon_months=horizon, on_date=lambda _d: progress.advance(load_task))
        if all_sectors:
            sectors = sorted(set(sectors) | set(dataset["industry"].dropna().astype(str)) & set(SECTIONS))
        names = [None, *sectors]
        task = progress.add_task("training", total=len(names))
        general = None
        for sec in names:
            name = model_name(sec)
            progress.update(task, description=f"training {name}")
            sec_policy = policy if (policy is not None and policy.sector == sec) else TrainingPolicy(sector=sec)
            champ_version = registry.alias_version(name, "champion")
            champion = registry.load_model(name, champ_version) if champ_version is not None else None
            try:
                result = train_model(dataset, metas, config=config, policy=sec_policy, sector=sec, general=general,
                                     champion=champion)
            except (ValueError, KeyError) as exc:
                if sec is None:
                    _fail(f"--store {store}: cannot train the general model: {exc}")
                results.append({"model": name, "skipped": str(exc)})
                progress.advance(task)
                continue
            if sec is None:
                general = result.model
            mv = register_result(registry, result)
            results.append(
                {
                    "model": name,
                    "version": mv.version,
                    "aliases": list(mv.aliases),
                    "kind": result.model.kind,
                    "candidate": result.model.candidate,
                    "metrics": {k: round(v, 6) for k, v in result.report.metrics.items()},
                    "report_sha256": result.report.sha256,
                    "data_sha256": result.data_hash,
                    "notes": result.notes,
                }
            )
            progress.advance(task)
    summary = {
        "store": str(store),
        "train_as_of": [d.isoformat() for d in config.train_as_of],
        "validate_as_of": config.validate_as_of.isoformat(),
        "horizon_months": horizon,
        "seed": seed,
        "tracking_uri": registry.tracking_uri,
        "models": results,
    }
    if results and "metrics" in results[0]:
        summary["auc"] = round(results[0]["metrics"]["oot_auc"], 4)  # the general model's, out of time
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
    artifacts: Path = ARTIFACTS,
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Make VERSION the champion if it is at least as good as the current one on the same OOT data.

    Every attempt, refused or not, is audited in the service database (TIERS_DATABASE_URL), with
    the promotions made on the pages and through the API; `tiers promotions` lists them.
    Exit code 0: promoted; 1: refused by the gate (the failed checks are printed); 2: bad input.
    """
    if force and not reason.strip():
        _fail("--reason '': a forced promotion must say why (rule: --force needs --reason TEXT)")
    if version < 1:
        _fail(f"VERSION {version}: must be ≥ 1")
    if not 0 <= auc_tolerance < 0.5:
        _fail(f"--auc-tolerance {auc_tolerance}: must be in [0, 0.5)")
    if grade_psi_limit < 0:
        _fail(f"--grade-psi-limit {grade_psi_limit}: must be ≥ 0")
    registry = _registry(tracking_uri, artifacts)
    from mlflow.exceptions import MlflowException

    from serving.cli.admin import settings_or_exit
    from serving.services.models import db_audit_sink
    from training.gate import GateThresholds
    from training.promotion import PromotionRefused
    from training.promotion import promote as do_promote

    who = user or os.environ.get("USER", "") or "unknown"
    settings = settings_or_exit()  # checked before the gate runs; the database is opened on the
    sessions = []  # first event only, so a bad MODEL or VERSION never touches it

    def audit(event) -> None:
        if not sessions:
            sessions.append(_audit_session(settings))
        db_audit_sink(sessions[0])(event)

    try:
        outcome = do_promote(registry, model, version, user=who, reason=reason, audit=audit, force=force,
                             thresholds=GateThresholds(auc_tolerance=auc_tolerance, grade_psi_limit=grade_psi_limit))
    except PromotionRefused as exc:
        if json_out:
            typer.echo(json.dumps({"promoted": False, "model": model, "version": version, "gate": exc.gate.as_dict()},
                                  ensure_ascii=False))
        else:
            typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc
    except MlflowException as exc:
        _fail(f"MODEL {model!r} VERSION {version}: not in the registry {registry.tracking_uri} ({exc.message})")
    except ValueError as exc:
        _fail(f"MODEL {model!r} VERSION {version}: {exc}")
    finally:
        for session in sessions:
            session.close()
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


def _audit_session(settings):
    """A session on the service database, migrated first when the settings say so (as at startup)."""
    from serving.db.migrate import upgrade
    from serving.db.session import iter_session

    if settings.run_migrations_on_startup:
        upgrade(settings.database_url)
    return next(iter_session(settings.database_url))


@app.command("promotions")
def promotions(
    model: str | None = typer.Option(None, "--model", help="Only this registered model."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """The promotion audit (newest first): every attempt from `tiers promote`, the pages and the API."""
    from serving.cli.admin import settings_or_exit
    from serving.services.models import promotion_audit

    session = _audit_session(settings_or_exit())
    try:
        rows = promotion_audit(session, model=model)[:limit]
        entries = [{"at": r.created_at.isoformat(timespec="seconds") if r.created_at else None,
                    "model": r.model_name, "from_version": r.from_version, "to_version": r.to_version,
                    "decision": r.decision, "decided_by": r.decided_by, "reason": r.evidence.get("reason", ""),
                    "gate_passed": r.evidence.get("gate_passed")} for r in rows]
    finally:
        session.close()
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
    artifacts: Path = ARTIFACTS,
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
        _fail(f"MODEL {model!r} VERSION {version!r}: not found in {registry.tracking_uri} ({exc})")
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{model}-v{mv.version}"
    stem.with_suffix(".html").write_text(html, encoding="utf-8")
    stem.with_suffix(".json").write_text(content, encoding="utf-8")
    summary = {"model": model, "version": mv.version, "aliases": list(mv.aliases), "html": str(stem.with_suffix(".html")),
               "json": str(stem.with_suffix(".json")), "report_sha256": mv.tags.get("report_sha256", "")}
    typer.echo(json.dumps(summary, ensure_ascii=False) if json_out else f"wrote {summary['html']} and {summary['json']}")


@app.command("grade")
def grade(
    store: Path = typer.Option(..., "--store", help="Feature store directory written by `tiers ingest`."),
    as_of: str = typer.Option(..., "--as-of", help="Grade every subject as of this date (YYYY-MM-DD)."),
    out: Path | None = typer.Option(None, "--out", help="Parquet file (default var/grades/grades_<as-of>.parquet)."),
    tracking_uri: str | None = TRACKING,
    artifacts: Path = ARTIFACTS,
    what_if: bool = typer.Option(False, "--what-if/--no-what-if",
                                 help="Also search each subject's smallest set of actionable changes to a better grade "
                                      "(≈0.07 s per searched subject; see --what-if-grades)."),
    what_if_grades: str = typer.Option("B,C,D", "--what-if-grades",
                                       help="Grades whose subjects get a what-if search, comma-separated."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Grade every subject with its sector's champion (else the general champion) into Parquet."""
    if not store.is_dir():
        _fail(f"--store {store}: no such directory (rule: a feature store written by `tiers ingest`)")
    day = _parse_date("--as-of", as_of)
    registry = _registry(tracking_uri, artifacts)
    from rich.progress import Progress

    from features.specs import model_features
    from features.store import read_latest
    from training.data import load_profiles
    from training.grade import evidence_index, grade_all, write_grades

    with Progress(disable=json_out, transient=True) as progress:
        task = progress.add_task(f"profiles as of {day}", total=3)
        profiles = load_profiles(store, day)
        progress.update(task, advance=1, description="records behind the reasons")
        records = read_latest(store, "records")
        evidence = evidence_index(records, day, model_features())
        progress.update(task, advance=1, description="grading" + (" and what-if" if what_if else ""))
        searched = None
        if what_if:
            from training.whatif import WhatIfInputs

            wanted = tuple(g.strip() for g in what_if_grades.split(",") if g.strip())
            if not wanted or any(g not in ("A", "B", "C", "D") for g in wanted):
                _fail(f"--what-if-grades {what_if_grades!r}: must list grades among A, B, C, D")
            searched = WhatIfInputs(records, read_latest(store, "subjects"), grades=wanted)
        try:
            grades = grade_all(registry, profiles, as_of=day, evidence=evidence, what_if=searched)
        except (LookupError, ValueError) as exc:
            _fail(f"--as-of {day}: {exc}")
        progress.advance(task)
    target = out or Path("var/grades") / f"grades_{day.isoformat()}.parquet"
    write_grades(grades, target)
    mix = grades["grade"].value_counts(normalize=True).reindex(list("ABCD"), fill_value=0.0)
    summary = {"as_of": day.isoformat(), "subjects": len(grades), "out": str(target),
               "grade_shares": {g: round(float(v), 4) for g, v in mix.items()},
               "models": sorted(grades["model_version"].unique().tolist())}
    typer.echo(json.dumps(summary, ensure_ascii=False) if json_out else
               f"graded {len(grades)} subjects as of {day} → {target}; shares {summary['grade_shares']}")
