"""Training: past as-of dates → candidate models → out-of-time choice → calibration → cut-offs.

`train_model` is pure: it takes a labelled dataset (one row per subject and as-of date, see
`assemble_dataset`) and returns a `TrainingResult`; registering it is `register_result`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from models.grading import Grader
from models.meta import FeatureMeta
from models.ontop import OnTopModel
from training import evaluation as ev
from training.bundle import GradingModel, calibrate_prefit, model_matrix, recalibrated
from training.candidates import CANDIDATES
from training.sector_policy import TrainingPolicy

GENERAL_NAME = "tiers-general"
ID_COLUMNS = ("uscc", "as_of")
LABEL = "label"
GROUP_COLUMNS = ("industry", "district_code", "size_band", "age_band", "thin_file")

Progress = Callable[[str, float], None]  # (stage description, fraction done in [0, 1])


def model_name(sector: str | None) -> str:
    """Registry name: ``tiers-general`` or ``tiers-sector-H``."""
    return GENERAL_NAME if sector is None else f"tiers-sector-{sector}"


@dataclass(frozen=True)
class TrainingConfig:
    """What to train on and how. Dates are the as-of dates of the profiles."""

    train_as_of: tuple[date, ...]
    validate_as_of: date
    horizon_months: int = 12
    seed: int = 42
    min_sector_positives: int = 300
    candidates: tuple[str, ...] = ("scorecard", "gbm_additive", "gbm")
    calibration_share: float = 0.3
    calibration_method: str = "sigmoid"  # Platt keeps the ranking; isotonic ties subjects
    # 通用＋专用: a sector's gradient-boosting candidates boost from the general model's log-odds
    # (they learn only what the sector adds); False fits them on the sector's rows alone.
    sector_on_general: bool = True
    # Glass box first: a candidate with interactions ("gbm") needs TreeSHAP for exact reasons
    # (≈ 15× the cost of grading 1 M subjects with top-5 reasons, benchmarks/grading.py) and has no
    # per-feature shape to print; it is chosen only if it beats the best additive candidate out of
    # time by at least this much AUC.
    interaction_margin_auc: float = 0.005
    n_boot: int = 200

    def check(self) -> None:
        """Refuse configurations that would leak label windows into the validation."""
        if not self.train_as_of:
            raise ValueError("train_as_of is empty; give at least one past as-of date")
        last = max(self.train_as_of)
        label_end = last + relativedelta(months=self.horizon_months)
        if label_end > self.validate_as_of:
            raise ValueError(
                f"validate_as_of {self.validate_as_of} is before {label_end}, the end of the "
                f"{self.horizon_months}-month label window of train as-of {last}; labels would overlap"
            )
        unknown = [c for c in self.candidates if c not in CANDIDATES]
        if unknown:
            raise ValueError(f"candidates {unknown} are not among {sorted(CANDIDATES)}")
        if not 0 < self.calibration_share < 1:
            raise ValueError(f"calibration_share {self.calibration_share} must be in (0, 1)")


@dataclass
class TrainingResult:
    """A trained, calibrated, graded model with its out-of-time validation."""

    name: str
    model: GradingModel
    config: TrainingConfig
    policy: TrainingPolicy
    candidate_metrics: dict[str, dict[str, float]]
    validation: pd.DataFrame  # OOT rows: ids, features, label, groups, p_adverse_12m, grade
    scored: pd.DataFrame  # every row of every as-of date with p_adverse_12m and grade (stability)
    data_hash: str
    notes: list[str] = field(default_factory=list)
    report: Any = None  # training.report.ValidationReport, set by `train_model`

    def params(self) -> dict[str, Any]:
        """Run parameters as logged to MLflow."""
        return {
            "model_name": self.name,
            "kind": self.model.kind,
            "sector": self.model.sector or "",
            "candidate": self.model.candidate,
            "train_as_of": ",".join(d.isoformat() for d in self.config.train_as_of),
            "validate_as_of": self.config.validate_as_of.isoformat(),
            "horizon_months": self.config.horizon_months,
            "seed": self.config.seed,
            "min_sector_positives": self.config.min_sector_positives,
            "candidates": ",".join(self.config.candidates),
            "features": ",".join(self.model.features),
            "cutoffs": ",".join(f"{c:.6g}" for c in self.model.cutoffs),
            "target_shares": json.dumps(self.policy.target_shares, sort_keys=True),
            "exclude_features": ",".join(self.policy.exclude_features),
            "direct_grading": ",".join(r.rule_id for r in self.policy.direct_grading),
            "data_sha256": self.data_hash,
        }


# -- dataset ------------------------------------------------------------------------------------


def size_band(employees: pd.Series) -> pd.Series:
    """Enterprise size by head-count (simplified NBS bands: micro < 10, small < 100, medium < 300)."""
    bins = [-np.inf, 9, 99, 299, np.inf]
    return pd.cut(pd.to_numeric(employees, errors="coerce"), bins, labels=["micro", "small", "medium", "large"]).astype(
        "string"
    ).fillna("unknown")


def age_band(registered_on: pd.Series, as_of: pd.Series) -> pd.Series:
    """Years since registration at the as-of date: <1, 1–3, 3–10, ≥10."""
    years = (pd.to_datetime(as_of) - pd.to_datetime(registered_on, errors="coerce")).dt.days / 365.25
    bins = [-np.inf, 1, 3, 10, np.inf]
    return pd.cut(years, bins, right=False, labels=["<1y", "1-3y", "3-10y", ">=10y"]).astype("string").fillna("unknown")


def assemble_dataset(
    profiles: pd.DataFrame,
    labels: pd.DataFrame,
    subjects: pd.DataFrame | None = None,
    *,
    label_column: str = "label",
) -> pd.DataFrame:
    """Join profiles with labels (and subject attributes the profile lacks) for training and the
    fairness groups (industry, district, size band, age band, thin file).

    ``profiles`` and ``labels`` are keyed by (uscc, as_of); ``subjects`` by uscc. Profiles
    without a label (e.g. the subject was deregistered) are left out, not treated as good.
    """
    for frame, what in ((profiles, "profiles"), (labels, "labels")):
        missing = {"uscc", "as_of"} - set(frame.columns)
        if missing:
            raise KeyError(f"{what} lacks key columns {sorted(missing)}")
    if label_column not in labels.columns:
        raise KeyError(f"labels lack the label column {label_column!r}")
    prof = profiles.copy()
    prof["as_of"] = pd.to_datetime(prof["as_of"]).dt.date
    lab = labels[["uscc", "as_of", label_column]].copy()
    lab["as_of"] = pd.to_datetime(lab["as_of"]).dt.date
    lab = lab.rename(columns={label_column: LABEL})
    data = prof.merge(lab, on=["uscc", "as_of"], how="inner", validate="one_to_one")
    if subjects is not None:
        attrs = [c for c in ("industry", "district_code", "employees", "registered_on")
                 if c in subjects.columns and c not in data.columns]
        if attrs:
            data = data.merge(subjects[["uscc", *attrs]].drop_duplicates("uscc"), on="uscc", how="left")
    data["size_band"] = size_band(data["employees"]) if "employees" in data else "unknown"
    if "age_years" in data:
        years = pd.to_numeric(data["age_years"], errors="coerce")
        data["age_band"] = pd.cut(years, [-np.inf, 1, 3, 10, np.inf], right=False,
                                  labels=["<1y", "1-3y", "3-10y", ">=10y"]).astype("string").fillna("unknown")
    elif "registered_on" in data:
        data["age_band"] = age_band(data["registered_on"], pd.Series(data["as_of"]))
    else:
        data["age_band"] = "unknown"
    data["thin_file"] = data["thin_file"].fillna(False).astype(bool) if "thin_file" in data else False
    data[LABEL] = data[LABEL].astype(int)
    return data.sort_values(["as_of", "uscc"], kind="stable").reset_index(drop=True)


def data_hash(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """sha256 of the rows and columns a model was trained on (order-independent of input order)."""
    cols = sorted(set(columns) | {"uscc", "as_of", LABEL})
    part = frame.loc[:, cols].sort_values(["as_of", "uscc"], kind="stable").reset_index(drop=True)
    digest = hashlib.sha256(",".join(cols).encode())
    digest.update(pd.util.hash_pandas_object(part.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _calibration_mask(uscc: pd.Series, share: float, seed: int) -> np.ndarray:
    # Split by subject (not by row) so one subject's as-of dates never sit on both sides.
    def bucket(code: str) -> int:
        return int(hashlib.sha256(f"{seed}:{code}".encode()).hexdigest()[:8], 16) % 10_000

    return uscc.map(bucket).to_numpy() < share * 10_000


# -- training -----------------------------------------------------------------------------------


# Candidates that can be boosted from the general model's log-odds (LightGBM init_score).
ON_TOP_CANDIDATES = ("gbm_additive", "gbm")


def _on_top_columns(general: GradingModel | None, names: Sequence[str], metas: Sequence[FeatureMeta],
                    policy: TrainingPolicy) -> tuple[list[str], list[FeatureMeta]] | None:
    """Input columns of a sector model on top of ``general`` (its features, then the sector's
    own), or None when there is no general model or the policy excludes a feature it uses."""
    if general is None or set(policy.exclude_features) & set(general.features):
        return None
    cols, cmetas = list(general.features), list(general.metas)
    for name, meta in zip(names, metas, strict=True):
        if name not in cols:
            cols.append(name)
            cmetas.append(meta)
    return cols, cmetas


def train_model(
    dataset: pd.DataFrame,
    features: Sequence[FeatureMeta],
    *,
    config: TrainingConfig,
    policy: TrainingPolicy | None = None,
    sector: str | None = None,
    general: GradingModel | None = None,
    champion: GradingModel | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Fit, choose out of time, calibrate and grade one model (general, or one sector's).

    For a sector with fewer than ``min_sector_positives`` (or the policy's ``min_positives``)
    adverse outcomes in its training rows, the ``general`` model is recalibrated on the sector's
    data instead of fitting a sector model; the result's notes and report say so.
    """
    from training.report import build_report

    config.check()
    policy = policy or TrainingPolicy(sector=sector)
    say = progress or (lambda _stage, _frac: None)
    excluded = set(policy.exclude_features)
    if sector is not None:
        excluded.add("industry")  # constant within a sector
    metas = [m for m in features if m.name not in excluded]
    unknown_excl = set(policy.exclude_features) - {m.name for m in features}
    if unknown_excl:
        raise ValueError(f"exclude_features {sorted(unknown_excl)} are not features of the profile")
    names = [m.name for m in metas]
    missing = [n for n in names if n not in dataset.columns]
    if missing:
        raise KeyError(f"dataset lacks feature columns {missing}")
    monotone = {m.name: m.monotone for m in metas}

    data = dataset if sector is None else dataset.loc[dataset["industry"] == sector]
    # A canonical row order: model fits and bootstraps depend on it, the caller's order must not.
    data = data.sort_values(["as_of", "uscc"], kind="stable").reset_index(drop=True)
    as_of = pd.to_datetime(data["as_of"]).dt.date
    train_rows = data.loc[as_of.isin(config.train_as_of).to_numpy()]
    valid_rows = data.loc[(as_of == config.validate_as_of).to_numpy()]
    where = f"sector {sector}" if sector else "all subjects"
    if train_rows.empty:
        raise ValueError(f"no labelled profiles of {where} at train as-of dates {list(config.train_as_of)}")
    if valid_rows.empty or valid_rows[LABEL].nunique() < 2:
        raise ValueError(
            f"validation as-of {config.validate_as_of} has {len(valid_rows)} labelled profiles of {where} "
            "with both outcomes needed"
        )
    positives = int(train_rows[LABEL].sum())
    min_pos = policy.min_positives or config.min_sector_positives
    notes: list[str] = []
    cal_mask = _calibration_mask(train_rows["uscc"], config.calibration_share, config.seed)
    fit_rows, cal_rows = train_rows.loc[~cal_mask], train_rows.loc[cal_mask]
    y_valid = valid_rows[LABEL].to_numpy()
    candidate_metrics: dict[str, dict[str, float]] = {}

    if sector is not None and positives < min_pos:
        if general is None:
            raise ValueError(
                f"sector {sector} has {positives} adverse outcomes in training (< {min_pos}) and no general model "
                "was given to fall back on"
            )
        kind, chosen = "general_recalibrated", general.candidate
        names = list(general.features)
        metas = list(general.metas)
        notes.append(
            f"sector {sector}: {positives} adverse outcomes in training, below the minimum {min_pos}; "
            "the general model is used, recalibrated on the sector's own data "
            f"(行业训练样本不良结果 {positives} 个，少于 {min_pos} 个：沿用通用模型，以本行业数据重新校准)"
        )
        say("recalibrating the general model", 0.5)
        estimator = recalibrated(general.estimator, model_matrix(train_rows, names, metas), train_rows[LABEL].to_numpy(),
                                 method=config.calibration_method)
    else:
        kind = "general" if sector is None else "sector"
        if fit_rows[LABEL].nunique() < 2 or cal_rows[LABEL].nunique() < 2:
            raise ValueError(f"training rows of {where} need both outcomes in the fit and calibration parts")
        y_fit = fit_rows[LABEL].to_numpy()
        on_top = _on_top_columns(general, names, metas, policy) if sector is not None and config.sector_on_general else None
        if sector is not None and config.sector_on_general and on_top is None and general is not None:
            notes.append(f"sector {sector}: the policy excludes features the general model uses, so the sector model "
                         "is fitted on the sector's rows alone (行业政策排除了通用模型使用的特征：行业模型单独训练)")
        fitted: dict[str, Any] = {}
        columns: dict[str, tuple[list[str], list[FeatureMeta]]] = {}
        for i, cand in enumerate(config.candidates):
            say(f"fitting {cand}", 0.7 * i / len(config.candidates))
            estimator = CANDIDATES[cand](monotone, config.seed)
            columns[cand] = (names, metas)
            if on_top is not None and cand in ON_TOP_CANDIDATES:
                estimator = OnTopModel(base=general.estimator.estimator_, delta=estimator, delta_features=names)
                columns[cand] = on_top
            cols, cmetas = columns[cand]
            fitted[cand] = estimator.fit(model_matrix(fit_rows, cols, cmetas), y_fit)
            p_valid = fitted[cand].predict_proba(model_matrix(valid_rows, cols, cmetas))[:, 1]
            candidate_metrics[cand] = {"oot_auc": ev.auc(y_valid, p_valid), "oot_ks": ev.ks(y_valid, p_valid)}
        chosen = _select(config, candidate_metrics, notes, sector)
        names, metas = columns[chosen]
        if isinstance(fitted[chosen], OnTopModel):
            notes.append(f"sector {sector}: {chosen} is boosted on the sector's rows from the general model's "
                         "log-odds, so it adds what is specific to the sector (在通用模型基础上以本行业数据训练专用模型)")
        say(f"calibrating {chosen}", 0.7)
        estimator = calibrate_prefit(fitted[chosen], model_matrix(cal_rows, names, metas), cal_rows[LABEL].to_numpy(),
                                     method=config.calibration_method)

    say("setting grade cut-offs", 0.8)
    # Cut-offs from the latest training population, never from the validation date.
    latest = train_rows.loc[(pd.to_datetime(train_rows["as_of"]).dt.date == max(config.train_as_of)).to_numpy()]
    p_latest = estimator.predict_proba(model_matrix(latest, names, metas))[:, 1]
    grader = Grader(policy="shares", shares=dict(policy.target_shares), overrides=policy.rules()).fit(p_latest)
    model = GradingModel(
        estimator=estimator,
        grader=grader,
        features=tuple(names),
        metas=tuple(metas),
        kind=kind,
        sector=sector,
        candidate=chosen,
    )

    say("validating out of time", 0.9)
    scored = data.loc[as_of.isin((*config.train_as_of, config.validate_as_of)).to_numpy()].copy()
    graded = model.grade(scored)
    scored["p_adverse_12m"] = graded["p_adverse_12m"].to_numpy()
    scored["score"] = graded["score"].to_numpy()
    scored["grade"] = graded["grade"].to_numpy()
    validation = scored.loc[(pd.to_datetime(scored["as_of"]).dt.date == config.validate_as_of).to_numpy()].copy()
    result = TrainingResult(
        name=model_name(sector),
        model=model,
        config=config,
        policy=policy,
        candidate_metrics=candidate_metrics,
        validation=validation.reset_index(drop=True),
        scored=scored.reset_index(drop=True),
        data_hash=data_hash(data.loc[as_of.isin((*config.train_as_of, config.validate_as_of)).to_numpy()], [m.name for m in features]),
        notes=notes,
    )
    champion_graded = champion.grade(validation) if champion is not None else None
    result.report = build_report(result, metas=metas, champion=champion_graded, n_boot=config.n_boot)
    say("done", 1.0)
    return result


