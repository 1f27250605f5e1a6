"""Benchmark: a 100 k-record batch into a 20 M-record store, incrementally (a delta segment) vs the
full rebuild of the current state; and what the deltas cost the profile build.

    flock /tmp/bench.lock .venv/bin/python benchmarks/store_update.py                 # 1 M subjects, ~20 M records
    flock /tmp/bench.lock .venv/bin/python benchmarks/store_update.py --subjects 100000  # quick run

Data: the synthetic store of benchmarks/profiles.py (cached under /tmp/tiers-bench-profiles/, made
if missing), linked (hard links, no copy) into a scratch store under /tmp/tiers-bench-store-update/,
removed at the end. Steps, all in this run:

1. baseline: the full rebuild of the current state from the history (``features.store.compact``,
   the SQL ingestion ran after every batch before deltas: ``write_current``);
2. the figure: ``add_batch`` (stage: check, derive and write the delta; publish: the manifest
   replace) of a batch of ``--batch`` records: new records of existing subjects, 1 % new subjects,
   2 % new versions of stored records (content changed, some moved to another subject), 1 %
   repairs and revocations of stored penalties; ``--deltas`` such batches in a row;
3. the profile build (``build_profiles``, DuckDB, 2 threads, each in its own process, median of
   ``--repeats``) on the compacted base, after one delta and after all of them, and the check that
   base + deltas and the compacted state give identical profiles.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profiles import KIND_MIX, _codes, _machine, add_store_options, cached_store  # a sibling script

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = Path("/tmp/tiers-bench-store-update")
AS_OF = date(2026, 6, 30)


def link_store(source: Path, target: Path) -> None:
    """A new store sharing ``source``'s batch files (hard links: Parquet files are never modified)."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "batches", target / "batches", copy_function=os.link)


