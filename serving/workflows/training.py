"""Train all models (the general model, then each sector's on top of it) and grade a store.

The registry is MLflow's (`training.registry.ModelRegistry`); the first version of a model name
becomes champion, later ones challengers until promoted (:mod:`serving.workflows.promotion`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from features.schema import INDUSTRY_SECTIONS
from serving.workflows import WorkflowError

SECTIONS = INDUSTRY_SECTIONS  # GB/T 4754-2017 (features.schema: the one list)

Progress = Callable[[str], None]


def _quiet(_step: str) -> None:
    return None


def open_registry(tracking_uri: str, artifacts: Path | None) -> Any:
    """The registry to write to at ``tracking_uri`` (a SQLite store's directory is created)."""
    # MLflow prints a tqdm bar for every artifact download; it is noise on a CLI.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from training.registry import ModelRegistry

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return ModelRegistry(tracking_uri, artifact_location=artifacts)


def training_policy(path: Path) -> Any:
    """The sector policy file of a training run (`training.sector_policy`); a bad file is a
    `WorkflowError` naming ``policy``."""
    from training.sector_policy import PolicyFileError, load_training_policy

    try:
        return load_training_policy(path)
    except PolicyFileError as exc:
        raise WorkflowError("policy", str(exc)) from exc


def require_store(store: Path) -> Path:
    """``store`` itself if it is a directory (a record store is one), else a `WorkflowError`."""
    if not store.is_dir():
        raise WorkflowError("store", f"{store}: no such directory (rule: a feature store written by `tiers ingest`)")
    return store


def training_config(store: Path, *, train_as_of: Sequence[date], validate_as_of: date | None, horizon: int,
                    seed: int, min_positives: int, candidates: Sequence[str]) -> Any:
    """The `training.config.TrainingConfig` for ``store``: default dates from its latest record
    (3 as-of dates 6 months apart, validated out of time), checked against label leaks."""
    from training.config import TrainingConfig
    from training.data import default_dates, latest_record_date

    require_store(store)
    if horizon < 1:
        raise WorkflowError("horizon", f"{horizon}: must be ≥ 1 month")
    if min_positives < 1:
        raise WorkflowError("min_positives", f"{min_positives}: must be ≥ 1")
    try:
        data_end = latest_record_date(store)
    except ValueError as exc:
        raise WorkflowError("store", str(exc)) from exc
    default_train, default_valid = default_dates(data_end, horizon_months=horizon)
    config = TrainingConfig(
        train_as_of=tuple(sorted(train_as_of)) or default_train,
        validate_as_of=validate_as_of or default_valid,
        horizon_months=horizon,
        seed=seed,
        min_sector_positives=min_positives,
        candidates=tuple(candidates),
    )
    try:
        config.check()
    except ValueError as exc:
        raise WorkflowError("dates", str(exc)) from exc
    if config.validate_as_of > data_end:
        raise WorkflowError("validate_as_of", f"{config.validate_as_of}: after the latest record date {data_end} "
                                              "in the store")
    return config


def train_all(store: Path, config: Any, registry: Any, *, sectors: Sequence[str] = (), all_sectors: bool = False,
              policy: Any = None, challengers: Sequence[str] = (), progress: Progress = _quiet) -> dict[str, Any]:
    """Train the general model, then each sector's (``sectors``, the policy's sector, or every
    sector present with ``all_sectors``), validate each out of time and register it.

    A sector in ``challengers`` is trained a second time (seed + 1) on the same data, so a new
    name gets a champion and a challenger to compare and promote (the demo's).

    A sector that cannot be trained is reported as skipped; the general model failing is a
    `WorkflowError`. Returns the run's summary (dates, registry, one entry per model).
    """
    from features.specs import FEATURE_SPECS
    from training.data import load_dataset
    from training.pipeline import feature_metas_from_specs, model_name
    from training.sector_policy import TrainingPolicy

    wanted = list(dict.fromkeys([*sectors, *challengers]))
    if policy is not None and policy.sector and policy.sector not in wanted:
        wanted.append(policy.sector)
    metas = feature_metas_from_specs(FEATURE_SPECS)
    results: list[dict[str, Any]] = []
    progress("building profiles and labels")
    dates = (*config.train_as_of, config.validate_as_of)
    dataset = load_dataset(store, dates, horizon_months=config.horizon_months,
                           on_date=lambda day: progress(f"profiles and labels as of {day}"))
    if all_sectors:
        wanted = sorted(set(wanted) | set(dataset["industry"].dropna().astype(str)) & set(SECTIONS))
    general = None
    runs = [(None, config), *((s, config) for s in wanted),
            *((s, dataclasses.replace(config, seed=config.seed + 1)) for s in challengers)]
    for sector, run_config in runs:
        progress(f"training {model_name(sector)}" + (" (challenger)" if run_config is not config else ""))
        sector_policy = policy if (policy is not None and policy.sector == sector) else TrainingPolicy(sector=sector)
        try:
            entry, result = train_one(dataset, metas, run_config, registry, sector=sector, policy=sector_policy,
                                      general=general)
        except (ValueError, KeyError) as exc:
            if sector is None:
                raise WorkflowError("store", f"{store}: cannot train the general model: {exc}") from exc
            results.append({"model": model_name(sector), "skipped": str(exc)})
            continue
        if sector is None:
            general = result.model
        results.append(entry)
    summary: dict[str, Any] = {
        "store": str(store),
        "train_as_of": [d.isoformat() for d in config.train_as_of],
        "validate_as_of": config.validate_as_of.isoformat(),
        "horizon_months": config.horizon_months,
        "seed": config.seed,
        "tracking_uri": registry.tracking_uri,
        "models": results,
    }
    if results and "metrics" in results[0]:
        summary["auc"] = round(results[0]["metrics"]["oot_auc"], 4)  # the general model's, out of time
    return summary


def train_one(dataset: Any, metas: Sequence[Any], config: Any, registry: Any, *, sector: str | None,
              policy: Any = None, general: Any = None,
              progress: Callable[[str, float], None] | None = None) -> tuple[dict[str, Any], Any]:
    """Train one model (the general one, or ``sector``'s on top of ``general``) on a labelled
    dataset, validate it out of time against the name's champion and register it (the first
    version of a name becomes champion, later ones challengers). Returns the run's summary entry
    and the `TrainingResult`; raises ValueError / KeyError when the data cannot train it.

    The one training step of `train_all` (a feature store) and `fit_labelled` (an uploaded file).
    """
    from training.pipeline import model_name, register_result, train_model

    name = model_name(sector)
    champ_version = registry.alias_version(name, "champion")
    champion = registry.load_model(name, champ_version) if champ_version is not None else None
    result = train_model(dataset, metas, config=config, policy=policy, sector=sector, general=general,
                         champion=champion, progress=progress)
    mv = register_result(registry, result)
    return {
        "model": name,
        "version": mv.version,
        "aliases": list(mv.aliases),
        "kind": result.model.kind,
        "candidate": result.model.candidate,
        "metrics": {k: round(v, 6) for k, v in result.report.metrics.items()},
        "report_sha256": result.report.sha256,
        "data_sha256": result.data_hash,
        "notes": result.notes,
    }, result


def fit_labelled(dataset: Any, registry: Any, *, sector: str, horizon: int = 12, seed: int = 42,
                 min_positives: int = 300, candidates: Sequence[str] = ("scorecard", "gbm_additive"),
                 n_boot: int = 200, progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Fit ``sector``'s model on a labelled dataset (profiles with a ``label`` column, one row
    per subject and as-of date: an uploaded file, `serving.services.sector_fit`), on top of the
    general champion when there is one, and register it (`train_one`).

    The latest as-of date is the out-of-time validation; the earlier ones whose label window
    ends by it are the training dates. Bad dates are a `WorkflowError` naming ``as_of``.
    """
    import pandas as pd
    from dateutil.relativedelta import relativedelta

    from features.specs import FEATURE_SPECS
    from training.config import TrainingConfig
    from training.pipeline import GENERAL_NAME, feature_metas_from_specs
    from training.sector_policy import TrainingPolicy

    if sector not in SECTIONS:
        raise WorkflowError("sector", f"{sector!r}: not a GB/T 4754-2017 section (rule: one letter A–T)")
    days = sorted({pd.Timestamp(d).date() for d in dataset["as_of"]})
    validate = days[-1] if days else None
    train = tuple(d for d in days[:-1] if d + relativedelta(months=horizon) <= validate)
    if validate is None or not train:
        raise WorkflowError("as_of", f"{[d.isoformat() for d in days]}: needs a validation date and at least one "
                                     f"earlier training date {horizon} months or more before it")
    config = TrainingConfig(train_as_of=train, validate_as_of=validate, horizon_months=horizon, seed=seed,
                            min_sector_positives=min_positives, candidates=tuple(candidates), n_boot=n_boot)
    try:
        config.check()
    except ValueError as exc:
        raise WorkflowError("as_of", str(exc)) from exc
    general_version = registry.alias_version(GENERAL_NAME, "champion")
    general = registry.load_model(GENERAL_NAME, general_version) if general_version is not None else None
    data = dataset.copy()
    data["industry"] = sector
    entry, _ = train_one(data, feature_metas_from_specs(FEATURE_SPECS), config, registry, sector=sector,
                         policy=TrainingPolicy(sector=sector), general=general, progress=progress)
    return {**entry, "train_as_of": [d.isoformat() for d in train], "validate_as_of": validate.isoformat(),
            "on_general": general_version}


def grade_store(store: Path, day: date, registry: Any, *, out: Path | None = None,
                what_if_grades: Sequence[str] = (), progress: Progress = _quiet) -> dict[str, Any]:
    """Grade every subject of ``store`` as of ``day`` with its sector's champion (else the general
    champion), with reasons from its records, and write the grade table (Parquet).

    With ``what_if_grades``, subjects of those grades also get their smallest set of actionable
    changes to a better grade. Returns the summary (count, file, grade shares, model versions).
    """
    from features.specs import model_features
    from features.store import read_latest
    from models.meta import GRADES
    from training.data import load_profiles
    from training.grade import evidence_index, grade_all, write_grades

    require_store(store)
    if any(g not in GRADES for g in what_if_grades):
        raise WorkflowError("what_if_grades", f"{','.join(what_if_grades)!r}: must list grades among A, B, C, D")
    progress(f"profiles as of {day}")
    profiles = load_profiles(store, day)
    progress("records behind the reasons")
    records = read_latest(store, "records")
    evidence = evidence_index(records, day, model_features())
    progress("grading" + (" and what-if" if what_if_grades else ""))
    searched = None
    if what_if_grades:
        from training.whatif import WhatIfInputs

        searched = WhatIfInputs(records, read_latest(store, "subjects"), grades=tuple(what_if_grades))
    try:
        grades = grade_all(registry, profiles, as_of=day, evidence=evidence, what_if=searched)
    except (LookupError, ValueError) as exc:
        raise WorkflowError("as_of", f"{day}: {exc}") from exc
    target = out or Path("var/grades") / f"grades_{day.isoformat()}.parquet"
    write_grades(grades, target)
    mix = grades["grade"].value_counts(normalize=True).reindex(list(GRADES), fill_value=0.0)
    return {"as_of": day.isoformat(), "subjects": len(grades), "out": str(target),
            "grade_shares": {g: round(float(v), 4) for g, v in mix.items()},
            "models": sorted(grades["model_version"].unique().tolist())}
