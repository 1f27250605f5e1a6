"""The grading job: every subject, as of a date, graded by the champion of its sector (or general).

Output is one row per subject (Parquet, for the service to load): probability, score, grade after
overrides, the rule that fired, top-5 reasons, the what-if (smallest set of actions that improves
the grade, see `training.whatif`; needs the records and subjects), the profile hash and the model
version used.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.profiles import profile_hashes
from training.pipeline import model_name
from training.registry import CHAMPION, ModelRegistry
from training.whatif import WhatIfInputs, what_if_entries

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame

# The first columns are the fields of ``serving.schemas.GradeIn`` (reasons as a JSON list of
# ``ReasonOut``); the rest say which model and rule produced the grade.
GRADE_COLUMNS = (
    "uscc",
    "as_of",
    "score",
    "grade",
    "probability",
    "model_version",
    "profile_hash",
    "reasons",
    "what_if",
    "model_grade",
    "override",
    "industry",
    "model_name",
    "model_registry_version",
)


def grade_with(
    model: Any,
    profiles: pd.DataFrame,
    *,
    name: str,
    version: int,
    top_reasons: int = 5,
    evidence: Sequence[Mapping[str, Sequence[Any]]] | None = None,
    what_if: WhatIfInputs | None = None,
    hash_profiles: bool = True,
) -> pd.DataFrame:
    """Grade ``profiles`` with one loaded `GradingModel`; reasons are JSON lists of ``ReasonOut``,
    ``what_if`` JSON lists of ``WhatIfOut`` (``[]`` when ``what_if`` is None or nothing helps).

    ``model_version`` is ``NAME/VERSION`` (e.g. ``tiers-sector-H/3``), enough to reload the model.
    ``profile_hash`` is the profile's own column if it has one, else computed (a full profile
    frame is then needed); ``hash_profiles=False`` leaves it empty, for scores no grade is stored
    from (monitoring), which then need only the model's features.
    """
    graded = model.grade(profiles)
    reasons = model.reasons(profiles, top=top_reasons, evidence=evidence)
    if "profile_hash" in profiles.columns:
        hashes = profiles["profile_hash"].astype(str).to_numpy()
    elif hash_profiles:  # hashed here, for the graded rows only, rather than for every profile ever built
        hashes = profile_hashes(profiles)
    else:
        hashes = np.full(len(profiles), None, dtype=object)
    proposals: dict[str, list[dict]] = {}
    if what_if is not None:
        as_of = pd.Timestamp(profiles["as_of"].iloc[0]).date()
        proposals = what_if_entries(model, pd.DataFrame({"uscc": profiles["uscc"].astype(str).to_numpy(),
                                                         "grade": graded["grade"].to_numpy()}), what_if, as_of=as_of)
    out = pd.DataFrame(
        {
            "uscc": profiles["uscc"].to_numpy(),
            "as_of": pd.to_datetime(profiles["as_of"]).dt.date.astype(str).to_numpy(),
            "score": graded["score"].to_numpy(),
            "grade": graded["grade"].to_numpy(),
            "probability": graded["p_adverse_12m"].to_numpy(),
            "model_version": f"{name}/{int(version)}",
            "profile_hash": hashes,
            "reasons": [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in reasons],
            "what_if": [json.dumps(proposals.get(str(u), []), ensure_ascii=False, sort_keys=True)
                        for u in profiles["uscc"]],
            "model_grade": graded["model_grade"].to_numpy(),
            "override": graded["override"].to_numpy(),
            "industry": profiles["industry"].astype(str).to_numpy() if "industry" in profiles else "",
            "model_name": name,
            "model_registry_version": int(version),
        }
    )
    return out.loc[:, list(GRADE_COLUMNS)]


def evidence_index(
    records: pd.DataFrame, as_of: date, features: Iterable[str], *, policy: Any = None, max_records: int = 20
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """uscc → feature → the records behind that feature's value on ``as_of`` (newest first).

    The bulk form of ``features.evidence.records_behind``: one status pass over all records and
    one query per feature, instead of one query per subject and feature.
    """
    import duckdb

    from features.catalogue import default_policy
    from features.evidence import EVIDENCE_COLUMNS, evidence_condition, record_status

    policy = policy or default_policy()
    status = record_status(records, as_of, policy)
    out: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    con = duckdb.connect()
    try:
        con.register("status", status)
        for feature in sorted(set(features)):
            condition = evidence_condition(feature, as_of, policy)
            if condition is None:
                continue  # not computed from records (age, size, sector …)
            found = con.execute(
                f"SELECT uscc, {', '.join(EVIDENCE_COLUMNS)} FROM status WHERE {condition} "
                "ORDER BY uscc, decision_date DESC, record_id"
            ).df()
            found["decision_date"] = pd.to_datetime(found["decision_date"]).dt.date.astype(str)
            for uscc, part in found.groupby("uscc", sort=False):
                out[str(uscc)][feature] = part.head(max_records)[EVIDENCE_COLUMNS].to_dict(orient="records")
    finally:
        con.close()
    return dict(out)


def grade_all(
    registry: ModelRegistry,
    profiles: pd.DataFrame,
    *,
    as_of: date,
    sectors: Sequence[str] | None = None,
    alias: str = CHAMPION,
    evidence: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    what_if: WhatIfInputs | None = None,
) -> pd.DataFrame:
    """Grade every subject of ``profiles`` at ``as_of``: a sector's champion where one is
    registered (``tiers-sector-X``), the general champion for everyone else. ``evidence``
    (see `evidence_index`) lets each reason cite the records behind it; ``what_if`` (records and
    subjects the profiles came from) adds each subject's what-if, graded by its own model."""

    def cited(part: pd.DataFrame) -> list[Mapping[str, Sequence[Any]]]:
        return [evidence.get(str(u), {}) for u in part["uscc"]]

    dates = pd.to_datetime(profiles["as_of"]).dt.date
    at = profiles.loc[(dates == as_of).to_numpy()].reset_index(drop=True)
    if at.empty:
        raise ValueError(f"no profiles as of {as_of}; build them first (tiers profile --as-of {as_of})")
    industries = at["industry"].astype(str) if "industry" in at else pd.Series("", index=at.index)
    routes = champions(registry, sorted(set(industries)) if sectors is None else list(sectors), alias=alias)
    return grade_routed(routes, at, evidence=cited if evidence is not None else None, what_if=what_if)