def make_batch(store: Path, where: Path, n: int, seed: int, serial: int) -> dict:
    """A batch directory in the ingestion layout, versions numbered after the published ones."""
    import duckdb
    import pyarrow as pa

    from features.store import create_current_views

    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    create_current_views(con, store)
    n_subjects_new, n_versions, n_refs = n // 100, n * 2 // 100, n // 100
    n_plain = n - n_versions - n_refs
    existing = con.execute(f"SELECT uscc FROM current_subjects USING SAMPLE {n_plain + n_versions} ROWS").fetchnumpy()
    owners = np.asarray(existing["uscc"], dtype=object)
    new_codes = _codes(50_000_000 + serial * 100_000, n_subjects_new, rng)
    # plain new records: of existing subjects (and one each of the new ones)
    owner = np.concatenate([owners[:n_plain - n_subjects_new], new_codes])
    kinds = np.array(list(KIND_MIX))
    p = np.array(list(KIND_MIX.values()))
    kind = rng.choice(kinds[~np.isin(kinds, ["repair", "revocation"])], n_plain,
                      p=(q := p[~np.isin(kinds, ["repair", "revocation"])]) / q.sum())
    decided = np.datetime64("2026-08-01") + rng.integers(0, 90, n_plain).astype("timedelta64[D]")
    amount = np.where(kind == "admin_penalty", np.round(rng.lognormal(8, 1.5, n_plain), 2), np.nan)
    plain = pa.table({
        "record_id": [f"U{serial:03d}-{i:09d}" for i in range(n_plain)], "uscc": owner, "kind": kind.astype(object),
        "subkind": np.where(kind == "arrears", "tax", np.where(kind == "inspection", "no_problem", None)),
        "severity": np.where(kind == "admin_penalty", "general", None),
        "decision_date": decided.astype("datetime64[D]"), "amount": pa.array(amount, from_pandas=True),
        "version": np.ones(n_plain, dtype=np.int32),
    })
    con.register("plain", plain)
    con.register("new_codes", pa.table({"uscc": new_codes}))
    con.register("moved_to", pa.table({"uscc": owners[n_plain - n_subjects_new:n_plain - n_subjects_new + n_versions]}))
    cols = ("record_id, uscc, kind, subkind, severity, decision_date, end_date, publicity_end, amount, department, "
            "document_no, ref_record_id, verified, verified_on, exemption")
    # new versions: an end date set (lists and arrears closed), an amount corrected, every fifth moved
    # to another subject; repairs and revocations of stored penalties, by their subject
    con.execute(f"""CREATE TEMP TABLE rec AS
        SELECT record_id, uscc, kind, subkind, severity, decision_date, NULL::DATE AS end_date,
               NULL::DATE AS publicity_end, amount, 'samr' AS department, '宁市监〔2026〕9号' AS document_no,
               NULL AS ref_record_id, NULL::BOOLEAN AS verified, NULL::DATE AS verified_on, NULL AS exemption,
               version
        FROM plain
        UNION ALL
        SELECT * REPLACE (
                   CASE WHEN row_number() OVER () % 5 = 0 THEN (SELECT uscc FROM moved_to LIMIT 1 OFFSET 0)
                        ELSE uscc END AS uscc,
                   coalesce(end_date, DATE '2026-09-30') AS end_date, amount * 1.1 AS amount,
                   version + 1 AS version)
        FROM (SELECT {cols}, version FROM current_records USING SAMPLE {n_versions} ROWS)
        UNION ALL
        SELECT 'F{serial:03d}-' || row_number() OVER () AS record_id, uscc,
               CASE WHEN random() < 0.6 THEN 'repair' ELSE 'revocation' END AS kind, NULL, NULL,
               DATE '2026-09-15' AS decision_date, NULL, NULL, NULL, 'samr', '宁信修〔2026〕1号', record_id,
               NULL, NULL, NULL, 1 AS version
        FROM (SELECT * FROM (SELECT record_id, uscc FROM current_records WHERE kind = 'admin_penalty')
              USING SAMPLE {n_refs} ROWS)""")
    meta = (f"'x' AS content_hash, TIMESTAMP '2026-10-31 00:00:00' AS ingested_at, '{where.name}' AS batch_id, "
            "'records.csv' AS source_file, 0::BIGINT AS source_row")
    where.mkdir(parents=True)
    con.execute(f"""COPY (SELECT r.record_id, r.uscc, r.kind, r.subkind, r.severity, r.decision_date, r.end_date,
                          r.publicity_end, r.amount, r.department, r.document_no, r.ref_record_id, r.verified,
                          r.verified_on, r.exemption, NULL::VARCHAR AS inspection_item, '记录' AS description,
                          CAST(r.version AS INTEGER) AS version, {meta}, year(r.decision_date) AS decision_year
                   FROM rec r) TO '{where / 'records'}' (FORMAT parquet, PARTITION_BY (decision_year))""")
    (where / "subjects").mkdir()
    con.execute(f"""COPY (SELECT uscc, '新企业' AS name, 'llc' AS legal_form, 'C' AS industry,
                          '320102' AS district_code, '玄武区' AS district_name, DATE '2026-07-01' AS registered_on,
                          100.0 AS registered_capital, 5::BIGINT AS employees, 'active' AS status,
                          NULL::DATE AS status_date, NULL AS legal_rep_name, NULL AS legal_rep_id,
                          1 AS version, {meta} FROM new_codes) TO '{where / 'subjects' / 'part-0.parquet'}'
                   (FORMAT parquet)""")
    counts = con.execute("SELECT count(*) FROM rec").fetchone()[0]
    con.close()
    return {"records": counts, "new_subjects": n_subjects_new, "new_versions": n_versions, "repairs": n_refs}


def _child(store: Path, repeats: int) -> None:
    from features.profiles import build_profiles

    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        frame = build_profiles(store, as_of=AS_OF, threads=2)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    frame.to_parquet(store.parent / f"profiles-{store.name}.parquet", index=False)
    print(json.dumps({"times": times, "cpu": cpu, "rows": len(frame)}))


