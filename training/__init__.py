"""Training: general and sector models (通用＋专用) fitted on past as-of dates, chosen and validated
out of time, registered in MLflow and promoted through a gate.

- `training.pipeline`: `train_model(dataset, metas, config=..., policy=..., sector=...)` → `TrainingResult`;
  `register_result(registry, result)`; `assemble_dataset`, `feature_metas_from_specs`.
- `training.config`: `TrainingConfig`; `training.result`: `TrainedModel` and `TrainingResult` (with its report).
- `training.candidates`: the candidate estimators (scorecard, additive and interaction GBM, blend, GA²M).
- `training.data`: `load_dataset(store, dates)`, `default_dates(data_end)` (profiles + labels from `features`).
- `training.bundle`: `GradingModel` (calibrated model + grader + metadata), what MLflow stores.
- `training.report`: `build_report` → `ValidationReport` (HTML + JSON, deterministic hash).
- `training.gate`: `evaluate_gate(...)` → `GateResult` (pure); `training.promotion.promote(...)` (audited).
- `training.registry`: `ModelRegistry` (explicit MlflowClient), `PromotionAudit` (JSON Lines).
- `training.grade`: `grade_all(registry, profiles, as_of=...)`, `evidence_index`, `write_grades`; on Spark
  `grade_all_spark(registry, spark_profiles)` / `grade_spark(profiles, routes)` (mapInPandas).
- `training.sector_policy`: a sector's `TrainingPolicy` from TOML (exclusions, direct grading, target shares).
"""
