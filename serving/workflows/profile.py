"""Point-in-time subject profiles from the store (DuckDB, or the same SQL on Spark), into a file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from serving.workflows import WorkflowError


def profile_policy(store: Path, as_of: date, *, policy_file: Path | None = None, sector: str | None = None,
                   today: date | None = None) -> Any:
    """The catalogue policy (the packaged one unless ``policy_file``; ``sector``'s overrides) for
    profiles of ``store`` as of ``as_of``, once the inputs are checked: the store holds ingested
    subjects, ``as_of`` is not after ``today``, ``sector`` is a GB/T 4754-2017 section. A
    `WorkflowError` names the input at fault (store, as_of, sector, policy)."""
    from features.catalogue import GBT4754_SECTIONS, PolicyError, load_policy
    from features.store import has_table

    today = today or date.today()
    if not has_table(store, "subjects"):
        raise WorkflowError("store", f"{str(store)!r} holds no ingested subjects (run `tiers ingest` first)")
    if as_of > today:
        raise WorkflowError("as_of", f"{as_of} is in the future (today is {today})")
    if sector is not None and sector not in GBT4754_SECTIONS:
        raise WorkflowError("sector", f"{sector!r} is not a GB/T 4754-2017 section A–T")
    try:
        return load_policy(policy_file).for_sector(sector)
    except PolicyError as exc:
        raise WorkflowError("policy", str(exc)) from exc


def write_profiles(store: Path, as_of: date, out: Path, policy: Any, *, engine: str = "duckdb",
                   with_hash: bool = False) -> dict[str, Any]:
    """Build one profile row per subject as of ``as_of`` on ``engine`` (duckdb, or spark in local
    mode) and write them to ``out`` (.parquet or .csv; replaced whole, never half-written). Returns
    the summary `tiers profile --json` prints."""
    from features.profiles import build_profiles, feature_columns

    spark = None
    if engine == "spark":
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.appName("tiers-profile").config("spark.ui.enabled", "false")
                 .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    profiles = build_profiles(store, as_of=as_of, policy=policy, engine=engine, spark=spark, with_hash=with_hash)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix.lower() == ".parquet":
        profiles.to_parquet(tmp, index=False)
    else:
        profiles.to_csv(tmp, index=False)
    tmp.replace(out)
    return {
        "as_of": as_of.isoformat(), "engine": engine, "policy_version": policy.version,
        "subjects": len(profiles), "features": len(feature_columns(profiles)), "out": str(out),
        "thin_file_share": round(float(profiles["thin_file"].mean()), 4) if len(profiles) else None,
    }
