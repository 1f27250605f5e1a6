"""Ingest: validate subject and record files into the versioned Parquet store, quarantining bad rows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from serving.workflows import WorkflowError


def ingest_files(*, store: Path, subjects: Path | None, records: list[Path], ingested_at: datetime,
                 policy_file: Path | None = None, source: str | None = None, layouts: Path | None = None,
                 gates: bool = True, gates_file: Path | None = None) -> Any:
    """Validate every row against the catalogue policy (the packaged one unless ``policy_file``);
    store the valid ones and quarantine the rest with a rule each. With ``gates`` the batch then
    passes the data-quality gates (``gates_file``, default the packaged features/quality.toml): a
    batch that trips a holding rule is kept aside, not published (summary status "held"). Returns
    the ingest summary (`features.ingest.IngestSummary`)."""
    from features.catalogue import PolicyError, load_policy
    from features.ingest import IngestError, ingest
    from features.quality import QualityConfigError, load_quality_config
    from features.store import StoreError

    if subjects is None and not records:
        raise WorkflowError("files", "give --subjects FILE and/or --records FILE")
    try:
        policy = load_policy(policy_file)
    except PolicyError as exc:
        raise WorkflowError("policy", str(exc)) from exc
    try:
        rules = load_quality_config(gates_file) if gates else None
    except QualityConfigError as exc:
        raise WorkflowError("gates", str(exc)) from exc
    try:
        return ingest(store=store, subjects=subjects, records=records, ingested_at=ingested_at, policy=policy,
                      source=source, layouts_dir=layouts, gates=rules)
    except (IngestError, StoreError) as exc:  # StoreError: the batch was not published, the store is as it was
        raise WorkflowError("files", str(exc)) from exc