Route = tuple[Any, str, int]  # a loaded model, its registry name and version


def champions(registry: ModelRegistry, sectors: Iterable[str], *, alias: str = CHAMPION) -> dict[str | None, Route]:
    """The models that grade: each of ``sectors`` whose sector model has a version with ``alias``
    (``tiers-sector-X``), and the general one under the key None. Raises LookupError without a
    general model."""
    known = set(registry.model_names())
    general = model_name(None)
    if general not in known:
        raise LookupError(f"no registered model {general!r}; run `tiers train` first")
    version = registry.alias_version(general, alias)
    if version is None:
        raise LookupError(f"{general} has no version with alias {alias!r}")
    routes: dict[str | None, Route] = {None: (registry.load_model(general, version), general, version)}
    for sector in sectors:
        name = model_name(sector)
        found = registry.alias_version(name, alias) if name in known else None
        if found is not None:
            routes[sector] = (registry.load_model(name, found), name, found)
    return routes


def grade_routed(
    routes: Mapping[str | None, Route],
    profiles: pd.DataFrame,
    *,
    evidence: Any = None,
    what_if: WhatIfInputs | None = None,
) -> pd.DataFrame:
    """Grade each profile by its sector's model in ``routes`` (see `champions`), everyone else by
    the general one (key None); sorted by uscc. ``evidence``: part → per-row evidence, or None."""
    industries = profiles["industry"].astype(str) if "industry" in profiles else pd.Series("", index=profiles.index)
    parts: list[pd.DataFrame] = []
    remaining = np.ones(len(profiles), dtype=bool)
    for sector in sorted(s for s in routes if s is not None):
        mask = (industries == sector).to_numpy() & remaining
        if mask.any():
            model, name, version = routes[sector]
            part = profiles.loc[mask]
            parts.append(grade_with(model, part, name=name, version=version,
                                    evidence=evidence(part) if evidence else None, what_if=what_if))
            remaining &= ~mask
    if remaining.any():
        model, name, version = routes[None]
        part = profiles.loc[remaining]
        parts.append(grade_with(model, part, name=name, version=version,
                                evidence=evidence(part) if evidence else None, what_if=what_if))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in GRADE_COLUMNS})
    return pd.concat(parts, ignore_index=True).sort_values("uscc", kind="stable").reset_index(drop=True)


