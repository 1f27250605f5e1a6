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
``--target``) and the rule, in English and in Chinese (``zh``); the caller says it. What would be a
silent wrong result (a column leaking the target, amounts read as text) is a warning in the summary.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serving.workflows import WorkflowError

MODEL_CHOICES = ("scorecard", "gbm", "blend", "blend-shallow", "gam", "auto")

Progress = Callable[[int, int], None]  # (folds fitted so far, folds to fit)


def _excel_reader_installed() -> bool:
    """Is pandas' Excel reader (openpyxl) installed? Checked, never installed."""
    import importlib.util

    return importlib.util.find_spec("openpyxl") is not None


def _read_table(path: Path) -> tuple[Any, dict[str, Any], list[dict[str, str]]]:
    """The table, how it was read (``format``, ``encoding``, ``delimiter``, ``sheet``) and warnings.

    CSV: UTF-8 (with or without BOM), else GB18030 (`serving.validation.decode_table_text`), split on
    the delimiter its header line uses most (, tab ; |: `features.reading.sniff_delimiter`). Excel
    (.xlsx) through openpyxl when installed, its first sheet; Parquet."""
    import pandas as pd

    from features.reading import sniff_delimiter
    from serving.validation import decode_table_text

    suffix = path.suffix.lower()
    if not path.is_file():
        raise WorkflowError("data", f"{path}: no such file (rule: a readable CSV, .xlsx or Parquet file)",
                            zh=f"{path}：文件不存在（规则：可读的 CSV、.xlsx 或 Parquet 文件）")
    info: dict[str, Any] = {"format": suffix.lstrip(".") or "csv", "encoding": None, "delimiter": None}
    said: list[dict[str, str]] = []
    if suffix in (".xlsx", ".xls"):
        if suffix == ".xls" or not _excel_reader_installed():
            raise WorkflowError("data", f"{path}: Excel not supported: save as CSV (UTF-8 or GB18030)"
                                + (" or .xlsx" if suffix == ".xls" and _excel_reader_installed() else ""),
                                zh=f"{path}：不支持该 Excel 文件，请另存为 CSV（UTF-8 或 GB18030）"
                                + ("或 .xlsx" if suffix == ".xls" and _excel_reader_installed() else ""))
        from zipfile import BadZipFile

        try:
            with pd.ExcelFile(path, engine="openpyxl") as book:
                sheets = list(book.sheet_names)
                info["sheet"] = sheets[0]
                frame = book.parse(info["sheet"])
        except (ValueError, OSError, KeyError, BadZipFile) as exc:  # what openpyxl raises for a file not .xlsx
            raise WorkflowError("data", f"{path}: cannot be read as .xlsx ({exc})",
                                zh=f"{path}：无法按 .xlsx 读取（{exc}）") from exc
        if len(sheets) > 1:
            said.append({"kind": "other_sheets", "column": None,
                         "zh": f"工作簿有 {len(sheets)} 个工作表，只读取了第一个「{sheets[0]}」；未读取：{'、'.join(sheets[1:])}",
                         "en": f"the workbook has {len(sheets)} sheets; only the first, {sheets[0]!r}, was read "
                               f"(not read: {', '.join(sheets[1:])})"})
        return frame, info, said
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path), info, said
        decoded = decode_table_text(path.read_bytes())
        if decoded is None:
            raise WorkflowError(
                "data", f"{path}: the text is neither UTF-8 nor GB18030 (rule: a CSV in UTF-8, with or without "
                        "BOM, or GB18030/GBK; save it again as CSV UTF-8)",
                zh=f"{path}：文本既不是 UTF-8 也不是 GB18030 编码（规则：CSV 须为 UTF-8（可带 BOM）或 "
                   "GB18030/GBK；请重新另存为 CSV UTF-8）")
        text, info["encoding"] = decoded
        info["format"] = "csv"
        header = next((line for line in text.splitlines() if line.strip()), "")
        info["delimiter"] = sniff_delimiter(header)
        return pd.read_csv(io.StringIO(text), sep=info["delimiter"]), info, said
    except (ValueError, OSError) as exc:
        if isinstance(exc, WorkflowError):
            raise
        kind = "Parquet" if suffix == ".parquet" else "CSV"
        raise WorkflowError("data", f"{path}: cannot be read as {kind} ({exc})",
                            zh=f"{path}：无法按 {kind} 读取（{exc}）") from exc


def _values_found(col, limit: int = 10) -> str:
    """The distinct values of a column with their row counts, most frequent first: 'no' (150), …"""
    counts = col.astype(str).str.strip().value_counts()
    shown = ", ".join(f"{value!r} ({n})" for value, n in counts.head(limit).items())
    return shown + (f", … ({len(counts) - limit} more)" if len(counts) > limit else "")


