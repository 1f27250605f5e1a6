"""Point-in-time subject profiles: one SQL definition (``features/sql/profiles.sql``), two engines.

``build_profiles`` promises: a record counts only if decided on or before ``as_of``, still within its
publicity/counting period on that date under the policy's dated rules, not revoked and not repaired
by a record dated on or before ``as_of`` (unless the policy keeps repaired records), and not
exempted; list membership is active when entry ≤ as_of < exit. Records after ``as_of`` change
nothing. A stored grade names its profile by ``profile_hash`` (sha256 of the row's key and feature
values, scheme :data:`PROFILE_HASH_SCHEME`; see :func:`add_profile_hash`): computed when a grade is
made (:func:`profile_hashes`), or in the build with ``with_hash=True``.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Literal

import duckdb
import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from features.catalogue import Policy, default_policy
from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS
from features.store import Snapshot, create_current_views, create_version_views, has_table, snapshot

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

Engine = Literal["duckdb", "spark"]
KEY_COLUMNS = ("uscc", "as_of")
# DuckDB has no ADD_MONTHS; this macro clips to month end exactly like Spark's built-in.
_DUCKDB_MACROS = "CREATE OR REPLACE MACRO add_months(d, n) AS CAST(d + to_months(CAST(n AS INTEGER)) AS DATE)"


def _sql_file(name: str) -> str:
    return resources.files("features.sql").joinpath(name).read_text(encoding="utf-8")


# The negative classes counted per window, by ``counted_class`` (current_records.sql's
# negative_class_code): each has a count and a decayed weight over 12 months and over the 36 it counts
# for (profiles.sql writes them from here; features.evidence cites their records by the same table).
WINDOWED_CLASSES: dict[str, int] = {
    "penalty": 1, "enforcement": 2, "commitment_broken": 3, "inspection_problem": 4, "complaint": 5,
}


def _windowed_class_aggregates() -> str:
    windows = {"12m": "in_12m", "36m": "counts_36m"}  # 36 months: the window the class counts for
    lines = []
    for name, code in WINDOWED_CLASSES.items():
        lines += [f"COUNT_IF(counted_class = {code} AND {cond}) AS n_{name}_{w}," for w, cond in windows.items()]
        lines += [f"SUM(CASE WHEN counted_class = {code} AND {cond} THEN decayed_weight_micro END) AS w_{name}_{w},"
                  for w, cond in windows.items()]
    return "\n        ".join(lines)


def _windowed_class_features(name: str) -> str:
    """The four features of a class from its aggregates: counts as integers, weights back from micro-units."""
    return "\n    ".join([f"CAST(COALESCE(a.n_{name}_{w}, 0) AS BIGINT) AS n_{name}_{w}," for w in ("12m", "36m")]
                         + [f"CAST(COALESCE(a.w_{name}_{w}, 0) AS DOUBLE) / 1e6 AS w_{name}_{w},"
                            for w in ("12m", "36m")])


def profile_sql_template() -> str:
    """The profile SQL definition (DuckDB dialect) with ``$as_of``-style parameters."""
    sql = (_sql_file("profiles.sql").replace("$counted_records", _sql_file("counted_records.sql"))
           .replace("$windowed_class_aggregates", _windowed_class_aggregates()))
    for name in WINDOWED_CLASSES:  # each in its place among the features (the output's column order)
        sql = sql.replace(f"$windowed_features_{name}", _windowed_class_features(name))
    return sql


def _sql_params(as_of: date, policy: Policy) -> dict[str, str]:
    return {
        "as_of": as_of.isoformat(),
        "since_12m": (as_of - relativedelta(months=12)).isoformat(),
        "since_36m": (as_of - relativedelta(months=36)).isoformat(),
        # a DOUBLE literal on both engines (Spark would read 365.0 as DECIMAL)
        "half_life_days": f"CAST({float(policy.decay_half_life_days)!r} AS DOUBLE)",
        "thin_file_min_records": str(int(policy.thin_file_min_records)),
        "repaired_counts": _bool(policy.repaired_counts),
        "minor_penalty_counts": _bool(policy.minor_penalty_counts),
        "self_declared_requires_verification": _bool(policy.self_declared_requires_verification),
    }


def current_state_sql(table: str, dialect: str = "duckdb") -> str:
    """The as-of-independent current state of ``records`` or ``subjects`` (latest versions, repairs
    and revocations resolved) over ``record_versions`` / ``subject_versions``, in ``dialect``."""
    sql = _sql_file(f"current_{table}.sql")
    if dialect == "duckdb":
        return sql
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0]


def render_counted_sql(as_of: date, policy: Policy) -> str:
    """The per-record status SQL (DuckDB dialect): which records count on ``as_of`` and why not."""
    return Template(_sql_file("counted_records.sql")).substitute(_sql_params(as_of, policy))


def render_profile_sql(as_of: date, policy: Policy, dialect: str = "duckdb") -> str:
    """The profile SQL for ``as_of`` under ``policy``, in DuckDB or (via SQLGlot) Spark dialect."""
    sql = Template(profile_sql_template()).substitute(_sql_params(as_of, policy))
    if dialect == "duckdb":
        return sql
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)[0]


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def policy_tables(policy: Policy) -> dict[str, pd.DataFrame]:
    """The three small policy tables the profile SQL joins (kinds, publicity rules, exemptions)."""
    return {
        "policy_kinds": policy.kind_table(),
        "policy_publicity": policy.publicity_table(),
        "policy_exemptions": pd.DataFrame({"reason": list(policy.exemption_reasons)}, dtype=object),
    }


def _as_dates(s: pd.Series) -> pd.Series:
    # datetime64 keeps a type even when every value is missing (an all-None object column has none)
    return pd.to_datetime(s, errors="raise").astype("datetime64[us]")


def _as_text(s: pd.Series) -> pd.Series:
    if s.isna().all():
        return pd.Series(pd.NA, index=s.index, dtype="string")
    return s.astype(object).where(s.notna(), None)


def conform_records(records: pd.DataFrame) -> pd.DataFrame:
    """Records with every contract column typed as the store types them (version 1 if absent)."""
    out = pd.DataFrame(index=records.index)
    for col in RECORD_COLUMNS:
        s = records[col] if col in records.columns else pd.Series(None, index=records.index, dtype=object)
        if col in ("decision_date", "end_date", "publicity_end", "verified_on"):
            out[col] = _as_dates(s)
        elif col == "amount":
            out[col] = pd.to_numeric(s).astype("float64")
        elif col == "verified":
            text = s.astype(object).where(s.notna(), None).map(
                lambda v: v if v is None or isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "t", "yes"))
            out[col] = text.astype("boolean")
        else:
            out[col] = _as_text(s)
    out["version"] = records["version"].astype("int32") if "version" in records.columns else np.int32(1)
    return out.reset_index(drop=True)


def conform_subjects(subjects: pd.DataFrame) -> pd.DataFrame:
    """Subjects with every contract column typed as the store types them (version 1 if absent)."""
    out = pd.DataFrame(index=subjects.index)
    for col in SUBJECT_COLUMNS:
        s = subjects[col] if col in subjects.columns else pd.Series(None, index=subjects.index, dtype=object)
        if col in ("registered_on", "status_date"):
            out[col] = _as_dates(s)
        elif col == "registered_capital":
            out[col] = pd.to_numeric(s).astype("float64")
        elif col == "employees":
            out[col] = pd.to_numeric(s).astype("Int64")
        else:
            out[col] = _as_text(s)
    out["version"] = subjects["version"].astype("int32") if "version" in subjects.columns else np.int32(1)
    return out.reset_index(drop=True)


def build_profiles(
    records: pd.DataFrame | str | Path | Snapshot,
    subjects: pd.DataFrame | None = None,
    *,
    as_of: date,
    policy: Policy | None = None,
    engine: Engine = "duckdb",
    spark: SparkSession | None = None,
    threads: int = 2,
    with_hash: bool = False,
) -> pd.DataFrame:
    """Profiles of every subject registered and not closed on ``as_of``, one row per subject.

    ``records`` is either a store directory written by :func:`features.ingest.ingest` or one of its
    published states (:func:`features.store.snapshot`; then ``subjects`` must be None), or a frame
    of records (then ``subjects`` is the subjects frame).
    Columns: ``uscc``, ``as_of``, the features of :data:`features.specs.FEATURE_SPECS`, and with
    ``with_hash=True`` ``profile_hash``. The hash is about a quarter of the DuckDB build's CPU and only
    stored grades need it, so grading computes it for the rows it grades (:func:`profile_hashes`);
    both give the same value.
    """
    policy = policy or default_policy()
    if isinstance(as_of, datetime):  # pd.Timestamp included: profiles are as of a calendar date
        as_of = as_of.date()
    if engine not in ("duckdb", "spark"):
        raise ValueError(f"engine {engine!r} is not one of 'duckdb', 'spark'")
    if isinstance(records, (str, Path, Snapshot)):
        if subjects is not None:
            raise ValueError("give either a store directory or records and subjects frames, not both")
        store = snapshot(records if isinstance(records, Snapshot) else Path(records))  # one state for the build
        if not has_table(store, "subjects"):
            raise ValueError(f"store {store.root} holds no subjects: ingest a subjects file first")
        sources: dict[str, object] = {"store": store}
    else:
        if subjects is None:
            raise ValueError("subjects is required when records is a DataFrame")
        sources = {"record_versions": conform_records(records), "subject_versions": conform_subjects(subjects)}
    con = duckdb.connect()  # one connection per call: no state shared between calls
    try:
        if engine == "duckdb":
            # the hash is computed in the same query (same canonical text as add_profile_hash)
            return _run_duckdb(sources, as_of, policy, threads, con, with_hash)
        profiles = normalise_profiles(_spark_profiles(sources, as_of, policy, spark).toPandas())
        return add_profile_hash(profiles, con=con) if with_hash else profiles
    finally:
        con.close()


def _run_duckdb(
    sources: dict[str, object], as_of: date, policy: Policy, threads: int, con: duckdb.DuckDBPyConnection,
    with_hash: bool = True,
) -> pd.DataFrame:
    con.execute(f"SET threads = {int(threads)}")
    con.execute(_DUCKDB_MACROS)
    if "store" in sources:
        store = sources["store"]
        # the materialised current state (features.store): no version or reference work left. Rows
        # of retired subject keys may stay in it (exact=False): they aggregate into groups no
        # subject joins (profiles.sql), which is cheaper than dropping them row by row
        if not create_current_views(con, store, exact=False):
            create_version_views(con, store)
            if not has_table(store, "records"):
                con.register("record_versions", conform_records(pd.DataFrame(columns=list(RECORD_COLUMNS))))
    else:
        for name in ("record_versions", "subject_versions"):
            con.register(name, sources[name])
    for table in ("records", "subjects"):
        con.execute(f"CREATE VIEW IF NOT EXISTS current_{table} AS {current_state_sql(table)}")
    for name, frame in policy_tables(policy).items():
        con.register(name, frame)
    con.execute(f"CREATE TEMP VIEW _profiles AS {render_profile_sql(as_of, policy, 'duckdb')}")
    shape = con.sql("SELECT * FROM _profiles LIMIT 0")
    _order_columns(pd.DataFrame(columns=shape.columns))  # the SQL and FEATURE_SPECS must agree
    # Typed, ordered and hashed in the query, and read through Arrow (DuckDB's own .df() is several
    # times slower on a million rows of ~60 columns): no pandas pass over the frame afterwards.
    # as_of is one date for every row: added as such below, not converted a million times
    typed = ", ".join(f"{_typed_sql(c)} AS \"{c}\"" for c in ("uscc", *_feature_names()))
    hashed = f", {_hash_sql()} AS profile_hash" if with_hash else ""
    table = con.sql(f"SELECT {typed}{hashed} FROM _profiles").to_arrow_table()
    # no deduplication of strings: the codes and hashes are unique, and hashing them cost ≈ 0.5 s
    frame = table.to_pandas(split_blocks=True, self_destruct=True, deduplicate_objects=False)
    frame.insert(1, "as_of", np.full(len(frame), as_of, dtype=object))
    for col in NULLABLE_INT_FEATURES:  # missing on purpose: nullable integers, as _normalise_types makes them
        frame[col] = frame[col].astype("Int64")
    return frame


def spark_profiles(store: str | Path | Snapshot, *, as_of: date, spark: SparkSession,
                   policy: Policy | None = None) -> SparkDataFrame:
    """The profiles of :func:`build_profiles` as a Spark DataFrame, left on the executors (for a
    cluster run that writes them, or grades them with ``training.grade.grade_spark``). Its rows
    become :func:`build_profiles`' frame through :func:`normalise_profiles`; no ``profile_hash``."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    snap = snapshot(store)
    if not has_table(snap, "subjects"):
        raise ValueError(f"store {snap.root} holds no subjects: ingest a subjects file first")
    return _spark_profiles({"store": snap}, as_of, policy or default_policy(), spark)