def build_time(store: Path, repeats: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(store), "--repeats", str(repeats)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall": statistics.median(found["times"]), "cpu": statistics.median(found["cpu"]), "runs": found["times"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_store_options(ap, subjects=1_000_000)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--deltas", type=int, default=5, help="batches added in a row")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="leave the scratch store for inspection")
    ap.add_argument("--child", type=Path)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.repeats)
        return
    import pandas as pd

    from features.store import add_batch, compact

    print(f"machine: {_machine()}", flush=True)  # load1 > 2: other users share the 2 cores
    cache = cached_store(args.subjects, args.records_per_subject, args.seed)
    store = SCRATCH / "store"
    try:
        link_store(cache, store)
        t0, c0 = time.perf_counter(), time.process_time()
        base = compact(store)
        rebuild, rebuild_cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"full rebuild of the current state (baseline): {rebuild:6.2f} s, {rebuild_cpu:6.2f} s CPU  "
              f"({base.segments[0].records:,} records, {base.segments[0].subjects:,} subjects)", flush=True)
        on_base = build_time(store, args.repeats)
        shutil.copy(SCRATCH / "profiles-store.parquet", SCRATCH / "profiles-base.parquet")
        updates, updates_cpu = [], []
        for i in range(args.deltas):
            batch = make_batch(store, SCRATCH / f"batch-{i:02d}", args.batch, args.seed + i, i)
            t0, c0 = time.perf_counter(), time.process_time()
            snap = add_batch(store, SCRATCH / f"batch-{i:02d}")
            updates.append(time.perf_counter() - t0)
            updates_cpu.append(time.process_time() - c0)
            seg = snap.segments[-1]
            print(f"batch {i + 1}: {batch['records']:,} records ({batch['new_subjects']:,} new subjects, "
                  f"{batch['new_versions']:,} new versions, {batch['repairs']:,} repairs/revocations) → delta of "
                  f"{seg.records:,} records, {seg.subjects:,} subjects, {seg.deletes:,} superseded rows: "
                  f"{updates[-1]:5.2f} s, {updates_cpu[-1]:5.2f} s CPU", flush=True)
            if i == 0:
                one_delta = build_time(store, args.repeats)
        deltas = build_time(store, args.repeats)
        incremental = pd.read_parquet(SCRATCH / "profiles-store.parquet")
        t0 = time.perf_counter()
        compact(store)
        rebuild_after = time.perf_counter() - t0
        compacted = build_time(store, args.repeats)
        same = incremental.equals(pd.read_parquet(SCRATCH / "profiles-store.parquet"))
        update = statistics.median(updates)
        update_cpu = statistics.median(updates_cpu)
        print(f"incremental update (stage + publish), median of {len(updates)}: {update:.2f} s, {update_cpu:.2f} s CPU "
              f"(runs {[round(u, 2) for u in updates]})")
        print(f"ratio full rebuild / incremental = {rebuild / update:.1f}× wall, {rebuild_cpu / update_cpu:.1f}× CPU "
              f"(rebuild {rebuild:.1f} s before the batches, {rebuild_after:.1f} s after)")
        print(f"profile build, compacted base    : {on_base['wall']:5.2f} s wall, {on_base['cpu']:5.2f} s CPU "
              f"(runs {[round(t, 2) for t in on_base['runs']]})")
        print(f"profile build, base + 1 delta    : {one_delta['wall']:5.2f} s wall, {one_delta['cpu']:5.2f} s CPU "
              f"({one_delta['cpu'] / on_base['cpu']:.2f}× the base's CPU)")
        print(f"profile build, base + {args.deltas} deltas   : {deltas['wall']:5.2f} s wall, {deltas['cpu']:5.2f} s CPU "
              f"({deltas['cpu'] / on_base['cpu']:.2f}× the base's CPU)")
        print(f"profile build, compacted again   : {compacted['wall']:5.2f} s wall, {compacted['cpu']:5.2f} s CPU")
        print(f"profiles from base + deltas == from the compacted base: {same}")
        print(f"machine after: {_machine()}")
    finally:
        if not args.keep:
            shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