def _is_value(cell: object, value: str) -> bool:
    """Does a cell hold ``value``: the same text (outer spaces aside), the same number (2 = "2.0"), or
    the same truth value (a column pandas read as True/False)?"""
    import numpy as np

    text, wanted = str(cell).strip(), value.strip()
    if text == wanted or (isinstance(cell, bool | np.bool_) and text.lower() == wanted.lower()):
        return True
    try:
        return float(text) == float(wanted)
    except ValueError:
        return False


def _check_target(frame, target: str, cv: int, bad: str | None = None):
    """Return y as 0/1 ints, or a `WorkflowError` naming the column, the values found and the rule.

    Without ``bad`` the target is 0/1 with 1 = bad (`serving.validation.binary_target`); with it, a
    cell holding ``bad`` (`_is_value`) is 1 and every other value 0 — never guessed."""
    import numpy as np
    import pandas as pd

    def fail(message: str, zh: str):
        raise WorkflowError("target", message, zh=zh)

    if target not in frame.columns:
        columns = list(frame.columns)
        glued = next((d for d in (";", "\t", "|", ",") if len(columns) == 1 and d in str(columns[0])), None)
        hint = (f" — the header was read as one column holding {glued!r}: is the file delimited by {glued!r}?"
                if glued else "")
        hint_zh = f"——表头被读成一列，其中含有 {glued!r}：文件是否以 {glued!r} 分隔？" if glued else ""
        fail(f"{target!r}: no such column; columns are {columns[:20]}{hint}",
             f"{target!r}：没有这一列；现有的列是 {columns[:20]}{hint_zh}")
    col = frame[target]
    if col.isna().any():
        rule, rule_zh = ("every row needs a value", "每一行都要有值") if bad is not None else \
            ("every row needs 0 or 1, 1 = bad", "每一行都须是 0 或 1，1 = 坏")
        fail(f"{target!r}: {int(col.isna().sum())} missing values (rule: {rule})",
             f"{target!r}：有 {int(col.isna().sum())} 个缺失值（规则：{rule_zh}）")
    if bad is None:
        from serving.validation import binary_target

        target_of = col.map({value: binary_target(value) for value in pd.unique(col)})  # each distinct value once
        if target_of.isna().any():
            found = _values_found(col)
            fail(f"{target!r}: values found {found}; the target must be 0/1 with 1 = bad, or name the value that "
                 "means the adverse outcome with --bad VALUE (every other value is then good)",
                 f"{target!r}：目标列的取值为 {found}；目标须为 0/1（1 = 坏），或用 --bad 值 指明哪个取值表示不良结果"
                 "（其余取值均视为好）")
        y = target_of.to_numpy(dtype=int)
    else:
        y = col.map({value: int(_is_value(value, bad)) for value in pd.unique(col)}).to_numpy(dtype=int)
        if not y.any():
            found = _values_found(col)
            fail(f"{target!r}: no row holds --bad {bad!r}; values found {found}",
                 f"{target!r}：没有一行的取值是 --bad {bad!r}；目标列的取值为 {found}")
    counts = np.bincount(y, minlength=2)
    if counts.min() < cv:
        fail(f"{target!r}: class counts 0={counts[0]}, 1={counts[1]} (rule: each class needs ≥ --cv={cv} rows)",
             f"{target!r}：两类的行数 0={counts[0]}、1={counts[1]}（规则：每一类至少要有 --cv={cv} 行）")
    return y


LEAKAGE_AUC = 0.99  # one feature alone ranking the target this well, on the whole table: probable leakage
_AMOUNT = re.compile(r"^[+-]?\d{1,3}([,，]\d{3})+(\.\d+)?$|^[+-]?\d+(\.\d+)?$")


