"""`tiers simulate`: generate a synthetic city (see docs/data-contract.md for the files)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail, parse_date

_CSV_LIMIT = 200_000  # above this many subjects the default format is Parquet (contract)


# config field → the CLI option a user typed
_OPTION_OF_FIELD = {
    "n_subjects": "--subjects", "seed": "--seed", "end": "--end", "years": "--years", "scenario": "--scenario",
    "scenario_date": "--scenario-date", "file_format": "--format", "chunk_size": "--chunk-size",
}


def _with_option_names(message: str) -> str:
    field, _, rest = message.partition(" ")
    return f"{_OPTION_OF_FIELD[field]} {rest}" if field in _OPTION_OF_FIELD else message


@app.command("simulate")
def simulate(
    subjects: int = typer.Option(..., "--subjects", help="Number of market entities (subjects)."),
    seed: int = typer.Option(..., "--seed", help="Random seed; same seed and options give byte-identical files."),
    out: Path = typer.Option(..., "--out", help="Output directory (created; earlier outputs there are replaced)."),
    scenario: str = typer.Option(
        "baseline", "--scenario", help="baseline | sector_shock | silent_feed | severity_recoding."
    ),
    scenario_date: str = typer.Option("2026-01-01", "--scenario-date", help="Date the scenario starts (ISO)."),
    end: str = typer.Option("2026-10-31", "--end", help="Last simulated day (the last day of a month)."),
    years: int = typer.Option(5, "--years", help="Years of records ending at --end."),
    file_format: str = typer.Option(
        None, "--format", help="csv or parquet (default: csv up to 200,000 subjects, parquet above)."
    ),
    clean: bool = typer.Option(False, "--clean", help="No dirty rows (dirt is on by default, about 1 %)."),
    city: Path = typer.Option(None, "--city", help="City TOML (default: Nanjing, simulation/cities/nanjing.toml)."),
    chunk_size: int = typer.Option(50_000, "--chunk-size", help="Subjects generated and written per chunk."),
    workers: int = typer.Option(1, "--workers", help="Processes building chunks in parallel (same files)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the manifest summary as JSON on stdout."),
) -> None:
    """Simulate a city: subjects, five years of credit records, inspectors and the true risk."""
    from serving.workflows import WorkflowError
    from serving.workflows.simulate import simulate_city, simulation_config

    if subjects < 1:
        fail(f"--subjects {subjects} must be at least 1")
    if workers < 1:
        fail(f"--workers {workers} must be at least 1")
    if file_format is None:
        file_format = "csv" if subjects <= _CSV_LIMIT else "parquet"
    try:
        config = simulation_config(
            subjects=subjects, seed=seed, end=parse_date("--end", end), years=years, scenario=scenario,
            scenario_date=parse_date("--scenario-date", scenario_date), clean=clean, file_format=file_format,
            chunk_size=chunk_size, city=city,
        )
    except WorkflowError as exc:
        fail(f"--city {exc.message}" if exc.field == "city" else _with_option_names(exc.message))

    if as_json:
        manifest = simulate_city(config, out, workers=workers)
    else:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        with Progress(
            TextColumn("simulating subjects"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("simulate", total=subjects)
            manifest = simulate_city(
                config, out, progress=lambda done, total: bar.update(task, completed=done), workers=workers
            )
    summary = {key: value for key, value in manifest.items() if key != "sha256"}
    summary["out"] = str(out)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    else:
        truth = manifest["truth"]
        typer.echo(
            f"wrote {out}: {manifest['rows']} | adverse rate {truth['adverse_rate_12m']}, "
            f"oracle AUC {truth['oracle_auc']}, scenario {manifest['scenario']['name']}"
        )
