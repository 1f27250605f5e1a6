"""The validation report a sector department can file: JSON (machine) and HTML (people).

Deterministic by construction: no timestamps or paths inside the hashed content, floats rounded,
keys sorted, bootstrap seeded. Same data + seed → same ``sha256``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from models.calibration import brier_score, expected_calibration_error, reliability_table, wilson_interval
from models.meta import FeatureMeta
from stability.psi import decile_psi
from training import evaluation as ev
from training.gate import evaluate_gate

if TYPE_CHECKING:
    from training.trained import TrainedModel

FAIRNESS_GROUPS: dict[str, tuple[str, str]] = {
    "size_band": ("企业规模", "enterprise size band"),
    "age_band": ("成立年限", "age band"),
    "district_code": ("所属区县", "district"),
    "thin_file": ("信用记录稀少", "thin-file subjects"),
}
MIN_GROUP_SIZE = 30  # smaller groups are listed but never flagged: their intervals are too wide


@dataclass(frozen=True)
class ValidationReport:
    """Report content (JSON-ready dict), its canonical JSON text, the HTML page and the hash."""

    content: dict[str, Any]
    json_text: str
    html: str
    sha256: str
    metrics: dict[str, float]


def _r(x: Any, digits: int = 6) -> Any:
    """Round floats (and NaN → None) so the JSON is stable and valid."""
    if isinstance(x, (float, np.floating)):
        return None if np.isnan(x) else round(float(x), digits)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, dict):
        return {str(k): _r(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_r(v, digits) for v in x]
    return x


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_r(row) for row in frame.to_dict(orient="records")]


def monotonicity_check(model: Any, frame: pd.DataFrame, metas: Sequence[FeatureMeta], *, sample: int = 100, seed: int = 0) -> list[dict[str, Any]]:
    """For each feature, move it over its quantile grid holding the rest fixed and count the rows
    where the fitted risk moves against the declared direction (ceteris paribus check)."""
    if frame.empty:
        return []
    rng = np.random.default_rng(seed)
    rows = frame.iloc[np.sort(rng.choice(len(frame), size=min(sample, len(frame)), replace=False))]
    declared = {m.name: m.monotone for m in metas}
    categorical = {m.name for m in metas if m.categorical}
    grids: dict[str, np.ndarray] = {}
    for feat in model.features:
        if feat in categorical:
            continue  # no order to be monotone in
        values = pd.to_numeric(frame[feat], errors="coerce").astype(float).dropna()
        if not values.empty:
            grids[feat] = np.unique(np.quantile(values, np.linspace(0, 1, 11)))
    # One stacked frame and a single predict call: per-feature calls dominate the cost otherwise.
    blocks = []
    for feat, grid in grids.items():
        for value in grid:
            block = rows.copy()
            block[feat] = value
            blocks.append(block)
    if not blocks:
        return []
    raw = model.raw_proba(pd.concat(blocks, ignore_index=True))
    out = []
    pos = 0
    n = len(rows)
    for feat, grid in grids.items():
        preds = raw[pos : pos + n * len(grid)].reshape(len(grid), n).T  # rows × grid
        pos += n * len(grid)
        direction = int(declared.get(feat, 0))
        steps = np.diff(preds, axis=1)
        net = float(np.sign(np.round(steps.sum(axis=1).mean(), 12))) if steps.size else 0.0
        violations = float(np.mean(np.any(steps * direction < -1e-9, axis=1))) if direction and steps.size else 0.0
        out.append(
            {
                "feature": feat,
                "declared": direction,
                "fitted": int(net),
                "violations": violations,
                "ok": bool(violations == 0.0 and (direction == 0 or net in (0.0, float(direction)))),
            }
        )
    return out


def fairness_tables(validation: pd.DataFrame) -> list[dict[str, Any]]:
    """Grade mix, observed and predicted bad rate per group; flag groups graded worse than their
    observed bad rate justifies (mean predicted risk above the 95 % upper bound of the observed)."""
    out = []
    for column, (zh, en) in FAIRNESS_GROUPS.items():
        if column not in validation.columns:
            continue
        groups = []
        for value, part in validation.groupby(validation[column].astype(str), sort=True):
            n = len(part)
            bads = int(part["label"].sum())
            low, high = wilson_interval(bads, n)
            mix = part["grade"].value_counts(normalize=True)
            predicted = float(part["p_adverse_12m"].mean())
            flagged = bool(n >= MIN_GROUP_SIZE and predicted > high)
            groups.append(
                {
                    "group": value,
                    "count": n,
                    **{f"share_{g}": float(mix.get(g, 0.0)) for g in ev.GRADES},
                    "bad_rate": bads / n,
                    "bad_rate_low": low,
                    "bad_rate_high": high,
                    "predicted": predicted,
                    "flag": flagged,
                }
            )
        out.append({"dimension": column, "label_zh": zh, "label_en": en, "groups": _r(groups)})
    return out


def stability_table(scored: pd.DataFrame, baseline_as_of: Any) -> list[dict[str, Any]]:
    """PSI of the score and of the grade mix for every as-of date against the baseline date."""
    dates = pd.to_datetime(scored["as_of"]).dt.date
    base = scored.loc[(dates == baseline_as_of).to_numpy()]
    rows = []
    for d in sorted(dates.unique()):
        part = scored.loc[(dates == d).to_numpy()]
        mix = part["grade"].value_counts(normalize=True)
        rows.append(
            {
                "as_of": d.isoformat(),
                "count": len(part),
                "bad_rate": float(part["label"].mean()),
                "score_psi": decile_psi(base["p_adverse_12m"], part["p_adverse_12m"], categorical=False).psi,
                "grade_psi": decile_psi(base["grade"], part["grade"], categorical=True).psi,
                **{f"share_{g}": float(mix.get(g, 0.0)) for g in ev.GRADES},
            }
        )
    return _r(rows)


def build_report(
    result: TrainedModel,
    *,
    metas: Sequence[FeatureMeta],
    champion: pd.DataFrame | None = None,
    n_boot: int = 200,
) -> ValidationReport:
    """The report stage: assemble the report of a trained model; ``champion`` = the champion's
    ``grade()`` frame on the same validation rows (for the comparison section)."""
    cfg = result.config
    val = result.validation
    y = val["label"].to_numpy()
    p = val["p_adverse_12m"].to_numpy()
    seed = cfg.seed
    auc_i = ev.bootstrap_interval(y, p, "auc", n_boot=n_boot, seed=seed)
    ks_i = ev.bootstrap_interval(y, p, "ks", n_boot=n_boot, seed=seed)
    gini_i = ev.bootstrap_interval(y, p, "gini", n_boot=n_boot, seed=seed)
    table = ev.grade_table(y, val["grade"].to_numpy())
    override_counts = result.model.grade(val)["override"].replace("", "none").value_counts().sort_index()
    comparison = None
    if champion is not None:
        gate = evaluate_gate(y, p, val["grade"].to_numpy(), champion["p_adverse_12m"].to_numpy(), champion["grade"].to_numpy())
        comparison = gate.as_dict()
    content = {
        "model": {
            "name": result.name,
            "kind": result.model.kind,
            "sector": result.model.sector,
            "candidate": result.model.candidate,
            "features": list(result.model.features),
            "cutoffs": list(result.model.cutoffs),
            "target_shares": dict(result.policy.target_shares),
            "direct_grading": [r.model_dump() for r in result.policy.direct_grading],
            "excluded_features": list(result.policy.exclude_features),
        },
        "data": {
            "train_as_of": [d.isoformat() for d in cfg.train_as_of],
            "validate_as_of": cfg.validate_as_of.isoformat(),
            "horizon_months": cfg.horizon_months,
            "seed": seed,
            "data_sha256": result.data_hash,
            "validation_subjects": len(val),
            "validation_bads": int(y.sum()),
        },
        "notes": list(result.notes),
        "candidates": result.candidate_metrics,
        "discrimination": {"auc": auc_i.as_dict(), "ks": ks_i.as_dict(), "gini": gini_i.as_dict()},
        "calibration": {
            "brier": brier_score(y, p),
            "ece": expected_calibration_error(y, p),
            "mean_predicted": float(p.mean()),
            "observed_rate": float(y.mean()),
            "reliability": _records(reliability_table(y, p)),
        },
        "grades": {
            "table": _records(table),
            "monotone": ev.grades_monotone(table),
            "strictly_increasing": ev.grades_monotone(table, strict=True),
            "separated_95": ev.grades_separated(table),
            "overrides": {str(k): int(v) for k, v in override_counts.items()},
        },
        "stability": stability_table(result.scored, max(cfg.train_as_of)),
        "monotonicity": monotonicity_check(result.model, val, metas, seed=seed),
        "fairness": fairness_tables(val),
        "champion_comparison": comparison,
    }
    content = _r(content)
    json_text = json.dumps(content, ensure_ascii=False, sort_keys=True, indent=2)
    sha = hashlib.sha256(json_text.encode("utf-8")).hexdigest()
    html = _render_html(content, sha)
    metrics = {
        "oot_auc": auc_i.value,
        "oot_auc_low": auc_i.low,
        "oot_auc_high": auc_i.high,
        "oot_ks": ks_i.value,
        "oot_gini": gini_i.value,
        "oot_brier": content["calibration"]["brier"],
        "oot_ece": content["calibration"]["ece"],
        "grades_monotone": float(content["grades"]["monotone"]),
        "fairness_flags": float(sum(g["flag"] for dim in content["fairness"] for g in dim["groups"])),
        "monotonicity_violations": float(sum(not m["ok"] for m in content["monotonicity"])),
    }
    return ValidationReport(content=content, json_text=json_text, html=html, sha256=sha, metrics=metrics)


def _render_html(content: dict[str, Any], sha: str) -> str:
    from jinja2 import Environment, StrictUndefined, select_autoescape

    env = Environment(autoescape=select_autoescape(default=True), undefined=StrictUndefined)
    env.filters["pct"] = lambda x: "—" if x is None else f"{100 * x:.1f} %"
    env.filters["num"] = lambda x, d=4: "—" if x is None else f"{x:.{d}f}"
    template_text = resources.files("training").joinpath("templates/validation_report.html").read_text(encoding="utf-8")
    return env.from_string(template_text).render(r=content, sha=sha, grades=ev.GRADES)
