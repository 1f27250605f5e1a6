"""Training: past as-of dates → candidate models → out-of-time choice → calibration → cut-offs.

`train_model` is pure: it takes a labelled dataset (one row per subject and as-of date, see
`assemble_dataset`) and returns a `TrainingResult`; registering it is `register_result`. Its
stages: `_rows` (the sector's rows, split by date and for calibration), `_choose` (fit the
candidates, pick out of time, calibrate) or `_fall_back` (recalibrate the general model),
`_graded` (cut-offs), `_validated` (→ `TrainedModel`), then the report
(`training.report.build_report`) → `TrainingResult`. Configuration and result types live in
`training.config` and `training.result`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.grading import Grader
from models.meta import FeatureMeta
from models.ontop import OnTopModel
from training import evaluation as ev
from training.bundle import GradingModel, calibrate_prefit, model_matrix, recalibrated
from training.candidates import CANDIDATES, GLASS_BOX_CANDIDATES, ON_TOP_CANDIDATES
from training.config import TrainingConfig
from training.result import TrainedModel, TrainingResult
from training.sector_policy import TrainingPolicy

__all__ = ["GENERAL_NAME", "TrainedModel", "TrainingConfig", "TrainingResult", "assemble_dataset", "data_hash",
           "feature_metas_from_specs", "metrics_of", "model_name", "register_result", "train_model"]

GENERAL_NAME = "tiers-general"
ID_COLUMNS = ("uscc", "as_of")
LABEL = "label"
GROUP_COLUMNS = ("industry", "district_code", "size_band", "age_band", "thin_file")

Progress = Callable[[str, float], None]  # (stage description, fraction done in [0, 1])


def model_name(sector: str | None) -> str:
    """Registry name: ``tiers-general`` or ``tiers-sector-H``."""
    return GENERAL_NAME if sector is None else f"tiers-sector-{sector}"


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


@dataclass(frozen=True)
class _Rows:
    """One model's data: its features, all its rows, and the train / validation / fit /
    calibration parts (train = fit + calibration, split by subject)."""

    metas: list[FeatureMeta]
    data: pd.DataFrame
    as_of: pd.Series
    train: pd.DataFrame
    valid: pd.DataFrame
    fit: pd.DataFrame
    cal: pd.DataFrame
    where: str

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.metas]


@dataclass(frozen=True)
class _Choice:
    """The calibrated estimator chosen for the model, with the columns it reads."""

    kind: str
    candidate: str
    estimator: Any
    names: list[str]
    metas: list[FeatureMeta]


def _rows(dataset: pd.DataFrame, features: Sequence[FeatureMeta], config: TrainingConfig, policy: TrainingPolicy,
          sector: str | None) -> _Rows:
    excluded = set(policy.exclude_features)
    if sector is not None:
        excluded.add("industry")  # constant within a sector
    metas = [m for m in features if m.name not in excluded]
    unknown_excl = set(policy.exclude_features) - {m.name for m in features}
    if unknown_excl:
        raise ValueError(f"exclude_features {sorted(unknown_excl)} are not features of the profile")
    missing = [m.name for m in metas if m.name not in dataset.columns]
    if missing:
        raise KeyError(f"dataset lacks feature columns {missing}")
    data = dataset if sector is None else dataset.loc[dataset["industry"] == sector]
    # A canonical row order: model fits and bootstraps depend on it, the caller's order must not.
    data = data.sort_values(["as_of", "uscc"], kind="stable").reset_index(drop=True)
    as_of = pd.to_datetime(data["as_of"]).dt.date
    train = data.loc[as_of.isin(config.train_as_of).to_numpy()]
    valid = data.loc[(as_of == config.validate_as_of).to_numpy()]
    where = f"sector {sector}" if sector else "all subjects"
    if train.empty:
        raise ValueError(f"no labelled profiles of {where} at train as-of dates {list(config.train_as_of)}")
    if valid.empty or valid[LABEL].nunique() < 2:
        raise ValueError(
            f"validation as-of {config.validate_as_of} has {len(valid)} labelled profiles of {where} "
            "with both outcomes needed"
        )
    cal_mask = _calibration_mask(train["uscc"], config.calibration_share, config.seed)
    return _Rows(metas, data, as_of, train, valid, train.loc[~cal_mask], train.loc[cal_mask], where)


def _fall_back(rows: _Rows, general: GradingModel | None, config: TrainingConfig, sector: str, positives: int,
               min_pos: int, notes: list[str], say: Progress) -> _Choice:
    """The general model recalibrated on the sector's rows (too few outcomes for its own model)."""
    if general is None:
        raise ValueError(
            f"sector {sector} has {positives} adverse outcomes in training (< {min_pos}) and no general model "
            "was given to fall back on"
        )
    notes.append(
        f"sector {sector}: {positives} adverse outcomes in training, below the minimum {min_pos}; "
        "the general model is used, recalibrated on the sector's own data "
        f"(行业训练样本不良结果 {positives} 个，少于 {min_pos} 个：沿用通用模型，以本行业数据重新校准)"
    )
    say("recalibrating the general model", 0.5)
    names, metas = list(general.features), list(general.metas)
    estimator = recalibrated(general.estimator, model_matrix(rows.train, names, metas), rows.train[LABEL].to_numpy(),
                             method=config.calibration_method)
    return _Choice("general_recalibrated", general.candidate, estimator, names, metas)