def _input_warnings(X, y, target: str, bad: str | None, col) -> list[dict[str, Any]]:
    """What would otherwise be a silent wrong result, each ``{kind, column, zh, en}``:

    - ``leakage``: a feature that on its own ranks the target with AUC ≥ `LEAKAGE_AUC` (or ≤ 1 − it) on
      the whole table — numbers as they are (missing values left out), a text column with few values
      (≤ 50, ≤ a fifth of the rows: not an identifier) by its values' bad rates;
    - ``read_as_text``: a text column whose every value is a number once thousands separators go;
    - ``several_good_values``: with ``bad``, more than one other value taken as good."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    said: list[dict[str, Any]] = []
    for name in X.columns:
        x = X[name]
        score = None
        if pd.api.types.is_numeric_dtype(x):
            known = x.notna().to_numpy()
            if len(np.unique(y[known])) == 2:
                score = roc_auc_score(y[known], x[known].astype(float))
        elif x.nunique() <= min(50, len(x) // 5):
            levels = x.astype(object).fillna("\0missing")  # missing is a level of its own
            rates = pd.Series(y, index=x.index).groupby(levels).mean()
            score = roc_auc_score(y, levels.map(rates).astype(float))
        if score is not None and max(score, 1 - score) >= LEAKAGE_AUC:
            auc = max(score, 1 - score)
            said.append({"kind": "leakage", "column": name,
                         "zh": f"列 {name!r} 单独一列就几乎完全区分了目标（全表单列 AUC {auc:.4f}）：很可能是信息泄漏"
                               "（目标的副本，或按结果排序后编的编号）；请核实，删去该列后再拟合",
                         "en": f"column {name!r} alone separates the target almost perfectly (one-feature AUC "
                               f"{auc:.4f} on the whole table): probable leakage (a copy of the target, or an ID "
                               "assigned after sorting by outcome); check it and drop it before fitting"})
        elif x.dtype == object:
            texts = x.dropna().astype(str).str.strip()
            grouped = texts[texts.str.contains("[,，]", regex=True)]
            if len(grouped) and texts.str.match(_AMOUNT).all():
                example = grouped.iloc[0]
                said.append({"kind": "read_as_text", "column": name,
                             "zh": f"列 {name!r} 被读成文本：去掉千位分隔符后全是数字（如 {example!r}），模型会把每个取值"
                                   "当作一个类别而不是数额；请导出不带千位分隔符的数字",
                             "en": f"column {name!r} was read as text: its values are numbers once the thousands "
                                   f"separators are removed (e.g. {example!r}); the models take each value as a "
                                   "category, not an amount; export the numbers without thousands separators"})
    if bad is not None:
        good = sorted({str(v).strip() for v, is_bad in zip(col, y, strict=True) if not is_bad})
        if len(good) > 1:
            said.append({"kind": "several_good_values", "column": target,
                         "zh": f"目标列 {target!r}：除 {bad!r} 外的 {len(good)} 个取值都按「好」计：{good[:10]}",
                         "en": f"target {target!r}: {len(good)} values other than {bad!r} are all taken as good: "
                               f"{good[:10]}"})
    return said


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
              progress: Progress = _no_progress, bad: str | None = None) -> dict[str, Any]:
    """Read ``data`` (CSV, .xlsx or Parquet: `_read_table`), check ``target`` (0/1, 1 = bad, or 1 where
    it holds ``bad`` and 0 elsewhere; each class ≥ ``cv`` rows) and
    cross-validate ``model`` (or every candidate, with ``auto``) on ``cv`` stratified folds seeded by
    ``seed``; with ``auto`` the choice by `training.selection.RULE` on those folds, the nested
    estimate over ``inner_cv`` inner folds, the winner's paired AUC margin over the runner-up (the
    best other mean AUC) and every candidate's margin over the default. Returns the summary
    `tiers fit --json` prints (per-fold and mean AUC, KS, Brier per model; the chosen model;
    ``selection`` and ``nested`` with ``auto``; how the file was read, ``input``; ``warnings``
    (`_input_warnings`), each in Chinese and English)."""
    frame, read, said = _read_table(data)
    y = _check_target(frame, target, cv, bad)
    X = frame.drop(columns=[target])
    if X.shape[1] == 0:
        raise WorkflowError("data", f"{data}: no feature columns besides the target {target!r}",
                            zh=f"{data}：除目标列 {target!r} 外没有特征列")
    said += _input_warnings(X, y, target, bad, frame[target])

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
                                            f"{exc}", zh=f"{data}：模型 {name} 无法在{what}{where}上拟合：{exc}") from exc
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
    summary.update(bad_value=bad, input=read, warnings=said)
    if nested:
        from training.selection import RULE, RULE_ZH

        runner_up = next((n for n in ranking if n != chosen), None)
        outer = []
        for k, (choice, (_tr, te)) in enumerate(zip(choices, folds, strict=True), start=1):
            p = choice.apply(outer_p[choice.winner][k - 1])
            outer.append({"fold": k, **choice.as_dict(), **_scores(y[te], p)})
        summary["inner_cv"] = inner_cv
        summary["selection"] = {
            "rule": RULE + "; applied to the outer folds for the final model, and to inner folds of each outer "
                           "training part for its honest estimate `nested`",
            "rule_zh": RULE_ZH + "；最终模型按此规则在外层各折上选定，每个外层训练部分的内层各折也按此规则选择，"
                                 "以得到 `nested` 中不受这一选择影响的估计",
            "default": default, "winner": chosen, "runner_up": runner_up, "over_default": margins,
            "margin": _paired_margin([f["auc"] for f in results[chosen]["folds"]],
                                     [f["auc"] for f in results[runner_up]["folds"]]) if runner_up else None,
        }
        summary["nested"] = {"folds": outer,
                             "mean": {m: float(np.mean([f[m] for f in outer])) for m in ("auc", "ks", "brier")}}
    return summary
