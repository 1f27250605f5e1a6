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
    data: Path = typer.Option(..., "--data", help="Table of features plus the target column: CSV (UTF-8, with or without BOM, "
                              "or GB18030/GBK; delimiter , ; tab or | from the header), .xlsx (first sheet) or .parquet."),
    target: str = typer.Option(..., "--target", help="Binary target column: 0/1, 1 = adverse outcome (bad), "
                               "unless --bad says which value is."),
    bad: str | None = typer.Option(None, "--bad", metavar="VALUE",
                                   help="The target value that means the adverse outcome (bad), e.g. yes, 是, 2; "
                                        "every other value is good. Default: the target is 0/1 with 1 = bad."),
    model: str = typer.Option("auto", "--model", help="scorecard | gbm (additive) | blend (scorecard + additive GBM) | blend-shallow (scorecard + 3-leaf GBM) | gam (GA²M: shapes + pairs) | auto (pick by CV AUC, validated by nested CV)."),
    cv: int = typer.Option(5, "--cv", help="Stratified folds (≥ 2)."),
    inner_cv: int = typer.Option(3, "--inner-cv", help="Inner folds of the nested cross-validation of --model auto (≥ 2)."),
    seed: int = typer.Option(42, "--seed", help="Seed of the fold split and of the models."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON on stdout."),
) -> None:
    """Fit on your own table: stratified k-fold CV with per-fold and mean AUC, KS and Brier."""
    if model not in MODEL_CHOICES:
        fail(f"--model {model!r}: must be one of {', '.join(MODEL_CHOICES)}",
             zh=f"--model {model!r}：须是 {', '.join(MODEL_CHOICES)} 之一")
    if cv < 2:
        fail(f"--cv {cv}: must be ≥ 2", zh=f"--cv {cv}：须 ≥ 2")
    if inner_cv < 2:
        fail(f"--inner-cv {inner_cv}: must be ≥ 2", zh=f"--inner-cv {inner_cv}：须 ≥ 2")
    from rich.console import Console
    from rich.progress import Progress

    from serving.workflows import WorkflowError
    from serving.workflows.fit import fit_table

    try:
        with Progress(disable=json_out, transient=True) as progress:
            task = progress.add_task("cross-validating", total=None)
            summary = fit_table(data, target, model=model, cv=cv, inner_cv=inner_cv, seed=seed,
                                progress=lambda done, total: progress.update(task, completed=done, total=total),
                                bad=bad)
    except WorkflowError as exc:
        fail(f"--{exc.field} {exc.message}", zh=f"--{exc.field} {exc.zh}" if exc.zh else None)
    for warning in summary["warnings"]:  # on stderr, --json or not: stdout stays the summary
        typer.echo(f"警告：{warning['zh']}\nWarning: {warning['en']}", err=True)
    results, chosen, nested = summary["results"], summary["chosen"], model == "auto"
    if json_out:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    from rich.table import Table

    console = Console()
    read = summary["input"]
    if read["encoding"]:
        delimiter = {"\t": "tab"}.get(read["delimiter"], read["delimiter"])
        console.print(f"读取 read: {read['format']}, 编码 encoding {read['encoding']}, 分隔符 delimiter {delimiter!r}",
                      highlight=False)
    for name, res in results.items():
        picked = "（选用 chosen）" if name == chosen and model == "auto" else ""
        table = Table(title=f"{name}{picked} — {cv} 折交叉验证 {cv}-fold CV")
        for col in ("折 fold", "AUC", "KS", "Brier"):
            table.add_column(col, justify="right")
        for r in res["folds"]:
            table.add_row(str(r["fold"]), f"{r['auc']:.4f}", f"{r['ks']:.4f}", f"{r['brier']:.4f}")
        m = res["mean"]
        table.add_row("平均 mean", f"{m['auc']:.4f}", f"{m['ks']:.4f}", f"{m['brier']:.4f}", style="bold")
        console.print(table)
    rows, rate = summary["rows"], summary["bad_rate"]
    console.print(f"选用模型 chosen: [bold]{chosen}[/bold]（{rows} 行，坏样本率 {rate:.1%}; rows {rows}, bad rate {rate:.1%}）")
    if nested:
        sel, est = summary["selection"], summary["nested"]
        if sel["margin"]:
            gap = sel["margin"]
            interval = f"{gap['auc']:+.4f} AUC [{gap['low']:+.4f}, {gap['high']:+.4f}]"
            if gap["auc"] >= 0:
                console.print(f"在相同各折上胜过 {sel['runner_up']}：{interval}; won over {sel['runner_up']} by "
                              f"{gap['auc']:+.4f} AUC on the same folds", highlight=False)
            else:
                console.print(f"按规则保留，相对 {sel['runner_up']}（相同各折）：{interval}; kept by the rule against "
                              f"{sel['runner_up']} by {gap['auc']:+.4f} AUC on the same folds", highlight=False)
        console.print(f"规则：{sel['rule_zh']}", highlight=False)
        console.print(f"rule: {sel['rule']}", highlight=False)
        per_fold = ", ".join(f["chosen"] + (" (Platt)" if f["calibrated"] else "") for f in est["folds"])
        mean = est["mean"]
        console.print(f"嵌套交叉验证（在内层各折上选择，在外层各折上评分）：AUC {mean['auc']:.4f}，Brier {mean['brier']:.4f}；"
                      f"各外层折选用 {per_fold}", highlight=False)
        console.print(f"nested CV (choice made on inner folds, scored on outer): AUC {mean['auc']:.4f}, "
                      f"Brier {mean['brier']:.4f}; chosen per outer fold: {per_fold}", highlight=False)
