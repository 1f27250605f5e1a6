"""Records → point-in-time profiles: ingestion with quarantine, the catalogue policy, profiles, labels.

Public API (imports nothing else of ours):

- ``features.ingest.ingest(store=, subjects=, records=, ingested_at=, policy=, source=, layouts_dir=) -> IngestSummary``
  (records: the contract's layout or a national 双公示 layout, ``features.national``; CSV/Excel/Parquet/JSONL
  read in chunks by ``features.reading``)
- ``features.schema``: the record contract's field limits, shared with the service (``pydantic_fields``)
- ``features.catalogue.load_policy(path) -> Policy``; ``Policy.publicity_window``, ``Policy.repair_eligible_on``
- ``features.profiles.build_profiles(store_or_records, subjects=None, *, as_of, policy, engine, with_hash=False)``;
  ``profile_hashes(profiles)`` (what a stored grade names its profile by)
- ``features.store``: ``stage_batch`` → ``publish`` | ``discard`` (``add_batch`` does both), ``snapshot``,
  ``staged_snapshot`` (what a gate reads before publishing), ``read_latest``, ``compact``;
  ``features.profiles.spark_profiles(store, as_of=, spark=)``
- ``features.labels.build_labels(store_or_frames, as_of, horizon_months=12, definition=CONTRACT_ADVERSE)``
- ``features.specs.FEATURE_SPECS`` (labels, monotone directions and reasons, actionability)
- ``features.evidence.records_behind(...)``, ``features.actions.candidate_actions(...)``, ``apply_actions(...)``
"""