def metrics_of(result: TrainingResult) -> dict[str, float]:
    """Flat metric dict (for MLflow) from the report's figures."""
    return dict(result.report.metrics)


def register_result(registry: Any, result: TrainingResult) -> Any:
    """Log the run (params, as-of dates, data hash, metrics, report, model) and register a version."""
    report = result.report
    example = model_matrix(result.validation.head(5), result.model.features, result.model.metas)
    oot_columns = [c for c in result.validation.columns if c not in ("p_adverse_12m", "score", "grade")]
    oot = result.validation.loc[:, oot_columns].copy()
    oot["as_of"] = oot["as_of"].astype(str)
    for col in oot.columns:
        if oot[col].dtype == object:
            oot[col] = oot[col].astype(str)
    return registry.log_model_run(
        result.name,
        result.model,
        params=result.params(),
        metrics=metrics_of(result),
        tags={
            "kind": result.model.kind,
            "sector": result.model.sector or "",
            "report_sha256": report.sha256,
            "data_sha256": result.data_hash,
            "validate_as_of": result.config.validate_as_of.isoformat(),
        },
        input_example=example,
        artifacts={"report/validation_report.html": report.html, "report/validation_report.json": report.json_text},
        frames={"validation/oot.parquet": oot},
    )


def feature_metas_from_specs(specs: Any) -> list[FeatureMeta]:
    """``FeatureMeta`` of the model inputs among ``features.specs.FEATURE_SPECS`` (objects or a
    ``specs_table()`` frame); columns with ``model_input`` False are left out."""
    rows = specs.to_dict(orient="records") if isinstance(specs, pd.DataFrame) else [
        s if isinstance(s, Mapping) else s.__dict__ for s in specs
    ]
    return [
        FeatureMeta(
            name=str(r["name"]),
            label_zh=str(r.get("label_zh") or r["name"]),
            label_en=str(r.get("label_en") or r["name"]),
            monotone=int(r.get("monotone", 0) or 0),
            reason=str(r.get("reason") or ""),
            actionable=bool(r.get("actionable", False)),
            categorical=bool(r.get("categorical", False)),
            template_zh=_text(r, "template_zh"),
            template_en=_text(r, "template_en"),
            missing_zh=_text(r, "missing_zh"),
            missing_en=_text(r, "missing_en"),
        )
        for r in rows
        if r.get("model_input", True)
    ]


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) else None  # a frame holds NaN where a spec has None