def _choose(rows: _Rows, config: TrainingConfig, policy: TrainingPolicy, sector: str | None,
            general: GradingModel | None, metrics: dict[str, dict[str, float]], notes: list[str],
            say: Progress) -> _Choice:
    """Fit every candidate on the fit rows, pick out of time (`_select`), calibrate on the
    calibration rows."""
    if rows.fit[LABEL].nunique() < 2 or rows.cal[LABEL].nunique() < 2:
        raise ValueError(f"training rows of {rows.where} need both outcomes in the fit and calibration parts")
    names, metas = rows.names, rows.metas
    monotone = {m.name: m.monotone for m in metas}
    y_fit, y_valid = rows.fit[LABEL].to_numpy(), rows.valid[LABEL].to_numpy()
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
        fitted[cand] = estimator.fit(model_matrix(rows.fit, cols, cmetas), y_fit)
        p_valid = fitted[cand].predict_proba(model_matrix(rows.valid, cols, cmetas))[:, 1]
        metrics[cand] = {"oot_auc": ev.auc(y_valid, p_valid), "oot_ks": ev.ks(y_valid, p_valid)}
    chosen = _select(config, metrics, notes, sector)
    names, metas = columns[chosen]
    if isinstance(fitted[chosen], OnTopModel):
        notes.append(f"sector {sector}: {chosen} is boosted on the sector's rows from the general model's "
                     "log-odds, so it adds what is specific to the sector (在通用模型基础上以本行业数据训练专用模型)")
    say(f"calibrating {chosen}", 0.7)
    estimator = calibrate_prefit(fitted[chosen], model_matrix(rows.cal, names, metas), rows.cal[LABEL].to_numpy(),
                                 method=config.calibration_method)
    return _Choice("general" if sector is None else "sector", chosen, estimator, names, metas)


def _graded(choice: _Choice, rows: _Rows, config: TrainingConfig, policy: TrainingPolicy,
            sector: str | None) -> GradingModel:
    """The chosen estimator with cut-offs from the latest training population (never from the
    validation date) and the policy's direct-grading rules."""
    latest = rows.train.loc[(pd.to_datetime(rows.train["as_of"]).dt.date == max(config.train_as_of)).to_numpy()]
    p_latest = choice.estimator.predict_proba(model_matrix(latest, choice.names, choice.metas))[:, 1]
    grader = Grader(policy="shares", shares=dict(policy.target_shares), overrides=policy.rules()).fit(p_latest)
    return GradingModel(estimator=choice.estimator, grader=grader, features=tuple(choice.names),
                        metas=tuple(choice.metas), kind=choice.kind, sector=sector, candidate=choice.candidate)


