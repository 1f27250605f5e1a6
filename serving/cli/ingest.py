"""`tiers ingest`: validate subject and record files into the Parquet store, quarantining bad rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail


@app.command("ingest")
def ingest_command(
    subjects: Path = typer.Option(None, "--subjects", help="Subjects file (.csv, .parquet, .jsonl, .xlsx or .xls)."),
    records: list[Path] = typer.Option(
        None, "--records", help="Records file; repeat for several. The contract's layout or a national 双公示 "
        "layout (行政处罚/行政许可, CF_/XK_, lists, 纳税信用), recognised by its header; CSV in UTF-8 or GB18030, "
        "Excel, Parquet or JSON Lines."),
    source: str = typer.Option(None, "--source", help="Force a layout by name (e.g. penalty_current, contract)."),
    layouts: Path = typer.Option(None, "--layouts", help="Directory of a city's own layout TOML files "
                                 "(and departments.toml / severity.toml overrides)."),
    store: Path = typer.Option(..., "--store", help="Store directory (created if missing)."),
    ingested_at: str = typer.Option(
        None, "--ingested-at", help="Ingestion time, ISO (default: now, UTC); decisions after it are quarantined."
    ),
    policy_file: Path = typer.Option(None, "--policy", help="Catalogue policy TOML (default: packaged policy)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the summary as JSON on stdout."),
) -> None:
    """Validate every row; store valid ones (versioned), quarantine the rest with a rule each."""
    from serving.workflows import WorkflowError
    from serving.workflows.ingest import ingest_files

    when = datetime.now(UTC)
    if ingested_at is not None:
        try:
            when = datetime.fromisoformat(ingested_at)
        except ValueError:
            fail(f"--ingested-at {ingested_at!r} is not an ISO date or date-time")
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    files = {"store": store, "subjects": subjects, "records": records or [], "ingested_at": when,
             "policy_file": policy_file, "source": source, "layouts": layouts}
    try:
        if as_json:
            summary = ingest_files(**files)
        else:
            from rich.console import Console

            with Console(stderr=True).status("validating and storing…"):
                summary = ingest_files(**files)
    except WorkflowError as exc:
        fail(exc.message)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ingest batch {summary.batch_id}")
    for col in ("file", "layout", "encoding", "read", "accepted", "quarantined", "new", "new versions", "unchanged"):
        table.add_column(col, justify="left" if col in ("file", "layout", "encoding") else "right", no_wrap=True)
    for f in summary.files:
        table.add_row(f.file, f.layout, f.encoding or f.format, str(f.read), str(f.accepted), str(f.quarantined),
                      str(f.new), str(f.new_versions), str(f.unchanged))
    mapping = Table(title="columns → mapped to (national layouts)")
    for col in ("file", "column", "mapped to"):
        mapping.add_column(col, no_wrap=True)
    for f in summary.files:
        if f.layout != "contract":
            for c in f.columns:
                mapping.add_row(f.file, c["column"], c["mapped_to"] or "—（未识别 / not recognised）")
    rules = Table(title="quarantined by rule")
    for col in ("file", "rule", "rows"):
        rules.add_column(col, justify="right" if col == "rows" else "left", no_wrap=True)
    for f in summary.files:
        for rule, count in sorted(f.by_rule.items()):
            rules.add_row(f.file, rule, str(count))
    console = Console()
    console.print(table)
    if mapping.row_count:
        console.print(mapping)
    if summary.quarantined:
        console.print(rules)
    console.print(f"store: {summary.store}")
    console.print(f"quarantine: {summary.quarantine_path}", soft_wrap=True)