# Spark types of GRADE_COLUMNS (what grade_with returns), for grading on the executors.
_SPARK_GRADE_SCHEMA = (
    "uscc string, as_of string, score double, grade string, probability double, model_version string, "
    "profile_hash string, reasons string, what_if string, model_grade string, override string, industry string, "
    "model_name string, model_registry_version long"
)


def grade_spark(profiles: SparkDataFrame, routes: Mapping[str | None, Route], *, records: SparkDataFrame | None = None,
                policy: Any = None, top_reasons: int = 5) -> SparkDataFrame:
    """Grade a Spark DataFrame of profiles (``features.profiles.spark_profiles``, one as-of date) on
    the executors: ``mapInPandas`` over its partitions, the models of ``routes`` (see `champions`)
    broadcast once.

    Each partition's rows are normalised to the frame ``build_profiles`` gives, then graded by
    `grade_routed`, so every row equals what `grade_all` gives on DuckDB's profiles, hash included.
    With ``records`` (``features.profiles.spark_records``), each subject's records travel with its
    profile (one JSON list per subject) and each reason cites the records behind it, as
    `evidence_index` does for `tiers grade` (a repair or revocation is resolved among its subject's
    records). No what-if. The partitions' order is Spark's: sort by uscc when collecting.
    """
    import json as _json

    from features.specs import model_features

    spark = profiles.sparkSession
    models = spark.sparkContext.broadcast(dict(routes))
    columns: list[str] = []
    if records is not None:
        from pyspark.sql import functions as F

        from features.schema import RECORD_COLUMNS

        columns = [c for c in (*RECORD_COLUMNS, "version") if c in records.columns]
        packed = records.groupBy("uscc").agg(F.to_json(F.collect_list(F.struct(*columns))).alias("_records"))
        profiles = profiles.join(packed, on="uscc", how="left")
    features = tuple(model_features())

    def grade_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from features.profiles import normalise_profiles

        for batch in batches:
            if not len(batch):
                continue
            cited = None
            if columns:
                rows = [r for text in batch.pop("_records").dropna() for r in _json.loads(text)]
                found = pd.DataFrame.from_records(rows, columns=columns)
                as_of = pd.Timestamp(batch["as_of"].iloc[0]).date()
                index = evidence_index(found, as_of, features, policy=policy) if len(found) else {}

                def cited(part: pd.DataFrame, index: dict = index) -> list:
                    return [index.get(str(u), {}) for u in part["uscc"]]

            graded = grade_routed(models.value, normalise_profiles(batch), evidence=cited)
            yield graded.astype({"model_registry_version": "int64"})

    return profiles.mapInPandas(grade_partition, schema=_SPARK_GRADE_SCHEMA)


def grade_all_spark(registry: ModelRegistry, profiles: SparkDataFrame, *, records: SparkDataFrame | None = None,
                    policy: Any = None, sectors: Sequence[str] | None = None, alias: str = CHAMPION) -> SparkDataFrame:
    """`grade_all` on Spark: the champions of the sectors present (or ``sectors``) loaded once on
    the driver, then `grade_spark` (with ``records``, reasons cite them; no what-if)."""
    if sectors is None:
        sectors = sorted(str(r[0]) for r in profiles.select("industry").distinct().collect() if r[0] is not None)
    return grade_spark(profiles, champions(registry, sectors, alias=alias), records=records, policy=policy)


def write_grades(grades: pd.DataFrame, path: str | Path, *, meta: Mapping[str, str] | None = None) -> Path:
    """Write the grade table as Parquet (creating parent directories)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    grades.to_parquet(out, index=False)
    if meta:
        out.with_suffix(".json").write_text(json.dumps(dict(meta), ensure_ascii=False, indent=2, sort_keys=True))
    return out
