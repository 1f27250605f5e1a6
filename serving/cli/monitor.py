"""`tiers monitor`: drift, performance and data health between two as-of dates, with alerts.

Exit codes (cron-friendly): 0 = no alert fired, 1 = at least one alert fired, 2 = bad input.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from serving.cli.app import app

EXIT_ALERTS = 1
EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=EXIT_BAD_INPUT)


def _parse_date(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r}: not a date (rule: ISO YYYY-MM-DD, e.g. 2026-06-30)")
    raise AssertionError("unreachable")


def _read_table(option: str, path: Path):
    import pandas as pd

    if not path.is_file():
        _fail(f"{option} {path}: no such file (rule: a readable CSV or Parquet file)")
    try:
        return pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path, dtype={"uscc": str})
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        _fail(f"{option} {path}: cannot be read ({exc})")
    raise AssertionError("unreachable")


def _read_tables(option: str, paths: list[Path]):
    import pandas as pd

    return pd.concat([_read_table(option, p) for p in paths], ignore_index=True)


def _at(option: str, frame, as_of: date, required: tuple[str, ...]):
    """Rows of ``frame`` for one as-of date (all rows if the frame has no as_of column)."""
    import pandas as pd

    missing = [c for c in required if c not in frame.columns]
    if missing:
        _fail(f"{option}: missing column(s) {missing} (rule: the table needs {list(required)})")
    if "as_of" not in frame.columns:
        return frame.reset_index(drop=True)
    dates = pd.to_datetime(frame["as_of"], errors="coerce").dt.date
    at = frame.loc[(dates == as_of).to_numpy()].reset_index(drop=True)
    if at.empty:
        shown = sorted({str(d) for d in dates.dropna()})[:6]
        _fail(f"{option}: no rows with as_of {as_of} (rule: the table must cover both dates; it has {shown})")
    return at


def _store_quarantine(store: Path):
    """Quarantined rows and accepted counts per ingestion month, from the store's batch summaries."""
    import json

    import pandas as pd

    rows, accepted = [], []
    for summary_path in sorted((store / "batches").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        ingested_at = pd.Timestamp(summary["ingested_at"])
        if ingested_at.tzinfo is not None:  # Period has no time zone: count the batch in its UTC month
            ingested_at = ingested_at.tz_convert("UTC").tz_localize(None)
        month = str(ingested_at.to_period("M"))
        for f in summary.get("files", []):
            if f.get("table") != "records":
                continue
            accepted.append({"month": month, "records": int(f.get("accepted", 0))})
            rows += [{"month": month, "rule": rule} for rule, n in f.get("by_rule", {}).items() for _ in range(int(n))]
    if not accepted:
        return None, None
    return pd.DataFrame(rows, columns=["month", "rule"]), pd.DataFrame(accepted)


@app.command("monitor")
def monitor_command(
    reference: str = typer.Option(..., "--reference", help="Reference as-of date (YYYY-MM-DD), e.g. last month's run."),
    current: str = typer.Option(..., "--current", help="Current as-of date (YYYY-MM-DD), after the reference."),
    store: Path | None = typer.Option(None, "--store", help="Ingested record store (tiers ingest): profiles, volumes, outcomes, quarantine."),
    profiles_files: list[Path] = typer.Option([], "--profiles", help="Profile table(s) (uscc, as_of, features; tiers profile) instead of building from --store; repeatable."),
    scores_files: list[Path] = typer.Option([], "--scores", help="Grade table(s) (uscc, as_of, score, grade[, p_adverse_12m]; tiers grade) covering both dates; repeatable."),
    model: str | None = typer.Option(None, "--model", help="Grade both dates with a registered model NAME@ALIAS (e.g. tiers-general@champion)."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow registry URI for --model (default: settings)."),
    config: Path | None = typer.Option(None, "--config", help="Alert rules TOML (default: monitoring/alerts.toml)."),
    expected_auc: float | None = typer.Option(None, "--expected-auc", help="Validation AUC of the model; enables the AUC-drop rule."),
    html: Path | None = typer.Option(None, "--html", help="Write Evidently's full drift report (HTML) here."),
    out: Path | None = typer.Option(None, "--out", help="Write the result JSON here."),
    no_evidently: bool = typer.Option(False, "--no-evidently", help="Skip Evidently (decile PSI only; faster)."),
    json_out: bool = typer.Option(False, "--json", help="Print only the result JSON on stdout."),
    save: bool = typer.Option(False, "--save", help="Store the run, its alerts and the Evidently report in the service DB (settings: TIERS_DATABASE_URL, TIERS_DATA_DIR); with --model also log it to MLflow."),
) -> None:
    """Compare two as-of dates: input, score and grade drift, segment drift, late-label performance,
    data health. Exit 0 if no alert fired, 1 if any did (details in the output), 2 on bad input."""
    ref_date = _parse_date("--reference", reference)
    cur_date = _parse_date("--current", current)
    if cur_date <= ref_date:
        _fail(f"--current {cur_date}: must be after --reference {ref_date}")
    if not profiles_files and store is None:
        _fail("--profiles / --store: neither given (rule: profiles come from a profile table or a record store)")
    if bool(scores_files) == (model is not None):
        _fail("--scores / --model: give exactly one (rule: scores come from a grade table or a registered model)")
    if model is not None and "@" not in model:
        _fail(f"--model {model!r}: not NAME@ALIAS (rule: e.g. tiers-general@champion)")
    if store is not None and not (store / "batches").is_dir():
        _fail(f"--store {store}: no batches/ directory (rule: a store written by tiers ingest)")

    from rich.console import Console
    from rich.progress import Progress

    from monitoring.alerts import AlertConfigError, load_alert_config

    try:
        alert_config = load_alert_config(config)
    except AlertConfigError as exc:
        _fail(f"--config: {exc}")
    import tempfile

    console = Console(stderr=True, quiet=json_out)
    keep_dir = tempfile.TemporaryDirectory() if save and html is None and not no_evidently else None
    if keep_dir is not None:  # --save keeps the report even when --html was not asked for
        html = Path(keep_dir.name) / "report.html"
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("monitoring", total=5)
        records = quarantine = ingested = None
        if store is not None:
            from features.store import read_latest

            records = read_latest(store, "records")
            quarantine, ingested = _store_quarantine(store)
        progress.update(task, advance=1, description="profiles")
        profiles = {}
        if profiles_files:
            table = _read_tables("--profiles", profiles_files)
            profiles = {d: _at("--profiles", table, d, ("uscc",)) for d in (ref_date, cur_date)}
        else:
            from features.profiles import build_profiles

            try:
                profiles = {d: build_profiles(store, as_of=d) for d in (ref_date, cur_date)}
            except ValueError as exc:
                _fail(f"--store {store}: {exc}")
        progress.update(task, advance=1, description="scores")
        if scores_files:
            table = _read_tables("--scores", scores_files)
            scores = {d: _at("--scores", table, d, ("uscc", "score", "grade")) for d in (ref_date, cur_date)}
        else:
            scores, auc = _score_with_model(model, profiles, tracking_uri)
            expected_auc = expected_auc if expected_auc is not None else auc
        progress.update(task, advance=1, description="drift")
        from monitoring.inputs import frames_at
        from monitoring.run import monitor

        ref_frames = frames_at(ref_date, profiles=profiles[ref_date], scores=scores[ref_date])
        cur_frames = frames_at(cur_date, profiles=profiles[cur_date], scores=scores[cur_date], records=records,
                               quarantine=quarantine, ingested=ingested)
        try:
            result = monitor(ref_frames, cur_frames, config=alert_config, expected_auc=expected_auc,
                             run_evidently=not no_evidently, html_path=html)
        except ValueError as exc:
            _fail(str(exc))
        progress.update(task, advance=2, description="done")
    if save:
        run_id = _save(result, html=html, model=model, tracking_uri=tracking_uri)
        console.print(f"stored as monitoring run {run_id}")
    if keep_dir is not None:
        keep_dir.cleanup()
    payload = result.to_json(indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(payload, encoding="utf-8")
    if json_out:
        typer.echo(payload)
    else:
        _print_summary(console, result)
    if result.alerts:
        raise typer.Exit(code=EXIT_ALERTS)


def _save(result, *, html: Path | None, model: str | None, tracking_uri: str | None) -> int:
    """Store the run in the service DB (report under the data dir); log to MLflow for --model."""
    from serving.db.session import iter_session
    from serving.services.monitoring import log_to_mlflow, store_result
    from serving.settings import get_settings

    settings = get_settings()
    report = html if html is not None and html.is_file() else None
    session = next(iter_session(settings.database_url))
    try:
        run_id = store_result(session, result, model_version=model, report_html=report,
                              artifact_dir=Path(settings.data_dir))
    except ValueError as exc:
        _fail(f"--save: {exc}")
    finally:
        session.close()
    if model is not None:
        log_to_mlflow(tracking_uri or settings.mlflow_tracking_uri, result, model=model, report_html=report,
                      monitoring_id=run_id)
    return run_id


def _score_with_model(model: str, profiles: dict, tracking_uri: str | None):
    """Grade each date's profiles with the registered model; also return its validation AUC if logged."""
    from serving.settings import get_settings
    from training.grade import grade_with
    from training.registry import ModelRegistry

    name, alias = model.split("@", 1)
    registry = ModelRegistry(tracking_uri or get_settings().mlflow_tracking_uri)
    try:
        version = registry.resolve(name, alias)
        loaded = registry.load_model(name, version.version)
    except (LookupError, OSError) as exc:
        _fail(f"--model {model!r}: {exc}")
    # scores to monitor, never stored as grades: no profile hash, so a table holding only the
    # model's features will do
    scores = {d: grade_with(loaded, frame, name=name, version=version.version, hash_profiles=False)
              for d, frame in profiles.items()}
    metrics = registry.client.get_run(version.run_id).data.metrics
    return scores, metrics.get("oot_auc")


def _print_summary(console, result) -> None:
    from rich.table import Table

    console.quiet = False
    console.print(
        f"[bold]monitoring[/bold] {result.reference_as_of} → {result.current_as_of}: "
        f"{result.n_reference} → {result.n_current} subjects, score PSI {result.score_psi.psi:.3f}"
    )
    if result.performance is not None:
        perf = result.performance
        auc = f"AUC {perf.auc.auc:.3f} [{perf.auc.lower:.3f}, {perf.auc.upper:.3f}]" if perf.auc else "AUC n/a"
        tag = " (provisional)" if perf.provisional else ""
        console.print(f"performance{tag}: {auc}, maturity {perf.maturity:.0%}, {perf.n_adverse} adverse of {perf.n}")
    if not result.alerts:
        console.print("[green]no alert[/green]")
        return
    table = Table(title=f"{len(result.alerts)} alert(s)")
    for col in ("severity", "rule", "subject", "observed", "threshold"):
        table.add_column(col)
    for a in result.alerts:
        obs, thr = a.evidence["observed"], a.evidence["threshold"]
        table.add_row(a.severity, a.rule, a.subject_of_alert,
                      f"{obs:.4g}" if isinstance(obs, float) else str(obs),
                      f"{thr:.4g}" if isinstance(thr, float) else str(thr))
    console.print(table)
