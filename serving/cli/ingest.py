"""`tiers ingest`: validate subject and record files into the Parquet store, quarantining bad rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from serving.cli.app import app
from serving.cli.options import fail, parse_datetime


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
        None, "--ingested-at", help="Ingestion time: ISO date-time with its zone, or a date (its start, UTC); default: now. Decisions after it are quarantined."
    ),
    policy_file: Path = typer.Option(None, "--policy", help="Catalogue policy TOML (default: packaged policy)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the summary as JSON on stdout."),
    gates_file: Path = typer.Option(None, "--gates", help="Data-quality rules TOML (default: packaged "
                                    "features/quality.toml)."),
    no_gates: bool = typer.Option(False, "--no-gates", help="Publish without the data-quality gates (audited "
                                  "nowhere: for a first load you have checked by other means)."),
) -> None:
    """Validate every row; store valid ones (versioned), quarantine the rest with a rule each.

    The batch then passes the data-quality gates (volume, amounts, categories, dates, duplicates per
    department × kind against its own history): a batch that trips a holding rule is kept aside, not
    published, until `tiers gate release` or `tiers gate reject` (exit code 3)."""
    from serving.workflows import WorkflowError
    from serving.workflows.ingest import ingest_files

    when = datetime.now(UTC) if ingested_at is None else parse_datetime("--ingested-at", ingested_at, date_alone=True)
    files = {"store": store, "subjects": subjects, "records": records or [], "ingested_at": when,
             "policy_file": policy_file, "source": source, "layouts": layouts, "gates": not no_gates,
             "gates_file": gates_file}
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
        if summary.status == "held":
            raise typer.Exit(code=3)
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
    if summary.findings:
        console.print(_findings_table(summary.findings, f"data-quality gates 数据质量检查: {summary.status}"))
    if summary.status == "held":
        console.print(f"批次 {summary.batch_id} 已拦截，未发布（等级不变）；请核查后执行 "
                      f"`tiers gate release` 或 `tiers gate reject`。\n"
                      f"batch {summary.batch_id} is HELD, not published (grades unchanged): check it, then "
                      f"`tiers gate release --store {store} {summary.batch_id} --by NAME --reason TEXT` or "
                      "`tiers gate reject …`.", soft_wrap=True)
        raise typer.Exit(code=3)


def _findings_table(findings: list[dict], title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("action", "feed", "rule", "observed", "threshold", "examples", "说明"):
        table.add_column(col, overflow="fold")
    for f in findings:
        table.add_row(f["action"], f["feed"], f["rule"], f"{f['observed']:g}", f"{f['threshold']:g}",
                      " ".join(f["examples"][:3]), f["message"])
    return table


gate_app = typer.Typer(help="Batches held by the data-quality gates: list, release, reject (audited).",
                       no_args_is_help=True)
app.add_typer(gate_app, name="gate")

# the gate commands' inputs, declared once: held, release and reject name the same store, and a
# decision (release or reject) names the batch, who decides and why, all recorded in its audit row
GateStore = Annotated[Path, typer.Option("--store", help="Store directory.")]
HeldBatch = Annotated[str, typer.Argument(help="The held batch.")]
DecidedBy = Annotated[str, typer.Option("--by", help="Who releases or rejects it (recorded).")]
DecisionReason = Annotated[str, typer.Option("--reason", help="Why (recorded).")]


@gate_app.command("held")
def gate_held(
    store: GateStore,
    as_json: bool = typer.Option(False, "--json", help="JSON on stdout."),
) -> None:
    """The batches held and waiting for a decision, with their findings."""
    from serving.services.gate_decisions import held_reports

    reports = held_reports(store)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], ensure_ascii=False))
        return
    from rich.console import Console

    console = Console()
    if not reports:
        console.print("没有被拦截的批次 / no held batch")
    for r in reports:
        console.print(_findings_table([f.to_dict() for f in r.findings], f"held 已拦截: {r.batch_id} ({r.checked_at})"))


def _decide(action: str, store: Path, batch_id: str, by: str, reason: str) -> None:
    """Through the service the analyst page uses too: audited in TIERS_DATABASE_URL's gate_decisions."""
    from sqlalchemy.exc import SQLAlchemyError

    from features.store import StoreError
    from serving.cli.admin import settings_or_exit
    from serving.db.session import iter_session
    from serving.services.gate_decisions import decide

    settings = settings_or_exit()
    session = next(iter_session(settings.database_url))
    try:
        report = decide(session, store, batch_id, decision="released" if action == "release" else "rejected",
                        actor=by, reason=reason)
    except StoreError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:  # the audit row is flushed before the store changes: nothing changed
        fail(f"数据库不可用或未升级（tiers db upgrade），批次未变 / the database is unavailable or not upgraded "
             f"(tiers db upgrade); the batch is unchanged: {exc.__class__.__name__}")
    finally:
        session.close()
    last = report.decisions[-1]
    typer.echo(f"批次 {batch_id}：{'已放行并发布' if action == 'release' else '已拒绝，存储未变'}（{last['by']}，"
               f"{last['at']}）/ batch {batch_id}: {report.status} by {last['by']} at {last['at']}")


@gate_app.command("release")
def gate_release(batch_id: HeldBatch, store: GateStore, by: DecidedBy, reason: DecisionReason) -> None:
    """Publish a held batch exactly as it was held."""
    _decide("release", store, batch_id, by, reason)


@gate_app.command("reject")
def gate_reject(batch_id: HeldBatch, store: GateStore, by: DecidedBy, reason: DecisionReason) -> None:
    """Discard a held batch: the store stays as it is."""
    _decide("reject", store, batch_id, by, reason)