def _validated(model: GradingModel, rows: _Rows, features: Sequence[FeatureMeta], config: TrainingConfig,
               policy: TrainingPolicy, sector: str | None, metrics: dict[str, dict[str, float]],
               notes: list[str]) -> TrainedModel:
    """Grade every training and validation row; the validation rows are the out-of-time check."""
    dates = (*config.train_as_of, config.validate_as_of)
    in_run = rows.as_of.isin(dates).to_numpy()
    scored = rows.data.loc[in_run].copy()
    graded = model.grade(scored)
    for col in ("p_adverse_12m", "score", "grade"):
        scored[col] = graded[col].to_numpy()
    validation = scored.loc[(pd.to_datetime(scored["as_of"]).dt.date == config.validate_as_of).to_numpy()].copy()
    return TrainedModel(
        name=model_name(sector),
        model=model,
        config=config,
        policy=policy,
        candidate_metrics=metrics,
        validation=validation.reset_index(drop=True),
        scored=scored.reset_index(drop=True),
        data_hash=data_hash(rows.data.loc[in_run], [m.name for m in features]),
        notes=notes,
    )


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
    """Fit, choose out of time, calibrate, grade, validate and report one model (general, or one
    sector's).

    For a sector with fewer than ``min_sector_positives`` (or the policy's ``min_positives``)
    adverse outcomes in its training rows, the ``general`` model is recalibrated on the sector's
    data instead of fitting a sector model; the result's notes and report say so.
    """
    from training.report import build_report

    config.check()
    policy = policy or TrainingPolicy(sector=sector)
    say = progress or (lambda _stage, _frac: None)
    rows = _rows(dataset, features, config, policy, sector)
    positives = int(rows.train[LABEL].sum())
    min_pos = policy.min_positives or config.min_sector_positives
    notes: list[str] = []
    metrics: dict[str, dict[str, float]] = {}
    if sector is not None and positives < min_pos:
        choice = _fall_back(rows, general, config, sector, positives, min_pos, notes, say)
    else:
        choice = _choose(rows, config, policy, sector, general, metrics, notes, say)
    say("setting grade cut-offs", 0.8)
    model = _graded(choice, rows, config, policy, sector)
    say("validating out of time", 0.9)
    trained = _validated(model, rows, features, config, policy, sector, metrics, notes)
    say("writing the validation report", 0.95)
    champion_graded = champion.grade(trained.validation) if champion is not None else None
    report = build_report(trained, metas=choice.metas, champion=champion_graded, n_boot=config.n_boot)
    say("done", 1.0)
    return TrainingResult.of(trained, report)


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


def _select(config: TrainingConfig, metrics: dict[str, dict[str, float]], notes: list[str], sector: str | None) -> str:
    """Highest out-of-time AUC (ties to the earlier, simpler candidate), except that a candidate
    whose reasons need TreeSHAP must beat the best glass-box one by ``config.interaction_margin_auc``."""
    fitted = [c for c in config.candidates if c in metrics]

    def best(cands: list[str]) -> str:
        return max(cands, key=lambda c: (round(metrics[c]["oot_auc"], 6), -config.candidates.index(c)))

    chosen = best(fitted)
    glass = [c for c in fitted if c in GLASS_BOX_CANDIDATES]
    if chosen not in GLASS_BOX_CANDIDATES and glass:
        runner_up = best(glass)
        gain = metrics[chosen]["oot_auc"] - metrics[runner_up]["oot_auc"]
        if gain < config.interaction_margin_auc:
            notes.append(f"{sector or 'general'}: {runner_up} chosen over {chosen}: out-of-time AUC gain {gain:+.4f} "
                         f"< margin {config.interaction_margin_auc} for a model explained by TreeSHAP "
                         f"(可查表解释的模型优先：须依赖 TreeSHAP 解释的模型须显著更优)")
            return runner_up
    return chosen