# Candidates whose exact per-feature contributions are a lookup (points or depth-1 shapes).
ADDITIVE_CANDIDATES = frozenset({"scorecard", "gbm_additive", "blend"})


def _select(config: TrainingConfig, metrics: dict[str, dict[str, float]], notes: list[str], sector: str | None) -> str:
    """Highest out-of-time AUC (ties to the earlier, simpler candidate), except that a candidate
    with interactions must beat the best additive one by ``config.interaction_margin_auc``."""
    def best(cands: list[str]) -> str:
        return max(cands, key=lambda c: (round(metrics[c]["oot_auc"], 6), -config.candidates.index(c)))

    chosen = best(list(config.candidates))
    additive = [c for c in config.candidates if c in ADDITIVE_CANDIDATES]
    if chosen not in ADDITIVE_CANDIDATES and additive:
        runner_up = best(additive)
        gain = metrics[chosen]["oot_auc"] - metrics[runner_up]["oot_auc"]
        if gain < config.interaction_margin_auc:
            notes.append(f"{sector or 'general'}: {runner_up} chosen over {chosen}: out-of-time AUC gain {gain:+.4f} "
                         f"< margin {config.interaction_margin_auc} for a model with interactions "
                         f"(可加模型优先：交互模型须显著更优)")
            return runner_up
    return chosen

