"""`tiers fit`: cross-validate this project's models on any table with a binary target.

``model="auto"`` chooses honestly, by one rule (`training.selection.RULE`): the GAM is kept
unless another candidate beats its AUC on the same folds by more than one (corrected) standard
error of the paired per-fold differences, with a mean Brier no higher. Each candidate is cross-validated on the outer folds
(the rule applied there is the choice for the final model), and the whole choice is itself
validated by nested cross-validation: in every outer fold the rule is applied to inner folds of
the outer training part only, the inner winner is scored on the outer test fold, and those
outer scores (never used to choose) are the estimate reported for ``auto``. Whether to
Platt-calibrate the winner is decided on the same inner folds (`training.selection.choose`).

Bad input is a `WorkflowError` naming the input (``data`` or ``target``, the CLI's ``--data`` and
``--target``) and the rule; the caller says it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from serving.workflows import WorkflowError

MODEL_CHOICES = ("scorecard", "gbm", "blend", "blend-shallow", "gam", "auto")

Progress = Callable[[int, int], None]  # (folds fitted so far, folds to fit)


def _read_table(path: Path):
    import pandas as pd

    if not path.is_file():
        raise WorkflowError("data", f"{path}: no such file (rule: a readable CSV or Parquet file)")
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV"
        raise WorkflowError("data", f"{path}: cannot be read as {kind} ({exc})") from exc


def _check_target(frame, target: str, cv: int):
    """Return y as 0/1 ints, or a `WorkflowError` naming the column, the bad values and the rule."""
    import numpy as np
    import pandas as pd

    def fail(message: str):
        raise WorkflowError("target", message)

    if target not in frame.columns:
        fail(f"{target!r}: no such column; columns are {list(frame.columns)[:20]}")
    col = frame[target]
    if col.isna().any():
        fail(f"{target!r}: {int(col.isna().sum())} missing values (rule: every row needs 0 or 1, 1 = bad)")
    from serving.validation import binary_target

    target_of = col.map({value: binary_target(value) for value in pd.unique(col)})  # each distinct value once
    bad = col[target_of.isna()]
    if len(bad):
        shown = sorted(map(str, pd.unique(bad)))[:5]
        fail(f"{target!r}: values {shown} are not allowed (rule: the target must be 0/1 with 1 = bad)")
    y = target_of.to_numpy(dtype=int)
    counts = np.bincount(y, minlength=2)
    if counts.min() < cv:
        fail(f"{target!r}: class counts 0={counts[0]}, 1={counts[1]} (rule: each class needs ≥ --cv={cv} rows)")
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


def _no_progress(_done: int, _total: int) -> None:
    return None


def fit_table(data: Path, target: str, *, model: str = "auto", cv: int = 5, inner_cv: int = 3, seed: int = 42,
              progress: Progress = _no_progress) -> dict[str, Any]:
    """Read ``data`` (CSV or Parquet), check ``target`` (0/1, 1 = bad; each class ≥ ``cv`` rows) and
    cross-validate ``model`` (or every candidate, with ``auto``) on ``cv`` stratified folds seeded by
    ``seed``; with ``auto`` the choice by `training.selection.RULE` on those folds, the nested
    estimate over ``inner_cv`` inner folds, the winner's paired AUC margin over the runner-up (the
    best other mean AUC) and every candidate's margin over the default. Returns the summary
    `tiers fit --json` prints (per-fold and mean AUC, KS, Brier per model; the chosen model;
    ``selection`` and ``nested`` with ``auto``)."""
    frame = _read_table(data)
    y = _check_target(frame, target, cv)
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise WorkflowError("data", f"{data}: no feature columns besides the target {target!r}")

    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(X, y))
    makers = _candidates(model, seed)
    nested = model == "auto"
    results: dict[str, dict] = {}
    outer_p: dict[str, list] = {}
    total = len(makers) * cv * (1 + (inner_cv if nested else 0))
    done = [0]

    def advance() -> None:
        done[0] += 1
        progress(done[0], total)

    def fitter(base, where: str):
        def fitted(name: str, rows, what: str):
            try:
                return makers[name]().fit(X.iloc[base[rows]], y[base[rows]])
            except ValueError as exc:
                raise WorkflowError("data", f"{data}: model {name} cannot be fitted on {what}{where}: "
                                            f"{exc}") from exc
        return fitted

    progress(0, total)
    everything = np.arange(len(y))
    for name in makers:
        rows, outer_p[name] = [], []
        for k, (tr, te) in enumerate(folds, start=1):
            p = fitter(everything, "")(name, tr, f"fold {k}").predict_proba(X.iloc[te])[:, 1]
            outer_p[name].append(p)
            rows.append({"fold": k, **_scores(y[te], p)})
            advance()
        mean = {m: float(np.mean([r[m] for r in rows])) for m in ("auc", "ks", "brier")}
        results[name] = {"folds": rows, "mean": mean}
    choices = []
    if nested:  # the candidates compared on inner folds of each outer training part only
        from training.selection import choose

        for k, (tr, _te) in enumerate(folds, start=1):
            choices.append(choose(makers, X.iloc[tr], y[tr], inner_cv=inner_cv, seed=seed + k,
                                  fit=fitter(tr, f" of fold {k}"), advance=advance))
    ranking = sorted(results, key=lambda n: -results[n]["mean"]["auc"])
    chosen, margins = ranking[0], {}
    if nested:
        from training.selection import one_se_choice, paired_row_variance

        default = next(iter(makers))
        outcomes = [y[te] for _tr, te in folds]
        row_var = {n: paired_row_variance(outcomes, outer_p[n], outer_p[default]) for n in results if n != default}
        chosen, margins = one_se_choice({n: [f["auc"] for f in results[n]["folds"]] for n in results}, default,
                                        brier={n: results[n]["mean"]["brier"] for n in results}, row_var=row_var)
    summary = {"data": str(data), "target": target, "rows": len(y), "bad_rate": float(y.mean()),
               "cv": cv, "seed": seed, "model": model, "chosen": chosen, "results": results}
    if nested:
        from training.selection import RULE

        runner_up = next((n for n in ranking if n != chosen), None)
        outer = []
        for k, (choice, (_tr, te)) in enumerate(zip(choices, folds, strict=True), start=1):
            p = choice.apply(outer_p[choice.winner][k - 1])
            outer.append({"fold": k, **choice.as_dict(), **_scores(y[te], p)})
        summary["inner_cv"] = inner_cv
        summary["selection"] = {
            "rule": RULE + "; applied to the outer folds for the final model, and to inner folds of each outer "
                           "training part for its honest estimate `nested`",
            "default": default, "winner": chosen, "runner_up": runner_up, "over_default": margins,
            "margin": _paired_margin([f["auc"] for f in results[chosen]["folds"]],
                                     [f["auc"] for f in results[runner_up]["folds"]]) if runner_up else None,
        }
        summary["nested"] = {"folds": outer,
                             "mean": {m: float(np.mean([f[m] for f in outer])) for m in ("auc", "ks", "brier")}}
    return summary