def spark_records(store: str | Path | Snapshot, *, spark: SparkSession) -> SparkDataFrame:
    """The latest published version of every record, as a Spark DataFrame (``read_latest`` on
    Spark): the records grading cites (``training.grade.grade_spark``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    snap = snapshot(store)
    if not has_table(snap, "records"):
        raise ValueError(f"store {snap.root} holds no records")
    latest = Window.partitionBy("record_id").orderBy(F.col("version").desc())
    return (spark.read.parquet(*snap.files("records")).withColumn("_rn", F.row_number().over(latest))
            .where(F.col("_rn") == 1).drop("_rn"))


def normalise_profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """A profile frame from another engine (Spark's ``toPandas``, a ``mapInPandas`` batch) with the
    column order and dtypes :func:`build_profiles` gives."""
    return _order_columns(_normalise_types(frame))


def _spark_profiles(sources: dict[str, object], as_of: date, policy: Policy, spark: SparkSession | None) -> SparkDataFrame:
    if spark is None:
        raise ValueError("engine='spark' needs a SparkSession (spark=...)")
    if "store" in sources:
        # the published files only (a staged batch is not in the manifest); decision_year
        # partitions are only for pruning, decision_date is in the files
        store = sources["store"]
        spark.read.parquet(*store.files("subjects")).createOrReplaceTempView("subject_versions")
        spark.read.parquet(*store.files("records")).createOrReplaceTempView("record_versions")
    else:
        for name in ("record_versions", "subject_versions"):
            _spark_frame(spark, sources[name]).createOrReplaceTempView(name)
    for table in ("records", "subjects"):
        spark.sql(current_state_sql(table, "spark")).createOrReplaceTempView(f"current_{table}")
    for name, frame in policy_tables(policy).items():
        _spark_frame(spark, frame).createOrReplaceTempView(name)
    return spark.sql(render_profile_sql(as_of, policy, "spark"))


def _spark_frame(spark: SparkSession, frame: pd.DataFrame):
    """A Spark DataFrame from pandas via Arrow, with nullable types Spark understands."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    # Columns entirely None arrive as Arrow null type, which Spark cannot store: make them strings.
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    table = table.cast(pa.schema(fields))
    return spark.createDataFrame(table.to_pandas(types_mapper=None), schema=_spark_schema(table.schema))


def _spark_schema(schema):
    from pyspark.sql import types as T

    mapping = []
    for f in schema:
        import pyarrow as pa

        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            t = T.StringType()
        elif pa.types.is_date(f.type):
            t = T.DateType()
        elif pa.types.is_boolean(f.type):
            t = T.BooleanType()
        elif pa.types.is_integer(f.type):
            t = T.LongType()
        elif pa.types.is_floating(f.type):
            t = T.DoubleType()
        elif pa.types.is_timestamp(f.type):
            t = T.TimestampType()
        else:
            t = T.StringType()
        mapping.append(T.StructField(f.name, t, True))
    return T.StructType(mapping)


# Features that are missing on purpose (no event / no denominator): kept as nulls, see FEATURE_SPECS.
NULLABLE_INT_FEATURES = ("days_since_last_negative", "employees")
TEXT_FEATURES = ("industry", "district_code")


def _normalise_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Engine-independent dtypes: dates as ``date``, counts int64, rates/amounts float64."""
    out = {}
    # one as-of date (or a few) per frame: convert the distinct values, not every row
    out["as_of"] = frame["as_of"].map({v: pd.Timestamp(v).date() for v in frame["as_of"].unique()})
    for col in frame.columns:
        if col in ("as_of",):
            continue
        values = frame[col]
        if col in ("uscc", *TEXT_FEATURES):
            out[col] = values
            continue
        if col in NULLABLE_INT_FEATURES:
            dtype = "Int64"
        elif pd.api.types.is_integer_dtype(values) or col.startswith(("n_", "on_list_")) or col in (
            "max_penalty_severity", "thin_file"
        ):
            dtype = "int64"
        else:
            dtype = "float64"
        # columns already of the right type (most of them) are kept as they are, not copied
        out[col] = values if values.dtype == dtype else pd.to_numeric(values).astype(dtype)
    return pd.DataFrame(out, index=frame.index)


def _order_columns(frame: pd.DataFrame) -> pd.DataFrame:
    from features.specs import FEATURE_SPECS

    names = [s.name for s in FEATURE_SPECS]
    missing = set(names) ^ (set(frame.columns) - set(KEY_COLUMNS))
    if missing:  # the SQL and FEATURE_SPECS must describe the same features
        raise RuntimeError(f"profile SQL and FEATURE_SPECS disagree on {sorted(missing)}")
    return frame[[*KEY_COLUMNS, *names]]


def feature_columns(profiles: pd.DataFrame) -> list[str]:
    """The feature columns of a profile frame (everything but the keys and the hash)."""
    return [c for c in profiles.columns if c not in (*KEY_COLUMNS, "profile_hash")]


def _feature_names() -> list[str]:
    from features.specs import FEATURE_SPECS

    return [spec.name for spec in FEATURE_SPECS]


def _value_kind(col: str) -> Literal["text", "int", "float"]:
    """How :func:`_normalise_types` types a profile column: text, integer or float."""
    if col in (*KEY_COLUMNS, *TEXT_FEATURES):
        return "text"
    if col in NULLABLE_INT_FEATURES or col.startswith(("n_", "on_list_")) or col in ("max_penalty_severity",
                                                                                     "thin_file"):
        return "int"
    return "float"


def _typed_sql(col: str) -> str:
    """DuckDB SQL for a profile column typed as :func:`_normalise_types` types it."""
    kind = _value_kind(col)
    if kind == "int":
        return f'CAST("{col}" AS BIGINT)'
    if kind == "float":
        return f'CAST("{col}" AS DOUBLE)'
    return f'"{col}"'


# The scheme profile hashes are made with now. Scheme 1 (grades made before 2026-11-23) is kept so
# those grades stay verifiable; a hash names its scheme (see profile_hash_scheme), never the caller.
PROFILE_HASH_SCHEME = 2
# Scheme 2 writes floats as integers of millionths. From 2**33 up, x * 1e6 is past 2**53, where a
# double no longer holds every integer, so neighbouring values could share one text: those (and
# ±inf) are written as DuckDB's shortest text instead, which is one-to-one.
_FIXED_POINT_LIMIT = str(2**33)


def profile_hash_scheme(value: str) -> int:
    """The scheme a stored ``profile_hash`` was made with: 2 for ``p2`` + 62 hex digits, 1 for 64
    hex digits (so is the JSON hash grades made from unhashed profiles got before 2026-11-23, which
    cannot be re-verified from a profile)."""
    if isinstance(value, str):
        if _SCHEME_2.fullmatch(value):
            return 2
        if _SCHEME_1.fullmatch(value):
            return 1
    raise ValueError(f"{value!r} is not a profile hash of a known scheme")


_SCHEME_1 = re.compile(r"[0-9a-f]{64}")
_SCHEME_2 = re.compile(r"p2[0-9a-f]{62}")


def _hash_text_sql(expr: str, text_kind: str, scheme: int = PROFILE_HASH_SCHEME) -> str:
    """SQL for one value's canonical text in the profile hash (see add_profile_hash)."""
    if text_kind == "float" and scheme == 1:
        # most weights and rates are 0: skip printf for them (same text, -0.0 excluded)
        return f"coalesce(CASE WHEN {expr} = 0 AND NOT signbit({expr}) THEN '0.000000' ELSE printf('%.6f', {expr}) END, '')"
    if text_kind == "float":
        # millionths as an integer (round(x * 1e6), half away from zero): 6 decimals at a fraction of
        # printf's cost; -0.0 is 0; NaN is missing; ±inf and |x| >= 2**33 keep DuckDB's shortest
        # text, marked by 'x' (never in an integer's text)
        return (f"coalesce(CASE WHEN {expr} = 0 THEN '0' "
                f"WHEN abs({expr}) < {_FIXED_POINT_LIMIT} THEN CAST(CAST(round({expr} * 1e6) AS BIGINT) AS VARCHAR) "
                f"WHEN isnan({expr}) THEN '' ELSE 'x' || CAST({expr} AS VARCHAR) END, '')")
    if text_kind == "int":
        # most counts are 0: a constant is cheaper than a cast (same text)
        return f"coalesce(CASE WHEN {expr} = 0 THEN '0' ELSE CAST({expr} AS VARCHAR) END, '')"
    if scheme == 1 or text_kind == "key":
        # the key (a USCC, an ISO date) is never missing and holds no '|' or backslash
        return f"coalesce(CAST({expr} AS VARCHAR), '')"
    # text: a backslash or '|' is escaped by a backslash and a missing value is written \N, so ''
    # and NULL, or a '|' inside a value and the separator, never give the same text
    return f"coalesce(replace(replace(CAST({expr} AS VARCHAR), '\\', '\\\\'), '|', '\\|'), '\\N')"


def _hash_of_texts_sql(parts: list[str], scheme: int) -> str:
    """SQL for the hash of one row from its values' canonical texts, in ``scheme``."""
    if scheme == 1:
        return f"sha256(concat_ws('|', {', '.join(parts)}))"
    if scheme == 2:
        # the text names its scheme, and so does the value: 'p2' + 62 hex digits of the sha256
        # still fits the 64 characters stored grades keep, and never looks like a scheme-1 hash
        return f"'p2' || left(sha256(concat_ws('|', 'p2', {', '.join(parts)})), 62)"
    raise ValueError(f"profile hash scheme {scheme!r} is not one of 1, 2")


def _hash_sql(scheme: int = PROFILE_HASH_SCHEME) -> str:
    """The profile hash over the raw DuckDB result, each column typed as :func:`_normalise_types`
    will type it, so the text (and the hash) equals :func:`add_profile_hash` on the normalised frame."""
    parts = [_hash_text_sql(_typed_sql(col), "key" if col in KEY_COLUMNS else _value_kind(col), scheme)
             for col in (*KEY_COLUMNS, *_feature_names())]
    return _hash_of_texts_sql(parts, scheme)


def profile_hashes(profiles: pd.DataFrame, scheme: int = PROFILE_HASH_SCHEME) -> np.ndarray:
    """The ``profile_hash`` of each row of a profile frame, over its key and the profile's features
    only (other columns a caller added are left out), equal to what ``build_profiles(...,
    with_hash=True)`` gives for the same profile."""
    cols = [*KEY_COLUMNS, *_feature_names()]
    missing = [c for c in cols if c not in profiles.columns]
    if missing:
        raise ValueError(f"not a profile frame: no column {', '.join(missing)}; build it with build_profiles")
    return add_profile_hash(profiles[cols], scheme=scheme)["profile_hash"].to_numpy()


def add_profile_hash(profiles: pd.DataFrame, con: duckdb.DuckDBPyConnection | None = None,
                     scheme: int = PROFILE_HASH_SCHEME) -> pd.DataFrame:
    """Add ``profile_hash``: sha256 of the row's key and feature values in a canonical text form.

    Values are joined by ``|`` in column order, missing ones as the empty string, so the hash does
    not depend on the engine that computed the profile. Scheme 1 writes floats with 6 decimals
    (``printf('%.6f')``); scheme 2 (the default) writes them as integers of millionths, starts the
    text with ``p2`` and gives ``'p2'`` + the first 62 hex digits. Pass ``scheme=1`` to re-verify
    a hash made before scheme 2.
    """
    cols = ["uscc", "as_of", *feature_columns(profiles)]
    frame = profiles[cols]
    if scheme != 1:  # scheme 1 stays byte-identical to the code that made its hashes
        # a date, whatever its type (a datetime64 column would read '2026-06-30 00:00:00')
        frame = frame.assign(as_of=frame["as_of"].map({d: pd.Timestamp(d).date() for d in frame["as_of"].unique()}))
    if frame["as_of"].dtype == object:
        # dates as text once per distinct date (a handful), not once per row inside the engine
        frame = frame.assign(as_of=frame["as_of"].map({d: str(d) for d in frame["as_of"].unique()}))
    own = con is None
    con = con or duckdb.connect()
    try:
        con.register("_p", frame)
        parts = []
        profile_columns = {*KEY_COLUMNS, *_feature_names()}
        for c in cols:
            if scheme != 1 and c in KEY_COLUMNS:
                parts.append(_hash_text_sql(f'"{c}"', "key", scheme))
                continue
            if scheme != 1 and c in profile_columns:
                # typed by what the column is, as the engine's query types it, not by how the frame
                # happens to hold it (an integer-valued float column read back from CSV is int64)
                parts.append(_hash_text_sql(_typed_sql(c), _value_kind(c), scheme))
                continue
            dtype = profiles[c].dtype
            kind = ("float" if pd.api.types.is_float_dtype(dtype)
                    else "int" if pd.api.types.is_integer_dtype(dtype) else "text")
            parts.append(_hash_text_sql(f'"{c}"', kind, scheme))
        hashes = con.sql(f"SELECT {_hash_of_texts_sql(parts, scheme)} AS h FROM _p").fetchnumpy()["h"]
        con.unregister("_p")
    finally:
        if own:
            con.close()
    out = profiles.copy()
    out["profile_hash"] = np.asarray(hashes, dtype=object)
    return out
