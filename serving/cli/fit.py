"""`tiers fit`: cross-validate this project's models on any table with a binary target.

``--model auto`` chooses honestly: each candidate is cross-validated on the outer folds (the
choice for the final model), and the whole choice is itself validated by nested
cross-validation: in every outer fold the candidates are compared on inner folds of the outer
training part only, the inner winner is scored on the outer test fold, and those outer scores
(never used to choose) are the estimate reported for ``auto``. Whether to Platt-calibrate the
winner is decided on the same inner folds (`training.selection.choose`).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from serving.cli.app import app
from serving.cli.options import fail

MODEL_CHOICES = ("scorecard", "gbm", "blend", "blend-shallow", "gam", "auto")


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        fail(f"--data {path}: no such file (rule: a readable CSV or Parquet file)")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        fail(f"--data {path}: cannot be read as {'Parquet' if path.suffix.lower() == '.parquet' else 'CSV'} ({exc})")


def _check_target(frame, target: str, cv: int):
    """Return y as 0/1 ints, or exit 2 naming the column, the bad values and the rule."""
    import numpy as np
    import pandas as pd

    if target not in frame.columns:
        fail(f"--target {target!r}: no such column; columns are {list(frame.columns)[:20]}")
    col = frame[target]
    if col.isna().any():
        fail(f"--target {target!r}: {int(col.isna().sum())} missing values (rule: every row needs 0 or 1, 1 = bad)")
    from serving.validation import binary_target

    target_of = col.map({value: binary_target(value) for value in pd.unique(col)})  # each distinct value once
    bad = col[target_of.isna()]
    if len(bad):
        shown = sorted(map(str, pd.unique(bad)))[:5]
        fail(f"--target {target!r}: values {shown} are not allowed (rule: the target must be 0/1 with 1 = bad)")
    y = target_of.to_numpy(dtype=int)
    counts = np.bincount(y, minlength=2)
    if counts.min() < cv:
        fail(f"--target {target!r}: class counts 0={counts[0]}, 1={counts[1]} (rule: each class needs ≥ --cv={cv} rows)")
    return y


def _candidates(name: str, seed: int) -> dict:
    from training.selection import table_candidates

    makers = table_candidates(seed)
    if name == "auto":
        return makers
    return {name: makers[name]}


def _scores(y, p) -> dict:
    from sklearn.metrics import roc_auc_score

    from models import brier_score
    from models.discrimination import ks_statistic

    return {"auc": float(roc_auc_score(y, p)), "ks": ks_statistic(y, p), "brier": brier_score(y, p)}


def _paired_margin(a: list[float], b: list[float]) -> dict:
    """Mean of a − b over the same folds with its 95 % t interval."""
    import numpy as np
    from scipy import stats

    d = np.asarray(a) - np.asarray(b)
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"auc": float(d.mean()), "low": float(d.mean() - half), "high": float(d.mean() + half)}


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
    frame = _read_table(data)
    y = _check_target(frame, target, cv)
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        fail(f"--data {data}: no feature columns besides the target {target!r}")

    import numpy as np
    from rich.console import Console
    from rich.progress import Progress
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(X, y))
    makers = _candidates(model, seed)
    nested = model == "auto"
    results: dict[str, dict] = {}
    outer_p: dict[str, list] = {}

    def fitter(base, where: str):
        def fitted(name: str, rows, what: str):
            try:
                return makers[name]().fit(X.iloc[base[rows]], y[base[rows]])
            except ValueError as exc:
                fail(f"--data {data}: model {name} cannot be fitted on {what}{where}: {exc}")
        return fitted

    with Progress(disable=json_out, transient=True) as progress:
        task = progress.add_task("cross-validating", total=len(makers) * cv * (1 + (inner_cv if nested else 0)))
        everything = np.arange(len(y))
        for name in makers:
            rows, outer_p[name] = [], []
            for k, (tr, te) in enumerate(folds, start=1):
                p = fitter(everything, "")(name, tr, f"fold {k}").predict_proba(X.iloc[te])[:, 1]
                outer_p[name].append(p)
                rows.append({"fold": k, **_scores(y[te], p)})
                progress.advance(task)
            mean = {m: float(np.mean([r[m] for r in rows])) for m in ("auc", "ks", "brier")}
            results[name] = {"folds": rows, "mean": mean}
        choices = []
        if nested:  # the candidates compared on inner folds of each outer training part only
            from training.selection import choose

            for k, (tr, _te) in enumerate(folds, start=1):
                choices.append(choose(makers, X.iloc[tr], y[tr], inner_cv=inner_cv, seed=seed + k,
                                      fit=fitter(tr, f" of fold {k}"), advance=lambda: progress.advance(task)))
    ranking = sorted(results, key=lambda n: -results[n]["mean"]["auc"])
    chosen = ranking[0]
    summary = {"data": str(data), "target": target, "rows": len(y), "bad_rate": float(y.mean()),
               "cv": cv, "seed": seed, "model": model, "chosen": chosen, "results": results}
    if nested:
        runner_up = ranking[1] if len(ranking) > 1 else None
        outer = []
        for k, (choice, (_tr, te)) in enumerate(zip(choices, folds, strict=True), start=1):
            p = choice.apply(outer_p[choice.winner][k - 1])
            outer.append({"fold": k, **choice.as_dict(), **_scores(y[te], p)})
        summary["inner_cv"] = inner_cv
        summary["selection"] = {
            "rule": "highest mean AUC over the outer folds; its honest estimate is `nested` (inner winner, "
                    "Platt-calibrated when the cross-fitted calibration lowered the inner Brier)",
            "winner": chosen, "runner_up": runner_up,
            "margin": _paired_margin([f["auc"] for f in results[chosen]["folds"]],
                                     [f["auc"] for f in results[runner_up]["folds"]]) if runner_up else None,
        }
        summary["nested"] = {"folds": outer,
                             "mean": {m: float(np.mean([f[m] for f in outer])) for m in ("auc", "ks", "brier")}}
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
    console.print(f"chosen: [bold]{chosen}[/bold] (rows {len(y)}, bad rate {y.mean():.1%})")
    if nested:
        sel, est = summary["selection"], summary["nested"]
        if sel["margin"]:
            console.print(f"won over {sel['runner_up']} by {sel['margin']['auc']:+.4f} AUC "
                          f"[{sel['margin']['low']:+.4f}, {sel['margin']['high']:+.4f}] on the same folds")
        console.print(f"nested CV (choice made on inner folds, scored on outer): AUC {est['mean']['auc']:.4f}, "
                      f"Brier {est['mean']['brier']:.4f}; chosen per outer fold: "
                      + ", ".join(f["chosen"] + (" (Platt)" if f["calibrated"] else "") for f in est["folds"]))
