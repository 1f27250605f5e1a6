"""`tiers fit`: cross-validate this project's models on any table with a binary target
(`serving.workflows.fit.fit_table`: the folds, the scores and the nested choice of ``--model auto``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail
from serving.workflows.fit import MODEL_CHOICES


@app.command("fit")
def fit(
    data: Path = typer.Option(..., "--data", help="CSV (or .parquet) table: features plus the target column."),
    target: str = typer.Option(..., "--target", help="Binary target column: 0/1, 1 = adverse outcome (bad)."),
    model: str = typer.Option("auto", "--model", help="scorecard | gbm (additive) | blend (scorecard + additive GBM) | blend-shallow (scorecard + 3-leaf GBM) | gam (GA²M: shapes + pairs) | auto (pick by CV AUC, validated by nested CV)."),
    cv: int = typer.Option(5, "--cv", help="Stratified folds (≥ 2)."),
    inner_cv: int = typer.Option(3, "--inner-cv", help="Inner folds of the nested cross-validation of --model auto (≥ 2)."),
    seed: int = typer.Option(42, "--seed", help="Seed of the fold split and of the models."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Fit on your own table: stratified k-fold CV with per-fold and mean AUC, KS and Brier."""
    if model not in MODEL_CHOICES:
        fail(f"--model {model!r}: must be one of {', '.join(MODEL_CHOICES)}")
    if cv < 2:
        fail(f"--cv {cv}: must be ≥ 2")
    if inner_cv < 2:
        fail(f"--inner-cv {inner_cv}: must be ≥ 2")
    from rich.console import Console
    from rich.progress import Progress

    from serving.workflows import WorkflowError
    from serving.workflows.fit import fit_table

    try:
        with Progress(disable=json_out, transient=True) as progress:
            task = progress.add_task("cross-validating", total=None)
            summary = fit_table(data, target, model=model, cv=cv, inner_cv=inner_cv, seed=seed,
                                progress=lambda done, total: progress.update(task, completed=done, total=total))
    except WorkflowError as exc:
        fail(f"--{exc.field} {exc.message}")
    results, chosen, nested = summary["results"], summary["chosen"], model == "auto"
    if json_out:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    from rich.table import Table

    console = Console()
    for name, res in results.items():
        table = Table(title=f"{name}{' (chosen)' if name == chosen and model == 'auto' else ''} — {cv}-fold CV")
        for col in ("fold", "AUC", "KS", "Brier"):
            table.add_column(col, justify="right")
        for r in res["folds"]:
            table.add_row(str(r["fold"]), f"{r['auc']:.4f}", f"{r['ks']:.4f}", f"{r['brier']:.4f}")
        m = res["mean"]
        table.add_row("mean", f"{m['auc']:.4f}", f"{m['ks']:.4f}", f"{m['brier']:.4f}", style="bold")
        console.print(table)
    console.print(f"chosen: [bold]{chosen}[/bold] (rows {summary['rows']}, bad rate {summary['bad_rate']:.1%})")
    if nested:
        sel, est = summary["selection"], summary["nested"]
        if sel["margin"]:
            verb = "won over" if sel["margin"]["auc"] >= 0 else "kept by the rule against"
            console.print(f"{verb} {sel['runner_up']} by {sel['margin']['auc']:+.4f} AUC "
                          f"[{sel['margin']['low']:+.4f}, {sel['margin']['high']:+.4f}] on the same folds")
        console.print(f"rule: {sel['rule']}")
        console.print(f"nested CV (choice made on inner folds, scored on outer): AUC {est['mean']['auc']:.4f}, "
                      f"Brier {est['mean']['brier']:.4f}; chosen per outer fold: "
                      + ", ".join(f["chosen"] + (" (Platt)" if f["calibrated"] else "") for f in est["folds"]))
