"""`tiers monitor`: drift, performance and data health between two as-of dates, with alerts.

The run is `serving.services.monitoring.run_monitoring`'s; this command parses options and prints.

Exit codes (cron-friendly): 0 = no alert fired, 1 = at least one alert fired, 2 = bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail, parse_date

EXIT_ALERTS = 1
# how the service's messages name each input: by this command's options
OPTION_OF = {"reference": "--reference", "current": "--current", "grades_files": "--scores",
             "profiles_files": "--profiles", "store": "--store", "model": "--model", "config": "--config"}


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
    ref_date = parse_date("--reference", reference)
    cur_date = parse_date("--current", current)

    from rich.console import Console
    from rich.progress import Progress

    from serving.services.monitoring import run_monitoring

    settings = session = None
    if save or (model is not None and tracking_uri is None):
        from serving.cli.admin import settings_or_exit

        settings = settings_or_exit()
    if save:
        from serving.db.session import iter_session

        session = next(iter_session(settings.database_url))
    console = Console(stderr=True, quiet=json_out)
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("monitoring", total=4)
            run = run_monitoring(
                session, settings, reference=ref_date, current=cur_date, grades_files=scores_files,
                profiles_files=profiles_files, store=store, model=model,
                tracking_uri=tracking_uri or (settings.mlflow_tracking_uri if model and settings else None),
                expected_auc=expected_auc, config=config, run_evidently=not no_evidently, html_path=html,
                input_names=OPTION_OF, progress=lambda step: progress.update(task, advance=1, description=step))
    except ValueError as exc:
        fail(str(exc))
    finally:
        if session is not None:
            session.close()
    result = run.result
    if run.run_id is not None:
        console.print(f"stored as monitoring run {run.run_id}")
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
